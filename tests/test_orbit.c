/* test_orbit.c: the orbit statistics (src/apps/orbit.c) on synthetic codes with known answers:
 * a noisy circle embedded in 6-D (plane share ~1, radius, residual ~ noise / radius, winding 1
 * closed and (n-1)/n open), the same circle traversed 2 and 4 times, a helix (plane share 3/4,
 * winding 1), a line (winding ~0 around a huge circle; an exact line has no circle), Mardia's
 * circular-linear R^2 (exactly 1 for a value a + b cos(theta - phi); 6 / ((n^2 - 1) sin^2(pi/n))
 * for a linear value traversed uniformly, -> 6/pi^2; ~0 for a shuffled value), the correlation
 * of the unwrapped angle (+-1 for any uniform traversal), closure (auto, open, closed, the
 * dropped duplicate), Kasa's fit against the geometric one on a short noisy arc, the errors,
 * the picture (pixels where the circle, its centre and the background must be), and the
 * model-level helpers on an untrained tiny model (dSprites orientation: 40 classes, the last
 * equal to the first, so 39 points, closed). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "knobs.h"
#include "t.h"

#define ZD 6

/* a small deterministic generator (splitmix64) for the test's noise */
static uint64_t rs = 42;
static double unif(void) {
  uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return ((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}
static double gauss(void) { return sqrt(-2 * log(1 - unif())) * cos(2 * M_PI * unif()); }

/* an orthonormal frame e (3,ZD) of random directions (Gram-Schmidt) and an offset */
static double frame[3][ZD], offset[ZD];
static void make_frame(void) {
  for (int a = 0; a < 3; a++) {
    for (int j = 0; j < ZD; j++) frame[a][j] = gauss();
    for (int b = 0; b < a; b++) {
      double d = 0;
      for (int j = 0; j < ZD; j++) d += frame[a][j] * frame[b][j];
      for (int j = 0; j < ZD; j++) frame[a][j] -= d * frame[b][j];
    }
    double nn = 0;
    for (int j = 0; j < ZD; j++) nn += frame[a][j] * frame[a][j];
    for (int j = 0; j < ZD; j++) frame[a][j] /= sqrt(nn);
  }
  for (int j = 0; j < ZD; j++) offset[j] = 2 * unif() - 1;
}

/* codes (n,ZD): offset + u e0 + v e1 + w e2 + noise */
static void embed(float *codes, int i, double u, double v, double w, double noise) {
  for (int j = 0; j < ZD; j++)
    codes[(size_t)i * ZD + j] = (float)(offset[j] + u * frame[0][j] + v * frame[1][j] + w * frame[2][j] + noise * gauss());
}

/* a circle of radius R traversed `turns` times in n points (theta_i = 2 pi turns i / n) */
static float *circle(int n, double R, int turns, double noise) {
  float *c = malloc(sizeof(float) * (size_t)n * ZD);
  for (int i = 0; i < n; i++) {
    double t = 2 * M_PI * turns * i / n;
    embed(c, i, R * cos(t), R * sin(t), 0, noise);
  }
  return c;
}

static knobs_orbit *orbit(const float *codes, int n, const double *values, int closed, int refine) {
  knobs_orbit_opts o;
  knobs_orbit_opts_default(&o);
  o.closed = closed, o.refine = refine;
  knobs_orbit *r = NULL;
  knobs_status s = knobs_orbit_codes(codes, n, ZD, values, &o, &r);
  CHECK(s == KNOBS_OK && r, "knobs_orbit_codes: %s", knobs_last_error());
  return s ? NULL : r;
}

/* how much of the frame vector e_a lies in the orbit's plane (1: all of it) */
static double in_plane(const knobs_orbit *r, int a) {
  double p = 0;
  for (int k = 0; k < 2; k++) {
    double d = 0;
    for (int j = 0; j < ZD; j++) d += r->axes[k * ZD + j] * frame[a][j];
    p += d * d;
  }
  return p;
}

static void test_circle(void) {
  T_CASE("noisy circle in 6-D");
  const int n = 72;
  float *c = circle(n, 2, 1, 0.02);
  knobs_orbit *r = orbit(c, n, NULL, KNOBS_ORBIT_CLOSED, 1);
  if (r) {
    CHECK(r->n == n && r->Z == ZD && r->closed == 1 && r->dropped == 0, "n %d closed %d dropped %d", r->n, r->closed,
          r->dropped);
    CHECK_NEAR(fabs(r->winding), 1, 1e-9);
    CHECK(r->plane_share > 0.999 && r->plane_share <= 1, "plane share %g", r->plane_share);
    CHECK(r->circle == 1, "no circle");
    CHECK_NEAR(r->radius, 2, 0.01);
    CHECK(r->residual < 0.02 && r->residual > 0.002, "residual %g (noise/radius 0.01)", r->residual);
    CHECK(hypot(r->cx, r->cy) < 0.01, "centre (%g, %g) far from the mean", r->cx, r->cy);
    CHECK_NEAR(in_plane(r, 0), 1, 1e-3);
    CHECK_NEAR(in_plane(r, 1), 1, 1e-3);
    CHECK(in_plane(r, 2) < 1e-3, "a normal direction lies in the plane: %g", in_plane(r, 2));
    double d01 = 0, n0 = 0, n1 = 0, big = 0;
    for (int j = 0; j < ZD; j++) {
      d01 += r->axes[j] * r->axes[ZD + j], n0 += r->axes[j] * r->axes[j], n1 += r->axes[ZD + j] * r->axes[ZD + j];
      if (fabs(r->axes[j]) > fabs(big)) big = r->axes[j];
    }
    CHECK(fabs(d01) < 1e-12 && fabs(n0 - 1) < 1e-12 && fabs(n1 - 1) < 1e-12, "axes not orthonormal: %g %g %g", d01, n0, n1);
    CHECK(big > 0, "the first axis' largest component is negative");
    CHECK(r->var[0] >= r->var[1] && r->var[1] > 1.9, "variances %g %g (R^2/2 = 2 each)", r->var[0], r->var[1]);
    CHECK(r->max_step < 2 * M_PI / n * 1.5, "max step %g", r->max_step);
    CHECK(isnan(r->circlin_r2) && isnan(r->angle_corr) && !r->values, "correlations without values");
    CHECK(r->factor == -1 && r->index == -1 && !r->classes, "factor fields set for codes");
    /* xy is the projection: |xy| around the centre ~ R */
    double mr = 0;
    for (int i = 0; i < n; i++) mr += hypot(r->xy[2 * i] - r->cx, r->xy[2 * i + 1] - r->cy) / n;
    CHECK_NEAR(mr, 2, 0.01);
  }
  knobs_orbit_free(r);
  /* open (the default for codes whose last differs from the first): n-1 steps of 2 pi / n */
  r = orbit(c, n, NULL, KNOBS_ORBIT_AUTO, 1);
  if (r) {
    CHECK(r->closed == 0 && r->dropped == 0, "auto closed an orbit whose ends differ");
    CHECK_NEAR(fabs(r->winding), (n - 1.0) / n, 0.01);
  }
  knobs_orbit_free(r);
  free(c);
}

static void test_turns(void) {
  int turns[2] = {2, 4};
  for (int k = 0; k < 2; k++) {
    T_CASE(turns[k] == 2 ? "circle traversed twice" : "circle traversed four times");
    int n = 72 * turns[k];
    float *c = circle(n, 1.5, turns[k], 0.01);
    double *v = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) v[i] = i; /* a uniform traversal */
    knobs_orbit *r = orbit(c, n, v, KNOBS_ORBIT_CLOSED, 1);
    if (r) {
      CHECK_NEAR(fabs(r->winding), turns[k], 1e-9);
      CHECK_NEAR(r->radius, 1.5, 0.01);
      CHECK(r->plane_share > 0.999, "plane share %g", r->plane_share);
      CHECK(fabs(r->angle_corr) > 0.999, "unwrapped angle vs value: %g", r->angle_corr);
      /* R^2 of a linear value over k turns: the sawtooth's k-th harmonic, 6 / (k pi)^2 */
      CHECK_NEAR(r->circlin_r2, 6 / (M_PI * M_PI * turns[k] * turns[k]), 0.01);
    }
    knobs_orbit_free(r);
    free(c), free(v);
  }
}

static void test_helix(void) {
  T_CASE("helix");
  const int n = 121;
  const double a = 0.5; /* the drift: from -a to a over the turn */
  float *c = malloc(sizeof(float) * n * ZD);
  double scc = 0, sss = 0, sww = 0, ssw = 0, ms = 0;
  for (int i = 0; i < n; i++) { /* one turn, 0..2 pi inclusive */
    double t = 2 * M_PI * i / (n - 1), w = a * (2.0 * i / (n - 1) - 1);
    embed(c, i, cos(t), sin(t), w, 0);
    ms += sin(t) / n;
  }
  /* The known answer: over 0..2 pi, cos is even about pi and sin and the drift are odd, so the
   * covariance is var(cos) beside the 2x2 block of (sin, w); its eigenvalues in closed form. */
  double mc = 0;
  for (int i = 0; i < n; i++) mc += cos(2 * M_PI * i / (n - 1)) / n;
  for (int i = 0; i < n; i++) {
    double t = 2 * M_PI * i / (n - 1), w = a * (2.0 * i / (n - 1) - 1);
    scc += (cos(t) - mc) * (cos(t) - mc) / n, sss += (sin(t) - ms) * (sin(t) - ms) / n;
    sww += w * w / n, ssw += (sin(t) - ms) * w / n;
  }
  double mid = (sss + sww) / 2, rad = sqrt((sss - sww) * (sss - sww) / 4 + ssw * ssw);
  double big = mid + rad, small = mid - rad, want = (scc + big) / (scc + sss + sww);
  knobs_orbit *r = orbit(c, n, NULL, KNOBS_ORBIT_AUTO, 1);
  if (r) {
    CHECK(small < scc, "the test's helix: the drift direction would be in the plane");
    CHECK_NEAR(r->plane_share, want, 1e-5);
    CHECK(r->plane_share < 0.99, "plane share %g of a helix", r->plane_share);
    CHECK_NEAR(r->var_total, scc + sss + sww, 1e-5);
    CHECK(r->closed == 0, "a helix's ends differ: open");
    /* the drift tilts the plane a little, so the projected ends do not quite meet (0.95) */
    CHECK(fabs(r->winding) > 0.9 && fabs(r->winding) < 1, "open helix winds %g times", r->winding);
  }
  knobs_orbit_free(r);
  r = orbit(c, n, NULL, KNOBS_ORBIT_CLOSED, 1); /* closing the gap: one turn exactly */
  if (r) CHECK_NEAR(fabs(r->winding), 1, 1e-9);
  knobs_orbit_free(r);
  free(c);
}

/* fewer points than dimensions: the PCA runs on the Gram matrix, and must agree with the
 * covariance route on the same points (zero-padded from 6 to 40 dimensions) */
static void test_gram(void) {
  T_CASE("Gram route (n < Z)");
  const int n = 36, W = 40;
  float *c = circle(n, 1.2, 1, 0.02), *w = calloc((size_t)n * W, sizeof(float));
  for (int i = 0; i < n; i++) memcpy(w + (size_t)i * W, c + (size_t)i * ZD, sizeof(float) * ZD);
  knobs_orbit *a = orbit(c, n, NULL, KNOBS_ORBIT_CLOSED, 1), *b = NULL;
  knobs_orbit_opts o;
  knobs_orbit_opts_default(&o);
  o.closed = KNOBS_ORBIT_CLOSED;
  CHECK(knobs_orbit_codes(w, n, W, NULL, &o, &b) == KNOBS_OK && b, "Z = 40: %s", knobs_last_error());
  if (a && b) {
    CHECK_NEAR(b->plane_share, a->plane_share, 1e-9);
    CHECK_NEAR(b->var[0], a->var[0], 1e-9);
    CHECK_NEAR(b->var[1], a->var[1], 1e-9);
    CHECK_NEAR(b->radius, a->radius, 1e-9);
    CHECK_NEAR(b->winding, a->winding, 1e-9);
    double dx = 0, na = 0;
    for (int i = 0; i < 2 * n; i++) dx = fmax(dx, fabs(b->xy[i] - a->xy[i]));
    for (int j = 0; j < W; j++) na += b->axes[j] * b->axes[j];
    CHECK(dx < 1e-9, "plane coordinates differ by %g", dx);
    CHECK_NEAR(na, 1, 1e-12);
  }
  knobs_orbit_free(a), knobs_orbit_free(b);
  /* a line in 40-D from 5 points: the second axis is undefined, still unit and orthogonal */
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < W; j++) w[(size_t)i * W + j] = (float)(i * (j % 3 == 0));
  o.closed = KNOBS_ORBIT_AUTO;
  CHECK(knobs_orbit_codes(w, 5, W, NULL, &o, &b) == KNOBS_OK && b, "a line in 40-D: %s", knobs_last_error());
  if (b) {
    double d = 0, n1 = 0;
    for (int j = 0; j < W; j++) d += b->axes[j] * b->axes[W + j], n1 += b->axes[W + j] * b->axes[W + j];
    CHECK(fabs(d) < 1e-12 && fabs(n1 - 1) < 1e-12 && b->circle == 0 && b->var[1] == 0, "axes %g %g circle %d var %g", d, n1,
          b->circle, b->var[1]);
  }
  knobs_orbit_free(b);
  free(c), free(w);
}

