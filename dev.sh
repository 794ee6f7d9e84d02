#!/usr/bin/env bash
# skelviz developer entry point. From a fresh Debian machine with Python 3.11:
#   ./dev.sh demo    set everything up, then open the app on the real CMU demo (File > Open demo > synthetic for the other)
#   ./dev.sh test    set everything up, then run the whole test suite (ruff + pytest, GL tests under Xvfb)
# Anything after the verb is passed on (to `skelviz` for demo, to pytest for test).
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv
# Debian packages that Xvfb, Mesa's software OpenGL and Qt's xcb platform need at run time.
DEB_PACKAGES=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglx-mesa0 libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libdbus-1-3 libfontconfig1 fonts-dejavu-core
  ffmpeg
  chromium chromium-driver)  # headless browser + its WebDriver for the online-study tests (tests/studies/test_web*)

log() { printf '[dev.sh] %s\n' "$*" >&2; }

ensure_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { log "not a Debian system: install Xvfb and Mesa yourself"; return 0; }
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  "$PY" -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  local stamp="$VENV/.skelviz-installed"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing Python packages (torch 2.13.0 CPU build, Qt, pyqtgraph, test tools)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, pinned: this takes the CPU build; an open range would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    touch "$stamp"
  fi
}

verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
  demo)
    ensure_debian_packages
    ensure_venv
    exec "$VENV/bin/skelviz" "$@"
    ;;
  test)
    ensure_debian_packages
    ensure_venv
    log "ruff"
    "$VENV/bin/ruff" check .
    log "pytest"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo [FILE]   |   ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
