/* dense.c: linear layers, elementwise activations, layout transposes, losses, the
 * reparameterization, and Adam. Formulas are stated at each declaration in nn.h.
 * Sums for losses are in double; per-element work is float. Elementwise work is split across
 * the pool in contiguous ranges when it is large enough to pay for the wake-up. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/vmath.h"

#define PAR_MIN 32768 /* elements below which elementwise work stays on one thread */

/* ---- linear ------------------------------------------------------------------------------ */

void kn_linear_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                       int B, int I, int O) {
  if (b)
    for (int i = 0; i < B; i++) memcpy(y + (size_t)i * O, b, sizeof(float) * (size_t)O);
  kn_sgemm(p, 0, 1, B, O, I, 1.0f, x, I, W, I, b ? 1.0f : 0.0f, y, O);
}

typedef struct {
  float *db;
  const float *dy;
  int B, O;
} bias_job;

static void bias_rows_task(void *ctx, int tid, int nt) { /* db[o] += sum_b dy[b][o] */
  bias_job *j = ctx;
  long lo, hi;
  kn_split(j->O, tid, nt, &lo, &hi);
  for (long o = lo; o < hi; o++) {
    float acc = 0;
    for (int b = 0; b < j->B; b++) acc += j->dy[(size_t)b * j->O + o];
    j->db[o] += acc;
  }
}

void kn_linear_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, int B, int I, int O) {
  if (dx) kn_sgemm(p, 0, 0, B, I, O, 1.0f, dy, O, W, I, 1.0f, dx, I);
  if (dW) kn_sgemm(p, 1, 0, O, I, B, 1.0f, dy, O, x, I, 1.0f, dW, I);
  if (db) {
    bias_job j = {db, dy, B, O};
    if ((long)B * O < PAR_MIN) bias_rows_task(&j, 0, 1);
    else kn_pool_run(p, bias_rows_task, &j);
  }
}

/* ---- elementwise ------------------------------------------------------------------------- */

typedef enum { RELU_F, RELU_B, LRELU_F, LRELU_B, TANH_F, TANH_B, SIG_F, SIG_B } ew_op;
typedef struct {
  ew_op op;
  float *out;
  const float *a, *b;
  float slope;
  size_t n;
} ew_job;

static void ew_range(const ew_job *j, size_t lo, size_t hi) {
  float *o = j->out;
  const float *a = j->a, *b = j->b;
  float s = j->slope;
  switch (j->op) {
  case RELU_F: for (size_t i = lo; i < hi; i++) o[i] = a[i] > 0 ? a[i] : 0; break;
  case RELU_B:
    if (o == a) for (size_t i = lo; i < hi; i++) o[i] = b[i] > 0 ? a[i] : 0;
    else for (size_t i = lo; i < hi; i++) o[i] += b[i] > 0 ? a[i] : 0;
    break;
  case LRELU_F: for (size_t i = lo; i < hi; i++) o[i] = a[i] > 0 ? a[i] : s * a[i]; break;
  case LRELU_B:
    if (o == a) for (size_t i = lo; i < hi; i++) o[i] = b[i] > 0 ? a[i] : s * a[i];
    else for (size_t i = lo; i < hi; i++) o[i] += b[i] > 0 ? a[i] : s * a[i];
    break;
  case TANH_F: for (size_t i = lo; i < hi; i++) o[i] = tanhf(a[i]); break;
  case TANH_B:
    if (o == a) for (size_t i = lo; i < hi; i++) o[i] = a[i] * (1.0f - b[i] * b[i]);
    else for (size_t i = lo; i < hi; i++) o[i] += a[i] * (1.0f - b[i] * b[i]);
    break;
  case SIG_F: /* stable for large |x|: exp of a non-positive number only */
    for (size_t i = lo; i < hi; i++) {
      float e = expf(-fabsf(a[i]));
      o[i] = a[i] >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
    break;
  case SIG_B:
    if (o == a) for (size_t i = lo; i < hi; i++) o[i] = a[i] * b[i] * (1.0f - b[i]);
    else for (size_t i = lo; i < hi; i++) o[i] += a[i] * b[i] * (1.0f - b[i]);
    break;
  }
}

static void ew_task(void *ctx, int tid, int nt) {
  ew_job *j = ctx;
  long lo, hi;
  kn_split((long)j->n, tid, nt, &lo, &hi);
  ew_range(j, (size_t)lo, (size_t)hi);
}

static void ew_run(kn_pool *p, ew_op op, float *out, const float *a, const float *b, float slope,
                   size_t n) {
  ew_job j = {op, out, a, b, slope, n};
  if (n < PAR_MIN) ew_range(&j, 0, n);
  else kn_pool_run(p, ew_task, &j);
}

void kn_relu_forward(kn_pool *p, float *y, const float *x, size_t n) { ew_run(p, RELU_F, y, x, NULL, 0, n); }
void kn_relu_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n) { ew_run(p, RELU_B, dx, dy, y, 0, n); }
void kn_lrelu_forward(kn_pool *p, float *y, const float *x, float slope, size_t n) { ew_run(p, LRELU_F, y, x, NULL, slope, n); }
void kn_lrelu_backward(kn_pool *p, float *dx, const float *dy, const float *y, float slope, size_t n) { ew_run(p, LRELU_B, dx, dy, y, slope, n); }
void kn_tanh_forward(kn_pool *p, float *y, const float *x, size_t n) { ew_run(p, TANH_F, y, x, NULL, 0, n); }
void kn_tanh_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n) { ew_run(p, TANH_B, dx, dy, y, 0, n); }
void kn_sigmoid_forward(kn_pool *p, float *y, const float *x, size_t n) { ew_run(p, SIG_F, y, x, NULL, 0, n); }
void kn_sigmoid_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n) { ew_run(p, SIG_B, dx, dy, y, 0, n); }

