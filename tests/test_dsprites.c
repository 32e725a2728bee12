/* test_dsprites.c: the built-in dSprites, its variants and the reader of the original .npz.
 * Checks the factor grid and index order against the original's latents_classes layout, golden
 * checksums of rendered images, the geometry against the measured table of
 * ../shared/reference/datasets.md (areas and boxes of every shape x scale, centres, rotation
 * direction and symmetries, the heart's orientation), the rasteriser against an independent
 * brute-force rendering of the documented shapes, the variants' ranges, determinism and
 * the documented derivation of their nuisance, render == get, refusals of bad factors, and the
 * .npz reader on good and bad files (small complete sub-grids written here with knobs_npz_write:
 * the real file is 3 GB of pixels, too slow to write in a test).
 * Writes /tmp/knobs_dsprites_sprites.png for a human look; nothing is asserted on it. */
#include <unistd.h>

#include "data/data.h"
#include "data/dsprites.h"
#include "io/io.h"
#include "t.h"

#define NPIX 4096
static const double PI = 3.14159265358979323846;

static knobs_data *open_ds(const char *spec, uint64_t seed, int threads) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.seed = seed;
  o.threads = threads;
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open(spec, &o, &d);
  CHECK(s == KNOBS_OK && d, "open %s: %s", spec, knobs_last_error());
  return d;
}

static uint64_t fnv(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* pixel statistics of a 0/1 mask: area, box, centroid (pixel centres at i + 0.5), covariance */
typedef struct {
  int area, x0, x1, y0, y1;
  double mx, my, cxx, cyy, cxy;
} stats;

static stats mask_stats(const uint8_t *m) {
  stats s = {0, 99, -1, 99, -1, 0, 0, 0, 0, 0};
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++)
      if (m[y * 64 + x]) {
        s.area++;
        if (x < s.x0) s.x0 = x;
        if (x > s.x1) s.x1 = x;
        if (y < s.y0) s.y0 = y;
        if (y > s.y1) s.y1 = y;
        double px = x + 0.5, py = y + 0.5;
        sx += px, sy += py, sxx += px * px, syy += py * py, sxy += px * py;
      }
  if (s.area) {
    s.mx = sx / s.area, s.my = sy / s.area;
    s.cxx = sxx / s.area - s.mx * s.mx, s.cyy = syy / s.area - s.my * s.my;
    s.cxy = sxy / s.area - s.mx * s.my;
  }
  return s;
}

static void to_mask(const float *img, uint8_t *m) {
  for (int i = 0; i < NPIX; i++) m[i] = img[i] > 0.5f;
}

static int count_diff(const uint8_t *a, const uint8_t *b) {
  int n = 0;
  for (int i = 0; i < NPIX; i++) n += a[i] != b[i];
  return n;
}

static double pos_px(int c) { return 16 + 32 * (c == 31 ? 1.0 : c * (1.0 / 31)); }

/* ---- the grid ------------------------------------------------------------------------------ */
static void test_grid(void) {
  T_CASE("grid");
  knobs_data *d = open_ds("dsprites", 0, 1);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  static const char *names[5] = {"shape", "scale", "orientation", "posX", "posY"};
  static const int sizes[5] = {3, 6, 40, 32, 32};
  CHECK(in->K == 5 && in->n == 737280, "K %d n %lld", in->K, (long long)in->n);
  for (int k = 0; k < 5 && k < in->K; k++)
    CHECK(!strcmp(in->factor_names[k], names[k]) && in->factor_sizes[k] == sizes[k], "factor %d: %s %d", k,
          in->factor_names[k], in->factor_sizes[k]);
  CHECK(in->C == 1 && in->H == 64 && in->W == 64, "shape %dx%dx%d", in->C, in->H, in->W);
  CHECK(in->is_image == 1 && in->binary == 1 && in->has_render == 1, "flags %d %d %d", in->is_image,
        in->binary, in->has_render);
  CHECK(!strcmp(in->name, "dsprites"), "name %s", in->name);
  /* index = classes . bases, bases (245760, 40960, 1024, 32, 1): posY fastest */
  int32_t f[5] = {2, 3, 17, 9, 30}, g[5];
  int64_t want = 2 * 245760 + 3 * 40960 + 17 * 1024 + 9 * 32 + 30;
  CHECK(knobs_data_index(d, f) == want, "index %lld want %lld", (long long)knobs_data_index(d, f), (long long)want);
  knobs_data_factors_of(d, 737279, g);
  CHECK(g[0] == 2 && g[1] == 5 && g[2] == 39 && g[3] == 31 && g[4] == 31, "last index factors %d %d %d %d %d",
        g[0], g[1], g[2], g[3], g[4]);
  knobs_data_factors_of(d, 1, g);
  CHECK(g[4] == 1 && g[3] == 0, "index 1 is posY 1: %d %d", g[3], g[4]);
  knobs_data_factors_of(d, 32, g);
  CHECK(g[3] == 1 && g[4] == 0, "index 32 is posX 1: %d %d", g[3], g[4]);
  /* the continuous values of latents_values */
  CHECK(knobs_data_factor_value(d, 0, 0) == 1 && knobs_data_factor_value(d, 0, 2) == 3, "shape values");
  CHECK_NEAR(knobs_data_factor_value(d, 1, 0), 0.5, 1e-15);
  CHECK_NEAR(knobs_data_factor_value(d, 1, 3), 0.8, 1e-15);
  CHECK(knobs_data_factor_value(d, 1, 5) == 1.0, "scale max");
  CHECK(knobs_data_factor_value(d, 2, 0) == 0.0, "orientation 0");
  CHECK_NEAR(knobs_data_factor_value(d, 2, 1), 2 * PI / 39, 1e-15);
  CHECK(knobs_data_factor_value(d, 2, 39) == 2 * PI, "orientation 39 = 2 pi: %.17g", knobs_data_factor_value(d, 2, 39));
  CHECK_NEAR(knobs_data_factor_value(d, 3, 1), 1.0 / 31, 1e-15);
  CHECK(knobs_data_factor_value(d, 4, 31) == 1.0, "pos max");
  /* uniform sampling covers every class */
  int32_t *fs = malloc(sizeof(int32_t) * 5 * 4000);
  knobs_data_sample_factors(d, 4000, 1, 2, fs);
  int seen[5][40] = {{0}}, bad = 0;
  for (int i = 0; i < 4000; i++)
    for (int k = 0; k < 5; k++) {
      int v = fs[i * 5 + k];
      if (v < 0 || v >= sizes[k]) bad++;
      else seen[k][v]++;
    }
  int missing = 0;
  for (int k = 0; k < 5; k++)
    for (int c = 0; c < sizes[k]; c++) missing += !seen[k][c];
  CHECK(!bad && !missing, "%d out of range, %d classes never drawn", bad, missing);
  free(fs);
  knobs_data_free(d);
}

