/* test_data_procedural.c: the rendered datasets `shapes`, `physics` and `physics:nonlinear`:
 * shapes and factor tables, determinism across instances and thread counts, that each factor
 * changes what it should (and only that), the physics generative process (distributions,
 * mixing matrix and its conditioning, noise level), the Gaussian warning, draws vs
 * draw_values vs export; the nonlinear variant's segments, bins and invertible mixing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "knobs.h"
#include "t.h"

static knobs_data *open_ds(const char *spec, int threads, uint64_t seed, int obs_dim, double noise, const char *dist) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = threads;
  o.seed = seed;
  o.obs_dim = obs_dim;
  o.noise = noise;
  o.factor_dist = dist;
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open(spec, &o, &d);
  CHECK(s == KNOBS_OK, "open %s: %s", spec, knobs_last_error());
  return d;
}

#define PIX(img, c, y, x) (img)[((c) * 64 + (y)) * 64 + (x)]

/* pixels (any channel) that differ by more than tol between two 3x64x64 images */
static int ndiff(const float *a, const float *b, float tol) {
  int n = 0;
  for (int p = 0; p < 64 * 64; p++)
    for (int c = 0; c < 3; c++)
      if (fabsf(a[c * 4096 + p] - b[c * 4096 + p]) > tol) {
        n++;
        break;
      }
  return n;
}

static int differs_at(const float *a, const float *b, int y, int x) {
  for (int c = 0; c < 3; c++)
    if (fabsf(PIX(a, c, y, x) - PIX(b, c, y, x)) > 1e-3f) return 1;
  return 0;
}

