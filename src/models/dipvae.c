/* dipvae.c: DIP-VAE I and II (Kumar et al. 2018, "Variational Inference of Disentangled Latent
 * Concepts from Unlabeled Observations"), with the loss of disentanglement_lib
 * (methods/unsupervised/vae.py, DIPVAE):
 *   loss = recon + KL + lambda_od sum_{i!=j} C_ij^2 + lambda_d sum_i (C_ii - 1)^2
 *   dipvae1: C = Cov_batch(mu)                      (Eq. 6)
 *   dipvae2: C = E_batch[diag exp(logvar)] + Cov_batch(mu)  (Eq. 7)
 * Cov_batch is the biased batch covariance E[mu mu^T] - E[mu] E[mu]^T, computed centred in
 * double (the same value, without the cancellation). lambda_d < 0 in the config means the
 * reference study's choice: 10 lambda_od for I, lambda_od for II (resolved when the model is
 * built, so checkpoints store the value used). */
#include <string.h>
#include <math.h>

#include "models/families.h"

typedef struct {
  double lambda_od; /* weight of the off-diagonal penalty */
  double lambda_d;  /* weight of the diagonal penalty (< 0: the model's default) */
} dip_settings;

static const kn_field dip_fields[] = {
    KN_FIELD(dip_settings, "lambda_od", KNOBS_FIELD_DOUBLE, lambda_od, 0, 1e6, "dipvae1,dipvae2",
             "weight of the off-diagonal covariance penalty"),
    KN_FIELD(dip_settings, "lambda_d", KNOBS_FIELD_DOUBLE, lambda_d, -1, 1e6, "dipvae1,dipvae2",
             "weight of the diagonal penalty (-1: 10 lambda_od for dipvae1, lambda_od for dipvae2)"),
};

/* lambda_od 10: in disentanglement_lib's sweep (1, 2, 5, 10, 20, 50); lambda_d_factor 10 (I), 1 (II) */
static void dip_defaults(void *p, const char *model) {
  dip_settings *s = p;
  s->lambda_od = 10, s->lambda_d = -1;
}

static knobs_status dip_validate(const knobs_config *c, const void *p) {
  if (c->batch < 2) return kn_err(KNOBS_ERR_ARG, "%s needs a batch of at least 2 (it estimates batch statistics)", c->model);
  return KNOBS_OK;
}

static const kn_settings dip_set = {dip_fields, 2, sizeof(dip_settings), dip_defaults, dip_validate};

typedef struct {
  int type;        /* 1 or 2 */
  double *mean, *C; /* (Z), (Z,Z) */
} dip_impl;

