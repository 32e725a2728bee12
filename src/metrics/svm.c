/* svm.c: the SAP score (sap_score.py) and the linear SVM it trains.
 *   score[j,k] = test accuracy of LinearSVC(C=0.01, class_weight="balanced") trained on the
 *                single code z_j to predict factor k (discrete factors, the study's setting),
 *                or cov(z_j, v_k)^2 / (var z_j var v_k) on the train rows (continuous);
 *   SAP = mean over factors of the gap between the two largest scores over codes.
 * The SVM is liblinear's dual coordinate descent for the L2-regularised squared hinge
 * (L2R_L2LOSS_SVC_DUAL, Hsieh et al. 2008) as scikit-learn's copy runs it: features (z, 1),
 * the bias regularised like a weight, D_ii = 1/(2 C_i), shrinking on the projected gradient,
 * stop when its spread over a full pass is <= tol (1e-4), at most 1000 passes; one vs rest
 * with C_i = C w_c for the class's rows and C for the rest (two classes: C w_1 and C w_0).
 * Written here rather than called from liblinear because liblinear draws its coordinate order
 * from the C library's global rand(), which makes concurrent calls non-deterministic; ours
 * draws from our seed, one stream per factor, so permuting the codes permutes the scores. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

/* per row: the feature, 1/Q_ii (Q_ii = D_ii + x^2 + 1), D_ii = 1/(2 C_i), the label */
typedef struct {
  double x, qinv, diag, y;
} svm_row;

/* A uniform index in [0, n) from 32 random bits (multiply-shift; the bias, below n / 2^32, is
 * irrelevant to a coordinate order). */
static inline int rand_below(kn_rng *r, uint64_t *bits, int *have, int n) {
  if (!*have) {
    *bits = kn_rng_u64(r);
    *have = 2;
  }
  uint32_t u = (uint32_t)*bits;
  *bits >>= 32;
  (*have)--;
  return (int)(((uint64_t)u * (uint32_t)n) >> 32);
}

/* One binary problem over rows (x_i, y_i = +1/-1, C_i). Writes w[0] (weight) and w[1] (bias);
 * returns the passes taken. index, alpha: scratch of l. */
static int solve_binary(const svm_row *rows, int l, double eps, int max_iter, kn_rng *rng, int *index,
                        double *alpha, double *w) {
  double w0 = 0, w1 = 0;
  /* the upper bound of alpha is infinite for the squared hinge, so liblinear's shrinking test
   * at the upper bound (and its PGmin_old) never applies */
  double pgmax_old = INFINITY;
  int active = l, iter = 0, have = 0;
  uint64_t bits = 0;
  for (int i = 0; i < l; i++) {
    index[i] = i;
    alpha[i] = 0;
  }
  while (iter < max_iter) {
    double pgmax = -INFINITY, pgmin = INFINITY;
    for (int i = 0; i < active; i++) {
      int j = i + rand_below(rng, &bits, &have, active - i);
      int t = index[i];
      index[i] = index[j];
      index[j] = t;
    }
    for (int s = 0; s < active; s++) {
      int i = index[s];
      const svm_row *rw = &rows[i];
      double G = (w0 * rw->x + w1) * rw->y - 1 + alpha[i] * rw->diag;
      double PG = 0;
      if (alpha[i] == 0) {
        if (G > pgmax_old) {
          active--;
          index[s] = index[active];
          index[active] = i;
          s--;
          continue;
        } else if (G < 0) {
          PG = G;
        }
      } else {
        PG = G;
      }
      if (PG > pgmax) pgmax = PG;
      if (PG < pgmin) pgmin = PG;
      if (fabs(PG) > 1e-12) {
        double old = alpha[i], a = old - G * rw->qinv;
        alpha[i] = a > 0 ? a : 0.0;
        double d = (alpha[i] - old) * rw->y;
        w0 += d * rw->x;
        w1 += d;
      }
    }
    iter++;
    if (pgmax - pgmin <= eps) {
      if (active == l) break;
      active = l;
      pgmax_old = INFINITY;
      continue;
    }
    pgmax_old = pgmax <= 0 ? INFINITY : pgmax;
  }
  w[0] = w0;
  w[1] = w1;
  return iter;
}