static void test_shapes(void) {
  T_CASE("shapes");
  knobs_data *d = open_ds("shapes", 1, 0, 0, -1, NULL);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  const int sizes[6] = {10, 10, 10, 8, 4, 15};
  CHECK(in->C == 3 && in->H == 64 && in->W == 64, "shape %dx%dx%d", in->C, in->H, in->W);
  CHECK(in->K == 6 && in->n == 480000 && in->is_image && in->has_render && !in->binary, "K %d n %lld", in->K, (long long)in->n);
  for (int k = 0; k < 6 && in->K == 6; k++) CHECK(in->factor_sizes[k] == sizes[k], "factor %d size %d", k, in->factor_sizes[k]);
  CHECK(!strcmp(in->factor_names[0], "floor_hue") && !strcmp(in->factor_names[5], "orientation"), "names %s %s",
        in->factor_names[0], in->factor_names[5]);
  CHECK_NEAR(knobs_data_factor_value(d, 3, 0), 0.75, 1e-12);
  CHECK_NEAR(knobs_data_factor_value(d, 3, 7), 1.25, 1e-12);
  CHECK_NEAR(knobs_data_factor_value(d, 5, 0), -30, 1e-12);
  CHECK_NEAR(knobs_data_factor_value(d, 5, 14), 30, 1e-12);
  CHECK_NEAR(knobs_data_factor_value(d, 1, 9), 0.9, 1e-12);

  /* determinism: another instance with 2 threads (300 images: split over the pool), a batch in
   * another order, the same bytes */
  enum { N = 300 };
  int32_t f[N * 6];
  CHECK(knobs_data_sample_factors(d, N, 5, 1, f) == KNOBS_OK, "sample");
  float *a = malloc(sizeof(float) * N * 3 * 4096), *b = malloc(sizeof(float) * N * 3 * 4096);
  int32_t rev[N * 6];
  for (int i = 0; i < N; i++) memcpy(rev + (N - 1 - i) * 6, f + i * 6, sizeof(int32_t) * 6);
  knobs_data *d2 = open_ds("shapes", 2, 0, 0, -1, NULL);
  CHECK(knobs_data_render(d, f, N, a) == KNOBS_OK, "render");
  CHECK(d2 && knobs_data_render(d2, rev, N, b) == KNOBS_OK, "render 2");
  int same = 1;
  for (int i = 0; i < N; i++) same &= !memcmp(a + i * 3 * 4096, b + (N - 1 - i) * 3 * 4096, sizeof(float) * 3 * 4096);
  CHECK(same, "shapes renders differ across instances, thread counts or batch order");
  float lo = 1, hi = 0;
  int bad = 0;
  for (int i = 0; i < N * 3 * 4096; i++) {
    bad += !isfinite(a[i]);
    lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
  }
  CHECK(!bad && lo >= 0 && hi <= 1 && hi > 0.5f, "values %g..%g, %d non-finite", lo, hi, bad);

  /* get(index) is render(factors_of(index)) */
  int64_t idx[2] = {0, 479999};
  int32_t gf[12];
  CHECK(knobs_data_get(d, idx, 2, a, gf) == KNOBS_OK, "get");
  CHECK(knobs_data_render(d, gf, 2, b) == KNOBS_OK, "render of get's factors");
  CHECK(!memcmp(a, b, sizeof(float) * 2 * 3 * 4096), "get differs from render");
  CHECK(gf[6] == 9 && gf[11] == 14 && gf[0] == 0, "factors of the last index: %d %d", gf[6], gf[11]);

  /* each factor changes its part of the picture: floor at the bottom corner, wall at the top,
   * the object in the middle, and not the other parts */
  int32_t base[6] = {2, 5, 8, 4, 2 /* sphere */, 7}, v[6];
  float *x0 = a, *x1 = b;
  knobs_data_render(d, base, 1, x0);
  memcpy(v, base, sizeof v), v[0] = 6; /* floor hue */
  knobs_data_render(d, v, 1, x1);
  CHECK(differs_at(x0, x1, 63, 1) && !differs_at(x0, x1, 0, 32) && !differs_at(x0, x1, 36, 32), "floor hue");
  memcpy(v, base, sizeof v), v[1] = 0; /* wall hue */
  knobs_data_render(d, v, 1, x1);
  CHECK(differs_at(x0, x1, 0, 32) && !differs_at(x0, x1, 63, 1) && !differs_at(x0, x1, 36, 32), "wall hue");
  memcpy(v, base, sizeof v), v[2] = 3; /* object hue */
  knobs_data_render(d, v, 1, x1);
  CHECK(differs_at(x0, x1, 36, 32) && !differs_at(x0, x1, 0, 32) && !differs_at(x0, x1, 63, 1), "object hue");
  /* object area (pixels that change with the object's hue) grows with scale ~ scale^2 */
  int area[2];
  for (int s = 0; s < 2; s++) {
    memcpy(v, base, sizeof v), v[3] = s ? 7 : 0;
    knobs_data_render(d, v, 1, x0);
    v[2] = 3;
    knobs_data_render(d, v, 1, x1);
    area[s] = ndiff(x0, x1, 0.05f);
  }
  double ratio = (double)area[1] / (area[0] ? area[0] : 1);
  CHECK(area[0] > 30 && ratio > 2.0 && ratio < 3.6, "object areas %d and %d: ratio %.2f, want ~(1.25/0.75)^2 = 2.8",
        area[0], area[1], ratio);
  /* the four shapes are four different silhouettes */
  float *sil = malloc(sizeof(float) * 4 * 3 * 4096);
  for (int s = 0; s < 4; s++) {
    memcpy(v, base, sizeof v), v[4] = s;
    knobs_data_render(d, v, 1, sil + s * 3 * 4096);
  }
  for (int s = 0; s < 4; s++)
    for (int t = s + 1; t < 4; t++)
      CHECK(ndiff(sil + s * 3 * 4096, sil + t * 3 * 4096, 0.05f) > 40, "shapes %d and %d look alike", s, t);
  free(sil);
  /* orientation turns the camera: with the (round) sphere, the room changes */
  memcpy(v, base, sizeof v), v[5] = 0;
  knobs_data_render(d, v, 1, x0);
  v[5] = 14;
  knobs_data_render(d, v, 1, x1);
  CHECK(ndiff(x0, x1, 0.02f) > 100, "orientation barely changes the picture (%d pixels)", ndiff(x0, x1, 0.02f));
  int32_t badf[6] = {0, 0, 0, 8, 0, 0};
  CHECK(knobs_data_render(d, badf, 1, x0) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "scale"), "out of range: %s",
        knobs_last_error());
  free(a), free(b);
  knobs_data_free(d);
  knobs_data_free(d2);
}