static knobs_status dip_build(knobs_model *m, int type) {
  kn_vae_declare(m, 0);
  dip_settings *set = KN_SETTINGS(&m->cfg, dip_settings);
  if (set->lambda_d < 0) set->lambda_d = (type == 1 ? 10.0 : 1.0) * set->lambda_od;
  dip_impl *p = kn_alloc(sizeof *p, "dipvae state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  p->type = type;
  p->mean = kn_alloc(sizeof(double) * (size_t)m->Z * (m->Z + 1), "dipvae covariance");
  if (!p->mean) return KNOBS_ERR_NOMEM;
  p->C = p->mean + m->Z;
  return KNOBS_OK;
}
static knobs_status dip1_build(knobs_model *m) { return dip_build(m, 1); }
static knobs_status dip2_build(knobs_model *m) { return dip_build(m, 2); }

static void dip_free(knobs_model *m) {
  dip_impl *p = m->impl;
  if (!p) return;
  kn_free(p->mean), kn_free(p);
  m->impl = NULL;
}

/* The DIP regulariser of B posteriors; its gradient is added to dmu (and dlv for II). */
static double dip_reg(knobs_model *m, const float *mu, const float *lv, float *dmu, float *dlv, int B) {
  dip_impl *p = m->impl;
  int Z = m->Z;
  const dip_settings *set = KN_CSETTINGS(&m->cfg, dip_settings);
  double lod = set->lambda_od, ld = set->lambda_d, *mean = p->mean, *C = p->C;
  for (int k = 0; k < Z; k++) {
    double s = 0;
    for (int b = 0; b < B; b++) s += mu[(size_t)b * Z + k];
    mean[k] = s / B;
  }
  for (int i = 0; i < Z; i++)
    for (int j = i; j < Z; j++) {
      double s = 0;
      for (int b = 0; b < B; b++) s += (mu[(size_t)b * Z + i] - mean[i]) * (mu[(size_t)b * Z + j] - mean[j]);
      C[i * Z + j] = C[j * Z + i] = s / B;
    }
  if (p->type == 2)
    for (int k = 0; k < Z; k++) {
      double s = 0;
      for (int b = 0; b < B; b++) s += exp((double)lv[(size_t)b * Z + k]);
      C[k * Z + k] += s / B;
    }
  double reg = 0;
  for (int i = 0; i < Z; i++)
    for (int j = 0; j < Z; j++) {
      double c = C[i * Z + j];
      reg += i == j ? ld * (c - 1) * (c - 1) : lod * c * c;
    }
  /* dR/dC_ij = G_ij (symmetric): 2 lod C_ij off the diagonal, 2 ld (C_ii - 1) on it.
   * dC_ij/dmu_bk = (delta_ik (mu_bj - m_j) + delta_jk (mu_bi - m_i)) / B, so
   * dR/dmu_bk = 2/B sum_j G_kj (mu_bj - m_j); for II dR/dlv_bk = G_kk exp(lv_bk) / B. */
  for (int i = 0; i < Z; i++)
    for (int j = 0; j < Z; j++) C[i * Z + j] = i == j ? 2 * ld * (C[i * Z + j] - 1) : 2 * lod * C[i * Z + j];
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Z; k++) {
      double s = 0;
      for (int j = 0; j < Z; j++) s += C[k * Z + j] * (mu[(size_t)b * Z + j] - mean[j]);
      dmu[(size_t)b * Z + k] += (float)(2.0 * s / B);
      if (p->type == 2) dlv[(size_t)b * Z + k] += (float)(C[k * Z + k] * exp((double)lv[(size_t)b * Z + k]) / B);
    }
  return reg;
}

static knobs_status dip_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  double recon;
  knobs_status s = kn_vae_forward(m, &recon);
  if (s) return s;
  double kl = kn_gauss_kl(m->dmu, m->dlv, m->kl_dim, m->mu, m->lv, m->B, m->Z, 1.0f);
  double reg = dip_reg(m, m->mu, m->lv, m->dmu, m->dlv, m->B);
  kn_vae_backward(m, m->B);
  kn_model_opt_step(m, 0);
  kn_terms_add(t, "loss", recon + kl + reg);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "dip", reg);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

const kn_model_ops kn_model_dipvae1 = {
    .name = "dipvae1",
    .describe = "DIP-VAE-I (Kumar et al. 2018): recon + KL + penalty pushing Cov(mu) to the identity",
    .loss = "recon + KL + lambda_od * sum_{i!=j} Cov(mu)_ij^2 + lambda_d * sum_i (Cov(mu)_ii - 1)^2",
    .settings = &dip_set,
    .build = dip1_build,
    .step = dip_step,
    .property_penalty = 1,
    .free_impl = dip_free,
};

const kn_model_ops kn_model_dipvae2 = {
    .name = "dipvae2",
    .describe = "DIP-VAE-II (Kumar et al. 2018): recon + KL + penalty pushing Cov(z) to the identity",
    .loss = "recon + KL + lambda_od * sum_{i!=j} Cov(z)_ij^2 + lambda_d * sum_i (Cov(z)_ii - 1)^2",
    .settings = &dip_set,
    .build = dip2_build,
    .step = dip_step,
    .property_penalty = 1,
    .free_impl = dip_free,
};
