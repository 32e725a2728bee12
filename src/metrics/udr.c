/* udr.c: the Unsupervised Disentanglement Ranking (Duan et al. 2020) on arrays, as
 * disentanglement_lib's evaluation/udr/metrics/udr.py (compute_udr_sklearn) computes it once the
 * representations and KL vectors are drawn, in double:
 *   prepare    each run's means (N,D): StandardScaler (mean, variance with ddof 0 and the
 *              two-pass correction of sklearn's _incremental_mean_and_var; a latent whose
 *              variance is within rounding of 0, sklearn's _is_constant_feature, keeps scale 1),
 *              times [KL > 0.01] (udr.py's fixed constant, whatever kl_filter_threshold is);
 *              active latents: KL > kl_filter_threshold;
 *   lasso      for an ordered pair (i, j): sklearn.linear_model.Lasso(alpha).fit(Z_i, Z_j), one
 *              target at a time as sklearn's ElasticNet.fit loops over targets: X and y centred
 *              (fit_intercept=True), then sklearn's cyclic coordinate descent
 *              (linear_model/_cd_fast.pyx, enet_coordinate_descent with beta = 0, positive = 0:
 *              L1 weight alpha N, columns of zero norm skipped, the duality-gap check when the
 *              largest update / largest weight < tol, stopping when gap < tol |y|^2, at most
 *              max_iter sweeps); C[a][b] = |w_a| for target b;
 *   spearman   C[a][b] = |Pearson correlation of the average ranks| (scipy.stats.spearmanr),
 *              NaN when either latent is constant (scipy returns NaN there);
 *   score      relative_strength_disentanglement on C's active rows and columns, NumPy's NaN
 *              rules kept (a NaN entry makes its column's and its row's max^2/sum NaN, and
 *              np.nan_to_num turns that term into 0); model score = median over j != i of
 *              pair (j, i) (udr.py's np.median(np.delete(disentanglement[:, i], i))).
 * Differences, deliberate: a pair in which one run has no active latent scores 0 (udr.py raises
 * on the empty matrix); the Lasso of an all-zero target returns w = 0 at once (sklearn loops to
 * max_iter, warns, and returns the same zeros); sums are plain double loops where NumPy and BLAS
 * sum pairwise (a few ulps). It does not draw or encode anything: knobs_udr_models
 * (src/apps/udr_models.c) does that for trained models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

#define UDR_ZERO_KL 0.01 /* udr.py: inferred_model_reps[i] * np.greater(kl[i], 0.01) */

void knobs_udr_opts_default(knobs_udr_opts *o) {
  memset(o, 0, sizeof *o);
  o->variant = KNOBS_UDR_LASSO;
  o->alpha = 0.1;
  o->max_iter = 1000;
  o->tol = 1e-4;
  o->filter_low_kl = 1;
  o->kl_filter_threshold = 0.01;
  o->raw_correlations = 1;
  o->threads = 1;
  o->n = 1000;
  o->seed = 0;
}

void knobs_udr_result_free(knobs_udr_result *r) { free(r); }

/* ---- one run, prepared ------------------------------------------------------------------ */
/* Per run r (arrays of the job, r-th slice): z (D,N) latent-major, standardised and zeroed,
 * then for lasso centred again (sklearn's _pre_fit); nrm (D) = sum z^2 of each latent. For
 * spearman z holds the centred average ranks and cst (D) flags constant latents. */
typedef struct {
  int R, N, D;
  const knobs_udr_opts *o;
  double *z;            /* (R,D,N) */
  double *nrm;          /* (R,D) */
  unsigned char *cst;   /* (R,D) */
  const int *active;    /* (R,D) */
  double *corr;         /* (R,R,D,D) the matrices (the result's, or scratch) */
  double *pairwise;     /* (R,R) */
  double *scratch;      /* per thread: N + 2 D */
} udr_job;

