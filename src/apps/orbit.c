/* orbit.c: a symmetry as a loop in latent space (`knobs orbit`, docs/apps.md "knobs orbit").
 * The codes of an ordered sequence of inputs (one observation swept along a factor, or any
 * sequence the caller gives) are summarised by:
 *   PCA       centre = the mean code; the plane of the top two eigenvectors of the covariance
 *             (1/n) sum (z_i - mean)(z_i - mean)^T, found by cyclic Jacobi rotations (Golub & Van
 *             Loan, Matrix Computations, 4th ed., Alg. 8.5.3; the n x n Gram matrix when n < Z);
 *             plane share = (l1 + l2) / trace;
 *   circle    Kasa's algebraic fit in the plane (I. Kasa, IEEE Trans. Instrum. Meas. 25:8-14, 1976:
 *             least squares of x^2 + y^2 + D x + E y + F), refined geometrically (Levenberg-
 *             Marquardt on sum (|p_i - c| - r)^2, as Chernov & Lesort, J. Math. Imaging Vis.
 *             23:239-252, 2005, recommend: Kasa's fit shrinks the radius of noisy or partial arcs);
 *             relative residual = sqrt(mean (|p_i - c| - r)^2) / r;
 *   winding   the steps of the angle around the circle's centre, each wrapped into [-pi, pi],
 *             summed over consecutive points (and from the last back to the first when the orbit
 *             is closed), / 2 pi;
 *   circular-linear correlation (Mardia, Biometrika 63:403-405, 1976; Mardia & Jupp, Directional
 *             Statistics, 2000, ch. 11; R's Directional::circlin.cor) of the angle theta and a value x:
 *             R^2 = (r_xc^2 + r_xs^2 - 2 r_xc r_xs r_cs) / (1 - r_cs^2), r_xc = corr(x, cos theta),
 *             r_xs = corr(x, sin theta), r_cs = corr(cos theta, sin theta) (Pearson); and the
 *             Pearson correlation of the unwrapped angle with x (knobs' own addition: 1 for a
 *             uniform traversal whatever the winding, where R^2 is 6/pi^2 for one turn).
 * And the picture of it (knobs_orbit_png): the orbit in the plane, the circle, its centre,
 * drawn by a small anti-aliased rasteriser of its own (coverage from the distance to each
 * segment, ring or disc). It does not decide what a "good" orbit is: it reports the numbers.
 * Uses only the public model and data calls (and knobs_correlations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/apps.h"
#include "core/core.h"

void knobs_orbit_opts_default(knobs_orbit_opts *o) {
  o->closed = KNOBS_ORBIT_AUTO;
  o->refine = 1;
}

void knobs_orbit_free(knobs_orbit *r) { free(r); }

/* The result in one block: the struct, then mean (Z), axes (2Z), xy (2n), angle (n), values (n,
 * if any), then classes (n int32, if asked for). */
static knobs_orbit *orbit_alloc(int n, int Z, int with_values, int with_classes) {
  size_t nd = (size_t)3 * Z + (size_t)3 * n + (with_values ? (size_t)n : 0);
  size_t bytes = sizeof(knobs_orbit) + sizeof(double) * nd + (with_classes ? sizeof(int32_t) * (size_t)n : 0);
  knobs_orbit *r = calloc(1, bytes);
  if (!r) {
    kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate the result (%d points of %d dimensions)", n, Z);
    return NULL;
  }
  double *p = (double *)(r + 1);
  r->n = n, r->Z = Z;
  r->mean = p, p += Z;
  r->axes = p, p += 2 * (size_t)Z;
  r->xy = p, p += 2 * (size_t)n;
  r->angle = p, p += n;
  if (with_values) r->values = p, p += n;
  if (with_classes) r->classes = (int32_t *)p;
  r->factor = -1, r->index = -1;
  return r;
}

/* ---- PCA ----------------------------------------------------------------------------------- */

/* x_k <- c x_k - s y_k and y_k <- s x_k + c y_k for k < n, elements `stride` apart: the plane
 * rotation J(p, q) applied to a pair of rows or columns. */
static void rotate(double *x, double *y, size_t stride, int n, double c, double s) {
  for (int k = 0; k < n; k++, x += stride, y += stride) {
    double a = *x, b = *y;
    *x = c * a - s * b;
    *y = s * a + c * b;
  }
}

