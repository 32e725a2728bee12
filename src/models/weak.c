/* weak.c: weakly supervised VAEs on pairs of observations that share all but k factors
 * (Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises"), with the
 * losses of disentanglement_lib (methods/weak/weak_vae.py):
 *   gvae, mlvae        the latent dimensions that differ within a pair are known: dimension j
 *                      for the j-th varying factor (the label of which factors changed, never
 *                      the factors' values); needs latents >= varying factors
 *   adagvae, adamlvae  estimated per pair: with delta_d = 2 KL(q1_d || q2_d)
 *                      = v1/v2 + (mu2 - mu1)^2 / v2 - 1 + log v2 - log v1, the dimensions with
 *                      delta_d >= (min delta + max delta) / 2 differ (two equal-width bins, as
 *                      tf.histogram_fixed_width_bins; all shared if every delta is equal)
 * Shared dimensions get one posterior for both observations: gvae/adagvae the average
 * (mean (mu1 + mu2) / 2, variance (v1 + v2) / 2); mlvae/adamlvae the product of experts'
 * mean (mu1 / v1 + mu2 / v2) / (1 / v1 + 1 / v2) with variance 2 v1 v2 / (v1 + v2), as
 * disentanglement_lib's MLVae (twice the product's variance). The other dimensions keep their
 * own posterior. Loss = (recon1 + recon2) / 2 + beta (KL1 + KL2) / 2 over the aggregated
 * posteriors; the choice of dimensions carries no gradient.
 * Pairs are drawn with the rng of (seed, step): factors from the dataset's generative process,
 * then k distinct varying factors (k = --k, or uniform in 1..K-1 per pair with --k 0) moved to
 * another value drawn uniformly among the other values, and both rendered. Unlike the
 * reference, which may redraw the old value, exactly k factors differ. */
#include <math.h>
#include <string.h>

#include "models/families.h"

typedef struct {
  double beta; /* weight of the KL */
  int k;       /* factors that differ within a pair (0: random in 1..K-1 per pair) */
} weak_settings;

#define WEAKS "gvae,mlvae,adagvae,adamlvae"
static const kn_field weak_fields[] = {
    KN_FIELD(weak_settings, "beta", KNOBS_FIELD_DOUBLE, beta, 0, 1e6, WEAKS, "weight of the KL term"),
    KN_FIELD(weak_settings, "k", KNOBS_FIELD_INT, k, 0, KNOBS_MAX_FACTORS - 1, WEAKS,
             "factors that differ within a pair (0: random in 1..K-1 per pair)"),
};

/* Locatello et al. 2020: k = 1; beta 4 as the beta-VAE default (their sweep: 1, 2, 4, 6, 8, 16) */
static void weak_defaults(void *p, const char *model) {
  weak_settings *s = p;
  s->beta = 4, s->k = 1;
}

static const kn_settings weak_set = {weak_fields, 2, sizeof(weak_settings), weak_defaults, NULL};
#define SET(m) KN_CSETTINGS(&(m)->cfg, weak_settings)

typedef struct {
  int ml, adaptive;
  float *mu, *lv, *dmu, *dlv; /* (cap,Z) the encoder's own posteriors and their gradients */
  uint8_t *changed;           /* (B,Z) 1 = the dimension differs within the pair */
  const uint8_t *test_mask;
  int test_nmask;
} weak_impl;

void kn_weak_test_mask(knobs_model *m, const uint8_t *mask, int n) {
  weak_impl *p = m->impl;
  p->test_mask = mask;
  p->test_nmask = n;
}

