#!/usr/bin/env bash
# Build the one-folder Linux desktop bundle: dist/skelviz/ (launcher dist/skelviz/skelviz, ~1 GB unpacked).
#
#   packaging/build_bundle.sh                  # uses .venv/bin/python; installs PyInstaller into it if missing
#   PYTHON=/path/to/python packaging/build_bundle.sh
#   SKELVIZ_BUNDLE_FFMPEG=0 packaging/build_bundle.sh   # leave out the bundled ffmpeg (video export then
#                                                      # needs IMAGEIO_FFMPEG_EXE pointing at a system ffmpeg)
#
# PyInstaller is a build-time tool only: it is not a runtime dependency of skelviz. The build venv should have
# the CPU build of torch (the bundle is CPU-only; CUDA libraries are dropped by the spec if present).
# Then check the result with packaging/smoke.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "installing PyInstaller into $("$PYTHON" -c 'import sys; print(sys.prefix)') (build-time only)"
    "$PYTHON" -m pip install --quiet "pyinstaller>=6.3"
fi
if [ ! -f assets/icons/skelviz.png ]; then
    "$PYTHON" packaging/make_icon.py
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/skelviz.spec

# desktop integration files next to the launcher (see packaging/README in docs/guide.md, "Desktop bundle")
cp packaging/skelviz.desktop assets/icons/skelviz.png dist/skelviz/
cat > dist/skelviz/install-desktop-entry.sh <<'EOS'
#!/usr/bin/env bash
# Register this bundle with the desktop (menu entry + icon) for the current user.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/skelviz.png" "$icons/skelviz.png"
sed -e "s|^Exec=.*|Exec=\"$here/skelviz\" %F|" -e "s|^TryExec=.*|TryExec=$here/skelviz|" \
    "$here/skelviz.desktop" > "$apps/skelviz.desktop"
echo "installed $apps/skelviz.desktop"
EOS
chmod +x dist/skelviz/install-desktop-entry.sh

echo "built dist/skelviz in $(( $(date +%s) - start )) s; size $(du -sh dist/skelviz | cut -f1)"
