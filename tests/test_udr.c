/* test_udr.c: UDR (src/metrics/udr.c, src/apps/udr_models.c):
 *  - knobs_udr against disentanglement_lib's udr.py run with scikit-learn 1.2.1 and scipy 1.10
 *    (tests/ref/udr_ref.json, made by tests/ref/make_udr_ref.py): 4 runs of 500 inputs x 6
 *    latents, lasso and spearman, with and without filter_low_kl, and a threshold of 0.05: the
 *    pairwise scores and the model scores to 1e-6, every raw correlation to 1e-6 (NaN where
 *    scipy gives NaN), the active latents;
 *  - what holds whatever the reference: a permuted, sign-flipped, scaled copy of a disentangled
 *    code scores 1 - alpha (lasso: the soft threshold of a unit regression) and near 1
 *    (spearman), independent rotations score far lower; filter_low_kl scores exactly as if the
 *    latents at or below 0.01 were not there; a run with no active latent scores 0 with every
 *    other; the median of an even count of pairs;
 *  - refusals (R < 2, N < 2, D < 1, NaN or Inf, a negative KL, alpha <= 0, unknown variant,
 *    max_iter 0, threads 0), each with *out NULL and a message;
 *  - determinism: the same bits twice and with 1 or 3 threads;
 *  - knobs_udr_models on tiny fresh models: the result equals knobs_udr on the draws and codes
 *    computed here, a model given twice scores as identical representations do, and the
 *    refusals (latent sizes, input shape, a model without a posterior, R < 2). */
#include <cjson/cJSON.h>

#include "core/core.h"
#include "t.h"
#include "models_t.h"
#include "ref_json.h"

#define REF_JSON "tests/ref/udr_ref.json"

static cJSON *ref;

static const cJSON *jkey(const cJSON *o, const char *key) { return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL; }

static double jnum(const cJSON *o, const char *key) {
  const cJSON *v = jkey(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The numbers of array `key` of o, exactly n of them (null: NaN), in a new buffer (NULL
 * otherwise). */
static double *jvec(const cJSON *o, const char *key, int n) {
  const cJSON *a = jkey(o, key), *e;
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return NULL;
  double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int i = 0;
  cJSON_ArrayForEach(e, a) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
  return v;
}

/* Largest |a - b| over n values; a NaN against a number (or the reverse) is infinite, NaN
 * against NaN agrees. */
static double max_diff(const double *a, const double *b, size_t n) {
  double w = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(a[i]) || isnan(b[i])) {
      if (isnan(a[i]) != isnan(b[i])) return INFINITY;
      continue;
    }
    double d = fabs(a[i] - b[i]);
    if (d > w) w = d;
  }
  return w;
}

