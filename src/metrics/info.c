/* info.c: the information-theoretic metrics on discretised codes, and the pieces they share:
 * NumPy's histogram discretiser (utils._histogram_discretize of disentanglement_lib) and
 * scikit-learn's mutual_info_score.
 *   mig         (mig.py): mean over factors of the gap between the two largest MI(z_j; v_k),
 *               divided by the factor's entropy H(v_k).
 *   modularity  (modularity_explicitness.py): per code, 1 - (sum_k MI^2 - max_k MI^2) /
 *               ((K-1) max_k MI^2), 0 where max MI is 0; averaged over codes.
 * It does not do the sampled MIG of Chen et al. (mig_sampled.c): a different number. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

void kn_histogram_discretize(const double *x, int n, int stride, int bins, int f32, int32_t *out) {
  KN_ASSERT(n > 0 && bins > 0 && bins <= 4096);
  double lo = x[0], hi = x[0];
  for (int i = 1; i < n; i++) {
    double v = x[(size_t)i * stride];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  /* np.histogram: first/last edge = min/max, widened by 0.5 each side for a constant column;
   * np.linspace(first, last, bins + 1) in double (y = i * step + first, last set exactly),
   * cast to the input's float type. */
  double first = lo, last = hi;
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  double edges[4097];
  double delta = last - first, step = delta / bins;
  for (int i = 0; i <= bins; i++) {
    double y = step == 0 ? (double)i / bins * delta : (double)i * step;
    edges[i] = y + first;
  }
  edges[bins] = last;
  if (f32)
    for (int i = 0; i <= bins; i++) edges[i] = (double)(float)edges[i];
  /* np.digitize(x, edges[:-1]) = searchsorted(left edges, x, side='right'): the number of left
   * edges <= x, so 1..bins (x >= min = edges[0]). */
  for (int i = 0; i < n; i++) {
    double v = x[(size_t)i * stride];
    int a = 0, b = bins; /* count in [a, b] */
    while (a < b) {
      int mid = (a + b) / 2;
      if (edges[mid] <= v) a = mid + 1;
      else b = mid;
    }
    out[(size_t)i * stride] = a;
  }
}

double kn_mutual_info(const int32_t *a, int sa, int na, const int32_t *b, int sb, int nb, int n,
                      int64_t *count) {
  int64_t *pi = count + (size_t)na * nb, *pj = pi + na;
  memset(count, 0, sizeof(int64_t) * ((size_t)na * nb + na + nb));
  for (int i = 0; i < n; i++) {
    int32_t u = a[(size_t)i * sa], v = b[(size_t)i * sb];
    KN_ASSERT(u >= 0 && u < na && v >= 0 && v < nb);
    count[(size_t)u * nb + v]++;
    pi[u]++;
    pj[v]++;
  }
  /* scikit-learn's contingency matrix has only the labels present: 0 if either side has one */
  int rows = 0, cols = 0;
  for (int u = 0; u < na; u++) rows += pi[u] > 0;
  for (int v = 0; v < nb; v++) cols += pj[v] > 0;
  if (rows <= 1 || cols <= 1) return 0.0;
  /* mi = c/N (log c - log N) + c/N (-log(pi pj) + log N + log N) per non-zero cell, in
   * row-major order, cells below DBL_EPSILON zeroed, the sum clipped at 0 */
  double N = n, logN = log(N), sum = 0;
  for (int u = 0; u < na; u++)
    for (int v = 0; v < nb; v++) {
      int64_t c = count[(size_t)u * nb + v];
      if (!c) continue;
      double cnm = (double)c / N;
      double log_outer = -log((double)(pi[u] * pj[v])) + logN + logN;
      double mi = cnm * (log((double)c) - logN) + cnm * log_outer;
      if (fabs(mi) < DBL_EPSILON) mi = 0.0;
      sum += mi;
    }
  return sum > 0 ? sum : 0.0;
}

