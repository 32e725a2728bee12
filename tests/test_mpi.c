/* test_mpi.c: knobs on two MPI ranks (mpirun -np 2 --oversubscribe, on this machine), against
 * one process:
 * - data-parallel training: 2 ranks x batch 32 give the parameters and loss terms of one
 *   process with batch 64 after 50 steps, to float tolerance (bitwise equality does not hold:
 *   the two shards' gradients are summed in another order than one batch's; the test prints
 *   the largest difference), and every rank ends with the same model (the command checks the
 *   digests and fails otherwise);
 * - resume across a change of rank count, both ways;
 * - refusals: a family whose loss couples the batch, a batch the ranks do not divide, a command
 *   that does not run on ranks, each with exit 1 and nothing written;
 * - a sweep whose runs spread over the ranks, each run the bytes of a direct knobs train.
 * Skipped (counted) when mpirun is missing or knobs was built without MPI. The knobs binary is
 * found beside this test's folder (BUILD/tests/test_mpi -> BUILD/knobs). */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "t.h"

static char knobs[PATH_MAX + 16], tmp[256], mpirun[2 * PATH_MAX + 512];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int exists(const char *fmt, const char *a) {
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, fmt, tmp, a);
  struct stat st;
  return stat(p, &st) == 0;
}

/* Largest |a - b| / max|a| over every tensor of two checkpoints (-1 if they differ in names
 * or shapes or cannot be read); *bitwise = 1 if all bytes are equal. */
static double ckpt_diff(const char *a, const char *b, int *bitwise) {
  char pa[PATH_MAX + 64], pb[PATH_MAX + 64];
  snprintf(pa, sizeof pa, "%s/%s/model.safetensors", tmp, a);
  snprintf(pb, sizeof pb, "%s/%s/model.safetensors", tmp, b);
  kn_safetensors x, y;
  if (kn_st_read(pa, &x)) return -1;
  if (kn_st_read(pb, &y)) {
    kn_st_free(&x);
    return -1;
  }
  double worst = x.n == y.n ? 0 : -1;
  *bitwise = x.data_bytes == y.data_bytes && !memcmp(x.data, y.data, x.data_bytes);
  for (int i = 0; i < x.n && worst >= 0; i++) {
    const kn_st_tensor *t = &x.t[i], *u = kn_st_find(&y, t->name);
    if (!u || u->end - u->begin != t->end - t->begin || t->dtype != KNOBS_F32) {
      worst = -1;
      break;
    }
    const float *p = (const float *)(x.data + t->begin), *q = (const float *)(y.data + u->begin);
    size_t n = (t->end - t->begin) / 4;
    double mx = 0, d = 0;
    for (size_t k = 0; k < n; k++) {
      mx = fmax(mx, fabs(p[k]));
      d = fmax(d, fabs((double)p[k] - q[k]));
    }
    if (mx > 0 && d / mx > worst) worst = d / mx;
  }
  kn_st_free(&x);
  kn_st_free(&y);
  return worst;
}

/* The last row of RUN/log.csv as numbers (step, seconds, img/s, terms...); the count. */
static int last_row(const char *run, double *v, int max) {
  char p[PATH_MAX + 64], line[2048], last[2048] = "";
  snprintf(p, sizeof p, "%s/%s/log.csv", tmp, run);
  FILE *f = fopen(p, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof last);
  fclose(f);
  int n = 0;
  for (char *s = last, *e; n < max && *s; s = *e ? e + 1 : e) {
    v[n++] = strtod(s, &e);
    if (e == s) break;
  }
  return n;
}

/* Loss terms (columns 3..) of two runs' last rows agree to rel; same step. */
static void check_terms(const char *a, const char *b, double rel) {
  double x[16], y[16];
  int n = last_row(a, x, 16), m = last_row(b, y, 16);
  CHECK(n >= 4 && n == m && x[0] == y[0], "%s and %s: last log rows differ in shape or step (%d, %d)", a, b, n, m);
  for (int i = 3; i < n && i < m; i++)
    CHECK(fabs(x[i] - y[i]) <= rel * fabs(x[i]) + 1e-9, "%s vs %s: term %d %.9g vs %.9g", a, b, i, x[i], y[i]);
}

#define TRAIN "train --data physics --arch mlp --hidden 64 --batch 64 --threads 1 --log-every 10 --quiet"