static void test_line(void) {
  T_CASE("line");
  const int n = 50;
  float *c = malloc(sizeof(float) * n * ZD);
  for (int i = 0; i < n; i++) embed(c, i, 2.0 * i / (n - 1) - 1, 0, 0, 0.01);
  knobs_orbit *r = orbit(c, n, NULL, KNOBS_ORBIT_AUTO, 1);
  if (r) {
    CHECK(fabs(r->winding) < 0.1, "a noisy line winds %g times", r->winding);
    CHECK(!r->circle || r->radius > 5, "a noisy line's circle has radius %g (the line spans 2)", r->radius);
  }
  knobs_orbit_free(r);
  for (int i = 0; i < n; i++) embed(c, i, 0, 2.0 * i / (n - 1) - 1, 0, 0); /* exactly a line */
  r = orbit(c, n, NULL, KNOBS_ORBIT_AUTO, 1);
  if (r) {
    CHECK(r->circle == 0, "a circle fitted to a line (radius %g)", r->radius);
    CHECK(isnan(r->winding) && isnan(r->radius) && isnan(r->angle[0]), "winding %g radius %g", r->winding, r->radius);
    CHECK_NEAR(r->plane_share, 1, 1e-9);
  }
  knobs_orbit_free(r);
  free(c);
}

