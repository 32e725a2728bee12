/* dsprites.c: the built-in dSprites, its three variants from the reference study, and the reader
 * of the original file dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz.
 *
 * Built in ("dsprites"): the original's factor grid exactly (shape 3, scale 6, orientation 40,
 * posX 32, posY 32, index row-major as its latents_classes without the colour column) and
 * shapes drawn as exact geometric sets sized from the measured table in
 * ../shared/reference/datasets.md, rasterised with 5x5 sub-samples per pixel (on at coverage
 * > 1/2) inside the sprite's bounding box only, where pixels wholly inside or outside the shape
 * are decided without sampling. Batches render in parallel on d->pool, each thread owning
 * whole images. Variants: "dsprites:color" (sprite colour uniform in [0.5,1]^3),
 * "dsprites:noisy" (uniform background noise, sprite added and clipped at 1), "dsprites:noshape"
 * (shape a nuisance, 4 factors). Their nuisance is a pure function of (opts->seed, grid index):
 * see KN_DSPRITES_STREAM in dsprites.h.
 *
 * The file: latents_classes is read and checked to be a complete grid in row-major order (the
 * original's, or a prefix sub-grid of it: classes 0..m-1 of each factor, which is what the tests
 * build); imgs is streamed through the zip reader and packed to one bit per pixel (377 MB for
 * the original, never the 3 GB of bytes), then get/render unpack from the bits.
 *
 * It does not reproduce the original's pixels (the built-in data is "dSprites-like"), read
 * latents_values (factor values are the original's linspace grids), or accept colour classes
 * other than 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/dsprites.h"
#include "io/io.h"

#define HW KN_DSPRITES_HW
#define NPIX (HW * HW)
#define SS 5             /* sub-samples per pixel side: SS x SS per pixel */
#define SS_ON 13         /* sub-samples inside for a pixel to be on: coverage > 1/2 (odd count:
                          * no ties) */
#define PACKED (NPIX / 8) /* bytes per bit-packed image */

static const char *const grid_names[5] = {"shape", "scale", "orientation", "posX", "posY"};
static const int grid_sizes[5] = {3, 6, 40, 32, 32};
static const char *const file_cols[6] = {"color", "shape", "scale", "orientation", "posX", "posY"};

typedef enum { V_PLAIN, V_COLOR, V_NOISY, V_NOSHAPE, V_FILE } variant;

typedef struct {
  variant v;
  uint64_t seed;      /* nuisance seed of the variants */
  int64_t n;          /* file: images */
  uint8_t *bits;      /* file: n * PACKED bytes, pixel p of an image is bit p%8 of byte p/8 */
} ds;

/* ---- geometry ---------------------------------------------------------------------------- */
/* Unit shapes (scale 1) in local coordinates: u to the right, v down, origin at the rotation
 * centre. A sprite of scale s at angle a centred at (cx, cy) covers the screen points p with
 * R(-a) (p - c) / s inside the unit shape, where on screen (y down) R(a) turns
 * counter-clockwise: R(a)(x, y) = (x cos a + y sin a, -x sin a + y cos a).
 *   square  |u|, |v| <= 10                          (20 s x 20 s)
 *   ellipse (u/12.72)^2 + (v/7.17)^2 <= 1           (about 26 s x 14 s, long axis along u)
 *   heart   two lobes, disks of radius 5 centred at (+-5.3, -4.4), each joined to the tip
 *           (0, 8.6) by its tangent lines (the convex hull of disk and tip), and the triangle
 *           tip-centre-centre between them: u in [-10.3, 10.3], v in [-9.4, 8.6] (lobes up,
 *           tip down); continuous area 231.8 s^2, centroid 2.2 s above the centre.
 * The sizes were fitted (a sweep of the heart's four numbers and the ellipse's two) so that,
 * rasterised at orientation 0 at every one of the 32x32 positions, every shape x scale keeps
 * its area within 10% and its box within 1 px of the measured table. The fitted continuous
 * shapes are a little larger than the table's boxes where rasterising trims them: the heart's
 * round lobes and blunt tip lose about 0.3 px per side, so a 20.6 s x 18 s heart rasterises to
 * the measured 20 s x 17 s, 9 s above and 8 s below the centre. The original is not exactly
 * proportional either (its 0.9 ellipse is 22x12 where 26 s x 14 s would give 23.4 x 12.6; its
 * small hearts are relatively taller), so a plain 26 s x 14 s ellipse or 20 s x 17 s heart
 * breaks some rows of the table at some positions. */
