/* api.c: the public entry points of the metrics module: the metric table, options, the
 * checks on user arrays (every message names the array, the row and what to do), the draw and
 * encoding of dataset points, and the loop that runs each requested metric, times it and puts
 * its scores into the result. The metrics themselves live one family per file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
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
    {.name = "mcc", .describe = "mean correlation coefficient: |Pearson| (or Spearman) correlations of factors "
     "matched one-to-one to codes (Hungarian); continuous factors allowed", .needs = KN_NEED_FACTORS | KN_CONTINUOUS,
     .headline = "mcc", .rows = kn_mcc},
    {.name = "amari", .describe = "Amari index of W A (0: the unmixing W inverts the true mixing A up to scale and "
     "order; options amari_unmixing, amari_mixing)", .needs = KN_NEED_MIXING | KN_CONTINUOUS,
     .headline = "amari_index", .rows = kn_amari},
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

void knobs_encoder_release(knobs_encoder *e) {
  if (!e) return;
  if (e->release) e->release(e->ctx);
  memset(e, 0, sizeof *e);
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

knobs_status kn_encode_rendered(const kn_mctx *c, const int32_t *f, const float *obs, int n, float *codes) {
  if (!c->grid) return kn_encode_obs(c, obs, n, codes);
  kn_grid_lookup(c, f, n, codes, NULL);
  return KNOBS_OK;
}

knobs_status kn_encode_factors(const kn_mctx *c, const int32_t *f, int n, float *codes) {
  if (c->grid) return kn_encode_rendered(c, f, NULL, n, codes); /* nothing to render */
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
  int mixing;        /* the amari options name an unmixing and a mixing */
} offer;

static const char *missing(const kn_metric *m, const offer *f) {
  if ((m->needs & KN_NEED_DATASET) && !f->dataset) return "needs a dataset and an encoder (knobs eval)";
  if ((m->needs & KN_NEED_FACTORS) && !f->factors) return "needs ground-truth factors";
  if ((m->needs & KN_NEED_LOGVAR) && !f->logvar)
    return f->dataset ? "needs the encoder's posterior (a model with one)" : "needs posterior log-variances (a logvar array)";
  if ((m->needs & KN_NEED_EVALUATE) && !f->evaluate) return "needs the model's evaluate (knobs eval with a VAE)";
  if ((m->needs & KN_NEED_K2) && f->factors && f->K < 2) return "needs at least two factors";
  if ((m->needs & KN_NEED_MIXING) && !f->mixing)
    return "needs the unmixing and the true mixing (options amari_unmixing and amari_mixing: .npy files)";
  if ((m->needs & KN_NEED_RENDER) && f->dataset && !f->render)
    return "needs a dataset that renders any factor vector (this one is drawn, not rendered)";
  return NULL;
}

/* ---- running ---------------------------------------------------------------------------- */
/* The result of a run: {"knobs_version", "seed", "threads", "input": {"kind": kind}}, with
 * *in set to the input object. NULL (NOMEM set) on failure. */
static knobs_result *result_start(const knobs_metrics_opts *o, const char *kind, cJSON **in) {
  cJSON *root = cJSON_CreateObject();
  if (!root) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate a metrics result");
    return NULL;
  }
  knobs_result *res = kn_result_new(root);
  if (!res) return NULL;
  kn_json_str(root, "knobs_version", knobs_version());
  if (o->seed <= (1ull << 53)) kn_json_num(root, "seed", (double)o->seed);
  else {
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)o->seed);
    kn_json_str(root, "seed", b);
  }
  kn_json_num(root, "threads", o->threads);
  *in = cJSON_CreateObject();
  cJSON_AddItemToObject(root, "input", *in);
  kn_json_str(*in, "kind", kind);
  return res;
}

/* The end of a run with status s: the result on success, the partial result marked
 * "interrupted" on KNOBS_ERR_INTERRUPTED, nothing otherwise (the contract in knobs.h). */