static void test_circular_linear(void) {
  T_CASE("circular-linear correlation");
  const int n = 360;
  float *c = circle(n, 1, 1, 0);
  double *v = malloc(sizeof(double) * n);
  for (int i = 0; i < n; i++) v[i] = 5 + 2 * cos(2 * M_PI * i / n - 0.3);
  knobs_orbit *r = orbit(c, n, v, KNOBS_ORBIT_CLOSED, 1);
  if (r) CHECK_NEAR(r->circlin_r2, 1, 1e-9);
  knobs_orbit_free(r);
  for (int i = 0; i < n; i++) v[i] = 0.5 * i; /* uniform traversal of a linear value */
  r = orbit(c, n, v, KNOBS_ORBIT_CLOSED, 1);
  if (r) {
    /* corr(x, cos) and corr(x, sin) of x = i: R^2 = 6 / ((n^2 - 1) sin^2(pi / n)) exactly */
    double s = sin(M_PI / n);
    CHECK_NEAR(r->circlin_r2, 6 / ((n * (double)n - 1) * s * s), 1e-6);
    CHECK_NEAR(r->circlin_r2, 6 / (M_PI * M_PI), 1e-4);
    CHECK_NEAR(fabs(r->angle_corr), 1, 1e-9);
  }
  knobs_orbit_free(r);
  for (int i = n - 1; i > 0; i--) { /* shuffled: no association */
    int j = (int)(unif() * (i + 1));
    double t = v[i];
    v[i] = v[j], v[j] = t;
  }
  r = orbit(c, n, v, KNOBS_ORBIT_CLOSED, 1);
  if (r) {
    CHECK(r->circlin_r2 < 0.05, "shuffled R^2 %g (about 2/n = %g expected)", r->circlin_r2, 2.0 / n);
    CHECK(fabs(r->angle_corr) < 0.3, "shuffled unwrapped corr %g", r->angle_corr);
  }
  knobs_orbit_free(r);
  /* pingouin's example (pingouin.circ_corrcl: r 0.109 for these angles and values; the formula
   * in double gives R^2 = 0.0118168512); R^2 does not change under the plane's rotation or
   * reflection, so angles measured in the orbit's own axes give the same */
  static const double ang[5] = {0.785, 1.570, 3.141, 0.839, 5.934}, val[5] = {1.593, 1.291, -0.248, -2.892, 0.102};
  float p5[5 * ZD];
  for (int i = 0; i < 5; i++) embed(p5, i, cos(ang[i]), sin(ang[i]), 0, 0);
  r = orbit(p5, 5, val, KNOBS_ORBIT_OPEN, 1);
  if (r) {
    CHECK_NEAR(r->circlin_r2, 0.011816851226299146, 1e-5);
    CHECK_NEAR(sqrt(r->circlin_r2), 0.109, 5e-4);
  }
  knobs_orbit_free(r);
  /* points off any circle (so corr(cos, sin) is not 0, as PCA makes it on a circle): the R^2
   * of the library's own angles, computed here as R's Directional::circlin.cor does */
  float q[30 * ZD];
  double qv[30];
  for (int i = 0; i < 30; i++) {
    double t = 2 * M_PI * (i / 30.0) * (i / 30.0), rad = 1 + 0.6 * sin(2 * t);
    embed(q, i, rad * cos(t), rad * sin(t), 0, 0);
    qv[i] = t + 0.3 * gauss();
  }
  r = orbit(q, 30, qv, KNOBS_ORBIT_OPEN, 1);
  if (r) {
    double mc = 0, ms = 0, mx = 0, cc = 0, ss = 0, xx = 0, cs = 0, xc = 0, xs = 0;
    for (int i = 0; i < 30; i++) mc += cos(r->angle[i]) / 30, ms += sin(r->angle[i]) / 30, mx += qv[i] / 30;
    for (int i = 0; i < 30; i++) {
      double a = cos(r->angle[i]) - mc, b = sin(r->angle[i]) - ms, x = qv[i] - mx;
      cc += a * a, ss += b * b, xx += x * x, cs += a * b, xc += x * a, xs += x * b;
    }
    double rcs = cs / sqrt(cc * ss), rxc = xc / sqrt(xx * cc), rxs = xs / sqrt(xx * ss);
    CHECK(fabs(rcs) > 0.05 && fabs(rxc * rxs) > 0.01, "the test's points: r_cs %g, r_xc r_xs %g", rcs, rxc * rxs);
    CHECK_NEAR(r->circlin_r2, (rxc * rxc + rxs * rxs - 2 * rxc * rxs * rcs) / (1 - rcs * rcs), 1e-12);
  }
  knobs_orbit_free(r);
  for (int i = 0; i < n; i++) v[i] = 7; /* constant: undefined */
  r = orbit(c, n, v, KNOBS_ORBIT_CLOSED, 1);
  if (r) CHECK(isnan(r->circlin_r2) && isnan(r->angle_corr), "constant values: R^2 %g", r->circlin_r2);
  knobs_orbit_free(r);
  free(c), free(v);
}

