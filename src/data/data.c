/* data.c: the dataset registry and the generic half of knobs_data: range checks, index <->
 * factor conversion over the row-major grid, uniform factor sampling, and batching.
 * It does not know any particular dataset; those live one per file beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

static const kn_data_entry *const registry[] = {
    &kn_data_seq_arrays, &kn_data_dsprites, &kn_data_dsprites_seq, &kn_data_shapes, &kn_data_physics, &kn_data_counts,
    &kn_data_fashion,  &kn_data_cells,        &kn_data_h5,     &kn_data_mpi3d,   &kn_data_norb,
    &kn_data_idx,      &kn_data_arrays,
};
#define NREG (int)(sizeof registry / sizeof registry[0])

const char *const *knobs_data_names(void) {
  static const char *names[NREG + 1];
  int k = 0;
  for (int i = 0; i < NREG; i++)
    if (registry[i]->name) names[k++] = registry[i]->name;
  names[k] = NULL;
  return names;
}

const char *knobs_data_describe(const char *name) {
  for (int i = 0; i < NREG; i++)
    if (registry[i]->name && !strcmp(registry[i]->name, name)) return registry[i]->describe;
  return NULL;
}

const char *const *knobs_data_file_types(void) {
  static const char *types[NREG + 1];
  int k = 0;
  for (int i = 0; i < NREG; i++)
    if (!registry[i]->name && registry[i]->describe) types[k++] = registry[i]->describe;
  types[k] = NULL;
  return types;
}

void knobs_data_opts_default(knobs_data_opts *o) {
  memset(o, 0, sizeof *o);
  o->threads = 1;
  o->noise = -1;
}

void kn_data_set_factors(knobs_data_info *info, int K, const char *const *names, const int *sizes) {
  KN_ASSERT(K >= 0 && K <= KNOBS_MAX_FACTORS);
  info->K = K;
  for (int k = 0; k < K; k++) {
    snprintf(info->factor_names[k], sizeof info->factor_names[k], "%s", names[k]);
    info->factor_sizes[k] = sizes[k];
  }
}

knobs_status knobs_data_open(const char *spec, const knobs_data_opts *opts, knobs_data **out) {
  *out = NULL;
  knobs_data_opts def;
  if (!opts) {
    knobs_data_opts_default(&def);
    opts = &def;
  }
  if (!spec || !*spec) return kn_err(KNOBS_ERR_ARG, "no dataset given");
  if (opts->threads < 1) return kn_err(KNOBS_ERR_ARG, "dataset threads must be >= 1");
  const kn_data_entry *e = NULL;
  for (int i = 0; i < NREG && !e; i++)
    if (registry[i]->match(spec)) e = registry[i];
  if (!e) {
    char names[512] = "";
    size_t n = 0;
    for (int i = 0; i < NREG; i++)
      if (registry[i]->name) n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", registry[i]->name);
    return kn_err(KNOBS_ERR_ARG, "unknown dataset '%s' (built in: %s; or a path to a supported file)",
                  spec, names);
  }
  knobs_data *d = calloc(1, sizeof *d);
  if (!d) return kn_err(KNOBS_ERR_NOMEM, "cannot allocate a dataset");
  knobs_status s = e->open(d, spec, opts);
  if (!s && !d->pool && opts->threads > 1 && !(d->pool = kn_pool_create(opts->threads))) s = knobs_last_status();
  if (!s) {
    knobs_data_info *in = &d->info;
    if (in->T <= 0) in->T = 1; /* not a sequence */
    if (in->C <= 0 || in->H <= 0 || in->W <= 0 || in->K < 0 || in->K > KNOBS_MAX_FACTORS || in->C % in->T)
      s = kn_err(KNOBS_ERR_FORMAT, "%s: dataset reports an invalid shape", spec);
    double prod = 1;
    for (int k = 0; k < in->K; k++) prod *= in->factor_sizes[k];
    d->grid = in->K > 0 && (double)in->n == prod && (d->ops->render || in->has_render);
    if (d->ops->render) in->has_render = 1;
    if (!s && !d->ops->render && !d->ops->get)
      s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: dataset has neither render nor get", spec);
  }
  if (s) {
    knobs_data_free(d);
    return s;
  }
  *out = d;
  return KNOBS_OK;
}

