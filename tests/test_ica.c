/* test_ica.c: FastICA (src/metrics/ica.c) and the metrics of continuous factors (mcc.c):
 *  - FastICA against scikit-learn 1.2 (tests/ref/ica_ref.json, made by tests/ref/make_ica_ref.py)
 *    with the reference's w_init: a tall, a square and a wide (n < d) matrix and a fit stopped
 *    after 3 iterations: the sources up to sign and order to 1e-4 (and, since the whitening signs
 *    and the iteration are sklearn's, in sklearn's order and signs), the unmixing and mixing
 *    matrices, the mean, the excess kurtosis, the iteration count and the convergence flag;
 *  - what holds for any fit: unit-variance sources, sources = (X - mean) unmixing^T, unmixing
 *    mixing = I; knobs' own w_init (the same fixed point as sklearn's, the same bits for the
 *    same seed); physics: ICA recovers uniform factors (MCC > 0.98, Amari < 0.05) and finds
 *    Gaussian ones Gaussian (|excess kurtosis| < 0.1);
 *  - the refusals: k > d, k < 0, n < k, NaN, Inf, rank below k, max_iter 0;
 *  - the linear sum assignment against scipy's linear_sum_assignment (square, wide, tall,
 *    minimised and maximised) and against brute force over every permutation;
 *  - correlations (Pearson; Spearman with ties) and the matching against NumPy/scipy; MCC of a
 *    permuted, sign-flipped, scaled copy is 1 (directly and through knobs_metrics_arrays,
 *    in sample and out of sample); continuous factors refused for the class metrics;
 *  - the Amari index against NumPy, 0 for W = A^-1 and for a scaled permutation of it, in (0,1]
 *    for random W, through the metric options (.npy files), and its refusals. */
#include <cjson/cJSON.h>
#include <float.h>
#include <unistd.h>

#include "core/core.h"
#include "io/io.h"
#include "t.h"
#include "ref_json.h"

#define REF_JSON "tests/ref/ica_ref.json"

/* ---- reading the reference ------------------------------------------------------------------ */
static cJSON *ref;

static const cJSON *jkey(const cJSON *o, const char *key) { return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL; }