static void test_closure(void) {
  T_CASE("closure");
  const int n = 40;
  float *c = malloc(sizeof(float) * (n + 1) * ZD);
  for (int i = 0; i <= n; i++) embed(c, i, cos(2 * M_PI * i / n), sin(2 * M_PI * i / n), 0, 0);
  memcpy(c + (size_t)n * ZD, c, sizeof(float) * ZD); /* the last equals the first */
  knobs_orbit *r = orbit(c, n + 1, NULL, KNOBS_ORBIT_AUTO, 1);
  if (r) {
    CHECK(r->closed == 1 && r->dropped == 1 && r->n == n, "auto: closed %d dropped %d n %d", r->closed, r->dropped, r->n);
    CHECK_NEAR(fabs(r->winding), 1, 1e-12);
  }
  knobs_orbit_free(r);
  r = orbit(c, n + 1, NULL, KNOBS_ORBIT_OPEN, 1);
  if (r) {
    CHECK(r->closed == 0 && r->dropped == 0 && r->n == n + 1, "open: closed %d dropped %d n %d", r->closed, r->dropped,
          r->n);
    CHECK_NEAR(fabs(r->winding), 1, 1e-12); /* open, but the last step returns to the start */
  }
  knobs_orbit_free(r);
  r = orbit(c, n, NULL, KNOBS_ORBIT_OPEN, 1);
  if (r) CHECK_NEAR(fabs(r->winding), (n - 1.0) / n, 1e-6);
  knobs_orbit_free(r);
  r = orbit(c, n, NULL, KNOBS_ORBIT_CLOSED, 1);
  if (r) CHECK(r->closed == 1 && r->dropped == 0 && fabs(fabs(r->winding) - 1) < 1e-12, "closed: winding %g", r->winding);
  knobs_orbit_free(r);
  free(c);
}

