/* cmd_ica.c: `knobs ica`: FastICA (knobs_ica, scikit-learn's definition) on the observations of
 * any dataset knobs opens, as the linear baseline beside the models:
 *   knobs ica --data physics --k 3 --out ica/ [--seed S] [--n N] [--max-iter 200] [--tol 1e-4]
 * writes DIR/sources.npy (n,k), unmixing.npy (k,d), mixing.npy (d,k), mean.npy (d),
 * kurtosis.npy (k) (float64) and ica.json, all or none; prints each component's excess kurtosis,
 * and with ground-truth factors the MCC of the sources against the factor values (and the Amari
 * index when the true mixing is known: the dataset's, or --mixing A.npy). Warns, naming them,
 * when two or more components are near-Gaussian (their rotation is not identifiable), and when
 * the iteration did not converge (not an error: the outputs are written). Which rows: a user's
 * file gives every row in order; a built-in dataset, or a file with --n, gives N drawn with
 * --seed (which also seeds physics' mixing and the w_init). It decides nothing itself: the
 * numbers come from the library. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#define NEAR_GAUSSIAN 0.1 /* |excess kurtosis| below this: indistinguishable from a Gaussian */

typedef struct {
  const char *data, *out, *factors, *factor_dist, *mixing;
  int k, n, max_iter, obs_dim;
  double tol, noise;
  uint64_t seed;
} ica_flags;

/* The observations (n,d) as double and, with factors, their values (n,K) (NULL without). */
typedef struct {
  int n, d, K;
  double *X, *values;
} ica_rows;

static int read_rows(const char *cmd, knobs_data *dd, const ica_flags *f, int whole, ica_rows *r) {
  const knobs_data_info *in = knobs_data_info_get(dd);
  int64_t n64 = whole ? in->n : f->n, d64 = (int64_t)in->C * in->H * in->W;
  if (n64 > 100000000 || d64 * n64 > ((int64_t)1 << 34))
    return cli_fail(cmd, "%s: %lld rows of %lld values are too many (use --n to draw fewer)", in->name, (long long)n64,
                    (long long)d64);
  r->n = (int)n64, r->d = (int)d64, r->K = in->K;
  float *x = malloc(sizeof(float) * (size_t)r->n * r->d);
  int32_t *cls = malloc(sizeof(int32_t) * (size_t)r->n * (r->K ? r->K : 1));
  int64_t *idx = whole ? malloc(sizeof(int64_t) * (size_t)r->n) : NULL;
  r->X = malloc(sizeof(double) * (size_t)r->n * r->d);
  r->values = r->K ? malloc(sizeof(double) * (size_t)r->n * r->K) : NULL;
  int rc = 0;
  if (!x || !cls || (whole && !idx) || !r->X || (r->K && !r->values)) {
    rc = cli_fail(cmd, "cannot allocate %d rows of %d values", r->n, r->d);
    goto out;
  }
  knobs_status s;
  if (whole) { /* every row of the file, in order; the values of its factor classes */
    for (int i = 0; i < r->n; i++) idx[i] = i;
    s = knobs_data_get(dd, idx, r->n, x, r->K ? cls : NULL);
    for (size_t q = 0; !s && q < (size_t)r->n * r->K; q++)
      r->values[q] = knobs_data_factor_value(dd, (int)(q % (size_t)r->K), cls[q]);
  } else {
    s = knobs_data_draw_values(dd, r->n, f->seed, 0, x, r->K ? cls : NULL, r->values);
  }
  if (s) {
    rc = cli_lib_fail(cmd, "cannot read the data");
    goto out;
  }
  for (size_t q = 0; q < (size_t)r->n * r->d; q++) r->X[q] = x[q];
out:
  free(x), free(cls), free(idx);
  return rc;
}

/* The true mixing A (d,k), from --mixing or the dataset; 1 if there is one (0 if none, -1
 * after a reported failure). */
static int true_mixing(const char *cmd, knobs_data *dd, const ica_flags *f, int d, int k, double *A) {
  if (!f->mixing) {
    const knobs_data_info *in = knobs_data_info_get(dd);
    if (in->K != k || in->C * in->H * in->W != d) return 0;
    knobs_status s = knobs_data_mixing(dd, A);
    if (s) knobs_clear_error();
    return s ? 0 : 1;
  }
  knobs_array a = {0}, a64 = {0};
  if (knobs_npy_read(f->mixing, &a)) return cli_lib_fail(cmd, "cannot read --mixing"), -1;
  int ok = a.ndim == 2 && a.shape[0] == d && a.shape[1] == k && !knobs_array_convert(&a, KNOBS_F64, &a64);
  if (ok) memcpy(A, a64.data, sizeof(double) * (size_t)d * k);
  else cli_fail(cmd, "--mixing %s: expected the true mixing A of shape (%d, %d) (channels, components)", f->mixing, d, k);
  knobs_array_free(&a), knobs_array_free(&a64);
  return ok ? 1 : -1;
}