void knobs_data_free(knobs_data *d) {
  if (!d) return;
  if (d->ops && d->ops->free_impl) d->ops->free_impl(d->impl);
  kn_pool_free(d->pool);
  free(d);
}

const knobs_data_info *knobs_data_info_get(const knobs_data *d) { return &d->info; }

int64_t knobs_data_index(const knobs_data *d, const int32_t *f) {
  int64_t idx = 0;
  for (int k = 0; k < d->info.K; k++) idx = idx * d->info.factor_sizes[k] + f[k];
  return idx;
}

void knobs_data_factors_of(const knobs_data *d, int64_t index, int32_t *f) {
  for (int k = d->info.K - 1; k >= 0; k--) {
    f[k] = (int32_t)(index % d->info.factor_sizes[k]);
    index /= d->info.factor_sizes[k];
  }
}

double knobs_data_factor_value(const knobs_data *d, int k, int c) {
  if (d->ops->factor_value && k >= 0 && k < d->info.K) return d->ops->factor_value(d, k, c);
  return c;
}

const char *kn_data_class_name(const knobs_data *d, int k, int c) {
  if (!d->ops->class_name || k < 0 || k >= d->info.K || c < 0 || c >= d->info.factor_sizes[k]) return NULL;
  return d->ops->class_name(d, k, c);
}

int kn_data_class_find(const knobs_data *d, int k, const char *name) {
  for (int c = 0; k >= 0 && k < d->info.K && c < d->info.factor_sizes[k]; c++) {
    const char *n = kn_data_class_name(d, k, c);
    if (n && !strcmp(n, name)) return c;
  }
  return -1;
}

const char *knobs_data_class_name(const knobs_data *d, int k, int c) { return kn_data_class_name(d, k, c); }
int knobs_data_class_find(const knobs_data *d, int k, const char *name) { return kn_data_class_find(d, k, name); }

static void sample_uniform(knobs_data *d, kn_rng *r, int n, int32_t *f) {
  if (d->ops->sample_factors) {
    d->ops->sample_factors(d, r, n, f);
    return;
  }
  int K = d->info.K;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < K; k++) f[i * K + k] = (int32_t)kn_rng_below(r, (uint32_t)d->info.factor_sizes[k]);
}

void kn_data_sample_factors(knobs_data *d, kn_rng *r, int n, int32_t *factors) {
  KN_ASSERT(d->info.K > 0);
  sample_uniform(d, r, n, factors);
}

knobs_status knobs_data_sample_factors(knobs_data *d, int n, uint64_t seed, uint64_t stream,
                                       int32_t *factors) {
  if (d->info.K == 0) return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: dataset has no ground-truth factors", d->info.name);
  kn_rng r;
  kn_rng_seed(&r, seed, stream);
  sample_uniform(d, &r, n, factors);
  return KNOBS_OK;
}

static knobs_status check_factors(const knobs_data *d, const int32_t *f, int n) {
  for (int i = 0; i < n; i++)
    for (int k = 0; k < d->info.K; k++) {
      int32_t v = f[(size_t)i * d->info.K + k];
      if (v < 0 || v >= d->info.factor_sizes[k])
        return kn_err(KNOBS_ERR_ARG, "%s: factor %s = %d out of range 0..%d (row %d)", d->info.name,
                      d->info.factor_names[k], v, d->info.factor_sizes[k] - 1, i);
    }
  return KNOBS_OK;
}

knobs_status knobs_data_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  if (d->info.K == 0) return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: dataset has no ground-truth factors", d->info.name);
  knobs_status s = check_factors(d, factors, n);
  if (s) return s;
  if (d->ops->render) return d->ops->render(d, factors, n, obs);
  if (!d->grid) return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: cannot render arbitrary factor vectors", d->info.name);
  /* grid dataset with get(): look up the indices in chunks */
  int64_t idx[256];
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  for (int i = 0; i < n; i += 256) {
    int m = n - i < 256 ? n - i : 256;
    for (int j = 0; j < m; j++) idx[j] = knobs_data_index(d, factors + (size_t)(i + j) * d->info.K);
    s = d->ops->get(d, idx, m, obs + (size_t)i * per, NULL);
    if (s) return s;
  }
  return KNOBS_OK;
}

