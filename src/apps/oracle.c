/* oracle.c: the ground-truth factors of an image of a built-in procedural dataset, read back
 * as the class vector whose rendering is nearest in squared pixel distance (docs/apps.md, "The
 * oracle", states the search; knobs_oracle_method says it in one line).
 *
 * dsprites: the renderings are binary masks, so the distance to one is sum(x^2) plus the sum of
 * (1 - 2x) over its pixels, a few dozen additions over the mask's row runs with per-row prefix
 * sums of 1 - 2x. Masks are drawn by the dataset's own rasteriser (kn_dsprites_mask, with the
 * very factor values the dataset renders with; create checks a few against knobs_data_render)
 * the first time a search needs them and kept as row runs, one slot per class, published with an
 * atomic compare-and-swap so that the threads share one cache (the cache only saves time: its
 * content never changes a result). The search is exhaustive over shape x scale x orientation
 * (720 combinations) and local in position: each combination is scored at the position its
 * centroid offset predicts from the image's centroid, and the ones that could still win (score
 * minus the number of pixels a one-class move can change, measured per combination at create)
 * descend over the 3x3 neighbourhood of positions until the best is the centre.
 *
 * shapes: an image is, per pixel, the floor, wall and object shading weights of its geometry
 * case (shape x scale x orientation, 480) times the three hues' colours, so the squared distance
 * to every one of the 480000 classes follows from nine dot products per case and a 1000-term
 * quadratic in the hues. The dot products are one float GEMM per batch (a prune with the
 * rigorous float error bound), then recomputed in double for the cases that survive. Exhaustive.
 *
 * It does not handle the dsprites variants (colour, noise and shape are nuisances drawn per
 * grid index from the dataset's seed, which is not part of the public dataset) nor file
 * datasets: those are KNOBS_ERR_UNSUPPORTED. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "data/dsprites.h"

#define HW 64
#define NPIX (HW * HW)

/* dsprites: the grid */
#define DS_SHAPE 3
#define DS_SCALE 6
#define DS_ORIENT 40
#define DS_POS 32
#define DS_COMBO (DS_SHAPE * DS_SCALE * DS_ORIENT)
#define DS_N (DS_COMBO * DS_POS * DS_POS)

/* shapes: the grid (floor, wall, object hue, scale, shape, orientation) */
#define SH_HUE 10
#define SH_SCALE 8
#define SH_SHAPE 4
#define SH_ORIENT 15
#define SH_CASE (SH_SHAPE * SH_SCALE * SH_ORIENT)
#define SH_CHUNK 32 /* images per GEMM */

typedef enum { O_DSPRITES, O_SHAPES } oracle_kind;

struct knobs_oracle {
  oracle_kind kind;
  knobs_data *d;                /* borrowed: the dataset (shapes renders its winners for dist) */
  kn_pool *pool;
  char method[640];
  /* dsprites */
  double scale[DS_SCALE], angle[DS_ORIENT], cx[DS_POS], cy[DS_POS]; /* the renderer's arguments */
  double off[DS_COMBO][2];      /* mask centroid minus (cx, cy) at position class (0, 0) */
  double margin[DS_COMBO];      /* pixels a one-class move can change (measured, with slack) */
  _Atomic(uint8_t *) *slot;     /* DS_N encoded masks, NULL until needed */
  /* shapes */
  float *W;                     /* (SH_CASE, 3, NPIX) floor, wall, object shading weights */
  double *G;                    /* (SH_CASE, 3, 3) sum_p w_s w_t */
  double *W1;                   /* (SH_CASE, 3) sum_p w_s */
  double pal[SH_HUE][3];        /* RGB of each hue */
  double cc[SH_HUE][SH_HUE];    /* pal[h] . pal[g] */
};

/* ==== dsprites ============================================================================ */
/* A mask is encoded as its row runs: byte 0 the first row y0, byte 1 the row count h, then for
 * each row its number of runs r and r pairs (a, b): the pixels a..b-1 of that row are on. */