static void test_refine(void) {
  T_CASE("Kasa vs geometric");
  const int n = 200;
  float *c = malloc(sizeof(float) * n * ZD);
  for (int i = 0; i < n; i++) { /* a quarter arc of radius 1 with noise 0.05: Kasa shrinks it */
    double t = M_PI / 2 * i / (n - 1);
    embed(c, i, cos(t) + 0.05 * gauss(), sin(t) + 0.05 * gauss(), 0, 0);
  }
  knobs_orbit *k = orbit(c, n, NULL, KNOBS_ORBIT_OPEN, 0), *g = orbit(c, n, NULL, KNOBS_ORBIT_OPEN, 1);
  if (k && g) {
    CHECK(k->refine_iters == 0 && k->radius == k->kasa_radius && k->cx == k->kasa_cx, "refine 0 changed Kasa's circle");
    CHECK(g->refine_iters > 0 && g->kasa_radius == k->kasa_radius, "refine 1: %d steps", g->refine_iters);
    CHECK(fabs(g->radius - 1) < fabs(k->radius - 1), "geometric radius %g no closer to 1 than Kasa's %g", g->radius,
          k->radius);
    CHECK(g->residual <= k->residual, "the geometric fit has the larger residual: %g > %g", g->residual, k->residual);
  }
  knobs_orbit_free(k), knobs_orbit_free(g);
  free(c);
}