/* a (n,n) symmetric, destroyed: a = V diag(ev) V^T with the eigenvectors in the columns of V
 * (n,n), unsorted. Cyclic Jacobi: each rotation zeroes a_pq with the symmetric Schur pair
 * (tau = (a_qq - a_pp) / 2 a_pq, t = sign(tau) / (|tau| + sqrt(1 + tau^2)), c = 1/sqrt(1 + t^2),
 * s = t c); sweeps stop when the off-diagonal mass is below 1e-30 of the whole. Exact for
 * repeated eigenvalues (a circle's l1 = l2), which power methods are not. */
static void jacobi_eigen(double *a, int n, double *ev, double *V) {
  memset(V, 0, sizeof(double) * (size_t)n * n);
  for (int i = 0; i < n; i++) V[(size_t)i * n + i] = 1;
  for (int sweep = 0; sweep < 64; sweep++) {
    double off = 0, all = 0;
    for (size_t i = 0; i < (size_t)n * n; i++) all += a[i] * a[i];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) off += i == j ? 0 : a[(size_t)i * n + j] * a[(size_t)i * n + j];
    if (off <= 1e-30 * all) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[(size_t)p * n + q];
        if (apq == 0) continue;
        double tau = (a[(size_t)q * n + q] - a[(size_t)p * n + p]) / (2 * apq);
        double t = (tau >= 0 ? 1 : -1) / (fabs(tau) + sqrt(1 + tau * tau)), c = 1 / sqrt(1 + t * t);
        rotate(a + p, a + q, (size_t)n, n, c, t * c);                         /* a J */
        rotate(a + (size_t)p * n, a + (size_t)q * n, 1, n, c, t * c);         /* J^T a */
        rotate(V + p, V + q, (size_t)n, n, c, t * c);                         /* V J */
      }
  }
  for (int i = 0; i < n; i++) ev[i] = a[(size_t)i * n + i];
}

/* Axis a (Z) of r from eigenvector u (m) of eigenvalue l: u itself (covariance), or
 * X^T u / sqrt(n l) (Gram: the same principal direction, since X^T X X^T u = n l X^T u). The
 * second axis is made orthogonal to the first and unit (a Gram eigenvalue of 0, from collinear
 * points, leaves it undefined: then the basis vector least along the first axis serves). */
static void set_axis(knobs_orbit *r, const double *X, const double *V, int m, int col, double l, int gram, int a) {
  int n = r->n, Z = r->Z;
  double *ax = r->axes + (size_t)a * Z, nn = 0, big = 0;
  for (int j = 0; j < Z; j++) {
    double v = 0;
    if (!gram) v = V[(size_t)j * m + col];
    else
      for (int i = 0; i < n && l > 0; i++) v += X[(size_t)i * Z + j] * V[(size_t)i * m + col] / sqrt(n * l);
    ax[j] = v;
  }
  for (int pass = 0; pass < 2; pass++) {
    if (a == 1) { /* orthogonalise against the first axis */
      double d = 0;
      for (int j = 0; j < Z; j++) d += ax[j] * r->axes[j];
      for (int j = 0; j < Z; j++) ax[j] -= d * r->axes[j];
    }
    nn = 0;
    for (int j = 0; j < Z; j++) nn += ax[j] * ax[j];
    if (nn > 1e-24) break;
    int least = 0; /* undefined direction: the basis vector least along axis 0 */
    for (int j = 0; j < Z; j++) {
      ax[j] = 0;
      if (fabs(r->axes[j]) < fabs(r->axes[least])) least = j;
    }
    ax[least] = 1;
  }
  for (int j = 0; j < Z; j++) {
    ax[j] /= sqrt(nn);
    if (fabs(ax[j]) > fabs(big)) big = ax[j];
  }
  for (int j = 0; big < 0 && j < Z; j++) ax[j] = -ax[j]; /* largest |component| positive */
}

/* mean, axes, var, var_total, plane_share and xy of r from codes (n,Z). The eigenproblem is the
 * covariance (Z,Z), or the Gram matrix X X^T / n (n,n) of the centred codes X when n < Z (the
 * same nonzero eigenvalues, at O(n^3) instead of O(Z^3): long codes, or raw inputs, stay cheap).
 * KNOBS_ERR_DATA when the codes do not vary. */
