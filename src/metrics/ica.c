/* ica.c: FastICA as scikit-learn 1.2 defines it (sklearn/decomposition/_fastica.py: FastICA with
 * whiten='unit-variance', algorithm='parallel', fun='logcosh' (alpha 1), whiten_solver='svd'),
 * in double, for X (n,d) and k components:
 *   centre:   Xc = X - mean (over rows);
 *   whiten:   Xc^T = u diag(s) vh (SVD), each column of u signed so its first element is >= 0;
 *             K = (u / s)^T[:k] (k,d); X1 = sqrt(n) K Xc^T (k,n), white;
 *   iterate:  W = sym(w_init); W <- sym(tanh(W X1) X1^T / n - diag(mean(1 - tanh(W X1)^2)) W)
 *             with sym(M) = (M M^T)^-1/2 M, until lim = max_i | |(W_new W^T)_ii| - 1 | < tol or
 *             max_iter iterations;
 *   rescale:  S = Xc (W K)^T (n,k), each source divided by its standard deviation (ddof 0) and
 *             so is its row of W; unmixing = W K (sklearn's components_), mixing = its
 *             pseudo-inverse (scipy.linalg.pinv: singular values below max(k,d) eps s_max
 *             dropped).
 * The SVD of the centred data is computed as LAPACK's would be for a tall matrix: a Householder
 * QR (n >= d) and then a one-sided Jacobi SVD of the (d,d) triangle (of Xc itself when n < d);
 * (M M^T)^-1/2 M is V diag(s^-1/2) V^T M with V, s from a one-sided Jacobi SVD of M, the
 * eigenvalues clipped at DBL_MIN as sklearn clips them. Also: each source's excess kurtosis.
 * Differences from scikit-learn: w_init, when not given, comes from knobs' rng (the same seed
 * does not give NumPy's RandomState draws); k is refused above d or n (scikit-learn lowers it
 * with a warning); a rank-deficient centred matrix is refused (scikit-learn divides by a zero
 * singular value); a first element of exactly 0 keeps its column's sign (np.sign would zero
 * the column). Not here: the deflation algorithm, the exp and cube contrasts, whiten=False. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "metrics/metrics.h"

#define MAX_K 16384 /* components: k^2 stays an int */

void knobs_ica_opts_default(knobs_ica_opts *o) {
  memset(o, 0, sizeof *o);
  o->max_iter = 200;
  o->tol = 1e-4;
}

void knobs_ica_result_free(knobs_ica_result *r) { free(r); }

/* ---- linear algebra on small matrices ------------------------------------------------------- */
/* One-sided Jacobi (Hestenes): rotate pairs of the r rows of B (r,m) until they are orthogonal,
 * accumulating the rotations in V (r,r), so that B_out = V^T B_in. With M = B_in^T (m,r):
 * M V = U diag(s), s_j = |row j of B_out|, U_j = row j / s_j: the SVD M = U diag(s) V^T. Rows
 * are left unsorted. Converges quadratically; sweeps are capped (a cap never reached in tests). */
static void jacobi_rows(double *B, int r, int m, double *V) {
  for (int i = 0; i < r; i++)
    for (int j = 0; j < r; j++) V[(size_t)i * r + j] = i == j;
  for (int sweep = 0; sweep < 60; sweep++) {
    int rotated = 0;
    for (int p = 0; p < r; p++)
      for (int q = p + 1; q < r; q++) {
        double *bp = B + (size_t)p * m, *bq = B + (size_t)q * m, a = 0, b = 0, g = 0;
        for (int t = 0; t < m; t++) a += bp[t] * bp[t], b += bq[t] * bq[t], g += bp[t] * bq[t];
        if (g == 0 || fabs(g) <= 1e-15 * sqrt(a * b)) continue;
        rotated = 1;
        double zeta = (b - a) / (2 * g), t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double cs = 1 / sqrt(1 + t * t), sn = cs * t;
        for (int u = 0; u < m; u++) {
          double x = bp[u], y = bq[u];
          bp[u] = cs * x - sn * y, bq[u] = sn * x + cs * y;
        }
        for (int u = 0; u < r; u++) {
          double *vp = V + (size_t)u * r + p, *vq = V + (size_t)u * r + q, x = *vp, y = *vq;
          *vp = cs * x - sn * y, *vq = sn * x + cs * y;
        }
      }
    if (!rotated) break;
  }
}

