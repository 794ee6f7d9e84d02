"""Screenshot of a trial page of an online study (docs/screenshots/online_trial.png) in headless Chromium.

    .venv/bin/python docs/screenshots/take_online.py

Prepares naturalness stimuli from the embedded demo with the demo ST-GCN (6 clips, a few seconds), serves them
with `skelviz study serve`, walks one participant through consent, instructions and the practice, and captures
the first scored trial. Needs Debian's chromium and chromium-driver (./dev.sh installs them).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.studies.web_support import Server, chromium, quit_chromium  # noqa: E402

log = logging.getLogger("take_online")


def _state(driver) -> tuple[str, str]:
    return tuple(driver.execute_script("const d = document.body.dataset; return [d.state || '', d.ready || ''];"))


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    out_png = REPO / "docs" / "screenshots" / "online_trial.png"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stimuli = tmp / "stimuli.h5"
        subprocess.run([sys.executable, "-c", "import sys; from skelviz.cli import main; sys.exit(main())", "study",
                        "prepare", "naturalness", "--model", str(REPO / "assets/models/demo_stgcn.pt"), "--data",
                        str(REPO / "assets/demo/demo_actions.h5"), "--out", str(stimuli), "--clips", "6"], check=True)
        server = Server(Path("naturalness"), stimuli, tmp / "sessions").start()
        driver = chromium(1280, 800)
        try:
            driver.set_window_size(1280, 800)
            driver.get(server.url + "/")
            for _ in range(400):
                state, ready = _state(driver)
                if state == "trial" and ready == "1":
                    label = driver.find_element("id", "progress-label").text
                    if not label.startswith("Practice"):
                        time.sleep(0.8)  # mid-motion
                        driver.save_screenshot(str(out_png))
                        log.info("wrote %s (%s)", out_png, label)
                        return
                    driver.find_element("tag name", "body").send_keys("F")
                elif state in ("start", "consent", "instructions", "practice_done", "break"):
                    action = {"start": "begin", "consent": "consent"}.get(state, "advance")
                    driver.find_element("css selector", f"button[data-action={action}]").click()
                time.sleep(0.3)
            raise RuntimeError("never reached a scored trial")
        finally:
            quit_chromium(driver)
            server.stop()


if __name__ == "__main__":
    main()
