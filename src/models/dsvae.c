/* dsvae.c: the disentangled sequential VAE (Li & Mandt 2018, "Disentangled Sequential
 * Autoencoder", ICML), its "full" model and the factorised variant, for sequence data
 * (knobs_data_info.T > 1: an observation is T frames of C/T channels, (T, C/T, H, W)).
 *
 * Per sequence a static code f (f_dim) and per frame a dynamic code z_t (latents):
 *   frame features  h_t = trunk(x_t): the conv (or mlp) encoder of kn_vae_declare without its
 *                   heads ("encoder.conv1".."encoder.fc1", ReLU after each), 256 (mlp: hidden)
 *   bi-LSTM         (y_t, hn) = lstm_f(h_1:T), rnn_hidden units per direction ("lstm_f")
 *   q(f | x_1:T)    (mu_f, logvar_f) = q_f([hn_fwd, hn_rev]): the forward direction's state after
 *                   t = T and the reverse direction's after t = 1 ("q_f.mean", "q_f.logvar")
 *   q(z_t | ...)    full:       (mu_z_t, logvar_z_t) = q_z(g_t), g = lstm_z([y_t, f]): a forward
 *                               LSTM over the bi-LSTM outputs with the sampled f appended to
 *                               every step, so z_t sees x_1:T and f ("lstm_z", "q_z.mean" ...)
 *                   factorised: (mu_z_t, logvar_z_t) = q_z(h_t), from frame t alone
 *   p(z_t | z_<t)   (mu_p_t, logvar_p_t) = p_z(s_t), s = prior([0, z_1, .., z_{T-1}]): a forward
 *                   LSTM whose input at step t is the previous sample (zeros for t = 1)
 *                   ("prior", "p_z.mean", "p_z.logvar")
 *   p(x_t | f, z_t) decoder([f, z_t]): the decoder of kn_vae_declare with input f_dim + latents
 *                   and C/T output channels ("decoder.fc1".."decoder.deconv4")
 *   loss = recon + beta_f KL(q(f) || N(0, I)) + beta_z sum_t KL(q(z_t) || p(z_t | z_<t))
 * with recon the Bernoulli (or Gaussian) negative log-likelihood summed over frames and pixels,
 * every term a batch mean of per-sequence sums, and the closed-form KL between diagonal
 * Gaussians, whose gradient reaches the posterior and the prior (and, through the prior's
 * input, the earlier samples z_<t). Both samples use the reparameterization.
 * Choices the paper leaves open are listed in docs/models.md ("dsvae").
 *
 * Layouts: frames go through the trunk and the decoder as (B*T, C/T, H, W), frame t of
 * sequence b at row b*T + t (the observation's own order); the recurrent layers and the z
 * heads run time-major (T, B, F), step t of sequence b at row t*B + b (nn.h's recurrent
 * layout). The noise of one step is eps_f (B, f_dim) then eps_z (T, B, latents), drawn in that
 * order from the step's noise stream; the test seam m->test_eps holds blocks of that size.
 * Representation: knobs_model_encode gives f's posterior (mean, log-variance), one row of
 * f_dim per sequence; knobs_dsvae_encode adds the dynamic codes; knobs_model_decode decodes a
 * static code with the prior's mean path z_t = mu_p(z_<t) (see knobs.h).
 * Not here: the data-parallel split (the loss is separable, but the step was not written for
 * shards), the property penalty, batch norm. */
#include <math.h>
#include <string.h>

#include "models/model.h"

typedef struct {
  int f_dim;         /* static code dimensions */
  int rnn_hidden;    /* units of every LSTM (per direction) */
  double beta_f;     /* weight of KL(q(f) || N(0, I)) */
  double beta_z;     /* weight of sum_t KL(q(z_t) || p(z_t | z_<t)) */
  char variant[16];  /* full | factorised */
} ds_settings;

#define DS "dsvae"
static const kn_field ds_fields[] = {
    KN_FIELD(ds_settings, "f_dim", KNOBS_FIELD_INT, f_dim, 1, 4096, DS, "static code f: dimensions (latents is z_t's per frame)"),
    KN_FIELD(ds_settings, "rnn_hidden", KNOBS_FIELD_INT, rnn_hidden, 1, 4096, DS, "units of each LSTM (per direction)"),
    KN_FIELD(ds_settings, "beta_f", KNOBS_FIELD_DOUBLE, beta_f, 0, 1e6, DS, "weight of KL(q(f) || N(0, I))"),
    KN_FIELD(ds_settings, "beta_z", KNOBS_FIELD_DOUBLE, beta_z, 0, 1e6, DS, "weight of sum_t KL(q(z_t) || p(z_t | z_<t))"),
    KN_FIELD(ds_settings, "variant", KNOBS_FIELD_STR, variant, 0, 0, DS,
             "full: q(z_t | x_1:T, f) through an LSTM; factorised: q(z_t | x_t)"),
};