static double row_norm(const double *x, int m) {
  double s = 0;
  for (int t = 0; t < m; t++) s += x[t] * x[t];
  return sqrt(s);
}

/* sklearn's _sym_decorrelation: M (k,k) <- (M M^T)^-1/2 M = V diag(1/sqrt(max(s^2, DBL_MIN)))
 * V^T M, with V and s of the one-sided Jacobi SVD of M's rows. scratch: 3 k^2 + k doubles. */
static void sym_decorrelate(double *M, int k, double *scratch) {
  double *B = scratch, *V = B + (size_t)k * k, *T = V + (size_t)k * k, *e = T + (size_t)k * k;
  memcpy(B, M, sizeof(double) * (size_t)k * k);
  jacobi_rows(B, k, k, V);
  for (int j = 0; j < k; j++) {
    double s = row_norm(B + (size_t)j * k, k);
    e[j] = 1 / sqrt(s * s > DBL_MIN ? s * s : DBL_MIN);
  }
  /* T = diag(e) V^T M (= diag(e) B), then M = V T */
  for (int j = 0; j < k; j++)
    for (int b = 0; b < k; b++) T[(size_t)j * k + b] = e[j] * B[(size_t)j * k + b];
  for (int a = 0; a < k; a++)
    for (int b = 0; b < k; b++) {
      double v = 0;
      for (int j = 0; j < k; j++) v += V[(size_t)a * k + j] * T[(size_t)j * k + b];
      M[(size_t)a * k + b] = v;
    }
}

/* Householder QR of the (n,d) matrix whose columns are the d rows of ct (d,n), n >= d; R (d,d)
 * upper triangular out (ct is destroyed). */
static void householder_r(double *ct, int n, int d, double *R) {
  memset(R, 0, sizeof(double) * (size_t)d * d);
  for (int j = 0; j < d; j++) {
    double *v = ct + (size_t)j * n, nrm = 0;
    for (int i = j; i < n; i++) nrm += v[i] * v[i];
    nrm = sqrt(nrm);
    double alpha = v[j] > 0 ? -nrm : nrm; /* the sign that avoids cancellation */
    R[(size_t)j * d + j] = alpha;
    v[j] -= alpha;
    double vv = 0;
    for (int i = j; i < n; i++) vv += v[i] * v[i];
    for (int l = j + 1; l < d; l++) {
      double *x = ct + (size_t)l * n, t = 0;
      if (vv > 0) {
        for (int i = j; i < n; i++) t += v[i] * x[i];
        t = 2 * t / vv;
        for (int i = j; i < n; i++) x[i] -= t * v[i];
      }
      R[(size_t)j * d + l] = x[j];
    }
  }
}

/* ---- the fit ----------------------------------------------------------------------------------- */
typedef struct {
  double *xc;   /* (n,d) centred data */
  double *work; /* (d,n) the columns of xc for the QR, or (n,d) the rows for the Jacobi SVD */
  double *R, *V;/* (m,m) triangle, rotations (m = min(n, d)) */
  double *sv;   /* (m) singular values */
  int *order;   /* (m) by decreasing singular value */
  double *Kw;   /* (k,d) whitening */
  double *X1;   /* (k,n) whitened data */
  double *G;    /* (k,n) tanh(W X1) */
  double *W, *W1, *gp, *sym; /* (k,k), (k,k), (k), sym_decorrelate's scratch */
  double *C;    /* (k,d) W K */
} ica_work;

static void ica_layout(kn_arena *a, ica_work *w, int n, int d, int k) {
  int m = n < d ? n : d;
  w->xc = kn_arena_take(a, sizeof(double) * (size_t)n * d);
  w->work = kn_arena_take(a, sizeof(double) * (size_t)n * d);
  w->R = kn_arena_take(a, sizeof(double) * (size_t)m * m);
  w->V = kn_arena_take(a, sizeof(double) * (size_t)m * m);
  w->sv = kn_arena_take(a, sizeof(double) * (size_t)m);
  w->order = kn_arena_take(a, sizeof(int) * (size_t)m);
  w->Kw = kn_arena_take(a, sizeof(double) * (size_t)k * d);
  w->X1 = kn_arena_take(a, sizeof(double) * (size_t)k * n);
  w->G = kn_arena_take(a, sizeof(double) * (size_t)k * n);
  w->W = kn_arena_take(a, sizeof(double) * (size_t)k * k);
  w->W1 = kn_arena_take(a, sizeof(double) * (size_t)k * k);
  w->gp = kn_arena_take(a, sizeof(double) * (size_t)k);
  w->sym = kn_arena_take(a, sizeof(double) * (3 * (size_t)k * k + (size_t)k));
  w->C = kn_arena_take(a, sizeof(double) * (size_t)k * d);
}

