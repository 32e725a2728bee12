#!/bin/sh
# test_install.sh: libknobs as others get it. The shared library exports exactly the knobs_*
# declarations of include/knobs.h; `make install` into a temporary prefix (and a DESTDIR
# staging tree, and `make uninstall`); the usage example at the top of the installed knobs.h,
# extracted from the comment, and a small program, compiled with `pkg-config --cflags --libs
# knobs` against the installed tree, linked dynamically and statically (`pkg-config --static`),
# and run (they train, encode and score); the installed `knobs --version`; the installed man
# page is valid roff and lists every command and option of `knobs help` / `knobs CMD --help`.
# With BUILD build-san the library carries ASan/UBSan, so the programs are built with the same
# -fsanitize flags. Usage: sh tests/test_install.sh BUILD
BUILD=${1:-build}
T=$(mktemp -d /tmp/knobs-install-XXXXXX)
. "$(dirname "$0")/lib.sh"
check() { msg=$1; shift; if "$@"; then ok; else bad "$msg"; fi; }
SAN=0; SANFLAGS=""
case $(basename "$BUILD") in *-san) SAN=1; SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;; esac
CC=${CC:-cc}
# make from inside `make test`: a clean environment, the same build directory
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s SAN=$SAN "$@"; }

# ---- exported symbols: only knobs_*, and every knobs_ declaration of the header --------------
SO="$BUILD/libknobs.so"
if [ -e "$SO" ]; then
  nm -D --defined-only "$SO" | awk 'NF >= 3 {print $3}' | sort -u > "$T/exported"
  if [ "$SAN" = 1 ]; then
    # ASan adds one one-definition-rule indicator per exported global: __odr_asan.NAME; NAME
    # itself must be exported (it is checked below with the rest)
    grep '^__odr_asan\.knobs_' "$T/exported" | sed 's/^__odr_asan\.//' > "$T/odr"
    grep -v '^__odr_asan\.knobs_' "$T/exported" > "$T/exported.x"; mv "$T/exported.x" "$T/exported"
    check "ASan indicators for globals that are not exported: $(comm -23 "$T/odr" "$T/exported" | tr '\n' ' ')" [ -z "$(comm -23 "$T/odr" "$T/exported")" ]
  fi
  grep -v '^knobs_' "$T/exported" > "$T/foreign"
  check "libknobs.so exports symbols outside the API: $(head -c 300 "$T/foreign" | tr '\n' ' ')" [ ! -s "$T/foreign" ]
  # the header without its comments; functions are "knobs_x(", data "extern ... knobs_x[]" / ";"
  "$CC" -fpreprocessed -dD -E -P include/knobs.h > "$T/h.txt" 2>/dev/null || cp include/knobs.h "$T/h.txt"
  { grep -o 'knobs_[a-z_0-9]*(' "$T/h.txt" | sed 's/($//'
    grep '^extern' "$T/h.txt" | grep -o 'knobs_[a-z_0-9]*\(\[\]\)\{0,1\};' | sed 's/\[\]//; s/;$//'
  } | sort -u > "$T/declared"
  check "knobs.h declares fewer than 60 functions: the header parse is broken" [ "$(wc -l < "$T/declared")" -ge 60 ]
  comm -23 "$T/declared" "$T/exported" > "$T/hidden"
  check "declared in knobs.h but not exported (mark them KNOBS_API): $(tr '\n' ' ' < "$T/hidden")" [ ! -s "$T/hidden" ]
  comm -13 "$T/declared" "$T/exported" > "$T/undeclared"
  check "exported but not declared in knobs.h: $(tr '\n' ' ' < "$T/undeclared")" [ ! -s "$T/undeclared" ]
  # every file-scope declaration carries the mark (catches an unmarked one before it is linked)
  grep -nE '^(const |void |char |int |long |double |size_t |int64_t |knobs_status |extern [^K"])' include/knobs.h > "$T/unmarked"
  check "declarations of knobs.h without KNOBS_API: $(head -c 300 "$T/unmarked")" [ ! -s "$T/unmarked" ]
  readelf -d "$SO" | grep -q 'SONAME.*libknobs\.so\.[0-9]' && ok || bad "libknobs.so has no versioned soname"