static size_t encode_mask(const uint8_t *m, uint8_t *out) {
  int y0 = HW, y1 = -1;
  for (int y = 0; y < HW; y++)
    for (int x = 0; x < HW; x++)
      if (m[y * HW + x]) {
        if (y < y0) y0 = y;
        y1 = y;
        break;
      }
  if (y1 < 0) y0 = 0, y1 = -1;
  size_t k = 2;
  out[0] = (uint8_t)y0, out[1] = (uint8_t)(y1 - y0 + 1);
  for (int y = y0; y <= y1; y++) {
    size_t nr = k++;
    int r = 0;
    for (int x = 0; x < HW;) {
      if (!m[y * HW + x]) {
        x++;
        continue;
      }
      int a = x;
      while (x < HW && m[y * HW + x]) x++;
      out[k++] = (uint8_t)a, out[k++] = (uint8_t)x;
      r++;
    }
    out[nr] = (uint8_t)r;
  }
  return k;
}

static void ds_params(int64_t cls, int *shape, int *sc, int *orient, int *i, int *j) {
  *j = (int)(cls % DS_POS), cls /= DS_POS;
  *i = (int)(cls % DS_POS), cls /= DS_POS;
  *orient = (int)(cls % DS_ORIENT), cls /= DS_ORIENT;
  *sc = (int)(cls % DS_SCALE);
  *shape = (int)(cls / DS_SCALE);
}

static void ds_render_mask(const knobs_oracle *o, int64_t cls, uint8_t *m) {
  int shape, sc, orient, i, j;
  ds_params(cls, &shape, &sc, &orient, &i, &j);
  kn_dsprites_mask(m, shape, o->scale[sc], o->angle[orient], o->cx[i], o->cy[j]);
}

/* The encoded mask of class `cls`, drawn on first use; NULL if out of memory. */
static const uint8_t *ds_mask(knobs_oracle *o, int64_t cls) {
  uint8_t *p = atomic_load_explicit(&o->slot[cls], memory_order_acquire);
  if (p) return p;
  uint8_t m[NPIX], enc[2 + HW * (1 + HW)];
  ds_render_mask(o, cls, m);
  size_t n = encode_mask(m, enc);
  uint8_t *q = malloc(n);
  if (!q) return NULL;
  memcpy(q, enc, n);
  uint8_t *expect = NULL;
  if (atomic_compare_exchange_strong_explicit(&o->slot[cls], &expect, q, memory_order_acq_rel,
                                              memory_order_acquire))
    return q;
  free(q); /* another thread drew the same mask first */
  return expect;
}

/* sum over the mask's pixels of y, from row prefix sums P (HW, HW + 1) */
static double mask_sum(const uint8_t *e, const double *P) {
  int y0 = e[0], h = e[1];
  const uint8_t *q = e + 2;
  double s = 0;
  for (int y = y0; y < y0 + h; y++) {
    int r = *q++;
    const double *row = P + (size_t)y * (HW + 1);
    for (; r > 0; r--, q += 2) s += row[q[1]] - row[q[0]];
  }
  return s;
}

static void mask_centroid(const uint8_t *m, double *x, double *y) {
  double sx = 0, sy = 0, n = 0;
  for (int p = 0; p < NPIX; p++)
    if (m[p]) sx += p % HW + 0.5, sy += p / HW + 0.5, n++;
  *x = n ? sx / n : HW / 2.0;
  *y = n ? sy / n : HW / 2.0;
}

static int hamming(const uint8_t *a, const uint8_t *b) {
  int h = 0;
  for (int p = 0; p < NPIX; p++) h += a[p] != b[p];
  return h;
}