/* The whitening K (k,d) of the centred data: the top k left singular vectors of Xc^T over their
 * singular values, signed as sklearn signs them. KNOBS_ERR_DATA if fewer than k directions vary. */
static knobs_status whitening(ica_work *w, int n, int d, int k) {
  int m = n < d ? n : d;
  if (n >= d) { /* Xc = Q R, R^T's rows are R's columns: R V = U_r S, so Xc^T = V S (Q U_r)^T */
    for (int i = 0; i < n; i++)
      for (int j = 0; j < d; j++) w->work[(size_t)j * n + i] = w->xc[(size_t)i * d + j];
    householder_r(w->work, n, d, w->R);
    for (int a = 0; a < d; a++) /* R -> R^T in place */
      for (int b = a + 1; b < d; b++) {
        double t = w->R[(size_t)a * d + b];
        w->R[(size_t)a * d + b] = w->R[(size_t)b * d + a], w->R[(size_t)b * d + a] = t;
      }
    jacobi_rows(w->R, d, d, w->V);
    for (int j = 0; j < d; j++) w->sv[j] = row_norm(w->R + (size_t)j * d, d);
  } else { /* the rows of Xc are the columns of Xc^T: Xc^T V = U S directly */
    memcpy(w->work, w->xc, sizeof(double) * (size_t)n * d);
    jacobi_rows(w->work, n, d, w->V);
    for (int j = 0; j < n; j++) w->sv[j] = row_norm(w->work + (size_t)j * d, d);
  }
  for (int j = 0; j < m; j++) { /* insertion sort, decreasing: m is small */
    int q = j;
    while (q > 0 && w->sv[w->order[q - 1]] < w->sv[j]) w->order[q] = w->order[q - 1], q--;
    w->order[q] = j;
  }
  double smax = w->sv[w->order[0]];
  for (int i = 0; i < k; i++) {
    int j = w->order[i];
    double s = w->sv[j];
    /* a direction with no variance would be divided by (numerically) zero */
    if (!(s > smax * DBL_EPSILON * (n > d ? n : d)) || !(s > 0)) {
      int r = i;
      return kn_err(KNOBS_ERR_DATA, "ica: the centred data have rank %d, below the %d components asked for (constant "
                    "or collinear channels): ask for at most %d", r, k, r);
    }
    double *Ki = w->Kw + (size_t)i * d;
    for (int a = 0; a < d; a++) /* column j of u */
      Ki[a] = n >= d ? w->V[(size_t)a * d + j] : w->work[(size_t)j * d + a] / s;
    double sg = Ki[0] < 0 ? -1.0 : 1.0; /* u *= np.sign(u[0]) */
    for (int a = 0; a < d; a++) Ki[a] *= sg / s;
  }
  return KNOBS_OK;
}

