/* betavae.c: beta-VAE (Higgins et al. 2017) and the annealed-capacity VAE (Burgess et al.
 * 2018), with the losses of disentanglement_lib (methods/unsupervised/vae.py):
 *   betavae:      loss = recon + beta * KL
 *   annealedvae:  loss = recon + gamma * |KL - C(t)|,  C(t) = min(C, C * t / capacity_steps)
 * where recon and KL are batch means of per-example sums and t is the number of steps taken
 * before this one (the reference's global_step). beta = 1 is the plain VAE. */
#include <math.h>

#include "models/model.h"

typedef struct {
  double beta; /* betavae: weight of the KL */
} betavae_settings;

typedef struct {
  double gamma;        /* weight of |KL - C| */
  double capacity;     /* final capacity C in nats */
  long capacity_steps; /* steps over which C rises linearly from 0 */
} annealed_settings;

static const kn_field betavae_fields[] = {
    KN_FIELD(betavae_settings, "beta", KNOBS_FIELD_DOUBLE, beta, 0, 1e6, "betavae", "weight of the KL term (1 = plain VAE)"),
};
static const kn_field annealed_fields[] = {
    KN_FIELD(annealed_settings, "gamma", KNOBS_FIELD_DOUBLE, gamma, 0, 1e9, "annealedvae", "weight of |KL - C|"),
    KN_FIELD(annealed_settings, "capacity", KNOBS_FIELD_DOUBLE, capacity, 0, 1e6, "annealedvae", "final capacity C in nats"),
    KN_FIELD(annealed_settings, "capacity_steps", KNOBS_FIELD_LONG, capacity_steps, 1, 1e12, "annealedvae",
             "steps over which C rises linearly from 0"),
};

/* beta 4: a setting of the reference study's sweep (1, 2, 4, 6, 8, 16) that disentangles
 * dSprites visibly; gamma 1000 and C 25 over 100000 steps as disentanglement_lib's sweep. */
static void betavae_defaults(void *p, const char *model) { ((betavae_settings *)p)->beta = 4; }
static void annealed_defaults(void *p, const char *model) {
  annealed_settings *s = p;
  s->gamma = 1000, s->capacity = 25, s->capacity_steps = 100000;
}

static const kn_settings betavae_set = {betavae_fields, 1, sizeof(betavae_settings), betavae_defaults, NULL};
static const kn_settings annealed_set = {annealed_fields, 3, sizeof(annealed_settings), annealed_defaults, NULL};

static knobs_status vae_build(knobs_model *m) {
  kn_vae_declare(m, 0);
  return KNOBS_OK;
}

static void finish(knobs_model *m) {
  kn_vae_backward(m, m->B);
  kn_model_opt_step(m, 0);
}

static knobs_status betavae_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  double recon;
  knobs_status s = kn_vae_forward(m, &recon);
  if (s) return s;
  double beta = KN_CSETTINGS(&m->cfg, betavae_settings)->beta;
  double kl = kn_gauss_kl(m->dmu, m->dlv, m->kl_dim, m->mu, m->lv, m->B, m->Z, (float)beta);
  finish(m);
  kn_terms_add(t, "loss", recon + beta * kl);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

double kn_annealed_capacity(const knobs_config *c, long step) {
  const annealed_settings *p = KN_CSETTINGS(c, annealed_settings);
  double cap = p->capacity * (double)step / (double)p->capacity_steps;
  return cap < p->capacity ? cap : p->capacity;
}

static knobs_status annealed_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  double recon;
  knobs_status s = kn_vae_forward(m, &recon);
  if (s) return s;
  double C = kn_annealed_capacity(&m->cfg, m->step), g = KN_CSETTINGS(&m->cfg, annealed_settings)->gamma;
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
    .name = "betavae",
    .describe = "beta-VAE (Higgins et al. 2017): recon + beta * KL; beta = 1 is the plain VAE",
    .loss = "recon + beta * KL",
    .settings = &betavae_set,
    .build = vae_build,
    .step = betavae_step,
    .property_penalty = 1,
    .batch_separable = 1,
};

const kn_model_ops kn_model_annealedvae = {
    .name = "annealedvae",
    .describe = "annealed-capacity VAE (Burgess et al. 2018): recon + gamma * |KL - C(t)|",
    .loss = "recon + gamma * |KL - C(t)|, C(t) rising linearly to capacity over capacity_steps",
    .settings = &annealed_set,
    .build = vae_build,
    .step = annealed_step,
    .property_penalty = 1,
};