/* ---- against udr.py ------------------------------------------------------------------------ */
static void test_reference(void) {
  T_CASE("reference file");
  ref = t_ref_json(REF_JSON);
  CHECK(jnum(ref, "version") == 1, "%s: missing or not version 1", REF_JSON);
  int R = (int)jnum(ref, "R"), N = (int)jnum(ref, "N"), D = (int)jnum(ref, "D");
  double *reps64 = R > 0 && N > 0 && D > 0 ? jvec(ref, "reps", R * N * D) : NULL;
  double *kl = R > 0 && D > 0 ? jvec(ref, "kl", R * D) : NULL;
  CHECK(reps64 && kl, "reference inputs missing");
  if (!reps64 || !kl) {
    free(reps64), free(kl);
    return;
  }
  float *reps = malloc(sizeof(float) * (size_t)R * N * D);
  int exact = 1;
  for (size_t q = 0; q < (size_t)R * N * D; q++) reps[q] = (float)reps64[q], exact &= (double)reps[q] == reps64[q];
  CHECK(exact, "the reference's representations are not float32 values");
  const char *cases[] = {"lasso", "spearman", "lasso_nofilter", "spearman_nofilter", "lasso_t05"};
  double worst_all = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    T_CASE(cases[c]);
    const cJSON *jc = jkey(jkey(ref, "cases"), cases[c]);
    double *pair = jvec(jc, "pairwise", R * R), *scores = jvec(jc, "scores", R), *raw = jvec(jc, "raw", R * R * D * D);
    const cJSON *var = jkey(jc, "variant"), *filt = jkey(jc, "filter_low_kl");
    CHECK(pair && scores && raw && cJSON_IsString(var) && cJSON_IsBool(filt), "case %s incomplete", cases[c]);
    if (!(pair && scores && raw && cJSON_IsString(var) && cJSON_IsBool(filt))) {
      free(pair), free(scores), free(raw);
      continue;
    }
    knobs_udr_opts o;
    knobs_udr_opts_default(&o);
    o.variant = !strcmp(var->valuestring, "lasso") ? KNOBS_UDR_LASSO : KNOBS_UDR_SPEARMAN;
    o.filter_low_kl = cJSON_IsTrue(filt);
    o.kl_filter_threshold = jnum(jc, "kl_filter_threshold");
    knobs_udr_result *r = NULL;
    CHECK(knobs_udr(reps, kl, R, N, D, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
    if (r) {
      CHECK(r->R == R && r->N == N && r->D == D && r->variant == o.variant && r->correlations, "shape");
      double dp = max_diff(r->pairwise, pair, (size_t)R * R), ds = max_diff(r->scores, scores, (size_t)R);
      double dc = max_diff(r->correlations, raw, (size_t)R * R * D * D);
      CHECK(dp <= 1e-6, "pairwise scores differ from udr.py's by %.3g", dp);
      CHECK(ds <= 1e-6, "model scores differ from udr.py's by %.3g", ds);
      CHECK(dc <= 1e-6, "raw correlations differ from udr.py's by %.3g", dc);
      if (getenv("KNOBS_TEST_VERBOSE"))
        printf("%s: max |diff| pairwise %.3g, scores %.3g, correlations %.3g\n", cases[c], dp, ds, dc);
      worst_all = fmax(worst_all, fmax(dp, fmax(ds, dc)));
      int act_ok = 1;
      for (int q = 0; q < R * D; q++)
        act_ok &= r->active[q] == (kl[q] > o.kl_filter_threshold) && r->kl[q] == kl[q];
      CHECK(act_ok, "active latents are not those with KL > %g", o.kl_filter_threshold);
      int n3 = r->n_active[3];
      CHECK(n3 == (o.kl_filter_threshold < 0.03 ? 5 : 4), "run 3 has %d active latents", n3);
    }
    knobs_udr_result_free(r);
    free(pair), free(scores), free(raw);
  }
  printf("udr vs udr.py: largest difference %.3g over every case\n", worst_all);
  free(reps), free(reps64), free(kl);
}

/* ---- properties ------------------------------------------------------------------------------ */
/* s (n,k): independent uniform, Laplace-like and two-level sources from (seed, 0). */
static void sources(double *s, int n, int k, uint64_t seed) {
  kn_rng g;
  kn_rng_seed(&g, seed, 0);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < k; c++) {
      double u = kn_rng_uniform(&g);
      s[(size_t)i * k + c] = c % 3 == 0 ? 2 * u - 1 : c % 3 == 1 ? log(u + 1e-12) * (kn_rng_uniform(&g) < 0.5 ? -1 : 1)
                                                                 : (u < 0.3 ? -1.5 : 0.6) + 0.3 * kn_rng_normal(&g);
    }
}

/* A random orthogonal (k,k) by Gram-Schmidt of normal draws. */
static void rotation(double *Q, int k, uint64_t seed) {
  kn_rng g;
  kn_rng_seed(&g, seed, 1);
  for (int i = 0; i < k * k; i++) Q[i] = kn_rng_normal(&g);
  for (int a = 0; a < k; a++) {
    double *q = Q + (size_t)a * k;
    for (int b = 0; b < a; b++) {
      double p = 0;
      for (int c = 0; c < k; c++) p += q[c] * Q[(size_t)b * k + c];
      for (int c = 0; c < k; c++) q[c] -= p * Q[(size_t)b * k + c];
    }
    double nn = 0;
    for (int c = 0; c < k; c++) nn += q[c] * q[c];
    for (int c = 0; c < k; c++) q[c] /= sqrt(nn);
  }
}

