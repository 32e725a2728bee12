/* model.c: creating and freeing models, the shared VAE core (architectures, batch, encode,
 * sample, decode + reconstruction loss, backward), and the default encode/decode/evaluate.
 * The architectures are exactly those of the issue (docs/formats.md lists every tensor):
 *   conv (64x64, disentanglement_lib's): conv 32k4s2p1, 32k4s2p1, 64k2s2, 64k2s2, fc 256,
 *     heads; decoder fc 256, fc 1024, (64,4,4), convT 64, 32, 32, C (k4 s2 p1).
 *   conv (28x28, knobs' variant for MNIST-like data): conv 32k4s2p1 (14), 32k4s2p1 (7),
 *     64k3s2p1 (4), fc 256, heads; decoder fc 256, fc 1024, (64,4,4), convT 32k3s2p1 (7),
 *     32k4s2p1 (14), C k4s2p1 (28).
 *   mlp: fc hidden, ReLU, fc hidden, ReLU, heads; decoder fc hidden, tanh x3, fc C*H*W.
 * With a Gaussian likelihood on images the decoder ends in a sigmoid (the reference's l2 loss
 * on sigmoid outputs); on vectors its output is the mean.
 * Count likelihoods (nb, zinb; vector data, mlp only), as scVI's VAE (scvi/module/_vae.py with
 * log_variational and use_observed_lib_size): the encoder reads log1p(x), the decoder's last
 * layer is px_scale_decoder (the logits of px_scale = softmax over genes) and, for zinb,
 * px_dropout_decoder (fused heads), beside the parameter decoder.px_r (log theta, one per gene,
 * initialised to 0); the loss is kn_counts_loss (src/nn/counts.c) on the raw counts with the
 * cell's observed total as library size. knobs_model_decode gives the NB mean at a library of
 * KN_COUNTS_DECODE_LIB counts: px_scale x 1e4, the expression per 10,000 counts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"

void kn_model_add_stack(knobs_model *m, kn_stack *s, int want_dx) {
  KN_ASSERT(m->nstacks < KN_MAX_STACKS);
  m->stacks[m->nstacks] = s;
  m->want_dx[m->nstacks++] = want_dx;
}

void kn_vae_declare(knobs_model *m, int group) {
  const knobs_config *c = &m->cfg;
  static const char *const heads[2] = {"fc_mu", "fc_logvar"};
  kn_stack *e = &m->enc, *d = &m->dec;
  int Z = c->z_dim;
  if (!strcmp(c->arch, "conv")) {
    kn_stack_begin(e, &m->net, "encoder", c->C, c->H, c->W, 1);
    kn_stack_begin(d, &m->net, "decoder", Z, 1, 1, 0);
    if (c->H == 64) {
      kn_stack_conv(e, 32, 4, 2, 1, NULL, group), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 32, 4, 2, 1, NULL, group), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 64, 2, 2, 0, NULL, group), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 64, 2, 2, 0, NULL, group), kn_stack_act(e, KN_RELU, 0);
    } else { /* 28x28 */
      kn_stack_conv(e, 32, 4, 2, 1, NULL, group), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 32, 4, 2, 1, NULL, group), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 64, 3, 2, 1, NULL, group), kn_stack_act(e, KN_RELU, 0);
    }
    kn_stack_flatten(e);
    kn_stack_linear(e, 256, NULL, group), kn_stack_act(e, KN_RELU, 0);
    kn_stack_linear_heads(e, Z, 2, heads, group);
    kn_stack_linear(d, 256, NULL, group), kn_stack_act(d, KN_RELU, 0);
    kn_stack_linear(d, 1024, NULL, group), kn_stack_act(d, KN_RELU, 0);
    kn_stack_unflatten(d, 64, 4, 4);
    if (c->H == 64) {
      kn_stack_convt(d, 64, 4, 2, 1, NULL, group), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, group), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, group), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, c->C, 4, 2, 1, NULL, group);
    } else {
      kn_stack_convt(d, 32, 3, 2, 1, NULL, group), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, group), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, c->C, 4, 2, 1, NULL, group);
    }
  } else {
    int D = c->C * c->H * c->W, Hd = c->hidden;
    kn_stack_begin(e, &m->net, "encoder", D, 1, 1, 0);
    kn_stack_begin(d, &m->net, "decoder", Z, 1, 1, 0);
    kn_stack_linear(e, Hd, NULL, group), kn_stack_act(e, KN_RELU, 0);
    kn_stack_linear(e, Hd, NULL, group), kn_stack_act(e, KN_RELU, 0);
    kn_stack_linear_heads(e, Z, 2, heads, group);
    kn_stack_linear(d, Hd, NULL, group), kn_stack_act(d, KN_TANH, 0);
    kn_stack_linear(d, Hd, NULL, group), kn_stack_act(d, KN_TANH, 0);
    kn_stack_linear(d, Hd, NULL, group), kn_stack_act(d, KN_TANH, 0);
    if (!strcmp(c->likelihood, "nb")) {
      kn_stack_linear(d, D, "px_scale_decoder", group);
    } else if (!strcmp(c->likelihood, "zinb")) {
      static const char *const px[2] = {"px_scale_decoder", "px_dropout_decoder"};
      kn_stack_linear_heads(d, D, 2, px, group);
    } else {
      kn_stack_linear(d, D, NULL, group);
    }
    m->counts = !strcmp(c->likelihood, "nb") ? 1 : !strcmp(c->likelihood, "zinb") ? 2 : 0;
    if (m->counts) m->px_r = kn_net_add_param(&m->net, "decoder.px_r", 1, (int64_t[1]){D}, 0, group);
  }
  if (!strcmp(c->likelihood, "gaussian") && m->image) kn_stack_act(d, KN_SIGMOID, 0);
  kn_model_add_stack(m, e, 0);
  kn_model_add_stack(m, d, 1);
  m->has_vae = 1;
}

