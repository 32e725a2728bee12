/* bench_metrics.c: time every array metric at N = 10000, D = 10, K = 5 (dSprites' factor sizes
 * 3, 6, 40, 32, 32) on 2 threads, and the reference-equivalent Python (NumPy/scikit-learn, as
 * disentanglement_lib computes them) on the same arrays, and print a table with the ratio.
 * The Python side is skipped with a message if /usr/bin/python3 lacks scikit-learn; its DCI
 * (minutes) is skipped when KNOBS_BENCH_FAST is set. beta_vae and factor_vae are timed in
 * their array form (resampled rows): on a dataset their cost is encoding, ~1.9 M and ~1 M
 * images, reported by `knobs eval` as images/s.
 * With N (and optionally metric names) it times only knobs' metrics on N rows of the same
 * synthetic codes and prints CSV lines "metric,n,seconds,cpu_seconds" (the scaling plot of
 * bench/plots.sh).
 * usage: bench_metrics [THREADS [N [METRIC ...]]]   (run by bench/run.sh) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/core.h"

static const char *py_src =
    "import sys, time, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "import numpy as np, scipy, scipy.linalg\n"
    "from scipy.special import logsumexp\n"
    "from sklearn.metrics import mutual_info_score, roc_auc_score\n"
    "from sklearn.ensemble import GradientBoostingClassifier\n"
    "from sklearn.svm import LinearSVC\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.preprocessing import MultiLabelBinarizer\n"
    "d = sys.argv[1]; which = sys.argv[2]\n"
    "z = np.load(d + '/codes.npy'); f = np.load(d + '/factors.npy'); lv = np.load(d + '/logvar.npy')\n"
    "N = z.shape[0]; ntr = int(np.ceil(N * 0.9))\n"
    "mus, ys = z.T, f.T; mtr, mte, ytr, yte = z[:ntr].T, z[ntr:].T, f[:ntr].T, f[ntr:].T\n"
    "def disc(t):\n"
    "  o = np.zeros_like(t)\n"
    "  for i in range(t.shape[0]): o[i] = np.digitize(t[i], np.histogram(t[i], 20)[1][:-1])\n"
    "  return o\n"
    "def dmi(a, b): return np.array([[mutual_info_score(b[j], a[i]) for j in range(b.shape[0])] for i in range(a.shape[0])])\n"
    "t0 = time.time()\n"
    "if which == 'mig':\n"
    "  m = dmi(disc(mus), ys); h = np.array([mutual_info_score(y, y) for y in ys]); s = np.sort(m, 0)[::-1]\n"
    "  v = np.mean((s[0] - s[1]) / h)\n"
    "elif which == 'modularity':\n"
    "  m = dmi(disc(mus), ys) ** 2; mx = m.max(1); v = np.mean(1 - (m.sum(1) - mx) / (mx * (m.shape[1] - 1)))\n"
    "elif which == 'unsupervised':\n"
    "  c = np.cov(mus); tc = 0.5 * (np.sum(np.log(np.diag(c))) - np.linalg.slogdet(c)[1])\n"
    "  w = 2 * np.trace(c) - 2 * np.trace(scipy.linalg.sqrtm(c * np.diag(c)[:, None])); dd = disc(mus); m = dmi(dd, dd)\n"
    "  np.fill_diagonal(m, 0); v = tc\n"
    "elif which == 'irs':\n"
    "  g = disc(ys).T; lat = mus[mus.var(1) > 0].T; md = np.max(np.abs(lat - lat.mean(0)), 0); cum = np.zeros([lat.shape[1], g.shape[1]])\n"
    "  for i in range(g.shape[1]):\n"
    "    u = np.unique(g[:, i])\n"
    "    for k in u:\n"
    "      mt = g[:, i] == k; cum[:, i] += np.quantile(np.abs(lat[mt] - lat[mt].mean(0)), 0.99, axis=0)\n"
    "    cum[:, i] /= len(u)\n"
    "  v = np.average((1 - cum / md[:, None]).max(1), weights=md)\n"
    "elif which == 'sap':\n"
    "  S = np.zeros([mtr.shape[0], ytr.shape[0]])\n"
    "  for i in range(mtr.shape[0]):\n"
    "    for j in range(ytr.shape[0]):\n"
    "      c = LinearSVC(C=0.01, class_weight='balanced').fit(mtr[i][:, None], ytr[j]); S[i, j] = np.mean(c.predict(mte[i][:, None]) == yte[j])\n"
    "  s = np.sort(S, 0); v = np.mean(s[-1] - s[-2])\n"
    "elif which == 'explicitness':\n"
    "  mu, sd = mtr.mean(1), mtr.std(1); xtr = ((mtr - mu[:, None]) / sd[:, None]).T; xte = ((mte - mu[:, None]) / sd[:, None]).T; r = []\n"
    "  for i in range(ytr.shape[0]):\n"
    "    c = LogisticRegression().fit(xtr, ytr[i]); r.append(roc_auc_score(MultiLabelBinarizer().fit_transform(yte[i][:, None]), c.predict_proba(xte)))\n"
    "  v = np.mean(r)\n"
    "elif which == 'dci':\n"
    "  for i in range(ytr.shape[0]):\n"
    "    m = GradientBoostingClassifier().fit(mtr.T, ytr[i]); m.predict(mte.T)\n"
    "  v = 0\n"
    "elif which == 'mig_sampled':\n"
    "  rng = np.random.RandomState(0); zs = z + np.exp(0.5 * lv) * rng.randn(*z.shape)\n"
    "  def ent(rows):\n"
    "    h = np.zeros(z.shape[1])\n"
    "    for s0 in range(0, len(rows), 200):\n"
    "      x = zs[rows[s0:s0 + 200]][:, None, :]; lq = -0.5 * (np.log(2 * np.pi) + lv[rows][None]) - 0.5 * (x - z[rows][None]) ** 2 / np.exp(lv[rows][None])\n"
    "      h -= np.sum(logsumexp(lq, axis=1) - np.log(len(rows)), 0)\n"
    "    return h / len(rows)\n"
    "  hm = ent(np.arange(N)); g = []\n"
    "  for k in range(f.shape[1]):\n"
    "    hc = sum(np.mean(f[:, k] == u) * ent(np.where(f[:, k] == u)[0]) for u in np.unique(f[:, k])); mi = np.sort(hm - hc)[::-1].clip(0)\n"
    "    g.append((mi[0] - mi[1]) / np.log(len(np.unique(f[:, k]))))\n"
    "  v = np.mean(g)\n"
    "print('%.6f %.6g' % (time.time() - t0, v))\n";

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
         1e-6 * (double)u.ru_stime.tv_usec;
}

static int write_npy(const char *path, knobs_dtype t, int64_t n, int64_t d, const void *data) {
  knobs_array a = {t, 2, {n, d}, (void *)data};
  return knobs_npy_write(path, &a) != KNOBS_OK;
}

enum { D = 10, K = 5 };

/* N rows of codes that mix informative, entangled, noise and collapsed dimensions, their
 * log-variances and dSprites-sized factors (seed 42: the same rows for every N's prefix). */
