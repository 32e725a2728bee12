/* udr_models.c: UDR of trained models (knobs_udr_models): the inputs every model encodes and the
 * KL vectors, as disentanglement_lib's evaluation/udr/evaluate.py and udr.py's
 * _generate_representation_dataset build them, handed to knobs_udr (src/metrics/udr.c), which
 * scores them. Uses only the public model and data calls.
 *
 * The inputs: n observations drawn with (seed, stream c) for chunk c of CHUNK (knobs_data_draw:
 * factors sampled and rendered for ground-truth data), each chunk encoded by every model before
 * the next is drawn, so memory holds one chunk of observations and every model sees the same
 * inputs. The representation is the posterior mean; the KL of latent d is the mean over the n
 * inputs of 0.5 (mu^2 + exp(logvar) - logvar - 1) (evaluate.py's compute_gaussian_kl, averaged
 * over batches of equal size: the same mean). It does not train, load or choose models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define CHUNK 256

static knobs_status check_models(knobs_model *const *models, int R, const knobs_data_info *in, int *Z) {
  size_t px = (size_t)in->C * in->H * in->W;
  for (int r = 0; r < R; r++) {
    if (!models[r]) return kn_err(KNOBS_ERR_ARG, "udr: model %d is NULL", r);
    if (!knobs_model_has_posterior(models[r]))
      return kn_err(KNOBS_ERR_UNSUPPORTED, "udr: model %d (%s) has no Gaussian posterior; UDR needs each latent's KL",
                    r, knobs_config_string(knobs_model_config(models[r]), "model"));
    const knobs_config *c = knobs_model_config(models[r]);
    size_t mpx = (size_t)knobs_config_number(c, "C") * (size_t)knobs_config_number(c, "H") *
                 (size_t)knobs_config_number(c, "W");
    if (mpx != px)
      return kn_err(KNOBS_ERR_ARG, "udr: model %d takes %zu input values, %s's observations are %dx%dx%d", r, mpx,
                    in->name, in->C, in->H, in->W);
    int z = knobs_model_code_dim(models[r]);
    if (r > 0 && z != *Z)
      return kn_err(KNOBS_ERR_ARG, "udr: model %d has %d latents, model 0 has %d; UDR compares models of one size",
                    r, z, *Z);
    *Z = z;
  }
  return KNOBS_OK;
}

knobs_status knobs_udr_models(knobs_model *const *models, int R, knobs_data *d, const knobs_udr_opts *o,
                              knobs_udr_result **out) {
  knobs_udr_opts def;
  if (!o) knobs_udr_opts_default(&def), o = &def;
  if (!out) return kn_err(KNOBS_ERR_ARG, "udr: no output");
  *out = NULL;
  if (!models || !d) return kn_err(KNOBS_ERR_ARG, "udr: no %s", models ? "dataset" : "models");
  if (R < 2) return kn_err(KNOBS_ERR_ARG, "udr: %d model%s; UDR compares at least 2", R, R == 1 ? "" : "s");
  if (o->n < 2) return kn_err(KNOBS_ERR_ARG, "udr: n = %d observations; at least 2 are needed", o->n);
  const knobs_data_info *in = knobs_data_info_get(d);
  int Z = 0, n = o->n;
  knobs_status s = check_models(models, R, in, &Z);
  if (s) return s;
  if ((double)R * n * Z > 2e9) return kn_err(KNOBS_ERR_ARG, "udr: %d models x %d observations x %d latents is too large", R, n, Z);
  size_t px = (size_t)in->C * in->H * in->W, nz = (size_t)n * Z;
  int nb = n < CHUNK ? n : CHUNK;
  float *x = malloc(sizeof(float) * px * (size_t)nb), *lv = malloc(sizeof(float) * (size_t)nb * Z);
  float *reps = malloc(sizeof(float) * (size_t)R * nz);
  double *kl = calloc((size_t)R * Z, sizeof(double));
  if (!x || !lv || !reps || !kl) s = kn_err(KNOBS_ERR_NOMEM, "udr: out of memory for %d models x %d observations", R, n);
  for (int i = 0; !s && i < n; i += CHUNK) {
    int b = n - i < CHUNK ? n - i : CHUNK;
    s = knobs_data_draw(d, b, o->seed, (uint64_t)(i / CHUNK), x, NULL);
    for (int r = 0; !s && r < R; r++) {
      float *mu = reps + (size_t)r * nz + (size_t)i * Z;
      s = knobs_model_encode(models[r], x, b, mu, lv);
      for (size_t q = 0; !s && q < (size_t)b * Z; q++) {
        double m = mu[q], v = lv[q];
        kl[(size_t)r * Z + q % (size_t)Z] += 0.5 * (m * m + exp(v) - v - 1);
      }
    }
  }
  for (size_t q = 0; !s && q < (size_t)R * Z; q++) kl[q] /= n;
  if (!s) s = knobs_udr(reps, kl, R, n, Z, o, out);
  free(x), free(lv), free(reps), free(kl);
  return s;
}