/* The parallel FastICA iterations on X1 (k,n) from W0 (k,k): sklearn's _ica_par. */
static void ica_par(ica_work *w, int n, int k, const knobs_ica_opts *o, int *iters, double *lim_out) {
  double lim = INFINITY;
  int it = 0;
  sym_decorrelate(w->W, k, w->sym);
  while (it < o->max_iter) {
    kn_dgemm(0, 0, k, n, k, 1.0, w->W, k, w->X1, n, 0.0, w->G, n);
    for (int i = 0; i < k; i++) {
      double *g = w->G + (size_t)i * n, acc = 0;
      for (int s = 0; s < n; s++) {
        g[s] = tanh(g[s]);
        acc += 1 - g[s] * g[s];
      }
      w->gp[i] = acc / n;
    }
    kn_dgemm(0, 1, k, k, n, 1.0 / n, w->G, n, w->X1, n, 0.0, w->W1, k);
    for (int i = 0; i < k; i++)
      for (int j = 0; j < k; j++) w->W1[(size_t)i * k + j] -= w->gp[i] * w->W[(size_t)i * k + j];
    sym_decorrelate(w->W1, k, w->sym);
    lim = 0;
    for (int i = 0; i < k; i++) {
      double dot = 0;
      for (int j = 0; j < k; j++) dot += w->W1[(size_t)i * k + j] * w->W[(size_t)i * k + j];
      double c = fabs(fabs(dot) - 1);
      lim = c > lim ? c : lim;
    }
    memcpy(w->W, w->W1, sizeof(double) * (size_t)k * k);
    it++;
    if (lim < o->tol) break;
  }
  *iters = it;
  *lim_out = lim;
}

/* mixing (d,k) = pinv(C) for C (k,d) = scipy.linalg.pinv: with the Jacobi SVD of C's rows
 * (C^T = U S V^T), pinv(C) = U S^-1 V^T over the singular values above max(k,d) eps s_max. */
static void pinv_rows(const double *C, int k, int d, double *mixing, double *B, double *V, double *s2) {
  memcpy(B, C, sizeof(double) * (size_t)k * d);
  jacobi_rows(B, k, d, V);
  double smax = 0;
  for (int j = 0; j < k; j++) {
    double s = row_norm(B + (size_t)j * d, d);
    s2[j] = s * s;
    smax = s > smax ? s : smax;
  }
  double cut = smax * DBL_EPSILON * (k > d ? k : d);
  for (int a = 0; a < d; a++)
    for (int b = 0; b < k; b++) {
      double v = 0;
      for (int j = 0; j < k; j++)
        if (s2[j] > cut * cut) v += B[(size_t)j * d + a] * V[(size_t)b * k + j] / s2[j];
      mixing[(size_t)a * k + b] = v;
    }
}

/* The result in one block: the struct, then sources, unmixing, mixing, mean, kurtosis. */
static knobs_ica_result *result_alloc(int n, int d, int k) {
  size_t nd = (size_t)n * k + 2 * (size_t)k * d + (size_t)d + (size_t)k;
  knobs_ica_result *r = calloc(1, sizeof *r + sizeof(double) * nd);
  if (!r) return NULL;
  r->n = n, r->d = d, r->k = k;
  r->sources = (double *)(r + 1);
  r->unmixing = r->sources + (size_t)n * k;
  r->mixing = r->unmixing + (size_t)k * d;
  r->mean = r->mixing + (size_t)d * k;
  r->kurtosis = r->mean + d;
  return r;
}

static knobs_status check_input(const double *X, int n, int d, const knobs_ica_opts *o, int k) {
  if (!X || n < 1 || d < 1) return kn_err(KNOBS_ERR_ARG, "ica: no data (%d rows of %d channels)", n, d);
  if (o->k < 0 || k > MAX_K)
    return kn_err(KNOBS_ERR_ARG, "ica: %d components: between 1 and %d (0: one per channel)", o->k, MAX_K);
  if (k > d)
    return kn_err(KNOBS_ERR_ARG, "ica: %d components asked of data with %d channel%s: at most one per channel (k <= "
                  "d)", k, d, d == 1 ? "" : "s");
  if (o->max_iter < 1 || !(o->tol >= 0) || !isfinite(o->tol))
    return kn_err(KNOBS_ERR_ARG, "ica: max_iter %d (>= 1) or tol %g (finite, >= 0) out of range", o->max_iter, o->tol);
  if (n < k || n < 2)
    return kn_err(KNOBS_ERR_DATA, "ica: %d row%s for %d component%s: at least max(k, 2) rows are needed", n,
                  n == 1 ? "" : "s", k, k == 1 ? "" : "s");
  for (size_t q = 0; q < (size_t)n * d; q++)
    if (!isfinite(X[q]))
      return kn_err(KNOBS_ERR_DATA, "ica: row %zu, channel %zu is %s: the data must be finite", q / (size_t)d,
                    q % (size_t)d, isnan(X[q]) ? "NaN" : "infinite");
  for (int q = 0; o->w_init && q < k * k; q++)
    if (!isfinite(o->w_init[q])) return kn_err(KNOBS_ERR_ARG, "ica: w_init element %d is not finite", q);
  return KNOBS_OK;
}

