/* mcc.c: the metrics of continuous ground truth, and the pieces they stand on:
 *   correlations  Pearson (or Spearman: Pearson of average ranks, scipy.stats.spearmanr) between
 *                 every code dimension and every factor;
 *   assignment    the linear sum assignment problem (scipy.optimize.linear_sum_assignment), by
 *                 the Hungarian algorithm with potentials (shortest augmenting paths, O(r^2 c)
 *                 for r <= c; a wider-than-tall problem is solved on its transpose);
 *   mcc           the mean correlation coefficient (Hyvarinen & Morioka 2016; Khemakhem et al.
 *                 2020): factors matched one-to-one to code dimensions maximising sum |corr|,
 *                 score = sum of the matched |corr| / K; out of sample: matching and signs fitted
 *                 on the train rows, score = mean of sign * corr on the test rows;
 *   amari         the Amari index of P = W A (Amari, Cichocki & Yang 1996, normalised to [0,1]):
 *                 (1 / (2k(k-1))) [sum_i (sum_j |p_ij| / max_j |p_ij| - 1)
 *                                  + sum_j (sum_i |p_ij| / max_i |p_ij| - 1)].
 * The metric functions (kn_mcc, kn_amari) fill a result; the public knobs_* functions work on
 * plain buffers. It does not fit anything (ICA is ica.c) and does not discretise. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

/* ---- correlations ------------------------------------------------------------------------- */
/* Column c of x (n rows, stride s) as average 1-based ranks (ties share their mean rank, as
 * scipy.stats.rankdata) into r (n); t is scratch of n. */
static void rank_column(const double *x, int n, int s, kn_keyed *t, double *r) {
  for (int i = 0; i < n; i++) t[i] = (kn_keyed){x[(size_t)i * s], i};
  kn_ranks(t, n, r);
}

/* Checks shared by the public entry points: finite values, named by row and column. */
static knobs_status check_finite(const double *x, int n, int m, const char *what) {
  for (size_t q = 0; q < (size_t)n * m; q++)
    if (!isfinite(x[q]))
      return kn_err(KNOBS_ERR_DATA, "%s: row %zu, column %zu is %s", what, q / (size_t)m, q % (size_t)m,
                    isnan(x[q]) ? "NaN" : "infinite");
  return KNOBS_OK;
}

knobs_status knobs_correlations(const double *codes, const double *factors, int n, int D, int K, int spearman,
                                double *corr) {
  if (!codes || !factors || !corr || D < 1 || K < 1)
    return kn_err(KNOBS_ERR_ARG, "correlations: no codes or factors (D = %d, K = %d)", D, K);
  if (n < 2) return kn_err(KNOBS_ERR_ARG, "correlations: %d row%s; a correlation needs at least 2", n, n == 1 ? "" : "s");
  knobs_status s = check_finite(codes, n, D, "codes");
  if (!s) s = check_finite(factors, n, K, "factors");
  if (s) return s;
  int M = D + K;
  /* the columns, centred (ranks first for Spearman), as rows of x (M,n) */
  double *x = malloc(sizeof(double) * (size_t)M * n), *ss = malloc(sizeof(double) * (size_t)M);
  kn_keyed *t = spearman ? malloc(sizeof(kn_keyed) * (size_t)n) : NULL;
  if (!x || !ss || (spearman && !t)) {
    free(x), free(ss), free(t);
    return kn_err(KNOBS_ERR_NOMEM, "correlations: cannot allocate %d x %d values", M, n);
  }
  for (int c = 0; c < M; c++) {
    const double *src = c < D ? codes + c : factors + (c - D);
    int stride = c < D ? D : K;
    double *col = x + (size_t)c * n, m = 0, v = 0;
    if (spearman) rank_column(src, n, stride, t, col);
    else
      for (int i = 0; i < n; i++) col[i] = src[(size_t)i * stride];
    for (int i = 0; i < n; i++) m += col[i];
    m /= n;
    for (int i = 0; i < n; i++) col[i] -= m, v += col[i] * col[i];
    ss[c] = v;
  }
  for (int j = 0; j < D; j++)
    for (int k = 0; k < K; k++) {
      const double *a = x + (size_t)j * n, *b = x + (size_t)(D + k) * n;
      double sab = 0;
      for (int i = 0; i < n; i++) sab += a[i] * b[i];
      /* a constant column correlates with nothing: 0, not NaN; rounding may push |r| past 1 */
      double r = ss[j] > 0 && ss[D + k] > 0 ? sab / sqrt(ss[j] * ss[D + k]) : 0;
      corr[(size_t)j * K + k] = r > 1 ? 1 : r < -1 ? -1 : r;
    }
  free(x), free(ss), free(t);
  return KNOBS_OK;
}

