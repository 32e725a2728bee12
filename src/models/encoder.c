/* encoder.c: a trained model as the metrics' knobs_encoder (knobs_model_encoder). It uses only
 * the public knobs_model_* calls, so the metrics module and the model module stay apart: the
 * metrics see callbacks, this file is the one place that binds them to a model. It does not
 * batch, check codes or draw data (the metrics do). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct {
  knobs_model *m;
  uint64_t seed;
  uint64_t calls; /* sampled codes: calls so far; call i draws eps from stream 2^50 + i */
} model_enc;

/* The stream base of sampled codes: above every stream a metric passes to evaluate. */
#define ENC_STREAM (1ull << 50)

static knobs_status enc_mean(void *ctx, const float *x, int n, float *codes) {
  model_enc *e = ctx;
  return knobs_model_encode(e->m, x, n, codes, NULL);
}

static knobs_status enc_sampled(void *ctx, const float *x, int n, float *codes) {
  model_enc *e = ctx;
  return knobs_model_encode_sampled(e->m, x, n, e->seed, ENC_STREAM + e->calls++, codes, NULL);
}

static knobs_status enc_posterior(void *ctx, const float *x, int n, float *mean, float *logvar) {
  model_enc *e = ctx;
  return knobs_model_encode(e->m, x, n, mean, logvar);
}

static knobs_status enc_evaluate(void *ctx, const float *x, int n, uint64_t seed, knobs_terms *t, double *kl) {
  model_enc *e = ctx;
  return knobs_model_evaluate(e->m, x, n, seed, t, kl);
}

knobs_status knobs_model_encoder(knobs_model *m, int sampled, uint64_t seed, knobs_encoder *out) {
  memset(out, 0, sizeof *out);
  if (!m) return kn_err(KNOBS_ERR_ARG, "encoder: no model");
  int post = knobs_model_has_posterior(m);
  model_enc *e = malloc(sizeof *e);
  if (!e) return kn_err(KNOBS_ERR_NOMEM, "encoder: cannot allocate");
  *e = (model_enc){.m = m, .seed = seed, .calls = 0};
  *out = (knobs_encoder){
      .code_dim = knobs_model_code_dim(m),
      .encode = sampled ? enc_sampled : enc_mean,
      .posterior = post ? enc_posterior : NULL,
      .evaluate = post ? enc_evaluate : NULL,
      .ctx = e,
      .batch = 0,
      .release = free,
  };
  return KNOBS_OK;
}