static void make_data(int N, float *z, float *lv, int64_t *f) {
  static const int sizes[K] = {3, 6, 40, 32, 32};
  kn_rng r;
  kn_rng_seed(&r, 42, 0);
  for (int i = 0; i < N; i++) {
    int64_t *fi = f + (size_t)i * K;
    for (int k = 0; k < K; k++) fi[k] = kn_rng_below(&r, (uint32_t)sizes[k]);
    float *zi = z + (size_t)i * D, *li = lv + (size_t)i * D;
    double e[D];
    for (int j = 0; j < D; j++) e[j] = kn_rng_normal(&r);
    zi[0] = (float)(fi[3] / 40.0 * 2 + 0.05 * e[0]);
    zi[1] = (float)(fi[4] / 32.0 * 2 + 0.05 * e[1]);
    zi[2] = (float)(fi[2] / 40.0 + 0.3 * fi[1] / 6.0 + 0.1 * e[2]);
    zi[3] = (float)(tanh(fi[0] - 1.0) + 0.1 * e[3]);
    zi[4] = (float)(fi[1] / 6.0 + 0.1 * e[4]);
    zi[5] = (float)(0.5 * zi[0] + 0.5 * zi[1] + 0.2 * e[5]);
    for (int j = 6; j < 9; j++) zi[j] = (float)e[j];
    zi[9] = (float)(1e-3 * e[9]);
    for (int j = 0; j < D; j++) li[j] = (float)(j < 6 ? log(0.01 + 0.05 * kn_rng_uniform(&r)) : -0.01 * kn_rng_uniform(&r));
  }
}

