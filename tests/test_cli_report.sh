#!/bin/sh
# test_cli_report.sh: `knobs report` and `knobs select` on a tiny sweep made here (beta 1 and 4 x
# seeds 0 and 1 of an MLP beta-VAE, 20 steps on the built-in dSprites, dci/mig/sap/modularity on a
# few hundred points; and two InfoGAN runs without evaluation):
# - report: report.csv's header and rows (every number equal to the run's eval.json), report.json
#   (valid, group means), the PNGs (the PNG signature; counted as skipped when built without
#   PLplot, when the report must say it drew none), stdout's table and mean +- std lines; a run
#   not finished listed with its state and no numbers; a sweep without evaluation;
# - select: select.json's UDR scores in [0,1], each the median of its pairwise column, the
#   ranking in order, the Spearman correlations with the metrics, the selected run; the scores
#   equal to knobs.udr_models from Python to 1e-5 (skipped without NumPy); a group of one finished run
#   skipped with a note (and --variant spearman there); an InfoGAN group refused;
# - refusals, nothing written: no sweep.json, a corrupt eval.json, a malformed sweep.json, an
#   unknown --method or --variant, an unknown --plot column, no SWEEP, select --out not .json.
# Usage: sh tests/test_cli_report.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
T=$(mktemp -d /tmp/knobs-report-XXXXXX)
. "$(dirname "$0")/lib.sh"
# a sanitizer build: the leaks of the libraries under PLplot's pngcairo device are not ours
case $(basename "$BUILD") in *-san) san=1 ;; *) san=0 ;; esac
[ $san = 1 ] && export LSAN_OPTIONS="suppressions=$PWD/tests/lsan_plot.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
absent() { [ ! -e "$1" ] && ok || bad "$1 was written after a failure"; }
is_png() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ]; }
PY=${PYTHON:-/usr/bin/python3}
have_py=0; command -v "$PY" >/dev/null 2>&1 && have_py=1
pycheck() { # NAME SCRIPT ARGS...: a Python (standard library) check; skipped without python3
  name=$1; shift
  if [ $have_py = 0 ]; then S=$((S + 1)); echo "skip: $name: no python3"; return; fi
  "$PY" -c "$@" >"$T/py" 2>&1 && ok || bad "$name: $(tail -5 "$T/py")"
}

S1="$T/s1"
SI="$T/ig"
"$K" sweep --grid "model=infogan; seed=0,1" --out "$SI" --steps 5 --jobs 1 --no-eval --quiet -- --arch mlp --batch 32 \
  --latents 4 >"$T/ig.out" 2>&1 &
igpid=$!
"$K" sweep --grid "model=betavae; beta=1,4; seed=0,1" --out "$S1" --steps 20 --jobs 2 --quiet \
  --eval "--metrics dci,mig,sap,modularity --num-train 300 --num-test 200" -- --arch mlp --batch 32 --latents 4 \
  >"$T/out" 2>&1 || bad "the sweep: $(tail -3 "$T/out")"
wait $igpid || bad "the InfoGAN sweep: $(tail -3 "$T/ig.out")"

expect 0 "report" "$K" help
expect 0 "usage: knobs report" "$K" report --help
expect 0 "usage: knobs select" "$K" select --help

# ---- report ----
plots=1; "$K" --version | grep -q "^plots: PLplot" || plots=0
expect 0 "mean ± std" "$K" report "$S1" --out "$T/r"
cp "$T/out" "$T/r.out"
grep -q "betavae beta=1 (2 scored): dci.disentanglement .* ± .* | mig" "$T/r.out" && ok || bad "mean ± std lines: $(cat "$T/r.out")"
grep -q "^betavae-beta4-seed1 *done *[0-9]" "$T/r.out" && ok || bad "stdout table: $(cat "$T/r.out")"
head -1 "$T/r/report.csv" | grep -q "^run,model,beta,seed,state,dci.disentanglement,dci.completeness,.*,mig,sap.SAP_score,.*,modularity$" &&
  ok || bad "report.csv header: $(head -1 "$T/r/report.csv")"
[ "$(wc -l <"$T/r/report.csv")" = 5 ] && ok || bad "report.csv has $(wc -l <"$T/r/report.csv") lines, want 5"
grep -q "^betavae-beta4-seed0,betavae,4,0,done,0\." "$T/r/report.csv" && ok || bad "report.csv row: $(cat "$T/r/report.csv")"
pycheck "report.csv against eval.json" '
import csv, json, sys
sweep, rep = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(rep + "/report.csv")))
assert len(rows) == 4, rows
for r in rows:
    m = json.load(open("%s/%s/eval.json" % (sweep, r["run"])))["metrics"]
    want = {"dci.disentanglement": m["dci"]["disentanglement"], "dci.completeness": m["dci"]["completeness"],
            "dci.informativeness_test": m["dci"]["informativeness_test"], "mig": m["mig"]["discrete_mig"],
            "sap.SAP_score": m["sap"]["SAP_score"], "modularity": m["modularity"]["modularity_score"]}
    for k, v in want.items():
        assert float(r[k]) == v, (r["run"], k, r[k], v)
