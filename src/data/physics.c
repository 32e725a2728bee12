/* physics.c: `physics`, the toy system of linear ICA. Three independent factors, mass, friction
 * and external force, each standardised (mean 0, variance 1) and drawn from a non-Gaussian
 * distribution (uniform by default, or Laplace; Gaussian on request, which is not identifiable),
 * are mixed by a random well-conditioned matrix A (obs_dim x 3, condition number 2, rows of
 * mean squared norm 1) into obs_dim observed channels, plus Gaussian noise whose standard
 * deviation is `noise` times each channel's signal standard deviation:
 *     x = A f + noise * diag(|A_i|) eps,   f_k ~ dist,   eps ~ N(0, I).
 * Vector data: C = obs_dim, H = W = 1.
 *
 * Factors are continuous; for the discrete metrics each is binned into BINS classes of equal
 * probability (quantile bins), so drawing a class uniformly and then a value inside its bin from
 * the conditional distribution is exactly a draw from the distribution. Training draws do that
 * (fresh values and noise every draw, values available through knobs_data_draw_values); render
 * of a class vector uses each bin's median and noise drawn from a stream fixed by the seed and
 * the class vector, so it is a pure function of the factors and the seed.
 * The mixing matrix comes from opts->seed and is given by knobs_data_mixing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

#define K 3
#define BINS 10
#define STREAM_MIX 0x6d697800ull          /* the mixing matrix */
#define STREAM_RENDER (5ull << 40)        /* + grid index: the noise of render() */

static const char *const names[K] = {"mass", "friction", "force"};

typedef enum { DIST_UNIFORM, DIST_LAPLACE, DIST_GAUSS } dist_kind;
static const char *const dist_names[] = {"uniform", "laplace", "gauss"};

typedef struct {
  int D;             /* observed channels */
  double noise;      /* relative noise */
  dist_kind dist;
  uint64_t seed;
  double *A;         /* (D,K) */
  double *sig;       /* (D) noise standard deviation per channel */
} physics;

/* Inverse CDF of the standard normal: Acklam's rational approximation (relative error
 * 1.15e-9) refined by one Halley step on erfc. p in (0,1). */
