/* infogan.c: InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by
 * Information Maximizing Generative Adversarial Nets"), as the authors' code (openai/InfoGAN):
 *   generator input   [noise U(-1,1)^noise_dim | one-hot c_cat, uniform over cat classes |
 *                      c_cont U(-1,1)^cont]
 *   discriminator     D(x) = sigmoid of one logit on a shared trunk; the Q head on the same
 *                      trunk gives the categorical code's logits and the continuous codes'
 *                      means (a unit-variance Gaussian, the authors' fixed-std setting)
 *   L_I               = CE(Q_cat(G(z, c)), c_cat) + sum_d [(c_d - Q_d)^2 / 2 + log(2 pi) / 2]
 *                       (-log Q(c | x); the mutual-information bound is H(c) - L_I)
 *   discriminator     loss = BCE(D(x), 1) + BCE(D(G(z, c)), 0) + lambda L_I   (trunk, D, Q)
 *   generator         loss = BCE(D(G(z, c)), 1) + lambda L_I                  (generator)
 * One step draws a real batch and one set of codes, updates the discriminator (optimizer
 * "discriminator", group 1: trunk, D head and Q head), then the generator (optimizer
 * "generator", group 0) through the updated discriminator. Batch norm everywhere but the
 * discriminator's first layer and the outputs; LeakyReLU 0.1 in the discriminator.
 * Architectures (PyTorch names generator.*, discriminator.*, discriminator.out, q.*):
 *   28x28 (the paper's MNIST networks): G fc 1024, fc 128x7x7, deconv 64 k4s2, deconv C k4s2;
 *         D conv 64 k4s2, conv 128 k4s2, fc 1024; Q fc 128, fc cat+cont.
 *   64x64 (the same with one more stride-2 layer on each side): G fc 1024, fc 128x8x8, deconv
 *         64, 32, C (k4s2); D conv 32, 64, 128 (k4s2), fc 1024; Q fc 128, fc cat+cont.
 *   mlp:  G fc hidden, fc hidden, fc C*H*W; D fc hidden, fc hidden; Q fc 128, fc cat+cont.
 * The generator ends in a sigmoid for images (values in [0,1]) and is linear for vectors.
 * The representation (encode, the metrics) is the Q head's continuous means, in eval mode;
 * decode is the generator with zero noise and the first category. There is no posterior:
 * knobs_model_evaluate does not apply. */
#include <math.h>
#include <string.h>

#include "models/families.h"

typedef struct {
  int cat;            /* classes of the categorical code (0: none) */
  int cont;           /* continuous codes (the representation) */
  int noise_dim;      /* incompressible noise dimensions */
  double info_lambda; /* weight of the mutual-information term */
  double gan_g_lr, gan_d_lr, gan_beta1, gan_beta2; /* Adam of generator and discriminator */
} ig_settings;

#define IG "infogan"
static const kn_field ig_fields[] = {
    KN_FIELD(ig_settings, "cat", KNOBS_FIELD_INT, cat, 0, 1024, IG, "classes of the categorical code (0: none)"),
    KN_FIELD(ig_settings, "cont", KNOBS_FIELD_INT, cont, 1, 1024, IG, "continuous codes (the representation)"),
    KN_FIELD(ig_settings, "noise_dim", KNOBS_FIELD_INT, noise_dim, 0, 65536, IG, "incompressible noise dimensions"),
    KN_FIELD(ig_settings, "info_lambda", KNOBS_FIELD_DOUBLE, info_lambda, 0, 1e6, IG, "weight of the mutual-information term"),
    KN_FIELD(ig_settings, "gan_g_lr", KNOBS_FIELD_DOUBLE, gan_g_lr, 1e-12, 10, IG, "generator Adam learning rate"),
    KN_FIELD(ig_settings, "gan_d_lr", KNOBS_FIELD_DOUBLE, gan_d_lr, 1e-12, 10, IG, "discriminator (and Q head) Adam learning rate"),
    KN_FIELD(ig_settings, "gan_beta1", KNOBS_FIELD_DOUBLE, gan_beta1, 0, 0.999999, IG, "Adam beta1 of both players"),
    KN_FIELD(ig_settings, "gan_beta2", KNOBS_FIELD_DOUBLE, gan_beta2, 0, 0.99999999, IG, "Adam beta2 of both players"),
};

