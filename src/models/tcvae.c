/* tcvae.c: beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"):
 *   loss = recon + alpha MI + beta TC + gamma DW
 * with the three terms of E[log q(z|x) - log p(z)] (index-code mutual information, total
 * correlation, dimension-wise KL) estimated on the batch by minibatch stratified (mss, the
 * default) or weighted (mws) sampling, with N the dataset's size (knobs_data_info.n) kept in
 * the formulas: the reported TC is an estimate of the aggregate posterior's total correlation,
 * not a value shifted by dropped constants. alpha = gamma = 1 is Chen et al.'s beta-TCVAE.
 * The KL reported beside them is the analytic one (for comparison with the other VAEs); the
 * loss uses the sampled decomposition, as Chen et al.'s code does. */
#include <math.h>
#include <string.h>

#include "models/families.h"

#define LOG2PI 1.8378770664093453

typedef struct {
  double alpha, beta, gamma; /* weights of MI, TC and the dimension-wise KL */
  char estimator[8];         /* log q(z) estimator: mss | mws */
} tc_settings;

static const kn_field tc_fields[] = {
    KN_FIELD(tc_settings, "tcvae_alpha", KNOBS_FIELD_DOUBLE, alpha, 0, 1e6, "tcvae", "alpha: weight of the index-code mutual information"),
    KN_FIELD(tc_settings, "tcvae_beta", KNOBS_FIELD_DOUBLE, beta, 0, 1e6, "tcvae", "beta: weight of the total correlation"),
    KN_FIELD(tc_settings, "tcvae_gamma", KNOBS_FIELD_DOUBLE, gamma, 0, 1e6, "tcvae", "gamma: weight of the dimension-wise KL"),
    KN_FIELD(tc_settings, "estimator", KNOBS_FIELD_STR, estimator, 0, 0, "tcvae", "log q(z) estimator: mws (weighted) | mss (stratified)"),
};

/* Chen et al. 2018: alpha = gamma = 1, beta the TC weight; mws is their code's default, and mss
 * is exploited at small batches (docs/models.md). */
static void tc_defaults(void *p, const char *model) {
  tc_settings *s = p;
  s->alpha = 1, s->beta = 6, s->gamma = 1;
  strcpy(s->estimator, "mws");
}

static knobs_status tc_validate(const knobs_config *c, const void *p) {
  const tc_settings *s = p;
  if (strcmp(s->estimator, "mss") && strcmp(s->estimator, "mws"))
    return kn_err(KNOBS_ERR_ARG, "unknown estimator '%s' (mss or mws)", s->estimator);
  if (c->batch < 2) return kn_err(KNOBS_ERR_ARG, "tcvae needs a batch of at least 2 (it estimates batch statistics)");
  return KNOBS_OK;
}

static const kn_settings tc_set = {tc_fields, 4, sizeof(tc_settings), tc_defaults, tc_validate};

size_t kn_tc_scratch(int M, int Z) { return 6 * (size_t)M * Z + 3 * (size_t)M + 3 * (size_t)Z; }