static int bernoulli(const knobs_model *m) { return !strcmp(m->cfg.likelihood, "bernoulli"); }
static int spatial_out(const knobs_model *m) { return !strcmp(m->cfg.arch, "conv"); }

knobs_status knobs_model_create(const knobs_config *cfg, knobs_model **out) {
  *out = NULL;
  knobs_status s = knobs_config_validate(cfg);
  if (s) return s;
  knobs_model *m = calloc(1, sizeof *m);
  if (!m) return kn_err(KNOBS_ERR_NOMEM, "cannot allocate a model");
  m->cfg = *cfg;
  m->ops = kn_model_ops_find(cfg->model);
  m->B = m->cap = cfg->batch;
  m->Z = cfg->z_dim;
  m->D = (size_t)cfg->C * cfg->H * cfg->W;
  m->image = cfg->H > 1 || cfg->W > 1;
  if (!(m->pool = kn_pool_create(cfg->threads))) {
    free(m);
    return knobs_last_status();
  }
  m->net.pool = m->pool;
  m->nopt = 1;
  strcpy(m->opt_name[0], "vae");
  for (int k = 0; k < KN_MAX_OPT; k++)
    m->opt[k] = (kn_adam){cfg->lr, cfg->adam_beta1, cfg->adam_beta2, cfg->adam_eps, 0, 0, 0, NULL, NULL};
  s = m->ops->build(m);
  if (!s && !m->counts && (!strcmp(cfg->likelihood, "nb") || !strcmp(cfg->likelihood, "zinb")))
    s = kn_err(KNOBS_ERR_ARG, "model %s has no VAE decoder for the %s likelihood (the VAE families have one)",
               cfg->model, cfg->likelihood);
  if (!s) s = kn_prop_penalty_open(m);
  if (!s) s = kn_net_alloc(&m->net, m->stacks, m->want_dx, m->nstacks, m->cap);
  if (!s) s = kn_prop_penalty_alloc(m);
  size_t B = (size_t)m->cap, Z = (size_t)m->Z;
  if (!s) {
    m->x = kn_alloc(sizeof(float) * B * m->D, "batch");
    m->xt = kn_alloc(sizeof(float) * B * m->D, "batch transpose");
    m->fac = kn_alloc(sizeof(int32_t) * B * KNOBS_MAX_FACTORS, "batch factors");
    m->mu = kn_alloc(sizeof(float) * B * Z * 6, "latent buffers");
    m->per = kn_alloc(sizeof(double) * B, "per-example terms");
    m->kl_dim = kn_alloc(sizeof(double) * Z, "per-dimension KL");
    if (!m->x || !m->xt || !m->fac || !m->mu || !m->per || !m->kl_dim) s = KNOBS_ERR_NOMEM;
    else {
      m->lv = m->mu + B * Z, m->z = m->lv + B * Z, m->eps = m->z + B * Z;
      m->dmu = m->eps + B * Z, m->dlv = m->dmu + B * Z;
    }
    if (!s && m->counts) { /* the count loss's buffers, sized here: a step allocates nothing */
      m->xl = kn_alloc(sizeof(float) * B * m->D, "log1p batch");
      m->cwork = kn_alloc(sizeof(double) * kn_counts_work_size(m->cap, (int)m->D), "count loss scratch");
      if (!m->xl || !m->cwork) s = KNOBS_ERR_NOMEM;
      if (!s && m->counts == 2) {
        m->clog = kn_alloc(sizeof(float) * B * m->D * 4, "ZINB heads");
        if (!m->clog) s = KNOBS_ERR_NOMEM;
        else m->cpi = m->clog + B * m->D, m->cdl = m->cpi + B * m->D, m->cdpi = m->cdl + B * m->D;
      }
    }
  }
  for (int k = 0; !s && k < m->nopt; k++) {
    kn_net_group_range(&m->net, k, &m->opt[k].off, &m->opt[k].n);
    m->opt[k].m = kn_alloc(sizeof(float) * (m->opt[k].n ? m->opt[k].n : 1), "Adam moments");
    m->opt[k].v = kn_alloc(sizeof(float) * (m->opt[k].n ? m->opt[k].n : 1), "Adam moments");
    if (!m->opt[k].m || !m->opt[k].v) s = KNOBS_ERR_NOMEM;
  }
  if (!s) {
    kn_rng r;
    kn_rng_seed(&r, cfg->seed, KN_STREAM_INIT);
    kn_net_init(&m->net, m->stacks, m->nstacks, &r);
    if (m->counts) memset(kn_param_ptr(&m->net, m->px_r), 0, sizeof(float) * m->D); /* theta = 1, as scVI */
    if (m->ops->ready) s = m->ops->ready(m);
  }
  if (s) {
    knobs_model_free(m);
    return s;
  }
  *out = m;
  return KNOBS_OK;
}

