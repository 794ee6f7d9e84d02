"""The HTTP side of ``skelviz study serve``: a Starlette application run by uvicorn.

Why Starlette + uvicorn: both are small, widely used and well maintained (the stack under FastAPI), pure ASGI
with no template engine or ORM to carry, and Starlette runs plain ``def`` endpoints in a thread pool, which is
what blocking HDF5 writes with fsync need: one slow disk write never stalls the other participants' requests.

Routes (every ``/api`` reply is JSON and never cached)::

    GET  /                         the participant page (start screen: "Begin" creates a session)
    GET  /s/<token>                the participant page of one session (the token is the participant's link)
    GET  /static/...               the built page (three.js bundle, CSS), shipped inside the Python package
    GET  /api/study                title and minimum window size (for the start screen)
    POST /api/sessions             a new session → {"token", "url"}
    GET  /api/s/<token>/state      what the page shows now
    GET  /api/s/<token>/motion/<i> the motions of trial i (only while it is on screen)
    POST /api/s/<token>/act        {"action": consent|decline|advance|onset|replay|respond|focus|refused, ...}
    GET  /healthz                  "ok"

The server reads the stimulus file once at start and writes nothing outside the sessions folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.errors import StudyError
from studies.web.sessions import StaleRequest, UnknownSession, WebSessions

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_NO_STORE = {"Cache-Control": "no-store"}
_MAX_BODY = 16 * 1024


def _json(data: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_NO_STORE)


def _error(status: int, message: str) -> JSONResponse:
    return _json({"error": message}, status)


def create_app(sessions: WebSessions) -> Starlette:
    """The ASGI application serving ``sessions`` (one study)."""
    index = STATIC_DIR / "index.html"
    if not (STATIC_DIR / "study.js").is_file() or not index.is_file():
        raise StudyError(f"the participant page is missing from {STATIC_DIR}; rebuild it with "
                         "`npm --prefix studies/web/frontend run build` or reinstall skelviz")

    def page(request: Request) -> Response:
        return FileResponse(index, headers=_NO_STORE)

    def study(request: Request) -> Response:
        p = sessions.protocol
        return _json({"title": p.title, "min_width": p.online.min_width, "min_height": p.online.min_height})

    def new_session(request: Request) -> Response:
        token = sessions.create()
        return _json({"token": token, "url": f"/s/{token}"}, 201)

    def state(request: Request) -> Response:
        return _guard(lambda: sessions.state(request.path_params["token"]))

    def motion(request: Request) -> Response:
        return _guard(lambda: sessions.motion(request.path_params["token"], request.path_params["index"]))

    async def act(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            return _error(413, "request too large")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "the request body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return _error(400, 'the request body must be a JSON object with an "action"')
        # HDF5 writes and fsync block: keep them off the event loop
        return await run_in_threadpool(
            _guard, lambda: sessions.act(request.path_params["token"], body["action"], body)
        )

    def health(request: Request) -> Response:
        return PlainTextResponse("ok", headers=_NO_STORE)

    routes = [
        Route("/", page),
        Route("/s/{token}", page),
        Route("/api/study", study),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route("/api/s/{token}/state", state),
        Route("/api/s/{token}/motion/{index:int}", motion),
        Route("/api/s/{token}/act", act, methods=["POST"]),
        Route("/healthz", health),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        sessions.close()  # a clean stop closes the files; a killed server loses nothing either

    return Starlette(routes=routes, lifespan=lifespan)


def _guard(fn) -> Response:
    """Run a session operation; study errors become JSON errors the page can show."""
    try:
        return _json(fn())
    except UnknownSession as exc:
        return _error(404, str(exc))
    except StaleRequest as exc:
        return _error(409, str(exc))
    except StudyError as exc:
        return _error(400, str(exc))


def serve(sessions: WebSessions, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    """Run the server until interrupted (one process: the per-session locks live in it)."""
    import uvicorn

    app = create_app(sessions)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, workers=1,
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run()