static void prepare_run(udr_job *j, const float *reps, const double *kl, int r, kn_keyed *keyed) {
  int N = j->N, D = j->D;
  double *z = j->z + (size_t)r * D * N;
  for (int d = 0; d < D; d++) {
    double *c = z + (size_t)d * N;
    for (int k = 0; k < N; k++) c[k] = reps[((size_t)r * N + k) * D + d];
    /* StandardScaler.fit: _incremental_mean_and_var from nothing, then _is_constant_feature */
    double sum = 0, corr = 0, ss = 0;
    for (int k = 0; k < N; k++) sum += c[k];
    double mean = sum / N;
    for (int k = 0; k < N; k++) corr += c[k] - mean, ss += (c[k] - mean) * (c[k] - mean);
    double var = (ss - corr * corr / N) / N;
    const double eps = 2.220446049250313e-16;
    double bound = N * eps * var + (N * mean * eps) * (N * mean * eps);
    double scale = var <= bound ? 1.0 : sqrt(var);
    double keep = !kl || kl[(size_t)r * D + d] > UDR_ZERO_KL ? 1.0 : 0.0;
    for (int k = 0; k < N; k++) c[k] = (c[k] - mean) / scale * keep;
    int constant = 1;
    for (int k = 1; k < N && constant; k++) constant = c[k] == c[0];
    j->cst[(size_t)r * D + d] = (unsigned char)constant;
    if (j->o->variant == KNOBS_UDR_SPEARMAN) {
      for (int k = 0; k < N; k++) keyed[k] = (kn_keyed){c[k], k};
      kn_ranks(keyed, N, c); /* the ranks overwrite the values: keyed holds them */
    }
    /* centre (Lasso's fit_intercept; Pearson's centring of the ranks) */
    double m = 0, n2 = 0;
    for (int k = 0; k < N; k++) m += c[k];
    m /= N;
    for (int k = 0; k < N; k++) c[k] -= m, n2 += c[k] * c[k];
    j->nrm[(size_t)r * D + d] = n2;
  }
}