/* ---- golden checksums --------------------------------------------------------------------- */
/* FNV-1a of the float32 bytes of images by index, computed once from this renderer. A change
 * of the geometry, the sampling or the variants' rng use changes them: update deliberately. */
static void test_golden(void) {
  T_CASE("golden");
  static const struct {
    const char *spec;
    int64_t index;
    uint64_t hash;
  } gold[] = {
      {"dsprites", 0, 0x02b31d23b3028663ull},
      {"dsprites", 123456, 0xb4dbe3eaa3127b83ull},
      {"dsprites", 400000, 0x9b537ff41a18993aull},
      {"dsprites", 737279, 0xef2ac20dc8a6dea3ull},
      {"dsprites:color", 123456, 0x2153e7a39d953583ull},
      {"dsprites:noisy", 123456, 0x377e7003a905d3ecull},
      {"dsprites:noshape", 54321, 0x51f421e7f9d94aeaull},
  };
  float *img = malloc(sizeof(float) * 3 * NPIX);
  for (size_t i = 0; i < sizeof gold / sizeof gold[0]; i++) {
    knobs_data *d = open_ds(gold[i].spec, 0, 1);
    if (!d) continue;
    int64_t idx = gold[i].index;
    CHECK(!knobs_data_get(d, &idx, 1, img, NULL), "get: %s", knobs_last_error());
    uint64_t h = fnv(img, sizeof(float) * (size_t)knobs_data_info_get(d)->C * NPIX);
    CHECK(h == gold[i].hash, "%s index %lld: hash 0x%016llxull, golden 0x%016llxull", gold[i].spec,
          (long long)idx, (unsigned long long)h, (unsigned long long)gold[i].hash);
    knobs_data_free(d);
  }
  free(img);
}

/* ---- geometry ------------------------------------------------------------------------------ */
/* The measured table: box w x h and area at orientation 0, scale 0.5 .. 1 (rows), per shape. */
static const int table[6][3][3] = {
    {{10, 10, 100}, {12, 8, 76}, {10, 9, 58}},   {{12, 12, 144}, {16, 8, 104}, {12, 11, 84}},
    {{14, 14, 196}, {18, 10, 144}, {14, 13, 108}}, {{16, 16, 256}, {20, 12, 184}, {16, 14, 140}},
    {{18, 18, 324}, {22, 12, 228}, {18, 15, 182}}, {{20, 20, 400}, {26, 14, 288}, {20, 17, 222}},
};

static void test_table(void) {
  T_CASE("area and box table");
  knobs_data *d = open_ds("dsprites", 0, 1);
  if (!d) return;
  /* every shape x scale at orientation 0 at every position (the sub-pixel offset of the centre
   * moves each edge's rounding) */
  float *img = malloc(sizeof(float) * NPIX);
  uint8_t m[NPIX];
  int fails = 0;
  for (int sh = 0; sh < 3; sh++)
    for (int sc = 0; sc < 6; sc++)
      for (int i = 0; i < 32 * 32; i++) {
        int32_t f[5] = {sh, sc, 0, i / 32, i % 32};
        knobs_data_render(d, f, 1, img);
        to_mask(img, m);
        stats s = mask_stats(m);
        int w = s.x1 - s.x0 + 1, h = s.y1 - s.y0 + 1;
        const int *t = table[sc][sh];
        int ok = abs(w - t[0]) <= 1 && abs(h - t[1]) <= 1 && abs(s.area - t[2]) <= 0.1 * t[2];
        if (!ok && fails++ < 5)
          CHECK(ok, "shape %d scale %d pos (%d,%d): %dx%d (%d px), table %dx%d (%d px)", sh, sc, i / 32, i % 32, w,
                h, s.area, t[0], t[1], t[2]);
      }
  CHECK(fails == 0, "%d of %d renders outside the table's tolerance", fails, 18 * 32 * 32);
  /* the three shapes differ clearly at every scale */
  for (int sc = 0; sc < 6; sc++) {
    uint8_t ms[3][NPIX];
    for (int sh = 0; sh < 3; sh++) {
      int32_t f[5] = {sh, sc, 7, 16, 16};
      knobs_data_render(d, f, 1, img);
      to_mask(img, ms[sh]);
    }
    int d01 = count_diff(ms[0], ms[1]), d02 = count_diff(ms[0], ms[2]), d12 = count_diff(ms[1], ms[2]);
    CHECK(d01 >= 15 && d02 >= 15 && d12 >= 15, "scale %d: shapes differ by only %d, %d, %d px", sc, d01, d02, d12);
  }
  free(img);
  knobs_data_free(d);
}