static knobs_status pca_plane(const float *codes, int n, int Z, knobs_orbit *r) {
  int gram = n < Z, m = gram ? n : Z;
  double *X = malloc(sizeof(double) * ((size_t)n * Z + (size_t)m * m * 2 + m));
  if (!X) return kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate the PCA of %d codes of %d dimensions", n, Z);
  double *A = X + (size_t)n * Z, *V = A + (size_t)m * m, *ev = V + (size_t)m * m, trace = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < Z; j++) r->mean[j] += codes[(size_t)i * Z + j];
  for (int j = 0; j < Z; j++) r->mean[j] /= n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < Z; j++) X[(size_t)i * Z + j] = codes[(size_t)i * Z + j] - r->mean[j];
  for (int p = 0; p < m; p++)
    for (int q = p; q < m; q++) {
      double s = 0;
      if (gram)
        for (int j = 0; j < Z; j++) s += X[(size_t)p * Z + j] * X[(size_t)q * Z + j];
      else
        for (int i = 0; i < n; i++) s += X[(size_t)i * Z + p] * X[(size_t)i * Z + q];
      A[(size_t)p * m + q] = A[(size_t)q * m + p] = s / n;
      trace += p == q ? s / n : 0;
    }
  if (!(trace > 0)) {
    free(X);
    return kn_err(KNOBS_ERR_DATA, "orbit: the %d codes are all equal: there is no plane to find (do the inputs "
                  "differ?)", n);
  }
  jacobi_eigen(A, m, ev, V);
  int top[2] = {-1, -1};
  for (int j = 0; j < m; j++) {
    if (top[0] < 0 || ev[j] > ev[top[0]]) top[1] = top[0], top[0] = j;
    else if (top[1] < 0 || ev[j] > ev[top[1]]) top[1] = j;
  }
  for (int a = 0; a < 2; a++) {
    r->var[a] = ev[top[a]] > 0 ? ev[top[a]] : 0;
    set_axis(r, X, V, m, top[a], r->var[a] > 1e-14 * trace ? r->var[a] : 0, gram, a);
  }
  r->var_total = trace;
  r->plane_share = (r->var[0] + r->var[1]) / trace;
  if (r->plane_share > 1) r->plane_share = 1; /* rounding */
  for (int i = 0; i < n; i++)
    for (int a = 0; a < 2; a++) {
      double s = 0;
      for (int j = 0; j < Z; j++) s += X[(size_t)i * Z + j] * r->axes[(size_t)a * Z + j];
      r->xy[2 * i + a] = s;
    }
  free(X);
  return KNOBS_OK;
}

/* ---- the circle ---------------------------------------------------------------------------- */

/* Solve the 3x3 system M p = b (M destroyed) by Gaussian elimination with partial pivoting; 0
 * if a pivot is below 1e-12 of the largest |M| entry (singular: collinear points). */
static int solve3(double M[3][3], double b[3], double p[3]) {
  double big = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) big = fmax(big, fabs(M[i][j]));
  for (int c = 0; c < 3; c++) {
    int piv = c;
    for (int i = c + 1; i < 3; i++)
      if (fabs(M[i][c]) > fabs(M[piv][c])) piv = i;
    if (!(fabs(M[piv][c]) > 1e-12 * big)) return 0;
    for (int j = 0; j < 3; j++) {
      double t = M[c][j];
      M[c][j] = M[piv][j], M[piv][j] = t;
    }
    double t = b[c];
    b[c] = b[piv], b[piv] = t;
    for (int i = c + 1; i < 3; i++) {
      double f = M[i][c] / M[c][c];
      for (int j = c; j < 3; j++) M[i][j] -= f * M[c][j];
      b[i] -= f * b[c];
    }
  }
  for (int c = 2; c >= 0; c--) {
    double s = b[c];
    for (int j = c + 1; j < 3; j++) s -= M[c][j] * p[j];
    p[c] = s / M[c][c];
  }
  return 1;
}

/* Kasa's fit of xy (n,2), given in units of `scale` (the points' RMS distance from their
 * mean, so that the normal equations are of order 1): 0 if the points are collinear. */
static int kasa_fit(const double *xy, int n, double scale, double c[3]) {
  double M[3][3] = {{0}}, b[3] = {0}, p[3];
  for (int i = 0; i < n; i++) {
    double u[3] = {xy[2 * i] / scale, xy[2 * i + 1] / scale, 1}, w = u[0] * u[0] + u[1] * u[1];
    for (int j = 0; j < 3; j++) {
      for (int k = 0; k < 3; k++) M[j][k] += u[j] * u[k];
      b[j] -= u[j] * w;
    }
  }
  if (!solve3(M, b, p)) return 0;
  double cx = -p[0] / 2, cy = -p[1] / 2, r2 = cx * cx + cy * cy - p[2];
  if (!(r2 > 0) || !isfinite(r2)) return 0;
  c[0] = cx * scale, c[1] = cy * scale, c[2] = sqrt(r2) * scale;
  return 1;
}

/* sum over points of (|p_i - c| - r)^2 */
static double radial_cost(const double *xy, int n, const double c[3]) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    double e = hypot(xy[2 * i] - c[0], xy[2 * i + 1] - c[1]) - c[2];
    s += e * e;
  }
  return s;
}