/* eigenvalues of a symmetric 3x3 matrix (Smith's trigonometric method), ascending */
static void eig3(const double *A, double *e) {
  double p1 = A[1] * A[1] + A[2] * A[2] + A[5] * A[5], q = (A[0] + A[4] + A[8]) / 3;
  double p2 = (A[0] - q) * (A[0] - q) + (A[4] - q) * (A[4] - q) + (A[8] - q) * (A[8] - q) + 2 * p1;
  double p = sqrt(p2 / 6), B[9];
  for (int i = 0; i < 9; i++) B[i] = (A[i] - (i % 4 == 0 ? q : 0)) / p;
  double r = (B[0] * (B[4] * B[8] - B[5] * B[7]) - B[1] * (B[3] * B[8] - B[5] * B[6]) + B[2] * (B[3] * B[7] - B[4] * B[6])) / 2;
  r = r < -1 ? -1 : r > 1 ? 1 : r;
  double phi = acos(r) / 3;
  e[2] = q + 2 * p * cos(phi);
  e[0] = q + 2 * p * cos(phi + 2 * 3.14159265358979323846 / 3);
  e[1] = 3 * q - e[0] - e[2];
}

static void test_physics(void) {
  T_CASE("physics");
  knobs_data *d = open_ds("physics", 1, 11, 0, -1, NULL);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->C == 10 && in->H == 1 && in->W == 1 && !in->is_image && in->K == 3 && in->n == 1000, "info %d %d %lld",
        in->C, in->K, (long long)in->n);
  CHECK(in->factor_continuous[0] && in->factor_continuous[2] && !in->note[0], "continuous flags, note '%s'", in->note);
  CHECK(!strcmp(in->factor_names[0], "mass") && !strcmp(in->factor_names[1], "friction") && !strcmp(in->factor_names[2], "force"),
        "names");
  double A[30], G[9] = {0}, e[3];
  CHECK(knobs_data_mixing(d, A) == KNOBS_OK, "mixing");
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 3; k++) G[j * 3 + k] += A[i * 3 + j] * A[i * 3 + k];
  eig3(G, e);
  CHECK_NEAR(sqrt(e[2] / e[0]), 2.0, 1e-6); /* condition number of A */
  CHECK_NEAR(G[0] + G[4] + G[8], 10.0, 1e-9); /* mean squared row norm 1 */
  /* a different seed, a different matrix; the same seed, the same one */
  knobs_data *d2 = open_ds("physics", 2, 12, 0, -1, NULL), *d3 = open_ds("physics", 1, 11, 0, -1, NULL);
  double A2[30], A3[30];
  knobs_data_mixing(d2, A2), knobs_data_mixing(d3, A3);
  CHECK(memcmp(A, A2, sizeof A) != 0 && memcmp(A, A3, sizeof A) == 0, "mixing matrix is not a function of the seed");

  /* draws: standardised uniform factors in their bins, x = A f + noise of the stated size */
  enum { N = 20000 };
  float *x = malloc(sizeof(float) * N * 10), *x2 = malloc(sizeof(float) * N * 10);
  int32_t *f = malloc(sizeof(int32_t) * N * 3), *f2 = malloc(sizeof(int32_t) * N * 3);
  double *v = malloc(sizeof(double) * N * 3);
  CHECK(knobs_data_draw_values(d, N, 3, 4, x, f, v) == KNOBS_OK, "draw_values");
  double m[3] = {0}, s2[3] = {0}, mx = 0, res2[10] = {0};
  int inbin = 1;
  for (int i = 0; i < N; i++)
    for (int k = 0; k < 3; k++) {
      double y = v[i * 3 + k];
      m[k] += y / N, s2[k] += y * y / N, mx = fmax(mx, fabs(y));
      double p = (y / sqrt(3.0) + 1) / 2; /* uniform CDF */
      inbin &= (int)floor(p * 10) == f[i * 3 + k];
    }
  CHECK(inbin, "a factor value lies outside its class's bin");
  for (int k = 0; k < 3; k++) CHECK(fabs(m[k]) < 0.03 && fabs(s2[k] - 1) < 0.05, "factor %d mean %g var %g", k, m[k], s2[k]);
  CHECK(mx <= sqrt(3.0) + 1e-12, "uniform factor beyond sqrt(3): %g", mx);
  for (int i = 0; i < N; i++)
    for (int c = 0; c < 10; c++) {
      double y = 0;
      for (int k = 0; k < 3; k++) y += A[c * 3 + k] * v[i * 3 + k];
      res2[c] += (x[i * 10 + c] - y) * (x[i * 10 + c] - y) / N;
    }
  for (int c = 0; c < 10; c++) {
    double rn = sqrt(A[c * 3] * A[c * 3] + A[c * 3 + 1] * A[c * 3 + 1] + A[c * 3 + 2] * A[c * 3 + 2]);
    CHECK(fabs(sqrt(res2[c]) / (0.05 * rn) - 1) < 0.05, "channel %d noise std %g, want %g", c, sqrt(res2[c]), 0.05 * rn);
  }
  /* knobs_data_draw gives the same observations and factors */
  CHECK(knobs_data_draw(d, N, 3, 4, x2, f2) == KNOBS_OK, "draw");
  CHECK(!memcmp(x, x2, sizeof(float) * N * 10) && !memcmp(f, f2, sizeof(int32_t) * N * 3), "draw != draw_values");

  /* render: bin medians, deterministic; get is render of the grid index */
  int32_t c3[3] = {0, 9, 4};
  float r1[10], r2[10];
  knobs_data_render(d, c3, 1, r1);
  knobs_data_render(d3, c3, 1, r2);
  CHECK(!memcmp(r1, r2, sizeof r1), "render is not a function of factors and seed");
  int64_t gi = knobs_data_index(d, c3);
  CHECK(knobs_data_get(d, &gi, 1, r2, f2) == KNOBS_OK && !memcmp(r1, r2, sizeof r1) && f2[1] == 9, "get != render");
  CHECK_NEAR(knobs_data_factor_value(d, 0, 0), sqrt(3.0) * (0.05 * 2 - 1), 1e-12);

  /* noise 0: exactly A f */
  knobs_data *d0 = open_ds("physics", 1, 11, 5, 0, "laplace");
  double A0[15];
  knobs_data_mixing(d0, A0);
  CHECK(knobs_data_draw_values(d0, 1000, 1, 0, x, f, v) == KNOBS_OK, "draw laplace");
  double worst = 0, kurt = 0, var = 0;
  for (int i = 0; i < 1000; i++)
    for (int c = 0; c < 5; c++) {
      double y = 0;
      for (int k = 0; k < 3; k++) y += A0[c * 3 + k] * v[i * 3 + k];
      worst = fmax(worst, fabs(x[i * 5 + c] - y));
    }
  CHECK(worst < 1e-5, "noise 0 leaves a residual of %g", worst);
  knobs_data_draw_values(d0, N, 2, 0, x, f, v);
  for (int i = 0; i < N; i++) var += v[i * 3] * v[i * 3] / N, kurt += pow(v[i * 3], 4) / N;
  CHECK(kurt / (var * var) > 5 && kurt / (var * var) < 7, "laplace kurtosis %g, want 6", kurt / (var * var));
  knobs_data *dg = open_ds("physics", 1, 11, 0, -1, "gauss");
  CHECK(dg && strstr(knobs_data_info_get(dg)->note, "not identifiable"), "gauss note: '%s'", dg ? knobs_data_info_get(dg)->note : "");
  knobs_data_draw_values(dg, N, 2, 0, x, f, v);
  kurt = var = 0;
  for (int i = 0; i < N; i++) var += v[i * 3] * v[i * 3] / N, kurt += pow(v[i * 3], 4) / N;
  CHECK(fabs(kurt / (var * var) - 3) < 0.3 && fabs(var - 1) < 0.05, "gauss kurtosis %g var %g", kurt / (var * var), var);

  /* bad options */
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  knobs_data *bad = NULL;
  o.obs_dim = 2;
  CHECK(knobs_data_open("physics", &o, &bad) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "obs_dim") && !bad, "obs_dim 2: %s",
        knobs_last_error());
  o.obs_dim = 0, o.factor_dist = "cauchy";
  CHECK(knobs_data_open("physics", &o, &bad) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "cauchy"), "dist: %s",
        knobs_last_error());

  /* export: n drawn observations equal knobs_data_draw(n, seed, 0), with factors and values */
  char dir[] = "/tmp/knobs-dproc-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char px[64], pf[64], pv[64];
  snprintf(px, sizeof px, "%s/x.npy", dir), snprintf(pf, sizeof pf, "%s/f.npy", dir), snprintf(pv, sizeof pv, "%s/v.npy", dir);
  CHECK(knobs_data_export(d, 5000, 9, KNOBS_F32, px, pf, pv) == KNOBS_OK, "export: %s", knobs_last_error());
  knobs_array ax, af, av;
  CHECK(knobs_npy_read(px, &ax) == KNOBS_OK && knobs_npy_read(pf, &af) == KNOBS_OK && knobs_npy_read(pv, &av) == KNOBS_OK, "read back");
  knobs_data_draw_values(d, 5000, 9, 0, x, f, v);
  CHECK(ax.ndim == 2 && ax.shape[0] == 5000 && ax.shape[1] == 10 && !memcmp(ax.data, x, sizeof(float) * 5000 * 10), "exported x");
  int fok = af.dtype == KNOBS_I64 && af.shape[1] == 3;
  for (int i = 0; fok && i < 5000 * 3; i++) fok = ((int64_t *)af.data)[i] == f[i];
  CHECK(fok, "exported factors");
  CHECK(av.dtype == KNOBS_F64 && !memcmp(av.data, v, sizeof(double) * 5000 * 3), "exported values");
  knobs_array_free(&ax), knobs_array_free(&af), knobs_array_free(&av);
  CHECK(knobs_data_export(d, 10, 9, KNOBS_U8, px, NULL, NULL) == KNOBS_ERR_ARG, "uint8 export of vectors must fail");
  unlink(px), unlink(pf), unlink(pv), rmdir(dir);

  free(x), free(x2), free(f), free(f2), free(v);
  knobs_data_free(d), knobs_data_free(d2), knobs_data_free(d3), knobs_data_free(d0), knobs_data_free(dg);
}

