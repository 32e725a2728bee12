#!/bin/sh
# test_python.sh: the python/knobs package (ctypes over BUILD/libknobs.so) with plain unittest:
# python/tests/test_*.py compare it with the knobs command built next to it. Under an ASan
# build (BUILD ending in -san) the sanitizer runtime is preloaded into the interpreter, with
# leak detection off (the interpreter itself never frees everything). Prints
# "N passed, N failed"; a missing NumPy is a skip, never a pass. Usage: sh tests/test_python.sh BUILD
BUILD=${1:-build}
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "skipped: python tests: $PY cannot import numpy (make test installs python3-numpy)"
  echo "0 passed, 0 failed"
  exit 0
fi
export KNOBS_LIB="$PWD/$BUILD/libknobs.so" KNOBS_BIN="$PWD/$BUILD/knobs" PYTHONPATH="$PWD/python"
export PYTHONDONTWRITEBYTECODE=1
case $(basename "$BUILD") in *-san)
  asan=$(${CC:-cc} -print-file-name=libasan.so)
  if [ ! -e "$asan" ]; then
    echo "skipped: python tests under SAN: no libasan.so to preload"
    echo "0 passed, 0 failed"; exit 0
  fi
  export LD_PRELOAD="$asan" ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" ;;
esac
"$PY" - <<'PY'
import sys, unittest
suite = unittest.defaultTestLoader.discover("python/tests", pattern="test_*.py", top_level_dir="python/tests")
r = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
bad = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
for t, why in r.skipped:
    print("skipped: %s: %s" % (t.id(), why))
print("%d passed, %d failed" % (r.testsRun - bad - len(r.skipped), bad))
sys.exit(1 if bad or r.testsRun == 0 else 0)
PY