static knobs_status ds_setup(knobs_oracle *o) {
  for (int c = 0; c < DS_SCALE; c++) o->scale[c] = knobs_data_factor_value(o->d, 1, c);
  for (int c = 0; c < DS_ORIENT; c++) o->angle[c] = knobs_data_factor_value(o->d, 2, c);
  /* the dataset's centres: 16 + 32 * value, written as dsprites.c writes them */
  for (int c = 0; c < DS_POS; c++) o->cx[c] = 16 + 32 * knobs_data_factor_value(o->d, 3, c);
  for (int c = 0; c < DS_POS; c++) o->cy[c] = 16 + 32 * knobs_data_factor_value(o->d, 4, c);
  o->slot = kn_alloc(sizeof *o->slot * (size_t)DS_N, "the oracle's mask slots");
  if (!o->slot) return knobs_last_status();
  for (int64_t i = 0; i < DS_N; i++) atomic_init(&o->slot[i], NULL);
  /* per combination: the centroid offset, and how many pixels a one-class move changes (the
   * largest of a move in x, in y and both, at positions 0 and 1; the slack covers the other
   * sub-pixel phases) */
  uint8_t m[4][NPIX];
  for (int k = 0; k < DS_COMBO; k++) {
    int64_t base = (int64_t)k * DS_POS * DS_POS;
    const int64_t cls[4] = {base, base + DS_POS, base + 1, base + DS_POS + 1}; /* (0,0) (1,0) (0,1) (1,1) */
    for (int t = 0; t < 4; t++) ds_render_mask(o, cls[t], m[t]);
    double x, y;
    mask_centroid(m[0], &x, &y);
    o->off[k][0] = x - o->cx[0], o->off[k][1] = y - o->cy[0];
    int h = hamming(m[0], m[1]);
    if (hamming(m[0], m[2]) > h) h = hamming(m[0], m[2]);
    if (hamming(m[0], m[3]) > h) h = hamming(m[0], m[3]);
    o->margin[k] = 1.25 * h + 4;
  }
  /* the rasteriser called here must be the dataset's: compare a few classes with its render */
  float img[NPIX];
  const int64_t probe[6] = {0, 1234, 98765, 370000, 512345, DS_N - 1};
  for (int t = 0; t < 6; t++) {
    int32_t f[5];
    knobs_data_factors_of(o->d, probe[t], f);
    knobs_status s = knobs_data_render(o->d, f, 1, img);
    if (s) return s;
    ds_render_mask(o, probe[t], m[0]);
    for (int p = 0; p < NPIX; p++)
      if (img[p] != (float)m[0][p])
        return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: the oracle's rasteriser disagrees with the dataset's "
                      "rendering of class %lld at pixel %d", knobs_data_info_get(o->d)->name, (long long)probe[t], p);
  }
  return KNOBS_OK;
}

typedef struct {
  double d;
  int64_t idx;
} cand;

static int better(double d, int64_t idx, const cand *b) { return d < b->d || (d == b->d && idx < b->idx); }

/* the class (k, i, j) */
static int64_t ds_class(int k, int i, int j) { return ((int64_t)k * DS_POS + i) * DS_POS + j; }

static int clamp_pos(double v) {
  long r = lround(v);
  return r < 0 ? 0 : r >= DS_POS ? DS_POS - 1 : (int)r;
}

typedef struct {
  knobs_oracle *o;
  const float *x;
  int n;
  int32_t *factors;
  double *dist;
  void *scratch;           /* per thread: an int (out of memory) in a 64-byte head, then its own */
  size_t scratch_bytes;
} job;

#define HEAD 64

static void *thread_scratch(const job *j, int tid) { return (char *)j->scratch + (size_t)tid * j->scratch_bytes + HEAD; }
static int *thread_failed(const job *j, int tid) { return (int *)((char *)j->scratch + (size_t)tid * j->scratch_bytes); }

/* Search one image (dsprites); P scratch (HW, HW + 1), pass scratch DS_COMBO entries. Returns
 * 0, or -1 out of memory. */