static knobs_status result_finish(knobs_status s, knobs_result *res, knobs_result **out) {
  if (!s || s == KNOBS_ERR_INTERRUPTED) {
    cJSON *root = kn_result_root(res);
    if (!cJSON_GetObjectItemCaseSensitive(root, "metrics")) cJSON_AddItemToObject(root, "metrics", cJSON_CreateObject());
    if (s) cJSON_AddTrueToObject(root, "interrupted");
    *out = res;
    return s;
  }
  knobs_result_free(res);
  return s;
}

/* Refuse (explicit request) or skip (for "all") a metric the inputs do not allow. */
static knobs_status refuse_or_skip(const kn_metric *m, const char *why, int all, const offer *f, cJSON *root) {
  if (!all) {
    if ((m->needs & KN_NEED_K2) && f->factors && f->K < 2)
      return kn_err(KNOBS_ERR_ARG, "%s %s: %s has K = %d", m->name, why, f->fname, f->K);
    return kn_err(KNOBS_ERR_ARG, "%s %s", m->name, why);
  }
  cJSON *skipped = cJSON_GetObjectItemCaseSensitive(root, "skipped");
  if (!skipped) {
    skipped = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "skipped", skipped);
  }
  kn_json_str(skipped, m->name, why);
  return KNOBS_OK;
}

/* One metric into ms[name], timed, with its headline as "score". On failure its entry is
 * removed, so a partial result holds finished metrics only. */
static knobs_status run_one(kn_mctx *c, int id, const offer *f, cJSON *ms) {
  const kn_metric *m = &table[id];
  knobs_status s = kn_progress(c, m->name, 0, 1);
  if (s) return s;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(ms, m->name, o);
  c->stream = KN_STREAM_EVAL + ((uint64_t)(id + 1) << 34);
  double t0 = kn_now();
  s = f->dataset && m->dataset ? m->dataset(c, o) : m->rows(c, o);
  if (s) {
    cJSON_DeleteItemFromObjectCaseSensitive(ms, m->name);
    return s == KNOBS_ERR_INTERRUPTED ? s : kn_err_prefix(s, "%s", m->name);
  }
  const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, m->headline);
  if (cJSON_IsNumber(h)) kn_json_num(o, "score", h->valuedouble);
  kn_json_num(o, "seconds", kn_now() - t0);
  return KNOBS_OK;
}

