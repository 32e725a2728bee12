/* shapes.c: `shapes`, a procedural colour scene with 3D Shapes' factor grid: floor hue 10, wall
 * hue 10, object hue 10 (0.0, 0.1, ..., 0.9), object scale 8 (0.75..1.25), shape 4 (cube,
 * cylinder, sphere, capsule), orientation 15 (-30..30 degrees of the camera around the object),
 * rendered at 64x64x3 by ray casting in a simple perspective: a room (floor and walls) with the
 * object standing in the middle, Lambertian shading from one directional light and the object's
 * shadow on the floor. It is "3D-Shapes-like": same factors and sizes, not the same pixels.
 *
 * Speed: the geometry of an image depends only on (shape, scale, orientation), 480 cases, and
 * its colours enter linearly. For each case we ray-cast once, 4x4 samples per pixel, and keep per
 * pixel the shading weights of the floor, the wall and the object (a lazily filled cache, 24 MB
 * when full); an image is then 3 weights x 3 hues per pixel. Rendering is a pure function of
 * the factors, parallel on the dataset's pool over new cases and over images (batches of 256 or
 * more; a smaller batch renders faster than the pool wakes up). A dataset must not be rendered from
 * two threads at once (the cache is filled in place). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

#define S 64             /* image side */
#define SS 4             /* samples per pixel side */
#define NSHAPE 4
#define NSCALE 8
#define NORIENT 15
#define NCASE (NSHAPE * NSCALE * NORIENT)

static const char *const names[6] = {"floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"};
static const int sizes[6] = {10, 10, 10, NSCALE, NSHAPE, NORIENT};

typedef struct {
  float *w[NCASE]; /* per case: (3, S*S) weights of floor, wall, object colour; NULL until used */
} shapes;

