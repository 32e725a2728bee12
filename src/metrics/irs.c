/* irs.c: the interventional robustness score of Suter et al. (irs.py):
 *   factors discretised by the 20-bin histogram (utils._histogram_discretize of the factor
 *   values: factors with more than 20 values are merged into 20 bins, a reference quirk);
 *   codes with zero variance dropped;
 *   for each factor k and each of its discretised values v: e = E[z | v_k = v], and the
 *   q-quantile (0.99, linear interpolation as np.quantile) of |z - e| within the group;
 *   cum[j,k] = mean over values of those quantiles;
 *   IRS[j,k] = 1 - cum[j,k] / max_i |z_ij - mean_j|;
 *   score = average over codes j of max_k IRS[j,k], weighted by the max deviations.
 * Computed in double (the reference works in the codes' float32 for means and quantiles, which
 * moves the score by ~1e-7). The reference's "num_active_dims" is np.sum of the active codes'
 * values, not a count: we report the count and keep that value as num_active_dims_reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

/* the k-th smallest of v[0..m) (v reordered), by quickselect with median-of-three pivots */
static double select_kth(double *v, int m, int k) {
  int lo = 0, hi = m - 1;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    double a = v[lo], b = v[mid], c = v[hi];
    double p = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] < p) i++;
      while (v[j] > p) j--;
      if (i <= j) {
        double t = v[i];
        v[i++] = v[j];
        v[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return v[k];
  }
  return v[k];
}

/* np.quantile(v[0..m), q) with the 'linear' method (v reordered). */
static double quantile(double *v, int m, double q) {
  double vi = m * q + (1 + q * (1 - 1 - 1)) - 1; /* numpy's _compute_virtual_index, alpha=beta=1 */
  double prev = floor(vi);
  int lo, hi;
  if (vi >= m - 1) lo = hi = m - 1;
  else if (vi < 0) lo = hi = 0;
  else {
    lo = (int)prev;
    hi = lo + 1;
  }
  double a = select_kth(v, m, lo), b = a;
  if (hi != lo) { /* the next order statistic: the smallest of what lies above lo */
    b = v[lo + 1];
    for (int t = lo + 2; t < m; t++)
      if (v[t] < b) b = v[t];
  }
  double g = vi - prev, d = b - a;
  return g >= 0.5 ? b - d * (1 - g) : a + d * g; /* numpy's _lerp */
}

knobs_status kn_irs(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, n = r->n;
  int *act = malloc(sizeof(int) * (size_t)D);
  double *mean = calloc((size_t)D, sizeof(double)), *maxdev = calloc((size_t)D, sizeof(double));
  double *cum = calloc((size_t)D * K, sizeof(double)), *irs = calloc((size_t)D * K, sizeof(double));
  double *per = calloc((size_t)D, sizeof(double)), *e = malloc(sizeof(double) * (size_t)D);
  double *buf = malloc(sizeof(double) * (size_t)n);
  int32_t *disc = malloc(sizeof(int32_t) * (size_t)n * K), *idx = malloc(sizeof(int32_t) * (size_t)n);
  int *parent = calloc((size_t)D, sizeof(int));
  knobs_status s = KNOBS_OK;
  if (!act || !mean || !maxdev || !cum || !irs || !per || !e || !buf || !disc || !idx || !parent) {
    s = kn_err(KNOBS_ERR_NOMEM, "irs: cannot allocate");
    goto done;
  }
  /* active codes: np.var > 0 */
  int na = 0;
  double ref_active_sum = 0;
  for (int j = 0; j < D; j++) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += r->z[(size_t)i * D + j];
    m /= n;
    for (int i = 0; i < n; i++) {
      double d = r->z[(size_t)i * D + j] - m;
      v += d * d;
    }
    mean[j] = m;
    if (v > 0) {
      act[na++] = j;
      for (int i = 0; i < n; i++) ref_active_sum += r->z[(size_t)i * D + j];
    }
  }
  double score = 0;
  if (na > 0) {
    for (int k = 0; k < K; k++) kn_histogram_discretize(r->yv + k, n, K, c->o->num_bins, 0, disc + k);
    for (int a = 0; a < na; a++) {
      int j = act[a];
      for (int i = 0; i < n; i++) {
        double d = fabs(r->z[(size_t)i * D + j] - mean[j]);
        if (d > maxdev[j]) maxdev[j] = d;
      }
    }
    int bins = c->o->num_bins, *off = calloc((size_t)bins + 2, sizeof(int));
    if (!off) {
      s = kn_err(KNOBS_ERR_NOMEM, "irs: cannot allocate");
      goto done;
    }
    for (int k = 0; k < K; k++) {
      int nvals = 0;
      memset(off, 0, sizeof(int) * (size_t)(bins + 2));
      for (int i = 0; i < n; i++) off[disc[(size_t)i * K + k] + 1]++;
      for (int v = 1; v <= bins; v++) off[v + 1] += off[v];
      for (int i = 0; i < n; i++) idx[off[disc[(size_t)i * K + k]]++] = i; /* rows of bin v: idx[off0[v]..] */
      for (int v = bins; v >= 1; v--) off[v] = off[v - 1];
      off[0] = 0;
      for (int v = 1; v <= bins; v++) {
        int m = off[v + 1] - off[v];
        const int32_t *rows = idx + off[v];
        if (!m) continue;
        nvals++;
        for (int a = 0; a < na; a++) {
          int j = act[a];
          double s1 = 0;
          for (int t = 0; t < m; t++) s1 += r->z[(size_t)rows[t] * D + j];
          e[j] = s1 / m;
          for (int t = 0; t < m; t++) buf[t] = fabs(r->z[(size_t)rows[t] * D + j] - e[j]);
          cum[(size_t)j * K + k] += quantile(buf, m, c->o->irs_quantile);
        }
      }
      for (int a = 0; a < na; a++) cum[(size_t)act[a] * K + k] /= nvals;
    }
    free(off);
    double wsum = 0, ssum = 0, psum = 0;
    for (int a = 0; a < na; a++) {
      int j = act[a];
      double best = -INFINITY;
      for (int k = 0; k < K; k++) {
        irs[(size_t)j * K + k] = 1.0 - cum[(size_t)j * K + k] / maxdev[j];
        if (irs[(size_t)j * K + k] > best) {
          best = irs[(size_t)j * K + k];
          parent[j] = k;
        }
      }
      per[j] = best;
      wsum += maxdev[j];
      ssum += best * maxdev[j];
      psum += best;
    }
    score = wsum > 0 ? ssum / wsum : psum / na;
  }
  kn_json_num(out, "IRS", score);
  kn_json_num(out, "num_active_dims", na);
  kn_json_num(out, "num_active_dims_reference", ref_active_sum);
  kn_json_vec(out, "per_code", per, D);
  kn_json_ivec(out, "parents", parent, D);
  kn_json_vec(out, "max_deviations", maxdev, D);
  kn_json_mat(out, "irs_matrix", irs, D, K);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_points", n);
  kn_json_num(p, "diff_quantile", c->o->irs_quantile);
  kn_json_num(p, "num_bins", c->o->num_bins);
done:
  free(act), free(mean), free(maxdev), free(cum), free(irs), free(per), free(e), free(buf);
  free(disc), free(idx), free(parent);
  return s;
}
