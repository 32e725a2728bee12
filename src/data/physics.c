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
 * The mixing matrix comes from opts->seed and is given by knobs_data_mixing.
 *
 * `physics:nonlinear` is the generator of iVAE (Khemakhem et al. 2020, section 6 and their code
 * ilkhem/iVAE data/data.py), on the same three factors plus a fourth, `segment` u (SEGMENTS
 * classes, uniform): per segment u and source k a scale lambda_uk ~ U(0.5, 3) (the paper's
 * bounds, used as their code does, as a standard deviation), so
 *     s_k = lambda_uk e_k / d_k,   e_k ~ dist (gauss by default: identifiable only through the
 *     modulation), d_k^2 = mean_u lambda_uk^2 (unit variance over the segments);
 * the segments are centred, as the paper's default (uncentered=False): measured in a PyTorch
 * check of the authors' own model on their own generator (3 sources, 10 channels, 40
 * segments), adding means U(-1, 1) per segment dropped its MCC from 0.97 to 0.62;
 * then an invertible MLP of LAYERS layers, the first (obs_dim x 3) and the others square
 * (obs_dim x obs_dim), each matrix U diag(1 .. 2) V^T with random orthonormal U, V (condition
 * number 2) scaled to rows of mean squared norm 1, a leaky ReLU of slope SLOPE times
 * sqrt(2 / (1 + SLOPE^2)) (which keeps a unit second moment) after every layer but the last:
 *     x = A_3 g(A_2 g(A_1 s)) + noise * sd_i eps_i,   g(h) = gain * (h > 0 ? h : SLOPE h),
 * sd_i the standard deviation of channel i of the noiseless x (measured once at open, on 4096
 * draws of a fixed stream). Leaky ReLU is a bijection and the matrices have full column rank,
 * so x determines s. Bins: the sources' 10 classes are quantile bins of the mixture's marginal
 * (its CDF is a mean over segments; the cuts found by bisection at open); render of a class
 * vector uses the bin medians (u does not enter x given s); draws are the generative process
 * itself (u, then e, then the bins of s). Factor values: the sources s and the segment index. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

#define K 3
#define BINS 10
#define STREAM_MIX 0x6d697800ull          /* the mixing matrix */
#define STREAM_RENDER (5ull << 40)        /* + grid index: the noise of render() */
#define STREAM_SEGMENTS 0x736567ull       /* physics:nonlinear: the segments' scales */
#define STREAM_SCALE 0x7363616c65ull      /* physics:nonlinear: the draws that measure sd_i */
#define SEGMENTS 40                       /* physics:nonlinear: segments (the paper's 40) */
#define LAYERS 3                          /* physics:nonlinear: mixing layers (the paper's 3) */
#define SLOPE 0.2                         /* physics:nonlinear: leaky ReLU slope */

static const char *const names[K + 1] = {"mass", "friction", "force", "segment"};

typedef enum { DIST_UNIFORM, DIST_LAPLACE, DIST_GAUSS } dist_kind;
static const char *const dist_names[] = {"uniform", "laplace", "gauss"};

