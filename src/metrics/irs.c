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

#include "core/arena.h"
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

/* The work of one run, carved from one arena. */
typedef struct {
  int *act, *parent, *off;   /* (D) active codes, then (D) parent factors, (bins + 2) offsets */
  double *mean, *maxdev, *cum, *irs, *per, *e, *buf; /* (D), (D), (D,K), (D,K), (D), (D), (n) */
  int32_t *disc, *idx;       /* (n,K) discretised factors, (n) rows by bin */
  int na;                    /* active codes */
  double ref_active_sum;     /* the reference's "num_active_dims" (a sum of codes) */
} irs_state;

static void irs_layout(kn_arena *a, const kn_mctx *c, irs_state *s) {
  size_t D = (size_t)c->D, K = (size_t)c->K, n = (size_t)c->all.n;
  s->act = kn_arena_take(a, sizeof(int) * D);
  s->parent = kn_arena_take(a, sizeof(int) * D);
  s->off = kn_arena_take(a, sizeof(int) * ((size_t)c->o->num_bins + 2));
  s->mean = kn_arena_take(a, sizeof(double) * D);
  s->maxdev = kn_arena_take(a, sizeof(double) * D);
  s->cum = kn_arena_take(a, sizeof(double) * D * K);
  s->irs = kn_arena_take(a, sizeof(double) * D * K);
  s->per = kn_arena_take(a, sizeof(double) * D);
  s->e = kn_arena_take(a, sizeof(double) * D);
  s->buf = kn_arena_take(a, sizeof(double) * n);
  s->disc = kn_arena_take(a, sizeof(int32_t) * n * K);
  s->idx = kn_arena_take(a, sizeof(int32_t) * n);
}

/* Active codes (np.var > 0), their means and largest deviations from the mean. */
static void active_codes(const kn_rows *r, int D, irs_state *s) {
  int n = r->n;
  s->na = 0;
  s->ref_active_sum = 0;
  for (int j = 0; j < D; j++) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += r->z[(size_t)i * D + j];
    m /= n;
    for (int i = 0; i < n; i++) {
      double d = r->z[(size_t)i * D + j] - m;
      v += d * d;
    }
    s->mean[j] = m;
    if (v > 0) {
      s->act[s->na++] = j;
      for (int i = 0; i < n; i++) s->ref_active_sum += r->z[(size_t)i * D + j];
    }
  }
  for (int a = 0; a < s->na; a++) {
    int j = s->act[a];
    for (int i = 0; i < n; i++) {
      double d = fabs(r->z[(size_t)i * D + j] - s->mean[j]);
      if (d > s->maxdev[j]) s->maxdev[j] = d;
    }
  }
}

/* cum (j,k): the mean over the bins of factor k of the quantile of |z_j - E[z_j | bin]|. */
static void bin_deviations(const kn_mctx *c, irs_state *s, int k) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, n = r->n, bins = c->o->num_bins, nvals = 0, *off = s->off;
  memset(off, 0, sizeof(int) * (size_t)(bins + 2));
  for (int i = 0; i < n; i++) off[s->disc[(size_t)i * K + k] + 1]++;
  for (int v = 1; v <= bins; v++) off[v + 1] += off[v];
  for (int i = 0; i < n; i++) s->idx[off[s->disc[(size_t)i * K + k]]++] = i; /* rows of bin v: idx[off0[v]..] */
  for (int v = bins; v >= 1; v--) off[v] = off[v - 1];
  off[0] = 0;
  for (int v = 1; v <= bins; v++) {
    int m = off[v + 1] - off[v];
    const int32_t *rows = s->idx + off[v];
    if (!m) continue;
    nvals++;
    for (int a = 0; a < s->na; a++) {
      int j = s->act[a];
      double s1 = 0;
      for (int t = 0; t < m; t++) s1 += r->z[(size_t)rows[t] * D + j];
      s->e[j] = s1 / m;
      for (int t = 0; t < m; t++) s->buf[t] = fabs(r->z[(size_t)rows[t] * D + j] - s->e[j]);
      s->cum[(size_t)j * K + k] += quantile(s->buf, m, c->o->irs_quantile);
    }
  }
  for (int a = 0; a < s->na; a++) s->cum[(size_t)s->act[a] * K + k] /= nvals;
}

/* irs (j,k) = 1 - cum / maxdev; each code's best factor; the maxdev-weighted mean. */
static double irs_score(int D, int K, irs_state *s) {
  double wsum = 0, ssum = 0, psum = 0;
  for (int a = 0; a < s->na; a++) {
    int j = s->act[a];
    double best = -INFINITY;
    for (int k = 0; k < K; k++) {
      s->irs[(size_t)j * K + k] = 1.0 - s->cum[(size_t)j * K + k] / s->maxdev[j];
      if (s->irs[(size_t)j * K + k] > best) {
        best = s->irs[(size_t)j * K + k];
        s->parent[j] = k;
      }
    }
    s->per[j] = best;
    wsum += s->maxdev[j];
    ssum += best * s->maxdev[j];
    psum += best;
  }
  return wsum > 0 ? ssum / wsum : psum / s->na;
}

knobs_status kn_irs(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, n = r->n;
  kn_arena ar = {0};
  irs_state s;
  irs_layout(&ar, c, &s); /* counting */
  knobs_status st = kn_arena_reserve(&ar, "irs");
  if (st) return st;
  irs_layout(&ar, c, &s);
  active_codes(r, D, &s);
  double score = 0;
  if (s.na > 0) {
    for (int k = 0; k < K; k++) kn_histogram_discretize(r->yv + k, n, K, c->o->num_bins, 0, s.disc + k);
    for (int k = 0; k < K; k++) bin_deviations(c, &s, k);
    score = irs_score(D, K, &s);
  }
  kn_json_num(out, "IRS", score);
  kn_json_num(out, "num_active_dims", s.na);
  kn_json_num(out, "num_active_dims_reference", s.ref_active_sum);
  kn_json_vec(out, "per_code", s.per, D);
  kn_json_ivec(out, "parents", s.parent, D);
  kn_json_vec(out, "max_deviations", s.maxdev, D);
  kn_json_mat(out, "irs_matrix", s.irs, D, K);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_points", n);
  kn_json_num(p, "diff_quantile", c->o->irs_quantile);
  kn_json_num(p, "num_bins", c->o->num_bins);
  kn_arena_free(&ar);
  return KNOBS_OK;
}
