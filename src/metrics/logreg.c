/* logreg.c: logistic regression as scikit-learn's LogisticRegression() defines the model
 * (L2 penalty 1/(2C) ||W||^2 on the weights, not the intercepts; summed log-loss; binary:
 * one weight vector with class 1 positive; more classes: multinomial softmax), ROC AUC, and
 * the explicitness score of Ridgeway & Mozer (modularity_explicitness.py):
 *   codes standardised with the train rows' mean and std (ddof 0); per factor a logistic
 *   regression on all codes; explicitness = one-vs-rest ROC AUC of its class probabilities,
 *   averaged over classes (macro) and then over factors, on train and on test rows.
 * The solver is L-BFGS run to a tight tolerance, not scikit-learn's lbfgs stopped after 100
 * iterations: where that stops early (separable or badly scaled data) the two differ; the
 * objective is the same (docs/metrics.md). A code with zero spread on the train rows is
 * standardised to 0 (the reference divides by zero and scikit-learn refuses the NaN). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

typedef struct {
  const double *X;
  const int32_t *y;
  int n, d, ncls, nw, P; /* nw weight rows (1 or ncls), P = nw * (d + 1) parameters */
  double invC;
  const double *W;
  double *Z;             /* (n, nw) scores, then residuals p - y (multinomial) */
} lr_prob;

/* loss and gradient of rows [lo, hi) into partial[0] (loss) and partial[1..P] */
static void lr_chunk(void *ctx, long lo, long hi, double *partial) {
  const lr_prob *p = ctx;
  int d = p->d, nw = p->nw;
  double *g = partial + 1, z[KN_MAX_CLASSES], loss = 0;
  memset(partial, 0, sizeof(double) * (size_t)(p->P + 1));
  if (nw > 1) {
    /* multinomial: Z = X W^T + b (BLAS), softmax, R = P - Y, G = R^T X (BLAS) */
    int h = (int)(hi - lo);
    const double *X = p->X + (size_t)lo * d;
    double *Z = p->Z + (size_t)lo * nw;
    kn_dgemm(0, 1, h, nw, d, 1.0, X, d, p->W, d + 1, 0.0, Z, nw);
    for (int i = 0; i < h; i++) {
      double *zi = Z + (size_t)i * nw, mx = -INFINITY;
      for (int c = 0; c < nw; c++) {
        zi[c] += p->W[(size_t)c * (d + 1) + d];
        if (zi[c] > mx) mx = zi[c];
      }
      int yi = p->y[lo + i];
      double zy = zi[yi], se = 0;
      int c = 0;
      for (; c + 8 <= nw; c += 8) {
        kn_v8d v;
        memcpy(&v, zi + c, sizeof v);
        v -= mx;
        kn_exp8(&v);
        memcpy(zi + c, &v, sizeof v);
      }
      for (; c < nw; c++) zi[c] = kn_exp(zi[c] - mx);
      for (c = 0; c < nw; c++) se += zi[c];
      loss += mx + log(se) - zy;
      double inv = 1.0 / se;
      for (c = 0; c < nw; c++) {
        zi[c] = zi[c] * inv - (c == yi);
        g[(size_t)c * (d + 1) + d] += zi[c];
      }
    }
    kn_dgemm(1, 0, nw, d, h, 1.0, Z, nw, X, d, 1.0, g, d + 1);
    partial[0] = loss;
    return;
  }
  for (long i = lo; i < hi; i++) {
    const double *x = p->X + (size_t)i * d;
    for (int c = 0; c < nw; c++) {
      const double *w = p->W + (size_t)c * (d + 1);
      double s = w[d];
      for (int j = 0; j < d; j++) s += w[j] * x[j];
      z[c] = s;
    }
    if (nw == 1) {
      double sgn = p->y[i] == 1 ? 1.0 : -1.0, t = sgn * z[0];
      /* log(1 + exp(-t)) and its derivative, stable both ways */
      loss += t > 0 ? log1p(exp(-t)) : -t + log1p(exp(t));
      double sig = t > 0 ? exp(-t) / (1 + exp(-t)) : 1 / (1 + exp(t)); /* sigma(-t) */
      double coef = -sgn * sig;
      for (int j = 0; j < d; j++) g[j] += coef * x[j];
      g[d] += coef;
    }
  }
  partial[0] = loss;
}

#define CHUNKS 32