/* Levenberg-Marquardt on the geometric cost from c (cx, cy, r), in place: residuals
 * e_i = d_i - r, d_i = |p_i - c|, Jacobian rows (-(x_i - cx)/d_i, -(y_i - cy)/d_i, -1); damping
 * lambda diag(J^T J), divided by 10 after a step that lowers the cost and multiplied by 10 after
 * one that does not. Stops when a step lowers the cost by less than 1e-14 of it, after 200
 * iterations, or when lambda passes 1e16. Returns the accepted steps. */
static int geometric_fit(const double *xy, int n, double c[3]) {
  double cost = radial_cost(xy, n, c), lambda = 1e-3;
  int accepted = 0;
  for (int it = 0; it < 200 && lambda < 1e16 && cost > 0; it++) {
    double A[3][3] = {{0}}, g[3] = {0}, step[3];
    for (int i = 0; i < n; i++) {
      double dx = xy[2 * i] - c[0], dy = xy[2 * i + 1] - c[1], d = hypot(dx, dy);
      double J[3] = {d > 0 ? -dx / d : 0, d > 0 ? -dy / d : 0, -1}, e = d - c[2];
      for (int j = 0; j < 3; j++) {
        for (int k = 0; k < 3; k++) A[j][k] += J[j] * J[k];
        g[j] -= J[j] * e;
      }
    }
    for (int j = 0; j < 3; j++) A[j][j] *= 1 + lambda;
    double t[3];
    if (!solve3(A, g, step)) {
      lambda *= 10;
      continue;
    }
    for (int j = 0; j < 3; j++) t[j] = c[j] + step[j];
    double nc = t[2] > 0 ? radial_cost(xy, n, t) : INFINITY;
    if (nc < cost) {
      int done = cost - nc <= 1e-14 * cost;
      memcpy(c, t, sizeof t), cost = nc, lambda /= 10, accepted++;
      if (done) break;
    } else {
      lambda *= 10;
    }
  }
  return accepted;
}

/* circle, kasa_*, refine_iters and residual of r from r->xy. */
static void fit_circle(knobs_orbit *r, int refine) {
  int n = r->n;
  double ms = 0, c[3];
  for (int i = 0; i < 2 * n; i++) ms += r->xy[i] * r->xy[i];
  r->circle = kasa_fit(r->xy, n, sqrt(ms / n), c);
  r->cx = r->cy = r->radius = r->residual = NAN;
  r->kasa_cx = r->kasa_cy = r->kasa_radius = NAN;
  if (!r->circle) return;
  r->kasa_cx = c[0], r->kasa_cy = c[1], r->kasa_radius = c[2];
  if (refine) r->refine_iters = geometric_fit(r->xy, n, c);
  r->cx = c[0], r->cy = c[1], r->radius = c[2];
  r->residual = sqrt(radial_cost(r->xy, n, c) / n) / c[2];
}

/* ---- angles: winding and the correlations --------------------------------------------------- */

/* angle, winding and max_step of r; unwrapped (n) gets the running sum of the steps from
 * angle[0]. Around the circle's centre; without a circle (collinear points) there is nothing
 * to wind around, and all of them are NaN. */
static void wind(knobs_orbit *r, double *unwrapped) {
  int n = r->n;
  double total = 0;
  if (!r->circle) {
    for (int i = 0; i < n; i++) r->angle[i] = unwrapped[i] = NAN;
    r->winding = r->max_step = NAN;
    return;
  }
  for (int i = 0; i < n; i++) r->angle[i] = atan2(r->xy[2 * i + 1] - r->cy, r->xy[2 * i] - r->cx);
  r->max_step = 0;
  unwrapped[0] = r->angle[0];
  for (int i = 1; i <= n; i++) {
    if (i == n && !r->closed) break;
    double d = remainder(r->angle[i % n] - r->angle[i - 1], 2 * M_PI); /* wrapped into [-pi, pi] */
    total += d;
    r->max_step = fmax(r->max_step, fabs(d));
    if (i < n) unwrapped[i] = unwrapped[i - 1] + d;
  }
  r->winding = total / (2 * M_PI);
}

/* circlin_r2 and angle_corr from r->values (NaN without values, with constant values, or
 * without a circle). */
