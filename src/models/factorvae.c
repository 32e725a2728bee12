/* factorvae.c: FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1):
 *   VAE loss           = recon + KL + gamma TC,  TC = mean_b (D(z_b)_0 - D(z_b)_1)
 *   discriminator loss = -(1/2) mean log softmax(D(z))_0 - (1/2) mean log softmax(D(perm z'))_1
 * where D is an MLP Z -> 6 x (1000, LeakyReLU 0.2) -> 2 logits ("discriminator.fc1".."fc7";
 * width and depth are --disc-hidden and --disc-layers),
 * z the sampled codes of the batch and perm z' the codes of a second, independent batch with
 * each dimension permuted across the batch independently (samples of prod_d q(z_d)). Logit 0
 * means "from q(z)", logit 1 "from the product of marginals", as disentanglement_lib's
 * FactorVAE; the density-ratio trick makes logit_0 - logit_1 estimate log q(z) / prod q(z_d).
 * One step = one VAE update (optimizer "vae", group 0) and one discriminator update
 * (optimizer "discriminator", group 1), both from the same forward pass (the gradients of both
 * losses are taken before either update, as disentanglement_lib does). The discriminator's
 * loss never reaches the encoder: z and z' enter it as constants; the VAE's TC term reaches
 * the encoder through D's input gradient and leaves D's parameters alone. */
#include <string.h>

#include "models/families.h"

typedef struct {
  double gamma;                  /* weight of the discriminator's TC estimate */
  double disc_lr, disc_beta1, disc_beta2; /* the discriminator's Adam */
  int disc_hidden, disc_layers;  /* its hidden width and depth */
} fv_settings;

#define FV "factorvae"
static const kn_field fv_fields[] = {
    KN_FIELD(fv_settings, "factorvae_gamma", KNOBS_FIELD_DOUBLE, gamma, 0, 1e6, FV, "gamma: weight of the discriminator's total correlation"),
    KN_FIELD(fv_settings, "disc_lr", KNOBS_FIELD_DOUBLE, disc_lr, 1e-12, 10, FV, "discriminator Adam learning rate"),
    KN_FIELD(fv_settings, "disc_beta1", KNOBS_FIELD_DOUBLE, disc_beta1, 0, 0.999999, FV, "discriminator Adam beta1"),
    KN_FIELD(fv_settings, "disc_beta2", KNOBS_FIELD_DOUBLE, disc_beta2, 0, 0.99999999, FV, "discriminator Adam beta2"),
    KN_FIELD(fv_settings, "disc_hidden", KNOBS_FIELD_INT, disc_hidden, 1, 65536, FV, "discriminator hidden width"),
    KN_FIELD(fv_settings, "disc_layers", KNOBS_FIELD_INT, disc_layers, 1, 30, FV, "discriminator hidden layers"),
};

/* Kim & Mnih 2018: gamma 35 (their best-scoring 2D Shapes model), 6 hidden layers of 1000;
 * the discriminator's Adam as disentanglement_lib's shared.gin (1e-4, 0.5, 0.9). */
static void fv_defaults(void *p, const char *model) {
  fv_settings *s = p;
  s->gamma = 35, s->disc_lr = 1e-4, s->disc_beta1 = 0.5, s->disc_beta2 = 0.9;
  s->disc_hidden = 1000, s->disc_layers = 6;
}

static knobs_status fv_validate(const knobs_config *c, const void *p) {
  if (c->batch < 2) return kn_err(KNOBS_ERR_ARG, "factorvae needs a batch of at least 2 (it permutes codes across the batch)");
  return KNOBS_OK;
}

static const kn_settings fv_set = {fv_fields, 6, sizeof(fv_settings), fv_defaults, fv_validate};

typedef struct {
  kn_stack disc;
  float *z2;               /* (cap,Z) codes of the second batch, then their permutation */
  float *eps2;             /* (cap,Z) its noise */
  int32_t *perm;           /* (Z,cap) */
  int32_t *zeros, *ones;   /* (cap) class targets */
  const int32_t *test_perm;
  int test_nperm;
} fv_impl;

void kn_factorvae_test_perm(knobs_model *m, const int32_t *perm, int n) {
  fv_impl *p = m->impl;
  p->test_perm = perm;
  p->test_nperm = n;
}