/* ---- layout ------------------------------------------------------------------------------ */

typedef struct {
  float *dst;
  const float *src;
  int B, C, to_cbs, add;
  long S;
} tr_job;

static void tr_task(void *ctx, int tid, int nt) {
  tr_job *j = ctx;
  long lo, hi; /* split over destination rows of S elements: (b,c) pairs in dst order */
  kn_split((long)j->B * j->C, tid, nt, &lo, &hi);
  for (long r = lo; r < hi; r++) {
    long b, c;
    if (j->to_cbs) c = r / j->B, b = r % j->B; /* dst row r is (c,b) */
    else b = r / j->C, c = r % j->C;           /* dst row r is (b,c) */
    const float *s = j->src + (j->to_cbs ? (b * j->C + c) : (c * j->B + b)) * j->S;
    float *d = j->dst + r * j->S;
    if (j->add)
      for (long i = 0; i < j->S; i++) d[i] += s[i];
    else
      memcpy(d, s, sizeof(float) * (size_t)j->S);
  }
}

void kn_bcs_to_cbs(kn_pool *p, float *dst, const float *src, int B, int C, long S, int add) {
  tr_job j = {dst, src, B, C, 1, add, S};
  if ((long)B * C * S < PAR_MIN) tr_task(&j, 0, 1);
  else kn_pool_run(p, tr_task, &j);
}

void kn_cbs_to_bcs(kn_pool *p, float *dst, const float *src, int B, int C, long S, int add) {
  tr_job j = {dst, src, B, C, 0, add, S};
  if ((long)B * C * S < PAR_MIN) tr_task(&j, 0, 1);
  else kn_pool_run(p, tr_task, &j);
}

/* ---- losses ------------------------------------------------------------------------------ */

typedef struct {
  float *d;
  double *per;
  const float *y, *x;
  int B, gauss;
  long n;
  float scale;
} loss_job;

/* log1p(e) for e in [0, 1], branch-free so that GCC vectorises the loss loop (glibc's
 * expf/log1pf are calls, ~60% of a conv step's loss time before; exp is kn_exp_neg of
 * nn/vmath.h). The Cephes single-precision polynomial: log(u) of u = 1 + e reduced to
 * [sqrt(1/2), sqrt(2)) plus the rounding correction (e - (u - 1)) / u. */
static inline float log1p_unit(float e) {
  float u = 1.0f + e;
  int big = u > 1.41421356f;
  float m = big ? 0.5f * u : u, f = m - 1.0f;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float lg = f + (p * f * z - 0.5f * z);
  return (big ? 0.693147180559945f : 0.0f) + lg + (e - (u - 1.0f)) / u;
}

enum { LB = 256 }; /* elements per block of the loss loop */

static void loss_task(void *ctx, int tid, int nt) {
  loss_job *j = ctx;
  long lo, hi;
  kn_split(j->B, tid, nt, &lo, &hi);
  float g = j->scale / (float)j->B;
  float t[LB];
  for (long b = lo; b < hi; b++) {
    const float *y = j->y + b * j->n, *x = j->x + b * j->n;
    float *d = j->d ? j->d + b * j->n : NULL;
    double part[16] = {0}; /* per-lane sums, added in lane order at the end */
    for (long i0 = 0; i0 < j->n; i0 += LB) {
      int m = j->n - i0 < LB ? (int)(j->n - i0) : LB;
      const float *yy = y + i0, *xx = x + i0;
      if (!j->gauss) {
        for (int i = 0; i < m; i++) {
          float l = yy[i], e = kn_exp_neg(-fabsf(l));
          t[i] = (l > 0 ? l : 0) - l * xx[i] + log1p_unit(e);
        }
        if (d)
          for (int i = 0; i < m; i++) {
            float l = yy[i], e = kn_exp_neg(-fabsf(l)), r = 1.0f / (1.0f + e);
            float sg = l >= 0 ? r : e * r;
            d[i0 + i] += g * (sg - xx[i]);
          }
      } else {
        for (int i = 0; i < m; i++) {
          float r = yy[i] - xx[i];
          t[i] = r * r;
          if (d) d[i0 + i] += g * 2.0f * r;
        }
      }
      int i = 0;
      for (; i + 16 <= m; i += 16)
        for (int q = 0; q < 16; q++) part[q] += (double)t[i + q];
      for (; i < m; i++) part[i % 16] += (double)t[i];
    }
    double acc = 0;
    for (int q = 0; q < 16; q++) acc += part[q];
    j->per[b] = acc;
  }
}