/* ---- the linear sum assignment -------------------------------------------------------------- */
/* Minimum-cost assignment of every row of an (r,c) cost, r <= c, read as sign * cost[i*ld + j]
 * (or cost[j*ld + i] when transposed): the Hungarian algorithm with row and column potentials,
 * one shortest augmenting path per row (Kuhn-Munkres in Jonker-Volgenant form). col_of_row
 * (r) gets each row's column. `w` is scratch of 4 (c+1) + (r+1) doubles and ints. */
static void hungarian(const double *cost, int r, int c, int ld, int transposed, double sign, int *col_of_row,
                      double *w, int *iw) {
  double *u = w, *v = u + (r + 1), *minv = v + (c + 1);
  int *p = iw, *way = p + (c + 1), *used = way + (c + 1);
  for (int j = 0; j <= c; j++) v[j] = 0, p[j] = 0;
  for (int i = 0; i <= r; i++) u[i] = 0;
  for (int i = 1; i <= r; i++) {
    p[0] = i;
    int j0 = 0;
    for (int j = 0; j <= c; j++) minv[j] = INFINITY, used[j] = 0;
    do {
      used[j0] = 1;
      int i0 = p[j0], j1 = 0;
      double delta = INFINITY;
      for (int j = 1; j <= c; j++) {
        if (used[j]) continue;
        double a = transposed ? cost[(size_t)(j - 1) * ld + (i0 - 1)] : cost[(size_t)(i0 - 1) * ld + (j - 1)];
        double cur = sign * a - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int j = 0; j <= c; j++) {
        if (used[j]) u[p[j]] += delta, v[j] -= delta;
        else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do { /* flip the path */
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  for (int j = 1; j <= c; j++)
    if (p[j]) col_of_row[p[j] - 1] = j - 1;
}

knobs_status knobs_linear_assignment(const double *cost, int rows, int cols, int maximize, int *col_of_row) {
  if (!cost || !col_of_row || rows < 1 || cols < 1)
    return kn_err(KNOBS_ERR_ARG, "assignment: no cost matrix (%d x %d)", rows, cols);
  knobs_status s = check_finite(cost, rows, cols, "assignment: the cost matrix");
  if (s) return s;
  int tr = rows > cols, r = tr ? cols : rows, c = tr ? rows : cols;
  double *w = malloc(sizeof(double) * ((size_t)r + 2 * ((size_t)c + 1) + 1));
  int *iw = malloc(sizeof(int) * (3 * ((size_t)c + 1) + (size_t)r));
  if (!w || !iw) {
    free(w), free(iw);
    return kn_err(KNOBS_ERR_NOMEM, "assignment: cannot allocate for %d x %d", rows, cols);
  }
  int *sol = iw + 3 * ((size_t)c + 1); /* (r) */
  hungarian(cost, r, c, cols, tr, maximize ? -1.0 : 1.0, sol, w, iw);
  if (!tr) {
    memcpy(col_of_row, sol, sizeof(int) * (size_t)rows);
  } else { /* sol[j] is the row of column j */
    for (int i = 0; i < rows; i++) col_of_row[i] = -1;
    for (int j = 0; j < cols; j++) col_of_row[sol[j]] = j;
  }
  free(w), free(iw);
  return KNOBS_OK;
}

/* ---- mcc --------------------------------------------------------------------------------------- */
knobs_status knobs_mcc(const double *corr, int D, int K, int *match, double *mcc) {
  if (!corr || !match || !mcc || D < 1 || K < 1) return kn_err(KNOBS_ERR_ARG, "mcc: no correlations (%d x %d)", D, K);
  knobs_status s = check_finite(corr, D, K, "mcc: the correlations");
  if (s) return s;
  double *a = malloc(sizeof(double) * (size_t)D * K); /* |corr| transposed: (K,D), factors as rows */
  if (!a) return kn_err(KNOBS_ERR_NOMEM, "mcc: cannot allocate");
  for (int j = 0; j < D; j++)
    for (int k = 0; k < K; k++) a[(size_t)k * D + j] = fabs(corr[(size_t)j * K + k]);
  s = knobs_linear_assignment(a, K, D, 1, match);
  double sum = 0;
  for (int k = 0; !s && k < K; k++)
    if (match[k] >= 0) sum += a[(size_t)k * D + match[k]];
  free(a);
  if (!s) *mcc = sum / K;
  return s;
}

/* ---- amari ------------------------------------------------------------------------------------- */
knobs_status knobs_amari_index(const double *W, const double *A, int k, int d, double *index) {
  if (!W || !A || !index || k < 1 || d < 1) return kn_err(KNOBS_ERR_ARG, "amari: no matrices (k = %d, d = %d)", k, d);
  knobs_status s = check_finite(W, k, d, "amari: the unmixing W");
  if (!s) s = check_finite(A, d, k, "amari: the mixing A");
  if (s) return s;
  double *P = malloc(sizeof(double) * (size_t)k * k);
  if (!P) return kn_err(KNOBS_ERR_NOMEM, "amari: cannot allocate");
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) {
      double v = 0;
      for (int q = 0; q < d; q++) v += W[(size_t)i * d + q] * A[(size_t)q * k + j];
      P[(size_t)i * k + j] = fabs(v);
    }
  double sum = 0;
  for (int t = 0; t < 2 * k && !s; t++) { /* rows i = t, then columns j = t - k */
    int row = t < k, i = row ? t : t - k;
    double mx = 0, tot = 0;
    for (int q = 0; q < k; q++) {
      double v = row ? P[(size_t)i * k + q] : P[(size_t)q * k + i];
      tot += v;
      mx = v > mx ? v : mx;
    }
    if (!(mx > 0)) s = kn_err(KNOBS_ERR_DATA, "amari: %s %d of W A is zero: W does not see that source (or A is not "
                              "the mixing of W's data)", row ? "row" : "column", i);
    else sum += tot / mx - 1;
  }
  free(P);
  if (!s) *index = k > 1 ? sum / (2.0 * k * (k - 1)) : 0.0;
  return s;
}

/* ---- the metrics ------------------------------------------------------------------------------- */
/* corr (D,K) of the rows r, then the matching: score, match, signs (+1/-1, 0 unmatched). */
static knobs_status fit_matching(const kn_mctx *c, const kn_rows *r, double *corr, int *match, int *sign,
                                 double *score) {
  knobs_status s = knobs_correlations(r->z, r->yv, r->n, c->D, c->K, c->o->mcc_spearman, corr);
  if (!s) s = knobs_mcc(corr, c->D, c->K, match, score);
  for (int k = 0; !s && k < c->K; k++) sign[k] = match[k] < 0 ? 0 : corr[(size_t)match[k] * c->K + k] < 0 ? -1 : 1;
  return s;
}

knobs_status kn_mcc(const kn_mctx *c, cJSON *out) {
  int D = c->D, K = c->K;
  double *corr = malloc(sizeof(double) * (size_t)D * K), *ct = malloc(sizeof(double) * (size_t)D * K);
  double *pair = malloc(sizeof(double) * (size_t)K);
  int *match = malloc(sizeof(int) * (size_t)K * 4), *sign = match + K, *mtr = sign + K, *str = mtr + K;
  knobs_status s = KNOBS_OK;
  if (!corr || !ct || !pair || !match) {
    s = kn_err(KNOBS_ERR_NOMEM, "mcc: cannot allocate");
    goto done;
  }
  double score, strain = 0, stest = 0;
  if ((s = fit_matching(c, &c->all, corr, match, sign, &score))) goto done;
  for (int k = 0; k < K; k++) pair[k] = match[k] < 0 ? 0 : corr[(size_t)match[k] * K + k];
  /* out of sample: the matching and signs of the train rows, scored on the test rows */
  int oos = c->train.n >= 2 && c->test.n >= 2;
  if (oos && !(s = fit_matching(c, &c->train, ct, mtr, str, &strain)) &&
      !(s = knobs_correlations(c->test.z, c->test.yv, c->test.n, D, K, c->o->mcc_spearman, ct)))
    for (int k = 0; k < K; k++) stest += mtr[k] < 0 ? 0 : str[k] * ct[(size_t)mtr[k] * K + k] / K;
  if (s) goto done;
  kn_json_num(out, "mcc", score);
  if (oos) {
    kn_json_num(out, "mcc_train", strain);
    kn_json_num(out, "mcc_test", stest);
    kn_json_ivec(out, "matching_train", mtr, K);
  } else {
    kn_json_str(out, "note", "fewer than 2 train or test rows: no out-of-sample score");
  }
  kn_json_ivec(out, "matching", match, K);
  kn_json_ivec(out, "signs", sign, K);
  kn_json_vec(out, "pair_correlation", pair, K);
  kn_json_mat(out, "correlation_matrix", corr, D, K);
  cJSON *p = kn_json_params(out);
  kn_json_str(p, "correlation", c->o->mcc_spearman ? "spearman" : "pearson");
  kn_json_num(p, "num_points", c->all.n);
  kn_json_num(p, "num_train", c->train.n);
  kn_json_num(p, "num_test", c->test.n);
done:
  free(corr), free(ct), free(pair), free(match);
  return s;
}

/* A 2-D .npy of the amari options as double, shape (r,c) into *r, *c; the message names the file. */
static knobs_status read_matrix(const char *path, const char *what, knobs_array *a, int *r, int *c) {
  knobs_array raw = {0};
  knobs_status s = knobs_npy_read(path, &raw);
  if (s) return kn_err_prefix(s, "%s", what);
  if (raw.ndim != 2 || raw.shape[0] < 1 || raw.shape[1] < 1 || raw.shape[0] > 65536 || raw.shape[1] > 65536 ||
      raw.dtype == KNOBS_BOOL)
    s = kn_err(KNOBS_ERR_DATA, "%s %s: expected a 2-D numeric matrix, got %d dimension%s", what, path, raw.ndim,
               raw.ndim == 1 ? "" : "s");
  if (!s) s = knobs_array_convert(&raw, KNOBS_F64, a);
  if (!s) *r = (int)a->shape[0], *c = (int)a->shape[1];
  knobs_array_free(&raw);
  return s;
}

knobs_status kn_amari(const kn_mctx *c, cJSON *out) {
  const char *wp = c->o->amari_unmixing, *ap = c->o->amari_mixing;
  knobs_array W = {0}, A = {0};
  int kw, dw, da, ka;
  double idx = 0;
  knobs_status s = read_matrix(wp, "the unmixing (amari_unmixing)", &W, &kw, &dw);
  if (!s) s = read_matrix(ap, "the mixing (amari_mixing)", &A, &da, &ka);
  if (!s && (dw != da || kw != ka))
    s = kn_err(KNOBS_ERR_DATA, "the unmixing %s is (%d, %d) and the mixing %s is (%d, %d): W A must be square, so W "
               "is (k, d) and A is (d, k)", wp, kw, dw, ap, da, ka);
  if (!s) s = knobs_amari_index(W.data, A.data, kw, dw, &idx);
  if (!s) {
    kn_json_num(out, "amari_index", idx);
    cJSON *p = kn_json_params(out);
    kn_json_str(p, "unmixing", wp);
    kn_json_str(p, "mixing", ap);
    kn_json_num(p, "k", kw);
    kn_json_num(p, "d", dw);
  }
  knobs_array_free(&W), knobs_array_free(&A);
  return s;
}
