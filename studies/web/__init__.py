"""Online studies: ``skelviz study serve`` runs a study's protocol in participants' browsers.

:mod:`studies.web.sessions` holds the participants (the desktop runner's :class:`~studies.session.StudySession`
and session files, one per URL token); :mod:`studies.web.server` is the HTTP side (Starlette + uvicorn);
``static/`` is the built participant page (three.js, built from ``frontend/`` with
``npm --prefix studies/web/frontend ci && npm --prefix studies/web/frontend run build``).
"""