/* ---- Lasso by coordinate descent (sklearn's enet_coordinate_descent, beta = 0) ------------ */
static double dot(const double *a, const double *b, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

/* w (D) minimising 0.5 |y - X w|^2 + l1 |w|_1 from w = 0, X (D,N) latent-major with column
 * norms nrm (D), y (N) centred; R (N) and XtA (D) are scratch. */
static void lasso_cd(const double *X, const double *nrm, const double *y, int N, int D, double l1, int max_iter,
                     double tol, double *w, double *R, double *XtA) {
  for (int a = 0; a < D; a++) w[a] = 0;
  double yy = dot(y, y, N);
  if (yy == 0) return; /* an all-zero target: every update is 0 (sklearn runs max_iter sweeps) */
  memcpy(R, y, sizeof(double) * (size_t)N); /* R = y - X w */
  double d_w_tol = tol;
  tol *= yy;
  for (int it = 0; it < max_iter; it++) {
    double w_max = 0, d_w_max = 0;
    for (int a = 0; a < D; a++) {
      if (nrm[a] == 0.0) continue;
      const double *x = X + (size_t)a * N;
      double w_a = w[a];
      if (w_a != 0.0)
        for (int k = 0; k < N; k++) R[k] += w_a * x[k];
      double tmp = dot(x, R, N);
      double mag = fabs(tmp) - l1;
      w[a] = mag > 0 ? (tmp > 0 ? mag : -mag) / nrm[a] : 0.0;
      if (w[a] != 0.0)
        for (int k = 0; k < N; k++) R[k] -= w[a] * x[k];
      double dw = fabs(w[a] - w_a);
      if (dw > d_w_max) d_w_max = dw;
      if (fabs(w[a]) > w_max) w_max = fabs(w[a]);
    }
    if (w_max == 0.0 || d_w_max / w_max < d_w_tol || it == max_iter - 1) {
      /* the duality gap, as _cd_fast.pyx computes it */
      double dual = 0;
      for (int a = 0; a < D; a++) {
        XtA[a] = dot(X + (size_t)a * N, R, N);
        if (fabs(XtA[a]) > dual) dual = fabs(XtA[a]);
      }
      double R2 = dot(R, R, N), cst, gap, l1n = 0;
      if (dual > l1) {
        cst = l1 / dual;
        gap = 0.5 * (R2 + R2 * cst * cst);
      } else {
        cst = 1.0;
        gap = R2;
      }
      for (int a = 0; a < D; a++) l1n += fabs(w[a]);
      gap += l1 * l1n - cst * dot(R, y, N);
      if (gap < tol) break;
    }
  }
}

/* ---- the score of one pair -------------------------------------------------------------------- */
/* One line of C (D entries c[k * step], those with keep[k] != 0; keep NULL: all): max^2 / sum,
 * NaN if the line holds a NaN. 0 if the line has no entry kept. */
static int line_strength(const double *c, size_t step, int D, const int *keep, double *t) {
  double mx = -INFINITY, s = 0;
  int nan = 0, any = 0;
  for (int k = 0; k < D; k++) {
    if (keep && !keep[k]) continue;
    double v = c[(size_t)k * step];
    any = 1;
    if (isnan(v)) nan = 1;
    else if (v > mx) mx = v;
    s += v;
  }
  *t = nan ? NAN : mx * mx / s;
  return any;
}

/* udr.py's relative_strength_disentanglement on the rows of C (ld D) with ra[a] != 0 and the
 * columns with cb[b] != 0 (ra, cb NULL: all): NumPy's max and sum propagate NaN, nan_to_num
 * makes a NaN term 0. Empty: 0 (udr.py raises). */
static double relative_strength(const double *C, int D, const int *ra, const int *cb) {
  double sx = 0, sy = 0, t;
  int nr = 0, nc = 0;
  for (int b = 0; b < D; b++) { /* columns over the kept rows */
    if (cb && !cb[b]) continue;
    if (!line_strength(C + b, (size_t)D, D, ra, &t)) break;
    sx += isnan(t) ? 0 : t, nc++;
  }
  for (int a = 0; a < D; a++) { /* rows over the kept columns */
    if (ra && !ra[a]) continue;
    if (!line_strength(C + (size_t)a * D, 1, D, cb, &t)) break;
    sy += isnan(t) ? 0 : t, nr++;
  }
  if (!nr || !nc) return 0;
  return (sx / nc + sy / nr) / 2;
}

static void pair_matrix(udr_job *j, int i, int jj, double *C, double *scr) {
  int N = j->N, D = j->D;
  const double *zi = j->z + (size_t)i * D * N, *zj = j->z + (size_t)jj * D * N;
  const double *ni = j->nrm + (size_t)i * D, *nj = j->nrm + (size_t)jj * D;
  if (j->o->variant == KNOBS_UDR_LASSO) {
    double *R = scr, *w = R + N, *XtA = w + D;
    for (int b = 0; b < D; b++) {
      lasso_cd(zi, ni, zj + (size_t)b * N, N, D, j->o->alpha * N, j->o->max_iter, j->o->tol, w, R, XtA);
      for (int a = 0; a < D; a++) C[(size_t)a * D + b] = fabs(w[a]);
    }
  } else {
    const unsigned char *ci = j->cst + (size_t)i * D, *cj = j->cst + (size_t)jj * D;
    for (int a = 0; a < D; a++)
      for (int b = 0; b < D; b++) {
        double r = NAN;
        if (!ci[a] && !cj[b]) { /* np.corrcoef: cov / sd_a / sd_b, clipped to [-1, 1] */
          r = dot(zi + (size_t)a * N, zj + (size_t)b * N, N) / sqrt(ni[a]) / sqrt(nj[b]);
          r = fabs(r) > 1 ? 1 : fabs(r);
        }
        C[(size_t)a * D + b] = r;
      }
  }
}

static void pair_task(void *ctx, int tid, int nt) {
  udr_job *j = ctx;
  int R = j->R, D = j->D;
  long lo, hi;
  kn_split((long)R * (R - 1), tid, nt, &lo, &hi);
  double *scr = j->scratch + (size_t)tid * (j->N + 2 * (size_t)D);
  for (long p = lo; p < hi; p++) {
    int i = (int)(p / (R - 1)), jj = (int)(p % (R - 1));
    if (jj >= i) jj++;
    double *C = j->corr + ((size_t)i * R + jj) * D * D;
    pair_matrix(j, i, jj, C, scr);
    const int *act = j->o->filter_low_kl ? j->active : NULL;
    j->pairwise[(size_t)i * R + jj] =
        relative_strength(C, D, act ? act + (size_t)i * D : NULL, act ? act + (size_t)jj * D : NULL);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ---- the public entry --------------------------------------------------------------------------- */
static knobs_status check_args(const float *reps, const double *kl, int R, int N, int D, const knobs_udr_opts *o) {
  if (!reps) return kn_err(KNOBS_ERR_ARG, "udr: no representations");
  if (R < 2) return kn_err(KNOBS_ERR_ARG, "udr: %d run%s; UDR compares at least 2", R, R == 1 ? "" : "s");
  if (N < 2) return kn_err(KNOBS_ERR_ARG, "udr: %d input%s; at least 2 are needed", N, N == 1 ? "" : "s");
  if (D < 1) return kn_err(KNOBS_ERR_ARG, "udr: %d latents", D);
  if ((double)R * R * D * D > 1e9 || (double)R * N * D > 2e9)
    return kn_err(KNOBS_ERR_ARG, "udr: %d runs of %d inputs x %d latents is too large", R, N, D);
  if (o->variant != KNOBS_UDR_LASSO && o->variant != KNOBS_UDR_SPEARMAN)
    return kn_err(KNOBS_ERR_ARG, "udr: unknown variant %d (lasso %d, spearman %d)", (int)o->variant,
                  KNOBS_UDR_LASSO, KNOBS_UDR_SPEARMAN);
  if (!(o->alpha > 0 && isfinite(o->alpha))) /* checked for spearman too: one contract */
    return kn_err(KNOBS_ERR_ARG, "udr: Lasso alpha %g; it must be > 0", o->alpha);
  if (o->max_iter < 1)
    return kn_err(KNOBS_ERR_ARG, "udr: Lasso max_iter %d; it must be >= 1", o->max_iter);
  if (!(o->tol >= 0))
    return kn_err(KNOBS_ERR_ARG, "udr: Lasso tol %g; it must be >= 0", o->tol);
  if (!(o->kl_filter_threshold >= 0))
    return kn_err(KNOBS_ERR_ARG, "udr: kl_filter_threshold %g; it must be >= 0", o->kl_filter_threshold);
  if (o->threads < 1) return kn_err(KNOBS_ERR_ARG, "udr: %d threads; at least 1", o->threads);
  for (int r = 0; r < R; r++)
    for (size_t q = 0; q < (size_t)N * D; q++) {
      float v = reps[(size_t)r * N * D + q];
      if (!isfinite(v))
        return kn_err(KNOBS_ERR_DATA, "udr: run %d, row %zu, latent %zu is %s", r, q / (size_t)D, q % (size_t)D,
                      isnan(v) ? "NaN" : "infinite");
    }
  for (size_t q = 0; kl && q < (size_t)R * D; q++)
    if (!(isfinite(kl[q]) && kl[q] >= 0))
      return kn_err(KNOBS_ERR_DATA, "udr: the KL of run %zu, latent %zu is %g; a KL is finite and >= 0",
                    q / (size_t)D, q % (size_t)D, kl[q]);
  return KNOBS_OK;
}

knobs_status knobs_udr(const float *reps, const double *kl, int R, int N, int D, const knobs_udr_opts *o,
                       knobs_udr_result **out) {
  knobs_udr_opts def;
  if (!o) knobs_udr_opts_default(&def), o = &def;
  if (!out) return kn_err(KNOBS_ERR_ARG, "udr: no output");
  *out = NULL;
  knobs_status s = check_args(reps, kl, R, N, D, o);
  if (s) return s;
  int nt = o->threads;
  if ((long)nt > (long)R * (R - 1)) nt = R * (R - 1);
  size_t RR = (size_t)R * R, RD = (size_t)R * D, CC = RR * D * D;
  /* the result: one block (struct, doubles, ints) */
  size_t res_doubles = R + RR + (o->raw_correlations ? CC : 0) + RD, res_ints = RD + R;
  knobs_udr_result *res = calloc(1, sizeof *res + sizeof(double) * res_doubles + sizeof(int) * res_ints);
  /* the work: z, norms, flags, the matrices when not kept, per-thread scratch and ranks */
  size_t work_doubles = RD * N + RD + (o->raw_correlations ? 0 : CC) + (size_t)nt * (N + 2 * (size_t)D);
  double *work = malloc(sizeof(double) * work_doubles);
  unsigned char *cst = malloc(RD);
  kn_keyed *keyed = o->variant == KNOBS_UDR_SPEARMAN ? malloc(sizeof(kn_keyed) * (size_t)N) : NULL;
  kn_pool *pool = NULL;
  if (!res || !work || !cst || (o->variant == KNOBS_UDR_SPEARMAN && !keyed)) {
    s = kn_err(KNOBS_ERR_NOMEM, "udr: cannot allocate for %d runs of %d x %d", R, N, D);
    goto done;
  }
  if (nt > 1 && !(pool = kn_pool_create(nt))) {
    s = knobs_last_status();
    goto done;
  }
  double *dp = (double *)(res + 1);
  res->R = R, res->N = N, res->D = D, res->variant = o->variant;
  res->scores = dp, dp += R;
  res->pairwise = dp, dp += RR;
  if (o->raw_correlations) res->correlations = dp, dp += CC;
  res->kl = dp, dp += RD;
  res->active = (int *)dp;
  res->n_active = res->active + RD;
  for (int r = 0; r < R; r++)
    for (int d = 0; d < D; d++) {
      double v = kl ? kl[(size_t)r * D + d] : 0;
      res->kl[(size_t)r * D + d] = v;
      int a = !kl || v > o->kl_filter_threshold;
      res->active[(size_t)r * D + d] = a;
      res->n_active[r] += a;
    }
  udr_job j = {.R = R, .N = N, .D = D, .o = o, .z = work, .nrm = work + RD * N, .cst = cst,
               .active = res->active, .pairwise = res->pairwise};
  j.corr = o->raw_correlations ? res->correlations : j.nrm + RD;
  j.scratch = j.corr == res->correlations ? j.nrm + RD : j.nrm + RD + CC;
  memset(j.corr, 0, sizeof(double) * CC);
  for (int r = 0; r < R; r++) prepare_run(&j, reps, kl, r, keyed);
  kn_pool_run(pool, pair_task, &j);
  /* model_scores: the median of column i without its diagonal */
  double *col = j.z; /* R - 1 values: z (R*D*N of them) is no longer needed */
  for (int i = 0; i < R; i++) {
    int m = 0;
    for (int q = 0; q < R; q++)
      if (q != i) col[m++] = res->pairwise[(size_t)q * R + i];
    qsort(col, (size_t)m, sizeof(double), cmp_double);
    res->scores[i] = m % 2 ? col[m / 2] : 0.5 * (col[m / 2 - 1] + col[m / 2]);
  }
  *out = res, res = NULL;
done:
  kn_pool_free(pool);
  free(res), free(work), free(cst), free(keyed);
  return s;
}