static knobs_status correlate(knobs_orbit *r, double *unwrapped) {
  r->circlin_r2 = r->angle_corr = NAN;
  int n = r->n, varies = 0;
  for (int i = 1; r->values && r->circle && i < n; i++) varies |= r->values[i] != r->values[0];
  if (!varies) return KNOBS_OK;
  double *cols = malloc(sizeof(double) * (size_t)n * 5), corr[3], rcs;
  if (!cols) return kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate %d angles", n);
  double *cs = cols + (size_t)n * 3, *sn = cs + n;
  for (int i = 0; i < n; i++) {
    cs[i] = cos(r->angle[i]), sn[i] = sin(r->angle[i]);
    cols[3 * i] = cs[i], cols[3 * i + 1] = sn[i], cols[3 * i + 2] = unwrapped[i];
  }
  /* corr(cos, x), corr(sin, x), corr(unwrapped, x), and corr(cos, sin). A constant column
   * correlates 0 here (knobs_correlations' rule), which leaves R^2 to the other column. */
  knobs_status s = knobs_correlations(cols, r->values, n, 3, 1, 0, corr);
  if (!s) s = knobs_correlations(cs, sn, n, 1, 1, 0, &rcs);
  free(cols);
  if (s) return s;
  if (fabs(rcs) < 1) {
    double r2 = (corr[0] * corr[0] + corr[1] * corr[1] - 2 * corr[0] * corr[1] * rcs) / (1 - rcs * rcs);
    r->circlin_r2 = r2 < 0 ? 0 : r2 > 1 ? 1 : r2;
  }
  r->angle_corr = corr[2];
  return KNOBS_OK;
}

/* ---- the entry points ----------------------------------------------------------------------- */

static knobs_status check_opts(const knobs_orbit_opts *o) {
  if (o->closed != KNOBS_ORBIT_AUTO && o->closed != KNOBS_ORBIT_OPEN && o->closed != KNOBS_ORBIT_CLOSED)
    return kn_err(KNOBS_ERR_ARG, "orbit: closed = %d; use KNOBS_ORBIT_AUTO (-1), OPEN (0) or CLOSED (1)", o->closed);
  if (o->refine != 0 && o->refine != 1) return kn_err(KNOBS_ERR_ARG, "orbit: refine = %d; use 0 or 1", o->refine);
  return KNOBS_OK;
}

static knobs_status check_counts(int n, int Z) {
  if (n < 3) return kn_err(KNOBS_ERR_ARG, "orbit: %d point%s; an orbit needs at least 3", n, n == 1 ? "" : "s");
  if (Z < 2) return kn_err(KNOBS_ERR_ARG, "orbit: codes of %d dimension%s; a plane needs at least 2", Z, Z == 1 ? "" : "s");
  return KNOBS_OK;
}

/* KNOBS_ERR_DATA naming the row and column of the first NaN or Inf of x (n,w) floats or doubles. */
static knobs_status check_finite(const float *xf, const double *xd, int n, size_t w, const char *what) {
  for (size_t q = 0; q < (size_t)n * w; q++)
    if (!isfinite(xf ? (double)xf[q] : xd[q]))
      return kn_err(KNOBS_ERR_DATA, "orbit: %s of point %zu holds %s (element %zu)", what, q / w,
                    isnan(xf ? (double)xf[q] : xd[q]) ? "NaN" : "an infinity", q % w);
  return KNOBS_OK;
}

/* The statistics of checked codes (n,Z) and values (n) or NULL; `identical`: the last input
 * equals the first (then a closed orbit drops it). */
static knobs_status orbit_run(const float *codes, int n, int Z, const double *values, int identical,
                              const knobs_orbit_opts *o, int with_classes, knobs_orbit **out) {
  int closed = o->closed == KNOBS_ORBIT_AUTO ? identical : o->closed, drop = closed && identical, m = n - drop;
  if (m < 3)
    return kn_err(KNOBS_ERR_ARG, "orbit: %d points after dropping the last, which equals the first; an orbit needs "
                  "at least 3", m);
  knobs_orbit *r = orbit_alloc(m, Z, values != NULL, with_classes);
  double *unwrapped = r ? malloc(sizeof(double) * (size_t)m) : NULL;
  if (!unwrapped) {
    free(r);
    return r ? kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate %d angles", m) : knobs_last_status();
  }
  r->closed = closed, r->dropped = drop;
  if (values) memcpy(r->values, values, sizeof(double) * (size_t)m);
  knobs_status s = pca_plane(codes, m, Z, r);
  if (!s) {
    fit_circle(r, o->refine);
    wind(r, unwrapped);
    s = correlate(r, unwrapped);
  }
  free(unwrapped);
  if (s) {
    free(r);
    return s;
  }
  *out = r;
  return KNOBS_OK;
}