int main(int argc, char **argv) {
  T_CASE("setup");
  char self[PATH_MAX];
  if (!realpath(argv[0], self)) return printf("cannot resolve %s\n", argv[0]), 1;
  *strrchr(self, '/') = 0;                        /* BUILD/tests */
  *strrchr(self, '/') = 0;                        /* BUILD */
  snprintf(knobs, sizeof knobs, "%s/knobs", self);
  if (sh("command -v mpirun >/dev/null 2>&1")) {
    T_SKIP("mpirun not installed (apt-get install openmpi-bin)");
    return t_done();
  }
  if (sh("%s --version | grep -q '^mpi: none'", knobs) == 0) {
    T_SKIP("this knobs was built without MPI (no mpicc when it was built)");
    return t_done();
  }
  snprintf(tmp, sizeof tmp, "/tmp/knobs-test-mpi-%ld", (long)getpid());
  sh("rm -rf %s && mkdir -p %s", tmp, tmp);
  /* as root Open MPI needs --allow-run-as-root; ASan's leak check would report Open MPI's
   * own allocations at exit */
  snprintf(mpirun, sizeof mpirun,
           "cd %s && ASAN_OPTIONS=detect_leaks=0 OMPI_MCA_mpi_yield_when_idle=1 mpirun %s--oversubscribe -np 2 "
           "-x ASAN_OPTIONS -x OMPI_MCA_mpi_yield_when_idle %s",
           tmp, geteuid() == 0 ? "--allow-run-as-root " : "", knobs);
  static char one[PATH_MAX + 512];
  snprintf(one, sizeof one, "cd %s && %s", tmp, knobs);

  T_CASE("data-parallel equals one process");
  CHECK(sh("%s " TRAIN " --steps 50 --out one", one) == 0, "one process");
  CHECK(sh("%s " TRAIN " --steps 50 --out two", mpirun) == 0, "two ranks (exit 0: their digests agree)");
  int bw = 0;
  double d = ckpt_diff("one", "two", &bw);
  CHECK(d >= 0 && d < 1e-5, "2 ranks x 32 vs 1 x 64 after 50 steps: max |diff| / max|w| = %.3g", d);
  printf("note: 2 ranks x 32 vs 1 x 64 after 50 steps: max |diff|/max|w| %.3g, bitwise %s\n", d, bw ? "yes" : "no");
  check_terms("one", "two", 1e-5);
  CHECK(!exists("%s/%s/run.lock.1", "two"), "rank 1 wrote into the run");

  T_CASE("resume across rank counts");
  CHECK(sh("%s " TRAIN " --steps 30 --out a", mpirun) == 0, "2 ranks to 30");
  CHECK(sh("%s train --resume a --steps 50 --quiet", one) == 0, "1 process from 30 to 50");
  d = ckpt_diff("one", "a", &bw);
  CHECK(d >= 0 && d < 1e-5, "2 ranks then 1 vs 1 all along: %.3g", d);
  check_terms("one", "a", 1e-5);
  CHECK(sh("%s " TRAIN " --steps 30 --out b", one) == 0, "1 process to 30");
  CHECK(sh("%s train --resume b --steps 50 --quiet", mpirun) == 0, "2 ranks from 30 to 50");
  d = ckpt_diff("one", "b", &bw);
  CHECK(d >= 0 && d < 1e-5, "1 process then 2 ranks vs 1 all along: %.3g", d);

  T_CASE("refusals");
  CHECK(sh("%s train --data physics --arch mlp --hidden 64 --model tcvae --steps 5 --out tc 2>%s/err", mpirun, tmp) == 1,
        "tcvae on 2 ranks: exit 1");
  CHECK(sh("grep -q 'cannot train data-parallel' %s/err", tmp) == 0, "the message says why");
  CHECK(!exists("%s/%s", "tc"), "nothing written for tcvae");
  CHECK(sh("%s train --data physics --arch mlp --batch 63 --steps 5 --out odd 2>/dev/null", mpirun) == 1,
        "batch 63 on 2 ranks: exit 1");
  CHECK(!exists("%s/%s", "odd"), "nothing written for batch 63");
  CHECK(sh("%s info one >/dev/null 2>&1", mpirun) == 1, "knobs info on 2 ranks: exit 1");

  T_CASE("sweep over ranks");
  CHECK(sh("%s sweep --grid 'seed=0..3' --data physics --steps 20 --no-eval --out sw -- --arch mlp --hidden 64 --batch 64 "
           ">%s/sweep.out 2>&1", mpirun, tmp) == 0, "mpirun -np 2 knobs sweep");
  CHECK(sh("grep -c '\"state\":.*\"done\"' %s/sw/sweep.json | grep -qx 4", tmp) == 0, "4 runs done");
  CHECK(sh("grep -q '(rank 1)' %s/sweep.out", tmp) == 0, "rank 1 trained some of them");
  CHECK(sh("%s train --data physics --arch mlp --hidden 64 --batch 64 --seed 2 --steps 20 --threads 1 --quiet --out direct", one) == 0,
        "the direct run");
  d = ckpt_diff("direct", "sw/betavae-seed2", &bw);
  CHECK(d == 0 && bw, "a sweep's run is the bytes of the same knobs train (diff %.3g)", d);

  sh("rm -rf %s", tmp);
  return t_done();
}
