/* api.c: the public entry points of the metrics module: the metric table, options, the
 * checks on user arrays (every message names the array, the row and what to do), the draw and
 * encoding of dataset points, and the loop that runs each requested metric, times it and puts
 * its scores into the result. The metrics themselves live one family per file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "metrics/metrics.h"

static const kn_metric table[] = {
    {"beta_vae", "accuracy of a linear classifier predicting the fixed factor from mean |z1 - z2| (Higgins et al.)",
     KN_NEED_FACTORS | KN_NEED_K2 | KN_NEED_RENDER, "eval_accuracy", kn_beta_vae_rows, kn_beta_vae_data},
    {"factor_vae", "majority vote on the dimension of least normalised variance with one factor fixed (Kim & Mnih)",
     KN_NEED_FACTORS | KN_NEED_K2 | KN_NEED_RENDER, "eval_accuracy", kn_factor_vae_rows, kn_factor_vae_data},
    {"mig", "mutual information gap of the discretised codes, normalised by the factor entropy",
     KN_NEED_FACTORS, "discrete_mig", kn_mig, NULL},
    {"mig_sampled", "Chen et al.'s MIG: MI from the posterior of every point, normalised by log(values)",
     KN_NEED_FACTORS | KN_NEED_LOGVAR | KN_NEED_RENDER, "mig_sampled", kn_mig_sampled_rows, kn_mig_sampled_data},
    {"dci", "disentanglement, completeness, informativeness from gradient-boosted trees (Eastwood & Williams)",
     KN_NEED_FACTORS | KN_NEED_SPLIT | KN_NEED_K2, "disentanglement", kn_dci, NULL},
    {"sap", "separated attribute predictability: gap of the two best single-code linear SVMs",
     KN_NEED_FACTORS | KN_NEED_SPLIT, "SAP_score", kn_sap, NULL},
    {"modularity", "how much each code depends on a single factor (Ridgeway & Mozer)",
     KN_NEED_FACTORS | KN_NEED_K2, "modularity_score", kn_modularity, NULL},
    {"explicitness", "ROC AUC of a logistic regression from all codes to each factor (Ridgeway & Mozer)",
     KN_NEED_FACTORS | KN_NEED_SPLIT, "explicitness_score_test", kn_explicitness, NULL},
    {"irs", "interventional robustness score (Suter et al.)", KN_NEED_FACTORS, "IRS", kn_irs, NULL},
    {"unsupervised", "Gaussian total correlation, Wasserstein correlation, mean pairwise MI of the codes",
     0, "gaussian_total_correlation", kn_unsupervised, NULL},
    {"intervention", "concentration of the code change when one factor moves one step",
     KN_NEED_FACTORS | KN_NEED_DATASET | KN_NEED_RENDER, "concentration_max", NULL, kn_intervention},
    {"elbo", "reconstruction, KL and ELBO on held-out observations; KL per dimension, active dimensions",
     KN_NEED_DATASET | KN_NEED_EVALUATE, "elbo", NULL, kn_elbo},
};
#define NMETRICS (int)(sizeof table / sizeof table[0])

const char *const *knobs_metric_names(void) {
  static const char *names[NMETRICS + 1];
  for (int i = 0; i < NMETRICS; i++) names[i] = table[i].name;
  names[NMETRICS] = NULL;
  return names;
}

const char *knobs_metric_describe(const char *name) {
  for (int i = 0; i < NMETRICS; i++)
    if (name && !strcmp(table[i].name, name)) return table[i].describe;
  return NULL;
}

void knobs_metrics_opts_default(knobs_metrics_opts *o) {
  memset(o, 0, sizeof *o);
  o->threads = 1;
  o->train_frac = 0.9;
  o->num_train = 10000;
  o->num_test = 5000;
  o->num_bins = 20;
  o->batch_size = 64;
  o->num_eval = 5000;
  o->num_variance = 10000;
  o->prune_threshold = 0.05;
  o->gbt_stages = 100;
  o->gbt_depth = 3;
  o->gbt_learning_rate = 0.1;
  o->sap_C = 0.01;
  o->logreg_C = 1.0;
  o->irs_quantile = 0.99;
  o->intervention_n = 5000;
  o->intervention_scale_n = 10000;
  o->intervention_active = 0.05;
  o->mig_sampled_samples = 10000;
  o->elbo_points = 10000;
  o->codes_name = "codes";
  o->factors_name = "factors";
  o->logvar_name = "logvar";
}

#define RANGE(field, lo, hi)                                                                           \
  if (!(o->field >= (lo) && o->field <= (hi)))                                                         \
    return kn_err(KNOBS_ERR_ARG, "metrics: option %s = %g is out of range [%g, %g]", #field, (double)o->field, \
                  (double)(lo), (double)(hi));

static knobs_status check_opts(const knobs_metrics_opts *o) {
  RANGE(threads, 1, 1024);
  if (!(o->train_frac > 0 && o->train_frac < 1))
    return kn_err(KNOBS_ERR_ARG, "metrics: train fraction %g must be strictly between 0 and 1", o->train_frac);
  RANGE(num_train, 1, 1e8);
  RANGE(num_test, 1, 1e8);
  RANGE(num_bins, 1, 4096);
  RANGE(batch_size, 2, 1e6);
  RANGE(num_eval, 1, 1e8);
  RANGE(num_variance, 2, 1e8);
  RANGE(prune_threshold, 0, 1e300);
  RANGE(gbt_stages, 1, 8192);
  RANGE(gbt_depth, 1, 7);
  RANGE(gbt_learning_rate, 1e-12, 1e6);
  RANGE(sap_C, 1e-300, 1e300);
  RANGE(logreg_C, 1e-300, 1e300);
  RANGE(irs_quantile, 0, 1);
  RANGE(intervention_n, 1, 1e8);
  RANGE(intervention_scale_n, 2, 1e8);
  RANGE(intervention_active, 0, 1);
  RANGE(mig_sampled_points, 0, 4e6);
  RANGE(mig_sampled_samples, 1, 1e8);
  RANGE(elbo_points, 1, 1e8);
  return KNOBS_OK;
}

/* ---- shared helpers --------------------------------------------------------------------- */
typedef struct {
  long n;
  int chunks, width;
  kn_chunk_fn fn;
  void *ctx;
  double *partial;
} chunk_job;