static void test_centres(void) {
  T_CASE("centres");
  knobs_data *d = open_ds("dsprites", 0, 1);
  if (!d) return;
  float *img = malloc(sizeof(float) * NPIX);
  uint8_t m[NPIX];
  double worst = 0;
  /* the square's centroid is its centre: 16 + 32 pos, posX along columns, posY along rows */
  for (int px = 0; px < 32; px += 3)
    for (int py = 0; py < 32; py += 5) {
      int32_t f[5] = {0, 5, 0, px, py};
      knobs_data_render(d, f, 1, img);
      to_mask(img, m);
      stats s = mask_stats(m);
      double e = fmax(fabs(s.mx - pos_px(px)), fabs(s.my - pos_px(py)));
      if (e > worst) worst = e;
    }
  CHECK(worst <= 0.5, "square centroid off its centre by %.3f px", worst);
  /* posY = 0 is at the top: the sprite of posY 0 sits in rows 6..26 */
  int32_t f[5] = {0, 5, 0, 31, 0};
  knobs_data_render(d, f, 1, img);
  to_mask(img, m);
  stats s = mask_stats(m);
  CHECK(s.y0 >= 5 && s.y1 <= 27 && s.x0 >= 37, "posX 31, posY 0: rows %d..%d, columns %d..%d", s.y0, s.y1, s.x0, s.x1);
  /* the heart: lobes up, tip down; its centroid ~1.9 px above the rotation centre at scale 1 */
  int32_t fh[5] = {2, 5, 0, 16, 16};
  knobs_data_render(d, fh, 1, img);
  to_mask(img, m);
  s = mask_stats(m);
  double up = pos_px(16) - s.my;
  CHECK(up > 1.3 && up < 2.6, "heart centroid %.2f px above its centre (want ~1.9)", up);
  CHECK(s.x0 > 0 && pos_px(16) - s.y0 > 8 && s.y1 + 1 - pos_px(16) < 8.6,
        "heart box reaches %.2f above and %.2f below the centre (9 and 8)", pos_px(16) - s.y0, s.y1 + 1 - pos_px(16));
  int top = 0, bottom = 0, runs = 0;
  for (int x = 0; x < 64; x++) bottom += m[s.y1 * 64 + x];
  for (int x = 0; x < 64; x++) top += m[(s.y0 + 1) * 64 + x];
  for (int x = 1; x < 64; x++) runs += m[(s.y0 + 1) * 64 + x] && !m[(s.y0 + 1) * 64 + x - 1];
  CHECK(bottom <= 3 && top >= 8, "heart: bottom row %d px (the tip), second row %d px (the lobes)", bottom, top);
  CHECK(runs == 2, "heart: the row below the top crosses %d runs, want 2 lobes", runs);
  free(img);
  knobs_data_free(d);
}

/* principal-axis angle of a mask, counter-clockwise on screen, in degrees (-90, 90] */
static double axis_ccw_deg(const stats *s) { return -0.5 * atan2(2 * s->cxy, s->cxx - s->cyy) * 180 / PI; }

static void test_rotation(void) {
  T_CASE("rotation");
  knobs_data *d = open_ds("dsprites", 0, 1);
  if (!d) return;
  float *img = malloc(sizeof(float) * NPIX);
  uint8_t m[NPIX], m2[NPIX];
  /* the ellipse's long axis turns counter-clockwise: at class 5 (46.15 deg) it runs from the
   * lower left to the upper right, so x and y (down) anti-correlate */
  int32_t f[5] = {1, 5, 5, 16, 16};
  knobs_data_render(d, f, 1, img);
  to_mask(img, m);
  stats s = mask_stats(m);
  CHECK(s.cxy < -5, "ellipse at class 5: cov(x, y) = %.2f, want clearly negative", s.cxy);
  CHECK_NEAR(axis_ccw_deg(&s), 360.0 * 5 / 39, 3.0);
  f[2] = 0;
  knobs_data_render(d, f, 1, img);
  to_mask(img, m);
  s = mask_stats(m);
  CHECK(s.cxx > 2.5 * s.cyy && fabs(s.cxy) < 0.5, "ellipse at 0: var x %.1f var y %.1f cov %.2f", s.cxx, s.cyy, s.cxy);
  /* the heart at class 10 (92 deg): its lobes (up at 0) have turned to the left */
  int32_t fh[5] = {2, 5, 10, 16, 16};
  knobs_data_render(d, fh, 1, img);
  to_mask(img, m);
  s = mask_stats(m);
  CHECK(pos_px(16) - s.mx > 1.2 && fabs(s.my - pos_px(16)) < 0.6, "heart at class 10: centroid offset (%.2f, %.2f), want left",
        s.mx - pos_px(16), s.my - pos_px(16));
  /* class 0 and class 39 are the same rotation (0 and 2 pi) for every shape */
  int diff = 0;
  for (int sh = 0; sh < 3; sh++)
    for (int sc = 0; sc < 6; sc += 5) {
      int32_t a[5] = {sh, sc, 0, 7, 20}, b[5] = {sh, sc, 39, 7, 20};
      knobs_data_render(d, a, 1, img);
      to_mask(img, m);
      knobs_data_render(d, b, 1, img);
      to_mask(img, m2);
      diff += count_diff(m, m2);
    }
  CHECK(diff == 0, "orientation 0 and 39 differ by %d px", diff);
  /* symmetries at arbitrary angles and sub-pixel centres: the square repeats every quarter
   * turn, the ellipse every half turn; the heart does not */
  int sq = 0, el = 0, el_q = 0, he_h = 0;
  for (int i = 0; i < 12; i++) {
    double ang = 0.1 + 0.37 * i, cx = 20.3 + 1.7 * i, cy = 41.9 - 1.3 * i, sc = 0.5 + 0.05 * (i % 11);
    kn_dsprites_mask(m, KN_DSPRITES_SQUARE, sc, ang, cx, cy);
    kn_dsprites_mask(m2, KN_DSPRITES_SQUARE, sc, ang + PI / 2, cx, cy);
    sq += count_diff(m, m2);
    kn_dsprites_mask(m, KN_DSPRITES_ELLIPSE, sc, ang, cx, cy);
    kn_dsprites_mask(m2, KN_DSPRITES_ELLIPSE, sc, ang + PI, cx, cy);
    el += count_diff(m, m2);
    kn_dsprites_mask(m2, KN_DSPRITES_ELLIPSE, sc, ang + PI / 2, cx, cy);
    el_q += count_diff(m, m2) > 10;
    kn_dsprites_mask(m, KN_DSPRITES_HEART, sc, ang, cx, cy);
    kn_dsprites_mask(m2, KN_DSPRITES_HEART, sc, ang + PI, cx, cy);
    he_h += count_diff(m, m2) > 10;
  }
  CHECK(sq == 0, "square turned a quarter differs by %d px", sq);
  CHECK(el == 0, "ellipse turned a half differs by %d px", el);
  CHECK(el_q == 12 && he_h == 12, "a quarter-turned ellipse (%d/12) and a half-turned heart (%d/12) must differ", el_q, he_h);
  /* the heart's orbit is one-to-one over classes 0..38 */
  uint64_t h[39];
  int dup = 0;
  for (int o = 0; o < 39; o++) {
    int32_t fo[5] = {2, 5, o, 16, 16};
    knobs_data_render(d, fo, 1, img);
    h[o] = fnv(img, sizeof(float) * NPIX);
    for (int p = 0; p < o; p++) dup += h[p] == h[o];
  }
  CHECK(dup == 0, "%d pairs of heart orientations render the same", dup);
  /* clipping: a sprite partly outside the frame is cut, not wrapped */
  int on = kn_dsprites_mask(m, KN_DSPRITES_SQUARE, 1.0, 0.3, -3.0, 70.0);
  s = mask_stats(m);
  CHECK(on > 0 && on < 200 && s.x1 < 12 && s.y0 > 52, "clipped square: %d px in columns ..%d rows %d..", on, s.x1, s.y0);
  free(img);
  knobs_data_free(d);
}