j = json.load(open(rep + "/report.json"))
assert j["format"] == "knobs-report-1" and j["settings"] == ["beta"], j["settings"]
assert [c["name"] for c in j["columns"] if c["headline"]] == ["dci.disentanglement", "mig", "sap.SAP_score", "modularity"]
assert len(j["runs"]) == 4 and j["runs"][0]["group"] == "betavae beta=1"
g = j["groups"][1]
assert g["name"] == "betavae beta=4" and g["summary"]["mig"]["n"] == 2
vals = [float(r["mig"]) for r in rows if r["beta"] == "4"]
assert abs(g["summary"]["mig"]["mean"] - sum(vals) / 2) < 1e-15
assert abs(g["summary"]["mig"]["std"] - abs(vals[0] - vals[1]) / 2 ** 0.5) < 1e-15
s = j["spearman"]
assert s["runs"] == 4 and len(s["matrix"]) == 4 and s["matrix"][0][0] == 1, s
' "$S1" "$T/r"
if [ $plots = 1 ]; then
  n=0
  for f in box-dci.disentanglement box-mig box-sap.SAP_score box-modularity spearman; do
    is_png "$T/r/$f.png" && n=$((n + 1)) || bad "$f.png is missing or not a PNG"
  done
  [ $n = 5 ] && ok
  grep -q "5 plots" "$T/r.out" && ok || bad "stdout does not count the plots: $(tail -2 "$T/r.out")"
else
  S=$((S + 2)); echo "skip: the report's PNGs: built without PLplot"
  grep -q "plots: none" "$T/r.out" && ok || bad "a report without PLplot does not say so: $(tail -2 "$T/r.out")"
fi
ls "$T/r" | grep -q "tmp-" && bad "a temporary file was left in $T/r" || ok
# chosen columns, tables only
expect 0 "dci.compl" "$K" report "$S1" --out "$T/r2" --plot dci.completeness,mig --no-plots
[ -s "$T/r2/report.csv" ] && ! ls "$T/r2" | grep -q png && ok || bad "--no-plots: $(ls "$T/r2")"

# a run not finished: listed with its state, no numbers
cp -r "$S1" "$T/s2"
awk '/"state":/ { n++; if (n == 4) sub(/"done"/, "\"training\"") } { print }' "$T/s2/sweep.json" >"$T/sj" &&
  mv "$T/sj" "$T/s2/sweep.json"
expect 0 "" "$K" report "$T/s2" --out "$T/r3"
grep -q "^betavae-beta4-seed1,betavae,4,1,training,,,," "$T/r3/report.csv" && ok || bad "unfinished row: $(cat "$T/r3/report.csv")"
grep -q "beta=4 (1 scored)" "$T/out" && ok || bad "unfinished run counted: $(cat "$T/out")"
# a sweep without evaluation: rows, no numbers, no plots
expect 0 "plots: none" "$K" report "$SI" --out "$T/r4"
grep -q "^infogan-seed1,infogan,1,done$" "$T/r4/report.csv" && ok || bad "no-eval rows: $(cat "$T/r4/report.csv")"