static knobs_status weak_build(knobs_model *m, int ml, int adaptive) {
  m->cap = 2 * m->B;
  kn_vae_declare(m, 0);
  weak_impl *p = kn_alloc(sizeof *p, "weak state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  p->ml = ml, p->adaptive = adaptive;
  return KNOBS_OK;
}
static knobs_status gvae_build(knobs_model *m) { return weak_build(m, 0, 0); }
static knobs_status mlvae_build(knobs_model *m) { return weak_build(m, 1, 0); }
static knobs_status adagvae_build(knobs_model *m) { return weak_build(m, 0, 1); }
static knobs_status adamlvae_build(knobs_model *m) { return weak_build(m, 1, 1); }

static knobs_status weak_ready(knobs_model *m) {
  weak_impl *p = m->impl;
  size_t n = (size_t)m->cap * m->Z;
  p->mu = kn_alloc(sizeof(float) * 4 * n, "weak posteriors");
  p->changed = kn_alloc((size_t)m->B * m->Z, "weak mask");
  if (!p->mu || !p->changed) return KNOBS_ERR_NOMEM;
  p->lv = p->mu + n, p->dmu = p->lv + n, p->dlv = p->dmu + n;
  return KNOBS_OK;
}

static void weak_free(knobs_model *m) {
  weak_impl *p = m->impl;
  if (!p) return;
  kn_free(p->mu), kn_free(p->changed), kn_free(p);
  m->impl = NULL;
}

/* B pairs into m->x (first observations, then second ones) and, for the label variants, the
 * latent dimensions of the changed factors into p->changed. */
static knobs_status draw_pairs(knobs_model *m, knobs_data *d) {
  weak_impl *p = m->impl;
  int B = m->B, Z = m->Z;
  if (m->test_x) {
    memcpy(m->x, m->test_x + (size_t)(m->step % m->test_nx) * 2 * B * m->D, sizeof(float) * 2 * B * m->D);
    if (!p->adaptive) {
      if (!p->test_mask) return kn_err(KNOBS_ERR_ARG, "%s: test batch without a test mask", m->cfg.model);
      memcpy(p->changed, p->test_mask + (size_t)(m->step % p->test_nmask) * B * Z, (size_t)B * Z);
    }
    return KNOBS_OK;
  }
  if (!d) return kn_err(KNOBS_ERR_ARG, "%s: no dataset", m->cfg.model);
  knobs_status cs = kn_model_check_shape(m, d);
  if (cs) return cs;
  const knobs_data_info *in = knobs_data_info_get(d);
  int K = in->K, var[KNOBS_MAX_FACTORS], Kv = 0;
  for (int k = 0; k < K; k++)
    if (in->factor_sizes[k] > 1) var[Kv++] = k;
  if (Kv < 2 || !(d->ops->render || d->grid))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: weak supervision needs ground-truth data that renders factor vectors "
                  "with at least 2 varying factors (%s has %d)", m->cfg.model, in->name, Kv);
  if (SET(m)->k > Kv - 1)
    return kn_err(KNOBS_ERR_ARG, "%s: k = %d, but %s has %d varying factors (k must be at most %d, or 0 for random)",
                  m->cfg.model, SET(m)->k, in->name, Kv, Kv - 1);
  if (!p->adaptive && Z < Kv)
    return kn_err(KNOBS_ERR_ARG, "%s: %d latents cannot hold the %d varying factors of %s (use at least %d latents or "
                  "the adaptive %s)", m->cfg.model, Z, Kv, in->name, Kv, p->ml ? "adamlvae" : "adagvae");
  kn_rng r;
  kn_model_rng(m, KN_STREAM_DATA, 0, &r);
  int32_t *f1 = m->fac, *f2 = m->fac + (size_t)B * K;
  kn_data_sample_factors(d, &r, B, f1);
  memset(p->changed, 0, (size_t)B * Z);
  for (int b = 0; b < B; b++) {
    int32_t *a = f1 + (size_t)b * K, *c = f2 + (size_t)b * K;
    memcpy(c, a, sizeof(int32_t) * (size_t)K);
    int k = SET(m)->k ? SET(m)->k : 1 + (int)kn_rng_below(&r, (uint32_t)(Kv - 1));
    int order[KNOBS_MAX_FACTORS];
    for (int i = 0; i < Kv; i++) order[i] = i;
    for (int i = 0; i < k; i++) { /* partial Fisher-Yates: k distinct varying factors */
      int j = i + (int)kn_rng_below(&r, (uint32_t)(Kv - i));
      int tmp = order[i];
      order[i] = order[j], order[j] = tmp;
      int f = var[order[i]], size = in->factor_sizes[f];
      c[f] = (a[f] + 1 + (int32_t)kn_rng_below(&r, (uint32_t)(size - 1))) % size;
      if (!p->adaptive) p->changed[(size_t)b * Z + order[i]] = 1;
    }
  }
  return knobs_data_render(d, m->fac, 2 * B, m->x);
}

