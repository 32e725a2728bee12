/* dci.c: disentanglement, completeness and informativeness of Eastwood & Williams as dci.py
 * computes them: R (D,K) = |feature importances| of one gradient-boosted classifier per factor
 * (gbt.c) trained on the train rows;
 *   disentanglement = sum_j rho_j (1 - H_K(R[j,:] + 1e-11)),  rho_j = sum_k R[j,k] / sum R
 *   completeness    = sum_k rho_k (1 - H_D(R[:,k] + 1e-11)),  rho_k = sum_j R[j,k] / sum R
 * (H_b: entropy in base b of the normalised vector; all-zero R weights every code equally);
 * informativeness_train/test: the reference's values, which are mean classification
 * ACCURACIES (not the error E&W define); error_train/test = 1 - those. */
#include <math.h>
#include <stdlib.h>

#include "metrics/metrics.h"

/* 1 - entropy(v + 1e-11, base) of n values with stride s (scipy.stats.entropy). */
static double one_minus_entropy(const double *v, int n, int s, int base) {
  double tot = 0, h = 0;
  for (int i = 0; i < n; i++) tot += v[(size_t)i * s] + 1e-11;
  for (int i = 0; i < n; i++) {
    double p = (v[(size_t)i * s] + 1e-11) / tot;
    if (p > 0) h -= p * log(p);
  }
  return 1.0 - h / log((double)base);
}

static knobs_status stage_progress(void *ctx, double done, double total) {
  return kn_progress(ctx, "dci", done, total);
}

knobs_status kn_dci(const kn_mctx *c, cJSON *out) {
  int D = c->D, K = c->K;
  const kn_rows *tr = &c->train, *te = &c->test;
  double *R = malloc(sizeof(double) * (size_t)D * K), *atr = malloc(sizeof(double) * (size_t)K);
  double *ate = malloc(sizeof(double) * (size_t)K), *pc = malloc(sizeof(double) * (size_t)D);
  double *pf = malloc(sizeof(double) * (size_t)K);
  knobs_status s = KNOBS_OK;
  if (!R || !atr || !ate || !pc || !pf) {
    s = kn_err(KNOBS_ERR_NOMEM, "dci: cannot allocate");
    goto done;
  }
  kn_gbt_opts go = {.stages = c->o->gbt_stages, .depth = c->o->gbt_depth, .learning_rate = c->o->gbt_learning_rate};
  kn_gbt_job job = {.pool = c->pool, .o = &go, .Xtr = tr->z, .ytr = tr->y, .Xte = te->z, .yte = te->y,
                    .n = tr->n, .m = te->n, .D = D, .K = K, .ncls = c->ncls, .seed = c->o->seed,
                    .stream = c->stream, .importance = R, .acc_train = atr, .acc_test = ate,
                    .progress = stage_progress, .progress_ctx = (void *)c};
  s = kn_gbt_fit(&job);
  if (s) goto done;
  double tot = 0;
  for (int q = 0; q < D * K; q++) tot += R[q];
  double dis = 0, com = 0, itr = 0, ite = 0;
  for (int j = 0; j < D; j++) {
    pc[j] = one_minus_entropy(R + (size_t)j * K, K, 1, K);
    double rs = 0;
    for (int k = 0; k < K; k++) rs += tot > 0 ? R[(size_t)j * K + k] : 1.0;
    dis += pc[j] * rs / (tot > 0 ? tot : (double)D * K);
  }
  for (int k = 0; k < K; k++) {
    pf[k] = one_minus_entropy(R + k, D, K, D);
    double cs = 0;
    for (int j = 0; j < D; j++) cs += tot > 0 ? R[(size_t)j * K + k] : 1.0;
    com += pf[k] * cs / (tot > 0 ? tot : (double)D * K);
    itr += atr[k];
    ite += ate[k];
  }
  itr /= K;
  ite /= K;
  kn_json_num(out, "disentanglement", dis);
  kn_json_num(out, "completeness", com);
  kn_json_num(out, "informativeness_train", itr);
  kn_json_num(out, "informativeness_test", ite);
  kn_json_num(out, "error_train", 1 - itr);
  kn_json_num(out, "error_test", 1 - ite);
  kn_json_vec(out, "per_code_disentanglement", pc, D);
  kn_json_vec(out, "per_factor_completeness", pf, K);
  kn_json_vec(out, "accuracy_train", atr, K);
  kn_json_vec(out, "accuracy_test", ate, K);
  kn_json_mat(out, "importance_matrix", R, D, K);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_train", tr->n);
  kn_json_num(p, "num_test", te->n);
  kn_json_num(p, "stages", go.stages);
  kn_json_num(p, "max_depth", go.depth);
  kn_json_num(p, "learning_rate", go.learning_rate);
done:
  free(R), free(atr), free(ate), free(pc), free(pf);
  return s;
}