static void ds_defaults(void *p, const char *model) {
  ds_settings *s = p;
  s->f_dim = 16, s->rnn_hidden = 128, s->beta_f = 1, s->beta_z = 1;
  strcpy(s->variant, "full");
}

static knobs_status ds_validate(const knobs_config *c, const void *p) {
  const ds_settings *s = p;
  if (strcmp(s->variant, "full") && strcmp(s->variant, "factorised"))
    return kn_err(KNOBS_ERR_ARG, "dsvae variant '%s': full or factorised", s->variant);
  if (c->T < 2)
    return kn_err(KNOBS_ERR_ARG, "dsvae models sequences, but %s has %d frame per observation (use sequence data: "
                  "dsprites:seq, or your own (N,T,H,W[,C]) array as seq:FILE.npy)", c->data[0] ? c->data : "the data", c->T);
  if (c->C % c->T)
    return kn_err(KNOBS_ERR_ARG, "dsvae: %d channels do not split into %d frames", c->C, c->T);
  return KNOBS_OK;
}

static const kn_settings ds_set = {ds_fields, 5, sizeof(ds_settings), ds_defaults, ds_validate};

typedef struct {
  int T, c, Fd, Z, Hd, F, full; /* frames, channels a frame, f and z_t dims, LSTM units, features */
  size_t Df;                    /* floats a frame */
  kn_stack trunk, qf, qz, pz, dec;
  kn_rnn bi, zr, pr;
  /* time-major (T,B,.) unless said */
  float *hs, *dhs;              /* (T,B,F) frame features */
  float *y1, *dy1;              /* (T,B,2Hd) bi-LSTM outputs */
  float *hn, *dhn;              /* (2,B,Hd) its final states */
  float *fin;                   /* (B,2Hd) [hn_fwd, hn_rev] */
  float *mf, *lf, *ef, *f, *dmf, *dlf, *df; /* (B,Fd) */
  float *zin, *dzin;            /* (T,B,2Hd+Fd) lstm_z input (full) */
  float *g, *s;                 /* (T,B,Hd) the outputs of lstm_z and of the prior's LSTM */
  float *mz, *lz, *ez, *z, *dmz, *dlz, *dz; /* (T,B,Z) */
  float *pin, *dpin;            /* (T,B,Z) prior input [0, z_1..z_{T-1}] */
  float *mp, *lp, *dmp, *dlp;   /* (T,B,Z) prior */
  float *hc;                    /* (2,B,Hd) prior states when sampling step by step: h, c */
  float *din;                   /* (B*T, Fd+Z) decoder input, frame-major */
  float *ws_bi, *ws_z, *ws_p;   /* recurrent workspaces */
  float *block;                 /* every buffer above, one allocation */
} ds_impl;

static const ds_settings *S(const knobs_model *m) { return KN_CSETTINGS(&m->cfg, ds_settings); }
static int bernoulli(const knobs_model *m) { return !strcmp(m->cfg.likelihood, "bernoulli"); }