/* Scores against the ground truth: MCC (with its matching) and the Amari index. */
typedef struct {
  int have_mcc, have_amari;
  double mcc, amari;
  int match[KNOBS_MAX_FACTORS], sign[KNOBS_MAX_FACTORS];
  double pair[KNOBS_MAX_FACTORS];
} ica_scores;

static int score(const char *cmd, knobs_data *dd, const ica_flags *f, const ica_rows *rw, const knobs_ica_result *r,
                 ica_scores *sc) {
  memset(sc, 0, sizeof *sc);
  int k = r->k, K = rw->K;
  if (K > 0) {
    double *corr = malloc(sizeof(double) * (size_t)k * K);
    knobs_status s = corr ? knobs_correlations(r->sources, rw->values, r->n, k, K, 0, corr) : KNOBS_ERR_NOMEM;
    if (!s) s = knobs_mcc(corr, k, K, sc->match, &sc->mcc);
    for (int j = 0; !s && j < K; j++) {
      sc->pair[j] = sc->match[j] < 0 ? 0 : corr[(size_t)sc->match[j] * K + j];
      sc->sign[j] = sc->match[j] < 0 ? 0 : sc->pair[j] < 0 ? -1 : 1;
    }
    free(corr);
    if (s) return cli_lib_fail(cmd, "cannot score the sources against the factors");
    sc->have_mcc = 1;
  }
  double *A = malloc(sizeof(double) * (size_t)r->d * k);
  int have = A ? true_mixing(cmd, dd, f, r->d, k, A) : -1;
  if (have > 0 && knobs_amari_index(r->unmixing, A, k, r->d, &sc->amari)) {
    fprintf(stderr, "knobs: %s: note: no Amari index: %s\n", cmd, knobs_last_error());
    have = 0;
  }
  free(A);
  if (have < 0) return 2;
  sc->have_amari = have;
  return 0;
}

/* The near-Gaussian components (|excess kurtosis| < NEAR_GAUSSIAN) into list (k); their count. */
static int near_gaussian(const knobs_ica_result *r, int *list) {
  int n = 0;
  for (int i = 0; i < r->k; i++)
    if (fabs(r->kurtosis[i]) < NEAR_GAUSSIAN) list[n++] = i;
  return n;
}

static void print_report(const char *cmd, const knobs_data_info *in, const ica_flags *f, const knobs_ica_result *r,
                         const ica_scores *sc, const int *ng, int nng) {
  printf("%s: %d rows of %d channels, %d components: %s after %d iteration%s (change %.3g, tol %g)\n", in->name, r->n,
         r->d, r->k, r->converged ? "converged" : "NOT converged", r->iterations, r->iterations == 1 ? "" : "s",
         r->change, f->tol);
  printf("\n%9s %16s%s\n", "component", "excess kurtosis", sc->have_mcc ? "   factor               corr" : "");
  for (int i = 0; i < r->k; i++) {
    printf("%9d %16.4f", i, r->kurtosis[i]);
    for (int j = 0; sc->have_mcc && j < in->K; j++)
      if (sc->match[j] == i) printf("   %-18s %+.4f", in->factor_names[j], sc->pair[j]);
    printf("%s\n", fabs(r->kurtosis[i]) < NEAR_GAUSSIAN ? "   (near-Gaussian)" : "");
  }
  if (sc->have_mcc)
    printf("\nMCC %.4f: mean |Pearson correlation| of the sources and the true factor values, matched one to one\n",
           sc->mcc);
  if (sc->have_amari)
    printf("Amari index %.4f of unmixing x %s (0: the true sources up to scale and order)\n", sc->amari,
           f->mixing ? f->mixing : "the dataset's mixing A");
  if (!r->converged)
    fprintf(stderr, "knobs: %s: warning: FastICA did not converge in %d iterations (last change %.3g > tol %g): raise "
            "--max-iter or --tol; the outputs are written as they are\n", cmd, r->iterations, r->change, f->tol);
  if (nng >= 2) {
    char list[256] = "";
    size_t u = 0;
    for (int i = 0; i < nng && u < sizeof list - 16; i++)
      u += (size_t)snprintf(list + u, sizeof list - u, "%s%d", i ? (i + 1 == nng ? " and " : ", ") : "", ng[i]);
    fprintf(stderr, "knobs: %s: warning: components %s are near-Gaussian (|excess kurtosis| < %g): their rotation is "
            "not identifiable, by ICA or by any VAE; only the subspace they span is\n", cmd, list, NEAR_GAUSSIAN);
  }
}

