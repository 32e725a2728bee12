/* ivae.c: iVAE (Khemakhem, Kingma, Monti & Hyvarinen 2020, "Variational Autoencoders and
 * Nonlinear ICA: A Unifying Framework"): a VAE whose prior is conditioned on an observed
 * auxiliary variable u (a segment, an experiment, a time window), the factor of the data named
 * by aux_factor (u in 0 .. aux_classes-1):
 *   p(z|u) = N(m(u), diag(exp(l(u)))),   [m(u), l(u)] = a linear map of one-hot(u)
 *   loss   = recon + beta KL(q(z|x) || p(z|u))   (batch means of per-example sums; beta = 1
 *            is -ELBO with knobs' Gaussian recon, sum (x - mean)^2, a decoder variance of 1/2;
 *            beta = 2 s^2 is the ELBO of a decoder of variance s^2, up to a factor)
 * The prior is a lookup table per class (a linear layer on one-hot u, "prior.mu" and
 * "prior.logvar", bias included as nn.Linear; zero at the start: p(z|u) = N(0, I)); with
 * prior_mean 0 only the log-variances are learned and m(u) = 0, as the authors' code does.
 * A lookup is the most general function of a discrete u, so a deeper prior network would add
 * parameters, not expressiveness.
 * The encoder is the VAE's q(z|x) on x alone (the paper conditions it on u too; here it is not,
 * so that encoding, metrics, traversals and the panel, which have no u, work on ivae as on
 * every VAE: the identifiability result is about the generative model p(x|z) p(z|u), the
 * encoder only approximates its posterior). The KL of knobs_model_evaluate and of the tools
 * built on it is still to N(0, I), since they have no u. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/families.h"

typedef struct {
  double beta;         /* weight of the KL (1: the ELBO) */
  char aux_factor[32]; /* the data's factor that is u */
  int aux_classes;     /* its classes (0: from the data) */
  int prior_mean;      /* 1: learn m(u); 0: m(u) = 0 (variance modulation only) */
} iv_settings;

#define IV "ivae"
static const kn_field iv_fields[] = {
    KN_FIELD(iv_settings, "beta", KNOBS_FIELD_DOUBLE, beta, 0, 1e6, IV,
             "weight of the KL (1: the ELBO; 2 s^2 is the ELBO of a decoder of variance s^2)"),
    KN_FIELD(iv_settings, "aux_factor", KNOBS_FIELD_STR, aux_factor, 0, 0, IV,
             "the data's factor that is the auxiliary variable u of the prior p(z|u)"),
    KN_FIELD(iv_settings, "aux_classes", KNOBS_FIELD_INT, aux_classes, 0, 65536, IV,
             "classes of u (0: the aux factor's size in the data)"),
    KN_FIELD(iv_settings, "prior_mean", KNOBS_FIELD_INT, prior_mean, 0, 1, IV,
             "1: the prior's mean depends on u (learned); 0: mean 0, only its variance does"),
};

/* "segment": physics:nonlinear's u; the prior's mean learned, as the p(z|u). */
static void iv_defaults(void *p, const char *model) {
  iv_settings *s = p;
  s->beta = 1;
  strcpy(s->aux_factor, "segment");
  s->aux_classes = 0, s->prior_mean = 1;
}

static knobs_status iv_validate(const knobs_config *c, const void *p) {
  const iv_settings *s = p;
  if (!s->aux_factor[0]) return kn_err(KNOBS_ERR_ARG, "ivae: aux_factor names no factor (the auxiliary variable u)");
  return KNOBS_OK;
}

/* The index of the aux factor in the data to *k; KNOBS_ERR_ARG naming the data's factors if it
 * has none of that name, or naming both sizes if its classes are not `classes` (0: any). */
static knobs_status aux_index(const iv_settings *s, int classes, const knobs_data_info *in, int *k) {
  *k = -1;
  for (int j = 0; j < in->K; j++)
    if (!strcmp(in->factor_names[j], s->aux_factor)) *k = j;
  if (*k < 0) {
    char names[KNOBS_MAX_FACTORS * 34] = "";
    size_t n = 0;
    for (int j = 0; j < in->K; j++) n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", j ? ", " : "", in->factor_names[j]);
    return kn_err(KNOBS_ERR_ARG, "ivae: %s has no factor '%s' to be the auxiliary variable u (aux_factor); its factors: %s",
                  in->name, s->aux_factor, in->K ? names : "none");
  }
  if (classes && in->factor_sizes[*k] != classes)
    return kn_err(KNOBS_ERR_ARG, "ivae: factor '%s' of %s has %d classes, the model has aux_classes %d", s->aux_factor,
                  in->name, in->factor_sizes[*k], classes);
  return KNOBS_OK;
}