/* shapes export: all-in-index-order of a subset is not possible (n = 480000 is large), so export
 * a draw as uint8 and compare with the rounded draw */
static void test_shapes_export(void) {
  T_CASE("shapes export");
  knobs_data *d = open_ds("shapes", 2, 0, 0, -1, NULL);
  if (!d) return;
  char dir[] = "/tmp/knobs-dproc-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char px[64];
  snprintf(px, sizeof px, "%s/x.npy", dir);
  CHECK(knobs_data_export(d, 50, 4, KNOBS_U8, px, NULL, NULL) == KNOBS_OK, "export: %s", knobs_last_error());
  knobs_array a;
  float *x = malloc(sizeof(float) * 50 * 3 * 4096);
  CHECK(knobs_npy_read(px, &a) == KNOBS_OK && a.dtype == KNOBS_U8 && a.ndim == 4 && a.shape[1] == 3 && a.shape[2] == 64, "read");
  CHECK(knobs_data_draw(d, 50, 4, 0, x, NULL) == KNOBS_OK, "draw");
  int ok = 1;
  for (int i = 0; i < 50 * 3 * 4096 && a.data; i++) ok &= ((uint8_t *)a.data)[i] == (uint8_t)lrintf(x[i] * 255);
  CHECK(ok, "uint8 export differs from the draw");
  knobs_array_free(&a);
  free(x);
  unlink(px), rmdir(dir);
  knobs_data_free(d);
}