static void test_errors(void) {
  T_CASE("errors");
  float *c = circle(10, 1, 1, 0.01);
  double v[10] = {0};
  knobs_orbit *r = (knobs_orbit *)&r; /* set to NULL on failure */
  CHECK(knobs_orbit_codes(c, 2, ZD, NULL, NULL, &r) == KNOBS_ERR_ARG && !r, "n = 2 accepted");
  CHECK(strstr(knobs_last_error(), "at least 3"), "message: %s", knobs_last_error());
  CHECK(knobs_orbit_codes(c, 10, 1, NULL, NULL, &r) == KNOBS_ERR_ARG, "Z = 1 accepted");
  CHECK(strstr(knobs_last_error(), "at least 2"), "message: %s", knobs_last_error());
  c[3 * ZD + 4] = NAN;
  CHECK(knobs_orbit_codes(c, 10, ZD, NULL, NULL, &r) == KNOBS_ERR_DATA, "NaN code accepted");
  CHECK(strstr(knobs_last_error(), "point 3") && strstr(knobs_last_error(), "NaN"), "message: %s", knobs_last_error());
  c[3 * ZD + 4] = INFINITY;
  CHECK(knobs_orbit_codes(c, 10, ZD, NULL, NULL, &r) == KNOBS_ERR_DATA, "Inf code accepted");
  c[3 * ZD + 4] = 0;
  v[7] = NAN;
  CHECK(knobs_orbit_codes(c, 10, ZD, v, NULL, &r) == KNOBS_ERR_DATA, "NaN value accepted");
  CHECK(strstr(knobs_last_error(), "value of point 7"), "message: %s", knobs_last_error());
  knobs_orbit_opts o;
  knobs_orbit_opts_default(&o);
  CHECK(o.closed == KNOBS_ORBIT_AUTO && o.refine == 1, "defaults %d %d", o.closed, o.refine);
  o.closed = 5;
  CHECK(knobs_orbit_codes(c, 10, ZD, NULL, &o, &r) == KNOBS_ERR_ARG, "closed = 5 accepted");
  knobs_orbit_opts_default(&o);
  o.refine = 2;
  CHECK(knobs_orbit_codes(c, 10, ZD, NULL, &o, &r) == KNOBS_ERR_ARG, "refine = 2 accepted");
  for (int i = 1; i < 10; i++) memcpy(c + i * ZD, c, sizeof(float) * ZD);
  CHECK(knobs_orbit_codes(c, 10, ZD, NULL, NULL, &r) == KNOBS_ERR_DATA, "equal codes accepted");
  CHECK(strstr(knobs_last_error(), "all equal"), "message: %s", knobs_last_error());
  free(c);
  c = circle(3, 1, 1, 0);
  memcpy(c + 2 * ZD, c, sizeof(float) * ZD); /* 3 points, the last a duplicate: 2 left */
  CHECK(knobs_orbit_codes(c, 3, ZD, NULL, NULL, &r) == KNOBS_ERR_ARG, "2 points after the duplicate accepted");
  CHECK(strstr(knobs_last_error(), "dropping"), "message: %s", knobs_last_error());
  free(c);
  knobs_orbit_free(NULL);
}

static int read_file(const char *path, unsigned char **buf, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  rewind(f);
  *buf = malloc((size_t)*n);
  int ok = *buf && fread(*buf, 1, (size_t)*n, f) == (size_t)*n;
  fclose(f);
  return ok;
}

/* pixel (x, y) of point (u, v) of the plane in a size x size picture of r: the view is the
 * bounding box of the points and the circle, centred, scaled equally to 88% of the side */