static knobs_status fv_build(knobs_model *m) {
  kn_vae_declare(m, 0);
  fv_impl *p = kn_alloc(sizeof *p, "factorvae state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  kn_stack *s = &p->disc;
  kn_stack_begin(s, &m->net, "discriminator", m->Z, 1, 1, 0);
  const fv_settings *set = KN_CSETTINGS(&m->cfg, fv_settings);
  for (int l = 0; l < set->disc_layers; l++)
    kn_stack_linear(s, set->disc_hidden, NULL, 1), kn_stack_act(s, KN_LRELU, 0.2f);
  kn_stack_linear(s, 2, NULL, 1);
  kn_model_add_stack(m, s, 1);
  m->nopt = 2;
  strcpy(m->opt_name[1], "discriminator");
  m->opt[1].lr = set->disc_lr;
  m->opt[1].beta1 = set->disc_beta1;
  m->opt[1].beta2 = set->disc_beta2;
  return KNOBS_OK;
}

static knobs_status fv_ready(knobs_model *m) {
  fv_impl *p = m->impl;
  size_t n = (size_t)m->cap * m->Z;
  p->z2 = kn_alloc(sizeof(float) * 2 * n, "factorvae codes");
  p->perm = kn_alloc(sizeof(int32_t) * (n + 2 * (size_t)m->cap), "factorvae permutation");
  if (!p->z2 || !p->perm) return KNOBS_ERR_NOMEM;
  p->eps2 = p->z2 + n;
  p->zeros = p->perm + n;
  p->ones = p->zeros + m->cap;
  for (int b = 0; b < m->cap; b++) p->ones[b] = 1;
  return KNOBS_OK;
}

static void fv_free(knobs_model *m) {
  fv_impl *p = m->impl;
  if (!p) return;
  kn_free(p->z2), kn_free(p->perm), kn_free(p);
  m->impl = NULL;
}

/* The second batch's codes, permuted per dimension, into p->z2. Uses m->x and the encoder. */
static knobs_status permuted_codes(knobs_model *m, knobs_data *d) {
  fv_impl *p = m->impl;
  int B = m->B, Z = m->Z;
  size_t n = (size_t)B * Z;
  if (m->test_x) {
    memcpy(m->x, m->test_x + (size_t)((m->step + 1) % m->test_nx) * B * m->D, sizeof(float) * B * m->D);
  } else {
    knobs_status cs = kn_model_check_shape(m, d);
    if (cs) return cs;
    kn_rng r;
    knobs_status s;
    kn_model_rng(m, KN_STREAM_DATA, 1, &r);
    s = kn_data_batch(d, &r, B, m->x, NULL, m->fac);
    if (s) return s;
  }
  kn_vae_encode_batch(m, m->x, B);
  if (m->test_eps) memcpy(p->eps2, m->test_eps + (size_t)((m->step + 1) % m->test_neps) * n, sizeof(float) * n);
  else {
    kn_rng r;
    kn_model_rng(m, KN_STREAM_NOISE, 1, &r);
    kn_rng_normal_fill(&r, p->eps2, n);
  }
  float *zs = p->eps2; /* the unpermuted codes overwrite the noise, which is not needed again */
  kn_reparam_forward(zs, m->mu, m->lv, p->eps2, n);
  if (p->test_perm) memcpy(p->perm, p->test_perm + (size_t)(m->step % p->test_nperm) * n, sizeof(int32_t) * n);
  else {
    kn_rng r;
    kn_model_rng(m, KN_STREAM_AUX, 0, &r);
    for (int k = 0; k < Z; k++) kn_rng_permutation(&r, p->perm + (size_t)k * B, B);
  }
  for (int k = 0; k < Z; k++)
    for (int b = 0; b < B; b++) p->z2[(size_t)b * Z + k] = zs[(size_t)p->perm[(size_t)k * B + b] * Z + k];
  return KNOBS_OK;
}

static knobs_status fv_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  fv_impl *p = m->impl;
  kn_stack *D = &p->disc;
  int B = m->B, Z = m->Z;
  knobs_status s = permuted_codes(m, d);
  if (s) return s;
  double recon;
  if ((s = kn_model_batch(m, d))) return s; /* the main batch, after the second one (own_batch) */
  if ((s = kn_vae_forward(m, &recon))) return s;
  /* discriminator loss, part 1: the permuted codes are class 1 */
  const float *lp = kn_stack_forward(D, p->z2, B, 0);
  double dl = 0.5 * kn_softmax_xent(kn_stack_dout(D), NULL, lp, p->ones, B, 2, 2, 0.5f);
  kn_stack_backward(D, B);
  /* part 2: the codes of the batch are class 0 (parameters only: z is a constant here) */
  kn_stack_zero_grad(D);
  const float *lz = kn_stack_forward(D, m->z, B, 0);
  dl += 0.5 * kn_softmax_xent(kn_stack_dout(D), NULL, lz, p->zeros, B, 2, 2, 0.5f);
  kn_stack_backward(D, B);
  /* the VAE's TC term: gamma mean(l0 - l1), into z only */
  double gamma = KN_CSETTINGS(&m->cfg, fv_settings)->gamma, tc = 0;
  kn_stack_zero_grad(D);
  float *dout = kn_stack_dout(D);
  for (int b = 0; b < B; b++) {
    tc += (double)lz[2 * b] - lz[2 * b + 1];
    dout[2 * b] = (float)(gamma / B);
    dout[2 * b + 1] = (float)(-gamma / B);
  }
  tc /= B;
  kn_stack_backward_input(D, B);
  kn_reparam_backward(m->dmu, m->dlv, D->dx_in, m->lv, m->eps, (size_t)B * Z);
  double kl = kn_gauss_kl(m->dmu, m->dlv, m->kl_dim, m->mu, m->lv, B, Z, 1.0f);
  kn_vae_backward(m, B);
  kn_model_opt_step(m, 0);
  kn_model_opt_step(m, 1);
  kn_terms_add(t, "loss", recon + kl + gamma * tc);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "tc", tc);
  kn_terms_add(t, "disc_loss", dl);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

const kn_model_ops kn_model_factorvae = {
    .name = "factorvae",
    .describe = "FactorVAE (Kim & Mnih 2018): recon + KL + gamma TC, TC from a discriminator",
    .loss = "recon + KL + gamma * TC, TC from a discriminator of z against dimension-permuted codes",
    .settings = &fv_set,
    .own_batch = 1,
    .build = fv_build,
    .ready = fv_ready,
    .step = fv_step,
    .property_penalty = 1,
    .free_impl = fv_free,
};