/* The trunk (encoder without heads) and the decoder of kn_vae_declare for c channels a frame. */
static void declare_nets(knobs_model *m, ds_impl *p) {
  const knobs_config *c = &m->cfg;
  kn_stack *e = &p->trunk, *d = &p->dec;
  int in = p->Fd + p->Z;
  if (!strcmp(c->arch, "conv")) {
    kn_stack_begin(e, &m->net, "encoder", p->c, c->H, c->W, 1);
    kn_stack_conv(e, 32, 4, 2, 1, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    kn_stack_conv(e, 32, 4, 2, 1, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    if (c->H == 64) {
      kn_stack_conv(e, 64, 2, 2, 0, NULL, 0), kn_stack_act(e, KN_RELU, 0);
      kn_stack_conv(e, 64, 2, 2, 0, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    } else {
      kn_stack_conv(e, 64, 3, 2, 1, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    }
    kn_stack_flatten(e);
    kn_stack_linear(e, 256, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    p->F = 256;
  } else {
    kn_stack_begin(e, &m->net, "encoder", p->c * c->H * c->W, 1, 1, 0);
    kn_stack_linear(e, c->hidden, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    kn_stack_linear(e, c->hidden, NULL, 0), kn_stack_act(e, KN_RELU, 0);
    p->F = c->hidden;
  }
  kn_model_add_stack(m, e, 0);
  /* the heads and recurrent layers in the order a PyTorch module would register them */
  static const char *const heads[2] = {"mean", "logvar"};
  kn_rnn_declare(&p->bi, &m->net, "lstm_f", 0);
  kn_stack_begin(&p->qf, &m->net, "q_f", 2 * p->Hd, 1, 1, 0);
  kn_stack_linear_heads(&p->qf, p->Fd, 2, heads, 0);
  kn_model_add_stack(m, &p->qf, 1);
  if (p->full) kn_rnn_declare(&p->zr, &m->net, "lstm_z", 0);
  kn_stack_begin(&p->qz, &m->net, "q_z", p->full ? p->Hd : p->F, 1, 1, 0);
  kn_stack_linear_heads(&p->qz, p->Z, 2, heads, 0);
  kn_model_add_stack(m, &p->qz, 1);
  kn_rnn_declare(&p->pr, &m->net, "prior", 0);
  kn_stack_begin(&p->pz, &m->net, "p_z", p->Hd, 1, 1, 0);
  kn_stack_linear_heads(&p->pz, p->Z, 2, heads, 0);
  kn_model_add_stack(m, &p->pz, 1);
  kn_stack_begin(d, &m->net, "decoder", in, 1, 1, 0);
  if (!strcmp(c->arch, "conv")) {
    kn_stack_linear(d, 256, NULL, 0), kn_stack_act(d, KN_RELU, 0);
    kn_stack_linear(d, 1024, NULL, 0), kn_stack_act(d, KN_RELU, 0);
    kn_stack_unflatten(d, 64, 4, 4);
    if (c->H == 64) {
      kn_stack_convt(d, 64, 4, 2, 1, NULL, 0), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, 0), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, 0), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, p->c, 4, 2, 1, NULL, 0);
    } else {
      kn_stack_convt(d, 32, 3, 2, 1, NULL, 0), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, 32, 4, 2, 1, NULL, 0), kn_stack_act(d, KN_RELU, 0);
      kn_stack_convt(d, p->c, 4, 2, 1, NULL, 0);
    }
  } else {
    int Hd = c->hidden;
    kn_stack_linear(d, Hd, NULL, 0), kn_stack_act(d, KN_TANH, 0);
    kn_stack_linear(d, Hd, NULL, 0), kn_stack_act(d, KN_TANH, 0);
    kn_stack_linear(d, Hd, NULL, 0), kn_stack_act(d, KN_TANH, 0);
    kn_stack_linear(d, (int)p->Df, NULL, 0);
  }
  if (!bernoulli(m) && m->image) kn_stack_act(d, KN_SIGMOID, 0);
  kn_model_add_stack(m, d, 1);
}

static knobs_status ds_build(knobs_model *m) {
  const knobs_config *c = &m->cfg;
  ds_impl *p = kn_alloc(sizeof *p, "dsvae state");
  if (!p) return KNOBS_ERR_NOMEM;
  memset(p, 0, sizeof *p);
  m->impl = p;
  p->T = c->T, p->c = c->C / c->T, p->Fd = S(m)->f_dim, p->Z = c->z_dim, p->Hd = S(m)->rnn_hidden;
  p->full = !strcmp(S(m)->variant, "full");
  p->Df = (size_t)p->c * c->H * c->W;
  m->cap = m->B * p->T; /* the stacks run frames */
  knobs_status s = kn_rnn_setup(&p->bi, KN_RNN_LSTM, !strcmp(c->arch, "conv") ? 256 : c->hidden, p->Hd, 2);
  if (!s && p->full) s = kn_rnn_setup(&p->zr, KN_RNN_LSTM, 2 * p->Hd + p->Fd, p->Hd, 1);
  if (!s) s = kn_rnn_setup(&p->pr, KN_RNN_LSTM, p->Z, p->Hd, 1);
  if (s) return s;
  declare_nets(m, p);
  return KNOBS_OK;
}

static knobs_status ds_ready(knobs_model *m) {
  ds_impl *p = m->impl;
  size_t B = (size_t)m->B, T = (size_t)p->T, N = T * B, F = (size_t)p->F, Hd = (size_t)p->Hd;
  size_t Fd = (size_t)p->Fd, Z = (size_t)p->Z, I2 = 2 * Hd + Fd;
  size_t nbi = kn_rnn_workspace_size(&p->bi, p->T, m->B), nz = p->full ? kn_rnn_workspace_size(&p->zr, p->T, m->B) : 0;
  size_t np = kn_rnn_workspace_size(&p->pr, p->T, m->B);
  size_t sz[] = {N * F, N * F, N * 2 * Hd, N * 2 * Hd, 2 * B * Hd, 2 * B * Hd, B * 2 * Hd,
                 B * Fd, B * Fd, B * Fd, B * Fd, B * Fd, B * Fd, B * Fd,
                 N * I2, N * I2, N * Z, N * Z, N * Z, N * Z, N * Z, N * Z, N * Z,
                 N * Z, N * Z, N * Z, N * Z, N * Z, N * Z, 2 * B * Hd, N * (Fd + Z), nbi, nz, np, N * Hd, N * Hd};
  float **dst[] = {&p->hs, &p->dhs, &p->y1, &p->dy1, &p->hn, &p->dhn, &p->fin,
                   &p->mf, &p->lf, &p->ef, &p->f, &p->dmf, &p->dlf, &p->df,
                   &p->zin, &p->dzin, &p->mz, &p->lz, &p->ez, &p->z, &p->dmz, &p->dlz, &p->dz,
                   &p->pin, &p->dpin, &p->mp, &p->lp, &p->dmp, &p->dlp, &p->hc, &p->din, &p->ws_bi, &p->ws_z, &p->ws_p, &p->g, &p->s};
  size_t total = 0, n = sizeof sz / sizeof sz[0];
  for (size_t i = 0; i < n; i++) total += (sz[i] + 15) & ~(size_t)15;
  p->block = kn_alloc(sizeof(float) * total, "dsvae buffers");
  if (!p->block) return KNOBS_ERR_NOMEM;
  memset(p->block, 0, sizeof(float) * total);
  float *q = p->block;
  for (size_t i = 0; i < n; i++) *dst[i] = sz[i] ? q : NULL, q += (sz[i] + 15) & ~(size_t)15;
  kn_rnn_bind(&p->bi, &m->net);
  if (p->full) kn_rnn_bind(&p->zr, &m->net);
  kn_rnn_bind(&p->pr, &m->net);
  /* torch.nn.LSTM's init for the recurrent layers (the stacks were initialised by
   * knobs_model_create), from a stream of their own */
  kn_rng r;
  kn_rng_seed(&r, m->cfg.seed, KN_STREAM_INIT + 1);
  kn_rnn_init(&p->bi, &m->net, &r);
  if (p->full) kn_rnn_init(&p->zr, &m->net, &r);
  kn_rnn_init(&p->pr, &m->net, &r);
  return KNOBS_OK;
}

static void ds_free(knobs_model *m) {
  ds_impl *p = m->impl;
  if (!p) return;
  kn_free(p->block), kn_free(p);
  m->impl = NULL;
}

/* ---- forward pieces (B <= m->B sequences) ------------------------------------------------- */

/* Split fused heads (R, 2K) into mean and logvar (R, K). */
static void split_heads(const float *o, float *mu, float *lv, size_t R, int K) {
  for (size_t r = 0; r < R; r++) {
    memcpy(mu + r * K, o + r * 2 * K, sizeof(float) * (size_t)K);
    memcpy(lv + r * K, o + r * 2 * K + K, sizeof(float) * (size_t)K);
  }
}

static void join_heads(float *o, const float *dmu, const float *dlv, size_t R, int K) {
  for (size_t r = 0; r < R; r++)
    for (int k = 0; k < K; k++) o[r * 2 * K + k] += dmu[r * K + k], o[r * 2 * K + K + k] += dlv[r * K + k];
}

/* x (B,T,c,H,W) -> frame features hs, bi-LSTM, q(f): mf, lf. */
static void encode_f(knobs_model *m, const float *x, int B) {
  ds_impl *p = m->impl;
  int T = p->T, F = p->F, Hd = p->Hd;
  const float *h = kn_stack_forward(&p->trunk, x, B * T, 0);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      memcpy(p->hs + ((size_t)t * B + b) * F, h + ((size_t)b * T + t) * F, sizeof(float) * (size_t)F);
  kn_rnn_seq sq = {.T = T, .B = B, .x = p->hs, .y = p->y1, .hn = p->hn, .ws = p->ws_bi};
  KN_ASSERT(!kn_rnn_forward(m->pool, &p->bi, &sq));
  for (int b = 0; b < B; b++) {
    memcpy(p->fin + (size_t)b * 2 * Hd, p->hn + (size_t)b * Hd, sizeof(float) * (size_t)Hd);
    memcpy(p->fin + (size_t)b * 2 * Hd + Hd, p->hn + ((size_t)B + b) * Hd, sizeof(float) * (size_t)Hd);
  }
  split_heads(kn_stack_forward(&p->qf, p->fin, B, 0), p->mf, p->lf, (size_t)B, p->Fd);
}

/* q(z_t | ...) given the static code f (B,Fd): mz, lz. */
static void encode_z(knobs_model *m, const float *f, int B) {
  ds_impl *p = m->impl;
  int T = p->T, Hd = p->Hd, Fd = p->Fd;
  const float *o;
  if (p->full) {
    size_t I2 = 2 * (size_t)Hd + Fd;
    for (int t = 0; t < T; t++)
      for (int b = 0; b < B; b++) {
        float *r = p->zin + ((size_t)t * B + b) * I2;
        memcpy(r, p->y1 + ((size_t)t * B + b) * 2 * Hd, sizeof(float) * 2 * (size_t)Hd);
        memcpy(r + 2 * Hd, f + (size_t)b * Fd, sizeof(float) * (size_t)Fd);
      }
    kn_rnn_seq sq = {.T = T, .B = B, .x = p->zin, .y = p->g, .ws = p->ws_z};
    KN_ASSERT(!kn_rnn_forward(m->pool, &p->zr, &sq));
    o = kn_stack_forward(&p->qz, p->g, T * B, 0);
  } else {
    o = kn_stack_forward(&p->qz, p->hs, T * B, 0);
  }
  split_heads(o, p->mz, p->lz, (size_t)T * B, p->Z);
}

/* The prior over z (T,B,Z): mp, lp from the input [0, z_1..z_{T-1}]. */
static void prior_of(knobs_model *m, const float *z, int B) {
  ds_impl *p = m->impl;
  int T = p->T, Z = p->Z;
  size_t row = (size_t)B * Z;
  memset(p->pin, 0, sizeof(float) * row);
  memcpy(p->pin + row, z, sizeof(float) * row * (size_t)(T - 1));
  kn_rnn_seq sq = {.T = T, .B = B, .x = p->pin, .y = p->s, .ws = p->ws_p};
  KN_ASSERT(!kn_rnn_forward(m->pool, &p->pr, &sq));
  split_heads(kn_stack_forward(&p->pz, p->s, T * B, 0), p->mp, p->lp, (size_t)T * B, Z);
}

/* Decoder forward on [f_b, z_t] for B sequences (f (B,Fd), z (T,B,Z)); returns the logits (or
 * means) in the decoder's layout: (c, B*T, H, W) for conv with c > 1, else (B*T, Df). */
static const float *decode_frames(knobs_model *m, const float *f, const float *z, int B) {
  ds_impl *p = m->impl;
  int T = p->T, Fd = p->Fd, Z = p->Z;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *r = p->din + ((size_t)b * T + t) * (Fd + Z);
      memcpy(r, f + (size_t)b * Fd, sizeof(float) * (size_t)Fd);
      memcpy(r + Fd, z + ((size_t)t * B + b) * Z, sizeof(float) * (size_t)Z);
    }
  return kn_stack_forward(&p->dec, p->din, B * T, 0);
}

/* sum over steps and dims of KL(N(mq, exp(lq)) || N(mp, exp(lp))), batch mean over B:
 *   0.5 (lp - lq + (exp(lq) + (mq - mp)^2) / exp(lp) - 1)
 * in double; with gradients (each non-NULL), adds scale/B times the partials:
 *   d/dmq = (mq - mp) / exp(lp) = -d/dmp,  d/dlq = 0.5 (exp(lq - lp) - 1),
 *   d/dlp = 0.5 (1 - (exp(lq) + (mq - mp)^2) / exp(lp)). */
static double kl_gauss2(float *dmq, float *dlq, float *dmp, float *dlp, const float *mq, const float *lq,
                        const float *mp, const float *lp, size_t n, int B, double scale) {
  double s = 0, g = scale / B;
  for (size_t i = 0; i < n; i++) {
    double vq = exp((double)lq[i]), ivp = exp(-(double)lp[i]), d = (double)mq[i] - mp[i];
    double q = (vq + d * d) * ivp;
    s += 0.5 * ((double)lp[i] - lq[i] + q - 1);
    if (dmq) {
      dmq[i] += (float)(g * d * ivp), dmp[i] -= (float)(g * d * ivp);
      dlq[i] += (float)(g * 0.5 * (vq * ivp - 1)), dlp[i] += (float)(g * 0.5 * (1 - q));
    }
  }
  return s / B;
}

/* The step's noise: eps_f (B,Fd) then eps_z (T,B,Z). */
static void draw_noise(knobs_model *m) {
  ds_impl *p = m->impl;
  size_t nf = (size_t)m->B * p->Fd, nz = (size_t)p->T * m->B * p->Z;
  if (m->test_eps) {
    const float *e = m->test_eps + (size_t)(m->step % m->test_neps) * (nf + nz);
    memcpy(p->ef, e, sizeof(float) * nf), memcpy(p->ez, e + nf, sizeof(float) * nz);
  } else {
    kn_rng r;
    kn_model_rng(m, KN_STREAM_NOISE, 0, &r);
    kn_rng_normal_fill(&r, p->ef, nf);
    kn_rng_normal_fill(&r, p->ez, nz);
  }
}

/* Recurrent backward (asserting its arguments are well formed: they are built here). */
static void rnn_back(knobs_model *m, const kn_rnn *r, const kn_rnn_seq *sq, const kn_rnn_grad *g) {
  KN_ASSERT(!kn_rnn_backward(m->pool, r, sq, g));
}

/* The forward of one step on m->x: the reconstruction loss (its gradient in the decoder's
 * output gradient) to *recon, the two KL terms (their gradients in dmf, dlf, dmz, dlz, dmp,
 * dlp) to kl[0] (f) and kl[1] (z). */
static void step_forward(knobs_model *m, double *recon, double kl[2]) {
  ds_impl *p = m->impl;
  int B = m->B, T = p->T, Fd = p->Fd, Z = p->Z;
  size_t N = (size_t)T * B;
  const ds_settings *st = S(m);
  draw_noise(m);
  encode_f(m, m->x, B);
  kn_reparam_forward(p->f, p->mf, p->lf, p->ef, (size_t)B * Fd);
  encode_z(m, p->f, B);
  kn_reparam_forward(p->z, p->mz, p->lz, p->ez, N * Z);
  prior_of(m, p->z, B);
  const float *y = decode_frames(m, p->f, p->z, B);
  const float *x = m->x;
  if (!strcmp(m->cfg.arch, "conv") && p->c > 1) {
    kn_bcs_to_cbs(m->pool, m->xt, m->x, B * T, p->c, (long)m->cfg.H * m->cfg.W, 0);
    x = m->xt;
  }
  /* per-frame losses are means over the B*T frames: scale T (and x T) makes them per-sequence sums */
  float *dy = kn_stack_dout(&p->dec);
  *recon = T * (bernoulli(m) ? kn_bernoulli_loss(m->pool, dy, m->per, y, x, B * T, (long)p->Df, (float)T)
                             : kn_gaussian_loss(m->pool, dy, m->per, y, x, B * T, (long)p->Df, (float)T));
  memset(p->dmf, 0, sizeof(float) * (size_t)B * Fd), memset(p->dlf, 0, sizeof(float) * (size_t)B * Fd);
  memset(p->dmz, 0, sizeof(float) * N * Z), memset(p->dlz, 0, sizeof(float) * N * Z);
  memset(p->dmp, 0, sizeof(float) * N * Z), memset(p->dlp, 0, sizeof(float) * N * Z);
  kl[0] = kn_gauss_kl(p->dmf, p->dlf, NULL, p->mf, p->lf, B, Fd, (float)st->beta_f);
  kl[1] = kl_gauss2(p->dmz, p->dlz, p->dmp, p->dlp, p->mz, p->lz, p->mp, p->lp, N * Z, B, st->beta_z);
}

/* Backward of step_forward into every parameter gradient. */
static void step_backward(knobs_model *m) {
  ds_impl *p = m->impl;
  int B = m->B, T = p->T, Fd = p->Fd, Z = p->Z, Hd = p->Hd, F = p->F;
  size_t N = (size_t)T * B, I2 = 2 * (size_t)Hd + Fd;
  /* decoder -> df, dz */
  kn_stack_backward(&p->dec, B * T);
  memset(p->df, 0, sizeof(float) * (size_t)B * Fd);
  for (int b = 0; b < B; b++)
    for (int s = 0; s < T; s++) {
      const float *r = p->dec.dx_in + ((size_t)b * T + s) * (Fd + Z);
      for (int k = 0; k < Fd; k++) p->df[(size_t)b * Fd + k] += r[k];
      memcpy(p->dz + ((size_t)s * B + b) * Z, r + Fd, sizeof(float) * (size_t)Z);
    }
  /* prior: heads, LSTM, into the earlier samples */
  join_heads(kn_stack_dout(&p->pz), p->dmp, p->dlp, N, Z);
  kn_stack_backward(&p->pz, (int)N);
  memset(p->dpin, 0, sizeof(float) * N * Z);
  kn_rnn_seq sp = {.T = T, .B = B, .x = p->pin, .y = p->s, .ws = p->ws_p};
  rnn_back(m, &p->pr, &sp, &(kn_rnn_grad){.dy = p->pz.dx_in, .dx = p->dpin});
  for (size_t i = (size_t)B * Z; i < N * Z; i++) p->dz[i - (size_t)B * Z] += p->dpin[i];
  /* z's posterior */
  kn_reparam_backward(p->dmz, p->dlz, p->dz, p->lz, p->ez, N * Z);
  join_heads(kn_stack_dout(&p->qz), p->dmz, p->dlz, N, Z);
  kn_stack_backward(&p->qz, (int)N);
  memset(p->dhs, 0, sizeof(float) * N * F);
  if (p->full) {
    memset(p->dzin, 0, sizeof(float) * N * I2);
    kn_rnn_seq sz = {.T = T, .B = B, .x = p->zin, .y = p->g, .ws = p->ws_z};
    rnn_back(m, &p->zr, &sz, &(kn_rnn_grad){.dy = p->qz.dx_in, .dx = p->dzin});
    for (size_t r = 0; r < N; r++) {
      memcpy(p->dy1 + r * 2 * Hd, p->dzin + r * I2, sizeof(float) * 2 * (size_t)Hd);
      float *dfb = p->df + (r % (size_t)B) * Fd;
      for (int k = 0; k < Fd; k++) dfb[k] += p->dzin[r * I2 + 2 * Hd + k];
    }
  } else {
    for (size_t i = 0; i < N * F; i++) p->dhs[i] += p->qz.dx_in[i];
  }
  /* f's posterior */
  kn_reparam_backward(p->dmf, p->dlf, p->df, p->lf, p->ef, (size_t)B * Fd);
  join_heads(kn_stack_dout(&p->qf), p->dmf, p->dlf, (size_t)B, Fd);
  kn_stack_backward(&p->qf, B);
  for (int b = 0; b < B; b++) {
    memcpy(p->dhn + (size_t)b * Hd, p->qf.dx_in + (size_t)b * 2 * Hd, sizeof(float) * (size_t)Hd);
    memcpy(p->dhn + ((size_t)B + b) * Hd, p->qf.dx_in + (size_t)b * 2 * Hd + Hd, sizeof(float) * (size_t)Hd);
  }
  /* bi-LSTM and the trunk */
  kn_rnn_seq sb = {.T = T, .B = B, .x = p->hs, .y = p->y1, .hn = p->hn, .ws = p->ws_bi};
  rnn_back(m, &p->bi, &sb, &(kn_rnn_grad){.dy = p->full ? p->dy1 : NULL, .dhn = p->dhn, .dx = p->dhs});
  float *dh = kn_stack_dout(&p->trunk);
  for (int b = 0; b < B; b++)
    for (int s = 0; s < T; s++) {
      float *r = dh + ((size_t)b * T + s) * F;
      const float *q = p->dhs + ((size_t)s * B + b) * F;
      for (int k = 0; k < F; k++) r[k] += q[k];
    }
  kn_stack_backward(&p->trunk, B * T);
}

static knobs_status ds_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  const ds_impl *p = m->impl;
  if (!m->test_x && knobs_data_info_get(d)->T != p->T)
    return kn_err(KNOBS_ERR_DATA, "%s has %d frames per observation, the dsvae model %d", knobs_data_info_get(d)->name,
                  knobs_data_info_get(d)->T, p->T);
  const ds_settings *st = S(m);
  double recon, kl[2];
  step_forward(m, &recon, kl);
  step_backward(m);
  kn_model_opt_step(m, 0);
  double klf = kl[0], klz = kl[1], loss = recon + st->beta_f * klf + st->beta_z * klz;
  kn_terms_add(t, "loss", loss);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl_f", klf);
  kn_terms_add(t, "kl_z", klz);
  kn_terms_add(t, "elbo", -(recon + klf + klz));
  return KNOBS_OK;
}