void knobs_model_free(knobs_model *m) {
  if (!m) return;
  /* stacks first: a family's stacks may live in its state (m->impl), freed after them */
  for (int i = 0; i < m->nstacks; i++) {
    kn_stack *s = m->stacks[i];
    kn_free(s->act), kn_free(s->dact), kn_free(s->aux), kn_free(s->dx_in), kn_free(s->xcb), kn_free(s->dxcb);
  }
  if (m->ops && m->ops->free_impl) m->ops->free_impl(m);
  kn_prop_penalty_free(m);
  for (int k = 0; k < KN_MAX_OPT; k++) kn_free(m->opt[k].m), kn_free(m->opt[k].v);
  kn_net_free(&m->net);
  kn_free(m->x), kn_free(m->xt), kn_free(m->fac), kn_free(m->mu), kn_free(m->per), kn_free(m->kl_dim);
  kn_free(m->xl), kn_free(m->cwork), kn_free(m->clog);
  kn_pool_free(m->pool);
  free(m);
}

const knobs_config *knobs_model_config(const knobs_model *m) { return &m->cfg; }
long knobs_model_step(const knobs_model *m) { return m->step; }
int knobs_model_code_dim(const knobs_model *m) { return m->ops->code_dim ? m->ops->code_dim(m) : m->Z; }

int knobs_model_tensor(const knobs_model *m, int i, const char **name, int *ndim, int64_t shape[4]) {
  if (i >= 0 && i < m->net.np) {
    const kn_param *q = &m->net.P[i];
    *name = q->name;
    *ndim = q->ndim;
    for (int d = 0; d < 4; d++) shape[d] = d < q->ndim ? q->shape[d] : 0;
  }
  return m->net.np;
}

void kn_terms_add(knobs_terms *t, const char *name, double v) {
  if (!t || t->n >= KNOBS_MAX_TERMS) return;
  t->name[t->n] = name;
  t->value[t->n++] = v;
}

/* ---- the VAE core -------------------------------------------------------------------------- */

void kn_model_zero_grad(knobs_model *m) {
  memset(m->net.g, 0, sizeof(float) * m->net.n_p);
  for (int i = 0; i < m->nstacks; i++) kn_stack_zero_grad(m->stacks[i]);
  size_t n = (size_t)m->cap * m->Z;
  memset(m->dmu, 0, sizeof(float) * n);
  memset(m->dlv, 0, sizeof(float) * n);
}

knobs_status kn_vae_forward(knobs_model *m, double *recon) {
  knobs_status s = kn_prop_penalty_pass(m); /* first: it leaves the stacks' gradients zeroed */
  if (s) return s;
  kn_vae_encode_batch(m, m->x, m->B);
  kn_rng r;
  kn_model_rng(m, KN_STREAM_NOISE, 0, &r);
  kn_vae_sample(m, m->B, &r);
  *recon = kn_vae_decode_loss(m, m->x, m->B, 1.0f, 1);
  return KNOBS_OK;
}