void kn_tc_estimate(const float *z, const float *mu, const float *lv, int M, int Z, double N, int mss,
                    double a, double b, double g, float scale, float *dz, float *dmu, float *dlv,
                    double *scratch, kn_tc_terms *out) {
  KN_ASSERT(M >= 1 && Z >= 1 && N >= M && (!mss || M >= 2));
  size_t MZ = (size_t)M * Z;
  double *e = scratch, *t = e + MZ;       /* log q(z_id|x_j), then exp(w_j + it - max_d); (z_id - mu_jd)/var */
  double *amu = t + MZ, *alv = amu + MZ;  /* gradient accumulators (M,Z) */
  double *iv = alv + MZ, *lc = iv + MZ;   /* 1/var, log var + log 2 pi (M,Z) */
  double *L = lc + MZ, *w = L + M, *P = w + M; /* log q(z_i|x_j), log weights, softmax over j (M) */
  double *lsed = P + M, *mxd = lsed + Z, *az = mxd + Z; /* per dimension: logsumexp, max, dz of row i */
  int grad = dz || dmu || dlv;
  if (grad) memset(amu, 0, sizeof(double) * 2 * MZ);
  for (size_t k = 0; k < MZ; k++) iv[k] = exp(-(double)lv[k]), lc[k] = (double)lv[k] + LOG2PI;
  /* log weights; the stratified entry is -inf when N == M - 1 (excluded by the assert) */
  double w_mws = -(log(N) + log((double)M)), w_own = -log(N), w_rest = mss ? -log((double)(M - 1)) : 0;
  double w_strat = mss ? log((N - (M - 1)) / (N * (M - 1))) : 0;
  /* the gradient of the mean over i of
   *   ca log q(z_i|x_i) + cb log q(z_i) + cc sum_d log q(z_id) - cg log p(z_i) */
  double ca = scale * a / M, cb = scale * (b - a) / M, cc = scale * (g - b) / M, cg = scale * g / M;
  double s_qzx = 0, s_qz = 0, s_prod = 0, s_pz = 0;
  for (int i = 0; i < M; i++) {
    const float *zi = z + (size_t)i * Z;
    double mx = -INFINITY;
    for (int d = 0; d < Z; d++) mxd[d] = -INFINITY;
    for (int j = 0; j < M; j++) {
      w[j] = !mss ? w_mws : j == i ? w_own : j == (i + 1) % M ? w_strat : w_rest;
      double Lj = 0;
      for (int d = 0; d < Z; d++) {
        size_t k = (size_t)j * Z + d;
        double diff = (double)zi[d] - mu[k];
        t[k] = diff * iv[k];
        e[k] = -0.5 * (diff * t[k] + lc[k]);
        Lj += e[k];
        if (w[j] + e[k] > mxd[d]) mxd[d] = w[j] + e[k];
      }
      L[j] = Lj;
      if (w[j] + Lj > mx) mx = w[j] + Lj;
    }
    /* logsumexp over j: the joint, then each dimension (exp of non-positive numbers only) */
    double sum = 0;
    for (int j = 0; j < M; j++) sum += (P[j] = exp(w[j] + L[j] - mx));
    double lq = mx + log(sum), lprod = 0, lpz = 0;
    for (int j = 0; j < M; j++) P[j] /= sum;
    s_qzx += L[i];
    for (int d = 0; d < Z; d++) az[d] = 0;
    for (int j = 0; j < M; j++)
      for (int d = 0; d < Z; d++) {
        size_t k = (size_t)j * Z + d;
        e[k] = exp(w[j] + e[k] - mxd[d]);
        az[d] += e[k];
      }
    for (int d = 0; d < Z; d++) {
      lsed[d] = mxd[d] + log(az[d]);
      lprod += lsed[d];
      lpz += -0.5 * ((double)zi[d] * zi[d] + LOG2PI);
      az[d] = 1.0 / az[d]; /* normaliser of the dimension's softmax */
    }
    s_qz += lq, s_prod += lprod, s_pz += lpz;
    if (!grad) continue;
    double zs[1024];
    for (int d = 0; d < Z; d++) zs[d] = cg * zi[d];
    for (int j = 0; j < M; j++)
      for (int d = 0; d < Z; d++) {
        size_t k = (size_t)j * Z + d;
        double G = cb * P[j] + cc * e[k] * az[d] + (j == i ? ca : 0.0);
        /* d log q(z_id|x_j): dz -(z - mu)/var, dmu +(z - mu)/var, dlv ((z - mu)^2/var - 1)/2 */
        double diff = (double)zi[d] - mu[k];
        zs[d] -= G * t[k];
        amu[k] += G * t[k];
        alv[k] += G * 0.5 * (diff * t[k] - 1.0);
      }
    if (dz)
      for (int d = 0; d < Z; d++) dz[(size_t)i * Z + d] += (float)zs[d];
  }
  if (grad)
    for (size_t k = 0; k < MZ; k++) {
      if (dmu) dmu[k] += (float)amu[k];
      if (dlv) dlv[k] += (float)alv[k];
    }
  kn_tc_terms o;
  o.logqzx = s_qzx / M, o.logqz = s_qz / M, o.logprod = s_prod / M, o.logpz = s_pz / M;
  o.mi = o.logqzx - o.logqz;
  o.tc = o.logqz - o.logprod;
  o.dw = o.logprod - o.logpz;
  *out = o;
}