static double loss_run(kn_pool *p, float *d, double *per, const float *y, const float *x, int B,
                       long n, float scale, int gauss) {
  double stack_per[256];
  double *pp = per ? per : (B <= 256 ? stack_per : NULL);
  KN_ASSERT(pp); /* callers with B > 256 pass `per` */
  loss_job j = {d, pp, y, x, B, gauss, n, scale};
  if ((long)B * n < PAR_MIN) loss_task(&j, 0, 1);
  else kn_pool_run(p, loss_task, &j);
  double s = 0;
  for (int b = 0; b < B; b++) s += pp[b];
  return s / B;
}

double kn_bernoulli_loss(kn_pool *p, float *dlogits, double *per, const float *logits,
                         const float *x, int B, long n, float scale) {
  return loss_run(p, dlogits, per, logits, x, B, n, scale, 0);
}

double kn_gaussian_loss(kn_pool *p, float *dmu, double *per, const float *mu, const float *x,
                        int B, long n, float scale) {
  return loss_run(p, dmu, per, mu, x, B, n, scale, 1);
}

double kn_gauss_kl(float *dmu, float *dlv, double *kl_dim, const float *mu, const float *lv,
                   int B, int Z, float scale) {
  double total = 0;
  float g = scale / (float)B;
  if (kl_dim) memset(kl_dim, 0, sizeof(double) * (size_t)Z);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Z; k++) {
      size_t i = (size_t)b * Z + k;
      float m = mu[i], l = lv[i], e = expf(l);
      double kl = 0.5 * ((double)m * m + (double)e - (double)l - 1.0);
      total += kl;
      if (kl_dim) kl_dim[k] += kl / B;
      if (dmu) dmu[i] += g * m;
      if (dlv) dlv[i] += g * 0.5f * (e - 1.0f);
    }
  return total / B;
}

void kn_reparam_forward(float *z, const float *mu, const float *lv, const float *eps, size_t n) {
  for (size_t i = 0; i < n; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * eps[i];
}

void kn_reparam_backward(float *dmu, float *dlv, const float *dz, const float *lv,
                         const float *eps, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (dmu) dmu[i] += dz[i];
    if (dlv) dlv[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * lv[i]);
  }
}

/* ---- Adam -------------------------------------------------------------------------------- */

typedef struct {
  kn_adam *a;
  float *p;
  const float *g;
  float step_size, bc2_sqrt;
} adam_job;

static void adam_task(void *ctx, int tid, int nt) {
  adam_job *j = ctx;
  kn_adam *a = j->a;
  long lo, hi;
  kn_split((long)((a->n + 15) / 16), tid, nt, &lo, &hi); /* 64-byte aligned slices */
  lo *= 16;
  hi = hi * 16 < (long)a->n ? hi * 16 : (long)a->n;
  /* scalars as PyTorch forms them: Python doubles, cast to float by the kernels */
  const float b1 = (float)a->beta1, b2 = (float)a->beta2, c1 = (float)(1.0 - a->beta1),
              c2 = (float)(1.0 - a->beta2), eps = (float)a->eps, nss = -j->step_size,
              bc = j->bc2_sqrt;
  float *restrict pp = j->p, *restrict m = a->m, *restrict v = a->v;
  const float *restrict g = j->g;
  for (long i = lo; i < hi; i++) {
    /* operation order as torch/optim/adam.py _single_tensor_adam (1.13): mul_ then add_,
     * mul_ then addcmul_, denom = sqrt(v) / bc2_sqrt + eps, addcdiv_ = p + (value * m) / denom */
    m[i] = m[i] * b1 + c1 * g[i];
    v[i] = v[i] * b2 + c2 * g[i] * g[i];
    float denom = sqrtf(v[i]) / bc + eps;
    pp[i] = pp[i] + (nss * m[i]) / denom;
  }
}

void kn_adam_step(kn_pool *p, kn_adam *a, float *param, const float *grad) {
  a->t++;
  double bc1 = 1.0 - pow((double)a->beta1, (double)a->t);
  double bc2 = 1.0 - pow((double)a->beta2, (double)a->t);
  adam_job j = {a, param + a->off, grad + a->off, (float)(a->lr / bc1), (float)sqrt(bc2)};
  /* (step_size stays a double-computed value cast once, as PyTorch passes -step_size) */
  if (a->n < PAR_MIN) adam_task(&j, 0, 1);
  else kn_pool_run(p, adam_task, &j);
}
