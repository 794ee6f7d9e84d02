"""Helpers for the online-study tests: a short protocol, a real `skelviz study serve` process, headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# two-alternative forced choice, 1 practice + 2 conditioned + 1 catch trial in 2 blocks, 2 counterbalanced orders
PROTOCOL = """
[study]
title = "Web test"
kind = "2afc"
question = "Which motion looks more natural?"
seed = 7
consent = "Consent text."
instructions = "Instructions text."
end_text = "Debrief text."

[design]
practice = 1
blocks = 2
clips_per_condition = 2
orders = 2

[catch]
count = 1
method = "jitter"

[display]
loops = 1
replays = 1
inter_trial_ms = 50

[online]
completion_code = "CODE42"
redirect_url = "https://example.org/complete?cc={code}"
min_width = 400
min_height = 300

[[conditions]]
name = "smart"
stimuli = ["clean", "smart"]
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (./dev.sh installs them)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`skelviz study serve` in its own process (killed with SIGKILL by the crash test)."""

    def __init__(self, protocol: Path, stimuli: Path, out: Path, port: int | None = None) -> None:
        self.args = [sys.executable, "-c", "import sys; from skelviz.cli import main; sys.exit(main())", "study", "serve", str(protocol), "--stimuli", str(stimuli),
                     "--out", str(out)]
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log = out.parent / f"server_{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args + ["--port", str(self.port)], stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.read() == b"ok":
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, files are left as they are."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def chromium(width: int = 1000, height: int = 700):
    """A headless Chromium driven by Selenium, using the system browser and driver (nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="skelviz-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver._skelviz_profile = profile
    return driver


def quit_chromium(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_skelviz_profile", ""), ignore_errors=True)