static void to_pixel(const knobs_orbit *r, int size, double u, double v, int *x, int *y) {
  double x0 = r->cx - r->radius, x1 = r->cx + r->radius, y0 = r->cy - r->radius, y1 = r->cy + r->radius;
  for (int i = 0; i < r->n; i++) {
    x0 = fmin(x0, r->xy[2 * i]), x1 = fmax(x1, r->xy[2 * i]);
    y0 = fmin(y0, r->xy[2 * i + 1]), y1 = fmax(y1, r->xy[2 * i + 1]);
  }
  double scale = size * 0.88 / fmax(x1 - x0, y1 - y0);
  *x = (int)floor(size / 2.0 + (u - (x0 + x1) / 2) * scale);
  *y = (int)floor(size / 2.0 - (v - (y0 + y1) / 2) * scale);
}

static void test_png(void) {
  T_CASE("picture");
  const int n = 36, S = 200;
  float *c = malloc(sizeof(float) * n * ZD);
  for (int i = 0; i < n; i++) embed(c, i, 1.3 * cos(2 * M_PI * i / n), 0.7 * sin(2 * M_PI * i / n), 0, 0);
  knobs_orbit *r = orbit(c, n, NULL, KNOBS_ORBIT_CLOSED, 1); /* an ellipse: the circle lies off it */
  char dir[] = "/tmp/knobs-orbit-XXXXXX", p1[64], p2[64], bad[64];
  if (!r || !mkdtemp(dir)) {
    CHECK(0, "setup");
    free(c);
    return;
  }
  snprintf(p1, sizeof p1, "%s/a.png", dir), snprintf(p2, sizeof p2, "%s/b.png", dir);
  snprintf(bad, sizeof bad, "%s/a.jpg", dir);
  CHECK(knobs_orbit_png(r, p1, S) == KNOBS_OK, "png: %s", knobs_last_error());
  CHECK(knobs_orbit_png(r, p2, S) == KNOBS_OK, "png: %s", knobs_last_error());
  CHECK(knobs_orbit_png(r, bad, S) == KNOBS_ERR_ARG && access(bad, F_OK) != 0, "a .jpg name accepted");
  CHECK(knobs_orbit_png(r, p2, 10) == KNOBS_ERR_ARG, "size 10 accepted");
  unsigned char *b1 = NULL, *b2 = NULL;
  long n1 = 0, n2 = 0;
  CHECK(read_file(p1, &b1, &n1) && read_file(p2, &b2, &n2) && n1 == n2 && !memcmp(b1, b2, (size_t)n1),
        "the same orbit drew different bytes");
  free(b1), free(b2);
  uint8_t *px = NULL;
  int w = 0, h = 0, ch = 0;
  CHECK(knobs_png_read(p1, &px, &w, &h, &ch) == KNOBS_OK && w == S && h == S && ch == 3, "read back %dx%dx%d", w, h,
        ch);
  if (px && w == S && r->circle) {
    int x, y;
    const uint8_t *corner = px;
    CHECK(corner[0] == 255 && corner[1] == 255 && corner[2] == 255, "corner %d %d %d not white", corner[0], corner[1],
          corner[2]);
    to_pixel(r, S, r->cx, r->cy, &x, &y);
    const uint8_t *q = px + ((size_t)y * S + x) * 3;
    CHECK(q[0] > 150 && q[1] < 120 && q[2] < 120, "centre (%d,%d) is %d %d %d, not red", x, y, q[0], q[1], q[2]);
    int blue = 0, gray = 0;
    for (int k = 0; k < 4; k++) { /* the diagonals, where the circle is furthest from the ellipse */
      double t = M_PI / 4 + k * M_PI / 2;
      to_pixel(r, S, r->cx + r->radius * cos(t), r->cy + r->radius * sin(t), &x, &y);
      q = px + ((size_t)y * S + x) * 3;
      blue += q[2] > 150 && q[0] < 120;
      /* and the orbit's path on the ellipse there is gray: the nearest point of the path */
      double best = INFINITY;
      int bx = 0, by = 0;
      for (int i = 0; i < r->n; i++) {
        int jx, jy;
        to_pixel(r, S, (r->xy[2 * i] + r->xy[2 * ((i + 1) % r->n)]) / 2,
                 (r->xy[2 * i + 1] + r->xy[2 * ((i + 1) % r->n) + 1]) / 2, &jx, &jy);
        double d = hypot(jx - x, jy - y);
        if (d < best) best = d, bx = jx, by = jy;
      }
      q = px + ((size_t)by * S + bx) * 3;
      gray += q[0] < 180 && abs(q[0] - q[2]) < 30;
    }
    CHECK(blue == 4, "the circle is blue at %d of 4 diagonals", blue);
    CHECK(gray == 4, "the path is gray at %d of 4 places", gray);
  }
  knobs_free(px);
  unlink(p1), unlink(p2), rmdir(dir);
  knobs_orbit_free(r);
  free(c);
}