static void chunk_task(void *ctx, int tid, int nt) {
  chunk_job *j = ctx;
  long lo, hi;
  kn_split(j->chunks, tid, nt, &lo, &hi);
  for (long q = lo; q < hi; q++) {
    long a, b;
    kn_split(j->n, (int)q, j->chunks, &a, &b);
    j->fn(j->ctx, a, b, j->partial + q * j->width);
  }
}

void kn_parallel_chunks(kn_pool *pool, long n, int chunks, int width, kn_chunk_fn fn, void *ctx,
                        double *partial) {
  chunk_job j = {n, chunks, width, fn, ctx, partial};
  kn_pool_run(pool, chunk_task, &j);
}

knobs_status kn_progress(const kn_mctx *c, const char *metric, double done, double total) {
  if (c->o->progress && c->o->progress(c->o->progress_ctx, metric, done, total))
    return kn_err(KNOBS_ERR_INTERRUPTED, "%s: stopped on request", metric);
  return KNOBS_OK;
}

static int enc_batch(const kn_mctx *c) { return c->enc->batch > 0 ? c->enc->batch : 512; }

knobs_status kn_encode_obs(const kn_mctx *c, const float *obs, int n, float *codes) {
  const knobs_data_info *in = &c->data->info;
  size_t per = (size_t)in->C * in->H * in->W;
  int B = enc_batch(c), D = c->D;
  for (int i = 0; i < n; i += B) {
    int b = n - i < B ? n - i : B;
    knobs_status s = c->enc->encode(c->enc->ctx, obs + (size_t)i * per, b, codes + (size_t)i * D);
    if (s) return kn_err_prefix(s, "encoder");
    for (size_t q = 0; q < (size_t)b * D; q++)
      if (!isfinite(codes[(size_t)i * D + q]))
        return kn_err(KNOBS_ERR_DATA, "the encoder returned a non-finite code (dimension %d of an observation)", (int)(q % D));
  }
  return KNOBS_OK;
}