/* ---- an independent rasteriser of the documented shapes ------------------------------------ */
/* The shapes as dsprites.c's header comment defines them, written differently (the heart's
 * lobe-and-tip hulls as a disk plus a circular sector at the tip, both lobes tested explicitly),
 * sampled at every pixel near the sprite on the same sheared 5x5 lattice without any shortcut.
 * Local coordinates of a screen point: R(-a) (p - c) / s, u right, v down. */
static int ref_in_hull(double u, double v, double cu, double cv) {
  const double r = 5.0, tu = 0, tv = 8.6;
  double du = u - cu, dv = v - cv;
  if (du * du + dv * dv <= r * r) return 1;
  double au = cu - tu, av = cv - tv, L = sqrt(au * au + av * av), t = sqrt(L * L - r * r);
  double pu = u - tu, pv = v - tv, d = sqrt(pu * pu + pv * pv);
  return d <= t && pu * au + pv * av >= d * t; /* angle to the axis <= asin(r / L), i.e. cos >= t / L */
}

static int ref_inside(int shape, double u, double v) {
  if (shape == 0) return fabs(u) <= 10 && fabs(v) <= 10;
  if (shape == 1) return (u / 12.72) * (u / 12.72) + (v / 7.17) * (v / 7.17) <= 1;
  if (ref_in_hull(u, v, 5.3, -4.4) || ref_in_hull(u, v, -5.3, -4.4)) return 1;
  return v >= -4.4 && v <= 8.6 && fabs(u) <= 5.3 * (8.6 - v) / 13.0; /* triangle tip, lobe centres */
}

static void ref_mask(uint8_t *m, int shape, double s, double a, double cx, double cy) {
  double ca = cos(a), sa = sin(a), reach = 14.2 * s + 1; /* farthest point of any shape: 14.15 s */
  for (int py = 0; py < 64; py++)
    for (int px = 0; px < 64; px++) {
      int in = 0;
      if (fabs(px + 0.5 - cx) < reach && fabs(py + 0.5 - cy) < reach)
        for (int i = 0; i < 5; i++)
          for (int j = 0; j < 5; j++) {
            double dx = px + (5 * j + i + 0.5) / 25 - cx, dy = py + (5 * i + j + 0.5) / 25 - cy;
            in += ref_inside(shape, (dx * ca - dy * sa) / s, (dx * sa + dy * ca) / s);
          }
      m[py * 64 + px] = in >= 13;
    }
}

static void test_reference(void) {
  T_CASE("independent rasteriser");
  uint8_t m[NPIX], r[NPIX];
  kn_rng g;
  kn_rng_seed(&g, 2024, 0);
  int bad = 0, worst = 0, total = 0;
  for (int i = 0; i < 1500; i++) {
    int shape = i % 3;
    double s = 0.5 + 0.5 * kn_rng_uniform(&g), a = -1 + 8 * kn_rng_uniform(&g);
    double cx = -6 + 76 * kn_rng_uniform(&g), cy = -6 + 76 * kn_rng_uniform(&g);
    int on = kn_dsprites_mask(m, shape, s, a, cx, cy);
    ref_mask(r, shape, s, a, cx, cy);
    int d = count_diff(m, r);
    total += on;
    if (d) {
      bad++;
      if (d > worst) worst = d;
      if (bad <= 3)
        CHECK(d == 0, "shape %d scale %.3f angle %.3f centre (%.2f, %.2f): %d px differ", shape, s, a, cx, cy, d);
    }
    int cnt = 0;
    for (int j = 0; j < NPIX; j++) cnt += m[j];
    if (cnt != on && bad++ < 3) CHECK(cnt == on, "returned %d pixels, set %d", on, cnt);
  }
  CHECK(bad == 0 && total > 100000, "%d of 1500 sprites differ (worst %d px); %d px in all", bad, worst, total);
}

