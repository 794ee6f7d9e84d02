"""Start the desktop app: ``run_app(files)`` (``skelviz`` and ``skelviz FILE`` call it).

Without files the window opens on the embedded demo dataset with the demo classifier loaded, so a new user
can press "Run attack" at once.

Debugging and documentation aid: with ``SKELVIZ_SCREENSHOT=PATH`` the app saves a picture of its window to
PATH once everything has loaded and quits; ``SKELVIZ_SCREENSHOT_ATTACK=1`` runs the Attack panel's attack
first and takes the picture when it has finished; ``SKELVIZ_SCREENSHOT_PANEL=Inspect`` (any dock name)
raises a panel before the picture.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def configure_qt() -> None:
    """Process-wide Qt settings that must precede the QApplication: shared GL contexts (pyqtgraph caches its
    shader programs process-wide) and a depth buffer. No multisampling in the default format: it applies to
    the whole window surface, and with software OpenGL every repaint of any widget then costs tens of ms;
    lines are antialiased by GL line smoothing instead, and offscreen exports multisample their own buffer."""
    from PySide6 import QtCore, QtGui

    QtCore.QCoreApplication.setAttribute(QtCore.Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    fmt = QtGui.QSurfaceFormat.defaultFormat()
    fmt.setDepthBufferSize(24)
    QtGui.QSurfaceFormat.setDefaultFormat(fmt)
    QtCore.QCoreApplication.setOrganizationName("skelviz")
    QtCore.QCoreApplication.setApplicationName("skelviz")


def apply_theme(app) -> None:
    """Fusion with a dark palette (it matches the dark 3D views) and pyqtgraph colours to suit."""
    import pyqtgraph as pg
    from PySide6 import QtGui

    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    role, c = QtGui.QPalette.ColorRole, QtGui.QColor
    for r, col in (
        (role.Window, c(43, 45, 50)),
        (role.WindowText, c(225, 225, 225)),
        (role.Base, c(30, 32, 36)),
        (role.AlternateBase, c(38, 40, 45)),
        (role.ToolTipBase, c(50, 52, 58)),
        (role.ToolTipText, c(230, 230, 230)),
        (role.Text, c(225, 225, 225)),
        (role.Button, c(52, 54, 60)),
        (role.ButtonText, c(225, 225, 225)),
        (role.BrightText, c(255, 90, 90)),
        (role.Highlight, c(66, 120, 200)),
        (role.HighlightedText, c(255, 255, 255)),
        (role.Link, c(110, 170, 255)),
        (role.PlaceholderText, c(140, 140, 140)),
    ):
        pal.setColor(r, col)
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, c(120, 120, 120))
    app.setPalette(pal)
    pg.setConfigOptions(background=(30, 32, 36), foreground=(210, 210, 210), antialias=True)


def create_window(files: list[str] | None = None, store=None, error_reporter=None, demo: bool = True):
    """Build the main window and start loading ``files`` (or the demo dataset) and the demo classifier."""
    from engine.errors import SkelvizError
    from skelviz.widgets.main_window import MainWindow

    window = MainWindow(store=store, error_reporter=error_reporter)
    if files:
        window.open_paths(files)
    elif demo:
        window.load_demo_data()
    if demo:
        try:
            from engine.assets import asset_path
            from engine.assets import demo as default_demo

            asset_path(default_demo().checkpoints["stgcn"])
        except SkelvizError as exc:
            window.show_status(str(exc))
        else:
            window.load_demo_classifier("stgcn")
        if not files:
            window.docks["Attack"].raise_()
    return window


def _screenshot_when_ready(app, window, path: str) -> None:
    from PySide6 import QtCore

    attack = os.environ.get("SKELVIZ_SCREENSHOT_ATTACK") == "1"
    panel = os.environ.get("SKELVIZ_SCREENSHOT_PANEL", "")
    state = {"attack_started": False, "ticks": 0}

    def tick() -> None:
        state["ticks"] += 1
        busy = window.loading > 0 or window.workers.active
        if state["ticks"] > 1200:  # two minutes: give up rather than hang a script
            log.error("screenshot: timed out waiting for the app to settle")
            app.exit(1)
            return
        if busy:
            return
        if attack and not state["attack_started"]:
            state["attack_started"] = True
            window.attack_panel.run()
            return
        timer.stop()
        if panel in window.docks:
            window.docks[panel].raise_()

        def grab() -> None:
            ok = window.grab().save(path)
            log.info("screenshot saved to %s" if ok else "could not save a screenshot to %s", path)
            app.exit(0 if ok else 1)

        QtCore.QTimer.singleShot(700, grab)

    timer = QtCore.QTimer(window)
    timer.timeout.connect(tick)
    timer.start(100)


def configure_threads() -> None:
    """Keep the UI responsive while engine work runs in a worker thread of the same process.

    Torch uses all but one core for its own thread pool, so the UI thread always has a core; and Python
    switches threads every 1 ms instead of 5 ms, because the UI thread releases and re-takes the GIL around
    every Qt call and would otherwise wait up to a full switch interval each time the worker holds it.
    """
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    sys.setswitchinterval(0.001)


def run_app(files: list[str]) -> int:
    """Open the main window (on ``files``, or on the demo) and run the event loop; returns the exit code."""
    configure_qt()
    configure_threads()
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    apply_theme(app)
    window = create_window(files)
    window.show()
    shot = os.environ.get("SKELVIZ_SCREENSHOT")
    if shot:
        _screenshot_when_ready(app, window, shot)
    return int(app.exec())