knobs_status knobs_data_get(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors) {
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= d->info.n)
      return kn_err(KNOBS_ERR_ARG, "%s: index %lld out of range 0..%lld", d->info.name,
                    (long long)idx[i], (long long)d->info.n - 1);
  if (d->ops->get) return d->ops->get(d, idx, n, obs, factors);
  /* grid dataset with render(): convert in chunks */
  int K = d->info.K;
  int32_t f[256 * KNOBS_MAX_FACTORS];
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  for (int i = 0; i < n; i += 256) {
    int m = n - i < 256 ? n - i : 256;
    for (int j = 0; j < m; j++) knobs_data_factors_of(d, idx[i + j], f + (size_t)j * K);
    knobs_status s = d->ops->render(d, f, m, obs + (size_t)i * per);
    if (s) return s;
    if (factors) memcpy(factors + (size_t)i * K, f, sizeof(int32_t) * (size_t)m * K);
  }
  return KNOBS_OK;
}

knobs_status kn_data_batch(knobs_data *d, kn_rng *r, int B, float *obs, int32_t *factors,
                           int32_t *scratch) {
  int K = d->info.K;
  if (d->ops->draw) return d->ops->draw(d, r, B, obs, factors, NULL);
  if (K > 0 && d->ops->render) {
    int32_t *f = factors ? factors : scratch;
    KN_ASSERT(f);
    sample_uniform(d, r, B, f);
    return d->ops->render(d, f, B, obs);
  }
  int64_t idx[512];
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  for (int i = 0; i < B; i += 512) {
    int m = B - i < 512 ? B - i : 512;
    if (K > 0 && d->grid && d->ops->sample_factors) { /* non-uniform factors over a grid */
      int32_t *f = (factors ? factors : scratch) + (size_t)i * K;
      d->ops->sample_factors(d, r, m, f);
      for (int j = 0; j < m; j++) idx[j] = knobs_data_index(d, f + (size_t)j * K);
    } else {
      for (int j = 0; j < m; j++)
        idx[j] = (int64_t)(kn_rng_u64(r) % (uint64_t)d->info.n); /* bias < n / 2^64 */
    }
    knobs_status s = d->ops->get(d, idx, m, obs + (size_t)i * per, factors ? factors + (size_t)i * K : NULL);
    if (s) return s;
  }
  return KNOBS_OK;
}

knobs_status knobs_data_draw(knobs_data *d, int n, uint64_t seed, uint64_t stream, float *obs,
                             int32_t *factors) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "draw: negative count");
  kn_rng r;
  kn_rng_seed(&r, seed, stream);
  int32_t *scratch = NULL;
  if (!factors && d->info.K > 0) {
    scratch = malloc(sizeof(int32_t) * (size_t)(n ? n : 1) * d->info.K);
    if (!scratch) return kn_err(KNOBS_ERR_NOMEM, "draw: cannot allocate %d factor vectors", n);
  }
  knobs_status s = kn_data_batch(d, &r, n, obs, factors, scratch);
  free(scratch);
  return s;
}

knobs_status knobs_data_draw_values(knobs_data *d, int n, uint64_t seed, uint64_t stream,
                                    float *obs, int32_t *factors, double *values) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "draw: negative count");
  int K = d->info.K;
  if (d->ops->draw) { /* the dataset draws its own values (same rng use as kn_data_batch) */
    kn_rng r;
    kn_rng_seed(&r, seed, stream);
    return d->ops->draw(d, &r, n, obs, K ? factors : NULL, K ? values : NULL);
  }
  if (!values || K == 0) return knobs_data_draw(d, n, seed, stream, obs, factors);
  int32_t *f = factors ? factors : malloc(sizeof(int32_t) * (size_t)(n ? n : 1) * K);
  if (!f) return kn_err(KNOBS_ERR_NOMEM, "draw: cannot allocate %d factor vectors", n);
  knobs_status s = knobs_data_draw(d, n, seed, stream, obs, f);
  for (size_t i = 0; !s && i < (size_t)n * K; i++) values[i] = knobs_data_factor_value(d, (int)(i % K), f[i]);
  if (f != factors) free(f);
  return s;
}

knobs_status knobs_data_mixing(const knobs_data *d, double *A) {
  if (!d->ops->mixing) return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: dataset has no mixing matrix", d->info.name);
  d->ops->mixing(d, A);
  return KNOBS_OK;
}