/* ---- variants ------------------------------------------------------------------------------ */
static void test_variants(void) {
  T_CASE("variants");
  knobs_data *plain = open_ds("dsprites", 0, 1);
  knobs_data *color = open_ds("dsprites:color", 7, 1), *color2 = open_ds("dsprites:color", 7, 2);
  knobs_data *color_b = open_ds("dsprites:color", 8, 1);
  knobs_data *noisy = open_ds("dsprites:noisy", 7, 1), *noisy_b = open_ds("dsprites:noisy", 8, 2);
  knobs_data *nos = open_ds("dsprites:noshape", 7, 1), *nos_b = open_ds("dsprites:noshape", 8, 1);
  if (!plain || !color || !color2 || !color_b || !noisy || !noisy_b || !nos || !nos_b) goto out;
  const knobs_data_info *ci = knobs_data_info_get(color), *ni = knobs_data_info_get(noisy),
                        *si = knobs_data_info_get(nos);
  CHECK(ci->C == 3 && ci->K == 5 && ci->n == 737280 && ci->binary == 0 && ci->is_image, "color info");
  CHECK(ni->C == 3 && ni->K == 5 && ni->n == 737280 && ni->binary == 0 && ni->is_image, "noisy info");
  CHECK(si->C == 1 && si->K == 4 && si->n == 245760 && si->binary == 1 && !strcmp(si->factor_names[0], "scale") &&
            !strcmp(si->factor_names[3], "posY") && si->factor_sizes[1] == 40,
        "noshape info: C %d K %d n %lld", si->C, si->K, (long long)si->n);
  CHECK_NEAR(knobs_data_factor_value(nos, 0, 0), 0.5, 0);
  CHECK_NEAR(knobs_data_factor_value(nos, 1, 39), 2 * PI, 0);

  enum { N = 48 };
  int32_t *f = malloc(sizeof(int32_t) * 5 * N);
  float *p = malloc(sizeof(float) * NPIX * N), *c = malloc(sizeof(float) * 3 * NPIX * N),
        *c2 = malloc(sizeof(float) * 3 * NPIX * N), *cb = malloc(sizeof(float) * 3 * NPIX * N);
  knobs_data_sample_factors(plain, N, 3, 0, f);
  knobs_data_render(plain, f, N, p);
  /* color: the plain sprite's mask, one colour in [0.5, 1] per channel, black elsewhere */
  knobs_data_render(color, f, N, c);
  knobs_data_render(color2, f, N, c2);
  knobs_data_render(color_b, f, N, cb);
  int bad = 0, varied = 0, seeddiff = 0;
  float first[3] = {0};
  for (int i = 0; i < N; i++)
    for (int ch = 0; ch < 3; ch++) {
      const float *o = c + ((size_t)i * 3 + ch) * NPIX, *pp = p + (size_t)i * NPIX;
      float col = -1;
      for (int j = 0; j < NPIX; j++) {
        if (pp[j] == 0) bad += o[j] != 0;
        else if (col < 0) col = o[j];
        else bad += o[j] != col;
      }
      bad += !(col >= 0.5f && col <= 1.0f);
      if (i == 0) first[ch] = col;
      else varied += col != first[ch];
    }
  for (size_t j = 0; j < (size_t)3 * NPIX * N; j++) seeddiff += c[j] != cb[j];
  CHECK(bad == 0, "color: %d values off the sprite mask or colour range", bad);
  CHECK(varied > 3 * (N - 1) / 2, "color: only %d of %d colours differ from the first image's", varied, 3 * (N - 1));
  CHECK(!memcmp(c, c2, sizeof(float) * 3 * NPIX * N), "color: 1 and 2 threads render different bytes");
  CHECK(seeddiff > 0, "color: another seed gives the same colours");
  /* the same factors render the same image whatever batch they come in */
  knobs_data_render(color, f + 5 * 17, 1, c2);
  CHECK(!memcmp(c2, c + (size_t)17 * 3 * NPIX, sizeof(float) * 3 * NPIX), "color: render depends on the batch");

  /* noisy: 1 on the sprite in every channel, uniform noise in [0,1) elsewhere */
  knobs_data_render(noisy, f, N, c);
  knobs_data_render(noisy_b, f, N, cb);
  bad = 0, seeddiff = 0;
  double sum = 0, sum2 = 0;
  long nb = 0;
  for (int i = 0; i < N; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int j = 0; j < NPIX; j++) {
        float v = c[((size_t)i * 3 + ch) * NPIX + j];
        if (p[(size_t)i * NPIX + j] != 0) bad += v != 1.0f;
        else {
          bad += !(v >= 0 && v < 1);
          sum += v, sum2 += v * v, nb++;
        }
      }
  for (size_t j = 0; j < (size_t)3 * NPIX * N; j++) seeddiff += c[j] != cb[j];
  double mean = sum / nb, var = sum2 / nb - mean * mean;
  CHECK(bad == 0, "noisy: %d values off the sprite or outside [0, 1)", bad);
  CHECK(fabs(mean - 0.5) < 0.01 && fabs(var - 1.0 / 12) < 0.005, "noisy background mean %.4f var %.4f", mean, var);
  CHECK(seeddiff > (long)NPIX * N, "noisy: another seed changes only %d values", seeddiff);
  knobs_data_render(noisy, f, N, c2);
  CHECK(!memcmp(c, c2, sizeof(float) * 3 * NPIX * N), "noisy: not deterministic");
  knobs_data_render(noisy_b, f + 5 * 5, 1, c2);
  CHECK(!memcmp(c2, cb + (size_t)5 * 3 * NPIX, sizeof(float) * 3 * NPIX), "noisy (2 threads): render depends on the batch");

  /* noshape: each image is the plain sprite of one of the three shapes, fixed by (seed, index) */
  int32_t g[4] = {5, 3, 10, 20}, fp[5];
  int shapes_seen[3] = {0}, unmatched = 0, changed = 0;
  float *q = malloc(sizeof(float) * NPIX), *q2 = malloc(sizeof(float) * NPIX), *r = malloc(sizeof(float) * NPIX);
  for (int i = 0; i < 40; i++) {
    g[2] = i % 32, g[3] = (7 * i) % 32;
    knobs_data_render(nos, g, 1, q);
    knobs_data_render(nos, g, 1, q2);
    unmatched += memcmp(q, q2, sizeof(float) * NPIX) != 0;
    int which = -1;
    for (int sh = 0; sh < 3; sh++) {
      fp[0] = sh, memcpy(fp + 1, g, sizeof g);
      knobs_data_render(plain, fp, 1, r);
      if (!memcmp(q, r, sizeof(float) * NPIX)) which = sh;
    }
    if (which < 0) unmatched++;
    else shapes_seen[which]++;
    knobs_data_render(nos_b, g, 1, q2);
    changed += memcmp(q, q2, sizeof(float) * NPIX) != 0;
  }
  CHECK(unmatched == 0, "noshape: %d renders are not a plain sprite or not deterministic", unmatched);
  CHECK(shapes_seen[0] >= 4 && shapes_seen[1] >= 4 && shapes_seen[2] >= 4, "noshape shapes drawn %d %d %d",
        shapes_seen[0], shapes_seen[1], shapes_seen[2]);
  CHECK(changed >= 10, "noshape: another seed changes the shape of only %d of 40 images", changed);
  free(q), free(q2), free(r);
  free(f), free(p), free(c), free(c2), free(cb);
out:
  knobs_data_free(plain), knobs_data_free(color), knobs_data_free(color2), knobs_data_free(color_b);
  knobs_data_free(noisy), knobs_data_free(noisy_b), knobs_data_free(nos), knobs_data_free(nos_b);
}