static int ds_one(knobs_oracle *o, const float *x, double *P, cand *pass, int *order, cand *best) {
  double Q = 0, sw[2] = {0, 0}, swx[2] = {0, 0}, swy[2] = {0, 0};
  for (int y = 0; y < HW; y++) {
    double *row = P + (size_t)y * (HW + 1);
    row[0] = 0;
    for (int c = 0; c < HW; c++) {
      double v = x[y * HW + c];
      Q += v * v;
      row[c + 1] = row[c] + (1 - 2 * v);
      /* the centroid of the part above one half (a mask's own centroid on a rendering), and of
       * the whole image as a fallback */
      double w[2] = {v > 0.5 ? v - 0.5 : 0, fabs(v)};
      for (int t = 0; t < 2; t++) sw[t] += w[t], swx[t] += w[t] * (c + 0.5), swy[t] += w[t] * (y + 0.5);
    }
  }
  int t = sw[0] > 0 ? 0 : 1;
  double gx = sw[t] > 0 ? swx[t] / sw[t] : HW / 2.0, gy = sw[t] > 0 ? swy[t] / sw[t] : HW / 2.0;
  *best = (cand){INFINITY, -1};
  /* pass 1: every combination at its predicted position */
  for (int k = 0; k < DS_COMBO; k++) {
    int i = clamp_pos((gx - o->off[k][0] - o->cx[0]) * (DS_POS - 1) / 32.0);
    int j = clamp_pos((gy - o->off[k][1] - o->cy[0]) * (DS_POS - 1) / 32.0);
    int64_t c = ds_class(k, i, j);
    const uint8_t *e = ds_mask(o, c);
    if (!e) return -1;
    pass[k] = (cand){Q + mask_sum(e, P), c};
    if (better(pass[k].d, c, best)) *best = pass[k];
  }
  /* pass 2: in order of their pass-1 score, the combinations that could still win descend */
  for (int k = 0; k < DS_COMBO; k++) order[k] = k;
  for (int a = 1; a < DS_COMBO; a++) { /* insertion sort by (score, class): nearly sorted runs are rare */
    int v = order[a], b = a;
    while (b > 0 && better(pass[v].d, pass[v].idx, &pass[order[b - 1]])) order[b] = order[b - 1], b--;
    order[b] = v;
  }
  for (int r = 0; r < DS_COMBO; r++) {
    int k = order[r];
    if (pass[k].d - o->margin[k] > best->d) continue;
    int ci = (int)(pass[k].idx / DS_POS % DS_POS), cj = (int)(pass[k].idx % DS_POS);
    cand cb = pass[k];
    for (int step = 0; step < 2 * DS_POS; step++) {
      int bi = ci, bj = cj;
      for (int di = -1; di <= 1; di++)
        for (int dj = -1; dj <= 1; dj++) {
          int i = ci + di, j = cj + dj;
          if ((!di && !dj) || i < 0 || j < 0 || i >= DS_POS || j >= DS_POS) continue;
          int64_t c = ds_class(k, i, j);
          const uint8_t *e = ds_mask(o, c);
          if (!e) return -1;
          double dd = Q + mask_sum(e, P);
          if (better(dd, c, &cb)) cb = (cand){dd, c}, bi = i, bj = j;
        }
      if (bi == ci && bj == cj) break;
      ci = bi, cj = bj;
    }
    if (better(cb.d, cb.idx, best)) *best = cb;
  }
  if (best->d < 0) best->d = 0; /* rounding: a distance is never negative */
  return 0;
}

static void ds_task(void *ctx, int tid, int nt) {
  job *j = ctx;
  knobs_oracle *o = j->o;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  double *P = thread_scratch(j, tid);
  cand *pass = (cand *)(P + HW * (HW + 1));
  int *order = (int *)(pass + DS_COMBO);
  for (long i = lo; i < hi; i++) {
    cand b;
    if (ds_one(o, j->x + (size_t)i * NPIX, P, pass, order, &b)) {
      *thread_failed(j, tid) = 1;
      return;
    }
    int sh, sc, orr, pi, pj;
    ds_params(b.idx, &sh, &sc, &orr, &pi, &pj);
    int32_t *f = j->factors + (size_t)i * 5;
    f[0] = sh, f[1] = sc, f[2] = orr, f[3] = pi, f[4] = pj;
    if (j->dist) j->dist[i] = b.d / NPIX;
  }
}

/* ==== shapes ============================================================================== */
static int sh_case(int shape, int scale, int orient) { return (shape * SH_SCALE + scale) * SH_ORIENT + orient; }

/* Weights by rendering: red of hue 0 is 1 and red of hue 5 (cyan) is 0, so the red channel of
 * (floor, wall, object) = (0, 5, 5) is the floor's weight, exactly, and so on. The palette is
 * read where the floor alone is seen; create then checks the model against the renderer. */