#define SQ_HALF 10.0
#define EL_A 12.72
#define EL_B 7.17
#define HT_HALF_W 10.3
#define HT_TOP 9.4
#define HT_TIP 8.6
#define HT_R 5.0

typedef struct {
  double cu, cv, r2;     /* right lobe: centre (cu, cv), radius^2 */
  double au, av, lim;    /* unit axis tip -> lobe centre; tangent points project to lim */
  double tan_a;          /* tangent of the cone's half angle */
  double nu, nv;         /* outward unit normal of the right lobe's outer tangent through the tip */
} heart_geom;

static heart_geom heart_setup(void) {
  heart_geom g;
  g.cu = HT_HALF_W - HT_R;
  g.cv = -(HT_TOP - HT_R);
  g.r2 = HT_R * HT_R;
  double du = g.cu, dv = g.cv - HT_TIP, L = sqrt(du * du + dv * dv);
  g.au = du / L;
  g.av = dv / L;
  g.lim = L - g.r2 / L;
  g.tan_a = HT_R / sqrt(L * L - g.r2);
  /* the two tangents from the tip turn the axis by +-asin(r/L); the outer one has both lobe
   * centres on its inner side, and its normal is taken pointing away from them */
  double sn = HT_R / L, cs = sqrt(1 - sn * sn);
  g.nu = g.nv = 0; /* (0, 0) would reject nothing */
  for (int sgn = -1; sgn <= 1; sgn += 2) {
    double du2 = g.au * cs - sgn * g.av * sn, dv2 = sgn * g.au * sn + g.av * cs; /* direction */
    double nu = dv2, nv = -du2;                                                     /* a normal */
    double s2 = nu * g.cu + nv * (g.cv - HT_TIP), s1 = nu * -g.cu + nv * (g.cv - HT_TIP);
    if ((s1 < 0) == (s2 < 0)) g.nu = s2 < 0 ? nu : -nu, g.nv = s2 < 0 ? nv : -nv;
  }
  return g;
}

/* The right lobe's cone: the triangle between the tip and the tangent points (convex). */
static inline int in_cone(const heart_geom *g, double u, double v) {
  double pv = v - HT_TIP, proj = u * g->au + pv * g->av;
  return proj >= 0 && proj <= g->lim && fabs(u * g->av - pv * g->au) <= proj * g->tan_a;
}

/* The heart is symmetric in u and the left lobe's part at u >= 0 lies inside the right lobe,
 * so testing |u| against the right lobe, its cone and the middle triangle is exact. */
static inline int in_heart(const heart_geom *g, double u, double v) {
  u = fabs(u);
  if (v < -HT_TOP || v > HT_TIP || u > HT_HALF_W) return 0;
  double du = u - g->cu, dv = v - g->cv;
  if (du * du + dv * dv <= g->r2) return 1;
  if (in_cone(g, u, v)) return 1;
  return v >= g->cv && u * (HT_TIP - g->cv) <= g->cu * (HT_TIP - v);
}

/* Whole-pixel shortcut. Every sub-sample of a pixel lies within R of the pixel's centre (uc, vc)
 * in local units, so within the box |u| in [max(|uc| - R, 0), |uc| + R], v (or |v|) in
 * [vc - R, vc + R]. If that box is entirely inside the shape, every sample is (1); entirely
 * outside, none is (-1); otherwise the pixel is sampled (0). Each test is conservative, so the
 * image is the one sampling every pixel would give, for a fraction of the cost (only pixels
 * near the outline are sampled). The heart tests its box, the outer tangents from the tip, the
 * lobes (outside: only above their centres, where nothing else reaches), the middle triangle
 * and the cones; a box straddling two pieces is sampled. */