# ---- select ----
expect 0 "selected (best UDR): betavae-beta" "$K" select "$S1" --n 300
cp "$T/out" "$T/sel.out"
j="$S1/select.json"
[ -s "$j" ] && ok || bad "no $j"
grep -q "Spearman rank correlation of UDR with each supervised metric" "$T/sel.out" && ok || bad "no Spearman lines: $(cat "$T/sel.out")"
pycheck "select.json" '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "knobs-select-1" and j["method"] == "udr" and j["variant"] == "lasso" and j["n"] == 300
scores = {}
for g in j["groups"]:
    assert "note" not in g, g
    R = len(g["runs"]); P = g["pairwise"]
    assert R == 2 and len(P) == 2
    for i in range(R):
        u = g["udr"][i]
        assert 0 <= u <= 1, u
        col = sorted(P[k][i] for k in range(R) if k != i)
        med = col[len(col) // 2] if len(col) % 2 else (col[len(col) // 2 - 1] + col[len(col) // 2]) / 2
        assert u == med, (u, med)
        scores[g["runs"][i]] = u
r = j["ranking"]
assert [e["rank"] for e in r] == [1, 2, 3, 4]
assert all(r[k]["udr"] >= r[k + 1]["udr"] for k in range(3))
assert all(scores[e["run"]] == e["udr"] for e in r)
assert j["selected"]["run"] == r[0]["run"] and "mig" in j["selected"]["metrics"]
assert set(j["spearman"]) == {"dci.disentanglement", "mig", "sap.SAP_score", "modularity"}, j["spearman"]
for v in j["spearman"].values():
    assert v["runs"] == 4 and (v["rho"] is None or -1 <= v["rho"] <= 1)
' "$j"
# the same scores from the library directly (python/knobs: knobs.udr_models)
if [ $san = 1 ]; then
  S=$((S + 1)); echo "skip: select against knobs.udr_models: a sanitizer build (test_python.sh preloads its runtime)"
elif [ $have_py = 1 ] && "$PY" -c "import numpy" 2>/dev/null; then
  KNOBS_LIB="$PWD/$BUILD/libknobs.so" PYTHONPATH="$PWD/python" PYTHONDONTWRITEBYTECODE=1 "$PY" -c '
import json, sys, knobs
j = json.load(open(sys.argv[1]))
g = j["groups"][0]
ms = [knobs.Model.load("%s/%s/model.safetensors" % (sys.argv[2], r), threads=1) for r in g["runs"]]
res = knobs.udr_models(ms, n=300)
# the same draw and definition; the encoders may differ by float rounding: NumPy loads its own
# OpenBLAS into the interpreter before libknobs, whose GEMM kernels then differ from those of knobs
assert all(abs(a - b) < 1e-5 for a, b in zip(res["scores"], g["udr"])), (list(res["scores"]), g["udr"])
' "$j" "$S1" >"$T/py" 2>&1 && ok || bad "select against knobs.udr_models: $(tail -5 "$T/py")"
else
  S=$((S + 1)); echo "skip: select against knobs.udr_models: no python3 with NumPy"
fi
# a group of one finished run: a note, the other group ranked (with the Spearman variant)
expect 0 "betavae beta=4: not scored: 1 finished run" "$K" select "$T/s2" --n 300 --variant spearman --out "$T/s2.json"
grep -q "UDR (spearman" "$T/out" && ok || bad "the variant is not printed: $(head -2 "$T/out")"
pycheck "a group of one, --variant spearman" '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["variant"] == "spearman" and all(0 <= e["udr"] <= 1 for e in j["ranking"])
assert len(j["ranking"]) == 2 and "note" in j["groups"][1] and "udr" not in j["groups"][1]
' "$T/s2.json"
# InfoGAN: no posterior, nothing to rank
expect 2 "no Gaussian posterior" "$K" select "$SI"
absent "$SI/select.json"

# ---- refusals ----
mkdir "$T/empty"
expect 2 "empty/sweep.json" "$K" report "$T/empty" --out "$T/x1"
absent "$T/x1"
expect 2 "sweep.json" "$K" select "$T/empty" --out "$T/x1.json"
absent "$T/x1.json"
cp -r "$S1" "$T/s3"
printf '{"metrics": ' >"$T/s3/betavae-beta1-seed1/eval.json"
expect 2 "betavae-beta1-seed1/eval.json: not JSON" "$K" report "$T/s3" --out "$T/x2"
absent "$T/x2"
expect 2 "eval.json: not JSON" "$K" select "$T/s3" --out "$T/x2.json"
absent "$T/x2.json"
echo '{"metrics": 3}' >"$T/s3/betavae-beta1-seed1/eval.json"
expect 2 "no \"metrics\" object" "$K" report "$T/s3" --out "$T/x2"
absent "$T/x2"
rm "$T/s3/betavae-beta1-seed1/eval.json"
expect 2 "has no evaluation" "$K" report "$T/s3" --out "$T/x2"
absent "$T/x2"
echo '{"format": "knobs-sweep-1"}' >"$T/s3/sweep.json"
expect 2 "a missing or malformed field" "$K" report "$T/s3" --out "$T/x3"
absent "$T/x3"
expect 1 "--method lda: unknown" "$K" select "$S1" --method lda --out "$T/x4.json"
absent "$T/x4.json"
expect 1 "--variant" "$K" select "$S1" --variant pearson --out "$T/x4.json"
absent "$T/x4.json"
expect 1 "must end in .json" "$K" select "$S1" --out "$T/x4.txt"
absent "$T/x4.txt"
expect 1 "no column 'beta_vae'" "$K" report "$S1" --plot beta_vae --out "$T/x5"
absent "$T/x5"
expect 1 "give the sweep folder" "$K" report --out "$T/x5"
expect 1 "give the sweep folder" "$K" select
expect 1 "unknown" "$K" report "$S1" --bogus

rm -rf "$T"
echo "$P passed, $F failed, $S skipped"
[ "$F" = 0 ]
