/* density.c: plausibility penalties on codes, for design.c to keep a latent search near the
 * codes the model actually produces: value and analytic gradient of
 *   prior  -log N(z; 0, I) = 0.5 |z|^2 + 0.5 Z log(2 pi)
 *   gmm    -log p(z), p a diagonal-covariance Gaussian mixture fitted by EM to training codes
 *   box    sum_d (max(0, lo_d - z_d)^2 + max(0, z_d - hi_d)^2), lo/hi the q and 1 - q empirical
 *          quantiles of the training codes (numpy.quantile's default 'linear' method)
 * The GMM fit (docs/apps.md "Design penalties and image properties"):
 *  - initialisation: k-means++ (Arthur & Vassilvitskii 2007, one candidate per step) seeded by
 *    opts.seed through kn_rng (stream KN_STREAM_INIT); every code goes to its nearest seed
 *    (ties: the lower index) and the first M-step turns those hard assignments into weights,
 *    means and variances. When fewer than gmm_k distinct codes exist, k-means++ runs out of
 *    candidates (every remaining code sits on a seed) and the mixture has fewer components.
 *  - EM: the E-step in double with log-sum-exp responsibilities; the M-step as scikit-learn's
 *    GaussianMixture(covariance_type='diag'): weights nk / n, weighted means, weighted
 *    (biased) variances plus gmm_reg. A component whose responsibilities sum to less than
 *    1e-6 of one code (it lost all its mass) is dropped, not re-seeded: re-seeding can cycle,
 *    and a dropped component changes no density by more than that share. The kept components
 *    keep their order.
 *  - stop after gmm_iter E+M iterations, or as soon as the mean log-likelihood of an E-step
 *    gains less than gmm_tol over the previous one (a loss, possible through the floor or a
 *    drop, stops it too). The parameters are those of the last M-step, as in scikit-learn.
 * Everything runs on one thread in a fixed order: the same codes, options and seed give the
 * same bits. It does not standardise the codes, choose gmm_k, or model full covariances. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/density.h"
#include "core/core.h"

#define LOG_2PI 1.8378770664093453 /* log(2 pi) */
#define EMPTY_MASS 1e-6            /* a component with less total responsibility is dropped */
#define MIN_REG 1e-12              /* the smallest variance floor accepted */

struct knobs_penalty {
  knobs_penalty_kind kind;
  int Z;
  /* gmm */
  int K, iters, converged;
  double ll;
  double *w, *mu, *var; /* (K), (K,Z), (K,Z) */
  double *iv, *lognorm; /* (K,Z) 1 / var; (K) log w_k - 0.5 sum_d log(2 pi var_kd) */
  /* box */
  double *lo, *hi;      /* (Z) */
};

void knobs_penalty_opts_default(knobs_penalty_opts *o) {
  *o = (knobs_penalty_opts){
      .gmm_k = 10, .gmm_iter = 200, .gmm_tol = 1e-4, .gmm_reg = 1e-4, .box_q = 0.01, .seed = 0};
}

int knobs_penalty_parse(const char *name) {
  static const char *const names[] = {[KNOBS_PENALTY_NONE] = "none", [KNOBS_PENALTY_PRIOR] = "prior",
                                      [KNOBS_PENALTY_GMM] = "gmm", [KNOBS_PENALTY_BOX] = "box"};
  if (!name) return -1;
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}

void knobs_penalty_free(knobs_penalty *p) {
  if (!p) return;
  kn_free(p->w), kn_free(p->mu), kn_free(p->var), kn_free(p->iv), kn_free(p->lognorm);
  kn_free(p->lo), kn_free(p->hi);
  kn_free(p);
}

/* ---- gmm ------------------------------------------------------------------------------- */
static double dist2(const float *a, const double *b, int Z) {
  double s = 0;
  for (int d = 0; d < Z; d++) {
    double t = (double)a[d] - b[d];
    s += t * t;
  }
  return s;
}

/* log(w_k N(z; mu_k, diag var_k)) */
static double comp_log(const knobs_penalty *p, int k, const float *z) {
  const double *mu = p->mu + (size_t)k * p->Z, *iv = p->iv + (size_t)k * p->Z;
  double q = 0;
  for (int d = 0; d < p->Z; d++) {
    double t = (double)z[d] - mu[d];
    q += t * t * iv[d];
  }
  return p->lognorm[k] - 0.5 * q;
}

static void gmm_prepare(knobs_penalty *p) {
  for (int k = 0; k < p->K; k++) {
    double s = 0;
    for (int d = 0; d < p->Z; d++) {
      double v = p->var[(size_t)k * p->Z + d];
      p->iv[(size_t)k * p->Z + d] = 1.0 / v;
      s += log(v);
    }
    p->lognorm[k] = log(p->w[k]) - 0.5 * (s + p->Z * LOG_2PI);
  }
}