static inline int classify(int shape, const heart_geom *g, double uc, double vc, double R) {
  double u0 = fmax(fabs(uc) - R, 0), u1 = fabs(uc) + R;
  switch (shape) {
  case KN_DSPRITES_SQUARE: {
    double v0 = fmax(fabs(vc) - R, 0), v1 = fabs(vc) + R;
    if (u0 > SQ_HALF || v0 > SQ_HALF) return -1;
    return u1 <= SQ_HALF && v1 <= SQ_HALF;
  }
  case KN_DSPRITES_ELLIPSE: {
    double v0 = fmax(fabs(vc) - R, 0), v1 = fabs(vc) + R, ia = 1.0 / (EL_A * EL_A), ib = 1.0 / (EL_B * EL_B);
    if (u0 * u0 * ia + v0 * v0 * ib > 1.0) return -1;
    return u1 * u1 * ia + v1 * v1 * ib <= 1.0;
  }
  default: {
    double v0 = vc - R, v1 = vc + R;
    if (u0 > HT_HALF_W || v0 > HT_TIP || v1 < -HT_TOP) return -1;
    double t = (g->nu > 0 ? g->nu * u0 : g->nu * u1) + (g->nv > 0 ? g->nv * (v0 - HT_TIP) : g->nv * (v1 - HT_TIP));
    if (t > 0) return -1; /* beyond the outer tangent */
    double eu = fmax(fmax(u0 - g->cu, g->cu - u1), 0), ev = fmax(fmax(v0 - g->cv, g->cv - v1), 0);
    /* above the lobes' centres the heart is the two lobes alone (the cones reach 0.12 above) */
    if (v1 < g->cv - 0.5 && eu * eu + ev * ev > g->r2) return -1;
    double fu = fmax(fabs(u0 - g->cu), fabs(u1 - g->cu)), fv = fmax(fabs(v0 - g->cv), fabs(v1 - g->cv));
    if (fu * fu + fv * fv <= g->r2) return 1; /* inside the right lobe */
    if (v0 >= g->cv && u1 * (HT_TIP - g->cv) <= g->cu * (HT_TIP - v1)) return 1; /* the middle triangle */
    return in_cone(g, u0, v0) && in_cone(g, u0, v1) && in_cone(g, u1, v0) && in_cone(g, u1, v1);
  }
  }
}

static inline int in_shape(int shape, const heart_geom *g, double u, double v) {
  switch (shape) {
  case KN_DSPRITES_SQUARE: return fabs(u) <= SQ_HALF && fabs(v) <= SQ_HALF;
  case KN_DSPRITES_ELLIPSE: return u * u * (1.0 / (EL_A * EL_A)) + v * v * (1.0 / (EL_B * EL_B)) <= 1.0;
  default: return in_heart(g, u, v);
  }
}