/* Sources to unit variance (ddof 0) with their rows of C, and each source's excess kurtosis
 * m4 / m2^2 - 3 (central moments, scipy.stats.kurtosis with fisher=True, bias=True). */
static knobs_status unit_variance(knobs_ica_result *r, double *C) {
  int n = r->n, k = r->k, d = r->d;
  for (int i = 0; i < k; i++) {
    double m = 0, m2 = 0, m4 = 0;
    for (int s = 0; s < n; s++) m += r->sources[(size_t)s * k + i];
    m /= n;
    for (int s = 0; s < n; s++) {
      double x = r->sources[(size_t)s * k + i] - m;
      m2 += x * x;
    }
    m2 /= n;
    if (!(m2 > 0)) return kn_err(KNOBS_ERR_DATA, "ica: source %d has no variance", i);
    double sd = sqrt(m2);
    for (int s = 0; s < n; s++) {
      double x = (r->sources[(size_t)s * k + i] /= sd) - m / sd;
      m4 += x * x * x * x;
    }
    for (int a = 0; a < d; a++) C[(size_t)i * d + a] /= sd;
    r->kurtosis[i] = m4 / n - 3; /* the central m2 of the rescaled source is 1 */
  }
  return KNOBS_OK;
}

knobs_status knobs_ica(const double *X, int n, int d, const knobs_ica_opts *opts, knobs_ica_result **out) {
  *out = NULL;
  knobs_ica_opts def;
  if (!opts) knobs_ica_opts_default(&def), opts = &def;
  int k = opts->k ? opts->k : (n < d ? n : d);
  knobs_status s = check_input(X, n, d, opts, k);
  if (s) return s;
  if ((s = kn_blas_init())) return s;
  kn_arena ar = {0};
  ica_work w;
  ica_layout(&ar, &w, n, d, k); /* counting */
  if ((s = kn_arena_reserve(&ar, "ica: the working arrays"))) return s;
  ica_layout(&ar, &w, n, d, k);
  knobs_ica_result *r = result_alloc(n, d, k);
  if (!r) {
    kn_arena_free(&ar);
    return kn_err(KNOBS_ERR_NOMEM, "ica: cannot allocate the result (%d x %d sources)", n, k);
  }
  for (int i = 0; i < n; i++)
    for (int a = 0; a < d; a++) r->mean[a] += X[(size_t)i * d + a];
  for (int a = 0; a < d; a++) r->mean[a] /= n;
  for (int i = 0; i < n; i++)
    for (int a = 0; a < d; a++) w.xc[(size_t)i * d + a] = X[(size_t)i * d + a] - r->mean[a];
  if ((s = whitening(&w, n, d, k))) goto done;
  kn_dgemm(0, 1, k, n, d, sqrt((double)n), w.Kw, d, w.xc, d, 0.0, w.X1, n); /* X1 = sqrt(n) K Xc^T */
  if (opts->w_init) {
    memcpy(w.W, opts->w_init, sizeof(double) * (size_t)k * k);
  } else {
    kn_rng rng;
    kn_rng_seed(&rng, opts->seed, KN_STREAM_INIT);
    for (int q = 0; q < k * k; q++) w.W[q] = kn_rng_normal(&rng);
  }
  ica_par(&w, n, k, opts, &r->iterations, &r->change);
  r->converged = r->change < opts->tol;
  kn_dgemm(0, 0, k, d, k, 1.0, w.W, k, w.Kw, d, 0.0, w.C, d);                 /* C = W K */
  kn_dgemm(0, 1, n, k, d, 1.0, w.xc, d, w.C, d, 0.0, r->sources, k);         /* S = Xc C^T */
  if ((s = unit_variance(r, w.C))) goto done;
  memcpy(r->unmixing, w.C, sizeof(double) * (size_t)k * d);
  pinv_rows(w.C, k, d, r->mixing, w.work, w.V, w.sv); /* scratch sizes: n d, m^2, m (m >= k) */
done:
  kn_arena_free(&ar);
  if (s) knobs_ica_result_free(r);
  else *out = r;
  return s;
}