static knobs_status sh_setup(knobs_oracle *o) {
  o->W = kn_alloc(sizeof(float) * SH_CASE * 3 * NPIX, "the oracle's shading weights");
  o->G = kn_alloc(sizeof(double) * SH_CASE * 9, "the oracle's shading Gram matrices");
  o->W1 = kn_alloc(sizeof(double) * SH_CASE * 3, "the oracle's shading sums");
  int n = SH_CASE * 3;
  int32_t *f = calloc((size_t)n * 6, sizeof *f);
  float *img = kn_alloc(sizeof(float) * (size_t)n * 3 * NPIX, "the oracle's renderings");
  knobs_status s = !o->W || !o->G || !o->W1 || !img ? knobs_last_status() : KNOBS_OK;
  if (!s && !f) s = kn_err(KNOBS_ERR_NOMEM, "shapes oracle: cannot allocate factors");
  for (int c = 0; !s && c < SH_CASE; c++)
    for (int t = 0; t < 3; t++) {
      int32_t *g = f + (size_t)(c * 3 + t) * 6;
      for (int h = 0; h < 3; h++) g[h] = h == t ? 0 : 5;
      g[3] = c / SH_ORIENT % SH_SCALE, g[4] = c / (SH_ORIENT * SH_SCALE), g[5] = c % SH_ORIENT;
    }
  if (!s) s = knobs_data_render(o->d, f, n, img);
  for (int c = 0; !s && c < SH_CASE; c++) {
    int shape = c / (SH_ORIENT * SH_SCALE), scale = c / SH_ORIENT % SH_SCALE, orient = c % SH_ORIENT;
    KN_ASSERT(sh_case(shape, scale, orient) == c);
    for (int t = 0; t < 3; t++) memcpy(o->W + ((size_t)c * 3 + t) * NPIX, img + (size_t)(c * 3 + t) * 3 * NPIX, sizeof(float) * NPIX);
    const float *w = o->W + (size_t)c * 3 * NPIX;
    for (int a = 0; a < 3; a++) {
      double s1 = 0;
      for (int p = 0; p < NPIX; p++) s1 += w[a * NPIX + p];
      o->W1[c * 3 + a] = s1;
      for (int b = 0; b < 3; b++) {
        double g = 0;
        for (int p = 0; p < NPIX; p++) g += (double)w[a * NPIX + p] * w[b * NPIX + p];
        o->G[c * 9 + a * 3 + b] = g;
      }
    }
  }
  /* the palette: case 0 with floor hue h, where only the floor is seen, most strongly lit */
  int pstar = -1;
  for (int p = 0; !s && p < NPIX; p++)
    if (o->W[NPIX + p] == 0 && o->W[2 * NPIX + p] == 0 && (pstar < 0 || o->W[p] > o->W[pstar])) pstar = p;
  if (!s && (pstar < 0 || o->W[pstar] <= 0))
    s = kn_err(KNOBS_ERR_UNSUPPORTED, "shapes: the oracle finds no pixel of floor alone");
  for (int h = 0; !s && h < SH_HUE; h++) {
    int32_t *g = f + (size_t)h * 6;
    memset(g, 0, sizeof(int32_t) * 6);
    g[0] = h, g[1] = 5, g[2] = 5;
  }
  if (!s) s = knobs_data_render(o->d, f, SH_HUE, img);
  for (int h = 0; !s && h < SH_HUE; h++)
    for (int c = 0; c < 3; c++) o->pal[h][c] = (double)img[(size_t)h * 3 * NPIX + c * NPIX + pstar] / o->W[pstar];
  for (int h = 0; h < SH_HUE; h++)
    for (int g = 0; g < SH_HUE; g++)
      o->cc[h][g] = o->pal[h][0] * o->pal[g][0] + o->pal[h][1] * o->pal[g][1] + o->pal[h][2] * o->pal[g][2];
  /* the model must be the renderer: compare a few classes */
  const int64_t probe[4] = {0, 123457, 300001, 479999};
  for (int t = 0; !s && t < 4; t++) {
    int32_t *g = f;
    knobs_data_factors_of(o->d, probe[t], g);
    s = knobs_data_render(o->d, g, 1, img);
    const float *w = o->W + (size_t)sh_case(g[4], g[3], g[5]) * 3 * NPIX;
    for (int c = 0; !s && c < 3; c++)
      for (int p = 0; p < NPIX; p++) {
        double r = w[p] * o->pal[g[0]][c] + w[NPIX + p] * o->pal[g[1]][c] + w[2 * NPIX + p] * o->pal[g[2]][c];
        if (fabs(r - img[c * NPIX + p]) > 1e-5) {
          s = kn_err(KNOBS_ERR_UNSUPPORTED, "shapes: the oracle's model of the renderer is off by %.3g at "
                     "class %lld, pixel %d", fabs(r - img[c * NPIX + p]), (long long)probe[t], p);
          break;
        }
      }
  }
  free(f);
  kn_free(img);
  return s;
}