static double pair_of(const float *reps, const double *kl, int R, int N, int D, const knobs_udr_opts *o, int i,
                      int j) {
  knobs_udr_result *r = NULL;
  double v = NAN;
  if (knobs_udr(reps, kl, R, N, D, o, &r) == KNOBS_OK) v = r->pairwise[i * R + j];
  else fprintf(stderr, "knobs_udr: %s\n", knobs_last_error());
  knobs_udr_result_free(r);
  return v;
}

static void test_identities(void) {
  enum { N = 2000, K = 5 };
  double *s = malloc(sizeof(double) * N * K), Q[K * K];
  float *reps = malloc(sizeof(float) * 2 * N * K);
  sources(s, N, K, 3);
  /* run 0: s; run 1: permuted, sign-flipped, scaled copy (no noise) */
  const int perm[K] = {3, 0, 4, 1, 2};
  const double sc[K] = {-2.0, 0.5, 1.0, -0.25, 3.0};
  for (int i = 0; i < N; i++)
    for (int c = 0; c < K; c++) {
      reps[(size_t)i * K + c] = (float)s[(size_t)i * K + c];
      reps[(size_t)N * K + (size_t)i * K + c] = (float)(sc[c] * s[(size_t)i * K + perm[c]]);
    }
  knobs_udr_opts o;
  knobs_udr_opts_default(&o);

  T_CASE("a permuted, sign-flipped, scaled copy");
  double l01 = pair_of(reps, NULL, 2, N, K, &o, 0, 1), l10 = pair_of(reps, NULL, 2, N, K, &o, 1, 0);
  /* standardised independent latents: the Lasso weight of the matching latent is 1 - alpha,
   * the others ~0, and max^2 / sum of one weight is the weight */
  CHECK(fabs(l01 - 0.9) < 0.01 && fabs(l10 - 0.9) < 0.01, "lasso pair scores %.4f %.4f, want ~0.9", l01, l10);
  o.alpha = 0.01;
  double l01s = pair_of(reps, NULL, 2, N, K, &o, 0, 1);
  CHECK(fabs(l01s - 0.99) < 0.01, "lasso alpha 0.01: %.4f, want ~0.99", l01s);
  o.alpha = 0.1, o.variant = KNOBS_UDR_SPEARMAN;
  double s01 = pair_of(reps, NULL, 2, N, K, &o, 0, 1);
  CHECK(s01 > 0.9 && s01 <= 1, "spearman pair score %.4f, want > 0.9", s01);

  T_CASE("independent rotations score low");
  for (int t = 0; t < 2; t++) {
    rotation(Q, K, 11 + t);
    for (int i = 0; i < N; i++)
      for (int c = 0; c < K; c++) {
        double v = 0;
        for (int e = 0; e < K; e++) v += Q[c * K + e] * s[(size_t)i * K + e];
        reps[(size_t)t * N * K + (size_t)i * K + c] = (float)v;
      }
  }
  o.variant = KNOBS_UDR_LASSO;
  double lr = pair_of(reps, NULL, 2, N, K, &o, 0, 1);
  o.variant = KNOBS_UDR_SPEARMAN;
  double sr = pair_of(reps, NULL, 2, N, K, &o, 0, 1);
  CHECK(lr < 0.65 && lr < l01 - 0.2, "lasso: rotations score %.4f (the copy %.4f)", lr, l01);
  CHECK(sr < 0.65 && sr < s01 - 0.2, "spearman: rotations score %.4f (the copy %.4f)", sr, s01);
  if (getenv("KNOBS_TEST_VERBOSE"))
    printf("copy: lasso %.4f %.4f (alpha 0.01: %.4f), spearman %.4f; rotations: lasso %.4f, spearman %.4f\n", l01, l10,
           l01s, s01, lr, sr);
  free(s), free(reps);
}