knobs_status kn_encode_factors(const kn_mctx *c, const int32_t *f, int n, float *codes) {
  const knobs_data_info *in = &c->data->info;
  size_t per = (size_t)in->C * in->H * in->W;
  int B = enc_batch(c), KD = in->K;
  float *obs = malloc(sizeof(float) * per * (size_t)(n < B ? n : B));
  if (!obs) return kn_err(KNOBS_ERR_NOMEM, "cannot allocate %d observations", n < B ? n : B);
  knobs_status s = KNOBS_OK;
  for (int i = 0; i < n && !s; i += B) {
    int b = n - i < B ? n - i : B;
    s = knobs_data_render(c->data, f + (size_t)i * KD, b, obs);
    if (!s) s = kn_encode_obs(c, obs, b, codes + (size_t)i * c->D);
  }
  free(obs);
  return s;
}

/* ---- the metric list -------------------------------------------------------------------- */
/* Parse "all" or a comma list into table indices (in the order given, without repeats). */
static knobs_status parse_list(const char *spec, int *idx, int *n, int *all) {
  *n = 0;
  *all = !spec || !*spec || !strcmp(spec, "all");
  if (*all) {
    for (int i = 0; i < NMETRICS; i++) idx[(*n)++] = i;
    return KNOBS_OK;
  }
  char buf[1024];
  if (strlen(spec) >= sizeof buf) return kn_err(KNOBS_ERR_ARG, "metrics: list too long");
  strcpy(buf, spec);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = -1;
    for (int i = 0; i < NMETRICS; i++)
      if (!strcmp(table[i].name, t)) found = i;
    if (found < 0) {
      char names[512] = "";
      size_t m = 0;
      for (int i = 0; i < NMETRICS; i++) m += (size_t)snprintf(names + m, sizeof names - m, "%s%s", i ? ", " : "", table[i].name);
      return kn_err(KNOBS_ERR_ARG, "unknown metric '%s' (known: all, %s)", t, names);
    }
    int dup = 0;
    for (int q = 0; q < *n; q++) dup |= idx[q] == found;
    if (!dup) idx[(*n)++] = found;
  }
  if (!*n) return kn_err(KNOBS_ERR_ARG, "metrics: empty metric list");
  return KNOBS_OK;
}

/* What the inputs offer; a metric needing something else is refused (explicit request) or
 * skipped with its reason (for "all"). Returns NULL if the metric can run. */
typedef struct {
  int dataset, factors, logvar, evaluate, K;
  const char *fname; /* what the factors are called in messages */
  int render;        /* dataset: factor vectors can be rendered */
} offer;

static const char *missing(const kn_metric *m, const offer *f) {
  if ((m->needs & KN_NEED_DATASET) && !f->dataset) return "needs a dataset and an encoder (knobs eval)";
  if ((m->needs & KN_NEED_FACTORS) && !f->factors) return "needs ground-truth factors";
  if ((m->needs & KN_NEED_LOGVAR) && !f->logvar)
    return f->dataset ? "needs the encoder's posterior (a model with one)" : "needs posterior log-variances (--logvar)";
  if ((m->needs & KN_NEED_EVALUATE) && !f->evaluate) return "needs the model's evaluate (knobs eval with a VAE)";
  if ((m->needs & KN_NEED_K2) && f->factors && f->K < 2) return "needs at least two factors";
  if ((m->needs & KN_NEED_RENDER) && f->dataset && !f->render)
    return "needs a dataset that renders any factor vector (this one is drawn, not rendered)";
  return NULL;
}