int kn_dsprites_mask(uint8_t *mask, int shape, double scale, double angle, double cx, double cy) {
  KN_ASSERT(shape >= 0 && shape <= 2 && scale > 0);
  memset(mask, 0, NPIX);
  heart_geom g = heart_setup();
  double ca = cos(angle), sa = sin(angle), k = 1.0 / scale;
  /* the screen bounding box: the local box's corners turned and scaled */
  double bu0 = shape == KN_DSPRITES_ELLIPSE ? EL_A : SQ_HALF, bv0 = shape == KN_DSPRITES_ELLIPSE ? EL_B : SQ_HALF;
  double lu[2] = {-bu0, bu0}, lv[2] = {-bv0, bv0};
  if (shape == KN_DSPRITES_HEART) lu[0] = -HT_HALF_W, lu[1] = HT_HALF_W, lv[0] = -HT_TOP, lv[1] = HT_TIP;
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (int i = 0; i < 4; i++) {
    double u = lu[i & 1], v = lv[i >> 1];
    double x = cx + scale * (u * ca + v * sa), y = cy + scale * (-u * sa + v * ca);
    x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
  }
  int px0 = (int)fmax(0, floor(x0)), px1 = (int)fmin(HW, ceil(x1));
  int py0 = (int)fmax(0, floor(y0)), py1 = (int)fmin(HW, ceil(y1));
  /* Sub-samples: a sheared 5x5 lattice in which all 25 x offsets and all 25 y offsets differ
   * (sample (a, b) at ((5b + a + 1/2) / 25, (5a + b + 1/2) / 25) of the pixel), so an
   * axis-aligned edge is resolved to 1/25 px, and an odd count leaves no coverage ties. (A plain
   * 4x4 grid resolves edges to 1/4 px and turns each edge in the middle half of a pixel into a
   * tie at exactly 8 of 16; a sheared 4x4 still ties both edges of a square whose sides fall
   * near the middle of a pixel, e.g. at posX 15, and widens it by 1 px.)
   * Local coordinates of a screen point: u = (dx ca - dy sa) k, v = (dx sa + dy ca) k; they are
   * stepped incrementally along the lattice's two generators. */
  const double q = 1.0 / (SS * SS);
  double ub = (SS * q * ca - q * sa) * k, vb = (SS * q * sa + q * ca) * k; /* b + 1: (5q, q) */
  double ua = (q * ca - SS * q * sa) * k, va = (q * sa + SS * q * ca) * k; /* a + 1: (q, 5q) */
  const double R = 0.7 * k; /* samples are within 0.48 sqrt 2 = 0.679 px of the pixel centre */
  int on = 0;
  for (int py = py0; py < py1; py++) {
    double dy = py + 0.5 * q - cy, dyc = py + 0.5 - cy;
    for (int px = px0; px < px1; px++) {
      double dxc = px + 0.5 - cx;
      int c = classify(shape, &g, (dxc * ca - dyc * sa) * k, (dxc * sa + dyc * ca) * k, R);
      if (c) {
        if (c > 0) mask[py * HW + px] = 1, on++;
        continue;
      }
      double dx = px + 0.5 * q - cx;
      double ur = (dx * ca - dy * sa) * k, vr = (dx * sa + dy * ca) * k;
      int in = 0;
      for (int a = 0; a < SS; a++, ur += ua, vr += va) {
        double u = ur, v = vr;
        for (int b = 0; b < SS; b++, u += ub, v += vb) in += in_shape(shape, &g, u, v);
      }
      if (in >= SS_ON) {
        mask[py * HW + px] = 1;
        on++;
      }
    }
  }
  return on;
}

/* ---- factor values (the original's latents_values) --------------------------------------- */
/* Class c of grid factor j (0 shape .. 4 posY), computed as numpy.linspace does (start + c *
 * step, the last value exactly the stop). */
double kn_dsprites_value(int j, int c) {
  switch (j) {
  case 0: return c + 1;                                   /* 1 square, 2 ellipse, 3 heart */
  case 1: return c == 5 ? 1.0 : 0.5 + c * 0.1;           /* linspace(0.5, 1, 6) */
  case 2: return c == 39 ? 2 * M_PI : c * (2 * M_PI / 39); /* linspace(0, 2 pi, 40) */
  default: return c == 31 ? 1.0 : c * (1.0 / 31);        /* linspace(0, 1, 32) */
  }
}

static double ds_factor_value(const knobs_data *d, int k, int c) {
  const ds *m = d->impl;
  return kn_dsprites_value(m->v == V_NOSHAPE ? k + 1 : k, c);
}

/* ---- procedural rendering ---------------------------------------------------------------- */
static void render_one(const knobs_data *d, const ds *m, const int32_t *f, float *out) {
  kn_rng r;
  if (m->v != V_PLAIN) kn_rng_seed(&r, m->seed, KN_DSPRITES_STREAM + (uint64_t)knobs_data_index(d, f));
  int shape;
  const int32_t *g; /* scale, orientation, posX, posY */
  if (m->v == V_NOSHAPE) {
    shape = (int)kn_rng_below(&r, 3);
    g = f;
  } else {
    shape = f[0];
    g = f + 1;
  }
  uint8_t mask[NPIX];
  kn_dsprites_mask(mask, shape, kn_dsprites_value(1, g[0]), kn_dsprites_value(2, g[1]), 16 + 32 * kn_dsprites_value(3, g[2]),
                   16 + 32 * kn_dsprites_value(4, g[3]));
  if (m->v == V_COLOR) {
    for (int ch = 0; ch < 3; ch++) {
      float col = (float)(0.5 + 0.5 * kn_rng_uniform(&r));
      for (int i = 0; i < NPIX; i++) out[ch * NPIX + i] = mask[i] ? col : 0.0f;
    }
  } else if (m->v == V_NOISY) {
    /* the background: three 21-bit uniforms in [0, 1) per 64-bit draw of r, channel-major; then
     * the sprite added and clipped at 1, which sets its pixels to 1 */
    for (int i = 0; i < 3 * NPIX; i += 3) {
      uint64_t x = kn_rng_u64(&r);
      out[i] = (float)(x >> 43) * 0x1.0p-21f;
      out[i + 1] = (float)((x >> 22) & 0x1fffff) * 0x1.0p-21f;
      out[i + 2] = (float)((x >> 1) & 0x1fffff) * 0x1.0p-21f;
    }
    for (int ch = 0; ch < 3; ch++)
      for (int i = 0; i < NPIX; i++)
        if (mask[i]) out[ch * NPIX + i] = 1.0f;
  } else {
    for (int i = 0; i < NPIX; i++) out[i] = mask[i];
  }
}