/* ---- the model ------------------------------------------------------------------------------- */

typedef struct {
  double *scratch;
  float *dz; /* (cap,Z) gradient of the regulariser w.r.t. the sample */
} tc_impl;

static knobs_status tc_build(knobs_model *m) {
  kn_vae_declare(m, 0);
  return KNOBS_OK;
}

static knobs_status tc_ready(knobs_model *m) {
  tc_impl *p = kn_alloc(sizeof *p, "tcvae state");
  if (!p) return KNOBS_ERR_NOMEM;
  m->impl = p;
  p->scratch = kn_alloc(sizeof(double) * kn_tc_scratch(m->cap, m->Z), "tcvae scratch");
  p->dz = kn_alloc(sizeof(float) * (size_t)m->cap * m->Z, "tcvae gradient");
  return p->scratch && p->dz ? KNOBS_OK : KNOBS_ERR_NOMEM;
}

static void tc_free(knobs_model *m) {
  tc_impl *p = m->impl;
  if (!p) return;
  kn_free(p->scratch), kn_free(p->dz), kn_free(p);
  m->impl = NULL;
}

static knobs_status tc_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  tc_impl *p = m->impl;
  const tc_settings *c = KN_CSETTINGS(&m->cfg, tc_settings);
  if (!d) return kn_err(KNOBS_ERR_ARG, "tcvae: no dataset (its size N enters the estimator)");
  double N = (double)knobs_data_info_get(d)->n;
  if (N < m->B)
    return kn_err(KNOBS_ERR_ARG, "tcvae: the dataset has %.0f observations, fewer than the batch of %d", N, m->B);
  double recon;
  knobs_status s = kn_vae_forward(m, &recon);
  if (s) return s;
  int B = m->B, Z = m->Z;
  double kl = kn_gauss_kl(NULL, NULL, m->kl_dim, m->mu, m->lv, B, Z, 1.0f);
  kn_tc_terms e;
  memset(p->dz, 0, sizeof(float) * (size_t)B * Z);
  kn_tc_estimate(m->z, m->mu, m->lv, B, Z, N, !strcmp(c->estimator, "mss"), c->alpha, c->beta,
                 c->gamma, 1.0f, p->dz, m->dmu, m->dlv, p->scratch, &e);
  kn_reparam_backward(m->dmu, m->dlv, p->dz, m->lv, m->eps, (size_t)B * Z);
  kn_vae_backward(m, B);
  kn_model_opt_step(m, 0);
  kn_terms_add(t, "loss", recon + c->alpha * e.mi + c->beta * e.tc + c->gamma * e.dw);
  kn_terms_add(t, "recon", recon);
  kn_terms_add(t, "kl", kl);
  kn_terms_add(t, "mi", e.mi);
  kn_terms_add(t, "tc", e.tc);
  kn_terms_add(t, "dwkl", e.dw);
  kn_terms_add(t, "elbo", -(recon + kl));
  return KNOBS_OK;
}

const kn_model_ops kn_model_tcvae = {
    .name = "tcvae",
    .describe = "beta-TCVAE (Chen et al. 2018): recon + alpha MI + beta TC + gamma dimension-wise KL",
    .loss = "recon + alpha * MI + beta * TC + gamma * dimension-wise KL (minibatch estimators mws | mss)",
    .settings = &tc_set,
    .build = tc_build,
    .ready = tc_ready,
    .step = tc_step,
    .property_penalty = 1,
    .free_impl = tc_free,
};
