/* density.h: what a fitted plausibility penalty (density.c) holds, for the tests and for
 * reports; the public API is knobs_penalty_* in knobs.h. */
#ifndef KN_DENSITY_H
#define KN_DENSITY_H
#include "core/core.h"

#define KN_GMM_MAX_K 1024 /* the largest gmm_k (eval keeps one double per component on the stack) */

/* A fitted GMM: K components kept (<= gmm_k: see density.c on dropped components), weights
 * w (K), means mu (K,Z), variances var (K,Z) (the floor included), the EM iterations run, 1 if
 * the gain fell below gmm_tol before gmm_iter, and the mean log-likelihood of the training
 * codes at the last E-step. The arrays belong to the penalty. */
typedef struct {
  int K, Z, iters, converged;
  const double *w, *mu, *var;
  double ll;
} kn_gmm_view;
/* 1 and *v filled for a gmm penalty, else 0. */
int kn_penalty_gmm_view(const knobs_penalty *p, kn_gmm_view *v);
/* 1 and the box's bounds lo, hi (Z each, the q and 1 - q quantiles) for a box penalty, else 0. */
int kn_penalty_box_view(const knobs_penalty *p, const double **lo, const double **hi);

/* numpy.quantile(s, q) (method 'linear', numpy 1.24's arithmetic) of sorted s (n >= 1). */
double kn_quantile_sorted(const double *s, int n, double q);

#endif