knobs_status kn_model_check_shape(const knobs_model *m, const knobs_data *d) {
  const knobs_data_info *in = knobs_data_info_get(d);
  if ((size_t)in->C * in->H * in->W == m->D && in->C == m->cfg.C) return KNOBS_OK;
  return kn_err(KNOBS_ERR_ARG, "%s: observations are %dx%dx%d, the model takes %dx%dx%d", in->name, in->C, in->H,
                in->W, m->cfg.C, m->cfg.H, m->cfg.W);
}

knobs_status knobs_model_open_data(const knobs_model *m, const char *spec, knobs_data **out) {
  *out = NULL;
  knobs_data_opts o;
  knobs_config_data_opts(&m->cfg, &o);
  knobs_data *d;
  knobs_status s = knobs_data_open(spec ? spec : m->cfg.data, &o, &d);
  if (s) return s;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (in->C != m->cfg.C || in->H != m->cfg.H || in->W != m->cfg.W) {
    s = kn_err(KNOBS_ERR_DATA, "%s has observations %dx%dx%d but the model takes %dx%dx%d", in->name, in->C, in->H,
               in->W, m->cfg.C, m->cfg.H, m->cfg.W);
    knobs_data_free(d);
    return s;
  }
  *out = d;
  return KNOBS_OK;
}

knobs_status kn_model_batch(knobs_model *m, knobs_data *d) {
  if (m->test_x) {
    memcpy(m->x, m->test_x + (size_t)(m->step % m->test_nx) * m->B * m->D, sizeof(float) * m->B * m->D);
    return KNOBS_OK;
  }
  knobs_status s = kn_model_check_shape(m, d);
  if (s) return s;
  const knobs_data_info *in = knobs_data_info_get(d);
  kn_rng r;
  kn_rng_seed(&r, m->cfg.seed, KN_STREAM_DATA + (uint64_t)m->step);
  if (m->par.size <= 1) return kn_data_batch(d, &r, m->B, m->x, in->K > 0 ? m->fac : NULL, m->fac);
  /* a shard: the whole batch is drawn as one process would (the draw is cheap next to the
   * step), and this process keeps rows rank*B .. rank*B + B */
  s = kn_data_batch(d, &r, m->cfg.batch, m->x, in->K > 0 ? m->fac : NULL, m->fac);
  if (s) return s;
  size_t lo = (size_t)m->par.rank * m->B;
  memmove(m->x, m->x + lo * m->D, sizeof(float) * m->D * (size_t)m->B);
  if (in->K > 0) memmove(m->fac, m->fac + lo * in->K, sizeof(int32_t) * (size_t)in->K * m->B);
  return KNOBS_OK;
}

const float *kn_vae_input(knobs_model *m, const float *x, int B) {
  if (!m->counts) return x;
  KN_ASSERT(B <= m->cap);
  size_t n = (size_t)B * m->D;
  for (size_t i = 0; i < n; i++) m->xl[i] = log1pf(x[i]);
  return m->xl;
}

void kn_vae_encode_batch(knobs_model *m, const float *x, int B) {
  const float *h = kn_stack_forward(&m->enc, kn_vae_input(m, x, B), B, 0);
  int Z = m->Z;
  for (int b = 0; b < B; b++) {
    memcpy(m->mu + (size_t)b * Z, h + (size_t)b * 2 * Z, sizeof(float) * (size_t)Z);
    memcpy(m->lv + (size_t)b * Z, h + (size_t)b * 2 * Z + Z, sizeof(float) * (size_t)Z);
  }
}

void kn_model_rng(const knobs_model *m, uint64_t stream, uint64_t salt, kn_rng *r) {
  kn_rng_seed(r, m->cfg.seed ^ (salt * 0x9E3779B97F4A7C15ull), stream + (uint64_t)m->step);
}

void kn_vae_sample(knobs_model *m, int B, kn_rng *r) {
  size_t n = (size_t)B * m->Z;
  if (m->test_eps) {
    memcpy(m->eps, m->test_eps + (size_t)(m->step % m->test_neps) * n, sizeof(float) * n);
  } else if (m->par.size > 1 && B == m->B) { /* this shard's rows of the whole batch's noise */
    kn_rng_normal_fill(r, m->eps, (size_t)m->cfg.batch * m->Z);
    memmove(m->eps, m->eps + (size_t)m->par.rank * n, sizeof(float) * n);
  } else {
    kn_rng_normal_fill(r, m->eps, n);
  }
  kn_reparam_forward(m->z, m->mu, m->lv, m->eps, n);
}