/* Over the 1000 hue triples of one case: the smallest Q - 2 sum_s pal_s . b_s + pal^T G pal, and
 * its triple as (floor * 10 + wall) * 10 + object. b (3, 3): surface, channel. */
static double sh_case_min(const knobs_oracle *o, int c, const double *b, double Q, int *arg) {
  const double *G = o->G + (size_t)c * 9;
  double lin[3][SH_HUE];
  for (int s = 0; s < 3; s++)
    for (int h = 0; h < SH_HUE; h++)
      lin[s][h] = o->pal[h][0] * b[s * 3] + o->pal[h][1] * b[s * 3 + 1] + o->pal[h][2] * b[s * 3 + 2];
  double best = INFINITY;
  int ba = 0;
  for (int fh = 0; fh < SH_HUE; fh++)
    for (int wh = 0; wh < SH_HUE; wh++) {
      double base = Q - 2 * (lin[0][fh] + lin[1][wh]) + G[0] * o->cc[fh][fh] + G[4] * o->cc[wh][wh] +
                    2 * G[1] * o->cc[fh][wh];
      for (int oh = 0; oh < SH_HUE; oh++) {
        double d = base - 2 * lin[2][oh] + G[8] * o->cc[oh][oh] + 2 * G[2] * o->cc[fh][oh] + 2 * G[5] * o->cc[wh][oh];
        if (d < best) best = d, ba = (fh * SH_HUE + wh) * SH_HUE + oh; /* strict: the first (smallest) triple */
      }
    }
  *arg = ba;
  return best;
}

static void sh_task(void *ctx, int tid, int nt) {
  job *j = ctx;
  knobs_oracle *o = j->o;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  float *B = thread_scratch(j, tid); /* (SH_CASE*3, 3*SH_CHUNK) */
  double *amin = (double *)(B + (size_t)SH_CASE * 3 * 3 * SH_CHUNK), *tau = amin + SH_CASE;
  /* Float GEMM error: |fl(b) - b| <= gamma_K sum_p |w x| (any summation order, K = NPIX terms);
   * the distance's error is then at most 2 sum_{s,c} |pal| |db| <= 2 gamma sum_s W1_s sum_c max|x_c|
   * (colours are at most 1). */
  const double u = 0x1p-24, gamma = NPIX * u / (1 - NPIX * u);
  for (long i0 = lo; i0 < hi; i0 += SH_CHUNK) {
    int m = (int)(hi - i0 < SH_CHUNK ? hi - i0 : SH_CHUNK);
    const float *X = j->x + (size_t)i0 * 3 * NPIX;
    kn_sgemm(NULL, 0, 1, SH_CASE * 3, 3 * m, NPIX, 1.0f, o->W, NPIX, X, NPIX, 0.0f, B, 3 * m);
    for (int i = 0; i < m; i++) {
      const float *x = X + (size_t)i * 3 * NPIX;
      double Q = 0, mx[3] = {0, 0, 0};
      for (int c = 0; c < 3; c++)
        for (int p = 0; p < NPIX; p++) {
          double v = x[c * NPIX + p];
          Q += v * v;
          if (fabs(v) > mx[c]) mx[c] = fabs(v);
        }
      double bound = INFINITY;
      for (int c = 0; c < SH_CASE; c++) {
        double b[9];
        for (int s = 0; s < 3; s++)
          for (int ch = 0; ch < 3; ch++) b[s * 3 + ch] = B[(size_t)(c * 3 + s) * 3 * m + i * 3 + ch];
        int arg;
        amin[c] = sh_case_min(o, c, b, Q, &arg);
        tau[c] = 2 * gamma * (o->W1[c * 3] + o->W1[c * 3 + 1] + o->W1[c * 3 + 2]) * (mx[0] + mx[1] + mx[2]) +
                 1e-9 * (1 + Q);
        if (amin[c] + tau[c] < bound) bound = amin[c] + tau[c];
      }
      /* the survivors, in double */
      cand best = {INFINITY, -1};
      for (int c = 0; c < SH_CASE; c++) {
        if (amin[c] - tau[c] > bound) continue;
        const float *w = o->W + (size_t)c * 3 * NPIX;
        double b[9];
        for (int s = 0; s < 3; s++)
          for (int ch = 0; ch < 3; ch++) {
            double acc = 0;
            const float *ws = w + s * NPIX, *xc = x + ch * NPIX;
            for (int p = 0; p < NPIX; p++) acc += (double)ws[p] * xc[p];
            b[s * 3 + ch] = acc;
          }
        int arg;
        double d = sh_case_min(o, c, b, Q, &arg);
        int shape = c / (SH_ORIENT * SH_SCALE), scale = c / SH_ORIENT % SH_SCALE, orient = c % SH_ORIENT;
        int64_t idx = ((((int64_t)arg * SH_SCALE + scale) * SH_SHAPE + shape) * SH_ORIENT) + orient;
        if (better(d, idx, &best)) best = (cand){d, idx};
      }
      int32_t *f = j->factors + (size_t)(i0 + i) * 6;
      knobs_data_factors_of(o->d, best.idx, f);
    }
  }
}