/* ---- inference ---------------------------------------------------------------------------- */

static int ds_code_dim(const knobs_model *m) { return S(m)->f_dim; }

static knobs_status ds_encode(knobs_model *m, const float *x, int n, float *mean, float *logvar) {
  ds_impl *p = m->impl;
  int Fd = p->Fd;
  for (int i = 0; i < n; i += m->B) {
    int b = n - i < m->B ? n - i : m->B;
    encode_f(m, x + (size_t)i * m->D, b);
    memcpy(mean + (size_t)i * Fd, p->mf, sizeof(float) * (size_t)b * Fd);
    if (logvar) memcpy(logvar + (size_t)i * Fd, p->lf, sizeof(float) * (size_t)b * Fd);
  }
  return KNOBS_OK;
}

/* Decoder output (layout of decode_frames) to n sequences (B,T,c,H,W) of probabilities. */
static void frames_out(knobs_model *m, const float *y, int B, float *x) {
  ds_impl *p = m->impl;
  size_t nd = (size_t)B * p->T * p->Df;
  if (!strcmp(m->cfg.arch, "conv") && p->c > 1) kn_cbs_to_bcs(m->pool, x, y, B * p->T, p->c, (long)m->cfg.H * m->cfg.W, 0);
  else memcpy(x, y, sizeof(float) * nd);
  if (bernoulli(m)) kn_sigmoid_forward(m->pool, x, x, nd);
}