/* The nuisance of grid index i is drawn from kn_rng_seed(&r, seed, KN_DSPRITES_STREAM + i), as
 * dsprites.h documents: recompute it here with the core rng and compare. */
static void test_nuisance(void) {
  T_CASE("nuisance derivation");
  knobs_data *plain = open_ds("dsprites", 0, 1), *color = open_ds("dsprites:color", 99, 1),
             *noisy = open_ds("dsprites:noisy", 99, 1), *nos = open_ds("dsprites:noshape", 99, 1);
  float *img = malloc(sizeof(float) * 3 * NPIX), *ref = malloc(sizeof(float) * NPIX);
  if (!plain || !color || !noisy || !nos) goto out;
  for (int t = 0; t < 3; t++) {
    int64_t idx = 1000 + 77777 * t;
    int32_t f[5];
    knobs_data_factors_of(plain, idx, f);
    knobs_data_render(plain, f, 1, ref);
    kn_rng r;
    /* color: three uniforms 0.5 + 0.5 u, one per channel */
    kn_rng_seed(&r, 99, KN_DSPRITES_STREAM + (uint64_t)idx);
    knobs_data_render(color, f, 1, img);
    int bad = 0;
    for (int ch = 0; ch < 3; ch++) {
      float col = (float)(0.5 + 0.5 * kn_rng_uniform(&r));
      for (int j = 0; j < NPIX; j++) bad += img[ch * NPIX + j] != (ref[j] != 0 ? col : 0.0f);
    }
    CHECK(bad == 0, "color index %lld: %d values differ from the documented derivation", (long long)idx, bad);
    /* noisy: 21-bit uniforms, three per 64-bit draw, channel-major */
    kn_rng_seed(&r, 99, KN_DSPRITES_STREAM + (uint64_t)idx);
    knobs_data_render(noisy, f, 1, img);
    bad = 0;
    for (int j = 0; j < 3 * NPIX; j += 3) {
      uint64_t x = kn_rng_u64(&r);
      float u[3] = {(float)(x >> 43) * 0x1.0p-21f, (float)((x >> 22) & 0x1fffff) * 0x1.0p-21f,
                    (float)((x >> 1) & 0x1fffff) * 0x1.0p-21f};
      for (int e = 0; e < 3; e++) bad += img[j + e] != (ref[(j + e) % NPIX] != 0 ? 1.0f : u[e]);
    }
    CHECK(bad == 0, "noisy index %lld: %d values differ from the documented derivation", (long long)idx, bad);
    /* noshape: the shape is kn_rng_below(3) of the 4-factor index */
    int32_t g[4] = {f[1], f[2], f[3], f[4]};
    kn_rng_seed(&r, 99, KN_DSPRITES_STREAM + (uint64_t)knobs_data_index(nos, g));
    f[0] = (int32_t)kn_rng_below(&r, 3);
    knobs_data_render(plain, f, 1, ref);
    knobs_data_render(nos, g, 1, img);
    CHECK(!memcmp(img, ref, sizeof(float) * NPIX), "noshape index %lld: not the documented shape %d",
          (long long)knobs_data_index(nos, g), f[0]);
  }
out:
  free(img), free(ref);
  knobs_data_free(plain), knobs_data_free(color), knobs_data_free(noisy), knobs_data_free(nos);
}

/* ---- render == get, threads, refusals ----------------------------------------------------- */
static void test_api(void) {
  T_CASE("api");
  static const char *specs[4] = {"dsprites", "dsprites:color", "dsprites:noisy", "dsprites:noshape"};
  for (int v = 0; v < 4; v++) {
    knobs_data *d = open_ds(specs[v], 5, 2), *d1 = open_ds(specs[v], 5, 1);
    if (!d || !d1) {
      knobs_data_free(d), knobs_data_free(d1);
      continue;
    }
    const knobs_data_info *in = knobs_data_info_get(d);
    enum { N = 37 };
    int K = in->K;
    size_t per = (size_t)in->C * NPIX;
    int64_t idx[N];
    int32_t f[N * 5], fg[N * 5];
    float *a = malloc(sizeof(float) * per * N), *b = malloc(sizeof(float) * per * N), *c = malloc(sizeof(float) * per * N);
    kn_rng r;
    kn_rng_seed(&r, 11, (uint64_t)v);
    for (int i = 0; i < N; i++) {
      idx[i] = (int64_t)(kn_rng_u64(&r) % (uint64_t)in->n);
      knobs_data_factors_of(d, idx[i], f + i * K);
    }
    CHECK(!knobs_data_get(d, idx, N, a, fg), "%s get: %s", specs[v], knobs_last_error());
    CHECK(!knobs_data_render(d, f, N, b), "%s render: %s", specs[v], knobs_last_error());
    CHECK(!knobs_data_render(d1, f, N, c), "%s render: %s", specs[v], knobs_last_error());
    CHECK(!memcmp(a, b, sizeof(float) * per * N), "%s: get != render", specs[v]);
    CHECK(!memcmp(b, c, sizeof(float) * per * N), "%s: 2 threads != 1 thread", specs[v]);
    CHECK(!memcmp(f, fg, sizeof(int32_t) * K * N), "%s: get's factors differ", specs[v]);
    /* draw: the same (seed, stream) gives the same batch */
    CHECK(!knobs_data_draw(d, N, 3, 4, a, f) && !knobs_data_draw(d1, N, 3, 4, b, fg), "draw: %s", knobs_last_error());
    CHECK(!memcmp(a, b, sizeof(float) * per * N) && !memcmp(f, fg, sizeof(int32_t) * K * N), "%s: draw not reproducible", specs[v]);
    /* out-of-range factors and indices are refused, naming the factor */
    int32_t badf[5] = {0, 0, 0, 0, 0};
    badf[K - 1] = 32;
    knobs_status s = knobs_data_render(d, badf, 1, a);
    CHECK(s == KNOBS_ERR_ARG && strstr(knobs_last_error(), "posY") && strstr(knobs_last_error(), "32"),
          "%s: posY 32 gave %d '%s'", specs[v], s, knobs_last_error());
    badf[K - 1] = 0, badf[0] = -1;
    s = knobs_data_render(d, badf, 1, a);
    CHECK(s == KNOBS_ERR_ARG && strstr(knobs_last_error(), in->factor_names[0]), "%s: class -1 gave %d '%s'", specs[v], s,
          knobs_last_error());
    int64_t bi = in->n;
    s = knobs_data_get(d, &bi, 1, a, NULL);
    CHECK(s == KNOBS_ERR_ARG && strstr(knobs_last_error(), "out of range"), "%s: index n gave %d '%s'", specs[v], s,
          knobs_last_error());
    free(a), free(b), free(c);
    knobs_data_free(d), knobs_data_free(d1);
  }
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open("dsprites:colour", NULL, &d);
  CHECK(s == KNOBS_ERR_ARG && !d && strstr(knobs_last_error(), "dsprites:colour") && strstr(knobs_last_error(), "dsprites:color"),
        "unknown variant gave %d '%s'", s, knobs_last_error());
  CHECK(knobs_data_describe("dsprites") != NULL, "no description");
}