/* k-means++ seeds into p->mu (p->K lowered if the codes run out of distinct points), then the
 * hard assignment of every code to its nearest seed into resp (n, p->K). d2: n scratch. */
static void kmeanspp(knobs_penalty *p, const float *x, int n, uint64_t seed, double *d2, double *resp) {
  int Z = p->Z, K = p->K;
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_INIT);
  int first = (int)kn_rng_below(&r, (uint32_t)n);
  for (int d = 0; d < Z; d++) p->mu[d] = x[(size_t)first * Z + d];
  for (int i = 0; i < n; i++) d2[i] = dist2(x + (size_t)i * Z, p->mu, Z);
  int k = 1;
  for (; k < K; k++) {
    double tot = 0;
    for (int i = 0; i < n; i++) tot += d2[i];
    if (!(tot > 0)) break; /* every code sits on a seed: no distinct point is left */
    double u = kn_rng_uniform(&r) * tot, cum = 0;
    int pick = -1;
    for (int i = 0; i < n; i++) {
      if (!(d2[i] > 0)) continue; /* a code on a seed is never picked again */
      pick = i;                   /* the last candidate, should rounding leave cum <= u at the end */
      cum += d2[i];
      if (cum > u) break;
    }
    double *mk = p->mu + (size_t)k * Z;
    for (int d = 0; d < Z; d++) mk[d] = x[(size_t)pick * Z + d];
    for (int i = 0; i < n; i++) {
      double t = dist2(x + (size_t)i * Z, mk, Z);
      if (t < d2[i]) d2[i] = t;
    }
  }
  p->K = K = k;
  memset(resp, 0, (size_t)n * K * sizeof *resp);
  for (int i = 0; i < n; i++) {
    int best = 0;
    double bd = INFINITY;
    for (int j = 0; j < K; j++) {
      double t = dist2(x + (size_t)i * Z, p->mu + (size_t)j * Z, Z);
      if (t < bd) bd = t, best = j;
    }
    resp[(size_t)i * K + best] = 1;
  }
}

/* M-step from resp (n, p->K): weights, means, variances (+ reg); components with less than
 * EMPTY_MASS total responsibility are dropped (p->K shrinks, order kept). Then gmm_prepare. */
static void m_step(knobs_penalty *p, const float *x, int n, const double *resp, double reg) {
  int Z = p->Z, K = p->K, kept = 0;
  double total = 0;
  for (int k = 0; k < K; k++) {
    double nk = 0;
    for (int i = 0; i < n; i++) nk += resp[(size_t)i * K + k];
    if (!(nk >= EMPTY_MASS)) continue;
    double *mu = p->mu + (size_t)kept * Z, *var = p->var + (size_t)kept * Z;
    for (int d = 0; d < Z; d++) mu[d] = 0, var[d] = 0;
    for (int i = 0; i < n; i++) {
      double r = resp[(size_t)i * K + k];
      for (int d = 0; d < Z; d++) mu[d] += r * x[(size_t)i * Z + d];
    }
    for (int d = 0; d < Z; d++) mu[d] /= nk;
    for (int i = 0; i < n; i++) {
      double r = resp[(size_t)i * K + k];
      for (int d = 0; d < Z; d++) {
        double t = x[(size_t)i * Z + d] - mu[d];
        var[d] += r * t * t;
      }
    }
    for (int d = 0; d < Z; d++) var[d] = var[d] / nk + reg;
    p->w[kept++] = nk;
    total += nk;
  }
  KN_ASSERT(kept > 0); /* the responsibilities of every code sum to one (finite: see MIN_REG) */
  p->K = kept;
  for (int k = 0; k < kept; k++) p->w[k] /= total;
  gmm_prepare(p);
}

/* E-step: resp (n, p->K) the log-sum-exp responsibilities; returns the mean log-likelihood. */
static double e_step(const knobs_penalty *p, const float *x, int n, double *resp) {
  int K = p->K;
  double ll = 0;
  for (int i = 0; i < n; i++) {
    double *r = resp + (size_t)i * K, m = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) {
      r[k] = comp_log(p, k, x + (size_t)i * p->Z);
      if (r[k] > m) m = r[k];
    }
    for (int k = 0; k < K; k++) s += exp(r[k] - m);
    double lse = m + log(s);
    for (int k = 0; k < K; k++) r[k] = exp(r[k] - lse);
    ll += lse;
  }
  return ll / n;
}