/* The requested metrics, in order, into res's "metrics"; o->on_metric after each. */
static knobs_status run_metrics(kn_mctx *c, const int *idx, int n, int all, const offer *f,
                                knobs_result *res) {
  cJSON *root = kn_result_root(res), *ms = cJSON_CreateObject();
  cJSON_AddItemToObject(root, "metrics", ms);
  for (int q = 0; q < n; q++) {
    const kn_metric *m = &table[idx[q]];
    const char *why = missing(m, f);
    knobs_status s = why ? refuse_or_skip(m, why, all, f, root) : run_one(c, idx[q], f, ms);
    if (!s && !why && c->o->on_metric) s = c->o->on_metric(c->o->on_metric_ctx, m->name, res);
    if (s) return s;
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

/* The user's arrays and what they are called in messages. */
typedef struct {
  const knobs_array *codes, *factors, *logvar;
  const char *cn, *fn, *ln;
  int N, D, K;
  int continuous;  /* every metric asked for takes continuous factors (KN_CONTINUOUS) */
} arr_in;

/* Shapes and dtypes of the arrays; sets N, D, K. */
static knobs_status check_shapes(arr_in *a) {
  const knobs_array *codes = a->codes, *factors = a->factors, *logvar = a->logvar;
  const char *cn = a->cn, *fn = a->fn;
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
  if (codes->dtype == KNOBS_BOOL) return kn_err(KNOBS_ERR_DATA, "%s is boolean: codes must be numbers", cn);
  a->N = (int)N64, a->D = (int)D64, a->K = 0;
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
    if (factors->dtype == KNOBS_BOOL) return kn_err(KNOBS_ERR_DATA, "%s is boolean; give integer class labels", fn);
    a->K = (int)K64;
  }
  if (logvar && (logvar->ndim != 2 || logvar->shape[0] != N64 || logvar->shape[1] != D64))
    return kn_err(KNOBS_ERR_DATA, "%s must have the shape of %s (%lld, %lld), got %s%lld%s%lld)", a->ln, cn,
                  (long long)N64, (long long)D64, "(", (long long)logvar->shape[0], logvar->ndim > 1 ? ", " : "",
                  logvar->ndim > 1 ? (long long)logvar->shape[1] : 0);
  return KNOBS_OK;
}

/* The arrays as the metrics see them, carved from one arena. */
typedef struct {
  double *z, *lv, *yv; /* (N,D) codes, (N,D) log-variances or NULL, (N,K) factor values */
  int32_t *y;          /* (N,K) factor classes */
  int *ncls;           /* (K) */
  kn_keyed *col;       /* (N) sort scratch */
} arr_rows;

static void arrays_layout(kn_arena *ar, const arr_in *a, arr_rows *r) {
  size_t ND = (size_t)a->N * a->D, NK = (size_t)a->N * a->K;
  r->z = kn_arena_take(ar, sizeof(double) * ND);
  r->lv = a->logvar ? kn_arena_take(ar, sizeof(double) * ND) : NULL;
  r->yv = a->factors ? kn_arena_take(ar, sizeof(double) * NK) : NULL;
  r->y = a->factors ? kn_arena_take(ar, sizeof(int32_t) * NK) : NULL;
  r->ncls = a->factors ? kn_arena_take(ar, sizeof(int) * (size_t)a->K) : NULL;
  r->col = a->factors ? kn_arena_take(ar, sizeof(kn_keyed) * (size_t)a->N) : NULL;
}

/* Codes and log-variances to double, refusing non-finite values with the row named. */
static knobs_status read_codes(const arr_in *a, arr_rows *r) {
  const knobs_array *codes = a->codes;
  size_t ND = (size_t)a->N * a->D, D = (size_t)a->D;
  for (size_t q = 0; q < ND; q++) {
    double v = codes->dtype == KNOBS_F32 ? (double)((const float *)codes->data)[q]
               : codes->dtype == KNOBS_F64 ? ((const double *)codes->data)[q]
                                           : knobs_array_get(codes, (int64_t)q);
    if (!isfinite(v))
      return kn_err(KNOBS_ERR_DATA, "%s: row %zu, dimension %zu is %s: codes must be finite (a diverged model?)", a->cn,
                    q / D, q % D, isnan(v) ? "NaN" : "infinite");
    r->z[q] = v;
  }
  for (size_t q = 0; a->logvar && q < ND; q++)
    if (!isfinite(r->lv[q] = knobs_array_get(a->logvar, (int64_t)q)))
      return kn_err(KNOBS_ERR_DATA, "%s: row %zu, dimension %zu is not finite", a->ln, q / D, q % D);
  return KNOBS_OK;
}

/* Factor values (integral) and their classes: the sorted distinct values of each column. */
static knobs_status read_factors(const arr_in *a, arr_rows *r) {
  int N = a->N, K = a->K;
  for (size_t q = 0; q < (size_t)N * K; q++) {
    double v = knobs_array_get(a->factors, (int64_t)q);
    if (!isfinite(v) || (!a->continuous && is_float(a->factors->dtype) && v != floor(v)))
      return kn_err(KNOBS_ERR_DATA, "%s: row %zu, factor %zu is %g: factors must be integer class labels "
                    "(discretise continuous factors first; mcc and amari alone take them)", a->fn, q / (size_t)K,
                    q % (size_t)K, v);
    r->yv[q] = v;
  }
  for (int k = 0; k < K; k++) {
    for (int i = 0; i < N; i++) r->col[i] = (kn_keyed){r->yv[(size_t)i * K + k], i};
    kn_keyed_sort(r->col, N);
    int c = 0;
    for (int i = 0; i < N; i++) {
      if (i && r->col[i].v != r->col[i - 1].v) c++;
      r->y[(size_t)r->col[i].i * K + k] = c;
    }
    r->ncls[k] = c + 1;
    if (r->ncls[k] > KN_MAX_CLASSES && !a->continuous)
      return kn_err(KNOBS_ERR_DATA, "%s: factor %d has %d distinct values; factors are class labels (at most %d): "
                    "discretise it", a->fn, k, r->ncls[k], KN_MAX_CLASSES);
  }
  return KNOBS_OK;
}

/* What the metrics that will run need of the rows: varying factors, test rows, both classes
 * of every factor in the train rows. */
static knobs_status check_needs(const kn_mctx *c, const arr_in *a, const int *idx, int nm, const offer *f) {
  int needs_split = 0, needs_factors = 0;
  for (int q = 0; q < nm; q++)
    if (!missing(&table[idx[q]], f)) {
      needs_split |= (table[idx[q]].needs & KN_NEED_SPLIT) != 0;
      needs_factors |= (table[idx[q]].needs & KN_NEED_FACTORS) != 0;
    }
  for (int k = 0; needs_factors && k < a->K; k++)
    if (c->ncls[k] < 2)
      return kn_err(KNOBS_ERR_DATA, "%s: factor %d has the single value %g in all %d rows: there is nothing to "
                    "predict (drop that column)", a->fn, k, c->all.yv[k], a->N);
  if (needs_split && c->test.n < 1)
    return kn_err(KNOBS_ERR_DATA, "%d rows with train fraction %g leave no test rows (lower the train fraction or give "
                  "more rows)", a->N, c->o->train_frac);
  return needs_split ? check_split_classes(c, a->fn) : KNOBS_OK;
}

static void arrays_input_json(cJSON *in, const arr_in *a, const kn_mctx *c) {
  kn_json_str(in, "codes", a->cn);
  kn_json_str(in, "codes_dtype", knobs_dtype_name(a->codes->dtype));
  if (a->factors) kn_json_str(in, "factors", a->fn);
  if (a->logvar) kn_json_str(in, "logvar", a->ln);
  kn_json_num(in, "N", a->N);
  kn_json_num(in, "D", a->D);
  kn_json_num(in, "K", a->K);
  kn_json_num(in, "train_frac", c->o->train_frac);
  kn_json_num(in, "n_train", c->train.n);
  kn_json_num(in, "n_test", c->test.n);
  if (a->factors) kn_json_ivec(in, "factor_classes", c->ncls, a->K);
}

/* The caller's options checked, or the defaults (into *def) when it gave none. */
static knobs_status opts_or_default(const knobs_metrics_opts **o, knobs_metrics_opts *def) {
  if (!*o) {
    knobs_metrics_opts_default(def);
    *o = def;
  }
  return kn_metrics_check_opts(*o);
}

knobs_status knobs_metrics_arrays(const knobs_array *codes, const knobs_array *factors,
                                  const knobs_array *logvar, const char *metrics,
                                  const knobs_metrics_opts *opts, knobs_result **out) {
  *out = NULL;
  knobs_metrics_opts def;
  knobs_status s = opts_or_default(&opts, &def);
  if (s) return s;
  arr_in a = {.codes = codes, .factors = factors, .logvar = logvar,
              .cn = opts->codes_name ? opts->codes_name : "codes",
              .fn = opts->factors_name ? opts->factors_name : "factors",
              .ln = opts->logvar_name ? opts->logvar_name : "logvar"};
  int idx[NMETRICS], nm, all;
  if ((s = parse_list(metrics, idx, &nm, &all)) || (s = check_shapes(&a))) return s;
  a.continuous = !all;
  for (int q = 0; q < nm; q++) a.continuous &= (table[idx[q]].needs & (KN_CONTINUOUS | KN_NEED_FACTORS)) != KN_NEED_FACTORS;
  kn_arena ar = {0};
  arr_rows r;
  arrays_layout(&ar, &a, &r); /* counting */
  if ((s = kn_arena_reserve(&ar, "metrics inputs"))) return s;
  arrays_layout(&ar, &a, &r);
  kn_pool *pool = NULL;
  knobs_result *res = NULL;
  if ((s = read_codes(&a, &r)) || (factors && (s = read_factors(&a, &r)))) goto done;
  int N = a.N, D = a.D, K = a.K, ntr = (int)ceil((double)N * opts->train_frac);
  if (ntr > N) ntr = N;
  offer f = {0, factors != NULL, logvar != NULL, 0, K, a.fn, 0, opts->amari_unmixing && opts->amari_mixing};
  kn_mctx c = {.D = D, .K = K, .f32 = codes->dtype == KNOBS_F32, .ncls = r.ncls, .o = opts};
  c.all = (kn_rows){N, r.z, r.y, r.yv, r.lv};
  c.train = (kn_rows){ntr, r.z, r.y, r.yv, r.lv};
  c.test = (kn_rows){N - ntr, r.z + (size_t)ntr * D, r.y ? r.y + (size_t)ntr * K : NULL,
                     r.yv ? r.yv + (size_t)ntr * K : NULL, r.lv ? r.lv + (size_t)ntr * D : NULL};
  if ((s = check_needs(&c, &a, idx, nm, &f))) goto done;
  if (opts->threads > 1 && !(pool = kn_pool_create(opts->threads))) {
    s = knobs_last_status();
    goto done;
  }
  c.pool = pool;
  cJSON *in = NULL;
  if (!(res = result_start(opts, "arrays", &in))) {
    s = KNOBS_ERR_NOMEM;
    goto done;
  }
  arrays_input_json(in, &a, &c);
  s = result_finish(run_metrics(&c, idx, nm, all, &f, res), res, out);
  res = NULL;
done:
  knobs_result_free(res);
  kn_pool_free(pool);
  kn_arena_free(&ar);
  return s;
}

/* ---- datasets ----------------------------------------------------------------------------- */
/* The shared draw of the array metrics: num_train then num_test points, drawn as training
 * draws (factors sampled and rendered, or the dataset's own draw) and encoded. */
typedef struct {
  double *z, *yv;
  int32_t *y, *fac;
  float *zf, *obs;
} ds_rows;

static void dataset_layout(kn_arena *ar, const kn_mctx *c, int n, int B, ds_rows *r) {
  const knobs_data_info *info = &c->data->info;
  size_t per = (size_t)info->C * info->H * info->W, K = c->K ? (size_t)c->K : 1, KD = info->K ? (size_t)info->K : 1;
  r->z = kn_arena_take(ar, sizeof(double) * (size_t)n * c->D);
  r->zf = kn_arena_take(ar, sizeof(float) * (size_t)n * c->D);
  r->y = kn_arena_take(ar, sizeof(int32_t) * (size_t)n * K);
  r->yv = kn_arena_take(ar, sizeof(double) * (size_t)n * K);
  r->fac = kn_arena_take(ar, sizeof(int32_t) * (size_t)n * KD);
  r->obs = kn_arena_take(ar, sizeof(float) * per * (size_t)B);
}

static knobs_status dataset_draw(kn_mctx *c, ds_rows *r, int ntr, int nte) {
  knobs_data *d = c->data;
  int n = ntr + nte, B = enc_batch(c), D = c->D, K = c->K, KD = d->info.K;
  knobs_status s = KNOBS_OK;
  for (int i = 0; i < n && !s; i += B) {
    int b = n - i < B ? n - i : B;
    s = knobs_data_draw(d, b, c->o->seed, KN_STREAM_EVAL + (uint64_t)i, r->obs, KD ? r->fac + (size_t)i * KD : NULL);
    if (!s) s = kn_encode_rendered(c, r->fac + (size_t)i * KD, r->obs, b, r->zf + (size_t)i * D);
    if (!s) s = kn_progress(c, "drawing points", i + b, n);
  }
  if (s) return s;
  for (size_t q = 0; q < (size_t)n * D; q++) r->z[q] = r->zf[q];
  for (int i = 0; i < n; i++)
    for (int k = 0; k < K; k++) {
      r->y[(size_t)i * K + k] = r->fac[(size_t)i * KD + c->fmap[k]];
      r->yv[(size_t)i * K + k] = r->y[(size_t)i * K + k];
    }
  c->all = (kn_rows){ntr, r->z, r->y, r->yv, NULL};
  c->train = c->all;
  c->test = (kn_rows){nte, r->z + (size_t)ntr * D, r->y + (size_t)ntr * K, r->yv + (size_t)ntr * K, NULL};
  return KNOBS_OK;
}

static void dataset_input_json(cJSON *in, const kn_mctx *c, const char *const *fname) {
  const knobs_data_info *info = &c->data->info;
  kn_json_str(in, "data", info->name);
  kn_json_num(in, "code_dim", c->D);
  cJSON *fn = cJSON_CreateArray();
  for (int k = 0; k < c->K; k++) cJSON_AddItemToArray(fn, cJSON_CreateString(fname[k]));
  cJSON_AddItemToObject(in, "factors", fn);
  kn_json_ivec(in, "factor_sizes", c->ncls, c->K);
}

knobs_status knobs_metrics_dataset(knobs_data *d, const knobs_encoder *enc, const char *metrics,
                                   const knobs_metrics_opts *opts, knobs_result **out) {
  *out = NULL;
  knobs_metrics_opts def;
  knobs_status s = opts_or_default(&opts, &def);
  if (s) return s;
  if (!d || !enc || !enc->encode) return kn_err(KNOBS_ERR_ARG, "metrics: no dataset or encoder");
  if (enc->code_dim < 2)
    return kn_err(KNOBS_ERR_DATA, "the encoder has %d code dimension%s: every metric compares code dimensions, so it "
                  "needs at least 2", enc->code_dim, enc->code_dim == 1 ? "" : "s");
  int idx[NMETRICS], nm, all;
  if ((s = parse_list(metrics, idx, &nm, &all))) return s;
  const knobs_data_info *info = knobs_data_info_get(d);
  int K = 0, fmap[KNOBS_MAX_FACTORS], ncls[KNOBS_MAX_FACTORS];
  const char *fname[KNOBS_MAX_FACTORS];
  for (int k = 0; k < info->K; k++)
    if (info->factor_sizes[k] > 1) {
      fmap[K] = k, ncls[K] = info->factor_sizes[k], fname[K] = info->factor_names[k];
      K++;
    }
  offer f = {1, K > 0, enc->posterior != NULL, enc->evaluate != NULL, K, info->name, info->has_render || d->grid,
             opts->amari_unmixing && opts->amari_mixing};
  int rows_needed = 0, needs_split = 0;
  for (int q = 0; q < nm; q++) {
    const kn_metric *m = &table[idx[q]];
    if (!missing(m, &f) && !m->dataset) rows_needed = 1, needs_split |= (m->needs & KN_NEED_SPLIT) != 0;
  }
  int ntr = opts->num_train, nte = opts->num_test;
  if ((s = kn_grid_check(opts->grid_codes, d, enc))) return s;
  kn_mctx c = {.D = enc->code_dim, .K = K, .f32 = 1, .ncls = ncls, .fname = fname, .o = opts, .data = d,
               .fmap = fmap, .enc = enc, .grid = opts->grid_codes};
  kn_arena ar = {0};
  ds_rows r;
  kn_pool *pool = NULL;
  cJSON *in = NULL;
  knobs_result *res = result_start(opts, "dataset", &in);
  if (!res) return KNOBS_ERR_NOMEM;
  dataset_input_json(in, &c, fname);
  if (opts->threads > 1 && !(pool = kn_pool_create(opts->threads))) {
    s = knobs_last_status();
    goto done;
  }
  c.pool = pool;
  if (rows_needed) {
    dataset_layout(&ar, &c, ntr + nte, enc_batch(&c), &r); /* counting */
    if ((s = kn_arena_reserve(&ar, "metrics: the dataset draw"))) goto done;
    dataset_layout(&ar, &c, ntr + nte, enc_batch(&c), &r);
    double t0 = kn_now();
    if ((s = dataset_draw(&c, &r, ntr, nte))) goto done;
    if (needs_split && K && (s = check_split_classes(&c, info->name))) goto done;
    kn_json_num(in, "num_train", ntr);
    kn_json_num(in, "num_test", nte);
    kn_json_num(in, "draw_seconds", kn_now() - t0);
  }
  s = run_metrics(&c, idx, nm, all, &f, res);
done:
  s = result_finish(s, res, out);
  kn_pool_free(pool);
  kn_arena_free(&ar);
  return s;
}