static int is_dsvae(const knobs_model *m) { return m && !strcmp(m->ops->name, "dsvae"); }

knobs_status knobs_dsvae_dims(const knobs_model *m, int *T, int *f_dim, int *z_dim) {
  if (!is_dsvae(m)) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s is not a dsvae", m ? m->cfg.model : "(none)");
  const ds_impl *p = m->impl;
  if (T) *T = p->T;
  if (f_dim) *f_dim = p->Fd;
  if (z_dim) *z_dim = p->Z;
  return KNOBS_OK;
}

knobs_status knobs_dsvae_encode(knobs_model *m, const float *x, int n, float *f_mean, float *z_mean) {
  if (!is_dsvae(m)) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s is not a dsvae", m ? m->cfg.model : "(none)");
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "dsvae encode: negative count");
  ds_impl *p = m->impl;
  int T = p->T, Fd = p->Fd, Z = p->Z;
  for (int i = 0; i < n; i += m->B) {
    int b = n - i < m->B ? n - i : m->B;
    encode_f(m, x + (size_t)i * m->D, b);
    if (f_mean) memcpy(f_mean + (size_t)i * Fd, p->mf, sizeof(float) * (size_t)b * Fd);
    if (!z_mean) continue;
    encode_z(m, p->mf, b);
    for (int j = 0; j < b; j++)
      for (int t = 0; t < T; t++)
        memcpy(z_mean + (((size_t)i + j) * T + t) * Z, p->mz + ((size_t)t * b + j) * Z, sizeof(float) * (size_t)Z);
  }
  return KNOBS_OK;
}

