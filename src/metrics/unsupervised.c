/* unsupervised.c: the metrics that look at the codes alone (unsupervised_metrics.py):
 *   gaussian_total_correlation       0.5 (sum_j log C_jj - log det C), C = cov(z) (ddof 1)
 *   gaussian_wasserstein_correlation 2 tr C - 2 tr sqrtm(C diag(C)[:, None])
 *   ..._norm                         the above / tr C
 *   mutual_info_score                mean MI between the discretised codes of two different
 *                                    dimensions (sum over i != j / (D^2 - D))
 * tr sqrtm(C diag(C)) is the sum of the square roots of the eigenvalues of the symmetric
 * S^1/2 C S^1/2 (S = diag C), which has the same spectrum; computed by Jacobi rotations.
 * Differences from the reference (docs/metrics.md): constant dimensions are left out of the
 * total correlation (the reference returns NaN), and a singular covariance (collinear codes)
 * gives a note instead of an infinite total correlation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

void kn_sym_eigenvalues(double *a, int n, double *ev) {
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-32 * diag || off == 0) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        if (apq == 0) continue;
        double app = a[p * n + p], aqq = a[q * n + q];
        double theta = (aqq - app) / (2 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
        double cs = 1 / sqrt(t * t + 1), sn = t * cs;
        for (int k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = cs * akp - sn * akq;
          a[k * n + q] = sn * akp + cs * akq;
        }
        for (int k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = cs * apk - sn * aqk;
          a[q * n + k] = sn * apk + cs * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;
      }
  }
  for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
}

/* log det of the SPD (n,n) matrix a (destroyed) by Cholesky; 0 and *ok = 0 if not positive
 * definite to working precision. */
static double chol_logdet(double *a, int n, int *ok) {
  double ld = 0;
  *ok = 1;
  for (int j = 0; j < n; j++) {
    double d = a[j * n + j];
    for (int k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 1e-13 * fabs(a[j * n + j])) || !(d > 0)) {
      *ok = 0;
      return 0;
    }
    double l = sqrt(d);
    a[j * n + j] = l;
    ld += 2 * log(l);
    for (int i = j + 1; i < n; i++) {
      double s = a[i * n + j];
      for (int k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / l;
    }
  }
  return ld;
}

knobs_status kn_unsupervised(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, n = r->n, bins = c->o->num_bins;
  double *cov = calloc((size_t)D * D, sizeof(double)), *m = calloc((size_t)D * 2, sizeof(double));
  double *a = malloc(sizeof(double) * (size_t)D * D), *ev = malloc(sizeof(double) * (size_t)D);
  int32_t *disc = malloc(sizeof(int32_t) * (size_t)n * D);
  int64_t *count = malloc(sizeof(int64_t) * (size_t)(bins + 3) * (bins + 1));
  double *mim = calloc((size_t)D * D, sizeof(double));
  int *keep = malloc(sizeof(int) * (size_t)D);
  knobs_status s = KNOBS_OK;
  if (!cov || !m || !a || !ev || !disc || !count || !mim || !keep) {
    s = kn_err(KNOBS_ERR_NOMEM, "unsupervised: cannot allocate");
    goto done;
  }
  if (n < 2) {
    s = kn_err(KNOBS_ERR_DATA, "unsupervised: the covariance needs at least 2 rows, got %d", n);
    goto done;
  }
  /* np.cov: means, then the centred products / (n - 1) */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < D; j++) m[j] += r->z[(size_t)i * D + j];
  for (int j = 0; j < D; j++) m[j] /= n;
  for (int i = 0; i < n; i++) {
    const double *z = r->z + (size_t)i * D;
    for (int p = 0; p < D; p++) {
      double dp = z[p] - m[p];
      for (int q = p; q < D; q++) cov[p * D + q] += dp * (z[q] - m[q]);
    }
  }
  for (int p = 0; p < D; p++)
    for (int q = p; q < D; q++) cov[q * D + p] = cov[p * D + q] /= (n - 1);
  double tr = 0;
  for (int p = 0; p < D; p++) tr += cov[p * D + p];

  /* total correlation = -0.5 log det R over the non-constant dimensions (R: correlations) */
  int nk = 0;
  for (int p = 0; p < D; p++)
    if (cov[p * D + p] > 0) keep[nk++] = p;
  double tc = 0;
  int ok = 1;
  if (nk > 1) {
    for (int i = 0; i < nk; i++)
      for (int j = 0; j < nk; j++) {
        int p = keep[i], q = keep[j];
        a[i * nk + j] = cov[p * D + q] / sqrt(cov[p * D + p] * cov[q * D + q]);
      }
    tc = -0.5 * chol_logdet(a, nk, &ok);
  }

  /* Wasserstein: eigenvalues of S^1/2 C S^1/2 */
  for (int p = 0; p < D; p++)
    for (int q = 0; q < D; q++) a[p * D + q] = sqrt(cov[p * D + p]) * cov[p * D + q] * sqrt(cov[q * D + q]);
  kn_sym_eigenvalues(a, D, ev);
  double trs = 0;
  for (int p = 0; p < D; p++) trs += ev[p] > 0 ? sqrt(ev[p]) : 0;
  double w = 2 * tr - 2 * trs;
  if (w < 0 && w > -1e-12 * (tr > 1 ? tr : 1)) w = 0; /* rounding of an uncorrelated code */

  /* mean pairwise MI of the discretised codes */
  for (int j = 0; j < D; j++) kn_histogram_discretize(r->z + j, n, D, bins, c->f32, disc + j);
  double misum = 0;
  for (int p = 0; p < D; p++)
    for (int q = 0; q < D; q++) {
      if (p == q) continue;
      mim[p * D + q] = kn_mutual_info(disc + p, D, bins + 1, disc + q, D, bins + 1, n, count);
      misum += mim[p * D + q];
    }

  if (ok) kn_json_num(out, "gaussian_total_correlation", tc);
  else kn_json_str(out, "note", "the covariance of the codes is singular (collinear dimensions): "
                                "the Gaussian total correlation is infinite and left out");
  kn_json_num(out, "gaussian_wasserstein_correlation", w);
  kn_json_num(out, "gaussian_wasserstein_correlation_norm", tr > 0 ? w / tr : 0.0);
  kn_json_num(out, "mutual_info_score", misum / ((double)D * D - D));
  kn_json_mat(out, "covariance", cov, D, D);
  kn_json_num(out, "constant_dims", D - nk);
  cJSON *pp = kn_json_params(out);
  kn_json_num(pp, "num_points", n);
  kn_json_num(pp, "num_bins", bins);
done:
  free(cov), free(m), free(a), free(ev), free(disc), free(count), free(mim), free(keep);
  return s;
}
