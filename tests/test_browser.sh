#!/bin/sh
# test_browser.sh: the knob panel in a real browser. Trains a small model, starts `knobs serve`
# on an ephemeral port and drives Debian's chromium headless with playwright-core (npm, pinned in
# tests/browser/package.json, installed with the browser download disabled). Installs chromium,
# nodejs and the npm package when missing; skips (counted as skipped, never passed) when it
# cannot. Usage: sh tests/test_browser.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
DIR="$PWD/tests/browser"
skip() { echo "skip: test_browser: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
command -v chromium >/dev/null 2>&1 || sh scripts/deps.sh chromium >/dev/null 2>&1 || true
command -v node >/dev/null 2>&1 || sh scripts/deps.sh nodejs npm >/dev/null 2>&1 || true
[ -x /usr/bin/chromium ] || skip "no /usr/bin/chromium (apt-get install chromium)"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || skip "no node/npm (apt-get install nodejs npm)"
if [ ! -d "$DIR/node_modules/playwright-core" ]; then
  (cd "$DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) ||
    skip "npm install of playwright-core failed (offline?)"
fi
T=$(mktemp -d /tmp/knobs-browser-XXXXXX)
P=0; F=0
# beta 16 on 6 latents: some latents collapse, so the page has an "inactive" fold to test
if ! "$K" train --arch mlp --hidden 64 --latents 6 --beta 16 --batch 32 --steps 600 --threads 2 --seed 1 --out "$T/run" --quiet >"$T/train.log" 2>&1; then
  echo "FAIL: training the test model: $(tail -3 "$T/train.log")"; echo "0 passed, 1 failed"; exit 1
fi
cp "$T/run/samples.png" "$T/run/upload.png" # a grid of 64 samples: another size than 64x64, gray
"$K" serve "$T/run" --port 0 >"$T/serve.out" 2>"$T/serve.err" &
SPID=$!
for i in $(seq 50); do grep -q "http://" "$T/serve.out" 2>/dev/null && break; sleep 0.2; done
URL=$(sed -n 's/.*\(http:[^ ]*\).*/\1/p' "$T/serve.out")
if [ -z "$URL" ]; then
  echo "FAIL: knobs serve did not start: $(cat "$T/serve.err")"; kill $SPID 2>/dev/null; echo "0 passed, 1 failed"; exit 1
fi
timeout 110 node "$DIR/panel.test.js" "$URL" "$T/run" "$T" >"$T/node.log" 2>&1
cat "$T/node.log" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/node.log" | tail -1)
if [ -n "$line" ]; then P=$(echo "$line" | cut -d' ' -f1); F=$(echo "$line" | cut -d' ' -f3); else F=1; echo "FAIL: the browser test gave no summary"; fi
# Ctrl-C stops the server cleanly
kill -INT $SPID; wait $SPID; rc=$?
if [ "$rc" = 0 ] && grep -q "stopped" "$T/serve.out"; then P=$((P + 1)); else F=$((F + 1)); echo "FAIL: serve exit $rc after SIGINT"; fi
[ -n "$KNOBS_PANEL_PNG" ] && cp "$T/panel.png" "$KNOBS_PANEL_PNG"
# The knob named posX moves the sprite in x, on a committed weakly supervised model of the
# built-in dSprites (tests/ref/xknob.safetensors, made by: knobs train --model gvae --data dsprites
# --steps 1500 --lr 1e-3 --seed 1 --latents 5 --out DIR; its model.safetensors). Served from a
# copy: the server writes knobs.json beside the checkpoint.
mkdir -p "$T/x" && cp tests/ref/xknob.safetensors "$T/x/model.safetensors"
"$K" serve "$T/x/model.safetensors" --port 0 >"$T/x/serve.out" 2>"$T/x/serve.err" &
XPID=$!
for i in $(seq 100); do grep -q "http://" "$T/x/serve.out" 2>/dev/null && break; sleep 0.2; done
XURL=$(sed -n 's/.*\(http:[^ ]*\).*/\1/p' "$T/x/serve.out")
if [ -n "$XURL" ]; then
  timeout 200 node "$DIR/xknob.test.js" "$XURL" >"$T/x/node.log" 2>&1
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$T/x/node.log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T/x/node.log" | tail -1)
  if [ -n "$line" ]; then P=$((P + $(echo "$line" | cut -d' ' -f1))); F=$((F + $(echo "$line" | cut -d' ' -f3)));
  else F=$((F + 1)); echo "FAIL: the x-knob test gave no summary"; fi
else
  F=$((F + 1)); echo "FAIL: knobs serve of the x-knob model did not start: $(cat "$T/x/serve.err")"
fi
kill -INT $XPID 2>/dev/null; wait $XPID
rm -rf "$T"
echo "$P passed, $F failed, 0 skipped"
[ "$F" = 0 ]
