#!/bin/sh
# run.sh: the benchmark of issue 12 (docs/results.md, "Edits and design"): for trained runs on
# the built-in dSprites, name the knobs, score every named knob's edits with the oracle, and
# design for maximal area with each penalty at a few weights; prints the tables as markdown.
#
#   sh bench/apps/run.sh BUILD OUT RUN [RUN ...]     (each RUN a run folder of `knobs train`)
#
# Never part of make test. Each run gets OUT/<name>/{knobs.json,score.json,design_*.json,*.png}.
# Environment: N (edits per knob, 200), NFIT (design observations, 5000), THREADS (2).
BUILD=${1:?BUILD}; OUT=${2:?OUT}; shift 2
N=${N:-200}; NFIT=${NFIT:-5000}; THREADS=${THREADS:-2}
K=$BUILD/knobs
PY=/usr/bin/python3
set -e
mkdir -p "$OUT"
for run in "$@"; do
  name=$(basename "$run")
  o=$OUT/$name
  rm -rf "$o"; mkdir -p "$o"
  cp "$run/model.safetensors" "$run/config.json" "$o/"
  [ -f "$run/log.csv" ] && cp "$run/log.csv" "$o/"
  "$K" name "$o" --threads "$THREADS" > "$o/name.txt" 2>&1
  t0=$(date +%s)
  "$K" edit --model "$o" --score --n "$N" --json "$o/score.json" --threads "$THREADS" > "$o/score.txt" 2>&1
  echo "score_seconds $(( $(date +%s) - t0 ))" >> "$o/score.txt"
  for pen in none prior gmm box; do
    for lam in 0.3 1 3; do
      [ $pen = none ] && [ $lam != 1 ] && continue
      "$K" design --model "$o" --maximize area --penalty $pen --lambda $lam --n 16 --n-fit "$NFIT" \
        --out "$o/design_${pen}_$lam.png" --json "$o/design_${pen}_$lam.json" --threads "$THREADS" > "$o/design_${pen}_$lam.txt" 2>&1
    done
  done
done
$PY - "$OUT" "$@" <<'PYEOF'
import json, os, sys, statistics as st
out = sys.argv[1]
runs = [os.path.basename(r) for r in sys.argv[2:]]
print("### Edit scores (oracle on the built-in dSprites)\n")
print("| run | knob | factor | MI | target fidelity | moved (classes) | specificity | recon exact |")
print("|---|---|---|---|---|---|---|---|")
for r in runs:
    s = json.load(open(os.path.join(out, r, "score.json")))
    k = json.load(open(os.path.join(out, r, "knobs.json")))
    for row in s["knobs"]:
        lat = k["latents"][row["latent"]]
        mi = max(lat["mi"]) if lat["mi"] else 0
        print("| %s | z%d %s | %s | %.2f | %.3f | %.2f | %.3f | %.3f |" % (r, row["latent"], row["name"], row["factor"], mi,
              row["fidelity"], row["moved"], row["specificity"], row["recon_exact"]))
print("\n### Design for maximal area\n")
print("| run | penalty | lambda | mean area | mean percentile | share >= p90 | valid | mean nearest | threshold |")
print("|---|---|---|---|---|---|---|---|---|")
for r in runs:
    for pen in ["none", "prior", "gmm", "box"]:
        for lam in ["0.3", "1", "3"]:
            f = os.path.join(out, r, "design_%s_%s.json" % (pen, lam))
            if not os.path.exists(f):
                continue
            d = json.load(open(f))
            ds = d["designs"]
            p90 = sum(x["property"] >= d["data_p90"] for x in ds) / len(ds)
            print("| %s | %s | %s | %.4f | %.1f | %.0f%% | %d/%d | %.4f | %.4f |" % (r, pen, lam if pen != "none" else "-",
                  st.mean(x["property"] for x in ds), st.mean(x["percentile"] for x in ds), 100 * p90, d["valid"], len(ds),
                  st.mean(x["nearest"] for x in ds), d["threshold"]))
    d = json.load(open(os.path.join(out, r, "design_none_1.json")))
    print("| %s | (data) | | median %.4f, p90 %.4f, max %.4f | | | | | |" % (r, d["data_p50"], d["data_p90"], d["data_max"]))
PYEOF
