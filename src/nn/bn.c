/* bn.c: batch normalisation as torch.nn.BatchNorm1d/2d (affine, track_running_stats).
 * Statistics are accumulated in double per channel; threads split channels, so each owns its
 * outputs. The layout is given by strides: element (c, m) is x[c*cs + m*ms]. */
#include <math.h>

#include "nn/nn.h"

typedef struct {
  float *y, *dx, *dgamma, *dbeta, *mean, *invstd, *rm, *rv;
  const float *x, *dy, *gamma, *beta, *cmean, *cinvstd;
  int training, C;
  float momentum, eps;
  long M, cs, ms;
} bn_job;

static void bn_fwd_task(void *ctx, int tid, int nt) {
  bn_job *j = ctx;
  long lo, hi;
  kn_split(j->C, tid, nt, &lo, &hi);
  for (long c = lo; c < hi; c++) {
    const float *x = j->x + c * j->cs;
    float *y = j->y + c * j->cs;
    float mu, is;
    if (j->training) {
      double s = 0, s2 = 0;
      for (long m = 0; m < j->M; m++) s += x[m * j->ms];
      double mean = s / (double)j->M;
      for (long m = 0; m < j->M; m++) {
        double d = x[m * j->ms] - mean;
        s2 += d * d;
      }
      double var = s2 / (double)j->M; /* biased, for normalising */
      mu = (float)mean;
      is = (float)(1.0 / sqrt(var + (double)j->eps));
      j->mean[c] = mu;
      j->invstd[c] = is;
      if (j->rm) {
        double unbiased = j->M > 1 ? s2 / (double)(j->M - 1) : var;
        j->rm[c] = (1.0f - j->momentum) * j->rm[c] + j->momentum * (float)mean;
        j->rv[c] = (1.0f - j->momentum) * j->rv[c] + j->momentum * (float)unbiased;
      }
    } else {
      mu = j->rm[c];
      is = 1.0f / sqrtf(j->rv[c] + j->eps);
    }
    float g = j->gamma ? j->gamma[c] : 1.0f, b = j->beta ? j->beta[c] : 0.0f;
    for (long m = 0; m < j->M; m++) y[m * j->ms] = (x[m * j->ms] - mu) * is * g + b;
  }
}

void kn_bn_forward(kn_pool *p, float *y, const float *x, const float *gamma, const float *beta,
                   float *mean, float *invstd, float *run_mean, float *run_var, int training,
                   float momentum, float eps, int C, long M, long cs, long ms) {
  bn_job j = {.y = y, .x = x, .gamma = gamma, .beta = beta, .mean = mean, .invstd = invstd,
              .rm = run_mean, .rv = run_var, .training = training, .momentum = momentum,
              .eps = eps, .C = C, .M = M, .cs = cs, .ms = ms};
  if ((long)C * M < 32768) bn_fwd_task(&j, 0, 1);
  else kn_pool_run(p, bn_fwd_task, &j);
}

static void bn_bwd_task(void *ctx, int tid, int nt) {
  bn_job *j = ctx;
  long lo, hi;
  kn_split(j->C, tid, nt, &lo, &hi);
  for (long c = lo; c < hi; c++) {
    const float *x = j->x + c * j->cs, *dy = j->dy + c * j->cs;
    float mu = j->cmean[c], is = j->cinvstd[c];
    double sdy = 0, sdyx = 0;
    for (long m = 0; m < j->M; m++) {
      double d = dy[m * j->ms];
      sdy += d;
      sdyx += d * (double)((x[m * j->ms] - mu) * is);
    }
    if (j->dbeta) j->dbeta[c] += (float)sdy;
    if (j->dgamma) j->dgamma[c] += (float)sdyx;
    if (j->dx) {
      /* dx = gamma * invstd / M * (M dy - sum dy - xhat * sum dy xhat) */
      float g = j->gamma ? j->gamma[c] : 1.0f;
      float k = g * is / (float)j->M, a = (float)sdy, b = (float)sdyx;
      float *dx = j->dx + c * j->cs;
      for (long m = 0; m < j->M; m++) {
        float xh = (x[m * j->ms] - mu) * is;
        dx[m * j->ms] += k * ((float)j->M * dy[m * j->ms] - a - xh * b);
      }
    }
  }
}

void kn_bn_backward(kn_pool *p, float *dx, float *dgamma, float *dbeta, const float *dy,
                    const float *x, const float *gamma, const float *mean, const float *invstd,
                    int C, long M, long cs, long ms) {
  bn_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .dy = dy, .x = x, .gamma = gamma,
              .cmean = mean, .cinvstd = invstd, .C = C, .M = M, .cs = cs, .ms = ms};
  if ((long)C * M < 32768) bn_bwd_task(&j, 0, 1);
  else kn_pool_run(p, bn_bwd_task, &j);
}