/* ==== the API ============================================================================= */
static int is_grid(const knobs_data_info *in, int C, int K, const int *sizes) {
  if (in->C != C || in->H != HW || in->W != HW || in->K != K || !in->has_render) return 0;
  for (int k = 0; k < K; k++)
    if (in->factor_sizes[k] != sizes[k]) return 0;
  return 1;
}

knobs_status knobs_oracle_create(knobs_data *d, int threads, knobs_oracle **out) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "oracle: out is NULL");
  *out = NULL;
  if (!d) return kn_err(KNOBS_ERR_ARG, "oracle: the dataset is NULL");
  if (threads < 1) return kn_err(KNOBS_ERR_ARG, "oracle: threads %d; expected at least 1", threads);
  const knobs_data_info *in = knobs_data_info_get(d);
  static const int ds_sizes[5] = {DS_SHAPE, DS_SCALE, DS_ORIENT, DS_POS, DS_POS};
  static const int sh_sizes[6] = {SH_HUE, SH_HUE, SH_HUE, SH_SCALE, SH_SHAPE, SH_ORIENT};
  oracle_kind kind;
  if (!strcmp(in->name, "dsprites") && is_grid(in, 1, 5, ds_sizes)) kind = O_DSPRITES;
  else if (!strcmp(in->name, "shapes") && is_grid(in, 3, 6, sh_sizes)) kind = O_SHAPES;
  else
    return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: the oracle knows only the built-in renderers of dsprites "
                  "and shapes (not its variants or files)", in->name);
  knobs_oracle *o = calloc(1, sizeof *o);
  if (!o) return kn_err(KNOBS_ERR_NOMEM, "oracle: cannot allocate");
  o->kind = kind;
  o->d = d;
  knobs_status s = kn_blas_init();
  if (!s && threads > 1 && !(o->pool = kn_pool_create(threads))) s = knobs_last_status();
  if (!s) s = kind == O_DSPRITES ? ds_setup(o) : sh_setup(o);
  if (s) {
    knobs_oracle_free(o);
    return s;
  }
  if (kind == O_DSPRITES)
    snprintf(o->method, sizeof o->method,
             "dsprites: nearest rendering in squared pixel distance; exhaustive over shape x scale x "
             "orientation (720), each scored at the position class its centroid offset predicts from "
             "the centroid of the image's part above 1/2, then, in score order, every combination "
             "whose score minus the pixels a one-class move can change is not above the best descends "
             "over the 3x3 position neighbourhood to a local minimum; exact on renderings; ties to "
             "the smallest class index");
  else
    snprintf(o->method, sizeof o->method,
             "shapes: nearest rendering in squared pixel distance, exhaustive over all 480000 classes: "
             "per geometry case (shape x scale x orientation, 480) the distance is a quadratic in the "
             "three hue colours of 9 shading dot products, taken by float GEMM with its rigorous error "
             "bound to prune cases, recomputed in double for the survivors over all 1000 hue triples; "
             "ties to the smallest class index");
  *out = o;
  return KNOBS_OK;
}