/* Best wall time of up to 3 runs of one metric (the machine is shared), fewer once a run takes
 * over `enough` seconds; its CPU time to *cpu and the score `head` of the result to *v.
 * Returns a negative time, after printing why, if the metric failed. */
static double time_metric(const knobs_array *codes, const knobs_array *fac, const knobs_array *lva, const char *name,
                          const char *head, int threads, double enough, double *cpu, double *v) {
  knobs_metrics_opts o;
  knobs_metrics_opts_default(&o);
  o.threads = threads;
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    knobs_result *res = NULL;
    double t0 = kn_now(), c0 = cpu_seconds();
    knobs_status s = knobs_metrics_arrays(codes, fac, !strcmp(name, "mig_sampled") ? lva : NULL, name, &o, &res);
    double t = kn_now() - t0, ct = cpu_seconds() - c0;
    if (s) {
      printf("%-14s failed: %s\n", name, knobs_last_error());
      return -1;
    }
    if (head) knobs_result_get(res, head, v);
    knobs_result_free(res);
    if (t < best) best = t, *cpu = ct;
    if (best > enough) break;
  }
  return best;
}

/* The scaling mode: knobs only, N rows, the metrics named (all of `names` if none), CSV out;
 * best of 3 runs, or of fewer once a run takes over a second. */