/* x (B,C,H,W) in the layout of the decoder output: channel-major for conv with C > 1. */
static const float *target_layout(knobs_model *m, const float *x, int B) {
  if (!spatial_out(m) || m->cfg.C == 1) return x;
  kn_bcs_to_cbs(m->pool, m->xt, x, B, m->cfg.C, (long)m->cfg.H * m->cfg.W, 0);
  return m->xt;
}

/* The count loss of the decoder output y against raw counts x: NB on y (B,G), or ZINB on the
 * fused heads y (B,2G) = [logits | dropout logits] per cell, split into m->clog/m->cpi and the
 * gradients joined back from m->cdl/m->cdpi. px_r's gradient goes straight to its slot. */
static double counts_loss(knobs_model *m, const float *y, const float *x, int B, float scale, int with_grad) {
  size_t G = m->D;
  float *dy = with_grad ? kn_stack_dout(&m->dec) : NULL;
  kn_counts_batch in = {.x = x, .logits = y, .px_r = kn_param_ptr(&m->net, m->px_r), .pi = NULL, .lib = NULL,
                        .work = m->cwork, .B = B, .G = (int)G};
  kn_counts_grad g = {.dlogits = dy, .dpx_r = with_grad ? kn_grad_ptr(&m->net, m->px_r) : NULL, .dpi = NULL,
                      .per = m->per};
  if (m->counts == 1) return kn_counts_loss(m->pool, &in, &g, scale);
  for (int b = 0; b < B; b++) {
    memcpy(m->clog + b * G, y + b * 2 * G, sizeof(float) * G);
    memcpy(m->cpi + b * G, y + b * 2 * G + G, sizeof(float) * G);
  }
  in.logits = m->clog, in.pi = m->cpi;
  if (dy) {
    memset(m->cdl, 0, sizeof(float) * B * G);
    memset(m->cdpi, 0, sizeof(float) * B * G);
    g.dlogits = m->cdl, g.dpi = m->cdpi;
  }
  double v = kn_counts_loss(m->pool, &in, &g, scale);
  if (dy)
    for (int b = 0; b < B; b++)
      for (size_t k = 0; k < G; k++) dy[b * 2 * G + k] += m->cdl[b * G + k], dy[b * 2 * G + G + k] += m->cdpi[b * G + k];
  return v;
}

double kn_vae_decode_loss(knobs_model *m, const float *x, int B, float scale, int with_grad) {
  const float *y = kn_stack_forward(&m->dec, m->z, B, 0);
  if (m->counts) return counts_loss(m, y, x, B, scale, with_grad);
  const float *t = target_layout(m, x, B);
  float *dy = with_grad ? kn_stack_dout(&m->dec) : NULL;
  if (bernoulli(m)) return kn_bernoulli_loss(m->pool, dy, m->per, y, t, B, (long)m->D, scale);
  return kn_gaussian_loss(m->pool, dy, m->per, y, t, B, (long)m->D, scale);
}

void kn_vae_backward(knobs_model *m, int B) {
  kn_stack_backward(&m->dec, B);
  size_t n = (size_t)B * m->Z;
  kn_reparam_backward(m->dmu, m->dlv, m->dec.dx_in, m->lv, m->eps, n);
  float *dh = kn_stack_dout(&m->enc);
  int Z = m->Z;
  for (int b = 0; b < B; b++) {
    float *r = dh + (size_t)b * 2 * Z;
    for (int k = 0; k < Z; k++) {
      r[k] += m->dmu[(size_t)b * Z + k];
      r[Z + k] += m->dlv[(size_t)b * Z + k];
    }
  }
  kn_stack_backward(&m->enc, B);
}