/* ---- the .npz reader ----------------------------------------------------------------------- */
/* A complete sub-grid of the original's (classes 0..m-1 per factor) in its member layout: imgs
 * (N,64,64) uint8 rendered by the built-in renderer, latents_classes (N,6) int64 with the colour
 * column, latents_values (N,6) float64. `mutate` breaks one thing for the bad-file tests. */
enum { GOOD, BAD_VALUE, BAD_SHAPE, BAD_DTYPE, BAD_ORDER, BAD_COLS, BAD_ROWS, BAD_INCOMPLETE, NO_IMGS,
       BAD_CLASS };
static const int sub[5] = {3, 2, 3, 4, 4};

static void write_npz(const char *path, int mutate, int compress, knobs_data *plain) {
  int64_t N = 1;
  for (int k = 0; k < 5; k++) N *= sub[k];
  /* BAD_ROWS: one image fewer than class rows; BAD_INCOMPLETE: both one short of the grid */
  int64_t Ni = mutate == BAD_ROWS || mutate == BAD_INCOMPLETE ? N - 1 : N, Nc = mutate == BAD_INCOMPLETE ? N - 1 : N;
  knobs_array imgs, cls, vals;
  int64_t ish[3] = {Ni, 64, mutate == BAD_SHAPE ? 32 : 64}, csh[2] = {Nc, mutate == BAD_COLS ? 5 : 6},
          vsh[2] = {Nc, 6};
  knobs_status s = knobs_array_alloc(&imgs, mutate == BAD_DTYPE ? KNOBS_F32 : KNOBS_U8, 3, ish);
  if (!s) s = knobs_array_alloc(&cls, KNOBS_I64, 2, csh);
  if (!s) s = knobs_array_alloc(&vals, KNOBS_F64, 2, vsh);
  if (s) {
    CHECK(0, "allocate the arrays of %s: %s", path, knobs_last_error());
    exit(1);
  }
  float *img = malloc(sizeof(float) * NPIX);
  int64_t *c = cls.data;
  double *v = vals.data;
  int C = (int)csh[1];
  for (int64_t i = 0; i < Nc; i++) {
    int32_t f[5];
    int64_t rest = i;
    for (int k = 4; k >= 0; k--) f[k] = (int32_t)(rest % sub[k]), rest /= sub[k];
    if (mutate == BAD_ORDER && i == 5) f[4] = (f[4] + 1) % sub[4];
    for (int k = 0; k < C; k++) c[i * C + k] = k ? f[k - 1] : 0;
    if (mutate == BAD_CLASS && i == 9) c[i * C + 3] = 40;
    for (int k = 0; k < 6; k++) v[i * 6 + k] = k ? knobs_data_factor_value(plain, k - 1, f[k - 1]) : 1;
    if (i >= Ni) continue;
    knobs_data_render(plain, f, 1, img);
    for (int j = 0; j < (int)(ish[1] * ish[2]); j++) {
      uint8_t b = img[j] > 0.5f;
      if (mutate == BAD_DTYPE) ((float *)imgs.data)[i * NPIX + j] = b;
      else ((uint8_t *)imgs.data)[i * ish[1] * ish[2] + j] = b;
    }
  }
  if (mutate == BAD_VALUE) ((uint8_t *)imgs.data)[7 * NPIX + 3 * 64 + 5] = 255;
  const char *names[3] = {"imgs", "latents_classes", "latents_values"};
  knobs_array arr[3] = {imgs, cls, vals};
  s = mutate == NO_IMGS ? knobs_npz_write(path, names + 1, arr + 1, 2, compress)
                        : knobs_npz_write(path, names, arr, 3, compress);
  CHECK(!s, "write %s: %s", path, knobs_last_error());
  free(img);
  knobs_array_free(&imgs), knobs_array_free(&cls), knobs_array_free(&vals);
}