/* filter_low_kl: with the default threshold (0.01, the zeroing constant) the scores equal those
 * of the representations without the latents at or below 0.01 (zeroed latents never enter the
 * Lasso: a zero column is skipped, a zero target has zero weights). */
static void test_filter(void) {
  T_CASE("filter_low_kl drops the latents at or below the threshold");
  enum { R = 3, N = 400, D = 5, K = 4 };
  double *s = malloc(sizeof(double) * N * K);
  float *reps = malloc(sizeof(float) * R * N * D), *red = malloc(sizeof(float) * R * N * K);
  double kl[R * D], Q[K * K];
  const int dead[R] = {4, 0, 2};
  sources(s, N, K, 5);
  rotation(Q, K, 7);
  kn_rng g;
  kn_rng_seed(&g, 9, 0);
  for (int r = 0; r < R; r++)
    for (int i = 0; i < N; i++)
      for (int d = 0, a = 0; d < D; d++) {
        float v;
        if (d == dead[r]) {
          v = (float)(0.3 * kn_rng_normal(&g)); /* noise: it would lower the scores if kept */
        } else {
          double x = 0;
          for (int e = 0; e < K; e++) x += (r == 2 ? Q[a * K + e] : (e == (a + r) % K)) * s[(size_t)i * K + e];
          v = (float)(x + 0.1 * kn_rng_normal(&g));
          red[((size_t)r * N + i) * K + a++] = v;
        }
        reps[((size_t)r * N + i) * D + d] = v;
        if (i == 0) kl[r * D + d] = d == dead[r] ? 0.004 : 0.5 + 0.1 * d;
      }
  for (int v = 0; v < 2; v++) {
    knobs_udr_opts o;
    knobs_udr_opts_default(&o);
    o.variant = v ? KNOBS_UDR_SPEARMAN : KNOBS_UDR_LASSO;
    knobs_udr_result *a = NULL, *b = NULL, *c = NULL;
    CHECK(knobs_udr(reps, kl, R, N, D, &o, &a) == KNOBS_OK, "%s", knobs_last_error());
    CHECK(knobs_udr(red, NULL, R, N, K, &o, &b) == KNOBS_OK, "%s", knobs_last_error());
    o.filter_low_kl = 0;
    CHECK(knobs_udr(reps, kl, R, N, D, &o, &c) == KNOBS_OK, "%s", knobs_last_error());
    if (a && b && c) {
      double d = max_diff(a->pairwise, b->pairwise, R * R);
      CHECK(d < 1e-12, "%s: filtered scores differ from the reduced runs' by %.3g", v ? "spearman" : "lasso", d);
      for (int r = 0; r < R; r++) {
        CHECK(a->n_active[r] == D - 1 && !a->active[r * D + dead[r]], "run %d: %d active", r, a->n_active[r]);
        /* zeroed latents count 0 in every mean: without the filter the copies score lower */
        CHECK(c->scores[r] < a->scores[r], "%s run %d: unfiltered %.4f >= filtered %.4f", v ? "spearman" : "lasso", r,
              c->scores[r], a->scores[r]);
      }
      CHECK(a->scores[0] > a->scores[2] + 0.1 && a->scores[1] > a->scores[2] + 0.1,
            "the rotated run should rank last: %.3f %.3f %.3f", a->scores[0], a->scores[1], a->scores[2]);
    }
    knobs_udr_result_free(a), knobs_udr_result_free(b), knobs_udr_result_free(c);
  }

  T_CASE("a run with no active latent");
  double kl2[R * D];
  memcpy(kl2, kl, sizeof kl);
  for (int d = 0; d < D; d++) kl2[1 * D + d] = 0.005;
  knobs_udr_result *r = NULL;
  CHECK(knobs_udr(reps, kl2, R, N, D, NULL, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (r) {
    CHECK(r->n_active[1] == 0 && r->scores[1] == 0, "run 1: %d active, score %g", r->n_active[1], r->scores[1]);
    CHECK(r->pairwise[0 * R + 1] == 0 && r->pairwise[1 * R + 0] == 0 && r->pairwise[2 * R + 1] == 0, "pairs with run 1");
    /* the median of two pairs is their mean */
    CHECK(r->scores[0] == 0.5 * (r->pairwise[1 * R + 0] + r->pairwise[2 * R + 0]), "median of two: %.17g",
          r->scores[0]);
  }
  knobs_udr_result_free(r);

  T_CASE("threshold 0.05 drops a latent of KL 0.03 that stays in the regression");
  kl[0 * D + 1] = 0.03;
  knobs_udr_opts o;
  knobs_udr_opts_default(&o);
  o.kl_filter_threshold = 0.05, o.raw_correlations = 0;
  r = NULL;
  CHECK(knobs_udr(reps, kl, R, N, D, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  if (r) CHECK(r->n_active[0] == D - 2 && !r->active[1] && !r->correlations, "run 0: %d active", r->n_active[0]);
  knobs_udr_result_free(r);
  free(s), free(reps), free(red);
}

/* ---- refusals and determinism ------------------------------------------------------------------ */
static void test_refusals(void) {
  enum { R = 3, N = 50, D = 3 };
  float reps[R * N * D];
  double kl[R * D];
  kn_rng g;
  kn_rng_seed(&g, 1, 0);
  for (int i = 0; i < R * N * D; i++) reps[i] = (float)kn_rng_normal(&g);
  for (int i = 0; i < R * D; i++) kl[i] = 1;
  struct {
    const char *name, *want;
    int R, N, D;
    knobs_status st;
  } bad[] = {
      {"one run", "at least 2", 1, N, D, KNOBS_ERR_ARG},   {"one input", "at least 2", R, 1, D, KNOBS_ERR_ARG},
      {"no latents", "0 latents", R, N, 0, KNOBS_ERR_ARG},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    T_CASE(bad[i].name);
    knobs_udr_result *r = (knobs_udr_result *)&g;
    knobs_status s = knobs_udr(reps, kl, bad[i].R, bad[i].N, bad[i].D, NULL, &r);
    CHECK(s == bad[i].st && !r && strstr(knobs_last_error(), bad[i].want), "%d %s", s, knobs_last_error());
  }
  struct {
    const char *name, *want;
    void (*set)(knobs_udr_opts *o);
  } badopt[] = {
      {"alpha 0", "alpha 0", NULL}, {"alpha < 0", "alpha -1", NULL}, {"variant", "unknown variant", NULL},
      {"max_iter 0", "max_iter 0", NULL}, {"threads 0", "0 threads", NULL}, {"threshold NaN", "kl_filter_threshold", NULL},
  };
  for (size_t i = 0; i < sizeof badopt / sizeof badopt[0]; i++) {
    T_CASE(badopt[i].name);
    knobs_udr_opts o;
    knobs_udr_opts_default(&o);
    switch (i) {
    case 0: o.alpha = 0; break;
    case 1: o.alpha = -1; break;
    case 2: o.variant = (knobs_udr_variant)7; break;
    case 3: o.max_iter = 0; break;
    case 4: o.threads = 0; break;
    default: o.kl_filter_threshold = NAN; break;
    }
    knobs_udr_result *r = NULL;
    knobs_status s = knobs_udr(reps, kl, R, N, D, &o, &r);
    CHECK(s == KNOBS_ERR_ARG && !r && strstr(knobs_last_error(), badopt[i].want), "%d %s", s, knobs_last_error());
  }
  T_CASE("NaN and Inf in the representations, a bad KL");
  knobs_udr_result *r = NULL;
  reps[(1 * N + 7) * D + 2] = NAN;
  CHECK(knobs_udr(reps, kl, R, N, D, NULL, &r) == KNOBS_ERR_DATA && !r &&
            strstr(knobs_last_error(), "run 1, row 7, latent 2 is NaN"), "%s", knobs_last_error());
  reps[(1 * N + 7) * D + 2] = INFINITY;
  CHECK(knobs_udr(reps, kl, R, N, D, NULL, &r) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "infinite"), "%s",
        knobs_last_error());
  reps[(1 * N + 7) * D + 2] = 0;
  kl[4] = -0.5;
  CHECK(knobs_udr(reps, kl, R, N, D, NULL, &r) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "run 1, latent 1"), "%s",
        knobs_last_error());
  kl[4] = NAN;
  CHECK(knobs_udr(reps, kl, R, N, D, NULL, &r) == KNOBS_ERR_DATA, "%s", knobs_last_error());
  kl[4] = 1;
  CHECK(knobs_udr(NULL, kl, R, N, D, NULL, &r) == KNOBS_ERR_ARG, "no reps");
  CHECK(knobs_udr(reps, kl, R, N, D, NULL, NULL) == KNOBS_ERR_ARG, "no out");
  knobs_udr_result_free(NULL);

  T_CASE("determinism: twice, and 1 or 3 threads");
  for (int v = 0; v < 2; v++) {
    knobs_udr_opts o;
    knobs_udr_opts_default(&o);
    o.variant = v ? KNOBS_UDR_SPEARMAN : KNOBS_UDR_LASSO;
    knobs_udr_result *a = NULL, *b = NULL, *c = NULL;
    knobs_udr(reps, kl, R, N, D, &o, &a);
    knobs_udr(reps, kl, R, N, D, &o, &b);
    o.threads = 3;
    knobs_udr(reps, kl, R, N, D, &o, &c);
    CHECK(a && b && c, "%s", knobs_last_error());
    if (a && b && c) {
      size_t nb = sizeof(double) * (R + R * R + R * R * D * D);
      CHECK(!memcmp(a->scores, b->scores, nb) && !memcmp(a->scores, c->scores, nb), "bits differ (variant %d)", v);
    }
    knobs_udr_result_free(a), knobs_udr_result_free(b), knobs_udr_result_free(c);
  }
}

/* ---- knobs_udr_models --------------------------------------------------------------------------- */
static void test_models(void) {
  T_CASE("knobs_udr_models on tiny models");
  knobs_data *d = mt_toy_open(8, 6);
  knobs_config c0 = mt_config("betavae", "mlp", 8), c1 = c0;
  c1.seed = 8;
  knobs_model *m0 = NULL, *m1 = NULL;
  if (knobs_model_create(&c0, &m0) || knobs_model_create(&c1, &m1)) {
    CHECK(0, "create: %s", knobs_last_error());
    goto out;
  }
  /* a few steps, so that the latents carry some KL */
  for (int t = 0; t < 30; t++) knobs_model_train_step(m0, d, NULL), knobs_model_train_step(m1, d, NULL);
  enum { R = 3, N = 300, Z = 3 };
  knobs_model *ms[R] = {m0, m1, m0};
  knobs_udr_opts o;
  knobs_udr_opts_default(&o);
  o.n = N, o.seed = 4, o.kl_filter_threshold = 0; /* fresh models: keep every latent the zeroing keeps */
  knobs_udr_result *r = NULL, *w = NULL;
  CHECK(knobs_udr_models(ms, R, d, &o, &r) == KNOBS_OK, "%s", knobs_last_error());
  /* the same by hand: the draws (chunks of 256 on streams 0, 1), the codes, the KL */
  float *x = malloc(sizeof(float) * 256 * 64), *reps = malloc(sizeof(float) * R * N * Z), lv[256 * Z];
  double kl[R * Z] = {0};
  for (int i = 0; i < N; i += 256) {
    int b = N - i < 256 ? N - i : 256;
    knobs_data_draw(d, b, 4, (uint64_t)(i / 256), x, NULL);
    for (int m = 0; m < R; m++) {
      float *mu = reps + ((size_t)m * N + i) * Z;
      knobs_model_encode(ms[m], x, b, mu, lv);
      for (int q = 0; q < b * Z; q++) kl[m * Z + q % Z] += 0.5 * ((double)mu[q] * mu[q] + exp(lv[q]) - lv[q] - 1);
    }
  }
  for (int q = 0; q < R * Z; q++) kl[q] /= N;
  CHECK(knobs_udr(reps, kl, R, N, Z, &o, &w) == KNOBS_OK, "%s", knobs_last_error());
  if (r && w) {
    CHECK(r->R == R && r->N == N && r->D == Z, "shape %d %d %d", r->R, r->N, r->D);
    CHECK(!memcmp(r->kl, w->kl, sizeof kl) && !memcmp(r->pairwise, w->pairwise, sizeof(double) * R * R) &&
              !memcmp(r->scores, w->scores, sizeof(double) * R),
          "knobs_udr_models differs from knobs_udr on the same draws");
    int n_act = 0;
    for (int q = 0; q < R * Z; q++) n_act += r->kl[q] > 0.01;
    CHECK(n_act >= 3, "only %d latents of KL > 0.01: train the toy models longer", n_act);
    if (getenv("KNOBS_TEST_VERBOSE"))
      printf("models: %d latents of KL > 0.01; scores %.4f %.4f %.4f\n", n_act, r->scores[0], r->scores[1], r->scores[2]);
    /* model 0 twice: the pair (0, 2) scores as identical representations do */
    float *twin = malloc(sizeof(float) * 2 * N * Z);
    memcpy(twin, reps, sizeof(float) * N * Z), memcpy(twin + N * Z, reps, sizeof(float) * N * Z);
    double kl2[2 * Z];
    memcpy(kl2, kl, sizeof(double) * Z), memcpy(kl2 + Z, kl, sizeof(double) * Z);
    knobs_udr_result *t = NULL;
    CHECK(knobs_udr(twin, kl2, 2, N, Z, &o, &t) == KNOBS_OK, "%s", knobs_last_error());
    if (t) CHECK(r->pairwise[0 * R + 2] == t->pairwise[1] && r->pairwise[2 * R + 0] == t->pairwise[2],
                 "model twice: %.17g %.17g, identical representations %.17g", r->pairwise[2], r->pairwise[6], t->pairwise[1]);
    CHECK(r->pairwise[0 * R + 1] == r->pairwise[2 * R + 1] && r->scores[0] == r->scores[2], "the twins differ");
    knobs_udr_result_free(t);
    free(twin);
  }
  knobs_udr_result_free(r), knobs_udr_result_free(w);
  free(x), free(reps);

  T_CASE("knobs_udr_models refusals");
  knobs_config c2 = c0, c3 = mt_config("betavae", "mlp", 16), c4 = mt_config("infogan", "mlp", 8);
  c2.z_dim = 4;
  knobs_model *m2 = NULL, *m3 = NULL, *m4 = NULL;
  knobs_model_create(&c2, &m2), knobs_model_create(&c3, &m3), knobs_model_create(&c4, &m4);
  CHECK(m2 && m3 && m4, "create: %s", knobs_last_error());
  if (m2 && m3 && m4) {
    r = NULL;
    knobs_model *p2[2] = {m0, m2}, *p3[2] = {m0, m3}, *p4[2] = {m4, m0};
    CHECK(knobs_udr_models(p2, 2, d, &o, &r) == KNOBS_ERR_ARG && !r && strstr(knobs_last_error(), "model 1 has 4 latents"),
          "%s", knobs_last_error());
    CHECK(knobs_udr_models(p3, 2, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "model 1 takes 256"), "%s",
          knobs_last_error());
    CHECK(knobs_udr_models(p4, 2, d, &o, &r) == KNOBS_ERR_UNSUPPORTED && strstr(knobs_last_error(), "model 0"), "%s",
          knobs_last_error());
    CHECK(knobs_udr_models(p2, 1, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "at least 2"), "%s",
          knobs_last_error());
    o.n = 1;
    CHECK(knobs_udr_models(ms, 2, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "n = 1"), "%s",
          knobs_last_error());
  }
  knobs_model_free(m2), knobs_model_free(m3), knobs_model_free(m4);
out:
  knobs_model_free(m0), knobs_model_free(m1);
  knobs_data_free(d);
}

int main(void) {
  test_reference();
  test_identities();
  test_filter();
  test_refusals();
  test_models();
  cJSON_Delete(ref);
  return t_done();
}