static knobs_status gmm_fit(knobs_penalty *p, const float *x, int n, const knobs_penalty_opts *o) {
  int Z = p->Z;
  p->K = o->gmm_k;
  size_t KZ = (size_t)p->K * Z;
  double *resp = kn_alloc((size_t)n * p->K * sizeof *resp, "gmm: responsibilities");
  double *d2 = kn_alloc((size_t)n * sizeof *d2, "gmm: k-means++ distances");
  p->w = kn_alloc((size_t)p->K * sizeof *p->w, "gmm: weights");
  p->lognorm = kn_alloc((size_t)p->K * sizeof *p->lognorm, "gmm: normalisers");
  p->mu = kn_alloc(KZ * sizeof *p->mu, "gmm: means");
  p->var = kn_alloc(KZ * sizeof *p->var, "gmm: variances");
  p->iv = kn_alloc(KZ * sizeof *p->iv, "gmm: inverse variances");
  if (!resp || !d2 || !p->w || !p->lognorm || !p->mu || !p->var || !p->iv) {
    kn_free(resp), kn_free(d2);
    return KNOBS_ERR_NOMEM;
  }
  kmeanspp(p, x, n, o->seed, d2, resp);
  kn_free(d2);
  m_step(p, x, n, resp, o->gmm_reg);
  double prev = -INFINITY;
  p->iters = 0;
  p->converged = 0;
  for (int it = 0; it < o->gmm_iter; it++) {
    double ll = e_step(p, x, n, resp);
    m_step(p, x, n, resp, o->gmm_reg);
    p->iters = it + 1;
    p->ll = ll;
    if (ll - prev < o->gmm_tol) {
      p->converged = 1;
      break;
    }
    prev = ll;
  }
  kn_free(resp);
  return KNOBS_OK;
}

/* ---- box -------------------------------------------------------------------------------- */
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* numpy.quantile(s, q) (method 'linear') of sorted s (n), with numpy 1.24's arithmetic: the
 * virtual index n q + (1 - q) - 1, and its lerp that interpolates from the upper neighbour
 * when the fraction is >= 0.5, so the same doubles give the same bits. */
double kn_quantile_sorted(const double *s, int n, double q) {
  double v = n * q + (1 - q) - 1;
  if (v >= n - 1) return s[n - 1];
  if (v < 0) return s[0];
  double f = floor(v), g = v - f;
  int i = (int)f;
  double a = s[i], b = s[i + 1], diff = b - a;
  return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

static knobs_status box_fit(knobs_penalty *p, const float *x, int n, double q) {
  int Z = p->Z;
  double *col = kn_alloc((size_t)n * sizeof *col, "box: one latent's codes");
  p->lo = kn_alloc((size_t)Z * sizeof *p->lo, "box: lower bounds");
  p->hi = kn_alloc((size_t)Z * sizeof *p->hi, "box: upper bounds");
  if (!col || !p->lo || !p->hi) {
    kn_free(col);
    return KNOBS_ERR_NOMEM;
  }
  for (int d = 0; d < Z; d++) {
    for (int i = 0; i < n; i++) col[i] = x[(size_t)i * Z + d];
    qsort(col, (size_t)n, sizeof *col, cmp_double);
    p->lo[d] = kn_quantile_sorted(col, n, q);
    p->hi[d] = kn_quantile_sorted(col, n, 1 - q);
  }
  kn_free(col);
  return KNOBS_OK;
}

/* ---- the API ------------------------------------------------------------------------------ */
static knobs_status check_opts(knobs_penalty_kind kind, const knobs_penalty_opts *o) {
  if (kind == KNOBS_PENALTY_GMM) {
    if (o->gmm_k < 1 || o->gmm_k > KN_GMM_MAX_K)
      return kn_err(KNOBS_ERR_ARG, "penalty gmm: gmm_k %d: must be in 1..%d", o->gmm_k, KN_GMM_MAX_K);
    if (o->gmm_iter < 1) return kn_err(KNOBS_ERR_ARG, "penalty gmm: gmm_iter %d: must be >= 1", o->gmm_iter);
    if (!(o->gmm_tol >= 0) || !isfinite(o->gmm_tol))
      return kn_err(KNOBS_ERR_ARG, "penalty gmm: gmm_tol %g: must be finite and >= 0", o->gmm_tol);
    /* the floor bounds 1/var by 1e12, so (z - mu)^2 / var of float codes (< 1.2e77) stays
     * finite in double, every responsibility is a number, and no component set is empty */
    if (!(o->gmm_reg >= MIN_REG) || !isfinite(o->gmm_reg))
      return kn_err(KNOBS_ERR_ARG, "penalty gmm: gmm_reg %g: must be finite and >= %g (the variance floor)",
                    o->gmm_reg, MIN_REG);
  }
  if (kind == KNOBS_PENALTY_BOX && !(o->box_q >= 0 && o->box_q <= 0.5))
    return kn_err(KNOBS_ERR_ARG, "penalty box: box_q %g: must be in [0, 0.5]", o->box_q);
  return KNOBS_OK;
}

knobs_status knobs_penalty_fit(knobs_penalty_kind kind, const float *codes, int n, int Z,
                               const knobs_penalty_opts *o, knobs_penalty **out) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "penalty: out is NULL");
  *out = NULL;
  if ((int)kind < (int)KNOBS_PENALTY_NONE || (int)kind > (int)KNOBS_PENALTY_BOX)
    return kn_err(KNOBS_ERR_ARG, "penalty: unknown kind %d", (int)kind);
  static const char *const names[] = {"none", "prior", "gmm", "box"};
  const char *name = names[kind];
  if (Z < 1) return kn_err(KNOBS_ERR_ARG, "penalty %s: Z %d: codes need at least one latent", name, Z);
  knobs_penalty_opts def;
  if (!o) knobs_penalty_opts_default(&def), o = &def;
  knobs_status s = check_opts(kind, o);
  if (s) return s;
  int fitted = kind == KNOBS_PENALTY_GMM || kind == KNOBS_PENALTY_BOX;
  if (fitted) {
    if (!codes || n < 1) return kn_err(KNOBS_ERR_ARG, "penalty %s: no training codes (n %d)", name, n);
    if (kind == KNOBS_PENALTY_GMM && n < o->gmm_k)
      return kn_err(KNOBS_ERR_ARG, "penalty gmm: %d training codes for %d components: need n >= gmm_k", n,
                    o->gmm_k);
    for (size_t i = 0; i < (size_t)n * Z; i++)
      if (!isfinite(codes[i]))
        return kn_err(KNOBS_ERR_DATA, "penalty %s: training code %zu has %s at latent %zu", name, i / Z,
                      isnan(codes[i]) ? "NaN" : "an infinite value", i % Z);
  }
  knobs_penalty *p = kn_alloc(sizeof *p, "penalty");
  if (!p) return KNOBS_ERR_NOMEM;
  p->kind = kind;
  p->Z = Z;
  if (kind == KNOBS_PENALTY_GMM) s = gmm_fit(p, codes, n, o);
  if (kind == KNOBS_PENALTY_BOX) s = box_fit(p, codes, n, o->box_q);
  if (s) {
    knobs_penalty_free(p);
    return s;
  }
  *out = p;
  return KNOBS_OK;
}