knobs_status knobs_dsvae_decode(knobs_model *m, const float *f, const float *z, int n, float *x) {
  if (!is_dsvae(m)) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s is not a dsvae", m ? m->cfg.model : "(none)");
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "dsvae decode: negative count");
  ds_impl *p = m->impl;
  int T = p->T, Fd = p->Fd, Z = p->Z;
  for (int i = 0; i < n; i += m->B) {
    int b = n - i < m->B ? n - i : m->B;
    for (int j = 0; j < b; j++) /* (b,T,Z) -> (T,b,Z) */
      for (int t = 0; t < T; t++)
        memcpy(p->z + ((size_t)t * b + j) * Z, z + (((size_t)i + j) * T + t) * Z, sizeof(float) * (size_t)Z);
    const float *y = decode_frames(m, f + (size_t)i * Fd, p->z, b);
    frames_out(m, y, b, x + (size_t)i * m->D);
  }
  return KNOBS_OK;
}

knobs_status knobs_dsvae_prior(knobs_model *m, int n, uint64_t seed, int sample, float *z) {
  if (!is_dsvae(m)) return kn_err(KNOBS_ERR_UNSUPPORTED, "model %s is not a dsvae", m ? m->cfg.model : "(none)");
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "dsvae prior: negative count");
  ds_impl *p = m->impl;
  int T = p->T, Z = p->Z, Hd = p->Hd;
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_EVAL);
  for (int i = 0; i < n; i += m->B) {
    int b = n - i < m->B ? n - i : m->B;
    size_t hb = (size_t)b * Hd;
    memset(p->pin, 0, sizeof(float) * (size_t)b * Z);
    for (int t = 0; t < T; t++) {
      kn_rnn_seq sq = {.T = 1, .B = b, .x = p->pin, .h0 = t ? p->hc : NULL, .c0 = t ? p->hc + hb : NULL,
                       .y = p->s, .hn = p->hn, .cn = p->hn + hb, .ws = p->ws_p};
      KN_ASSERT(!kn_rnn_forward(m->pool, &p->pr, &sq));
      memcpy(p->hc, p->hn, sizeof(float) * 2 * hb);
      split_heads(kn_stack_forward(&p->pz, p->s, b, 0), p->mp, p->lp, (size_t)b, Z);
      for (int j = 0; j < b; j++)
        for (int k = 0; k < Z; k++) {
          size_t q = (size_t)j * Z + k;
          float v = p->mp[q];
          if (sample) v += expf(0.5f * p->lp[q]) * (float)kn_rng_normal(&r);
          p->pin[q] = v;
          z[(((size_t)i + j) * T + t) * Z + k] = v;
        }
    }
  }
  return KNOBS_OK;
}

