"""``skelviz study``: perceptual studies from the command line.

    skelviz study prepare PROTOCOL --model CKPT --data PATH --out STIMULI.h5
    skelviz study run PROTOCOL --stimuli STIMULI.h5 [--participant ID] [--resume SESSION.h5] [--out DIR]
    skelviz study serve PROTOCOL --stimuli STIMULI.h5 --out SESSIONS_DIR [--host H] [--port P]
    skelviz study analyze SESSIONS... --out DIR

PROTOCOL is a TOML file or the name of a shipped preset (deceitfulness, naturalness, indistinguishability,
generic_2afc). ``prepare`` runs every attack before anyone takes part; ``run`` opens the full-screen participant
window (the only verb that needs Qt and a display); ``analyze`` writes report.md, CSV tables and PNG plots.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

COMMAND = "study"
HELP = "perceptual studies: prepare stimuli with the attacks, run a participant session, analyse the sessions"

log = logging.getLogger("skelviz.study")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = sub.add_parser("prepare", help="run the protocol's attacks and write the stimulus file")
    p.add_argument("protocol", help="protocol TOML file or preset name")
    p.add_argument("--model", required=True, help="classifier checkpoint (.pt)")
    p.add_argument("--data", required=True, help="labelled data set the clips are drawn from")
    p.add_argument("--out", required=True, help="stimulus file to write (.h5)")
    p.add_argument("--clips", type=int, help="number of clips (overrides [prepare] clips)")
    p.add_argument("--device", default="cpu", help="torch device for the attacks (cpu, cuda:0 ...)")
    p.add_argument("--force", action="store_true", help="replace an existing stimulus file (kept as NAME.bak)")

    r = sub.add_parser("run", help="run one participant session in a full-screen window")
    r.add_argument("protocol", help="protocol TOML file or preset name")
    r.add_argument("--stimuli", required=True, help="stimulus file made by `skelviz study prepare`")
    r.add_argument("--participant", help="participant code (default: a generated one); never a name: not letters "
                   "only and no five letters in a row (e.g. S012)")
    r.add_argument("--resume", help="continue this session file instead of starting a new one")
    r.add_argument("--out", help="folder for the session file (default: sessions/ beside the stimulus file)")
    r.add_argument("--windowed", action="store_true", help="a normal window instead of full screen")

    w = sub.add_parser("serve", help="run the study in participants' browsers (one session file per participant)")
    w.add_argument("protocol", help="protocol TOML file or preset name")
    w.add_argument("--stimuli", required=True, help="stimulus file made by `skelviz study prepare`")
    w.add_argument("--out", required=True, help="folder for the session files (sessions there resume on restart)")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    w.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")

    a = sub.add_parser("analyze", aliases=["analyse"], help="merge sessions and write the report")
    a.add_argument("sessions", nargs="+", help="session files (.h5)")
    a.add_argument("--out", required=True, help="report folder")
    a.add_argument("--catch-threshold", type=float, help="exclude participants below this catch accuracy")
    a.add_argument("--force", action="store_true", help="replace an existing report (old files kept as NAME.bak)")


def run(args: argparse.Namespace) -> int:
    verbs = {"prepare": _prepare, "run": _run, "serve": _serve, "analyze": _analyze, "analyse": _analyze}
    return verbs[args.verb](args)


def _prepare(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from engine.errors import StudyError
    from studies.prepare import prepare_stimuli, provenance_meta
    from studies.protocol import load_protocol

    protocol = load_protocol(args.protocol)
    if protocol.prepare is None:
        raise StudyError(f"{args.protocol}: the protocol has no [prepare] table naming the attacks to run")
    if args.clips:
        protocol = replace(protocol, prepare=replace(protocol.prepare, clips=args.clips))
    try:
        from engine.checkpoints import load_classifier
    except ImportError as exc:
        raise StudyError(f"this skelviz cannot load checkpoints ({exc})") from None
    from engine.io import load_dataset

    classifier = load_classifier(args.model).to(args.device).eval()
    dataset = load_dataset(args.data)
    clips = [dataset[i] for i in range(len(dataset))]

    def progress(done: int, total: int, info: dict) -> None:
        log.info("[%d/%d] %s", done, total, info.get("message", ""))

    stim = prepare_stimuli(protocol, classifier, clips, args.out, meta=provenance_meta(args.model, args.data),
                           progress=progress)
    methods = sorted({s.method for s in stim.stimuli.values()})
    fooled = [s for s in stim.stimuli.values() if s.success >= 0]
    print(f"wrote {len(stim.stimuli)} stimuli ({len({s.clip for s in stim.stimuli.values()})} clips; methods "
          f"{', '.join(methods)}) to {args.out}")
    if fooled:
        print(f"attacks that fooled the model: {sum(s.success == 1 for s in fooled)} of {len(fooled)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from engine.errors import StudyError
    from studies.protocol import load_protocol
    from studies.stimuli import open_stimuli

    # check the files before any window opens: a bad file is a message here, not a broken session
    protocol = load_protocol(args.protocol)
    open_stimuli(args.stimuli, protocol)
    if args.resume and args.participant:
        raise StudyError("--resume continues the participant stored in the session file; leave out --participant")
    if args.resume:
        from studies.storage import read_session

        read_session(args.resume)  # a file that is not a session is a message here, not a broken window
    from skelviz.cli import require_display

    require_display("the participant window (skelviz study run)")
    try:
        from PySide6 import QtCore, QtWidgets
    except ImportError as exc:
        raise StudyError(f"the participant window needs PySide6 ({exc})") from None
    app = QtWidgets.QApplication.instance()
    if app is None:
        from skelviz.app import configure_qt

        configure_qt()  # as the app: shared GL contexts (pyqtgraph caches its shaders process-wide)
        app = QtWidgets.QApplication(sys.argv[:1])
    from skelviz.participant import launch_study

    window = launch_study(args.protocol, args.stimuli, args.participant, out_dir=args.out, resume=args.resume,
                          fullscreen=not args.windowed)
    path = window.session.file.path
    print(f"session file: {path} (participant {window.session.participant_id})")
    window.destroyed.connect(app.quit)
    window.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    app.exec()
    from studies.storage import read_session

    data = read_session(path)
    print(f"{data.attrs['status']}: {len(data.responses)} of {len(data.plan)} trials answered, saved in {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from engine.errors import StudyError
    from studies.protocol import load_protocol
    from studies.stimuli import open_stimuli

    if not 0 <= args.port <= 65535:
        raise StudyError(f"--port must be a TCP port (0-65535), got {args.port}")
    protocol = load_protocol(args.protocol)
    stimuli = open_stimuli(args.stimuli, protocol)
    try:
        from studies.web.server import serve
        from studies.web.sessions import WebSessions
    except ImportError as exc:
        raise StudyError(f"online studies need starlette and uvicorn ({exc}); reinstall skelviz") from None
    sessions = WebSessions(protocol, stimuli, args.out)
    print(f"serving {protocol.title!r} on http://{args.host}:{args.port}/ (sessions in {Path(args.out).resolve()});"
          " give participants that address; Ctrl+C stops", flush=True)
    serve(sessions, args.host, args.port)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from studies.analysis import analyse, load_sessions, write_report

    result = analyse(load_sessions(args.sessions), catch_threshold=args.catch_threshold)
    files = write_report(result, args.out)
    for c in result.conditions:
        print(f"{c.condition}: {c.k}/{c.n} = {c.proportion:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}] "
              f"p = {c.p_value:.3g}" + (f", d' = {c.dprime:.2f}" if c.dprime == c.dprime else ""))
    if result.excluded:
        print(f"excluded (catch accuracy below {result.threshold:.2f}): {', '.join(result.excluded)}")
    print(f"report: {Path(files['report'])}")
    return 0
