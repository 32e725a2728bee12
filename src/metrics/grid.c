/* grid.c: the grid code table (knobs_grid_codes): the posterior means (and log-variances) of
 * every point of a grid dataset, encoded once in index order, and its use by the dataset
 * metrics in place of render + encode (kn_encode_factors, kn_encode_rendered, mig_sampled).
 *
 * Why: the reference protocol draws far more observations than dSprites has points (beta_vae,
 * factor_vae, intervention, mig_sampled and the shared draw: ~2.9 million encodings of 737,280
 * distinct images). A deterministic encoder gives every point the same code each time, so
 * encoding each point once is the same metric at a quarter of the cost, and a saved table
 * makes a second evaluation of the same checkpoint free of encoding.
 * What it does not do: sampled codes (each draw must sample anew), datasets whose observation
 * is not a function of the factors, or the elbo metric (it evaluates the model's loss). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "data/data.h"
#include "io/io.h"

int knobs_data_is_fixed_grid(const knobs_data *d) { return d && d->grid && !d->ops->draw; }

void knobs_grid_codes_free(knobs_grid_codes *g) {
  if (!g) return;
  free(g->mean);
  free(g->logvar);
  memset(g, 0, sizeof *g);
}

static knobs_status check_finite(const float *v, size_t n, int64_t first, int D) {
  for (size_t q = 0; q < n; q++)
    if (!isfinite(v[q]))
      return kn_err(KNOBS_ERR_DATA, "grid codes: the encoder returned a non-finite code for grid point %lld",
                    (long long)(first + (int64_t)(q / (size_t)D)));
  return KNOBS_OK;
}

knobs_status knobs_grid_codes_build(knobs_data *d, const knobs_encoder *enc,
                                    int (*progress)(void *ctx, const char *what, double done, double total),
                                    void *progress_ctx, knobs_grid_codes *out) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "grid codes: no output");
  memset(out, 0, sizeof *out);
  if (!d || !enc || !enc->encode || enc->code_dim < 1) return kn_err(KNOBS_ERR_ARG, "grid codes: no dataset or encoder");
  if (!knobs_data_is_fixed_grid(d))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "grid codes: %s is not a grid whose observations are a function of the "
                  "factors", d->info.name);
  int64_t n = d->info.n;
  int D = enc->code_dim, B = enc->batch > 0 ? enc->batch : 512;
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  out->n = n, out->D = D;
  snprintf(out->data, sizeof out->data, "%s", d->info.name);
  out->mean = malloc(sizeof(float) * (size_t)n * D);
  if (enc->posterior) out->logvar = malloc(sizeof(float) * (size_t)n * D);
  float *obs = malloc(sizeof(float) * per * (size_t)B);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
  knobs_status s = KNOBS_OK;
  if (!out->mean || (enc->posterior && !out->logvar) || !obs || !idx)
    s = kn_err(KNOBS_ERR_NOMEM, "grid codes: cannot allocate the codes of %lld points", (long long)n);
  for (int64_t i = 0; i < n && !s; i += B) {
    int b = (int)(n - i < B ? n - i : B);
    for (int t = 0; t < b; t++) idx[t] = i + t;
    float *m = out->mean + (size_t)i * D;
    s = knobs_data_get(d, idx, b, obs, NULL);
    if (!s) s = enc->posterior ? enc->posterior(enc->ctx, obs, b, m, out->logvar + (size_t)i * D) : enc->encode(enc->ctx, obs, b, m);
    if (!s) s = check_finite(m, (size_t)b * D, i, D);
    if (!s && out->logvar) s = check_finite(out->logvar + (size_t)i * D, (size_t)b * D, i, D);
    if (!s && progress && progress(progress_ctx, "encoding the grid", (double)(i + b), (double)n))
      s = kn_err(KNOBS_ERR_INTERRUPTED, "grid codes: stopped on request");
  }
  free(obs);
  free(idx);
  if (s) knobs_grid_codes_free(out);
  return s;
}

knobs_status knobs_grid_codes_save(const knobs_grid_codes *g, const char *path) {
  if (!g || !g->mean || !path) return kn_err(KNOBS_ERR_ARG, "grid codes: nothing to save");
  int W = g->logvar ? 2 * g->D : g->D;
  knobs_array a;
  knobs_status s = knobs_array_alloc(&a, KNOBS_F32, 2, (int64_t[]){g->n, W});
  if (s) return s;
  float *o = a.data;
  for (int64_t i = 0; i < g->n; i++) {
    memcpy(o + (size_t)i * W, g->mean + (size_t)i * g->D, sizeof(float) * (size_t)g->D);
    if (g->logvar) memcpy(o + (size_t)i * W + g->D, g->logvar + (size_t)i * g->D, sizeof(float) * (size_t)g->D);
  }
  s = knobs_npy_write(path, &a);
  knobs_array_free(&a);
  return s;
}

knobs_status knobs_grid_codes_load(const char *path, const knobs_data *d, int D, int want_logvar,
                                   knobs_grid_codes *out) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "grid codes: no output");
  memset(out, 0, sizeof *out);
  if (!path || !d || D < 1) return kn_err(KNOBS_ERR_ARG, "grid codes: no path, dataset or code size");
  knobs_array a;
  knobs_status s = knobs_npy_read(path, &a);
  if (s) return s;
  int W = want_logvar ? 2 * D : D;
  if (a.dtype != KNOBS_F32 || a.ndim != 2 || a.shape[0] != d->info.n || a.shape[1] != W) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: grid codes of shape (%lld, %lld) %s; %s with %d code dimensions%s needs (%lld, %d) "
               "float32", path, (long long)a.shape[0], (long long)(a.ndim > 1 ? a.shape[1] : 0),
               a.dtype == KNOBS_F32 ? "float32" : "(not float32)", d->info.name, D,
               want_logvar ? " and log-variances" : "", (long long)d->info.n, W);
    knobs_array_free(&a);
    return s;
  }
  const float *v = a.data;
  out->n = d->info.n, out->D = D;
  snprintf(out->data, sizeof out->data, "%s", d->info.name);
  out->mean = malloc(sizeof(float) * (size_t)out->n * D);
  if (want_logvar) out->logvar = malloc(sizeof(float) * (size_t)out->n * D);
  if (!out->mean || (want_logvar && !out->logvar)) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot hold the grid codes", path);
  for (int64_t i = 0; i < out->n && !s; i++) {
    memcpy(out->mean + (size_t)i * D, v + (size_t)i * W, sizeof(float) * (size_t)D);
    if (want_logvar) memcpy(out->logvar + (size_t)i * D, v + (size_t)i * W + D, sizeof(float) * (size_t)D);
  }
  if (!s) s = check_finite(v, (size_t)out->n * W, 0, W);
  if (s) s = kn_err_prefix(s, "%s", path);
  knobs_array_free(&a);
  if (s) knobs_grid_codes_free(out);
  return s;
}

knobs_status kn_grid_check(const knobs_grid_codes *g, const knobs_data *d, const knobs_encoder *enc) {
  if (!g) return KNOBS_OK;
  if (!knobs_data_is_fixed_grid(d))
    return kn_err(KNOBS_ERR_ARG, "grid codes given for %s, which is not a grid whose observations are a function "
                  "of the factors", d->info.name);
  if (!g->mean || g->n != d->info.n || g->D != enc->code_dim || strcmp(g->data, d->info.name))
    return kn_err(KNOBS_ERR_ARG, "grid codes of %s (%lld points, %d dimensions) do not match %s (%lld points) and the "
                  "encoder (%d dimensions)", g->data, (long long)g->n, g->D, d->info.name, (long long)d->info.n,
                  enc->code_dim);
  return KNOBS_OK;
}

void kn_grid_lookup(const kn_mctx *c, const int32_t *f, int n, float *codes, float *logvar) {
  const knobs_grid_codes *g = c->grid;
  int D = g->D, KD = c->data->info.K;
  for (int i = 0; i < n; i++) {
    int64_t r = knobs_data_index(c->data, f + (size_t)i * KD);
    memcpy(codes + (size_t)i * D, g->mean + (size_t)r * D, sizeof(float) * (size_t)D);
    if (logvar) memcpy(logvar + (size_t)i * D, g->logvar + (size_t)r * D, sizeof(float) * (size_t)D);
  }
}