static void test_file(void) {
  T_CASE("npz reader");
  knobs_data *plain = open_ds("dsprites", 0, 1);
  if (!plain) return;
  char dir[] = "/tmp/knobs_dsprites_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    knobs_data_free(plain);
    return;
  }
  char path[256];
  for (int compress = 0; compress < 2; compress++) {
    /* a name that does not say dsprites: matched by its members */
    snprintf(path, sizeof path, "%s/sprites_%d.npz", dir, compress);
    write_npz(path, GOOD, compress, plain);
    knobs_data *d = open_ds(path, 0, 2);
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->K == 5 && in->n == 288 && in->C == 1 && in->binary && in->has_render, "file info K %d n %lld",
          in->K, (long long)in->n);
    for (int k = 0; k < 5; k++) CHECK(in->factor_sizes[k] == sub[k], "file factor %d size %d", k, in->factor_sizes[k]);
    CHECK(!strcmp(in->name, compress ? "sprites_1.npz" : "sprites_0.npz") && strstr(in->note, "sub-grid"),
          "name '%s' note '%s'", in->name, in->note);
    CHECK(knobs_data_factor_value(d, 2, 1) == knobs_data_factor_value(plain, 2, 1), "file factor values");
    /* every image equals the built-in render it was made from, by get and by render */
    enum { N = 288 };
    int64_t idx[N];
    int32_t f[N * 5], fg[N * 5];
    float *a = malloc(sizeof(float) * NPIX * N), *b = malloc(sizeof(float) * NPIX * N), *c = malloc(sizeof(float) * NPIX * N);
    for (int i = 0; i < N; i++) {
      idx[i] = N - 1 - i;
      knobs_data_factors_of(d, idx[i], f + 5 * i);
    }
    CHECK(!knobs_data_get(d, idx, N, a, fg), "file get: %s", knobs_last_error());
    CHECK(!knobs_data_render(d, f, N, b), "file render: %s", knobs_last_error());
    knobs_data_render(plain, f, N, c);
    CHECK(!memcmp(a, b, sizeof(float) * NPIX * N) && !memcmp(f, fg, sizeof f), "file: get != render");
    CHECK(!memcmp(a, c, sizeof(float) * NPIX * N), "file: images differ from what was written");
    CHECK(!knobs_data_draw(d, 16, 1, 2, a, f), "file draw: %s", knobs_last_error());
    int32_t bad[5] = {0, 2, 0, 0, 0};
    CHECK(knobs_data_render(d, bad, 1, a) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "scale"),
          "file: scale class 2 of a 2-scale grid: '%s'", knobs_last_error());
    free(a), free(b), free(c);
    knobs_data_free(d);
  }
  /* bad files: refused with the file's name and what is wrong */
  static const struct {
    int mutate;
    const char *says;
  } bad[] = {
      {BAD_VALUE, "value 255 at row 3, column 5"}, {BAD_SHAPE, "(288, 64, 32)"},
      {BAD_DTYPE, "float32"},                      {BAD_ORDER, "row 5"},
      {BAD_COLS, "(288, 5)"},                      {BAD_ROWS, "(287, 64, 64)"},
      {BAD_INCOMPLETE, "not a complete grid"},     {NO_IMGS, "imgs.npy"},
      {BAD_CLASS, "orientation class 40"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "%s/dsprites_bad%zu.npz", dir, i);
    write_npz(path, bad[i].mutate, (int)(i & 1), plain);
    knobs_data *d = NULL;
    knobs_status s = knobs_data_open(path, NULL, &d);
    CHECK(s != KNOBS_OK && !d && strstr(knobs_last_error(), path) && strstr(knobs_last_error(), bad[i].says),
          "bad file %zu: status %d '%s' (want the path and '%s')", i, s, knobs_last_error(), bad[i].says);
    knobs_data_free(d);
    unlink(path);
  }
  /* a truncated file and a missing one */
  snprintf(path, sizeof path, "%s/dsprites_cut.npz", dir);
  write_npz(path, GOOD, 1, plain);
  char *buf;
  size_t n;
  if (!kn_read_file(path, 1 << 24, &buf, &n)) {
    for (size_t cut = n / 3; cut < n; cut += n / 3) {
      kn_write_file(path, buf, cut);
      knobs_data *d = NULL;
      knobs_status s = knobs_data_open(path, NULL, &d);
      CHECK(s != KNOBS_OK && !d && strstr(knobs_last_error(), path), "cut at %zu of %zu: %d '%s'", cut, n, s,
            knobs_last_error());
    }
    /* a flipped byte inside the compressed pixels: deflate or the CRC catches it */
    buf[n / 4] ^= 0x55;
    kn_write_file(path, buf, n);
    knobs_data *d = NULL;
    knobs_status s = knobs_data_open(path, NULL, &d);
    CHECK(s != KNOBS_OK && !d && strstr(knobs_last_error(), path), "corrupt byte: %d '%s'", s, knobs_last_error());
    free(buf);
  }
  unlink(path);
  snprintf(path, sizeof path, "%s/dsprites_missing.npz", dir);
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open(path, NULL, &d);
  CHECK(s == KNOBS_ERR_IO && !d && strstr(knobs_last_error(), path), "missing file: %d '%s'", s, knobs_last_error());
  for (int compress = 0; compress < 2; compress++) {
    snprintf(path, sizeof path, "%s/sprites_%d.npz", dir, compress);
    unlink(path);
  }
  rmdir(dir);
  knobs_data_free(plain);
}

/* ---- a picture for people ------------------------------------------------------------------ */
static void write_picture(void) {
  T_CASE("picture");
  knobs_data *plain = open_ds("dsprites", 0, 1), *color = open_ds("dsprites:color", 0, 1),
             *noisy = open_ds("dsprites:noisy", 0, 1);
  if (!plain || !color || !noisy) goto out;
  /* rows: square, ellipse, heart at orientation classes 0, 3, 6, ... 30 and scale 1; then the
   * scales of the heart; then colour and noisy samples */
  enum { COLS = 11, ROWS = 6 };
  float *img = calloc((size_t)COLS * ROWS * 3 * NPIX, sizeof(float)), *one = malloc(sizeof(float) * 3 * NPIX);
  for (int r = 0; r < ROWS; r++)
    for (int c = 0; c < COLS; c++) {
      float *o = img + ((size_t)r * COLS + c) * 3 * NPIX;
      int32_t f[5] = {r < 3 ? r : 2, 5, 3 * c, 16, 16};
      if (r == 3) f[1] = c % 6, f[2] = 0, f[3] = c * 3, f[4] = 31 - c * 3;
      if (r >= 4) {
        knobs_data_sample_factors(plain, 1, 9, (uint64_t)(r * COLS + c), f);
        knobs_data_render(r == 4 ? color : noisy, f, 1, o);
        continue;
      }
      knobs_data_render(plain, f, 1, one);
      for (int ch = 0; ch < 3; ch++) memcpy(o + ch * NPIX, one, sizeof(float) * NPIX);
    }
  uint8_t *grid;
  int gw, gh;
  knobs_status s = knobs_image_grid(img, COLS * ROWS, 3, 64, 64, COLS, 2, 0.5f, &grid, &gw, &gh);
  if (!s) s = knobs_png_write("/tmp/knobs_dsprites_sprites.png", grid, gw, gh, 3);
  CHECK(!s, "picture: %s", knobs_last_error());
  if (!s) free(grid);
  free(img), free(one);
out:
  knobs_data_free(plain), knobs_data_free(color), knobs_data_free(noisy);
}

int main(void) {
  test_grid();
  test_golden();
  test_table();
  test_centres();
  test_rotation();
  test_reference();
  test_variants();
  test_nuisance();
  test_api();
  test_file();
  write_picture();
  return t_done();
}