int kn_linear_svc(const double *x, const int32_t *y, int n, int ncls, double C, int balanced,
                  double eps, int max_iter, kn_rng *rng, double *w) {
  int *index = malloc(sizeof(int) * (size_t)n);
  double *alpha = malloc(sizeof(double) * (size_t)n);
  svm_row *rows = malloc(sizeof(svm_row) * (size_t)n);
  int64_t cnt[KN_MAX_CLASSES] = {0};
  if (!index || !alpha || !rows) {
    free(index), free(alpha), free(rows);
    return -1;
  }
  for (int i = 0; i < n; i++) cnt[y[i]]++;
  double cw[KN_MAX_CLASSES];
  for (int c = 0; c < ncls; c++) cw[c] = balanced && cnt[c] ? (double)n / ((double)ncls * (double)cnt[c]) : 1.0;
  int most = 0;
  for (int c = 0; c < (ncls == 2 ? 1 : ncls); c++) {
    for (int i = 0; i < n; i++) {
      /* two classes: class 1 positive, C w_1 and C w_0; more: class c vs rest, C w_c and C */
      int pos = ncls == 2 ? y[i] == 1 : y[i] == c;
      double Ci = ncls == 2 ? C * cw[y[i]] : pos ? C * cw[c] : C, diag = 0.5 / Ci;
      rows[i] = (svm_row){x[i], 1.0 / (diag + x[i] * x[i] + 1.0), diag, pos ? 1.0 : -1.0};
    }
    int it = solve_binary(rows, n, eps, max_iter, rng, index, alpha, w + 2 * c);
    if (it > most) most = it;
  }
  free(index), free(alpha), free(rows);
  return most;
}

int kn_linear_svc_predict(const double *w, int ncls, double x) {
  if (ncls == 2) return x * w[0] + w[1] > 0;
  int arg = 0;
  double best = x * w[0] + w[1];
  for (int c = 1; c < ncls; c++) {
    double v = x * w[2 * c] + w[2 * c + 1];
    if (v > best) {
      best = v;
      arg = c;
    }
  }
  return arg;
}

typedef struct {
  const kn_mctx *c;
  double *score;   /* (D,K) */
  int *iters;      /* (D,K) */
  int failed;
} sap_ctx;

static void sap_task(void *ctx, int tid, int nth) {
  sap_ctx *g = ctx;
  const kn_mctx *c = g->c;
  int D = c->D, K = c->K, n = c->train.n, m = c->test.n;
  long lo, hi;
  kn_split((long)D * K, tid, nth, &lo, &hi);
  double *x = malloc(sizeof(double) * (size_t)n);
  int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
  double *w = malloc(sizeof(double) * 2 * KN_MAX_CLASSES);
  if (!x || !y || !w) {
    g->failed = 1;
    free(x), free(y), free(w);
    return;
  }
  for (long q = lo; q < hi; q++) {
    int j = (int)(q / K), k = (int)(q % K);
    /* the classes present in train, in sorted order (scikit-learn's classes_) */
    int map[KN_MAX_CLASSES], nc = 0;
    for (int v = 0; v < c->ncls[k]; v++) map[v] = -1;
    for (int i = 0; i < n; i++) map[c->train.y[(size_t)i * K + k]] = 0;
    for (int v = 0; v < c->ncls[k]; v++)
      if (map[v] == 0) map[v] = nc++;
    for (int i = 0; i < n; i++) {
      x[i] = c->train.z[(size_t)i * D + j];
      y[i] = map[c->train.y[(size_t)i * K + k]];
    }
    kn_rng rng;
    kn_rng_seed(&rng, c->o->seed, c->stream + (uint64_t)k); /* per factor only: see the header */
    int it = kn_linear_svc(x, y, n, nc, c->o->sap_C, 1, 1e-4, 1000, &rng, w);
    if (it < 0) {
      g->failed = 1;
      break;
    }
    g->iters[q] = it;
    int ok = 0;
    for (int i = 0; i < m; i++) {
      int t = c->test.y[(size_t)i * K + k];
      ok += kn_linear_svc_predict(w, nc, c->test.z[(size_t)i * D + j]) == map[t] && map[t] >= 0;
    }
    g->score[q] = m ? (double)ok / m : 0.0;
  }
  free(x), free(y), free(w);
}