/* ica.json: the settings, the fit and the scores. */
static char *report_json(const knobs_data_info *in, const ica_flags *f, const knobs_ica_result *r,
                         const ica_scores *sc, const int *ng, int nng) {
  size_t cap = 4096 + (size_t)r->k * 64 + (size_t)nng * 8 + (size_t)in->K * 200;
  char *j = malloc(cap), name[160];
  if (!j) return NULL;
  size_t u = 0;
#define PUT(...) u += (size_t)snprintf(j + u, u < cap ? cap - u : 0, __VA_ARGS__)
  PUT("{\n  \"knobs_version\": \"%s\",\n  \"command\": \"ica\",\n  \"data\": %s,\n", knobs_version(),
      cli_json_str(name, sizeof name, in->name));
  PUT("  \"n\": %d,\n  \"d\": %d,\n  \"k\": %d,\n  \"seed\": %llu,\n  \"max_iter\": %d,\n  \"tol\": %.17g,\n", r->n, r->d,
      r->k, (unsigned long long)f->seed, f->max_iter, f->tol);
  PUT("  \"algorithm\": \"FastICA as scikit-learn 1.2: whiten='unit-variance', algorithm='parallel', fun='logcosh'\",\n");
  PUT("  \"w_init\": \"standard normal from knobs' rng with the seed (not NumPy's RandomState)\",\n");
  PUT("  \"iterations\": %d,\n  \"converged\": %s,\n  \"change\": %.17g,\n  \"kurtosis\": [", r->iterations,
      r->converged ? "true" : "false", r->change);
  for (int i = 0; i < r->k; i++) PUT("%s%.17g", i ? ", " : "", r->kurtosis[i]);
  PUT("],\n  \"near_gaussian\": [");
  for (int i = 0; i < nng; i++) PUT("%s%d", i ? ", " : "", ng[i]);
  PUT("]");
  if (sc->have_mcc) {
    PUT(",\n  \"mcc\": {\"score\": %.17g, \"correlation\": \"pearson\", \"factors\": [", sc->mcc);
    for (int q = 0; q < in->K; q++) PUT("%s%s", q ? ", " : "", cli_json_str(name, sizeof name, in->factor_names[q]));
    PUT("],\n    \"matching\": [");
    for (int q = 0; q < in->K; q++) PUT("%s%d", q ? ", " : "", sc->match[q]);
    PUT("], \"signs\": [");
    for (int q = 0; q < in->K; q++) PUT("%s%d", q ? ", " : "", sc->sign[q]);
    PUT("], \"pair_correlation\": [");
    for (int q = 0; q < in->K; q++) PUT("%s%.17g", q ? ", " : "", sc->pair[q]);
    PUT("]}");
  }
  if (sc->have_amari)
    PUT(",\n  \"amari_index\": %.17g,\n  \"amari_mixing\": %s", sc->amari,
        cli_json_str(name, sizeof name, f->mixing ? f->mixing : "the dataset's mixing"));
  PUT("\n}\n");
#undef PUT
  if (u >= cap) {
    free(j);
    return NULL;
  }
  return j;
}

/* The six files into dir (created if missing), together or not at all. */
static int write_outputs(const char *cmd, const char *dir, const knobs_ica_result *r, const char *json) {
  int made, rc = cli_out_dir(cmd, dir, &made);
  if (rc) return rc;
  struct {
    const char *name;
    int ndim;
    int64_t s0, s1;
    double *data;
  } f[5] = {{"sources.npy", 2, r->n, r->k, r->sources}, {"unmixing.npy", 2, r->k, r->d, r->unmixing},
            {"mixing.npy", 2, r->d, r->k, r->mixing}, {"mean.npy", 1, r->d, 0, r->mean},
            {"kurtosis.npy", 1, r->k, 0, r->kurtosis}};
  cli_outputs outs = {0};
  char path[1024];
  for (int i = 0; i < 5 && !rc; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, f[i].name);
    const char *tmp = cli_out_add(&outs, path);
    knobs_array a = {.dtype = KNOBS_F64, .ndim = f[i].ndim, .shape = {f[i].s0, f[i].s1}, .data = f[i].data};
    if (!tmp) rc = cli_usage_error(cmd, "--out %s: the path is too long", dir);
    else if (knobs_npy_write(tmp, &a)) rc = cli_lib_fail(cmd, "cannot write the outputs (nothing written)");
  }
  snprintf(path, sizeof path, "%s/ica.json", dir);
  if (!rc) rc = cli_out_text(cmd, &outs, path, json);
  if (!rc) rc = cli_out_commit(cmd, &outs);
  else cli_out_abort(&outs);
  if (rc && made) rmdir(dir);
  return rc;
}