typedef struct {
  double x, y, z;
} v3;
static v3 v(double x, double y, double z) { return (v3){x, y, z}; }
static v3 add(v3 a, v3 b) { return v(a.x + b.x, a.y + b.y, a.z + b.z); }
static v3 sub(v3 a, v3 b) { return v(a.x - b.x, a.y - b.y, a.z - b.z); }
static v3 mul(v3 a, double s) { return v(a.x * s, a.y * s, a.z * s); }
static double dot(v3 a, v3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static v3 cross(v3 a, v3 b) { return v(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x); }
static v3 norm(v3 a) { return mul(a, 1.0 / sqrt(dot(a, a))); }

/* the scene, in world units: floor y = 0, walls at |x| = ROOM and |z| = ROOM, the object at the
 * origin; the camera circles the object at distance CAM_D and height CAM_H */
#define ROOM 3.4
#define CAM_D 3.0
#define CAM_H 1.8
#define AIM_Y 1.0
#define TAN_HALF 0.46

typedef struct {
  int shape;
  double s;  /* scale */
} object;

/* Ray (o, d) with |d| = 1 against the object: distance t > 0 (or -1) and the normal there. */
static double hit_object(const object *ob, v3 o, v3 d, v3 *n) {
  double s = ob->s;
  switch (ob->shape) {
  case 0: { /* cube of side 1.1 s standing on the floor */
    double a = 0.55 * s, lo[3] = {-a, 0, -a}, hi[3] = {a, 2 * a, a}, oo[3] = {o.x, o.y, o.z}, dd[3] = {d.x, d.y, d.z};
    double tn = -1e30, tf = 1e30;
    int axis = 0, sign = 1;
    for (int i = 0; i < 3; i++) {
      if (fabs(dd[i]) < 1e-12) {
        if (oo[i] < lo[i] || oo[i] > hi[i]) return -1;
        continue;
      }
      double t1 = (lo[i] - oo[i]) / dd[i], t2 = (hi[i] - oo[i]) / dd[i];
      int sg = -1;
      if (t1 > t2) {
        double t = t1;
        t1 = t2, t2 = t, sg = 1;
      }
      if (t1 > tn) tn = t1, axis = i, sign = sg;
      if (t2 < tf) tf = t2;
    }
    if (tn > tf || tn <= 1e-9) return -1;
    double nn[3] = {0, 0, 0};
    nn[axis] = sign;
    *n = v(nn[0], nn[1], nn[2]);
    return tn;
  }
  case 1: { /* upright cylinder, radius 0.55 s, height 1.1 s */
    double r = 0.55 * s, h = 1.1 * s, best = -1;
    double a = d.x * d.x + d.z * d.z, b = o.x * d.x + o.z * d.z, c = o.x * o.x + o.z * o.z - r * r;
    if (a > 1e-12) {
      double disc = b * b - a * c;
      if (disc >= 0) {
        double t = (-b - sqrt(disc)) / a, y = o.y + t * d.y;
        if (t > 1e-9 && y >= 0 && y <= h) best = t, *n = norm(v(o.x + t * d.x, 0, o.z + t * d.z));
      }
    }
    if (fabs(d.y) > 1e-12) {
      double t = (h - o.y) / d.y;
      v3 p = add(o, mul(d, t));
      if (t > 1e-9 && p.x * p.x + p.z * p.z <= r * r && (best < 0 || t < best)) best = t, *n = v(0, 1, 0);
    }
    return best;
  }
  case 2: { /* sphere of radius 0.6 s resting on the floor */
    double r = 0.6 * s;
    v3 oc = sub(o, v(0, r, 0));
    double b = dot(oc, d), c = dot(oc, oc) - r * r, disc = b * b - c;
    if (disc < 0) return -1;
    double t = -b - sqrt(disc);
    if (t <= 1e-9) return -1;
    *n = mul(sub(add(o, mul(d, t)), v(0, r, 0)), 1 / r);
    return t;
  }
  default: { /* capsule lying along x: radius 0.42 s, axis half-length 0.5 s (Quilez's method) */
    double r = 0.42 * s, L = 0.5 * s;
    v3 pa = v(-L, r, 0), pb = v(L, r, 0), ba = sub(pb, pa), oa = sub(o, pa);
    double baba = dot(ba, ba), bard = dot(ba, d), baoa = dot(ba, oa), rdoa = dot(d, oa), oaoa = dot(oa, oa);
    double a = baba - bard * bard, b = baba * rdoa - baoa * bard, c = baba * oaoa - baoa * baoa - r * r * baba;
    double disc = b * b - a * c, t = -1;
    if (disc >= 0 && a > 1e-12) {
      t = (-b - sqrt(disc)) / a;
      double y = baoa + t * bard;
      if (y <= 0 || y >= baba) { /* a cap */
        v3 oc = y <= 0 ? oa : sub(o, pb);
        b = dot(d, oc);
        c = dot(oc, oc) - r * r;
        disc = b * b - c;
        t = disc > 0 ? -b - sqrt(disc) : -1;
      }
    }
    if (t <= 1e-9) return -1;
    v3 p = add(o, mul(d, t));
    double k = dot(sub(p, pa), ba) / baba;
    k = k < 0 ? 0 : k > 1 ? 1 : k;
    *n = mul(sub(p, add(pa, mul(ba, k))), 1 / r);
    return t;
  }
  }
}

/* Weights of one case: for each pixel the mean over its samples of the shading of what the
 * sample sees, split by surface (floor, wall, object). */
static void render_case(int cs, float *w) {
  int shape = cs / (NSCALE * NORIENT), sc = cs / NORIENT % NSCALE, orient = cs % NORIENT;
  object ob = {shape, 0.75 + 0.5 * sc / (NSCALE - 1)};
  double th = (-30.0 + 60.0 * orient / (NORIENT - 1)) * 3.14159265358979323846 / 180;
  v3 cam = v(CAM_D * sin(th), CAM_H, -CAM_D * cos(th));
  v3 f = norm(sub(v(0, AIM_Y, 0), cam)), right = norm(cross(v(0, 1, 0), f)), up = cross(f, right);
  v3 light = norm(v(-0.5, 1.3, -0.8));
  float *wf = w, *ww = w + S * S, *wo = w + 2 * S * S;
  for (int py = 0; py < S; py++)
    for (int px = 0; px < S; px++) {
      double acc[3] = {0, 0, 0};
      for (int sy = 0; sy < SS; sy++)
        for (int sx = 0; sx < SS; sx++) {
          double x = ((px + (sx + 0.5) / SS) / S * 2 - 1) * TAN_HALF;
          double y = (1 - (py + (sy + 0.5) / SS) / S * 2) * TAN_HALF;
          v3 d = norm(add(f, add(mul(right, x), mul(up, y))));
          v3 n = v(0, 1, 0);
          double t = hit_object(&ob, cam, d, &n);
          if (t > 0) {
            double l = dot(n, light);
            acc[2] += 0.3 + 0.7 * (l > 0 ? l : 0);
            continue;
          }
          /* nearest of the floor and the four walls */
          double best = 1e30;
          int what = 1;
          v3 wn = v(0, 0, 0);
          if (d.y < -1e-12) {
            double tf = -cam.y / d.y;
            if (tf < best) best = tf, what = 0;
          }
          const v3 normals[4] = {v(-1, 0, 0), v(1, 0, 0), v(0, 0, -1), v(0, 0, 1)};
          const double ds[4] = {d.x, -d.x, d.z, -d.z}, os[4] = {cam.x, -cam.x, cam.z, -cam.z};
          for (int i = 0; i < 4; i++)
            if (ds[i] > 1e-12) {
              double tw = (ROOM - os[i]) / ds[i];
              if (tw < best) best = tw, what = 1, wn = normals[i];
            }
          if (what == 0) {
            v3 p = add(cam, mul(d, best)), sn;
            double shade = 0.35 + 0.65 * light.y;
            if (hit_object(&ob, add(p, v(0, 1e-6, 0)), light, &sn) > 0) shade *= 0.55; /* shadow */
            acc[0] += shade;
          } else {
            double l = dot(wn, light);
            acc[1] += 0.35 + 0.65 * (l > 0 ? l : 0);
          }
        }
      int p = py * S + px;
      wf[p] = (float)(acc[0] / (SS * SS));
      ww[p] = (float)(acc[1] / (SS * SS));
      wo[p] = (float)(acc[2] / (SS * SS));
    }
}

static void hue_rgb(double h, float rgb[3]) { /* HSV(h, 1, 1) */
  double x = h * 6;
  int i = (int)x % 6;
  float fr = (float)(x - floor(x)), q = 1 - fr;
  const float tab[6][3] = {{1, fr, 0}, {q, 1, 0}, {0, 1, fr}, {0, q, 1}, {fr, 0, 1}, {1, 0, q}};
  memcpy(rgb, tab[i], sizeof(float) * 3);
}

static int case_of(const int32_t *f) { return (f[4] * NSCALE + f[3]) * NORIENT + f[5]; }

typedef struct {
  shapes *sh;
  const int32_t *factors;
  int n;
  float *obs;
  const int *todo;
  int ntodo;
  int failed;
} task;

static void cases_run(void *ctx, int tid, int nt) {
  task *t = ctx;
  long lo, hi;
  kn_split(t->ntodo, tid, nt, &lo, &hi);
  for (long i = lo; i < hi; i++) render_case(t->todo[i], t->sh->w[t->todo[i]]);
}

static void images_run(void *ctx, int tid, int nt) {
  task *t = ctx;
  long lo, hi;
  kn_split(t->n, tid, nt, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    const int32_t *f = t->factors + i * 6;
    float col[3][3];
    for (int k = 0; k < 3; k++) hue_rgb(f[k] / 10.0, col[k]);
    const float *w = t->sh->w[case_of(f)];
    float *o = t->obs + (size_t)i * 3 * S * S;
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < S * S; p++)
        o[c * S * S + p] = w[p] * col[0][c] + w[S * S + p] * col[1][c] + w[2 * S * S + p] * col[2][c];
  }
}

