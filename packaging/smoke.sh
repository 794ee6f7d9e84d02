#!/usr/bin/env bash
# Smoke test of the built bundle (packaging/build_bundle.sh first): start it under Xvfb, let it open the demo
# dataset and demo classifier, save a screenshot, quit; and run CLI commands (help, info, a tiny attack)
# through the same binary.
# Prints the bundle size and the start time (launch until the demo is loaded and the picture is taken).
#
#   packaging/smoke.sh [BUNDLE_DIR]      # default dist/skelviz; writes build/smoke/ (screenshot, logs)
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-dist/skelviz}"
EXE="$BUNDLE/skelviz"
OUT=build/smoke
mkdir -p "$OUT"
rm -f "$OUT/app.png"
[ -x "$EXE" ] || { echo "no bundle at $EXE: run packaging/build_bundle.sh first" >&2; exit 1; }
# run from an empty folder with a scrubbed environment, so nothing can come from the source tree or the venv
export HOME="$PWD/$OUT/home" XDG_CONFIG_HOME="$PWD/$OUT/home/.config"
mkdir -p "$HOME"
unset PYTHONPATH VIRTUAL_ENV SKELVIZ_ASSETS
run() { (cd "$OUT" && env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$HOME" XDG_CONFIG_HOME="$XDG_CONFIG_HOME" "$@"); }
ABS_EXE="$(cd "$BUNDLE" && pwd)/skelviz"

echo "bundle: $BUNDLE, size $(du -sh "$BUNDLE" | cut -f1)"

# 1. the CLI through the bundled interpreter
run "$ABS_EXE" --help > "$OUT/help.txt"
grep -q "attack" "$OUT/help.txt" || { echo "FAIL: 'skelviz --help' lists no attack command" >&2; exit 1; }
DEMO="$(cd "$BUNDLE" && pwd)/_internal/assets/demo/demo_actions.h5"
run "$ABS_EXE" info "$DEMO" > "$OUT/info.txt"
grep -q "hdm05_25" "$OUT/info.txt" || { echo "FAIL: 'skelviz info' on the demo did not describe it" >&2; cat "$OUT/info.txt"; exit 1; }
echo "cli: --help and info OK"
# torch, the model registry and the attack runner inside the bundle: a two-window SMART attack
MODEL="$(cd "$BUNDLE" && pwd)/_internal/assets/models/demo_stgcn.pt"
rm -rf "$OUT/attack"
run "$ABS_EXE" attack --model "$MODEL" --data "$DEMO" --limit 2 --iters 10 --quiet --out attack > "$OUT/attack.txt" 2>&1 \
    || { echo "FAIL: 'skelviz attack' in the bundle" >&2; tail -20 "$OUT/attack.txt" >&2; exit 1; }
grep -q '"n": 2' "$OUT/attack.txt" && [ -f "$OUT/attack/adversarial.h5" ] \
    || { echo "FAIL: the bundled attack wrote no results" >&2; tail -20 "$OUT/attack.txt" >&2; exit 1; }
echo "cli: a 2-window SMART attack wrote attack/adversarial.h5"

# 2. the app: opens the demo, screenshots once loaded, quits with status 0
start=$(date +%s.%N)
set +e
run timeout 300 xvfb-run -a -s "-screen 0 1600x1000x24" \
    env SKELVIZ_SCREENSHOT="$PWD/$OUT/app.png" "$ABS_EXE" > "$OUT/app.log" 2>&1
status=$?
set -e
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
if [ "$status" -ne 0 ]; then
    echo "FAIL: the app exited with status $status" >&2; tail -40 "$OUT/app.log" >&2; exit 1
fi
if grep -q "Traceback" "$OUT/app.log"; then
    echo "FAIL: the app logged a traceback" >&2; cat "$OUT/app.log" >&2; exit 1
fi
size=$(stat -c %s "$OUT/app.png" 2>/dev/null || echo 0)
[ "$size" -gt 20000 ] || { echo "FAIL: no (or a blank) screenshot at $OUT/app.png ($size bytes)" >&2; exit 1; }
printf 'app: demo loaded, screenshot %s (%s bytes), quit cleanly; start-to-loaded %.1f s\n' "$OUT/app.png" "$size" "$elapsed"
echo "SMOKE OK"