typedef struct {
  const knobs_data *d;
  const int32_t *f;
  int n;
  float *obs;
} render_job;

static void render_task(void *ctx, int tid, int nt) {
  const render_job *j = ctx;
  const knobs_data *d = j->d;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  size_t per = (size_t)d->info.C * NPIX;
  for (long i = lo; i < hi; i++) render_one(d, d->impl, j->f + (size_t)i * d->info.K, j->obs + (size_t)i * per);
}

static knobs_status ds_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  render_job j = {d, factors, n, obs};
  kn_pool_run(n > 1 ? d->pool : NULL, render_task, &j);
  return KNOBS_OK;
}

/* ---- the file ------------------------------------------------------------------------------ */
static knobs_status file_get(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors) {
  const ds *m = d->impl;
  for (int i = 0; i < n; i++) {
    const uint8_t *b = m->bits + (size_t)idx[i] * PACKED;
    float *o = obs + (size_t)i * NPIX;
    for (int p = 0; p < PACKED; p++)
      for (int j = 0; j < 8; j++) o[8 * p + j] = (float)((b[p] >> j) & 1);
    if (factors) knobs_data_factors_of(d, idx[i], factors + (size_t)i * d->info.K);
  }
  return KNOBS_OK;
}

static const char *shape_text(const kn_npy_header *h, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < h->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "%s)", h->ndim == 1 ? "," : "");
  return buf;
}

static int is_integer(knobs_dtype t) { return t != KNOBS_F32 && t != KNOBS_F64 && t != KNOBS_BOOL; }

/* Read latents_classes and check it is a complete grid in row-major order (posY fastest):
 * fills sizes[5] (shape .. posY) and *n. */
static knobs_status read_classes(const char *path, int *sizes, int64_t *n) {
  kn_reader *r;
  knobs_status s = kn_reader_zip(path, "latents_classes.npy", &r);
  if (s) return s;
  kn_npy_header h;
  knobs_array a = {0};
  char sh[160];
  s = kn_npy_read_header(r, &h);
  if (!s && !is_integer(h.dtype))
    s = kn_err(KNOBS_ERR_FORMAT, "%s: latents_classes has dtype %s; expected integer classes (int64)",
               path, knobs_dtype_name(h.dtype));
  if (!s && (h.ndim != 2 || h.shape[1] != 6 || h.shape[0] < 1 || h.shape[0] > 737280))
    s = kn_err(KNOBS_ERR_FORMAT, "%s: latents_classes has shape %s; expected (N, 6) with N <= 737280 "
               "(color, shape, scale, orientation, posX, posY)", path, shape_text(&h, sh, sizeof sh));
  if (!s) s = kn_npy_read_data(r, &h, &a);
  kn_reader_close(r);
  if (s) return s;
  int64_t N = h.shape[0];
  int mx[6] = {0};
  for (int64_t i = 0; i < N && !s; i++)
    for (int k = 0; k < 6; k++) {
      double v = knobs_array_get(&a, i * 6 + k);
      int lim = k ? grid_sizes[k - 1] : 1;
      if (!(v >= 0 && v < lim)) {
        s = kn_err(KNOBS_ERR_FORMAT, "%s: latents_classes row %lld: %s class %.0f is outside 0..%d",
                   path, (long long)i, file_cols[k], v, lim - 1);
        break;
      }
      if ((int)v > mx[k]) mx[k] = (int)v;
    }
  int64_t prod = 1;
  for (int k = 0; k < 5; k++) prod *= sizes[k] = mx[k + 1] + 1;
  if (!s && prod != N)
    s = kn_err(KNOBS_ERR_FORMAT, "%s: latents_classes has %lld rows but its classes span a %dx%dx%dx%dx%d "
               "grid of %lld: not a complete grid", path, (long long)N, sizes[0], sizes[1], sizes[2],
               sizes[3], sizes[4], (long long)prod);
  for (int64_t i = 0; i < N && !s; i++) {
    int64_t rest = i;
    for (int k = 5; k >= 1; k--) {
      int want = (int)(rest % sizes[k - 1]);
      rest /= sizes[k - 1];
      if ((int)knobs_array_get(&a, i * 6 + k) != want) {
        s = kn_err(KNOBS_ERR_FORMAT, "%s: latents_classes row %lld has %s class %.0f where the dSprites "
                   "order (row-major, posY fastest) has %d", path, (long long)i, file_cols[k],
                   knobs_array_get(&a, i * 6 + k), want);
        break;
      }
    }
  }
  knobs_array_free(&a);
  *n = N;
  return s;
}