/* sigmoid(x) = 1 / (1 + exp(-x)) without overflow */
static double sig(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

/* m->mu/m->lv (the encoder's output for 2B) -> p->mu/p->lv; the aggregated posteriors -> m->mu/lv */
static int aggregate(knobs_model *m) {
  weak_impl *p = m->impl;
  int B = m->B, Z = m->Z, shared = 0;
  size_t n = (size_t)2 * B * Z;
  memcpy(p->mu, m->mu, sizeof(float) * n);
  memcpy(p->lv, m->lv, sizeof(float) * n);
  for (int b = 0; b < B; b++) {
    const float *mu1 = p->mu + (size_t)b * Z, *mu2 = p->mu + (size_t)(B + b) * Z;
    const float *lv1 = p->lv + (size_t)b * Z, *lv2 = p->lv + (size_t)(B + b) * Z;
    uint8_t *ch = p->changed + (size_t)b * Z;
    if (p->adaptive) {
      double delta[1024], lo = INFINITY, hi = -INFINITY;
      for (int k = 0; k < Z; k++) {
        double dl = (double)lv2[k] - lv1[k], dm = (double)mu2[k] - mu1[k];
        delta[k] = exp(-dl) + dm * dm * exp(-(double)lv2[k]) - 1 + dl;
        lo = fmin(lo, delta[k]), hi = fmax(hi, delta[k]);
      }
      double mid = lo + 0.5 * (hi - lo);
      for (int k = 0; k < Z; k++) ch[k] = hi > lo && delta[k] >= mid;
    }
    float *am1 = m->mu + (size_t)b * Z, *am2 = m->mu + (size_t)(B + b) * Z;
    float *al1 = m->lv + (size_t)b * Z, *al2 = m->lv + (size_t)(B + b) * Z;
    for (int k = 0; k < Z; k++) {
      if (ch[k]) continue; /* own posteriors, already in place */
      shared++;
      double a = lv1[k], c = lv2[k], w2 = sig(a - c), w1 = 1 - w2; /* w1 = v2 / (v1 + v2) */
      double lse = fmax(a, c) + log1p(exp(-fabs(a - c)));             /* log(v1 + v2) */
      double mu, lv;
      if (p->ml) mu = w1 * mu1[k] + w2 * mu2[k], lv = log(2.0) + a + c - lse;
      else mu = 0.5 * ((double)mu1[k] + mu2[k]), lv = lse - log(2.0);
      am1[k] = am2[k] = (float)mu;
      al1[k] = al2[k] = (float)lv;
    }
  }
  return shared;
}

/* Gradients w.r.t. the aggregated posteriors (m->dmu/dlv) -> the encoder's (p->dmu/dlv). */
static void aggregate_backward(knobs_model *m) {
  weak_impl *p = m->impl;
  int B = m->B, Z = m->Z;
  size_t n = (size_t)2 * B * Z;
  memset(p->dmu, 0, sizeof(float) * 2 * n);
  for (int b = 0; b < B; b++) {
    size_t i1 = (size_t)b * Z, i2 = (size_t)(B + b) * Z;
    for (int k = 0; k < Z; k++) {
      size_t j1 = i1 + k, j2 = i2 + k;
      if (p->changed[(size_t)b * Z + k]) {
        p->dmu[j1] += m->dmu[j1], p->dlv[j1] += m->dlv[j1];
        p->dmu[j2] += m->dmu[j2], p->dlv[j2] += m->dlv[j2];
        continue;
      }
      double gm = (double)m->dmu[j1] + m->dmu[j2], gl = (double)m->dlv[j1] + m->dlv[j2];
      double a = p->lv[j1], c = p->lv[j2], w2 = sig(a - c), w1 = 1 - w2;
      if (p->ml) { /* mu = w1 mu1 + w2 mu2, lv = log 2 + a + c - log(e^a + e^c) */
        double dmu_da = w1 * w2 * ((double)p->mu[j2] - p->mu[j1]);
        p->dmu[j1] += (float)(gm * w1), p->dmu[j2] += (float)(gm * w2);
        p->dlv[j1] += (float)(gm * dmu_da + gl * w1), p->dlv[j2] += (float)(-gm * dmu_da + gl * w2);
      } else { /* mu = (mu1 + mu2) / 2, lv = log((e^a + e^c) / 2) */
        p->dmu[j1] += (float)(0.5 * gm), p->dmu[j2] += (float)(0.5 * gm);
        p->dlv[j1] += (float)(gl * w2), p->dlv[j2] += (float)(gl * w1);
      }
    }
  }
}

static knobs_status weak_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  weak_impl *p = m->impl;
  int B2 = 2 * m->B, Z = m->Z;
  knobs_status s = draw_pairs(m, d);
  if (s) return s;
  kn_vae_encode_batch(m, m->x, B2);
  int shared = aggregate(m);
  kn_rng r;
  kn_model_rng(m, KN_STREAM_NOISE, 0, &r);
  kn_vae_sample(m, B2, &r);
  double recon = kn_vae_decode_loss(m, m->x, B2, 1.0f, 1);
  double beta = SET(m)->beta;
  double kl = kn_gauss_kl(m->dmu, m->dlv, m->kl_dim, m->mu, m->lv, B2, Z, (float)beta);
  /* kn_vae_backward with the aggregation between the reparameterization and the encoder */
  kn_stack_backward(&m->dec, B2);
  kn_reparam_backward(m->dmu, m->dlv, m->dec.dx_in, m->lv, m->eps, (size_t)B2 * Z);
  aggregate_backward(m);
  float *dh = kn_stack_dout(&m->enc);
  for (int b = 0; b < B2; b++)
    for (int k = 0; k < Z; k++) {
      dh[(size_t)b * 2 * Z + k] += p->dmu[(size_t)b * Z + k];
      dh[(size_t)b * 2 * Z + Z + k] += p->dlv[(size_t)b * Z + k];
    }
  kn_stack_backward(&m->enc, B2);
  kn_model_opt_step(m, 0);
  kn_terms_add(t, "loss", recon + beta * kl);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "shared", (double)shared / m->B);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