static int scale(int threads, int N, int nm, char **want, const char *const *names, int nnames) {
  float *z = malloc(sizeof(float) * (size_t)N * D), *lv = malloc(sizeof(float) * (size_t)N * D);
  int64_t *f = malloc(sizeof(int64_t) * (size_t)N * K);
  if (!z || !lv || !f) {
    fprintf(stderr, "bench_metrics: out of memory for N = %d\n", N);
    return 2;
  }
  make_data(N, z, lv, f);
  knobs_array codes = {KNOBS_F32, 2, {N, D}, z}, fac = {KNOBS_I64, 2, {N, K}, f}, lva = {KNOBS_F32, 2, {N, D}, lv};
  int fail = 0;
  for (int m = 0; m < (nm ? nm : nnames); m++) {
    const char *name = nm ? want[m] : names[m];
    double cpu = 0, v = 0, t = time_metric(&codes, &fac, &lva, name, NULL, threads, 1, &cpu, &v);
    if (t < 0) fail = 1;
    else printf("%s,%d,%.6f,%.6f\n", name, N, t, cpu);
    fflush(stdout);
  }
  free(z), free(lv), free(f);
  return fail;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  const char *names[] = {"mig", "modularity", "unsupervised", "irs", "sap", "explicitness", "dci", "mig_sampled",
                         "beta_vae", "factor_vae"};
  const int nnames = (int)(sizeof names / sizeof *names);
  if (argc > 2) {
    int n = atoi(argv[2]);
    if (n < 100 || threads < 1) {
      fprintf(stderr, "usage: bench_metrics [THREADS [N [METRIC ...]]]   (N >= 100)\n");
      return 1;
    }
    return scale(threads, n, argc - 3, argv + 3, names, nnames);
  }
  enum { N = 10000 };
  float *z = malloc(sizeof(float) * N * D), *lv = malloc(sizeof(float) * N * D);
  int64_t *f = malloc(sizeof(int64_t) * N * K);
  make_data(N, z, lv, f);
  knobs_array codes = {KNOBS_F32, 2, {N, D}, z}, fac = {KNOBS_I64, 2, {N, K}, f}, lva = {KNOBS_F32, 2, {N, D}, lv};

  char dir[] = "/tmp/knobs-bench-metrics-XXXXXX", path[512];
  int have_py = mkdtemp(dir) != NULL;
  if (have_py) {
    snprintf(path, sizeof path, "%s/codes.npy", dir);
    have_py = !write_npy(path, KNOBS_F32, N, D, z);
    snprintf(path, sizeof path, "%s/factors.npy", dir);
    have_py = have_py && !write_npy(path, KNOBS_I64, N, K, f);
    snprintf(path, sizeof path, "%s/logvar.npy", dir);
    have_py = have_py && !write_npy(path, KNOBS_F32, N, D, lv);
    snprintf(path, sizeof path, "%s/ref.py", dir);
    FILE *pf = fopen(path, "w");
    have_py = have_py && pf && fputs(py_src, pf) >= 0;
    if (pf) fclose(pf);
  }
  if (have_py && system("/usr/bin/python3 -c 'import sklearn, scipy' 2>/dev/null") != 0) {
    printf("(/usr/bin/python3 with scikit-learn is absent: Python columns skipped; apt-get install python3-sklearn)\n");
    have_py = 0;
  }
  int fast = getenv("KNOBS_BENCH_FAST") != NULL;
  printf("metrics on N=%d, D=%d, K=%d (factor sizes 3,6,40,32,32), %d threads; seconds (lower is better)\n", N, D, K, threads);
  printf("%-14s %10s %10s %12s %10s %9s\n", "metric", "knobs s", "cpu s", "score", "python s", "speedup");
  const char *head[] = {"mig.discrete_mig", "modularity.modularity_score", "unsupervised.gaussian_total_correlation",
                        "irs.IRS", "sap.SAP_score", "explicitness.explicitness_score_test", "dci.disentanglement",
                        "mig_sampled.mig_sampled", "beta_vae.eval_accuracy", "factor_vae.eval_accuracy"};
  int fail = 0;
  for (int m = 0; m < nnames; m++) {
    double bcpu = 0, v = 0, best = time_metric(&codes, &fac, &lva, names[m], head[m], threads, 5, &bcpu, &v);
    if (best < 0) {
      fail = 1;
      continue;
    }
    char py[32] = "-", ratio[32] = "-";
    int skip_py = !have_py || !strncmp(names[m], "beta_vae", 8) || !strncmp(names[m], "factor_vae", 10) ||
                  (fast && !strcmp(names[m], "dci"));
    if (!skip_py) {
      char cmd[1024], line[256] = "";
      snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/ref.py %s %s", dir, dir, names[m]);
      FILE *p = popen(cmd, "r");
      if (p && fgets(line, sizeof line, p)) {
        double pt = atof(line);
        snprintf(py, sizeof py, "%.3f", pt);
        snprintf(ratio, sizeof ratio, "%.0fx", pt / best);
      }
      if (p) pclose(p);
    }
    printf("%-14s %10.3f %10.3f %12.5g %10s %9s\n", names[m], best, bcpu, v, py, ratio);
    fflush(stdout);
  }
  printf("(knobs s: wall time, best of 3; cpu s: CPU time of all threads in that run)\n");
  if (!have_py) printf("(no Python timings)\n");
  else if (fast) printf("(KNOBS_BENCH_FAST: the Python DCI, minutes long, was skipped)\n");
  printf("(beta_vae, factor_vae: array form, batches resampled from the rows; no Python equivalent)\n");
  snprintf(path, sizeof path, "rm -rf %s", dir);
  if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
  free(z), free(lv), free(f);
  return fail;
}