/* The data must have the aux factor, with aux_classes classes (taken from it when 0). */
static knobs_status iv_from_data(knobs_config *c, const knobs_data_info *in) {
  iv_settings *s = KN_SETTINGS(c, iv_settings);
  int k;
  knobs_status st = aux_index(s, s->aux_classes, in, &k);
  if (!st && !s->aux_classes) s->aux_classes = in->factor_sizes[k];
  return st;
}

static const kn_settings iv_set = {iv_fields, 4, sizeof(iv_settings), iv_defaults, iv_validate};

double kn_gauss_kl_prior(const kn_kl_pair *k, double *kl_dim, int B, int Z, float scale) {
  double sum = 0;
  if (kl_dim) memset(kl_dim, 0, sizeof(double) * (size_t)Z);
  double c = (double)scale / B;
  for (int b = 0; b < B; b++)
    for (int d = 0; d < Z; d++) {
      size_t i = (size_t)b * Z + d;
      double mu = k->mu[i], lv = k->lv[i], pm = k->pm ? k->pm[i] : 0, plv = k->plv[i];
      /* exp(-plv) and exp(lv - plv) in double: a prior variance far below the posterior's
       * overflows float long before double */
      double ip = exp(-plv), diff = mu - pm, r = exp(lv - plv);
      double v = 0.5 * (plv - lv + r + diff * diff * ip - 1);
      sum += v;
      if (kl_dim) kl_dim[d] += v / B;
      if (k->dmu) k->dmu[i] += (float)(c * diff * ip);
      if (k->dpm) k->dpm[i] -= (float)(c * diff * ip);
      if (k->dlv) k->dlv[i] += (float)(c * 0.5 * (r - 1));
      if (k->dplv) k->dplv[i] += (float)(c * 0.5 * (1 - r - diff * diff * ip));
    }
  return sum / B;
}

/* ---- the model ------------------------------------------------------------------------------- */

typedef struct {
  kn_stack prior;        /* one-hot u (aux_classes) -> [m(u)], l(u) */
  int heads;             /* 2 with the mean, 1 without */
  float *onehot;         /* (cap, aux_classes) */
  float *pm, *plv;       /* (cap,Z) the prior of each example */
  float *dpm, *dplv;     /* (cap,Z) their gradients */
  int32_t *u;            /* (cap) the batch's classes */
  const int32_t *test_u; /* test seam: the classes of step t are test_u + (t % test_nu) B */
  int test_nu;
} iv_impl;

void kn_ivae_test_aux(knobs_model *m, const int32_t *u, int n) {
  iv_impl *p = m->impl;
  p->test_u = u;
  p->test_nu = n;
}

/* aux_classes 0 (the default: "from the data") is a valid config, but no model can be built
 * before the data has said how many classes u has. */