static double probit(double p) {
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                              1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                              -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    double q = sqrt(-2 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    double q = sqrt(-2 * log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  double e = 0.5 * erfc(-x / sqrt(2)) - p, u = e * sqrt(2 * 3.14159265358979323846) * exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

/* Quantile function of the standardised factor distribution, p in (0,1). */
static double quantile(dist_kind k, double p) {
  switch (k) {
  case DIST_UNIFORM: return sqrt(3.0) * (2 * p - 1);
  case DIST_LAPLACE: { /* scale 1/sqrt(2): variance 1 */
    double b = 1 / sqrt(2.0);
    return p < 0.5 ? b * log(2 * p) : -b * log(2 - 2 * p);
  }
  default: return probit(p);
  }
}

/* x = A f + sig * eps for one observation */
static void mix(const physics *ph, const double *f, kn_rng *noise, float *x) {
  for (int i = 0; i < ph->D; i++) {
    double s = 0;
    for (int k = 0; k < K; k++) s += ph->A[i * K + k] * f[k];
    x[i] = (float)(s + ph->sig[i] * kn_rng_normal(noise));
  }
}

static knobs_status ph_draw(knobs_data *d, kn_rng *r, int n, float *obs, int32_t *factors,
                            double *values) {
  const physics *ph = d->impl;
  for (int i = 0; i < n; i++) {
    double f[K];
    for (int k = 0; k < K; k++) {
      uint32_t c = kn_rng_below(r, BINS);
      double u = ((double)(kn_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53; /* in (0,1): finite quantiles */
      f[k] = quantile(ph->dist, (c + u) / BINS);
      if (factors) factors[(size_t)i * K + k] = (int32_t)c;
      if (values) values[(size_t)i * K + k] = f[k];
    }
    mix(ph, f, r, obs + (size_t)i * ph->D);
  }
  return KNOBS_OK;
}

static double ph_value(const knobs_data *d, int k, int c) {
  const physics *ph = d->impl;
  return quantile(ph->dist, (c + 0.5) / BINS);
}

static knobs_status ph_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  const physics *ph = d->impl;
  for (int i = 0; i < n; i++) {
    const int32_t *c = factors + (size_t)i * K;
    double f[K];
    for (int k = 0; k < K; k++) f[k] = quantile(ph->dist, (c[k] + 0.5) / BINS);
    kn_rng r;
    kn_rng_seed(&r, ph->seed, STREAM_RENDER + (uint64_t)knobs_data_index(d, c));
    mix(ph, f, &r, obs + (size_t)i * ph->D);
  }
  return KNOBS_OK;
}

static void ph_mixing(const knobs_data *d, double *A) {
  const physics *ph = d->impl;
  memcpy(A, ph->A, sizeof(double) * (size_t)ph->D * K);
}

static void ph_free(void *impl) {
  physics *ph = impl;
  if (!ph) return;
  free(ph->A);
  free(ph->sig);
  free(ph);
}

static const kn_data_ops ops = {
    .render = ph_render,
    .factor_value = ph_value,
    .free_impl = ph_free,
    .draw = ph_draw,
    .mixing = ph_mixing,
};

/* Orthonormalise the m columns of X (n,m) in place (modified Gram-Schmidt); 0 if degenerate. */
static int orthonormalise(double *X, int n, int m) {
  for (int j = 0; j < m; j++) {
    for (int i = 0; i < j; i++) {
      double p = 0;
      for (int r = 0; r < n; r++) p += X[r * m + i] * X[r * m + j];
      for (int r = 0; r < n; r++) X[r * m + j] -= p * X[r * m + i];
    }
    double s = 0;
    for (int r = 0; r < n; r++) s += X[r * m + j] * X[r * m + j];
    if (s < 1e-12) return 0;
    s = 1 / sqrt(s);
    for (int r = 0; r < n; r++) X[r * m + j] *= s;
  }
  return 1;
}

/* A = U diag(1, 1.5, 2) V^T with U (D,K) and V (K,K) random orthonormal, scaled so that the
 * mean squared row norm is 1 (channels of unit signal variance on average). */
static void make_mixing(physics *ph) {
  kn_rng r;
  kn_rng_seed(&r, ph->seed, STREAM_MIX);
  int D = ph->D;
  double *U = ph->A, V[K * K];
  do {
    for (int i = 0; i < D * K; i++) U[i] = kn_rng_normal(&r);
  } while (!orthonormalise(U, D, K));
  do {
    for (int i = 0; i < K * K; i++) V[i] = kn_rng_normal(&r);
  } while (!orthonormalise(V, K, K));
  const double sv[K] = {1.0, 1.5, 2.0};
  double scale = sqrt(D / (sv[0] * sv[0] + sv[1] * sv[1] + sv[2] * sv[2]));
  for (int i = 0; i < D; i++) {
    double row[K];
    for (int k = 0; k < K; k++) {
      double s = 0;
      for (int j = 0; j < K; j++) s += U[i * K + j] * sv[j] * V[k * K + j];
      row[k] = s * scale;
    }
    double nn = 0;
    for (int k = 0; k < K; k++) U[i * K + k] = row[k], nn += row[k] * row[k];
    ph->sig[i] = ph->noise * sqrt(nn);
  }
}

static int ph_match(const char *spec) { return !strcmp(spec, "physics"); }

static knobs_status ph_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors) return kn_err(KNOBS_ERR_ARG, "physics has its own factors: a factors file (%s) is for your own data", o->factors);
  int D = o->obs_dim > 0 ? o->obs_dim : 10;
  double noise = o->noise < 0 ? 0.05 : o->noise;
  dist_kind dist = DIST_UNIFORM;
  if (o->factor_dist && o->factor_dist[0]) {
    int found = 0;
    for (int i = 0; i < 3; i++)
      if (!strcmp(o->factor_dist, dist_names[i])) dist = (dist_kind)i, found = 1;
    if (!found)
      return kn_err(KNOBS_ERR_ARG, "physics: unknown factor distribution '%s' (uniform, laplace or gauss)",
                    o->factor_dist);
  }
  if (D < K || D > 4096)
    return kn_err(KNOBS_ERR_ARG, "physics: obs_dim %d must be between %d (the number of factors: fewer "
                  "channels cannot be unmixed) and 4096", D, K);
  if (!(noise >= 0 && noise <= 100)) return kn_err(KNOBS_ERR_ARG, "physics: noise %g must be in [0, 100]", noise);
  physics *ph = calloc(1, sizeof *ph);
  if (!ph) return kn_err(KNOBS_ERR_NOMEM, "physics: cannot allocate");
  d->impl = ph;
  d->ops = &ops;
  ph->D = D, ph->noise = noise, ph->dist = dist, ph->seed = o->seed;
  ph->A = malloc(sizeof(double) * (size_t)D * K);
  ph->sig = malloc(sizeof(double) * (size_t)D);
  if (!ph->A || !ph->sig) return kn_err(KNOBS_ERR_NOMEM, "physics: cannot allocate");
  make_mixing(ph);
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "physics");
  in->C = D, in->H = 1, in->W = 1;
  const int sizes[K] = {BINS, BINS, BINS};
  kn_data_set_factors(in, K, names, sizes);
  for (int k = 0; k < K; k++) in->factor_continuous[k] = 1;
  in->n = BINS * BINS * BINS;
  in->is_image = 0;
  in->has_render = 1;
  if (dist == DIST_GAUSS)
    snprintf(in->note, sizeof in->note, "Gaussian factors: a linear mixture of them is not identifiable "
             "(every rotation of the factors explains the data equally well), so no model can be "
             "expected to recover them; use factor_dist uniform or laplace");
  return KNOBS_OK;
}

const kn_data_entry kn_data_physics = {
    "physics",
    "toy physics vectors: mass, friction, force (uniform, laplace or gauss) mixed linearly into "
    "obs_dim channels (10) with relative noise (5%); continuous factors in 10 bins",
    ph_match,
    ph_open,
};