static double jnum(const cJSON *o, const char *key) {
  const cJSON *v = jkey(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The numbers of array `key` of o, exactly n of them, in a new buffer (NULL otherwise). */
static double *jvec(const cJSON *o, const char *key, int n) {
  const cJSON *a = jkey(o, key), *e;
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return NULL;
  double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int i = 0;
  cJSON_ArrayForEach(e, a) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
  return v;
}

static int load_ref(void) {
  ref = t_ref_json(REF_JSON);
  return jnum(ref, "version") == 1;
}

/* ---- helpers ------------------------------------------------------------------------------ */
/* Pearson correlation of column a of x (n rows, stride sa) and column b of y (stride sb). */
static double col_corr(const double *x, int sa, const double *y, int sb, int n) {
  double ma = 0, mb = 0, ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; i++) ma += x[(size_t)i * sa], mb += y[(size_t)i * sb];
  ma /= n, mb /= n;
  for (int i = 0; i < n; i++) {
    double p = x[(size_t)i * sa] - ma, q = y[(size_t)i * sb] - mb;
    ab += p * q, aa += p * p, bb += q * q;
  }
  return ab / sqrt(aa * bb);
}

/* For each reference component j: the component perm[j] of got (n,k) and the sign sg[j] that
 * bring it nearest (largest |correlation|); returns the largest |got*sign - want| over all. */
static double match_sources(const double *got, const double *want, int n, int k, int *perm, int *sg) {
  double worst = 0;
  for (int j = 0; j < k; j++) {
    double best = -1;
    for (int i = 0; i < k; i++) {
      double c = col_corr(got + i, k, want + j, k, n);
      if (fabs(c) > best) best = fabs(c), perm[j] = i, sg[j] = c < 0 ? -1 : 1;
    }
    for (int s = 0; s < n; s++) {
      double d = fabs(sg[j] * got[(size_t)s * k + perm[j]] - want[(size_t)s * k + j]);
      worst = d > worst || isnan(d) ? d : worst;
    }
  }
  return worst;
}

static int is_permutation(const int *p, int k) {
  int seen[64] = {0};
  for (int j = 0; j < k; j++) {
    if (p[j] < 0 || p[j] >= k || seen[p[j]]) return 0;
    seen[p[j]] = 1;
  }
  return 1;
}

/* ---- FastICA against scikit-learn --------------------------------------------------------- */
static void test_ica_case(const char *name) {
  T_CASE(name);
  const cJSON *c = jkey(jkey(ref, "ica"), name);
  int n = (int)jnum(c, "n"), d = (int)jnum(c, "d"), k = (int)jnum(c, "k");
  double *X = jvec(c, "X", n * d), *w0 = jvec(c, "w_init", k * k), *S = jvec(c, "sources", n * k);
  double *U = jvec(c, "unmixing", k * d), *M = jvec(c, "mixing", d * k), *mean = jvec(c, "mean", d);
  double *kurt = jvec(c, "kurtosis", k);
  CHECK(X && w0 && S && U && M && mean && kurt && k <= 64, "reference case %s incomplete", name);
  if (!(X && w0 && S && U && M && mean && kurt && k <= 64)) goto done;
  knobs_ica_opts o;
  knobs_ica_opts_default(&o);
  o.k = k, o.max_iter = (int)jnum(c, "max_iter"), o.tol = jnum(c, "tol"), o.w_init = w0;
  knobs_ica_result *r = NULL;
  CHECK(knobs_ica(X, n, d, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (!r) goto done;
  CHECK(r->n == n && r->d == d && r->k == k, "shape %d %d %d", r->n, r->d, r->k);
  int perm[64], sg[64];
  double worst = match_sources(r->sources, S, n, k, perm, sg);
  CHECK(is_permutation(perm, k), "components do not match one to one");
  CHECK(worst <= 1e-4, "sources differ from scikit-learn's by %.3g (up to sign and order)", worst);
  int same_order = 1;
  for (int j = 0; j < k; j++) same_order &= perm[j] == j && sg[j] == 1;
  CHECK(same_order, "not in scikit-learn's order and signs (the whitening's sign convention?)");
  double wu = 0, wm = 0, wk = 0, wmean = 0;
  for (int j = 0; j < k && is_permutation(perm, k); j++) {
    for (int a = 0; a < d; a++) {
      double du = fabs(sg[j] * r->unmixing[(size_t)perm[j] * d + a] - U[(size_t)j * d + a]) / fmax(1, fabs(U[(size_t)j * d + a]));
      double dm = fabs(sg[j] * r->mixing[(size_t)a * k + perm[j]] - M[(size_t)a * k + j]) / fmax(1, fabs(M[(size_t)a * k + j]));
      wu = fmax(wu, du), wm = fmax(wm, dm);
    }
    wk = fmax(wk, fabs(r->kurtosis[perm[j]] - kurt[j]));
  }
  for (int a = 0; a < d; a++) wmean = fmax(wmean, fabs(r->mean[a] - mean[a]) / fmax(1, fabs(mean[a])));
  CHECK(wu <= 1e-4, "unmixing (components_) differs by %.3g", wu);
  CHECK(wm <= 1e-4, "mixing (mixing_) differs by %.3g", wm);
  CHECK(wk <= 1e-4, "excess kurtosis differs by %.3g", wk);
  CHECK(wmean <= 1e-12, "mean differs by %.3g", wmean);
  CHECK(r->iterations == (int)jnum(c, "n_iter"), "%d iterations, scikit-learn %d", r->iterations, (int)jnum(c, "n_iter"));
  CHECK(r->converged == cJSON_IsTrue(jkey(c, "converged")), "converged %d, scikit-learn %d", r->converged,
        cJSON_IsTrue(jkey(c, "converged")));
  CHECK(r->converged == (r->change < o.tol), "flag %d for change %g", r->converged, r->change);

  /* what holds for any fit */
  double wvar = 0, wrec = 0, wid = 0;
  for (int i = 0; i < k; i++) {
    double m = 0, v = 0;
    for (int s = 0; s < n; s++) m += r->sources[(size_t)s * k + i];
    m /= n;
    for (int s = 0; s < n; s++) v += (r->sources[(size_t)s * k + i] - m) * (r->sources[(size_t)s * k + i] - m);
    wvar = fmax(wvar, fmax(fabs(v / n - 1), fabs(m)));
    for (int s = 0; s < n; s++) {
      double y = 0;
      for (int a = 0; a < d; a++) y += (X[(size_t)s * d + a] - r->mean[a]) * r->unmixing[(size_t)i * d + a];
      wrec = fmax(wrec, fabs(y - r->sources[(size_t)s * k + i]));
    }
    for (int j = 0; j < k; j++) {
      double p = 0;
      for (int a = 0; a < d; a++) p += r->unmixing[(size_t)i * d + a] * r->mixing[(size_t)a * k + j];
      wid = fmax(wid, fabs(p - (i == j)));
    }
  }
  CHECK(wvar <= 1e-10, "sources not mean 0, variance 1 (off by %.3g)", wvar);
  CHECK(wrec <= 1e-9, "sources != (X - mean) unmixing^T (off by %.3g)", wrec);
  CHECK(wid <= 1e-9, "unmixing mixing != I (off by %.3g)", wid);
  knobs_ica_result_free(r);
done:
  free(X), free(w0), free(S), free(U), free(M), free(mean), free(kurt);
}

/* knobs' own w_init: a seeded normal draw; on data with a clear optimum it ends where
 * scikit-learn's does, and the same seed gives the same bits. */
static void test_ica_own_init(void) {
  T_CASE("ica: knobs' w_init");
  const cJSON *c = jkey(jkey(ref, "ica"), "tall");
  int n = (int)jnum(c, "n"), d = (int)jnum(c, "d"), k = (int)jnum(c, "k");
  double *X = jvec(c, "X", n * d), *S = jvec(c, "sources", n * k);
  if (!X || !S) {
    CHECK(0, "reference case tall incomplete");
    free(X), free(S);
    return;
  }
  knobs_ica_opts o;
  knobs_ica_opts_default(&o);
  o.k = k, o.seed = 7;
  knobs_ica_result *a = NULL, *b = NULL, *e = NULL;
  CHECK(knobs_ica(X, n, d, &o, &a) == KNOBS_OK && knobs_ica(X, n, d, &o, &b) == KNOBS_OK, "%s", knobs_last_error());
  o.seed = 8;
  CHECK(knobs_ica(X, n, d, &o, &e) == KNOBS_OK, "%s", knobs_last_error());
  if (a && b && e) {
    CHECK(a->converged, "seed 7 did not converge in %d", a->iterations);
    CHECK(!memcmp(a->sources, b->sources, sizeof(double) * (size_t)n * k) && a->iterations == b->iterations,
          "the same seed gave other bits");
    int perm[64], sg[64];
    /* both stop within tol (1e-4 on the rows of W) of the same fixed point */
    double worst = match_sources(a->sources, S, n, k, perm, sg);
    CHECK(is_permutation(perm, k) && worst < 2e-2, "seed 7 ends %.3g from scikit-learn's sources", worst);
    worst = match_sources(e->sources, a->sources, n, k, perm, sg);
    CHECK(is_permutation(perm, k) && worst < 2e-2, "seed 8 ends %.3g from seed 7", worst);
    CHECK(memcmp(a->sources, e->sources, sizeof(double) * (size_t)n * k), "seeds 7 and 8 gave the same bits");
  }
  knobs_ica_result_free(a), knobs_ica_result_free(b), knobs_ica_result_free(e);
  knobs_ica_result_free(NULL); /* a no-op */
  free(X), free(S);
}

static void expect_ica_error(const char *what, const double *X, int n, int d, const knobs_ica_opts *o,
                             knobs_status want, const char *msg) {
  T_CASE(what);
  knobs_ica_result *r = (knobs_ica_result *)&r; /* must come back NULL */
  knobs_status s = knobs_ica(X, n, d, o, &r);
  CHECK(s == want && r == NULL && strstr(knobs_last_error(), msg), "status %s, message '%s' (want %s, '%s')",
        knobs_status_name(s), knobs_last_error(), knobs_status_name(want), msg);
}

static void test_ica_errors(void) {
  enum { N = 50, D = 4 };
  double X[N * D];
  kn_rng g;
  kn_rng_seed(&g, 3, 0);
  for (int q = 0; q < N * D; q++) X[q] = kn_rng_uniform(&g) - 0.5;
  knobs_ica_opts o;
  knobs_ica_opts_default(&o);
  o.k = 5;
  expect_ica_error("ica: k > d", X, N, D, &o, KNOBS_ERR_ARG, "5 components asked of data with 4 channels");
  o.k = -1;
  expect_ica_error("ica: k < 0", X, N, D, &o, KNOBS_ERR_ARG, "-1 components");
  o.k = 3;
  expect_ica_error("ica: n < k", X, 2, D, &o, KNOBS_ERR_DATA, "2 rows for 3 components");
  o.max_iter = 0;
  expect_ica_error("ica: max_iter 0", X, N, D, &o, KNOBS_ERR_ARG, "max_iter 0");
  o.max_iter = 200;
  X[7 * D + 2] = NAN;
  expect_ica_error("ica: NaN", X, N, D, &o, KNOBS_ERR_DATA, "row 7, channel 2 is NaN");
  X[7 * D + 2] = INFINITY;
  expect_ica_error("ica: Inf", X, N, D, &o, KNOBS_ERR_DATA, "row 7, channel 2 is infinite");
  X[7 * D + 2] = 0.1;
  for (int i = 0; i < N; i++) X[i * D + 3] = 2 * X[i * D + 1] - X[i * D + 0]; /* rank 3 */
  o.k = 4;
  expect_ica_error("ica: rank below k", X, N, D, &o, KNOBS_ERR_DATA, "rank 3, below the 4 components");
  o.k = 3;
  T_CASE("ica: rank k is enough");
  knobs_ica_result *r = NULL;
  CHECK(knobs_ica(X, N, D, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  knobs_ica_result_free(r);
}

/* Physics (x = A f + noise): uniform factors are recovered; Gaussian ones look Gaussian. */
static void test_ica_physics(void) {
  const char *dists[] = {"uniform", "gauss"};
  for (int t = 0; t < 2; t++) {
    T_CASE(t ? "ica: physics, Gaussian factors" : "ica: physics, uniform factors");
    knobs_data_opts dopt;
    knobs_data_opts_default(&dopt);
    dopt.factor_dist = dists[t];
    dopt.seed = 5;
    knobs_data *data = NULL;
    CHECK(knobs_data_open("physics", &dopt, &data) == KNOBS_OK, "%s", knobs_last_error());
    if (!data) continue;
    const knobs_data_info *in = knobs_data_info_get(data);
    int n = 20000, C = in->C, K = in->K; /* the kurtosis of a Gaussian sample: sd sqrt(24/n) */
    float *obs = malloc(sizeof(float) * (size_t)n * C);
    double *X = malloc(sizeof(double) * (size_t)n * C), *v = malloc(sizeof(double) * (size_t)n * K);
    double *A = malloc(sizeof(double) * (size_t)C * K), *corr = malloc(sizeof(double) * (size_t)K * K);
    int match[16];
    knobs_ica_result *r = NULL;
    CHECK(knobs_data_draw_values(data, n, 5, 0, obs, NULL, v) == KNOBS_OK && knobs_data_mixing(data, A) == KNOBS_OK,
          "%s", knobs_last_error());
    for (size_t q = 0; q < (size_t)n * C; q++) X[q] = obs[q];
    knobs_ica_opts o;
    knobs_ica_opts_default(&o);
    o.k = K;
    CHECK(knobs_ica(X, n, C, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
    double mcc = 0, amari = 1;
    if (r && !knobs_correlations(r->sources, v, n, K, K, 0, corr) && !knobs_mcc(corr, K, K, match, &mcc) &&
        !knobs_amari_index(r->unmixing, A, K, C, &amari)) {
      int gaussian = 0;
      for (int i = 0; i < K; i++) gaussian += fabs(r->kurtosis[i]) < 0.1;
      if (t == 0) {
        CHECK(mcc > 0.98, "MCC %.4f on uniform factors", mcc);
        CHECK(amari < 0.05, "Amari %.4f on uniform factors", amari);
        CHECK(gaussian == 0, "%d near-Gaussian sources of uniform factors", gaussian);
      } else {
        CHECK(gaussian >= 2, "only %d near-Gaussian sources of Gaussian factors (kurtosis %g %g %g)", gaussian,
              r->kurtosis[0], r->kurtosis[1], r->kurtosis[2]);
      }
    } else {
      CHECK(0, "scoring failed: %s", knobs_last_error());
    }
    knobs_ica_result_free(r);
    free(obs), free(X), free(v), free(A), free(corr);
    knobs_data_free(data);
  }
}

/* ---- the linear sum assignment ------------------------------------------------------------ */
/* The least total over every assignment of the rows (r <= c <= 8) by brute force. */
static double brute_force(const double *cost, int r, int c, int row, unsigned used) {
  if (row == r) return 0;
  double best = INFINITY;
  for (int j = 0; j < c; j++)
    if (!(used & (1u << j))) best = fmin(best, cost[row * c + j] + brute_force(cost, r, c, row + 1, used | (1u << j)));
  return best;
}

static void test_assignment(void) {
  T_CASE("assignment: scipy's linear_sum_assignment");
  const cJSON *cases = jkey(ref, "assignment"), *c;
  int ncases = 0;
  cJSON_ArrayForEach(c, cases) {
    int r = (int)jnum(c, "rows"), cc = (int)jnum(c, "cols"), mx = cJSON_IsTrue(jkey(c, "maximize"));
    double *cost = jvec(c, "cost", r * cc), *want = jvec(c, "col_of_row", r);
    int got[16];
    CHECK(cost && want && r <= 16, "case %d incomplete", ncases);
    if (cost && want && r <= 16) {
      CHECK(knobs_linear_assignment(cost, r, cc, mx, got) == KNOBS_OK, "%s", knobs_last_error());
      double tot = 0;
      int same = 1;
      for (int i = 0; i < r; i++) {
        same &= got[i] == (int)want[i];
        if (got[i] >= 0) tot += cost[i * cc + got[i]];
      }
      CHECK(same, "%dx%d %s: another assignment than scipy's", r, cc, mx ? "max" : "min");
      CHECK_NEAR(tot, jnum(c, "total"), 1e-12);
    }
    free(cost), free(want);
    ncases++;
  }
  CHECK(ncases == 8, "%d reference cases", ncases);

  T_CASE("assignment: brute force");
  kn_rng g;
  kn_rng_seed(&g, 11, 0);
  for (int trial = 0; trial < 30; trial++) {
    int r = 1 + (int)kn_rng_below(&g, 6), nc = r + (int)kn_rng_below(&g, 3);
    double cost[64];
    int got[8], used = 0, ok = 1;
    for (int q = 0; q < r * nc; q++) cost[q] = trial % 3 ? kn_rng_uniform(&g) * 10 - 3 : (double)kn_rng_below(&g, 4);
    CHECK(knobs_linear_assignment(cost, r, nc, 0, got) == KNOBS_OK, "%s", knobs_last_error());
    double tot = 0;
    for (int i = 0; i < r; i++) {
      ok &= got[i] >= 0 && got[i] < nc && !(used & (1 << got[i]));
      if (got[i] >= 0 && got[i] < nc) used |= 1 << got[i], tot += cost[i * nc + got[i]];
    }
    CHECK(ok, "trial %d: not an assignment", trial);
    CHECK(fabs(tot - brute_force(cost, r, nc, 0, 0)) < 1e-12, "trial %d (%dx%d): total %g, optimum %g", trial, r, nc, tot,
          brute_force(cost, r, nc, 0, 0));
  }
  T_CASE("assignment: refusals");
  double bad[4] = {1, NAN, 2, 3};
  int out[2];
  CHECK(knobs_linear_assignment(bad, 2, 2, 0, out) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "row 0, column 1 is NaN"),
        "%s", knobs_last_error());
  CHECK(knobs_linear_assignment(bad, 0, 2, 0, out) == KNOBS_ERR_ARG, "0 rows accepted");
}

/* ---- mcc ---------------------------------------------------------------------------------- */
static void test_mcc_ref(void) {
  const cJSON *c = jkey(ref, "mcc");
  int n = (int)jnum(c, "n"), D = (int)jnum(c, "D"), K = (int)jnum(c, "K");
  double *z = jvec(c, "codes", n * D), *f = jvec(c, "factors", n * K);
  const char *names[] = {"pearson", "spearman"};
  for (int sp = 0; sp < 2; sp++) {
    T_CASE(sp ? "mcc: Spearman against scipy" : "mcc: Pearson against NumPy");
    const cJSON *e = jkey(c, names[sp]);
    double *want = jvec(e, "corr", D * K), *wm = jvec(e, "match", K), corr[64], mcc = -1;
    int match[16];
    CHECK(z && f && want && wm && D * K <= 64, "reference incomplete");
    if (z && f && want && wm && D * K <= 64) {
      CHECK(knobs_correlations(z, f, n, D, K, sp, corr) == KNOBS_OK, "%s", knobs_last_error());
      double w = 0;
      for (int q = 0; q < D * K; q++) w = fmax(w, fabs(corr[q] - want[q]));
      CHECK(w <= 1e-12, "correlations differ by %.3g", w);
      CHECK(knobs_mcc(corr, D, K, match, &mcc) == KNOBS_OK, "%s", knobs_last_error());
      CHECK_NEAR(mcc, jnum(e, "mcc"), 1e-12);
      for (int k = 0; k < K; k++) CHECK(match[k] == (int)wm[k], "factor %d: code %d, scipy %d", k, match[k], (int)wm[k]);
    }
    free(want), free(wm);
  }
  free(z), free(f);
}

/* codes = a permuted, sign-flipped, scaled (and shifted) copy of continuous factors */
static void make_copy(kn_rng *g, int n, int K, const int *perm, const double *scale, double *f, double *z) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < K; k++) {
      f[i * K + k] = k == 1 ? log(kn_rng_uniform(g) + 1e-3) : kn_rng_uniform(g) * 3 - 1;
      z[i * K + perm[k]] = scale[k] * f[i * K + k] + 1.5;
    }
}

static void test_mcc_identity(void) {
  enum { N = 400, K = 4 };
  const int perm[K] = {2, 0, 3, 1};
  const double scale[K] = {-2.5, 0.01, 7.0, -1.0};
  double *f = malloc(sizeof(double) * N * K), *z = malloc(sizeof(double) * N * K), corr[K * K], mcc = 0;
  int match[K];
  kn_rng g;
  kn_rng_seed(&g, 21, 0);
  make_copy(&g, N, K, perm, scale, f, z);
  for (int sp = 0; sp < 2; sp++) {
    T_CASE(sp ? "mcc: a permuted, flipped, scaled copy (Spearman)" : "mcc: a permuted, flipped, scaled copy");
    CHECK(knobs_correlations(z, f, N, K, K, sp, corr) == KNOBS_OK && knobs_mcc(corr, K, K, match, &mcc) == KNOBS_OK, "%s",
          knobs_last_error());
    CHECK_NEAR(mcc, 1.0, 1e-12);
    for (int k = 0; k < K; k++) {
      CHECK(match[k] == perm[k], "factor %d matched to code %d, not %d", k, match[k], perm[k]);
      CHECK((corr[perm[k] * K + k] < 0) == (scale[k] < 0), "factor %d: sign", k);
    }
  }

  T_CASE("mcc: through knobs_metrics_arrays, continuous factors");
  knobs_array za = {.dtype = KNOBS_F64, .ndim = 2, .shape = {N, K}, .data = z};
  knobs_array fa = {.dtype = KNOBS_F64, .ndim = 2, .shape = {N, K}, .data = f};
  knobs_metrics_opts o;
  knobs_metrics_opts_default(&o);
  o.train_frac = 0.75;
  knobs_result *r = NULL;
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "mcc", &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  double v;
  if (r) {
    CHECK(!knobs_result_get(r, "mcc.score", &v) && fabs(v - 1) < 1e-12, "score %g", v);
    CHECK(!knobs_result_get(r, "mcc.mcc_test", &v) && fabs(v - 1) < 1e-12, "out of sample %g", v);
    CHECK(!knobs_result_get(r, "mcc.params.num_test", &v) && v == 100, "test rows %g", v);
    for (int k = 0; k < K; k++) {
      char p[64];
      snprintf(p, sizeof p, "mcc.matching.%d", k);
      CHECK(!knobs_result_get(r, p, &v) && v == perm[k], "%s = %g", p, v);
      snprintf(p, sizeof p, "mcc.signs.%d", k);
      CHECK(!knobs_result_get(r, p, &v) && v == (scale[k] < 0 ? -1 : 1), "%s = %g", p, v);
    }
    char *j = knobs_result_json(r);
    CHECK(j && strstr(j, "\"correlation\":\t\"pearson\""), "%.200s", j ? j : "");
    free(j);
    knobs_result_free(r);
    r = NULL;
  }
  T_CASE("mcc: out of sample sees a matching that does not hold");
  /* the test rows swap codes 0 and 1: in-sample MCC stays high, out-of-sample collapses */
  for (int i = 300; i < N; i++) {
    double t = z[i * K + perm[0]];
    z[i * K + perm[0]] = z[i * K + perm[2]], z[i * K + perm[2]] = t;
  }
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "mcc", &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  double in = 0, out = 1;
  if (r && !knobs_result_get(r, "mcc.mcc", &in) && !knobs_result_get(r, "mcc.mcc_test", &out))
    CHECK(out < 0.6 && in > out, "in sample %g, out of sample %g", in, out);
  knobs_result_free(r);
  r = NULL;

  T_CASE("mcc: continuous factors refused by the class metrics");
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "mcc,mig", &o, &r) == KNOBS_ERR_DATA &&
            strstr(knobs_last_error(), "mcc and amari alone take them"), "%s", knobs_last_error());
  CHECK(r == NULL, "a result on failure");
  o.mcc_spearman = 1;
  T_CASE("mcc: the spearman option");
  CHECK(knobs_metrics_opts_set(&o, "mcc_spearman", "true") == KNOBS_OK && o.mcc_spearman == 1, "%s", knobs_last_error());
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "mcc", &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (r) {
    char *j = knobs_result_json(r);
    CHECK(j && strstr(j, "\"correlation\":\t\"spearman\""), "%.200s", j ? j : "");
    free(j);
    knobs_result_free(r);
  }
  T_CASE("mcc: more factors than codes");
  double c2[6] = {0.9, 0.1, 0.3, 0.2, 0.8, 0.7}; /* (D=2, K=3) */
  int m3[3];
  CHECK(knobs_mcc(c2, 2, 3, m3, &mcc) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(m3[0] == 0 && m3[1] == 1 && m3[2] == -1, "matching %d %d %d", m3[0], m3[1], m3[2]);
  CHECK_NEAR(mcc, (0.9 + 0.8) / 3, 1e-15);
  T_CASE("mcc: refusals");
  z[5] = NAN;
  CHECK(knobs_correlations(z, f, N, K, K, 0, corr) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "codes: row 1, column 1 is NaN"),
        "%s", knobs_last_error());
  CHECK(knobs_correlations(z, f, 1, K, K, 0, corr) == KNOBS_ERR_ARG, "one row accepted");
  free(f), free(z);
}

/* ---- amari -------------------------------------------------------------------------------- */
/* inverse of a (k,k) matrix by Gauss-Jordan with partial pivoting */
static void invert(const double *a, int k, double *inv) {
  double m[16 * 32];
  for (int i = 0; i < k; i++)
    for (int j = 0; j < 2 * k; j++) m[i * 2 * k + j] = j < k ? a[i * k + j] : (j - k == i);
  for (int c = 0; c < k; c++) {
    int p = c;
    for (int i = c + 1; i < k; i++)
      if (fabs(m[i * 2 * k + c]) > fabs(m[p * 2 * k + c])) p = i;
    for (int j = 0; j < 2 * k; j++) {
      double t = m[c * 2 * k + j];
      m[c * 2 * k + j] = m[p * 2 * k + j], m[p * 2 * k + j] = t;
    }
    double d = m[c * 2 * k + c];
    for (int j = 0; j < 2 * k; j++) m[c * 2 * k + j] /= d;
    for (int i = 0; i < k; i++)
      if (i != c) {
        double f = m[i * 2 * k + c];
        for (int j = 0; j < 2 * k; j++) m[i * 2 * k + j] -= f * m[c * 2 * k + j];
      }
  }
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) inv[i * k + j] = m[i * 2 * k + k + j];
}

static void test_amari(void) {
  T_CASE("amari: against NumPy");
  const cJSON *c = jkey(ref, "amari");
  int k = (int)jnum(c, "k"), d = (int)jnum(c, "d");
  double *W = jvec(c, "W", k * d), *A = jvec(c, "A", d * k), v = -1;
  CHECK(W && A, "reference incomplete");
  if (W && A) {
    CHECK(knobs_amari_index(W, A, k, d, &v) == KNOBS_OK, "%s", knobs_last_error());
    CHECK_NEAR(v, jnum(c, "index"), 1e-12);
  }
  T_CASE("amari: W = A^-1, and a scaled permutation of it");
  enum { Q = 5 };
  double Aq[Q * Q], Wq[Q * Q], Wp[Q * Q];
  kn_rng g;
  kn_rng_seed(&g, 4, 0);
  for (int q = 0; q < Q * Q; q++) Aq[q] = kn_rng_normal(&g);
  invert(Aq, Q, Wq);
  CHECK(knobs_amari_index(Wq, Aq, Q, Q, &v) == KNOBS_OK && fabs(v) < 1e-12, "Amari of A^-1 A = %g", v);
  const int perm[Q] = {3, 0, 4, 1, 2};
  for (int i = 0; i < Q; i++)
    for (int j = 0; j < Q; j++) Wp[perm[i] * Q + j] = (i % 2 ? -3.0 : 0.5) * Wq[i * Q + j];
  CHECK(knobs_amari_index(Wp, Aq, Q, Q, &v) == KNOBS_OK && fabs(v) < 1e-12, "Amari of P D A^-1 A = %g", v);
  T_CASE("amari: random W in (0, 1]");
  for (int t = 0; t < 20; t++) {
    for (int q = 0; q < Q * Q; q++) Wq[q] = kn_rng_normal(&g);
    CHECK(knobs_amari_index(Wq, Aq, Q, Q, &v) == KNOBS_OK && v > 0 && v <= 1, "Amari %g", v);
  }
  double ones[4] = {1, 1, 1, 1}, eye[4] = {1, 0, 0, 1};
  CHECK(knobs_amari_index(ones, eye, 2, 2, &v) == KNOBS_OK && fabs(v - 1) < 1e-15, "all-equal P gives %g, not 1", v);
  T_CASE("amari: refusals");
  double zero[4] = {1, 2, 0, 0};
  CHECK(knobs_amari_index(zero, eye, 2, 2, &v) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "row 1 of W A is zero"), "%s",
        knobs_last_error());
  CHECK(knobs_amari_index(W, A, 0, d, &v) == KNOBS_ERR_ARG, "k = 0 accepted");

  T_CASE("amari: through the metric options");
  char dir[] = "/tmp/knobs-test-ica-XXXXXX", wp[64], ap[64], bp[64];
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  snprintf(wp, sizeof wp, "%s/W.npy", dir), snprintf(ap, sizeof ap, "%s/A.npy", dir), snprintf(bp, sizeof bp, "%s/B.npy", dir);
  knobs_array Wa = {.dtype = KNOBS_F64, .ndim = 2, .shape = {k, d}, .data = W};
  knobs_array Aa = {.dtype = KNOBS_F64, .ndim = 2, .shape = {d, k}, .data = A};
  knobs_array Ba = {.dtype = KNOBS_F64, .ndim = 2, .shape = {k, k}, .data = A};
  CHECK(W && A && !knobs_npy_write(wp, &Wa) && !knobs_npy_write(ap, &Aa) && !knobs_npy_write(bp, &Ba), "%s", knobs_last_error());
  double zc[40 * 2], fc[40];
  for (int i = 0; i < 40; i++) zc[2 * i] = i, zc[2 * i + 1] = (i * 7) % 5, fc[i] = i % 3;
  knobs_array za = {.dtype = KNOBS_F64, .ndim = 2, .shape = {40, 2}, .data = zc};
  knobs_array fa = {.dtype = KNOBS_F64, .ndim = 1, .shape = {40}, .data = fc};
  knobs_metrics_opts o;
  knobs_metrics_opts_default(&o);
  knobs_result *r = NULL;
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "amari", &o, &r) == KNOBS_ERR_ARG &&
            strstr(knobs_last_error(), "amari needs the unmixing and the true mixing"), "%s", knobs_last_error());
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "all", &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (r) {
    char *j = knobs_result_json(r);
    CHECK(j && strstr(j, "\"amari\":\t\"needs the unmixing"), "amari not skipped: %.300s", j ? j : "");
    CHECK(!knobs_result_get(r, "mcc.score", &v), "mcc missing from all");
    free(j);
    knobs_result_free(r);
    r = NULL;
  }
  CHECK(knobs_metrics_opts_set(&o, "amari_unmixing", wp) == KNOBS_OK && knobs_metrics_opts_set(&o, "amari_mixing", ap) == KNOBS_OK,
        "%s", knobs_last_error());
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "amari", &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (r) {
    CHECK(!knobs_result_get(r, "amari.score", &v) && fabs(v - jnum(c, "index")) < 1e-12, "amari.score %g", v);
    knobs_result_free(r);
    r = NULL;
  }
  o.amari_mixing = bp;
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "amari", &o, &r) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "must be square"),
        "%s", knobs_last_error());
  o.amari_mixing = "/nonexistent/A.npy";
  CHECK(knobs_metrics_arrays(&za, &fa, NULL, "amari", &o, &r) == KNOBS_ERR_IO && strstr(knobs_last_error(), "/nonexistent/A.npy"),
        "%s", knobs_last_error());
  unlink(wp), unlink(ap), unlink(bp), rmdir(dir);
  free(W), free(A);
}

int main(void) {
  if (!load_ref()) {
    CHECK(0, "%s missing or not version 1 (run /usr/bin/python3 tests/ref/make_ica_ref.py)", REF_JSON);
    return t_done();
  }
  test_ica_case("tall");
  test_ica_case("square");
  test_ica_case("wide");
  test_ica_case("stopped");
  test_ica_own_init();
  test_ica_errors();
  test_ica_physics();
  test_assignment();
  test_mcc_ref();
  test_mcc_identity();
  test_amari();
  cJSON_Delete(ref);
  return t_done();
}