static knobs_status iv_build(knobs_model *m) {
  const iv_settings *s = KN_CSETTINGS(&m->cfg, iv_settings);
  if (s->aux_classes < 1)
    return kn_err(KNOBS_ERR_ARG, "ivae: the number of classes of u is not known: take it from the data "
                  "(knobs_config_from_data) or set aux_classes to the classes of factor '%s'", s->aux_factor);
  kn_vae_declare(m, 0);
  iv_impl *p = kn_alloc(sizeof *p, "ivae state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  static const char *const both[2] = {"mu", "logvar"}, *const lv_only[1] = {"logvar"};
  p->heads = s->prior_mean ? 2 : 1;
  kn_stack_begin(&p->prior, &m->net, "prior", s->aux_classes, 1, 1, 0);
  kn_stack_linear_heads(&p->prior, m->Z, p->heads, s->prior_mean ? both : lv_only, 0);
  kn_model_add_stack(m, &p->prior, 0);
  return KNOBS_OK;
}

static knobs_status iv_ready(knobs_model *m) {
  iv_impl *p = m->impl;
  const iv_settings *s = KN_CSETTINGS(&m->cfg, iv_settings);
  size_t n = (size_t)m->cap * m->Z;
  p->onehot = kn_alloc(sizeof(float) * ((size_t)m->cap * s->aux_classes + 4 * n), "ivae prior buffers");
  p->u = kn_alloc(sizeof(int32_t) * (size_t)m->cap, "ivae classes");
  if (!p->onehot || !p->u) return KNOBS_ERR_NOMEM;
  p->pm = p->onehot + (size_t)m->cap * s->aux_classes;
  p->plv = p->pm + n, p->dpm = p->plv + n, p->dplv = p->dpm + n;
  /* the prior starts as N(0, I) for every class */
  for (int i = 0; i < m->net.np; i++)
    if (!strncmp(m->net.P[i].name, "prior.", 6)) memset(kn_param_ptr(&m->net, i), 0, sizeof(float) * m->net.P[i].n);
  return KNOBS_OK;
}

static void iv_free(knobs_model *m) {
  iv_impl *p = m->impl;
  if (!p) return;
  kn_free(p->onehot), kn_free(p->u), kn_free(p);
  m->impl = NULL;
}

/* The classes u of the step's batch: from the test seam, or the aux factor of m->fac. */
static knobs_status batch_classes(knobs_model *m, knobs_data *d) {
  iv_impl *p = m->impl;
  const iv_settings *s = KN_CSETTINGS(&m->cfg, iv_settings);
  int B = m->B;
  if (p->test_u) {
    memcpy(p->u, p->test_u + (size_t)(m->step % p->test_nu) * B, sizeof(int32_t) * (size_t)B);
  } else {
    if (!d) return kn_err(KNOBS_ERR_ARG, "ivae: no dataset (its factor '%s' is u)", s->aux_factor);
    const knobs_data_info *in = knobs_data_info_get(d);
    int k;
    knobs_status st = aux_index(s, s->aux_classes, in, &k);
    if (st) return st;
    for (int b = 0; b < B; b++) p->u[b] = m->fac[(size_t)b * in->K + k];
  }
  for (int b = 0; b < B; b++)
    if (p->u[b] < 0 || p->u[b] >= s->aux_classes)
      return kn_err(KNOBS_ERR_DATA, "ivae: class %d of u is outside 0..%d", p->u[b], s->aux_classes - 1);
  return KNOBS_OK;
}

static knobs_status iv_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  iv_impl *p = m->impl;
  const iv_settings *s = KN_CSETTINGS(&m->cfg, iv_settings);
  knobs_status st = batch_classes(m, d);
  if (st) return st;
  int B = m->B, Z = m->Z, M = s->aux_classes, H = p->heads;
  size_t n = (size_t)B * Z;
  memset(p->onehot, 0, sizeof(float) * (size_t)B * M);
  for (int b = 0; b < B; b++) p->onehot[(size_t)b * M + p->u[b]] = 1;
  const float *h = kn_stack_forward(&p->prior, p->onehot, B, 0); /* (B, H Z): [m(u)], l(u) */
  for (int b = 0; b < B; b++) {
    const float *r = h + (size_t)b * H * Z;
    memcpy(p->plv + (size_t)b * Z, r + (size_t)(H - 1) * Z, sizeof(float) * (size_t)Z);
    if (H == 2) memcpy(p->pm + (size_t)b * Z, r, sizeof(float) * (size_t)Z);
  }
  double recon;
  if ((st = kn_vae_forward(m, &recon))) return st;
  memset(p->dpm, 0, sizeof(float) * 2 * n);
  kn_kl_pair k = {m->mu, m->lv, H == 2 ? p->pm : NULL, p->plv, m->dmu, m->dlv, H == 2 ? p->dpm : NULL, p->dplv};
  double kl = kn_gauss_kl_prior(&k, m->kl_dim, B, Z, (float)s->beta);
  float *dh = kn_stack_dout(&p->prior);
  for (int b = 0; b < B; b++) {
    float *r = dh + (size_t)b * H * Z;
    memcpy(r + (size_t)(H - 1) * Z, p->dplv + (size_t)b * Z, sizeof(float) * (size_t)Z);
    if (H == 2) memcpy(r, p->dpm + (size_t)b * Z, sizeof(float) * (size_t)Z);
  }
  kn_stack_backward(&p->prior, B);
  kn_vae_backward(m, B);
  kn_model_opt_step(m, 0);
  kn_terms_add(t, "loss", recon + s->beta * kl);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

const kn_model_ops kn_model_ivae = {
    .name = "ivae",
    .describe = "iVAE (Khemakhem et al. 2020): a VAE with a prior p(z|u) learned per class of an observed factor u "
                "(aux_factor); identifiable nonlinear ICA",
    .loss = "recon + beta * KL(q(z|x) || p(z|u)), p(z|u) = N(m(u), diag(exp(l(u)))) learned per class of u",
    .settings = &iv_set,
    .config_from_data = iv_from_data,
    .build = iv_build,
    .ready = iv_ready,
    .step = iv_step,
    .free_impl = iv_free,
};