void knobs_oracle_free(knobs_oracle *o) {
  if (!o) return;
  if (o->slot) {
    for (int64_t i = 0; i < DS_N; i++) free(atomic_load_explicit(&o->slot[i], memory_order_relaxed));
    kn_free(o->slot);
  }
  kn_free(o->W);
  kn_free(o->G);
  kn_free(o->W1);
  kn_pool_free(o->pool);
  free(o);
}

const char *knobs_oracle_method(const knobs_oracle *o) { return o ? o->method : ""; }

knobs_status knobs_oracle_factors(knobs_oracle *o, const float *x, int n, int32_t *factors, double *dist) {
  if (!o) return kn_err(KNOBS_ERR_ARG, "oracle: the oracle is NULL");
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "oracle: n %d; expected at least 0 images", n);
  if (n == 0) return KNOBS_OK;
  if (!x || !factors) return kn_err(KNOBS_ERR_ARG, "oracle: %s is NULL", x ? "factors" : "x");
  const knobs_data_info *in = knobs_data_info_get(o->d);
  size_t per = (size_t)in->C * NPIX;
  for (size_t i = 0; i < (size_t)n * per; i++)
    if (!isfinite(x[i]))
      return kn_err(KNOBS_ERR_DATA, "oracle: image %zu has %s at channel %zu, pixel %zu", i / per,
                    isnan(x[i]) ? "NaN" : "an infinity", i % per / NPIX, i % NPIX);
  int nt = kn_pool_size(o->pool);
  job j = {.o = o, .x = x, .n = n, .factors = factors, .dist = dist};
  if (o->kind == O_DSPRITES)
    j.scratch_bytes = sizeof(double) * HW * (HW + 1) + sizeof(cand) * DS_COMBO + sizeof(int) * DS_COMBO;
  else
    j.scratch_bytes = sizeof(float) * SH_CASE * 3 * 3 * SH_CHUNK + sizeof(double) * 2 * SH_CASE;
  j.scratch_bytes = HEAD + (j.scratch_bytes + 63) / 64 * 64;
  j.scratch = kn_alloc(j.scratch_bytes * (size_t)nt, "the oracle's scratch");
  if (!j.scratch) return knobs_last_status();
  kn_pool_run(o->pool, o->kind == O_DSPRITES ? ds_task : sh_task, &j);
  int failed = 0;
  for (int t = 0; t < nt; t++) failed |= *thread_failed(&j, t);
  kn_free(j.scratch);
  if (failed) return kn_err(KNOBS_ERR_NOMEM, "oracle: cannot allocate a cached mask");
  if (o->kind == O_SHAPES && dist) {
    /* the exact distance to the winner's rendering, from the renderer itself */
    enum { CH = 64 };
    float *r = kn_alloc(sizeof(float) * CH * per, "the oracle's renderings");
    if (!r) return knobs_last_status();
    for (int i0 = 0; i0 < n; i0 += CH) {
      int m = n - i0 < CH ? n - i0 : CH;
      knobs_status s = knobs_data_render(o->d, factors + (size_t)i0 * in->K, m, r);
      if (s) {
        kn_free(r);
        return s;
      }
      for (int i = 0; i < m; i++) {
        double acc = 0;
        for (size_t p = 0; p < per; p++) {
          double e = (double)x[(size_t)(i0 + i) * per + p] - r[(size_t)i * per + p];
          acc += e * e;
        }
        dist[i0 + i] = acc / (double)per;
      }
    }
    kn_free(r);
  }
  return KNOBS_OK;
}