else
  bad "$SO was not built"
fi

# ---- make install into a prefix; a DESTDIR staging install; make uninstall -------------------
PFX="$T/usr"
mk install PREFIX="$PFX" > "$T/install.log" 2>&1 || bad "make install: $(tail -5 "$T/install.log")"
VERSION=$(sed -n 's/^#define KNOBS_VERSION "\([0-9.]*\)".*/\1/p' include/knobs.h)
MAJOR=${VERSION%%.*}
for f in bin/knobs lib/libknobs.so.$VERSION lib/libknobs.a include/knobs.h lib/pkgconfig/knobs.pc share/man/man1/knobs.1; do
  [ -f "$PFX/$f" ] && ok || bad "make install did not install $f"
done
[ "$(readlink "$PFX/lib/libknobs.so.$MAJOR")" = "libknobs.so.$VERSION" ] && ok || bad "lib/libknobs.so.$MAJOR is not a link to libknobs.so.$VERSION"
[ "$(readlink "$PFX/lib/libknobs.so")" = "libknobs.so.$MAJOR" ] && ok || bad "lib/libknobs.so is not a link to libknobs.so.$MAJOR"
mk install DESTDIR="$T/stage" PREFIX=/opt/knobs > "$T/stage.log" 2>&1 || bad "make install DESTDIR: $(tail -5 "$T/stage.log")"
[ -x "$T/stage/opt/knobs/bin/knobs" ] && [ -f "$T/stage/opt/knobs/lib/pkgconfig/knobs.pc" ] && ok || bad "DESTDIR install misses files"
grep -q '^prefix=/opt/knobs$' "$T/stage/opt/knobs/lib/pkgconfig/knobs.pc" && ok || bad "knobs.pc of a DESTDIR install does not name the final prefix"
mk uninstall DESTDIR="$T/stage" PREFIX=/opt/knobs > "$T/unstage.log" 2>&1 || bad "make uninstall: $(tail -5 "$T/unstage.log")"
left=$(find "$T/stage" -type f -o -type l)
[ -z "$left" ] && ok || bad "make uninstall left: $left"

# ---- the installed knobs ---------------------------------------------------------------------
out=$("$PFX/bin/knobs" --version 2>&1)
first=$(printf '%s\n' "$out" | head -n 1)
[ "$first" = "knobs $VERSION" ] && ok || bad "installed knobs --version: first line '$first', want 'knobs $VERSION'"
printf '%s\n' "$out" | grep -q '^blas: OpenBLAS .*kernels ' && ok || bad "installed knobs --version names no BLAS kernels: '$out'"

# ---- programs built with pkg-config against the installed tree -------------------------------
export PKG_CONFIG_PATH="$PFX/lib/pkgconfig"
if ! command -v pkg-config >/dev/null; then
  bad "pkg-config is not installed (make deps installs it)"
elif ! pkg-config --exists knobs 2>"$T/pc.err"; then
  bad "pkg-config cannot use the installed knobs.pc: $(cat "$T/pc.err")"
else
  ok
  CF=$(pkg-config --cflags knobs); LIBS=$(pkg-config --libs knobs)
  STATIC=$(pkg-config --static --libs knobs | sed 's/-lknobs/-l:libknobs.a/')
  case $CF in *"$PFX/include"*) ok ;; *) bad "pkg-config --cflags knobs: '$CF' lacks $PFX/include" ;; esac
  # the usage example, extracted from the installed header's comment
  sed -n '/^ \* Usage:/,/^ \* (end of usage example)/p' "$PFX/include/knobs.h" | sed -n 's/^ \*   //p; s/^ \*$//p' > "$T/example.c"
  grep -q 'int main' "$T/example.c" && ok || bad "no usage example found in knobs.h"
  if $CC -std=c11 -Wall -Wextra -Werror $SANFLAGS $CF -o "$T/example" "$T/example.c" $LIBS -Wl,-rpath,"$PFX/lib" 2>"$T/cc.err"; then
    ok
    readelf -d "$T/example" | grep -q "NEEDED.*libknobs\.so\.$MAJOR" && ok || bad "the example is not linked to libknobs.so.$MAJOR"
    if "$T/example" > "$T/example.out" 2>"$T/example.err"; then
      grep -q '"mig"' "$T/example.out" && grep -q '"dci"' "$T/example.out" && ok || bad "the example printed no mig/dci result: $(head -c 300 "$T/example.out")"
    else
      bad "the usage example failed: $(head -c 500 "$T/example.err")"
    fi
  else
    bad "the usage example does not compile: $(head -c 800 "$T/cc.err")"
  fi

  cat > "$T/prog.c" <<'PROG'