knobs_status kn_mi_matrix(const kn_mctx *c, const kn_rows *r, int32_t *disc, double *mi) {
  int D = c->D, K = c->K, bins = c->o->num_bins, n = r->n;
  for (int j = 0; j < D; j++) kn_histogram_discretize(r->z + j, n, D, bins, c->f32, disc + j);
  int maxc = bins;
  for (int k = 0; k < K; k++)
    if (c->ncls[k] > maxc) maxc = c->ncls[k];
  int64_t *count = malloc(sizeof(int64_t) * (size_t)(bins + 2) * (maxc + 1));
  if (!count) return kn_err(KNOBS_ERR_NOMEM, "mutual information: cannot allocate");
  /* mutual_info_score(ys[k], discretized[j]): factor classes are the rows of the contingency;
   * the discretised codes take values 1..bins */
  for (int j = 0; j < D; j++)
    for (int k = 0; k < K; k++)
      mi[(size_t)j * K + k] = kn_mutual_info(r->y + k, K, c->ncls[k], disc + j, D, bins + 1, n, count);
  free(count);
  return KNOBS_OK;
}

/* H(v_k) = mutual_info_score(v_k, v_k) for each factor. */
static knobs_status entropies(const kn_mctx *c, const kn_rows *r, double *h) {
  int maxc = 1;
  for (int k = 0; k < c->K; k++)
    if (c->ncls[k] > maxc) maxc = c->ncls[k];
  int64_t *count = malloc(sizeof(int64_t) * (size_t)(maxc + 2) * maxc);
  if (!count) return kn_err(KNOBS_ERR_NOMEM, "entropy: cannot allocate");
  for (int k = 0; k < c->K; k++)
    h[k] = kn_mutual_info(r->y + k, c->K, c->ncls[k], r->y + k, c->K, c->ncls[k], r->n, count);
  free(count);
  return KNOBS_OK;
}

knobs_status kn_mig(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K;
  int32_t *disc = malloc(sizeof(int32_t) * (size_t)r->n * D);
  double *mi = malloc(sizeof(double) * (size_t)D * K), h[KN_MAX_K], gap[KN_MAX_K];
  KN_ASSERT(K <= KN_MAX_K);
  knobs_status s = KNOBS_OK;
  if (!disc || !mi) s = kn_err(KNOBS_ERR_NOMEM, "mig: cannot allocate %d x %d codes", r->n, D);
  if (!s) s = kn_mi_matrix(c, r, disc, mi);
  if (!s) s = entropies(c, r, h);
  if (!s) {
    double sum = 0;
    for (int k = 0; k < K; k++) {
      double m1 = -INFINITY, m2 = -INFINITY;
      for (int j = 0; j < D; j++) {
        double v = mi[(size_t)j * K + k];
        if (v > m1) {
          m2 = m1;
          m1 = v;
        } else if (v > m2) {
          m2 = v;
        }
      }
      KN_ASSERT(h[k] > 0); /* every factor varies in these rows (checked by the driver) */
      gap[k] = (m1 - m2) / h[k];
      sum += gap[k];
    }
    kn_json_num(out, "discrete_mig", sum / K);
    kn_json_vec(out, "per_factor", gap, K);
    kn_json_vec(out, "entropy", h, K);
    kn_json_mat(out, "mutual_info", mi, D, K);
    cJSON *p = kn_json_params(out);
    kn_json_num(p, "num_points", r->n);
    kn_json_num(p, "num_bins", c->o->num_bins);
  }
  free(disc);
  free(mi);
  return s;
}

knobs_status kn_modularity(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K;
  int32_t *disc = malloc(sizeof(int32_t) * (size_t)r->n * D);
  double *mi = malloc(sizeof(double) * (size_t)D * K), *per = malloc(sizeof(double) * (size_t)D);
  knobs_status s = KNOBS_OK;
  if (!disc || !mi || !per) s = kn_err(KNOBS_ERR_NOMEM, "modularity: cannot allocate %d x %d codes", r->n, D);
  if (!s) s = kn_mi_matrix(c, r, disc, mi);
  if (!s) {
    double sum = 0;
    for (int j = 0; j < D; j++) {
      double mx = 0, tot = 0;
      for (int k = 0; k < K; k++) {
        double q = mi[(size_t)j * K + k] * mi[(size_t)j * K + k];
        tot += q;
        if (q > mx) mx = q;
      }
      per[j] = mx == 0 ? 0.0 : 1.0 - (tot - mx) / (mx * (K - 1.0));
      sum += per[j];
    }
    kn_json_num(out, "modularity_score", sum / D);
    kn_json_vec(out, "per_code", per, D);
    kn_json_mat(out, "mutual_info", mi, D, K);
    cJSON *p = kn_json_params(out);
    kn_json_num(p, "num_points", r->n);
    kn_json_num(p, "num_bins", c->o->num_bins);
  }
  free(disc);
  free(mi);
  free(per);
  return s;
}