/* 8 bytes each 0 or 1 (little-endian load) to 8 bits: byte j lands on bit 56 + j of the product,
 * and the 64 partial products sit on distinct bits, so nothing carries. */
static inline uint8_t pack8(uint64_t x) { return (uint8_t)((x * 0x0102040810204080ull) >> 56); }

/* Stream imgs (N, 64, 64) uint8 into m->bits, checking every value is 0 or 1. */
static knobs_status read_imgs(const char *path, int64_t N, ds *m) {
  kn_reader *r;
  knobs_status s = kn_reader_zip(path, "imgs.npy", &r);
  if (s) return s;
  kn_npy_header h;
  char sh[160];
  enum { CHUNK = 256 };
  uint8_t *buf = NULL;
  s = kn_npy_read_header(r, &h);
  if (!s && h.dtype != KNOBS_U8 && h.dtype != KNOBS_BOOL)
    s = kn_err(KNOBS_ERR_FORMAT, "%s: imgs has dtype %s; expected uint8 pixels 0/1", path,
               knobs_dtype_name(h.dtype));
  if (!s && (h.ndim != 3 || h.shape[0] != N || h.shape[1] != HW || h.shape[2] != HW))
    s = kn_err(KNOBS_ERR_FORMAT, "%s: imgs has shape %s; expected (%lld, 64, 64) to match latents_classes",
               path, shape_text(&h, sh, sizeof sh), (long long)N);
  if (!s && h.fortran && N > 1)
    s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: imgs is stored in Fortran order; expected C order", path);
  if (!s && !(m->bits = kn_alloc((size_t)N * PACKED, "the bit-packed dSprites images"))) s = knobs_last_status();
  if (!s && !(buf = malloc((size_t)CHUNK * NPIX))) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a read buffer", path);
  for (int64_t i = 0; i < N && !s; i += CHUNK) {
    size_t c = (size_t)(N - i < CHUNK ? N - i : CHUNK);
    s = kn_read_exact(r, buf, c * NPIX, "imgs data");
    uint8_t *dst = m->bits + (size_t)i * PACKED;
    for (size_t p = 0; p < c * PACKED && !s; p++) {
      uint64_t x;
      memcpy(&x, buf + 8 * p, 8);
      if (x & 0xfefefefefefefefeull) {
        size_t q = 8 * p;
        while (buf[q] <= 1) q++;
        s = kn_err(KNOBS_ERR_FORMAT, "%s: imgs[%lld] has value %d at row %d, column %d; dSprites "
                   "pixels are 0 or 1", path, (long long)(i + (int64_t)(q / NPIX)), buf[q],
                   (int)(q % NPIX / HW), (int)(q % HW));
      }
      dst[p] = pack8(x);
    }
  }
  free(buf);
  kn_reader_close(r);
  return s;
}