static void continuous_scores(const kn_mctx *c, double *score) {
  int D = c->D, K = c->K, n = c->train.n;
  for (int j = 0; j < D; j++)
    for (int k = 0; k < K; k++) {
      double mz = 0, my = 0;
      for (int i = 0; i < n; i++) {
        mz += c->train.z[(size_t)i * D + j];
        my += c->train.yv[(size_t)i * K + k];
      }
      mz /= n, my /= n;
      double czy = 0, czz = 0, cyy = 0;
      for (int i = 0; i < n; i++) {
        double a = c->train.z[(size_t)i * D + j] - mz, b = c->train.yv[(size_t)i * K + k] - my;
        czy += a * b, czz += a * a, cyy += b * b;
      }
      czy /= n - 1, czz /= n - 1, cyy /= n - 1;
      score[(size_t)j * K + k] = czz > 1e-12 ? czy * czy / (czz * cyy) : 0.0;
    }
}

knobs_status kn_sap(const kn_mctx *c, cJSON *out) {
  int D = c->D, K = c->K;
  double *score = calloc((size_t)D * K, sizeof(double)), *gap = malloc(sizeof(double) * (size_t)K);
  int *iters = calloc((size_t)D * K, sizeof(int));
  knobs_status s = KNOBS_OK;
  if (!score || !gap || !iters) {
    s = kn_err(KNOBS_ERR_NOMEM, "sap: cannot allocate");
    goto done;
  }
  if (c->o->sap_continuous) {
    if (c->train.n < 2) {
      s = kn_err(KNOBS_ERR_DATA, "sap: the continuous scores need at least 2 training rows");
      goto done;
    }
    continuous_scores(c, score);
  } else {
    sap_ctx g = {c, score, iters, 0};
    kn_pool_run(c->pool, sap_task, &g);
    if (g.failed) {
      s = kn_err(KNOBS_ERR_NOMEM, "sap: cannot allocate the SVM's buffers");
      goto done;
    }
  }
  double sum = 0;
  int maxit = 0;
  for (int k = 0; k < K; k++) {
    double m1 = -INFINITY, m2 = -INFINITY;
    for (int j = 0; j < D; j++) {
      double v = score[(size_t)j * K + k];
      if (v > m1) {
        m2 = m1;
        m1 = v;
      } else if (v > m2) {
        m2 = v;
      }
      if (iters[(size_t)j * K + k] > maxit) maxit = iters[(size_t)j * K + k];
    }
    gap[k] = m1 - m2;
    sum += gap[k];
  }
  kn_json_num(out, "SAP_score", sum / K);
  kn_json_vec(out, "per_factor", gap, K);
  kn_json_mat(out, "score_matrix", score, D, K);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_train", c->train.n);
  kn_json_num(p, "num_test", c->test.n);
  kn_json_num(p, "continuous_factors", c->o->sap_continuous);
  if (!c->o->sap_continuous) {
    kn_json_num(p, "C", c->o->sap_C);
    kn_json_num(p, "tol", 1e-4);
    kn_json_num(p, "max_iter", 1000);
    kn_json_num(out, "svm_max_passes", maxit);
  }
done:
  free(score), free(gap), free(iters);
  return s;
}