static double lr_eval(kn_pool *pool, lr_prob *p, const double *W, double *g, double *partial) {
  p->W = W;
  int chunks = p->n < CHUNKS ? p->n : CHUNKS;
  kn_parallel_chunks(pool, p->n, chunks, p->P + 1, lr_chunk, p, partial);
  double f = 0;
  memset(g, 0, sizeof(double) * (size_t)p->P);
  for (int q = 0; q < chunks; q++) {
    const double *pt = partial + (size_t)q * (p->P + 1);
    f += pt[0];
    for (int j = 0; j < p->P; j++) g[j] += pt[1 + j];
  }
  for (int c = 0; c < p->nw; c++)
    for (int j = 0; j < p->d; j++) {
      double w = W[(size_t)c * (p->d + 1) + j];
      f += 0.5 * p->invC * w * w;
      g[(size_t)c * (p->d + 1) + j] += p->invC * w;
    }
  return f;
}

static double dot(const double *a, const double *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

int kn_logreg_fit(kn_pool *pool, const double *X, const int32_t *y, int n, int d, int ncls,
                  double C, double *W) {
  KN_ASSERT(ncls >= 2 && ncls <= KN_MAX_CLASSES && n >= 1);
  enum { M = 10 };
  lr_prob p = {X, y, n, d, ncls, ncls == 2 ? 1 : ncls, 0, 1.0 / C, NULL, NULL};
  p.P = p.nw * (d + 1);
  int P = p.P;
  double *buf = malloc(sizeof(double) * ((size_t)P * (2 * M + 5) + (size_t)CHUNKS * (P + 1)));
  p.Z = p.nw > 1 ? malloc(sizeof(double) * (size_t)n * p.nw) : NULL;
  /* OpenBLAS single-threaded (the chunks are our threads); loaded already by the pool */
  if (!buf || (p.nw > 1 && !p.Z) || kn_blas_init()) {
    free(buf), free(p.Z);
    return -1;
  }
  double *g = buf, *gn = g + P, *dir = gn + P, *Wn = dir + P, *tmp = Wn + P;
  double *S = tmp + P, *Y = S + (size_t)M * P, *partial = Y + (size_t)M * P;
  double rho[M], al[M];
  memset(W, 0, sizeof(double) * (size_t)P);
  double f = lr_eval(pool, &p, W, g, partial);
  int hist = 0, head = 0, it, stall = 0;
  double gscale = 0;
  for (int j = 0; j < P; j++) gscale = fmax(gscale, fabs(g[j]));
  /* stop when the largest gradient component is 1e-6 of the starting one: the probabilities
   * then agree with a fully converged fit to a few 1e-6 (tests/test_metrics.c checks 1e-5),
   * closer than scikit-learn's own lbfgs gets (it stops on scipy's default ftol: 5.7e-5 off
   * on the reference test's multinomial problem) */
  double gtol = 1e-6 * (gscale > 1 ? gscale : 1);
  for (it = 0; it < 5000; it++) {
    double gmax = 0;
    for (int j = 0; j < P; j++) gmax = fmax(gmax, fabs(g[j]));
    if (gmax <= gtol) break;
    /* two-loop recursion: dir = -H g */
    for (int j = 0; j < P; j++) dir[j] = -g[j];
    for (int q = 0; q < hist; q++) {
      int h = (head - 1 - q + M) % M;
      al[h] = rho[h] * dot(S + (size_t)h * P, dir, P);
      for (int j = 0; j < P; j++) dir[j] -= al[h] * Y[(size_t)h * P + j];
    }
    if (hist) {
      int h = (head - 1 + M) % M;
      double gam = dot(S + (size_t)h * P, Y + (size_t)h * P, P) / dot(Y + (size_t)h * P, Y + (size_t)h * P, P);
      for (int j = 0; j < P; j++) dir[j] *= gam;
    } else {
      double gn2 = sqrt(dot(g, g, P));
      for (int j = 0; j < P; j++) dir[j] /= gn2 > 1 ? gn2 : 1;
    }
    for (int q = hist - 1; q >= 0; q--) {
      int h = (head - 1 - q + M) % M;
      double be = rho[h] * dot(Y + (size_t)h * P, dir, P);
      for (int j = 0; j < P; j++) dir[j] += S[(size_t)h * P + j] * (al[h] - be);
    }
    double gd = dot(g, dir, P);
    if (!(gd < 0)) { /* not a descent direction: restart from steepest descent */
      hist = 0;
      for (int j = 0; j < P; j++) dir[j] = -g[j];
      gd = dot(g, dir, P);
    }
    /* backtracking line search (Armijo) */
    double step = 1, fn = 0;
    int ok = 0;
    for (int ls = 0; ls < 60; ls++) {
      for (int j = 0; j < P; j++) Wn[j] = W[j] + step * dir[j];
      fn = lr_eval(pool, &p, Wn, gn, partial);
      if (fn <= f + 1e-4 * step * gd) {
        ok = 1;
        break;
      }
      step *= 0.5;
    }
    if (!ok) break;
    double ys = 0, yy = 0;
    for (int j = 0; j < P; j++) {
      double sj = Wn[j] - W[j], yj = gn[j] - g[j];
      S[(size_t)head * P + j] = sj;
      Y[(size_t)head * P + j] = yj;
      ys += sj * yj;
      yy += yj * yj;
    }
    if (ys > 1e-300 && yy > 0) {
      rho[head] = 1 / ys;
      head = (head + 1) % M;
      if (hist < M) hist++;
    }
    stall = (f - fn) <= 1e-16 * fabs(f) ? stall + 1 : 0;
    memcpy(W, Wn, sizeof(double) * (size_t)P);
    memcpy(g, gn, sizeof(double) * (size_t)P);
    f = fn;
    if (stall >= 5) break;
  }
  free(buf), free(p.Z);
  return it;
}

void kn_logreg_predict(const double *W, const double *X, int n, int d, int ncls, double *proba,
                       int32_t *pred) {
  for (int i = 0; i < n; i++) {
    const double *x = X + (size_t)i * d;
    double *pr = proba + (size_t)i * ncls;
    if (ncls == 2) {
      double z = W[d];
      for (int j = 0; j < d; j++) z += W[j] * x[j];
      pr[1] = 1 / (1 + exp(-z));
      pr[0] = 1 - pr[1];
      if (pred) pred[i] = z > 0;
      continue;
    }
    double mx = -INFINITY;
    int arg = 0;
    for (int c = 0; c < ncls; c++) {
      const double *w = W + (size_t)c * (d + 1);
      double z = w[d];
      for (int j = 0; j < d; j++) z += w[j] * x[j];
      pr[c] = z;
      if (z > mx) {
        mx = z;
        arg = c;
      }
    }
    double se = 0;
    for (int c = 0; c < ncls; c++) se += (pr[c] = exp(pr[c] - mx));
    for (int c = 0; c < ncls; c++) pr[c] /= se;
    if (pred) pred[i] = arg;
  }
}

double kn_roc_auc(const double *score, int stride, const uint8_t *y, int n, void *scratch) {
  int64_t npos = 0;
  for (int i = 0; i < n; i++) npos += y[i] != 0;
  int64_t nneg = n - npos;
  if (!npos || !nneg) return -1;
  kn_keyed *sp = scratch;
  for (int i = 0; i < n; i++) sp[i] = (kn_keyed){score[(size_t)i * stride], i};
  kn_keyed_sort(sp, n);
  /* Mann-Whitney U with average ranks for ties = the trapezoidal area under the ROC curve */
  double rank_pos = 0;
  for (int a = 0; a < n;) {
    int b = a;
    while (b + 1 < n && sp[b + 1].v == sp[a].v) b++;
    double r = 0.5 * (a + b) + 1; /* average 1-based rank */
    for (int t = a; t <= b; t++)
      if (y[sp[t].i]) rank_pos += r;
    a = b + 1;
  }
  return (rank_pos - (double)npos * (npos + 1) / 2.0) / ((double)npos * nneg);
}

/* macro one-vs-rest AUC over the classes with both positives and negatives among the rows */
static double macro_auc(const double *proba, const int32_t *y, int n, int ncls, uint8_t *ybin, void *idx) {
  double s = 0;
  int used = 0;
  for (int c = 0; c < ncls; c++) {
    for (int i = 0; i < n; i++) ybin[i] = y[i] == c;
    double a = kn_roc_auc(proba + c, ncls, ybin, n, idx);
    if (a < 0) continue;
    s += a;
    used++;
  }
  return used ? s / used : 0.5;
}

typedef struct {
  const kn_mctx *c;
  const double *Xtr, *Xte;
  int *order;          /* factors, most classes first */
  double *etr, *ete;
  int *iters;
  int failed;
} expl_job;

/* one thread fits its share of the factors, each serially (so the result does not depend on
 * the thread count): factors are dealt out largest first to the least loaded thread */
static void expl_task(void *ctx, int tid, int nth) {
  expl_job *j = ctx;
  const kn_mctx *c = j->c;
  int D = c->D, K = c->K, n = c->train.n, m = c->test.n;
  double load[1024] = {0};
  int owner[KN_MAX_K];
  for (int q = 0; q < K; q++) {
    int k = j->order[q], best = 0;
    for (int t = 1; t < nth && t < 1024; t++)
      if (load[t] < load[best]) best = t;
    owner[k] = best;
    load[best] += c->ncls[k] > 2 ? c->ncls[k] : 1;
  }
  int maxc = 2;
  for (int k = 0; k < K; k++) maxc = c->ncls[k] > maxc ? c->ncls[k] : maxc;
  size_t nm = (size_t)(n > m ? n : m);
  double *W = malloc(sizeof(double) * (size_t)maxc * (D + 1)), *proba = malloc(sizeof(double) * nm * (size_t)maxc);
  int32_t *ytr = malloc(sizeof(int32_t) * (size_t)n), *yte = malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
  uint8_t *ybin = malloc(nm);
  void *idx = malloc((sizeof(double) + sizeof(int) * 2) * nm);
  if (!W || !proba || !ytr || !yte || !ybin || !idx) j->failed = 1;
  for (int k = 0; k < K && !j->failed; k++) {
    if (owner[k] != tid) continue;
    int map[KN_MAX_CLASSES], nc = 0;
    for (int v = 0; v < c->ncls[k]; v++) map[v] = -1;
    for (int i = 0; i < n; i++) map[c->train.y[(size_t)i * K + k]] = 0;
    for (int v = 0; v < c->ncls[k]; v++)
      if (map[v] == 0) map[v] = nc++;
    for (int i = 0; i < n; i++) ytr[i] = map[c->train.y[(size_t)i * K + k]];
    for (int i = 0; i < m; i++) yte[i] = map[c->test.y[(size_t)i * K + k]];
    int it = kn_logreg_fit(NULL, j->Xtr, ytr, n, D, nc, c->o->logreg_C, W);
    if (it < 0) {
      j->failed = 1;
      break;
    }
    j->iters[k] = it;
    kn_logreg_predict(W, j->Xtr, n, D, nc, proba, NULL);
    j->etr[k] = macro_auc(proba, ytr, n, nc, ybin, idx);
    kn_logreg_predict(W, j->Xte, m, D, nc, proba, NULL);
    j->ete[k] = m ? macro_auc(proba, yte, m, nc, ybin, idx) : 0.5;
  }
  free(W), free(proba), free(ytr), free(yte), free(ybin), free(idx);
}

static int cmp_by_classes_desc(const void *a, const void *b, void *ctx) {
  const int *ncls = ctx;
  int x = *(const int *)a, y = *(const int *)b;
  if (ncls[x] != ncls[y]) return ncls[y] - ncls[x];
  return x - y;
}

knobs_status kn_explicitness(const kn_mctx *c, cJSON *out) {
  int D = c->D, K = c->K, n = c->train.n, m = c->test.n;
  double *Xtr = malloc(sizeof(double) * (size_t)n * D), *Xte = malloc(sizeof(double) * (size_t)(m ? m : 1) * D);
  double *mean = calloc((size_t)D, sizeof(double)), *sd = calloc((size_t)D, sizeof(double));
  double *etr = malloc(sizeof(double) * (size_t)K), *ete = malloc(sizeof(double) * (size_t)K);
  int *order = malloc(sizeof(int) * (size_t)K), *iters = calloc((size_t)K, sizeof(int));
  knobs_status s = KNOBS_OK;
  if (!Xtr || !Xte || !mean || !sd || !etr || !ete || !order || !iters) {
    s = kn_err(KNOBS_ERR_NOMEM, "explicitness: cannot allocate");
    goto done;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < D; j++) mean[j] += c->train.z[(size_t)i * D + j];
  for (int j = 0; j < D; j++) mean[j] /= n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < D; j++) {
      double t = c->train.z[(size_t)i * D + j] - mean[j];
      sd[j] += t * t;
    }
  for (int j = 0; j < D; j++) sd[j] = sqrt(sd[j] / n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < D; j++)
      Xtr[(size_t)i * D + j] = sd[j] > 0 ? (c->train.z[(size_t)i * D + j] - mean[j]) / sd[j] : 0.0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < D; j++)
      Xte[(size_t)i * D + j] = sd[j] > 0 ? (c->test.z[(size_t)i * D + j] - mean[j]) / sd[j] : 0.0;
  for (int k = 0; k < K; k++) order[k] = k;
  qsort_r(order, (size_t)K, sizeof(int), cmp_by_classes_desc, (void *)c->ncls);
  expl_job j = {c, Xtr, Xte, order, etr, ete, iters, 0};
  kn_pool_run(c->pool, expl_task, &j);
  if (j.failed) {
    s = kn_err(KNOBS_ERR_NOMEM, "explicitness: cannot allocate the solver");
    goto done;
  }
  int maxit = 0;
  double str = 0, ste = 0;
  for (int k = 0; k < K; k++) {
    str += etr[k];
    ste += ete[k];
    if (iters[k] > maxit) maxit = iters[k];
  }
  kn_json_num(out, "explicitness_score_train", str / K);
  kn_json_num(out, "explicitness_score_test", ste / K);
  kn_json_vec(out, "per_factor_train", etr, K);
  kn_json_vec(out, "per_factor_test", ete, K);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_train", n);
  kn_json_num(p, "num_test", m);
  kn_json_num(p, "C", c->o->logreg_C);
  kn_json_num(out, "solver_iterations", maxit);
done:
  free(Xtr), free(Xte), free(mean), free(sd), free(etr), free(ete), free(order), free(iters);
  return s;
}