double knobs_penalty_eval(const knobs_penalty *p, const float *z, double *grad) {
  if (!p) return 0;
  int Z = p->Z;
  switch (p->kind) {
  case KNOBS_PENALTY_PRIOR: {
    double s = 0;
    for (int d = 0; d < Z; d++) {
      s += (double)z[d] * z[d];
      if (grad) grad[d] += z[d];
    }
    return 0.5 * s + 0.5 * Z * LOG_2PI;
  }
  case KNOBS_PENALTY_GMM: {
    /* -log sum_k exp(l_k) with l_k = log(w_k N(z; mu_k, var_k)), shifted by the largest l_k
     * so that a code far from every component (every l_k hugely negative) still has a finite
     * value and a gradient weighted by its nearest components; d/dz = sum_k r_k (z - mu_k)/var_k */
    double l[KN_GMM_MAX_K], m = -INFINITY, s = 0;
    for (int k = 0; k < p->K; k++) {
      l[k] = comp_log(p, k, z);
      if (l[k] > m) m = l[k];
    }
    for (int k = 0; k < p->K; k++) s += exp(l[k] - m);
    double lse = m + log(s);
    if (grad)
      for (int k = 0; k < p->K; k++) {
        double r = exp(l[k] - lse);
        const double *mu = p->mu + (size_t)k * Z, *iv = p->iv + (size_t)k * Z;
        for (int d = 0; d < Z; d++) grad[d] += r * ((double)z[d] - mu[d]) * iv[d];
      }
    return -lse;
  }
  case KNOBS_PENALTY_BOX: {
    double s = 0;
    for (int d = 0; d < Z; d++) {
      double v = z[d];
      if (v < p->lo[d]) {
        s += (p->lo[d] - v) * (p->lo[d] - v);
        if (grad) grad[d] -= 2 * (p->lo[d] - v);
      } else if (v > p->hi[d]) {
        s += (v - p->hi[d]) * (v - p->hi[d]);
        if (grad) grad[d] += 2 * (v - p->hi[d]);
      }
    }
    return s;
  }
  default: return 0;
  }
}

int kn_penalty_gmm_view(const knobs_penalty *p, kn_gmm_view *v) {
  if (!p || p->kind != KNOBS_PENALTY_GMM) return 0;
  *v = (kn_gmm_view){.K = p->K, .Z = p->Z, .iters = p->iters, .converged = p->converged,
                     .w = p->w, .mu = p->mu, .var = p->var, .ll = p->ll};
  return 1;
}

int kn_penalty_box_view(const knobs_penalty *p, const double **lo, const double **hi) {
  if (!p || p->kind != KNOBS_PENALTY_BOX) return 0;
  *lo = p->lo, *hi = p->hi;
  return 1;
}
