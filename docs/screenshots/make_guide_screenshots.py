"""Take the user guide's screenshots (``docs/screenshots/guide_*.png``) from the running app.

Drives the real main window the way a user would (demo data, demo classifier, Attack / Defence / Inspect
panels, participant window) and grabs the window or one panel after each step. Needs a display: run it under
Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_guide_screenshots.py

Options: ``--only NAME`` (repeatable) takes a subset; ``--stimuli FILE`` a study stimulus file for the
participant screenshot (made with ``skelviz study prepare``; without it that shot is skipped).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("guide-screenshots")


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app, pred, timeout: float = 300.0, what: str = "the app") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def _idle(window) -> bool:
    return window.loading == 0 and not window.workers.active


def _save(app, widget, name: str) -> Path:
    _pump(app, 0.8)  # let the GL views and plots repaint
    path = OUT / f"guide_{name}.png"
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    log.info("saved %s", path.relative_to(REPO))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="take only these shots (names without guide_)")
    parser.add_argument("--stimuli", default=None, help="stimulus file for the participant-window shot")
    parser.add_argument("--protocol", default="indistinguishability", help="study protocol preset or file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    wanted = set(args.only)

    def want(name: str) -> bool:
        return not wanted or name in wanted

    from skelviz.app import apply_theme, configure_qt

    configure_qt()
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    apply_theme(app)
    from skelviz.app import create_window
    from skelviz.model.settings import MemoryStore

    errors: list[tuple[str, str]] = []
    window = create_window(None, store=MemoryStore(), error_reporter=lambda t, m: errors.append((t, m)))
    window.resize(1560, 960)
    window.show()
    _wait(app, lambda: _idle(window) and window.session.classifier is not None, what="the demo and its classifier")

    if want("data_panel"):
        window.docks["Data"].raise_()
        _save(app, window, "data_panel")

    # SMART-AB from the Attack panel, then the whole window and the Inspect plots
    window.docks["Attack"].raise_()
    panel = window.attack_panel
    if any(want(n) for n in ("attack_smart", "inspect", "model_panel", "overlay", "attack_basar", "defence")):
        panel.set_method("smart", "ab")
        panel.run()
        _wait(app, lambda: not panel.running and _idle(window), what="the SMART attack")
    window.session.playback.seek(window.session.playback.num_frames // 2)
    if want("attack_smart"):
        _save(app, window, "attack_smart")
    if want("inspect"):
        _save(app, window.docks["Inspect"], "inspect")
    if want("model_panel"):  # probabilities of the original and the adversarial clip
        window.docks["Model"].raise_()
        _save(app, window.docks["Model"], "model_panel")
        window.docks["Attack"].raise_()
    if want("overlay"):
        window.overlay_action.setChecked(True)
        _save(app, window.views, "overlay")
        window.overlay_action.setChecked(False)

    if want("attack_basar"):
        panel.set_method("basar")
        _pump(app, 0.2)
        try:
            panel.form.set_value("queries", 400)  # a short run for the picture (default 3000)
        except (KeyError, ValueError):
            log.info("the BASAR form has no queries field; keeping its default")
        panel.run()
        _wait(app, lambda: not panel.running and _idle(window), timeout=900, what="the BASAR attack")
        _save(app, window, "attack_basar")

    if want("defence"):
        dpanel = window.defence_panel
        window.docks["Defence"].raise_()
        dpanel.method_box.setCurrentIndex(dpanel.method_box.findText("beat"))
        _pump(app, 0.2)
        for name, value in (("burn_in", 1), ("num_samples", 2), ("sgld_steps", 3)):  # a short run for the picture
            try:
                dpanel.form.set_value(name, value)
            except (KeyError, ValueError):
                log.info("the BEAT form has no %s field; keeping its default", name)
        dpanel.apply()
        _wait(app, lambda: dpanel.task is None and _idle(window), timeout=900, what="the BEAT defence")
        _save(app, window, "defence")

    if want("participant") and args.stimuli:
        from skelviz.participant import launch_study

        with tempfile.TemporaryDirectory() as tmp:
            study = launch_study(args.protocol, args.stimuli, fullscreen=False, out_dir=tmp)
            study.resize(1280, 800)
            _pump(app, 2.0)
            _save(app, study, "participant_start")
            session = study.session
            session.accept_consent()  # as the participant would: consent, instructions, then the first trial
            for _ in range(3):
                if session.state.value == "trial":
                    break
                session.advance()
                _pump(app, 0.3)
            _pump(app, 1.5)  # mid-presentation: both motions on screen
            _save(app, study, "participant_trial")
            study.close()

    for title, message in errors:
        log.warning("the app reported: %s: %s", title, message)
    window.close()
    QtCore.QTimer.singleShot(0, app.quit)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
