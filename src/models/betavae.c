/* betavae.c: beta-VAE (Higgins et al. 2017) and the annealed-capacity VAE (Burgess et al.
 * 2018), with the losses of disentanglement_lib (methods/unsupervised/vae.py):
 *   betavae:      loss = recon + beta * KL
 *   annealedvae:  loss = recon + gamma * |KL - C(t)|,  C(t) = min(C, C * t / capacity_steps)
 * where recon and KL are batch means of per-example sums and t is the number of steps taken
 * before this one (the reference's global_step). beta = 1 is the plain VAE. */
#include <math.h>

#include "models/model.h"

static knobs_status vae_build(knobs_model *m) {
  kn_vae_declare(m, 0);
  return KNOBS_OK;
}

/* The shared part of a VAE step up to the KL: batch, encode, sample, decode + recon loss. */
static knobs_status forward(knobs_model *m, knobs_data *d, double *recon) {
  kn_model_zero_grad(m);
  knobs_status s = kn_model_batch(m, d);
  if (s) return s;
  kn_vae_encode_batch(m, m->x, m->B);
  kn_rng r;
  kn_model_rng(m, KN_STREAM_NOISE, 0, &r);
  kn_vae_sample(m, m->B, &r);
  *recon = kn_vae_decode_loss(m, m->x, m->B, 1.0f, 1);
  return KNOBS_OK;
}

static void finish(knobs_model *m) {
  kn_vae_backward(m, m->B);
  kn_model_opt_step(m, 0);
  m->step++;
}

static knobs_status betavae_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  double recon;
  knobs_status s = forward(m, d, &recon);
  if (s) return s;
  double beta = m->cfg.beta;
  double kl = kn_gauss_kl(m->dmu, m->dlv, m->kl_dim, m->mu, m->lv, m->B, m->Z, (float)beta);
  finish(m);
  kn_terms_add(t, "loss", recon + beta * kl);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

double kn_annealed_capacity(const knobs_config *c, long step) {
  double cap = c->capacity * (double)step / (double)c->capacity_steps;
  return cap < c->capacity ? cap : c->capacity;
}

static knobs_status annealed_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  double recon;
  knobs_status s = forward(m, d, &recon);
  if (s) return s;
  double C = kn_annealed_capacity(&m->cfg, m->step), g = m->cfg.gamma;
  double kl = kn_gauss_kl(NULL, NULL, m->kl_dim, m->mu, m->lv, m->B, m->Z, 1.0f);
  /* d|KL - C|/dKL = sign(KL - C) (0 at the kink, as tf.abs's gradient) */
  double sgn = kl > C ? 1.0 : kl < C ? -1.0 : 0.0;
  kn_gauss_kl(m->dmu, m->dlv, NULL, m->mu, m->lv, m->B, m->Z, (float)(g * sgn));
  finish(m);
  kn_terms_add(t, "loss", recon + g * fabs(kl - C));
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "capacity", C);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

const kn_model_ops kn_model_betavae = {
    "betavae", "beta-VAE (Higgins et al. 2017): recon + beta * KL; beta = 1 is the plain VAE",
    vae_build, NULL, betavae_step, NULL, NULL, NULL, NULL};

const kn_model_ops kn_model_annealedvae = {
    "annealedvae", "annealed-capacity VAE (Burgess et al. 2018): recon + gamma * |KL - C(t)|",
    vae_build, NULL, annealed_step, NULL, NULL, NULL, NULL};