int cmd_ica(int argc, char **argv) {
  const char *cmd = "ica";
  ica_flags f = {.n = 10000, .max_iter = 200, .tol = 1e-4, .noise = -1};
  cli_opt o[] = {
      {"--data", OPT_STR, &f.data, 0, 0, "D", "dataset: built-in name or file (.npy, .csv, ...); a file is used whole", 0},
      {"--k", OPT_INT, &f.k, 1, 16384, "K", "independent components (at most the channels)", 0},
      {"--out", OPT_STR, &f.out, 0, 0, "DIR", "folder for sources/unmixing/mixing/mean/kurtosis .npy and ica.json", 0},
      {"--seed", OPT_U64, &f.seed, 0, 0, "S", "seed of the draw, the w_init and physics' mixing", 0},
      {"--n", OPT_INT, &f.n, 2, 100000000, "N", "rows to draw (a file: all rows unless given)", 0},
      {"--max-iter", OPT_INT, &f.max_iter, 1, 100000000, "N", "FastICA iterations at most", 0},
      {"--tol", OPT_DOUBLE, &f.tol, 0, 1e300, "X", "convergence tolerance", 0},
      {"--mixing", OPT_STR, &f.mixing, 0, 0, "PATH", "true mixing A (d,k) .npy: print the Amari index", 0},
      {"--data-factors", OPT_STR, &f.factors, 0, 0, "FILE", "factors/labels of user data (.npy, .csv)", 0},
      {"--obs-dim", OPT_INT, &f.obs_dim, 0, 4096, "N", "physics: observed channels (0: 10)", 0},
      {"--noise", OPT_DOUBLE, &f.noise, -1, 100, "X", "physics: relative noise (-1: 0.05)", 0},
      {"--factor-dist", OPT_STR, &f.factor_dist, 0, 0, "D", "physics: uniform | laplace | gauss", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int rc = cli_parse(cmd, "--data D --k K --out DIR [options]", argc, argv, o, no, NULL, 0, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  if (!f.data) return cli_usage_error(cmd, "--data D is required");
  if (!f.k) return cli_usage_error(cmd, "--k K is required");
  if (!f.out) return cli_usage_error(cmd, "--out DIR is required");
  knobs_data_opts dopt;
  knobs_data_opts_default(&dopt);
  dopt.seed = f.seed, dopt.factors = f.factors, dopt.obs_dim = f.obs_dim, dopt.noise = f.noise;
  dopt.factor_dist = f.factor_dist;
  knobs_data *dd = NULL;
  if (knobs_data_open(f.data, &dopt, &dd)) return cli_lib_fail(cmd, "cannot open the data");
  const knobs_data_info *in = knobs_data_info_get(dd);
  if (in->note[0]) fprintf(stderr, "knobs: %s: note: %s\n", cmd, in->note);
  if (f.k > in->C * in->H * in->W) {
    rc = cli_usage_error(cmd, "--k %d: %s has %d channel%s, and ICA finds at most one component per channel", f.k,
                         in->name, in->C * in->H * in->W, in->C * in->H * in->W == 1 ? "" : "s");
    knobs_data_free(dd);
    return rc;
  }
  ica_rows rw = {0};
  knobs_ica_result *r = NULL;
  char *json = NULL;
  ica_scores sc;
  int *ng = NULL, nng = 0;
  if ((rc = read_rows(cmd, dd, &f, cli_data_is_file(f.data) && !cli_find(o, no, "--n")->seen, &rw))) goto out;
  knobs_ica_opts io;
  knobs_ica_opts_default(&io);
  io.k = f.k, io.max_iter = f.max_iter, io.tol = f.tol, io.seed = f.seed;
  if (knobs_ica(rw.X, rw.n, rw.d, &io, &r)) {
    rc = cli_lib_fail(cmd, "FastICA failed");
    goto out;
  }
  if ((rc = score(cmd, dd, &f, &rw, r, &sc))) goto out;
  if ((ng = malloc(sizeof(int) * (size_t)r->k))) nng = near_gaussian(r, ng);
  json = ng ? report_json(in, &f, r, &sc, ng, nng) : NULL;
  if (!json) {
    rc = cli_fail(cmd, "cannot format ica.json");
    goto out;
  }
  if ((rc = write_outputs(cmd, f.out, r, json))) goto out;
  print_report(cmd, in, &f, r, &sc, ng, nng);
  fprintf(stderr, "wrote %s/: sources.npy (%d x %d), unmixing.npy, mixing.npy, mean.npy, kurtosis.npy, ica.json\n", f.out,
          r->n, r->k);
out:
  free(json), free(ng);
  knobs_ica_result_free(r);
  free(rw.X), free(rw.values);
  knobs_data_free(dd);
  return rc;
}