#define WEAK(var, model, build_fn, text)                                                   \
  const kn_model_ops var = {                                                                  \
      .name = model,                                                                          \
      .describe = text,                                                                       \
      .loss = "(recon1 + recon2) / 2 + beta * (KL1 + KL2) / 2 over the pair's aggregated posteriors", \
      .settings = &weak_set,                                                                  \
      .own_batch = 1,                                                                         \
      .build = build_fn,                                                                      \
      .ready = weak_ready,                                                                    \
      .step = weak_step,                                                                      \
      .free_impl = weak_free,                                                                 \
  }
WEAK(kn_model_gvae, "gvae", gvae_build,
     "Group-VAE on pairs sharing all but k factors, told which factors changed (Locatello et al. 2020)");
WEAK(kn_model_mlvae, "mlvae", mlvae_build,
     "ML-VAE on pairs sharing all but k factors, told which factors changed (Locatello et al. 2020)");
WEAK(kn_model_adagvae, "adagvae", adagvae_build,
     "Ada-GVAE: pairs sharing all but k factors, shared latents found per pair (Locatello et al. 2020)");
WEAK(kn_model_adamlvae, "adamlvae", adamlvae_build,
     "Ada-ML-VAE: pairs sharing all but k factors, shared latents found per pair (Locatello et al. 2020)");