/* physics:nonlinear (iVAE's generator): the factors (three sources and the segment), the
 * sources standardised and binned at the mixture's quantiles, their distribution modulated by
 * the segment, and the MLP invertible with the Lipschitz bound of its construction. */
static void test_physics_nonlinear(void) {
  T_CASE("physics:nonlinear");
  knobs_data *d = open_ds("physics:nonlinear", 1, 11, 0, 0, NULL);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->C == 10 && in->K == 4 && in->n == 40000 && in->factor_sizes[3] == 40 && in->factor_sizes[0] == 10,
        "info C %d K %d n %lld", in->C, in->K, (long long)in->n);
  CHECK(!strcmp(in->factor_names[3], "segment") && in->factor_continuous[2] && !in->factor_continuous[3] &&
            strstr(in->note, "segment"), "segment factor, note '%s'", in->note);
  double A[30];
  CHECK(knobs_data_mixing(d, A) == KNOBS_ERR_UNSUPPORTED, "an MLP mixing has no matrix");
  enum { N = 20000 };
  float *x = malloc(sizeof(float) * N * 10), *x2 = malloc(sizeof(float) * N * 10);
  int32_t *f = malloc(sizeof(int32_t) * N * 4);
  double *v = malloc(sizeof(double) * N * 4);
  CHECK(knobs_data_draw_values(d, N, 3, 4, x, f, v) == KNOBS_OK, "draw_values");
  double m[3] = {0}, s2[3] = {0}, lo[3][10], hi[3][10], sm[40] = {0}, ss[40] = {0};
  int cnt[3][10] = {{0}}, seg[40] = {0}, ok = 1;
  for (int k = 0; k < 3; k++)
    for (int c = 0; c < 10; c++) lo[k][c] = INFINITY, hi[k][c] = -INFINITY;
  for (int i = 0; i < N; i++) {
    int u = f[i * 4 + 3];
    ok &= u >= 0 && u < 40 && v[i * 4 + 3] == u;
    seg[u]++, sm[u] += v[i * 4], ss[u] += v[i * 4] * v[i * 4];
    for (int k = 0; k < 3; k++) {
      double y = v[i * 4 + k];
      int c = f[i * 4 + k];
      m[k] += y / N, s2[k] += y * y / N;
      cnt[k][c]++, lo[k][c] = fmin(lo[k][c], y), hi[k][c] = fmax(hi[k][c], y);
    }
  }
  CHECK(ok, "segment classes and values");
  for (int k = 0; k < 3; k++) CHECK(fabs(m[k]) < 0.05 && fabs(s2[k] - 1) < 0.06, "source %d mean %g var %g", k, m[k], s2[k]);
  /* quantile bins: about N/10 each, ordered, each bin's value (its median) inside it */
  for (int k = 0; k < 3; k++)
    for (int c = 0; c < 10; c++) {
      double fv = knobs_data_factor_value(d, k, c);
      CHECK(cnt[k][c] > 0.085 * N && cnt[k][c] < 0.115 * N, "source %d bin %d holds %d of %d", k, c, cnt[k][c], N);
      CHECK(fv > lo[k][c] && fv < hi[k][c] && (c == 9 || hi[k][c] <= lo[k][c + 1]), "source %d bin %d: [%g, %g], value %g",
            k, c, lo[k][c], hi[k][c], fv);
    }
  /* the modulation: the segments' standard deviations of a source differ (scales U(0.5, 3)) */
  double smin = INFINITY, smax = 0;
  for (int u = 0; u < 40; u++) {
    CHECK(seg[u] > 350 && seg[u] < 650, "segment %d drawn %d times of %d", u, seg[u], N);
    double sd = sqrt(ss[u] / seg[u] - (sm[u] / seg[u]) * (sm[u] / seg[u]));
    smin = fmin(smin, sd), smax = fmax(smax, sd);
  }
  CHECK(smax / smin > 2.5, "segment standard deviations %g .. %g: no modulation", smin, smax);
  /* noise 0: x = f(s) with f injective; by construction |s - s'| <= |x - x'| / (1.17 * 0.65^2 *
   * (0.2 gain)^2) = 26.2 |x - x'| (the layers' smallest singular values, leaky ReLU's slope) */
  double worst = 0, lin = 0;
  for (int i = 0; i + 1 < N; i += 2) {
    double dx = 0, ds = 0;
    for (int c = 0; c < 10; c++) dx += (x[i * 10 + c] - x[i * 10 + 10 + c]) * (double)(x[i * 10 + c] - x[i * 10 + 10 + c]);
    for (int k = 0; k < 3; k++) ds += (v[i * 4 + k] - v[i * 4 + 4 + k]) * (v[i * 4 + k] - v[i * 4 + 4 + k]);
    worst = fmax(worst, sqrt(ds / dx)), lin = fmax(lin, sqrt(dx / ds));
  }
  CHECK(worst < 26.2, "|s - s'| / |x - x'| reaches %g: not the invertible MLP", worst);
  CHECK(lin > 0, "x does not move with s");
  /* the same seed, the same draws; another seed, another mixing; render is a function */
  knobs_data *d3 = open_ds("physics:nonlinear", 1, 11, 0, 0, NULL), *d2 = open_ds("physics:nonlinear", 1, 12, 0, 0, NULL);
  CHECK(knobs_data_draw(d3, N, 3, 4, x2, NULL) == KNOBS_OK && !memcmp(x, x2, sizeof(float) * N * 10), "same seed, other draws");
  CHECK(knobs_data_draw(d2, N, 3, 4, x2, NULL) == KNOBS_OK && memcmp(x, x2, sizeof(float) * N * 10), "seed does not matter");
  int32_t c4[4] = {0, 9, 4, 17};
  float r1[10], r2[10];
  knobs_data_render(d, c4, 1, r1), knobs_data_render(d3, c4, 1, r2);
  CHECK(!memcmp(r1, r2, sizeof r1), "render is not a function of factors and seed");
  /* bad specs and options */
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  knobs_data *bad = NULL;
  CHECK(knobs_data_open("physics:linear", &o, &bad) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "physics:nonlinear") && !bad,
        "unknown variant: %s", knobs_last_error());
  o.obs_dim = 300;
  CHECK(knobs_data_open("physics:nonlinear", &o, &bad) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "256") && !bad,
        "obs_dim 300: %s", knobs_last_error());
  knobs_data *dl = open_ds("physics:nonlinear", 1, 11, 0, 0, "laplace");
  CHECK(dl != NULL, "laplace sources");
  free(x), free(x2), free(f), free(v);
  knobs_data_free(d), knobs_data_free(d2), knobs_data_free(d3), knobs_data_free(dl);
}

int main(void) {
  test_shapes();
  test_physics();
  test_physics_nonlinear();
  test_shapes_export();
  return t_done();
}