/* 3 classes: dSprites' three shapes; 5 continuous codes; 62 noise dimensions, generator lr 1e-3,
 * discriminator 2e-4 and Adam beta1 0.5 as Chen et al. 2016 (MNIST). */
static void ig_defaults(void *p, const char *model) {
  ig_settings *s = p;
  s->cat = 3, s->cont = 5, s->noise_dim = 62, s->info_lambda = 1;
  s->gan_g_lr = 1e-3, s->gan_d_lr = 2e-4, s->gan_beta1 = 0.5, s->gan_beta2 = 0.999;
}

static knobs_status ig_validate(const knobs_config *c, const void *p) {
  if (c->batch < 2) return kn_err(KNOBS_ERR_ARG, "infogan needs a batch of at least 2 (batch norm)");
  if (((const ig_settings *)p)->cat == 1)
    return kn_err(KNOBS_ERR_ARG, "a categorical code of 1 class carries nothing: set cat to 0 or at least 2");
  return KNOBS_OK;
}

static const kn_settings ig_set = {ig_fields, 8, sizeof(ig_settings), ig_defaults, ig_validate};
#define SET(m) KN_CSETTINGS(&(m)->cfg, ig_settings)

#define LOG2PI 1.8378770664093453
#define SLOPE 0.1f

typedef struct {
  kn_stack gen, trunk, head, q;
  int gin_n, nq;          /* generator input width; Q outputs (cat + cont) */
  int spatial;            /* the generator's output is (C,B,H,W) */
  float *gin;             /* (cap, gin_n) */
  int32_t *cat_idx;       /* (cap) */
  float *ones, *zeros;    /* (cap) targets of the real/fake loss */
} ig_impl;

