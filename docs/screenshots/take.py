"""Regenerate the README screenshots from the running app (needs a display; under Xvfb:
``xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/take.py``)."""

# ruff: noqa: T201  (a script: it reports what it wrote)
from __future__ import annotations

import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDTH = 1280  # the PNGs are scaled to this width to stay small


def main() -> int:
    from skelviz.app import apply_theme, configure_qt, configure_threads, create_window

    configure_qt()
    configure_threads()
    from PySide6 import QtCore, QtWidgets

    from skelviz.model.settings import MemoryStore

    app = QtWidgets.QApplication([])
    apply_theme(app)
    window = create_window(store=MemoryStore(), error_reporter=lambda t, m: print(f"{t}: {m}"))
    window.resize(1500, 920)
    window.show()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 10)

    def until(cond, limit: float = 300) -> None:
        end = time.monotonic() + limit
        while not cond() and time.monotonic() < end:
            pump(0.05)

    def save(name: str) -> None:
        pump(0.8)
        image = window.grab().toImage().scaledToWidth(WIDTH, QtCore.Qt.TransformationMode.SmoothTransformation)
        image.save(str(HERE / name))
        print("wrote", HERE / name)

    until(lambda: window.loading == 0 and window.session.scene.probs("A") is not None)
    # 1. An attack: SMART-AB on the first demo clip, live plots and the summary.
    window.attack_panel.run()
    until(lambda: not window.attack_panel.running)
    window.session.playback.seek(30)
    save("attack.png")
    # 2. Overlay of the two clips, bones coloured by acceleration difference, trails on, side view.
    window.colour_box.setCurrentIndex(window.colour_box.findData("acceleration"))
    window.overlay_action.setChecked(True)
    window.trails_action.setChecked(True)
    window.views.reset_cameras("side")
    window.docks["Model"].raise_()
    window.session.playback.seek(40)
    save("overlay.png")
    window.overlay_action.setChecked(False)
    window.trails_action.setChecked(False)
    # 3. Browsing the demo dataset, with the inspect panel on position difference.
    window.docks["Data"].raise_()
    window.inspect_panel.quantity_box.setCurrentIndex(window.inspect_panel.quantity_box.findData("position"))
    window.session.scene.select_joint(window.session.scene.clip("A").skeleton.index("RightHand"))
    window.views.reset_cameras("front")
    save("data_inspect.png")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