static knobs_status shapes_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  shapes *sh = d->impl;
  int todo[NCASE], ntodo = 0;
  for (int i = 0; i < n; i++) {
    int c = case_of(factors + (size_t)i * 6);
    if (sh->w[c]) continue;
    sh->w[c] = malloc(sizeof(float) * 3 * S * S);
    if (!sh->w[c]) return kn_err(KNOBS_ERR_NOMEM, "shapes: cannot allocate the render cache");
    todo[ntodo++] = c;
  }
  task t = {sh, factors, n, obs, todo, ntodo, 0};
  if (ntodo) kn_pool_run(d->pool, cases_run, &t);
  kn_pool_run(n >= 256 ? d->pool : NULL, images_run, &t); /* ~3 us an image: a batch of 64 is not worth a hand-off */
  return KNOBS_OK;
}

static double shapes_value(const knobs_data *d, int k, int c) {
  switch (k) {
  case 0: case 1: case 2: return c / 10.0;
  case 3: return 0.75 + 0.5 * c / (NSCALE - 1);
  case 4: return c;
  default: return -30.0 + 60.0 * c / (NORIENT - 1);
  }
}

static void shapes_free(void *impl) {
  shapes *sh = impl;
  if (!sh) return;
  for (int i = 0; i < NCASE; i++) free(sh->w[i]);
  free(sh);
}

static const kn_data_ops ops = {
    .render = shapes_render,
    .factor_value = shapes_value,
    .free_impl = shapes_free,
};

static int shapes_match(const char *spec) { return !strcmp(spec, "shapes"); }

static knobs_status shapes_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors) return kn_err(KNOBS_ERR_ARG, "shapes has its own factors: a factors file (%s) is for your own data", o->factors);
  shapes *sh = calloc(1, sizeof *sh);
  if (!sh) return kn_err(KNOBS_ERR_NOMEM, "shapes: cannot allocate");
  d->impl = sh;
  d->ops = &ops;
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "shapes");
  in->C = 3, in->H = S, in->W = S;
  kn_data_set_factors(in, 6, names, sizes);
  in->n = 1;
  for (int k = 0; k < 6; k++) in->n *= sizes[k];
  in->is_image = 1;
  in->has_render = 1;
  return KNOBS_OK;
}

const kn_data_entry kn_data_shapes = {
    "shapes",
    "3D-Shapes-like colour scenes, 64x64x3: floor/wall/object hue 10 each, scale 8, shape 4, "
    "orientation 15 (480000, rendered)",
    shapes_match,
    shapes_open,
};