typedef struct {
  int D;             /* observed channels */
  double noise;      /* relative noise */
  dist_kind dist;
  uint64_t seed;
  double *A;         /* (D,K) */
  double *sig;       /* (D) noise standard deviation per channel */
  /* physics:nonlinear (nonlinear = 1): */
  int nonlinear;
  double *W[LAYERS];           /* W[0] (D,K), W[1..] (D,D) */
  double *h;                   /* (2D) scratch of one forward (draws are single-threaded) */
  double lam[SEGMENTS][K];     /* the segments' scales */
  double sd[K];                /* the mixture's standard deviation per source */
  double cut[K][BINS - 1];     /* quantile bin edges of each standardised source */
  double med[K][BINS];         /* bin medians */
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

/* The noiseless x of sources f into y (D): A f, or the nonlinear MLP. */
static void mix_clean(const physics *ph, const double *f, double *y) {
  int D = ph->D;
  if (!ph->nonlinear) {
    for (int i = 0; i < D; i++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += ph->A[i * K + k] * f[k];
      y[i] = s;
    }
    return;
  }
  const double gain = sqrt(2 / (1 + SLOPE * SLOPE));
  const double *in = f;
  double *a = ph->h, *b = ph->h + D;
  for (int l = 0; l < LAYERS; l++) {
    int n_in = l ? D : K;
    double *out = l == LAYERS - 1 ? y : (l % 2 ? b : a);
    for (int i = 0; i < D; i++) {
      double s = 0;
      for (int j = 0; j < n_in; j++) s += ph->W[l][i * n_in + j] * in[j];
      out[i] = l == LAYERS - 1 ? s : gain * (s > 0 ? s : SLOPE * s);
    }
    in = out;
  }
}

/* x = mix(f) + sig * eps for one observation */
static void mix(const physics *ph, const double *f, kn_rng *noise, float *x) {
  double y[4096];
  mix_clean(ph, f, y);
  for (int i = 0; i < ph->D; i++) x[i] = (float)(y[i] + ph->sig[i] * kn_rng_normal(noise));
}

/* CDF of the standardised factor distribution */
static double cdf(dist_kind k, double x) {
  switch (k) {
  case DIST_UNIFORM: return x <= -sqrt(3.0) ? 0 : x >= sqrt(3.0) ? 1 : (x + sqrt(3.0)) / (2 * sqrt(3.0));
  case DIST_LAPLACE: {
    double b = 1 / sqrt(2.0);
    return x < 0 ? 0.5 * exp(x / b) : 1 - 0.5 * exp(-x / b);
  }
  default: return 0.5 * erfc(-x / sqrt(2.0));
  }
}

/* physics:nonlinear: the CDF of standardised source k (a mean over the segments) */
static double mixture_cdf(const physics *ph, int k, double v) {
  double x = v * ph->sd[k], p = 0;
  for (int u = 0; u < SEGMENTS; u++) p += cdf(ph->dist, x / ph->lam[u][k]);
  return p / SEGMENTS;
}

/* its quantile by bisection (the CDF is continuous and increasing on the support) */
static double mixture_quantile(const physics *ph, int k, double p) {
  double lo = -100, hi = 100;
  for (int it = 0; it < 200 && hi - lo > 1e-13; it++) {
    double mid = 0.5 * (lo + hi);
    if (mixture_cdf(ph, k, mid) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* the bin of standardised source value v */
static int32_t bin_of(const physics *ph, int k, double v) {
  int32_t c = 0;
  while (c < BINS - 1 && v >= ph->cut[k][c]) c++;
  return c;
}

/* physics:nonlinear: one draw of the generative process (segment, sources, bins, x) */
static void nl_draw_one(const physics *ph, kn_rng *r, float *x, int32_t *cls, double *val) {
  uint32_t u = kn_rng_below(r, SEGMENTS);
  double f[K];
  for (int k = 0; k < K; k++) {
    double p = ((double)(kn_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53; /* in (0,1): finite quantiles */
    f[k] = ph->lam[u][k] * quantile(ph->dist, p) / ph->sd[k];
    if (cls) cls[k] = bin_of(ph, k, f[k]);
    if (val) val[k] = f[k];
  }
  if (cls) cls[K] = (int32_t)u;
  if (val) val[K] = u;
  mix(ph, f, r, x);
}

static knobs_status ph_draw(knobs_data *d, kn_rng *r, int n, float *obs, int32_t *factors,
                            double *values) {
  const physics *ph = d->impl;
  if (ph->nonlinear) {
    for (int i = 0; i < n; i++)
      nl_draw_one(ph, r, obs + (size_t)i * ph->D, factors ? factors + (size_t)i * (K + 1) : NULL,
                  values ? values + (size_t)i * (K + 1) : NULL);
    return KNOBS_OK;
  }
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
  if (ph->nonlinear) return k < K ? ph->med[k][c] : c;
  return quantile(ph->dist, (c + 0.5) / BINS);
}

static knobs_status ph_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  const physics *ph = d->impl;
  int nk = ph->nonlinear ? K + 1 : K;
  for (int i = 0; i < n; i++) {
    const int32_t *c = factors + (size_t)i * nk;
    double f[K];
    for (int k = 0; k < K; k++) f[k] = ph_value(d, k, c[k]);
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
  free(ph->h);
  for (int l = 0; l < LAYERS; l++) free(ph->W[l]);
  free(ph);
}

static const kn_data_ops ops = {
    .render = ph_render,
    .factor_value = ph_value,
    .free_impl = ph_free,
    .draw = ph_draw,
    .mixing = ph_mixing,
};
static const kn_data_ops nl_ops = { /* no mixing matrix: the mixing is an MLP */
    .render = ph_render,
    .factor_value = ph_value,
    .free_impl = ph_free,
    .draw = ph_draw,
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

/* physics:nonlinear: a random matrix out (rows,cols), cols <= rows: U diag(sv) V^T with U
 * (rows,cols) and V (cols,cols) random orthonormal (scratch of those sizes) and sv spaced evenly
 * from 1 to 2 (condition number 2; 1 for one column), scaled to rows of mean squared norm 1. */
static void well_conditioned(double *out, double *U, double *V, int rows, int cols, kn_rng *r) {
  do {
    for (int i = 0; i < rows * cols; i++) U[i] = kn_rng_normal(r);
  } while (!orthonormalise(U, rows, cols));
  do {
    for (int i = 0; i < cols * cols; i++) V[i] = kn_rng_normal(r);
  } while (!orthonormalise(V, cols, cols));
  double ss = 0;
  for (int j = 0; j < cols; j++) {
    double sv = cols > 1 ? 1.0 + (double)j / (cols - 1) : 1.0;
    ss += sv * sv;
  }
  double scale = sqrt(rows / ss);
  for (int i = 0; i < rows; i++)
    for (int k = 0; k < cols; k++) {
      double s = 0;
      for (int j = 0; j < cols; j++) s += U[i * cols + j] * (cols > 1 ? 1.0 + (double)j / (cols - 1) : 1.0) * V[k * cols + j];
      out[i * cols + k] = s * scale;
    }
}

/* physics:nonlinear: segments, the mixture's moments and bins, the MLP, the channels' scale */
static knobs_status make_nonlinear(physics *ph) {
  int D = ph->D;
  kn_rng r;
  kn_rng_seed(&r, ph->seed, STREAM_SEGMENTS);
  for (int u = 0; u < SEGMENTS; u++)
    for (int k = 0; k < K; k++) ph->lam[u][k] = 0.5 + 2.5 * kn_rng_uniform(&r);
  for (int k = 0; k < K; k++) { /* the base distributions have mean 0, variance 1 */
    double m2 = 0;
    for (int u = 0; u < SEGMENTS; u++) m2 += ph->lam[u][k] * ph->lam[u][k];
    ph->sd[k] = sqrt(m2 / SEGMENTS);
    for (int c = 0; c < BINS - 1; c++) ph->cut[k][c] = mixture_quantile(ph, k, (c + 1.0) / BINS);
    for (int c = 0; c < BINS; c++) ph->med[k][c] = mixture_quantile(ph, k, (c + 0.5) / BINS);
  }
  double *U = malloc(sizeof(double) * 2 * (size_t)D * D);
  ph->h = malloc(sizeof(double) * 2 * (size_t)D);
  if (!U || !ph->h) {
    free(U);
    return kn_err(KNOBS_ERR_NOMEM, "physics:nonlinear: cannot allocate");
  }
  kn_rng_seed(&r, ph->seed, STREAM_MIX);
  for (int l = 0; l < LAYERS; l++) {
    int cols = l ? D : K;
    ph->W[l] = malloc(sizeof(double) * (size_t)D * cols);
    if (!ph->W[l]) {
      free(U);
      return kn_err(KNOBS_ERR_NOMEM, "physics:nonlinear: cannot allocate");
    }
    well_conditioned(ph->W[l], U, U + (size_t)D * D, D, cols, &r);
  }
  free(U);
  /* the channels' standard deviations, measured on fixed draws without noise */
  enum { NS = 4096 };
  double *s1 = calloc(2 * (size_t)D, sizeof(double)), y[256];
  if (!s1) return kn_err(KNOBS_ERR_NOMEM, "physics:nonlinear: cannot allocate");
  kn_rng_seed(&r, ph->seed, STREAM_SCALE);
  for (int n = 0; n < NS; n++) {
    uint32_t u = kn_rng_below(&r, SEGMENTS);
    double f[K];
    for (int k = 0; k < K; k++) {
      double p = ((double)(kn_rng_u64(&r) >> 11) + 0.5) * 0x1.0p-53;
      f[k] = ph->lam[u][k] * quantile(ph->dist, p) / ph->sd[k];
    }
    mix_clean(ph, f, y);
    for (int i = 0; i < D; i++) s1[i] += y[i], s1[D + i] += y[i] * y[i];
  }
  for (int i = 0; i < D; i++) {
    double mean = s1[i] / NS, var = s1[D + i] / NS - mean * mean;
    ph->sig[i] = ph->noise * sqrt(var > 0 ? var : 0);
  }
  free(s1);
  return KNOBS_OK;
}

static int ph_match(const char *spec) { return !strcmp(spec, "physics") || !strncmp(spec, "physics:", 8); }

static knobs_status ph_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors) return kn_err(KNOBS_ERR_ARG, "physics has its own factors: a factors file (%s) is for your own data", o->factors);
  int nonlinear = !strcmp(spec, "physics:nonlinear");
  if (!nonlinear && strcmp(spec, "physics"))
    return kn_err(KNOBS_ERR_ARG, "unknown physics variant '%s' (known: physics, physics:nonlinear)", spec);
  int D = o->obs_dim > 0 ? o->obs_dim : 10;
  double noise = o->noise < 0 ? 0.05 : o->noise;
  dist_kind dist = nonlinear ? DIST_GAUSS : DIST_UNIFORM; /* nonlinear: the paper's default */
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
  if (nonlinear && D > 256)
    return kn_err(KNOBS_ERR_ARG, "physics:nonlinear: obs_dim %d is above 256 (its square mixing layers)", D);
  if (!(noise >= 0 && noise <= 100)) return kn_err(KNOBS_ERR_ARG, "physics: noise %g must be in [0, 100]", noise);
  physics *ph = calloc(1, sizeof *ph);
  if (!ph) return kn_err(KNOBS_ERR_NOMEM, "physics: cannot allocate");
  d->impl = ph;
  d->ops = nonlinear ? &nl_ops : &ops;
  ph->D = D, ph->noise = noise, ph->dist = dist, ph->seed = o->seed, ph->nonlinear = nonlinear;
  ph->A = malloc(sizeof(double) * (size_t)D * K);
  ph->sig = malloc(sizeof(double) * (size_t)D);
  if (!ph->A || !ph->sig) return kn_err(KNOBS_ERR_NOMEM, "physics: cannot allocate");
  knobs_status s = nonlinear ? make_nonlinear(ph) : KNOBS_OK;
  if (s) return s;
  if (!nonlinear) make_mixing(ph);
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", nonlinear ? "physics:nonlinear" : "physics");
  in->C = D, in->H = 1, in->W = 1;
  const int sizes[K + 1] = {BINS, BINS, BINS, SEGMENTS};
  kn_data_set_factors(in, nonlinear ? K + 1 : K, names, sizes);
  for (int k = 0; k < K; k++) in->factor_continuous[k] = 1;
  in->n = BINS * BINS * BINS * (nonlinear ? SEGMENTS : 1);
  in->is_image = 0;
  in->has_render = 1;
  if (nonlinear)
    snprintf(in->note, sizeof in->note, "factor 'segment' is the auxiliary variable u of iVAE (the sources' "
             "distribution changes with it), not a source: score MCC on mass, friction and force");
  else if (dist == DIST_GAUSS)
    snprintf(in->note, sizeof in->note, "Gaussian factors: a linear mixture of them is not identifiable "
             "(every rotation of the factors explains the data equally well), so no model can be "
             "expected to recover them; use factor_dist uniform or laplace");
  return KNOBS_OK;
}

const kn_data_entry kn_data_physics = {
    "physics",
    "toy physics vectors: mass, friction, force (uniform, laplace or gauss) mixed linearly into "
    "obs_dim channels (10) with relative noise (5%); continuous factors in 10 bins; physics:nonlinear: "
    "iVAE's generator (sources modulated by 40 segments, gauss by default, an invertible leaky-ReLU MLP)",
    ph_match,
    ph_open,
};