/* ---- running ---------------------------------------------------------------------------- */
static void put_seed(cJSON *root, uint64_t seed) {
  if (seed <= (1ull << 53)) kn_json_num(root, "seed", (double)seed);
  else {
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)seed);
    kn_json_str(root, "seed", b);
  }
}

static knobs_status run_metrics(kn_mctx *c, const int *idx, int n, int all, const offer *f,
                                cJSON *root) {
  cJSON *ms = cJSON_CreateObject(), *skipped = NULL;
  cJSON_AddItemToObject(root, "metrics", ms);
  for (int q = 0; q < n; q++) {
    const kn_metric *m = &table[idx[q]];
    const char *why = missing(m, f);
    if (why) {
      if (!all) {
        if ((m->needs & KN_NEED_K2) && f->factors && f->K < 2)
          return kn_err(KNOBS_ERR_ARG, "%s %s: %s has K = %d", m->name, why, f->fname, f->K);
        return kn_err(KNOBS_ERR_ARG, "%s %s", m->name, why);
      }
      if (!skipped) {
        skipped = cJSON_CreateObject();
        cJSON_AddItemToObject(root, "skipped", skipped);
      }
      kn_json_str(skipped, m->name, why);
      continue;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(ms, m->name, o);
    c->stream = KN_STREAM_EVAL + ((uint64_t)(idx[q] + 1) << 34);
    double t0 = kn_now();
    knobs_status s = f->dataset && m->dataset ? m->dataset(c, o) : m->rows(c, o);
    if (s) return kn_err_prefix(s, "%s", m->name);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, m->headline);
    if (cJSON_IsNumber(h)) kn_json_num(o, "score", h->valuedouble);
    kn_json_num(o, "seconds", kn_now() - t0);
  }
  return KNOBS_OK;
}

static knobs_status check_split_classes(const kn_mctx *c, const char *what) {
  for (int k = 0; k < c->K; k++) {
    int first = c->train.y[k], more = 0;
    for (int i = 1; i < c->train.n && !more; i++) more = c->train.y[(size_t)i * c->K + k] != first;
    if (!more)
      return kn_err(KNOBS_ERR_DATA, "%s: factor %d takes a single value in the %d training rows: the classifiers "
                    "need two (shuffle the rows, or change the train fraction)", what, k, c->train.n);
  }
  return KNOBS_OK;
}

/* ---- arrays ------------------------------------------------------------------------------- */
static int is_float(knobs_dtype t) { return t == KNOBS_F32 || t == KNOBS_F64; }

typedef struct {
  double v;
  int i;
} vpair;