void kn_model_opt_step(knobs_model *m, int k) {
  if (m->par.size > 1) { /* the whole batch's gradient: the shards' sum over the processes / size */
    kn_adam *a = &m->opt[k];
    float *g = m->net.g + a->off;
    if (m->par.sum_f32(m->par.ctx, g, a->n)) m->par_failed = 1;
    float inv = 1.0f / (float)m->par.size;
    for (size_t i = 0; i < a->n; i++) g[i] *= inv;
  }
  kn_adam_step(m->pool, &m->opt[k], m->net.p, m->net.g);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

uint64_t knobs_model_digest(const knobs_model *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, m->net.p, sizeof(float) * m->net.n_p);
  if (m->net.n_buf) h = fnv(h, m->net.buf, sizeof(float) * m->net.n_buf);
  for (int k = 0; k < m->nopt; k++) {
    const kn_adam *a = &m->opt[k];
    if (a->m) h = fnv(h, a->m, sizeof(float) * a->n);
    if (a->v) h = fnv(h, a->v, sizeof(float) * a->n);
    h = fnv(h, &a->t, sizeof a->t);
  }
  return fnv(h, &m->step, sizeof m->step);
}

int knobs_model_data_parallel(const char *model) {
  const kn_model_ops *o = model ? kn_model_ops_find(model) : NULL;
  return o && o->batch_separable;
}

knobs_status knobs_model_set_parallel(knobs_model *m, const knobs_parallel *p) {
  if (!p || p->size <= 1) {
    m->par = (knobs_parallel){0};
    m->B = m->cfg.batch;
    return KNOBS_OK;
  }
  if (p->rank < 0 || p->rank >= p->size || !p->sum_f32 || !p->sum_f64)
    return kn_err(KNOBS_ERR_ARG, "data-parallel: rank %d of %d, or a missing sum", p->rank, p->size);
  if (!m->ops->batch_separable)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "data-parallel training needs a loss that is a mean of per-example terms "
                  "(betavae); %s couples the examples of a batch, so shards would change its loss (spread runs "
                  "over processes with knobs sweep instead)", m->cfg.model);
  if (m->prop.on)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "data-parallel training with a property penalty is not supported");
  if (m->cfg.batch % p->size)
    return kn_err(KNOBS_ERR_ARG, "data-parallel: batch %d does not split into %d equal shards", m->cfg.batch, p->size);
  m->par = *p;
  m->B = m->cfg.batch / p->size;
  return KNOBS_OK;
}

int knobs_model_has_posterior(const knobs_model *m) { return m->has_vae; }

knobs_status knobs_model_train_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  knobs_terms own;
  if (!t && m->par.size > 1) t = &own; /* every process sums the terms */
  if (t) t->n = 0;
  for (int i = 0; i < m->nstacks; i++) m->stacks[i]->training = 1;
  kn_model_zero_grad(m);
  knobs_status s = m->ops->own_batch ? KNOBS_OK : kn_model_batch(m, d);
  if (!s) s = m->ops->step(m, d, t);
  if (s) return s;
  m->step++;
  if (m->par.size > 1) { /* the whole batch's terms: the mean of the shards' means */
    if (m->par.sum_f64(m->par.ctx, t->value, (size_t)t->n)) m->par_failed = 1;
    for (int i = 0; i < t->n; i++) t->value[i] /= m->par.size;
    if (m->par_failed)
      return kn_err(KNOBS_ERR_IO, "data-parallel: the sum across processes failed at step %ld", m->step);
  }
  if (m->prop.on && t) { /* the penalty's term, and its share of the loss */
    for (int i = 0; i < t->n; i++)
      if (!strcmp(t->name[i], "loss")) t->value[i] += m->cfg.property_weight * m->prop.value;
    kn_terms_add(t, "property", m->prop.value);
  }
  if (t)
    for (int i = 0; i < t->n; i++)
      if (!isfinite(t->value[i]))
        return kn_err(KNOBS_ERR_DATA, "training diverged at step %ld: %s is %g (lower the learning rate, or check "
                      "the data for NaN)", m->step, t->name[i], t->value[i]);
  return KNOBS_OK;
}

/* ---- inference ------------------------------------------------------------------------------ */

static void set_eval(knobs_model *m, int eval) {
  for (int i = 0; i < m->nstacks; i++) m->stacks[i]->training = !eval;
}

knobs_status knobs_model_encode(knobs_model *m, const float *x, int n, float *mean, float *logvar) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "encode: negative count");
  if (m->ops->encode) return m->ops->encode(m, x, n, mean, logvar);
  if (!m->has_vae) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s has no encoder", m->cfg.model);
  set_eval(m, 1);
  int Z = m->Z;
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    const float *h = kn_stack_forward(&m->enc, kn_vae_input(m, x + (size_t)i * m->D, b), b, 0);
    for (int j = 0; j < b; j++) {
      memcpy(mean + (size_t)(i + j) * Z, h + (size_t)j * 2 * Z, sizeof(float) * (size_t)Z);
      if (logvar) memcpy(logvar + (size_t)(i + j) * Z, h + (size_t)j * 2 * Z + Z, sizeof(float) * (size_t)Z);
    }
  }
  set_eval(m, 0);
  return KNOBS_OK;
}

