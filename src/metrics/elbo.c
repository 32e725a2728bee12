/* elbo.c: the model's own numbers on held-out observations: the loss terms of its evaluate
 * callback (reconstruction, KL, ELBO for the VAEs, averaged over elbo_points observations
 * drawn with the metrics' seed), the KL of each latent dimension, and the active dimensions
 * (KL > 0.01 nats). It needs the encoder's evaluate callback (knobs eval passes the model's
 * knobs_model_evaluate); it knows nothing about models itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "metrics/metrics.h"

#define ELBO_CHUNK 500

knobs_status kn_elbo(const kn_mctx *c, cJSON *out) {
  knobs_data *d = c->data;
  const knobs_encoder *e = c->enc;
  int Z = c->D, n = c->o->elbo_points;
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  float *obs = malloc(sizeof(float) * per * ELBO_CHUNK);
  /* the callback writes one KL per latent dimension: the code's dimensions for the VAEs; room
   * for more in case a model's latent is wider than its code */
  double *kl = calloc((size_t)Z, sizeof(double)), *klc = calloc((size_t)Z * 4 + 64, sizeof(double));
  knobs_status s = KNOBS_OK;
  if (!obs || !kl || !klc) {
    s = kn_err(KNOBS_ERR_NOMEM, "elbo: cannot allocate");
    goto done;
  }
  knobs_terms acc = {0};
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  for (int i = 0, chunk = 0; i < n; i += ELBO_CHUNK, chunk++) {
    int b = n - i < ELBO_CHUNK ? n - i : ELBO_CHUNK;
    knobs_terms t = {0};
    if ((s = knobs_data_draw(d, b, c->o->seed, c->stream + 1 + (uint64_t)chunk, obs, NULL))) goto done;
    if ((s = e->evaluate(e->ctx, obs, b, kn_rng_u64(&rng), &t, klc))) goto done;
    if (chunk == 0) {
      acc.n = t.n;
      for (int q = 0; q < t.n; q++) acc.name[q] = t.name[q];
    }
    for (int q = 0; q < t.n && q < acc.n; q++) {
      if (!isfinite(t.value[q])) {
        s = kn_err(KNOBS_ERR_DATA, "elbo: the model's %s is not finite on observations %d..%d", t.name[q], i, i + b - 1);
        goto done;
      }
      acc.value[q] += t.value[q] * b;
    }
    for (int j = 0; j < Z; j++) kl[j] += klc[j] * b;
    if ((s = kn_progress(c, "elbo", i + b, n))) goto done;
  }
  int active = 0;
  for (int j = 0; j < Z; j++) {
    kl[j] /= n;
    active += kl[j] > 0.01;
  }
  for (int q = 0; q < acc.n; q++) kn_json_num(out, acc.name[q], acc.value[q] / n);
  kn_json_num(out, "active_dims", active);
  kn_json_vec(out, "kl_per_dim", kl, Z);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_points", n);
  kn_json_num(p, "active_kl_threshold", 0.01);
done:
  free(obs), free(kl), free(klc);
  return s;
}