static knobs_status open_file(knobs_data *d, ds *m, const char *path) {
  knobs_data_info *in = &d->info;
  int sizes[5];
  int64_t N;
  knobs_status s = read_classes(path, sizes, &N);
  if (!s) s = read_imgs(path, N, m);
  if (s) return s;
  m->v = V_FILE;
  m->n = N;
  const char *base = strrchr(path, '/');
  snprintf(in->name, sizeof in->name, "%s", base ? base + 1 : path);
  kn_data_set_factors(in, 5, grid_names, sizes);
  in->C = 1, in->H = HW, in->W = HW, in->n = N;
  in->is_image = 1, in->binary = 1;
  in->has_render = 1; /* a complete grid: render goes through the index */
  if (N != 737280)
    snprintf(in->note, sizeof in->note, "a %dx%dx%dx%dx%d sub-grid of dSprites (classes from 0; the "
             "original is 3x6x40x32x32)", sizes[0], sizes[1], sizes[2], sizes[3], sizes[4]);
  return KNOBS_OK;
}

/* ---- registry --------------------------------------------------------------------------- */
static void ds_free(void *p) {
  ds *m = p;
  if (!m) return;
  kn_free(m->bits);
  free(m);
}

static const kn_data_ops render_ops = {.render = ds_render, .factor_value = ds_factor_value, .free_impl = ds_free};
static const kn_data_ops file_ops = {.get = file_get, .factor_value = ds_factor_value, .free_impl = ds_free};

static const char *const variants[4] = {"dsprites", "dsprites:color", "dsprites:noisy", "dsprites:noshape"};

/* An .npz with a latents_classes member (the dSprites-specific one; a missing imgs is then
 * reported from here); or, when it cannot be listed (missing, truncated), one whose name says
 * dsprites, so that the error comes from here too. */
static int is_dsprites_file(const char *spec) {
  char **names;
  int n;
  if (kn_zip_list(spec, &names, &n)) {
    const char *base = strrchr(spec, '/');
    return strstr(base ? base + 1 : spec, "dsprites") != NULL;
  }
  int classes = 0;
  for (int i = 0; i < n; i++) classes |= !strcmp(names[i], "latents_classes.npy");
  knobs_npz_names_free(names, n);
  return classes;
}

static int ds_match(const char *spec) {
  if (kn_ends_with(spec, ".npz")) return is_dsprites_file(spec);
  return !strcmp(spec, "dsprites") || (!strncmp(spec, "dsprites:", 9) && strncmp(spec, "dsprites:seq", 12));
}

static knobs_status ds_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors)
    return kn_err(KNOBS_ERR_ARG, "%s has its own factors: a factors file (%s) is for your own data", spec, o->factors);
  ds *m = calloc(1, sizeof *m);
  if (!m) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", spec);
  d->impl = m;
  d->ops = &render_ops;
  m->seed = o->seed;
  if (kn_ends_with(spec, ".npz")) {
    d->ops = &file_ops;
    return open_file(d, m, spec);
  }
  int v = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(spec, variants[i])) v = i;
  if (v < 0)
    return kn_err(KNOBS_ERR_ARG, "unknown dSprites variant '%s' (known: dsprites, dsprites:color, "
                  "dsprites:noisy, dsprites:noshape)", spec);
  m->v = (variant)v;
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", spec);
  if (m->v == V_NOSHAPE) kn_data_set_factors(in, 4, grid_names + 1, grid_sizes + 1);
  else kn_data_set_factors(in, 5, grid_names, grid_sizes);
  in->n = 1;
  for (int k = 0; k < in->K; k++) in->n *= in->factor_sizes[k];
  in->C = m->v == V_COLOR || m->v == V_NOISY ? 3 : 1;
  in->H = HW, in->W = HW;
  in->is_image = 1;
  in->binary = m->v == V_PLAIN || m->v == V_NOSHAPE;
  in->has_render = 1;
  if (m->v == V_NOSHAPE)
    snprintf(in->note, sizeof in->note, "the shape is a nuisance drawn from (seed, index)");
  return KNOBS_OK;
}

const kn_data_entry kn_data_dsprites = {
    "dsprites",
    "dSprites-like sprites rendered on the fly: shape 3 x scale 6 x orientation 40 x posX 32 x posY 32, "
    "64x64 binary; variants dsprites:color, dsprites:noisy, dsprites:noshape; or the original "
    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    ds_match, ds_open};