knobs_status knobs_model_encode_sampled(knobs_model *m, const float *x, int n, uint64_t seed,
                                        uint64_t stream, float *z, float *logvar) {
  int Z = knobs_model_code_dim(m);
  float *lv = logvar ? logvar : malloc(sizeof(float) * (size_t)(n ? n : 1) * Z);
  if (!lv) return kn_err(KNOBS_ERR_NOMEM, "encode: cannot allocate %d codes", n);
  knobs_status s = knobs_model_encode(m, x, n, z, lv);
  if (!s && m->has_vae && !m->ops->encode) {
    kn_rng r;
    kn_rng_seed(&r, seed, KN_STREAM_EVAL + stream);
    for (size_t i = 0; i < (size_t)n * Z; i++) z[i] += expf(0.5f * lv[i]) * (float)kn_rng_normal(&r);
  }
  if (!logvar) free(lv);
  return s;
}

/* A count model's decode: KN_COUNTS_DECODE_LIB x softmax of the logits (the first G of each
 * row of y, whose stride is G for NB and 2G for ZINB), in double. */
static void counts_mean(const knobs_model *m, float *o, const float *y, int B) {
  size_t G = m->D, ld = m->counts == 2 ? 2 * G : G;
  for (int b = 0; b < B; b++) {
    const float *l = y + b * ld;
    double mx = l[0], s = 0;
    for (size_t k = 1; k < G; k++) mx = l[k] > mx ? l[k] : mx;
    for (size_t k = 0; k < G; k++) s += exp((double)l[k] - mx);
    for (size_t k = 0; k < G; k++) o[b * G + k] = (float)(KN_COUNTS_DECODE_LIB * exp((double)l[k] - mx) / s);
  }
}

knobs_status knobs_model_decode_counts(knobs_model *m, const float *z, int n, const float *lib, float *mu,
                                       float *theta, float *pi) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "decode: negative count");
  if (!m->counts)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s has the %s likelihood, not nb or zinb", m->cfg.model, m->cfg.likelihood);
  size_t G = m->D;
  set_eval(m, 1);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    const float *y = kn_stack_forward(&m->dec, z + (size_t)i * m->Z, b, 0);
    float *o = mu + (size_t)i * G;
    counts_mean(m, o, y, b);
    for (int j = 0; j < b && lib; j++)
      for (size_t k = 0; k < G; k++) o[j * G + k] = (float)((double)o[j * G + k] / KN_COUNTS_DECODE_LIB * lib[i + j]);
    for (int j = 0; j < b && pi; j++)
      for (size_t k = 0; k < G; k++) pi[(size_t)(i + j) * G + k] = m->counts == 2 ? y[j * 2 * G + G + k] : -INFINITY;
  }
  set_eval(m, 0);
  const float *pr = kn_param_ptr(&m->net, m->px_r);
  for (size_t k = 0; k < G && theta; k++) theta[k] = expf(pr[k]);
  return KNOBS_OK;
}

knobs_status knobs_model_decode(knobs_model *m, const float *z, int n, float *x) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "decode: negative count");
  if (m->ops->decode) return m->ops->decode(m, z, n, x);
  if (!m->has_vae) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s has no decoder", m->cfg.model);
  set_eval(m, 1);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    const float *y = kn_stack_forward(&m->dec, z + (size_t)i * m->Z, b, 0);
    float *o = x + (size_t)i * m->D;
    if (spatial_out(m) && m->cfg.C > 1) kn_cbs_to_bcs(m->pool, o, y, b, m->cfg.C, (long)m->cfg.H * m->cfg.W, 0);
    else if (m->counts) counts_mean(m, o, y, b);
    else memcpy(o, y, sizeof(float) * (size_t)b * m->D);
    if (bernoulli(m)) kn_sigmoid_forward(m->pool, o, o, (size_t)b * m->D);
  }
  set_eval(m, 0);
  return KNOBS_OK;
}

/* The vector-Jacobian product of counts_mean: o = S p, p = softmax(l), so dl_k = S p_k (g_k -
 * sum_j p_j g_j); ZINB's dropout logits do not reach the mean (0). */