static int cmp_vpair(const void *a, const void *b) {
  const vpair *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

knobs_status knobs_metrics_arrays(const knobs_array *codes, const knobs_array *factors,
                                  const knobs_array *logvar, const char *metrics,
                                  const knobs_metrics_opts *opts, knobs_result **out) {
  *out = NULL;
  knobs_metrics_opts def;
  if (!opts) {
    knobs_metrics_opts_default(&def);
    opts = &def;
  }
  knobs_status s = check_opts(opts);
  if (s) return s;
  const char *cn = opts->codes_name ? opts->codes_name : "codes";
  const char *fn = opts->factors_name ? opts->factors_name : "factors";
  const char *ln = opts->logvar_name ? opts->logvar_name : "logvar";
  int idx[NMETRICS], nm, all;
  if ((s = parse_list(metrics, idx, &nm, &all))) return s;

  /* shapes */
  if (!codes || (!codes->data && knobs_array_count(codes) > 0)) return kn_err(KNOBS_ERR_ARG, "no codes given");
  if (codes->ndim == 1)
    return kn_err(KNOBS_ERR_DATA, "%s is 1-D (%lld values): codes are (N, D), and a single code dimension is not "
                  "enough (every metric compares code dimensions: D >= 2)", cn, (long long)codes->shape[0]);
  if (codes->ndim != 2)
    return kn_err(KNOBS_ERR_DATA, "%s: expected a 2-D array (N, D) of codes, got %d dimensions", cn, codes->ndim);
  int64_t N64 = codes->shape[0], D64 = codes->shape[1];
  if (N64 == 0) return kn_err(KNOBS_ERR_DATA, "%s is empty: no rows", cn);
  if (D64 == 0) return kn_err(KNOBS_ERR_DATA, "%s has no columns (shape (%lld, 0))", cn, (long long)N64);
  if (D64 < 2)
    return kn_err(KNOBS_ERR_DATA, "%s has a single code dimension (D = 1): every metric compares code dimensions, "
                  "so it needs D >= 2", cn);
  if (N64 > 100000000 || D64 > 65536) return kn_err(KNOBS_ERR_DATA, "%s is too large (%lld x %lld)", cn, (long long)N64, (long long)D64);
  if (codes->dtype == KNOBS_BOOL)
    return kn_err(KNOBS_ERR_DATA, "%s is boolean: codes must be numbers", cn);
  int N = (int)N64, D = (int)D64, K = 0;
  if (factors) {
    if (factors->ndim != 1 && factors->ndim != 2)
      return kn_err(KNOBS_ERR_DATA, "%s: expected (N, K) or (N,) factor labels, got %d dimensions", fn, factors->ndim);
    if (factors->shape[0] == 0) return kn_err(KNOBS_ERR_DATA, "%s is empty: no rows", fn);
    if (factors->shape[0] != N64)
      return kn_err(KNOBS_ERR_DATA, "%s has %lld rows but %s has %lld: they must describe the same points, row by row",
                    fn, (long long)factors->shape[0], cn, (long long)N64);
    int64_t K64 = factors->ndim == 2 ? factors->shape[1] : 1;
    if (K64 == 0) return kn_err(KNOBS_ERR_DATA, "%s has no columns", fn);
    if (K64 > KN_MAX_K) return kn_err(KNOBS_ERR_DATA, "%s has %lld factors; at most %d are supported", fn, (long long)K64, KN_MAX_K);
    K = (int)K64;
  }
  if (logvar) {
    if (logvar->ndim != 2 || logvar->shape[0] != N64 || logvar->shape[1] != D64)
      return kn_err(KNOBS_ERR_DATA, "%s must have the shape of %s (%lld, %lld), got %s%lld%s%lld)", ln, cn,
                    (long long)N64, (long long)D64, "(", (long long)logvar->shape[0], logvar->ndim > 1 ? ", " : "",
                    logvar->ndim > 1 ? (long long)logvar->shape[1] : 0);
  }

  double *z = malloc(sizeof(double) * (size_t)N * D), *lv = NULL, *yv = NULL;
  int32_t *y = NULL;
  int *ncls = NULL;
  vpair *col = NULL;
  cJSON *root = NULL;
  kn_pool *pool = NULL;
  if (!z) return kn_err(KNOBS_ERR_NOMEM, "cannot allocate %d x %d codes", N, D);
  for (size_t q = 0; q < (size_t)N * D; q++) {
    z[q] = codes->dtype == KNOBS_F32 ? (double)((const float *)codes->data)[q]
           : codes->dtype == KNOBS_F64 ? ((const double *)codes->data)[q]
                                       : knobs_array_get(codes, (int64_t)q);
    if (!isfinite(z[q])) {
      s = kn_err(KNOBS_ERR_DATA, "%s: row %zu, dimension %zu is %s: codes must be finite (a diverged model?)", cn,
                 q / (size_t)D, q % (size_t)D, isnan(z[q]) ? "NaN" : "infinite");
      goto fail;
    }
  }
  if (logvar) {
    lv = malloc(sizeof(double) * (size_t)N * D);
    if (!lv) goto nomem;
    for (size_t q = 0; q < (size_t)N * D; q++)
      if (!isfinite(lv[q] = knobs_array_get(logvar, (int64_t)q))) {
        s = kn_err(KNOBS_ERR_DATA, "%s: row %zu, dimension %zu is not finite", ln, q / (size_t)D, q % (size_t)D);
        goto fail;
      }
  }
  if (factors) {
    y = malloc(sizeof(int32_t) * (size_t)N * K);
    yv = malloc(sizeof(double) * (size_t)N * K);
    ncls = malloc(sizeof(int) * (size_t)K);
    col = malloc(sizeof(vpair) * (size_t)N);
    if (!y || !yv || !ncls || !col) goto nomem;
    if (factors->dtype == KNOBS_BOOL) {
      s = kn_err(KNOBS_ERR_DATA, "%s is boolean; give integer class labels", fn);
      goto fail;
    }
    for (size_t q = 0; q < (size_t)N * K; q++) {
      double v = knobs_array_get(factors, (int64_t)q);
      if (!isfinite(v) || (is_float(factors->dtype) && v != floor(v))) {
        s = kn_err(KNOBS_ERR_DATA, "%s: row %zu, factor %zu is %g: factors must be integer class labels "
                   "(discretise continuous factors first)", fn, q / (size_t)K, q % (size_t)K, v);
        goto fail;
      }
      yv[q] = v;
    }
    for (int k = 0; k < K; k++) {
      for (int i = 0; i < N; i++) col[i] = (vpair){yv[(size_t)i * K + k], i};
      qsort(col, (size_t)N, sizeof *col, cmp_vpair);
      int c = 0;
      for (int i = 0; i < N; i++) {
        if (i && col[i].v != col[i - 1].v) c++;
        y[(size_t)col[i].i * K + k] = c;
      }
      ncls[k] = c + 1;
      if (ncls[k] > KN_MAX_CLASSES) {
        s = kn_err(KNOBS_ERR_DATA, "%s: factor %d has %d distinct values; factors are class labels (at most %d): "
                   "discretise it", fn, k, ncls[k], KN_MAX_CLASSES);
        goto fail;
      }
    }
  }
  /* the split */
  int ntr = (int)ceil((double)N * opts->train_frac);
  if (ntr > N) ntr = N;
  offer f = {0, factors != NULL, logvar != NULL, 0, K, fn, 0};
  int needs_split = 0, needs_factors = 0;
  for (int q = 0; q < nm; q++)
    if (!missing(&table[idx[q]], &f)) {
      needs_split |= (table[idx[q]].needs & KN_NEED_SPLIT) != 0;
      needs_factors |= (table[idx[q]].needs & KN_NEED_FACTORS) != 0;
    }
  if (needs_factors)
    for (int k = 0; k < K; k++)
      if (ncls[k] < 2) {
        s = kn_err(KNOBS_ERR_DATA, "%s: factor %d has the single value %g in all %d rows: there is nothing to "
                   "predict (drop that column)", fn, k, yv[k], N);
        goto fail;
      }
  if (needs_split && N - ntr < 1) {
    s = kn_err(KNOBS_ERR_DATA, "%d rows with train fraction %g leave no test rows (lower the train fraction or give "
               "more rows)", N, opts->train_frac);
    goto fail;
  }
  kn_mctx c = {.D = D, .K = K, .f32 = codes->dtype == KNOBS_F32, .ncls = ncls, .o = opts};
  c.all = (kn_rows){N, z, y, yv, lv};
  c.train = (kn_rows){ntr, z, y, yv, lv};
  c.test = (kn_rows){N - ntr, z + (size_t)ntr * D, y ? y + (size_t)ntr * K : NULL, yv ? yv + (size_t)ntr * K : NULL,
                     lv ? lv + (size_t)ntr * D : NULL};
  if (needs_split && (s = check_split_classes(&c, fn))) goto fail;
  if (opts->threads > 1 && !(pool = kn_pool_create(opts->threads))) {
    s = knobs_last_status();
    goto fail;
  }
  c.pool = pool;
  root = cJSON_CreateObject();
  kn_json_str(root, "knobs_version", knobs_version());
  put_seed(root, opts->seed);
  kn_json_num(root, "threads", opts->threads);
  cJSON *in = cJSON_CreateObject();
  cJSON_AddItemToObject(root, "input", in);
  kn_json_str(in, "kind", "arrays");
  kn_json_str(in, "codes", cn);
  kn_json_str(in, "codes_dtype", knobs_dtype_name(codes->dtype));
  if (factors) kn_json_str(in, "factors", fn);
  if (logvar) kn_json_str(in, "logvar", ln);
  kn_json_num(in, "N", N);
  kn_json_num(in, "D", D);
  kn_json_num(in, "K", K);
  kn_json_num(in, "train_frac", opts->train_frac);
  kn_json_num(in, "n_train", ntr);
  kn_json_num(in, "n_test", N - ntr);
  if (factors) kn_json_ivec(in, "factor_classes", ncls, K);
  if ((s = run_metrics(&c, idx, nm, all, &f, root))) goto fail;
  if (!(*out = kn_result_new(root))) {
    root = NULL;
    s = KNOBS_ERR_NOMEM;
    goto fail;
  }
  root = NULL;
  s = KNOBS_OK;
  goto fail; /* shared cleanup */
nomem:
  s = kn_err(KNOBS_ERR_NOMEM, "cannot allocate the metric inputs (%d x %d)", N, D);
fail:
  cJSON_Delete(root);
  kn_pool_free(pool);
  free(z), free(lv), free(yv), free(y), free(ncls), free(col);
  return s;
}

/* ---- datasets ----------------------------------------------------------------------------- */
knobs_status knobs_metrics_dataset(knobs_data *d, const knobs_encoder *enc, const char *metrics,
                                   const knobs_metrics_opts *opts, knobs_result **out) {
  *out = NULL;
  knobs_metrics_opts def;
  if (!opts) {
    knobs_metrics_opts_default(&def);
    opts = &def;
  }
  knobs_status s = check_opts(opts);
  if (s) return s;
  if (!d || !enc || !enc->encode) return kn_err(KNOBS_ERR_ARG, "metrics: no dataset or encoder");
  if (enc->code_dim < 2)
    return kn_err(KNOBS_ERR_DATA, "the encoder has %d code dimension%s: every metric compares code dimensions, so it "
                  "needs at least 2", enc->code_dim, enc->code_dim == 1 ? "" : "s");
  int idx[NMETRICS], nm, all;
  if ((s = parse_list(metrics, idx, &nm, &all))) return s;
  const knobs_data_info *info = knobs_data_info_get(d);
  int D = enc->code_dim, KD = info->K, K = 0;
  int fmap[KNOBS_MAX_FACTORS], ncls[KNOBS_MAX_FACTORS];
  const char *fname[KNOBS_MAX_FACTORS];
  for (int k = 0; k < KD; k++)
    if (info->factor_sizes[k] > 1) {
      fmap[K] = k;
      ncls[K] = info->factor_sizes[k];
      fname[K] = info->factor_names[k];
      K++;
    }
  offer f = {1, K > 0, enc->posterior != NULL, enc->evaluate != NULL, K, info->name, info->has_render || d->grid};
  int rows_needed = 0;
  for (int q = 0; q < nm; q++) {
    const kn_metric *m = &table[idx[q]];
    if (!missing(m, &f) && !m->dataset) rows_needed = 1;
  }
  int ntr = opts->num_train, nte = opts->num_test, n = ntr + nte;
  double *z = NULL, *yv = NULL;
  int32_t *y = NULL, *fac = NULL;
  float *zf = NULL;
  kn_pool *pool = NULL;
  cJSON *root = NULL;
  kn_mctx c = {.D = D, .K = K, .f32 = 1, .ncls = ncls, .fname = fname, .o = opts, .data = d, .fmap = fmap, .enc = enc};
  if (opts->threads > 1 && !(pool = kn_pool_create(opts->threads))) return knobs_last_status();
  c.pool = pool;
  double draw_secs = 0;
  if (rows_needed) {
    /* the shared draw of the array metrics: num_train then num_test points */
    z = malloc(sizeof(double) * (size_t)n * D);
    zf = malloc(sizeof(float) * (size_t)n * D);
    y = malloc(sizeof(int32_t) * (size_t)n * (K ? K : 1));
    yv = malloc(sizeof(double) * (size_t)n * (K ? K : 1));
    fac = malloc(sizeof(int32_t) * (size_t)n * (KD ? KD : 1));
    if (!z || !zf || !y || !yv || !fac) {
      s = kn_err(KNOBS_ERR_NOMEM, "cannot allocate %d points", n);
      goto fail;
    }
    double t0 = kn_now();
    { /* drawn as training draws (factors sampled and rendered, or the dataset's own draw) */
      size_t per = (size_t)info->C * info->H * info->W;
      int B = enc_batch(&c);
      float *obs = malloc(sizeof(float) * per * (size_t)B);
      if (!obs) {
        s = kn_err(KNOBS_ERR_NOMEM, "cannot allocate observations");
        goto fail;
      }
      for (int i = 0; i < n && !s; i += B) {
        int b = n - i < B ? n - i : B;
        s = knobs_data_draw(d, b, opts->seed, KN_STREAM_EVAL + (uint64_t)i, obs, KD ? fac + (size_t)i * KD : NULL);
        if (!s) s = kn_encode_obs(&c, obs, b, zf + (size_t)i * D);
        if (!s) s = kn_progress(&c, "drawing points", i + b, n);
      }
      free(obs);
      if (s) goto fail;
    }
    draw_secs = kn_now() - t0;
    for (size_t q = 0; q < (size_t)n * D; q++) z[q] = zf[q];
    for (int i = 0; i < n; i++)
      for (int k = 0; k < K; k++) {
        y[(size_t)i * K + k] = fac[(size_t)i * KD + fmap[k]];
        yv[(size_t)i * K + k] = y[(size_t)i * K + k];
      }
    c.all = (kn_rows){ntr, z, y, yv, NULL};
    c.train = c.all;
    c.test = (kn_rows){nte, z + (size_t)ntr * D, y + (size_t)ntr * K, yv + (size_t)ntr * K, NULL};
    int needs_split = 0;
    for (int q = 0; q < nm; q++)
      if (!missing(&table[idx[q]], &f) && !table[idx[q]].dataset && (table[idx[q]].needs & KN_NEED_SPLIT)) needs_split = 1;
    if (needs_split && K && (s = check_split_classes(&c, info->name))) goto fail;
  }
  root = cJSON_CreateObject();
  kn_json_str(root, "knobs_version", knobs_version());
  put_seed(root, opts->seed);
  kn_json_num(root, "threads", opts->threads);
  cJSON *in = cJSON_CreateObject();
  cJSON_AddItemToObject(root, "input", in);
  kn_json_str(in, "kind", "dataset");
  kn_json_str(in, "data", info->name);
  kn_json_num(in, "code_dim", D);
  cJSON *fn = cJSON_CreateArray();
  for (int k = 0; k < K; k++) cJSON_AddItemToArray(fn, cJSON_CreateString(fname[k]));
  cJSON_AddItemToObject(in, "factors", fn);
  kn_json_ivec(in, "factor_sizes", ncls, K);
  if (rows_needed) {
    kn_json_num(in, "num_train", ntr);
    kn_json_num(in, "num_test", nte);
    kn_json_num(in, "draw_seconds", draw_secs);
  }
  if ((s = run_metrics(&c, idx, nm, all, &f, root))) goto fail;
  if (!(*out = kn_result_new(root))) {
    root = NULL;
    s = KNOBS_ERR_NOMEM;
    goto fail;
  }
  root = NULL;
  s = KNOBS_OK;
fail:
  cJSON_Delete(root);
  kn_pool_free(pool);
  free(z), free(zf), free(y), free(yv), free(fac);
  return s;
}