knobs_status knobs_orbit_codes(const float *codes, int n, int Z, const double *values, const knobs_orbit_opts *o,
                               knobs_orbit **out) {
  knobs_orbit_opts def;
  if (!o) knobs_orbit_opts_default(&def), o = &def;
  if (!out) return kn_err(KNOBS_ERR_ARG, "orbit: no result pointer");
  *out = NULL;
  knobs_status s = check_opts(o);
  if (!s) s = check_counts(n, Z);
  if (!s && !codes) s = kn_err(KNOBS_ERR_ARG, "orbit: no codes");
  if (!s) s = check_finite(codes, NULL, n, (size_t)Z, "the code");
  if (!s && values) s = check_finite(NULL, values, n, 1, "the value");
  if (s) return s;
  int identical = !memcmp(codes, codes + (size_t)(n - 1) * Z, sizeof(float) * (size_t)Z);
  return orbit_run(codes, n, Z, values, identical, o, 0, out);
}

/* knobs_orbit_inputs, with room for the classes when with_classes. */
static knobs_status inputs_run(knobs_model *m, const float *x, int n, const double *values, const knobs_orbit_opts *o,
                               int with_classes, knobs_orbit **out) {
  const knobs_config *c = knobs_model_config(m);
  size_t D = (size_t)knobs_config_number(c, "C") * (size_t)knobs_config_number(c, "H") *
             (size_t)knobs_config_number(c, "W");
  int Z = knobs_model_code_dim(m);
  knobs_status s = check_opts(o);
  if (!s) s = check_counts(n, Z);
  if (!s) s = check_finite(x, NULL, n, D, "the input");
  if (!s && values) s = check_finite(NULL, values, n, 1, "the value");
  if (s) return s;
  float *codes = malloc(sizeof(float) * (size_t)n * Z);
  if (!codes) return kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate %d codes", n);
  s = knobs_model_encode(m, x, n, codes, NULL);
  if (!s) s = check_finite(codes, NULL, n, (size_t)Z, "the model's code");
  if (!s) s = orbit_run(codes, n, Z, values, !memcmp(x, x + (size_t)(n - 1) * D, sizeof(float) * D), o,
                        with_classes, out);
  free(codes);
  return s;
}

knobs_status knobs_orbit_inputs(knobs_model *m, const float *x, int n, const double *values, const knobs_orbit_opts *o,
                                knobs_orbit **out) {
  knobs_orbit_opts def;
  if (!o) knobs_orbit_opts_default(&def), o = &def;
  if (!out) return kn_err(KNOBS_ERR_ARG, "orbit: no result pointer");
  *out = NULL;
  if (!m || !x) return kn_err(KNOBS_ERR_ARG, "orbit: no model or no inputs");
  return inputs_run(m, x, n, values, o, 0, out);
}

knobs_status knobs_orbit_factor(knobs_model *m, knobs_data *d, int64_t index, int factor, const knobs_orbit_opts *o,
                                knobs_orbit **out) {
  knobs_orbit_opts def;
  if (!o) knobs_orbit_opts_default(&def), o = &def;
  if (!out) return kn_err(KNOBS_ERR_ARG, "orbit: no result pointer");
  *out = NULL;
  if (!m || !d) return kn_err(KNOBS_ERR_ARG, "orbit: no model or no dataset");
  const knobs_data_info *in = knobs_data_info_get(d);
  const knobs_config *c = knobs_model_config(m);
  if (in->K == 0) return kn_err(KNOBS_ERR_UNSUPPORTED, "orbit: %s has no ground-truth factors to sweep", in->name);
  if (factor < 0 || factor >= in->K)
    return kn_err(KNOBS_ERR_ARG, "orbit: factor %d out of range: %s has %d factors (0..%d)", factor, in->name, in->K,
                  in->K - 1);
  int F = in->factor_sizes[factor];
  if (F < 2)
    return kn_err(KNOBS_ERR_DATA, "orbit: factor %s of %s has a single class: there is nothing to sweep",
                  in->factor_names[factor], in->name);
  if (!in->has_render)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "orbit: %s cannot render an observation of any factor vector (it is read "
                  "from a file): give the ordered inputs instead", in->name);
  if (index < 0 || index >= in->n)
    return kn_err(KNOBS_ERR_ARG, "orbit: index %lld out of range 0..%lld of %s", (long long)index,
                  (long long)in->n - 1, in->name);
  if (knobs_config_number(c, "C") != in->C || knobs_config_number(c, "H") != in->H ||
      knobs_config_number(c, "W") != in->W)
    return kn_err(KNOBS_ERR_ARG, "orbit: %s's observations are (%d,%d,%d), the model's inputs (%g,%g,%g)", in->name,
                  in->C, in->H, in->W, knobs_config_number(c, "C"), knobs_config_number(c, "H"),
                  knobs_config_number(c, "W"));
  size_t D = (size_t)in->C * in->H * in->W;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)F * in->K);
  double *values = malloc(sizeof(double) * (size_t)F);
  float *x = malloc(sizeof(float) * D * (size_t)F);
  knobs_status s = f && values && x ? KNOBS_OK : kn_err(KNOBS_ERR_NOMEM, "orbit: cannot render %d observations", F);
  for (int i = 0; !s && i < F; i++) { /* observation `index` with the factor at class i */
    knobs_data_factors_of(d, index, f + (size_t)i * in->K);
    f[(size_t)i * in->K + factor] = i;
    values[i] = knobs_data_factor_value(d, factor, i);
  }
  if (!s) s = knobs_data_render(d, f, F, x);
  if (!s) s = inputs_run(m, x, F, values, o, 1, out);
  if (!s) {
    (*out)->factor = factor, (*out)->index = index;
    for (int i = 0; i < (*out)->n; i++) (*out)->classes[i] = i;
  }
  free(f), free(values), free(x);
  return s;
}