/* knobs_orbit_factor and knobs_orbit_inputs on an untrained tiny model of the built-in dSprites */
static void test_model(void) {
  T_CASE("model helpers");
  knobs_data *d = NULL;
  knobs_config *cfg = NULL;
  knobs_model *m = NULL;
  knobs_status s = knobs_data_open("dsprites", NULL, &d);
  if (!s) s = knobs_config_create("betavae", &cfg);
  if (!s) s = knobs_config_set(cfg, "arch", "mlp");
  if (!s) s = knobs_config_set(cfg, "hidden", "16");
  if (!s) s = knobs_config_set(cfg, "latents", "3");
  if (!s) s = knobs_config_set(cfg, "threads", "1");
  if (!s) s = knobs_config_from_data(cfg, d);
  if (!s) s = knobs_model_create(cfg, &m);
  CHECK(s == KNOBS_OK, "setup: %s", knobs_last_error());
  if (s) goto out;
  int32_t f[5] = {2, 5, 0, 16, 16}; /* a heart at scale 5, central */
  int64_t idx = knobs_data_index(d, f);
  knobs_orbit *r = NULL;
  s = knobs_orbit_factor(m, d, idx, 2, NULL, &r);
  CHECK(s == KNOBS_OK && r, "orientation: %s", knobs_last_error());
  if (r) {
    CHECK(r->n == 39 && r->dropped == 1 && r->closed == 1, "n %d dropped %d closed %d", r->n, r->dropped, r->closed);
    CHECK(r->factor == 2 && r->index == idx && r->classes && r->classes[38] == 38 && r->values, "factor fields");
    CHECK_NEAR(r->values[1], 2 * M_PI / 39, 1e-12);
    CHECK(fabs(r->winding - round(r->winding)) < 1e-9, "a closed orbit's winding %g is not an integer", r->winding);
  }
  /* the same through knobs_orbit_inputs: the 40 renderings, in order */
  int32_t fv[40 * 5];
  float *x = malloc(sizeof(float) * 40 * 4096);
  for (int i = 0; i < 40; i++) memcpy(fv + 5 * i, f, sizeof f), fv[5 * i + 2] = i;
  knobs_orbit *q = NULL;
  if (x && !knobs_data_render(d, fv, 40, x)) {
    CHECK(knobs_orbit_inputs(m, x, 40, NULL, NULL, &q) == KNOBS_OK && q, "inputs: %s", knobs_last_error());
    if (q && r) {
      CHECK(q->n == 39 && q->dropped == 1 && !q->values && !q->classes, "inputs: n %d dropped %d", q->n, q->dropped);
      CHECK_NEAR(q->winding, r->winding, 1e-9);
      CHECK_NEAR(q->plane_share, r->plane_share, 1e-5);
    }
    knobs_orbit_free(q);
    x[5] = NAN;
    CHECK(knobs_orbit_inputs(m, x, 40, NULL, NULL, &q) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "input of point 0"),
          "NaN input: %s", knobs_last_error());
  }
  free(x);
  knobs_orbit_free(r);
  /* shape: 3 classes, the ends differ: open */
  CHECK(knobs_orbit_factor(m, d, idx, 0, NULL, &r) == KNOBS_OK && r && r->n == 3 && r->closed == 0, "shape sweep: %s",
        knobs_last_error());
  knobs_orbit_free(r);
  CHECK(knobs_orbit_factor(m, d, 737280, 2, NULL, &r) == KNOBS_ERR_ARG && !r, "index out of range accepted");
  CHECK(strstr(knobs_last_error(), "index 737280"), "message: %s", knobs_last_error());
  CHECK(knobs_orbit_factor(m, d, idx, 5, NULL, &r) == KNOBS_ERR_ARG, "factor 5 accepted");
  CHECK(knobs_orbit_factor(m, d, -1, 2, NULL, &r) == KNOBS_ERR_ARG, "index -1 accepted");
out:
  knobs_model_free(m), knobs_config_free(cfg), knobs_data_free(d);
}

int main(void) {
  make_frame();
  test_circle();
  test_turns();
  test_helix();
  test_gram();
  test_line();
  test_circular_linear();
  test_closure();
  test_refine();
  test_errors();
  test_png();
  test_model();
  return t_done();
}