static knobs_status ig_build(knobs_model *m) {
  const knobs_config *c = &m->cfg;
  const ig_settings *g = SET(m);
  ig_impl *p = kn_alloc(sizeof *p, "infogan state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  p->nq = g->cat + g->cont;
  p->gin_n = g->noise_dim + g->cat + g->cont;
  m->Z = g->cont;
  kn_stack *G = &p->gen, *T = &p->trunk, *H = &p->head, *Q = &p->q;
  int trunk_out;
  if (!strcmp(c->arch, "conv")) {
    int big = c->H == 64, s0 = big ? 8 : 7;
    p->spatial = 1;
    kn_stack_begin(G, &m->net, "generator", p->gin_n, 1, 1, 0);
    kn_stack_linear(G, 1024, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    kn_stack_linear(G, 128 * s0 * s0, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    kn_stack_unflatten(G, 128, s0, s0);
    kn_stack_convt(G, 64, 4, 2, 1, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    if (big) kn_stack_convt(G, 32, 4, 2, 1, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    kn_stack_convt(G, c->C, 4, 2, 1, NULL, 0);
    kn_stack_begin(T, &m->net, "discriminator", c->C, c->H, c->W, 1);
    if (big) {
      kn_stack_conv(T, 32, 4, 2, 1, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
      kn_stack_conv(T, 64, 4, 2, 1, NULL, 1), kn_stack_bn(T, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    } else {
      kn_stack_conv(T, 64, 4, 2, 1, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    }
    kn_stack_conv(T, 128, 4, 2, 1, NULL, 1), kn_stack_bn(T, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    kn_stack_flatten(T);
    kn_stack_linear(T, 1024, NULL, 1), kn_stack_bn(T, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    trunk_out = 1024;
  } else {
    int D = c->C * c->H * c->W, Hd = c->hidden;
    kn_stack_begin(G, &m->net, "generator", p->gin_n, 1, 1, 0);
    kn_stack_linear(G, Hd, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    kn_stack_linear(G, Hd, NULL, 0), kn_stack_bn(G, NULL, 0), kn_stack_act(G, KN_RELU, 0);
    kn_stack_linear(G, D, NULL, 0);
    kn_stack_begin(T, &m->net, "discriminator", D, 1, 1, 0);
    kn_stack_linear(T, Hd, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    kn_stack_linear(T, Hd, NULL, 1), kn_stack_bn(T, NULL, 1), kn_stack_act(T, KN_LRELU, SLOPE);
    trunk_out = Hd;
  }
  if (m->image) kn_stack_act(G, KN_SIGMOID, 0);
  kn_stack_begin(H, &m->net, "discriminator", trunk_out, 1, 1, 0);
  kn_stack_linear(H, 1, "out", 1);
  kn_stack_begin(Q, &m->net, "q", trunk_out, 1, 1, 0);
  kn_stack_linear(Q, 128, NULL, 1), kn_stack_bn(Q, NULL, 1), kn_stack_act(Q, KN_LRELU, SLOPE);
  kn_stack_linear(Q, p->nq, NULL, 1);
  kn_model_add_stack(m, G, 0);
  kn_model_add_stack(m, T, 1);
  kn_model_add_stack(m, H, 1);
  kn_model_add_stack(m, Q, 1);
  m->nopt = 2;
  strcpy(m->opt_name[0], "generator");
  strcpy(m->opt_name[1], "discriminator");
  m->opt[0].lr = g->gan_g_lr, m->opt[1].lr = g->gan_d_lr;
  for (int k = 0; k < 2; k++) m->opt[k].beta1 = g->gan_beta1, m->opt[k].beta2 = g->gan_beta2;
  return KNOBS_OK;
}

static knobs_status ig_ready(knobs_model *m) {
  ig_impl *p = m->impl;
  size_t cap = (size_t)m->cap;
  p->gin = kn_alloc(sizeof(float) * cap * (p->gin_n + 2), "infogan codes");
  p->cat_idx = kn_alloc(sizeof(int32_t) * cap, "infogan codes");
  if (!p->gin || !p->cat_idx) return KNOBS_ERR_NOMEM;
  p->ones = p->gin + cap * p->gin_n;
  p->zeros = p->ones + cap;
  for (size_t b = 0; b < cap; b++) p->ones[b] = 1;
  return KNOBS_OK;
}

static void ig_free(knobs_model *m) {
  ig_impl *p = m->impl;
  if (!p) return;
  kn_free(p->gin), kn_free(p->cat_idx), kn_free(p);
  m->impl = NULL;
}

/* The generator input of the step: from the rng, or the test seam (rows of gin_n floats whose
 * categorical slice is one-hot). */
static void draw_codes(knobs_model *m) {
  ig_impl *p = m->impl;
  int B = m->B, nz = SET(m)->noise_dim, nc = SET(m)->cat, nk = SET(m)->cont, w = p->gin_n;
  if (m->test_eps) {
    memcpy(p->gin, m->test_eps + (size_t)(m->step % m->test_neps) * B * w, sizeof(float) * (size_t)B * w);
    for (int b = 0; b < B; b++) {
      const float *r = p->gin + (size_t)b * w + nz;
      int best = 0;
      for (int k = 1; k < nc; k++) best = r[k] > r[best] ? k : best;
      p->cat_idx[b] = best;
    }
    return;
  }
  kn_rng r;
  kn_model_rng(m, KN_STREAM_NOISE, 0, &r);
  for (int b = 0; b < B; b++) {
    float *g = p->gin + (size_t)b * w;
    kn_rng_uniform_fill(&r, g, (size_t)nz, -1.0f, 1.0f);
    memset(g + nz, 0, sizeof(float) * (size_t)nc);
    p->cat_idx[b] = nc ? (int32_t)kn_rng_below(&r, (uint32_t)nc) : 0;
    if (nc) g[nz + p->cat_idx[b]] = 1.0f;
    kn_rng_uniform_fill(&r, g + nz + nc, (size_t)nk, -1.0f, 1.0f);
  }
}

/* -log Q(c|x) of the batch's codes given the Q head's output qo (B,nq); its gradient times
 * `scale` is added to dq. */
static double info_loss(knobs_model *m, const float *qo, float *dq, float scale) {
  ig_impl *p = m->impl;
  int B = m->B, nz = SET(m)->noise_dim, nc = SET(m)->cat, nk = SET(m)->cont, nq = p->nq;
  double loss = nc ? kn_softmax_xent(dq, NULL, qo, p->cat_idx, B, nc, nq, scale) : 0, sq = 0;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < nk; k++) {
      double r = (double)qo[(size_t)b * nq + nc + k] - p->gin[(size_t)b * p->gin_n + nz + nc + k];
      sq += 0.5 * r * r;
      dq[(size_t)b * nq + nc + k] += (float)(scale * r / B);
    }
  return loss + sq / B + 0.5 * LOG2PI * nk;
}

/* The discriminator on B inputs x (channel-major if cm) against `target` (1 real, 0 fake),
 * with the information term if `info` is non-NULL. With `params` the gradients go to the
 * discriminator's parameters (and its input); without, to its input only. Returns the BCE;
 * the mean probability of "real" to *prob. */
static double disc_pass(knobs_model *m, const float *x, int cm, const float *target, double *info, int params,
                        double *prob) {
  ig_impl *p = m->impl;
  kn_stack *T = &p->trunk, *H = &p->head, *Q = &p->q;
  int B = m->B;
  kn_stack_zero_grad(T), kn_stack_zero_grad(H), kn_stack_zero_grad(Q);
  const float *h = kn_stack_forward(T, x, B, cm);
  const float *lo = kn_stack_forward(H, h, B, 0);
  double bce = kn_bernoulli_loss(m->pool, kn_stack_dout(H), m->per, lo, target, B, 1, 1.0f);
  double pr = 0;
  for (int b = 0; b < B; b++) pr += lo[b] >= 0 ? 1.0 / (1.0 + exp(-(double)lo[b])) : exp(lo[b]) / (1.0 + exp(lo[b]));
  *prob = pr / B;
  if (params) kn_stack_backward(H, B);
  else kn_stack_backward_input(H, B);
  float *dh = kn_stack_dout(T);
  size_t n = (size_t)B * H->in_c;
  for (size_t i = 0; i < n; i++) dh[i] += H->dx_in[i];
  if (info) {
    const float *qo = kn_stack_forward(Q, h, B, 0);
    *info = info_loss(m, qo, kn_stack_dout(Q), (float)SET(m)->info_lambda);
    if (params) kn_stack_backward(Q, B);
    else kn_stack_backward_input(Q, B);
    for (size_t i = 0; i < n; i++) dh[i] += Q->dx_in[i];
  }
  if (params) kn_stack_backward(T, B);
  else kn_stack_backward_input(T, B);
  return bce;
}

static knobs_status ig_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  ig_impl *p = m->impl;
  int B = m->B;
  double lambda = SET(m)->info_lambda;
  draw_codes(m);
  const float *fake = kn_stack_forward(&p->gen, p->gin, B, 0);
  /* the discriminator's update */
  double p_real, p_fake, p_gen, info_d, info_g;
  double l_real = disc_pass(m, m->x, 0, p->ones, NULL, 1, &p_real);
  double l_fake = disc_pass(m, fake, p->spatial, p->zeros, &info_d, 1, &p_fake);
  kn_model_opt_step(m, 1);
  /* the generator's, through the updated discriminator */
  double l_gen = disc_pass(m, fake, p->spatial, p->ones, &info_g, 0, &p_gen);
  float *dg = kn_stack_dout(&p->gen);
  size_t n = (size_t)B * m->D;
  for (size_t i = 0; i < n; i++) dg[i] += p->trunk.dx_in[i];
  kn_stack_backward(&p->gen, B);
  kn_model_opt_step(m, 0);
  double H = SET(m)->cont * log(2.0) + (SET(m)->cat ? log((double)SET(m)->cat) : 0);
  kn_terms_add(t, "g_loss", l_gen + lambda * info_g);
  kn_terms_add(t, "d_loss", l_real + l_fake + lambda * info_d);
  kn_terms_add(t, "info", info_g);
  kn_terms_add(t, "mi", H - info_g);
  kn_terms_add(t, "d_real", p_real);
  kn_terms_add(t, "d_fake", p_fake);
  return KNOBS_OK;
}

static void set_training(ig_impl *p, int on) {
  p->gen.training = p->trunk.training = p->head.training = p->q.training = on;
}

static knobs_status ig_encode(knobs_model *m, const float *x, int n, float *mean, float *logvar) {
  ig_impl *p = m->impl;
  int nc = SET(m)->cat, nk = SET(m)->cont;
  set_training(p, 0);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    const float *h = kn_stack_forward(&p->trunk, x + (size_t)i * m->D, b, 0);
    const float *qo = kn_stack_forward(&p->q, h, b, 0);
    for (int j = 0; j < b; j++) memcpy(mean + (size_t)(i + j) * nk, qo + (size_t)j * p->nq + nc, sizeof(float) * (size_t)nk);
  }
  set_training(p, 1);
  if (logvar) memset(logvar, 0, sizeof(float) * (size_t)n * nk); /* the fixed unit variance */
  return KNOBS_OK;
}

static knobs_status ig_decode(knobs_model *m, const float *z, int n, float *x) {
  ig_impl *p = m->impl;
  int nz = SET(m)->noise_dim, nc = SET(m)->cat, nk = SET(m)->cont, w = p->gin_n;
  set_training(p, 0);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    memset(p->gin, 0, sizeof(float) * (size_t)b * w);
    for (int j = 0; j < b; j++) {
      float *g = p->gin + (size_t)j * w;
      if (nc) g[nz] = 1.0f;
      memcpy(g + nz + nc, z + (size_t)(i + j) * nk, sizeof(float) * (size_t)nk);
    }
    const float *y = kn_stack_forward(&p->gen, p->gin, b, 0);
    float *o = x + (size_t)i * m->D;
    if (p->spatial && m->cfg.C > 1) kn_cbs_to_bcs(m->pool, o, y, b, m->cfg.C, (long)m->cfg.H * m->cfg.W, 0);
    else memcpy(o, y, sizeof(float) * (size_t)b * m->D);
  }
  set_training(p, 1);
  return KNOBS_OK;
}

knobs_status kn_infogan_sample(knobs_model *m, int n, uint64_t seed, float *x) {
  if (m->ops != &kn_model_infogan) return kn_err(KNOBS_ERR_ARG, "%s is not an InfoGAN", m->cfg.model);
  ig_impl *p = m->impl;
  int nz = SET(m)->noise_dim, nc = SET(m)->cat, nk = SET(m)->cont, w = p->gin_n;
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_EVAL);
  set_training(p, 0);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    for (int j = 0; j < b; j++) {
      float *g = p->gin + (size_t)j * w;
      kn_rng_uniform_fill(&r, g, (size_t)nz, -1.0f, 1.0f);
      memset(g + nz, 0, sizeof(float) * (size_t)nc);
      if (nc) g[nz + kn_rng_below(&r, (uint32_t)nc)] = 1.0f;
      kn_rng_uniform_fill(&r, g + nz + nc, (size_t)nk, -1.0f, 1.0f);
    }
    const float *y = kn_stack_forward(&p->gen, p->gin, b, 0);
    float *o = x + (size_t)i * m->D;
    if (p->spatial && m->cfg.C > 1) kn_cbs_to_bcs(m->pool, o, y, b, m->cfg.C, (long)m->cfg.H * m->cfg.W, 0);
    else memcpy(o, y, sizeof(float) * (size_t)b * m->D);
  }
  set_training(p, 1);
  return KNOBS_OK;
}

static int ig_code_dim(const knobs_model *m) { return SET(m)->cont; }

const kn_model_ops kn_model_infogan = {
    .name = "infogan",
    .describe = "InfoGAN (Chen et al. 2016): a GAN whose Q head recovers categorical and continuous codes",
    .loss = "GAN losses + info_lambda * (cross-entropy of the categorical code + Gaussian NLL of the continuous codes)",
    .settings = &ig_set,
    .build = ig_build,
    .ready = ig_ready,
    .step = ig_step,
    .encode = ig_encode,
    .decode = ig_decode,
    .code_dim = ig_code_dim,
    .free_impl = ig_free,
};