/* ---- the picture ---------------------------------------------------------------------------- */
/* Shapes are drawn as coverage: a pixel whose centre lies at distance d from a stroke of width w
 * is covered min(1, max(0, w/2 + 1/2 - d)) (a one-pixel linear ramp: anti-aliasing without
 * supersampling). Each shape of one colour is gathered into a coverage layer by max (so joints
 * of a polyline are not darkened twice) and then blended over the canvas. */
typedef struct {
  float *rgb;   /* (size, size, 3) in [0,1] */
  float *cover; /* (size, size) coverage of the layer being drawn */
  int size;
} canvas;

static void cover(canvas *cv, int x, int y, double a) {
  if (x < 0 || y < 0 || x >= cv->size || y >= cv->size || a <= 0) return;
  float *p = cv->cover + (size_t)y * cv->size + x;
  if (a > *p) *p = (float)(a > 1 ? 1 : a);
}

/* the pixels within reach of the box [x0,x1] x [y0,y1] (image units), clipped to the image */
typedef struct {
  int x0, x1, y0, y1;
} pixbox;
static pixbox reach(const canvas *cv, double x0, double x1, double y0, double y1, double pad) {
  double n = cv->size; /* clamped both ways before the conversion: a huge circle stays in int range */
  pixbox b = {(int)floor(fmin(fmax(x0 - pad, 0), n)), (int)ceil(fmax(fmin(x1 + pad, n - 1), -1)),
              (int)floor(fmin(fmax(y0 - pad, 0), n)), (int)ceil(fmax(fmin(y1 + pad, n - 1), -1))};
  return b;
}

static void layer_segment(canvas *cv, double ax, double ay, double bx, double by, double width) {
  pixbox b = reach(cv, fmin(ax, bx), fmax(ax, bx), fmin(ay, by), fmax(ay, by), width / 2 + 1);
  double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = b.y0; y <= b.y1; y++)
    for (int x = b.x0; x <= b.x1; x++) {
      double px = x + 0.5 - ax, py = y + 0.5 - ay, t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      cover(cv, x, y, width / 2 + 0.5 - hypot(px - t * dx, py - t * dy));
    }
}

/* a ring of radius rad (width > 0) or, with width 0, a filled disc of radius rad */
static void layer_round(canvas *cv, double cx, double cy, double rad, double width) {
  pixbox b = reach(cv, cx - rad, cx + rad, cy - rad, cy + rad, width / 2 + 1);
  for (int y = b.y0; y <= b.y1; y++)
    for (int x = b.x0; x <= b.x1; x++) {
      double d = hypot(x + 0.5 - cx, y + 0.5 - cy);
      cover(cv, x, y, width > 0 ? width / 2 + 0.5 - fabs(d - rad) : rad + 0.5 - d);
    }
}

/* blend the layer over the canvas in colour col (0..255) and clear it */
static void layer_blend(canvas *cv, const double col[3]) {
  for (size_t i = 0; i < (size_t)cv->size * cv->size; i++) {
    float a = cv->cover[i];
    if (a <= 0) continue;
    for (int c = 0; c < 3; c++) cv->rgb[3 * i + c] += a * ((float)(col[c] / 255) - cv->rgb[3 * i + c]);
    cv->cover[i] = 0;
  }
}