/* A user of libknobs: version checks, a config round trip through JSON, a short knobs_train
 * run, encoding, a metric by path, and an error detail. Prints one line of numbers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <knobs.h>
#if KNOBS_VERSION_NUMBER < 200
#error KNOBS_VERSION_NUMBER
#endif
#define CHECK(x) do { if ((x) != KNOBS_OK) { fprintf(stderr, "%s: %s\n", #x, knobs_last_error()); return 1; } } while (0)
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  char v[32];
  snprintf(v, sizeof v, "%d.%d.%d", KNOBS_VERSION_NUMBER / 10000, KNOBS_VERSION_NUMBER / 100 % 100,
           KNOBS_VERSION_NUMBER % 100);
  if (strcmp(v, KNOBS_VERSION) || strcmp(knobs_version(), KNOBS_VERSION)) {
    fprintf(stderr, "versions differ: number %s, header %s, library %s\n", v, KNOBS_VERSION, knobs_version());
    return 1;
  }
  knobs_data *d; knobs_config *c, *c2; knobs_model *m; knobs_result *r;
  CHECK(knobs_data_open("dsprites", NULL, &d));
  CHECK(knobs_config_create("betavae", &c));
  if (knobs_config_set(c, "latents", "0") == KNOBS_OK || !strstr(knobs_last_error(), "latents")) {
    fprintf(stderr, "latents 0 accepted or not named: %s\n", knobs_last_error());
    return 1;
  }
  CHECK(knobs_config_set(c, "arch", "mlp"));
  CHECK(knobs_config_set(c, "hidden", "64"));
  CHECK(knobs_config_set(c, "latents", "3"));
  CHECK(knobs_config_set(c, "batch", "16"));
  CHECK(knobs_config_set(c, "steps", "6"));
  CHECK(knobs_config_set(c, "threads", "1"));
  CHECK(knobs_config_from_data(c, d));
  CHECK(knobs_config_validate(c));
  char *json = knobs_config_to_json(c);
  if (!json) return 1;
  CHECK(knobs_config_create(NULL, &c2));
  CHECK(knobs_config_from_json(c2, json));
  knobs_free(json);
  CHECK(knobs_model_create(c2, &m));
  knobs_train_opts to;
  memset(&to, 0, sizeof to);
  to.out_dir = argv[1];
  to.steps = 6;
  CHECK(knobs_train(m, d, &to));
  if (knobs_model_step(m) != 6) { fprintf(stderr, "step %ld, want 6\n", knobs_model_step(m)); return 1; }
  knobs_model *m2;
  CHECK(knobs_model_load(argv[1], 1, &m2));
  int n = 300, Z = knobs_model_code_dim(m2);
  const knobs_data_info *in = knobs_data_info_get(d);
  knobs_array codes = {0}, factors = {0};
  int64_t cs[2] = {n, Z}, fs[2] = {n, in->K};
  CHECK(knobs_array_alloc(&codes, KNOBS_F32, 2, cs));
  CHECK(knobs_array_alloc(&factors, KNOBS_I32, 2, fs));
  float *x = malloc(sizeof(float) * (size_t)n * in->C * in->H * in->W);
  if (!x) return 1;
  CHECK(knobs_data_draw(d, n, 7, 0, x, factors.data));
  CHECK(knobs_model_encode(m2, x, n, codes.data, NULL));
  CHECK(knobs_metrics_arrays(&codes, &factors, NULL, "mig,sap", NULL, &r));
  double mig, sap;
  CHECK(knobs_result_get(r, "mig.score", &mig));
  CHECK(knobs_result_get(r, "sap.score", &sap));
  char *table = knobs_result_table(r);
  if (!table || !strstr(table, "mig")) return 1;
  knobs_free(table);
  if (!isfinite(mig) || !isfinite(sap)) return 1;
  printf("Z=%d mig=%.9f sap=%.9f x0=%.9f\n", Z, mig, sap, ((float *)codes.data)[0]);
  free(x);
  knobs_array_free(&codes); knobs_array_free(&factors); knobs_result_free(r);
  knobs_model_free(m2); knobs_model_free(m); knobs_config_free(c2); knobs_config_free(c);
  knobs_data_free(d);
  return 0;
}
PROG
  if $CC -std=c11 -Wall -Wextra -Werror $SANFLAGS $CF -o "$T/prog" "$T/prog.c" $LIBS -Wl,-rpath,"$PFX/lib" 2>"$T/cc.err"; then
    ok
    "$T/prog" "$T/run" > "$T/prog.out" 2>"$T/prog.err" && ok || bad "the program (shared) failed: $(head -c 500 "$T/prog.err")"
    [ -s "$T/run/model.safetensors" ] && [ -s "$T/run/config.json" ] && ok || bad "knobs_train wrote no run folder"
  else
    bad "the program does not compile against the installed tree: $(head -c 800 "$T/cc.err")"
  fi
  # statically linked libknobs: Libs.private / Requires.private must name everything it needs
  if $CC -std=c11 -Wall -Wextra -Werror $SANFLAGS $CF -o "$T/prog-static" "$T/prog.c" $STATIC 2>"$T/cc.err"; then
    ok
    readelf -d "$T/prog-static" | grep -q 'NEEDED.*libknobs' && bad "the static program still needs libknobs.so" || ok
    "$T/prog-static" "$T/run-static" > "$T/prog-static.out" 2>"$T/prog.err" && ok || bad "the program (static) failed: $(head -c 500 "$T/prog.err")"
    cmp -s "$T/prog.out" "$T/prog-static.out" && ok || bad "static and shared builds differ: $(cat "$T/prog.out" "$T/prog-static.out")"
  else
    bad "the program does not link statically with pkg-config --static ($STATIC): $(head -c 800 "$T/cc.err")"
  fi
fi

# ---- the man page ----------------------------------------------------------------------------
MANP="$PFX/share/man/man1/knobs.1"
if command -v groff >/dev/null; then
  warn=$(groff -man -ww -z "$MANP" 2>&1)
  [ -z "$warn" ] && ok || bad "knobs.1 has roff warnings: $(echo "$warn" | head -5)"
  MANWIDTH=200 groff -man -Tutf8 -P-cbou "$MANP" 2>/dev/null > "$T/man.txt"
  if command -v man >/dev/null; then MANWIDTH=200 man -l "$MANP" 2>/dev/null | col -b > "$T/man.txt"; fi
  miss=""
  for c in $("$PFX/bin/knobs" help | sed -n 's/^  \([a-z][a-z0-9_-]*\)  .*/\1/p'); do
    grep -q "^ *$c" "$T/man.txt" || miss="$miss $c"
    [ "$c" = help ] || [ "$c" = version ] && continue
    for o in $("$PFX/bin/knobs" "$c" --help 2>&1 | sed -n 's/^  *\(--[a-z][a-z0-9-]*\).*/\1/p'); do
      grep -q -- "$o" "$T/man.txt" || miss="$miss $c$o"
    done
  done
  [ -z "$miss" ] && ok || bad "the man page lacks:$miss"
  grep -q "knobs $VERSION" "$T/man.txt" && ok || bad "the man page does not name version $VERSION"
else
  echo "skipped: groff is not installed (man page check; make test installs groff-base)"
fi

rm -rf "$T"
echo "$P passed, $F failed"
[ "$F" = 0 ]