static void counts_mean_vjp(const knobs_model *m, float *dy, const float *y, const float *g, int B) {
  size_t G = m->D, ld = m->counts == 2 ? 2 * G : G;
  for (int b = 0; b < B; b++) {
    const float *l = y + b * ld, *gb = g + b * G;
    double mx = l[0], s = 0, a = 0;
    for (size_t k = 1; k < G; k++) mx = l[k] > mx ? l[k] : mx;
    for (size_t k = 0; k < G; k++) s += exp((double)l[k] - mx);
    for (size_t k = 0; k < G; k++) a += exp((double)l[k] - mx) / s * gb[k];
    for (size_t k = 0; k < ld; k++)
      dy[b * ld + k] = k < G ? (float)(KN_COUNTS_DECODE_LIB * exp((double)l[k] - mx) / s * (gb[k] - a)) : 0.0f;
  }
}

knobs_status knobs_model_decode_vjp(knobs_model *m, const float *z, int n, const float *g, float *dz) {
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "decode_vjp: negative count");
  if (!m->has_vae || m->ops->decode)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s has no VAE decoder to differentiate", m->cfg.model);
  int C = m->cfg.C, conv_c = spatial_out(m) && C > 1, bern = bernoulli(m);
  float *t = n && (conv_c || bern) ? malloc(sizeof(float) * (size_t)(n < m->cap ? n : m->cap) * m->D) : NULL;
  if (n && (conv_c || bern) && !t) return kn_err(KNOBS_ERR_NOMEM, "decode_vjp: cannot allocate %d images", n);
  long S = (long)m->cfg.H * m->cfg.W;
  set_eval(m, 1);
  for (int i = 0; i < n; i += m->cap) {
    int b = n - i < m->cap ? n - i : m->cap;
    size_t nd = (size_t)b * m->D;
    const float *y = kn_stack_forward(&m->dec, z + (size_t)i * m->Z, b, 0);
    kn_stack_zero_grad(&m->dec);
    float *dy = kn_stack_dout(&m->dec);
    const float *gi = g + (size_t)i * m->D;
    /* dy in the stack's layout (C,B,H,W for a conv decoder): g, times sigmoid' for Bernoulli */
    if (conv_c) kn_bcs_to_cbs(m->pool, dy, gi, b, C, S, 0);
    else if (m->counts) counts_mean_vjp(m, dy, y, gi, b);
    else memcpy(dy, gi, sizeof(float) * nd);
    if (bern) {
      kn_sigmoid_forward(m->pool, t, y, nd);
      for (size_t j = 0; j < nd; j++) dy[j] *= t[j] * (1.0f - t[j]);
    }
    kn_stack_backward_input(&m->dec, b);
    memcpy(dz + (size_t)i * m->Z, m->dec.dx_in, sizeof(float) * (size_t)b * m->Z);
  }
  kn_stack_zero_grad(&m->dec);
  set_eval(m, 0);
  free(t);
  return KNOBS_OK;
}

knobs_status knobs_model_evaluate(knobs_model *m, const float *x, int n, uint64_t seed,
                                  knobs_terms *terms, double *kl_dim) {
  if (!m->has_vae) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s has no posterior to evaluate", m->cfg.model);
  if (n <= 0) return kn_err(KNOBS_ERR_ARG, "evaluate: no observations");
  set_eval(m, 1);
  double recon = 0, kl = 0;
  int Z = m->Z;
  double *kd = kl_dim;
  if (kd) memset(kd, 0, sizeof(double) * (size_t)Z);
  for (int i = 0, chunk = 0; i < n; i += m->cap, chunk++) {
    int b = n - i < m->cap ? n - i : m->cap;
    const float *xs = x + (size_t)i * m->D;
    kn_vae_encode_batch(m, xs, b);
    kn_rng r;
    kn_rng_seed(&r, seed, KN_STREAM_EVAL + (uint64_t)chunk);
    kn_vae_sample(m, b, &r);
    recon += kn_vae_decode_loss(m, xs, b, 1.0f, 0) * b;
    kl += kn_gauss_kl(NULL, NULL, m->kl_dim, m->mu, m->lv, b, Z, 1.0f) * b;
    if (kd)
      for (int k = 0; k < Z; k++) kd[k] += m->kl_dim[k] * b;
  }
  set_eval(m, 0);
  if (kd)
    for (int k = 0; k < Z; k++) kd[k] /= n;
  if (terms) {
    terms->n = 0;
    kn_terms_add(terms, "recon", recon / n);
    kn_terms_add(terms, "kl", kl / n);
    kn_terms_add(terms, "elbo", -(recon + kl) / n);
  }
  return KNOBS_OK;
}