/* viridis at t in [0,1], five knots, linear between them */
static void ramp(double t, double col[3]) {
  static const double knot[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  double u = fmin(fmax(t, 0), 1) * 4;
  int k = u >= 4 ? 3 : (int)u;
  for (int c = 0; c < 3; c++) col[c] = knot[k][c] + (u - k) * (knot[k + 1][c] - knot[k][c]);
}

knobs_status knobs_orbit_png(const knobs_orbit *r, const char *path, int size) {
  knobs_status s = kn_apps_check_image_path("orbit", path, 0);
  if (s) return s;
  if (!r) return kn_err(KNOBS_ERR_ARG, "orbit: no orbit to draw");
  if (size == 0) size = 512;
  if (size < 64 || size > 4096) return kn_err(KNOBS_ERR_ARG, "orbit: picture size %d (64..4096)", size);
  /* the view: the points, and the circle unless it dwarfs them (a near-line's huge circle) */
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int i = 0; i < r->n; i++) {
    x0 = fmin(x0, r->xy[2 * i]), x1 = fmax(x1, r->xy[2 * i]);
    y0 = fmin(y0, r->xy[2 * i + 1]), y1 = fmax(y1, r->xy[2 * i + 1]);
  }
  double ext = fmax(x1 - x0, y1 - y0);
  if (r->circle && 2 * r->radius <= 4 * ext) {
    x0 = fmin(x0, r->cx - r->radius), x1 = fmax(x1, r->cx + r->radius);
    y0 = fmin(y0, r->cy - r->radius), y1 = fmax(y1, r->cy + r->radius);
  }
  double span = fmax(fmax(x1 - x0, y1 - y0), 1e-300), scale = size * (1 - 2 * 0.06) / span;
  double mx = (x0 + x1) / 2, my = (y0 + y1) / 2, h = size / 2.0;
#define PX(u) (h + ((u) - mx) * scale)
#define PY(v) (h - ((v) - my) * scale) /* the plane's y points up */
  canvas cv = {malloc(sizeof(float) * (size_t)size * size * 3), calloc((size_t)size * size, sizeof(float)), size};
  uint8_t *png = malloc((size_t)size * size * 3);
  if (!cv.rgb || !cv.cover || !png) {
    free(cv.rgb), free(cv.cover), free(png);
    return kn_err(KNOBS_ERR_NOMEM, "orbit: cannot allocate a %d x %d picture", size, size);
  }
  for (size_t i = 0; i < (size_t)size * size * 3; i++) cv.rgb[i] = 1;
  static const double axis_col[3] = {215, 215, 215}, circle_col[3] = {40, 110, 220}, path_col[3] = {70, 70, 70},
                      centre_col[3] = {220, 40, 40}, first_col[3] = {0, 0, 0};
  layer_segment(&cv, 0, PY(0), size, PY(0), 1); /* the principal axes through the mean */
  layer_segment(&cv, PX(0), 0, PX(0), size, 1);
  layer_blend(&cv, axis_col);
  if (r->circle) {
    layer_round(&cv, PX(r->cx), PY(r->cy), r->radius * scale, 2);
    layer_blend(&cv, circle_col);
  }
  for (int i = 0; i + 1 < r->n + (r->closed ? 1 : 0); i++) {
    int j = (i + 1) % r->n;
    layer_segment(&cv, PX(r->xy[2 * i]), PY(r->xy[2 * i + 1]), PX(r->xy[2 * j]), PY(r->xy[2 * j + 1]), 1.5);
  }
  layer_blend(&cv, path_col);
  double dot = fmax(2.5, size / 160.0);
  for (int i = 0; i < r->n; i++) { /* the points in order, dark to light */
    double col[3];
    ramp(r->n > 1 ? (double)i / (r->n - 1) : 0, col);
    layer_round(&cv, PX(r->xy[2 * i]), PY(r->xy[2 * i + 1]), dot, 0);
    layer_blend(&cv, col);
  }
  layer_round(&cv, PX(r->xy[0]), PY(r->xy[1]), 2 * dot, 1.5); /* a ring around the first point */
  layer_blend(&cv, first_col);
  if (r->circle) { /* the centre: a cross */
    double cx = PX(r->cx), cy = PY(r->cy), a = 2.5 * dot;
    layer_segment(&cv, cx - a, cy - a, cx + a, cy + a, 2);
    layer_segment(&cv, cx - a, cy + a, cx + a, cy - a, 2);
    layer_blend(&cv, centre_col);
  }
#undef PX
#undef PY
  for (size_t i = 0; i < (size_t)size * size * 3; i++) png[i] = (uint8_t)lrintf(255 * cv.rgb[i]);
  s = knobs_png_write(path, png, size, size, 3);
  free(cv.rgb), free(cv.cover), free(png);
  return s;
}