/* Decode static codes f (n,Fd) with the prior's mean path for z_1:T. */
static knobs_status ds_decode(knobs_model *m, const float *f, int n, float *x) {
  ds_impl *p = m->impl;
  size_t per = (size_t)p->T * p->Z;
  float *z = kn_alloc(sizeof(float) * per * (size_t)(n > 0 ? n : 1), "dsvae decode codes");
  if (!z) return KNOBS_ERR_NOMEM;
  knobs_status s = knobs_dsvae_prior(m, n, 0, 0, z);
  if (!s) s = knobs_dsvae_decode(m, f, z, n, x);
  kn_free(z);
  return s;
}

const kn_model_ops kn_model_dsvae = {
    .name = "dsvae",
    .describe = "disentangled sequential VAE (Li & Mandt 2018): a static code f per sequence, a code z_t per "
                "frame with a learned LSTM prior; for sequence data",
    .loss = "recon + beta_f KL(q(f) || N(0,I)) + beta_z sum_t KL(q(z_t) || p(z_t | z_<t))",
    .settings = &ds_set,
    .build = ds_build,
    .ready = ds_ready,
    .step = ds_step,
    .encode = ds_encode,
    .decode = ds_decode,
    .code_dim = ds_code_dim,
    .free_impl = ds_free,
};
