/* swap.c: what a sequential model with a static and a dynamic code can do that a per-frame
 * model cannot: swap the codes of two sequences (docs/apps.md "Swap").
 *   knobs_swap_picture   rows A, B, A's dynamics with B's static code, B's dynamics with A's
 *   knobs_swap_evaluate  the swap score on dsprites:seq, read back by the dSprites oracle
 * Codes are posterior means (knobs_dsvae_encode). Only the public API of the model and the
 * oracle is used, plus dsprites:seq's frame factors (kn_dsprites_seq_frame) for the ground
 * truth of the inputs' frames. Not here: baselines without a static code (a per-frame VAE has
 * no f to swap). */
#include <stdlib.h>
#include <string.h>

#include "apps/apps.h"
#include "data/dsprites.h"
#include "io/io.h"

typedef struct {
  int T, Fd, Z, C, H, W, c; /* frames, code sizes, the model's input shape, channels a frame */
  size_t D;                 /* floats a sequence */
} seq_shape;

static knobs_status shape_of(knobs_model *m, knobs_data *d, seq_shape *s) {
  knobs_status st = knobs_dsvae_dims(m, &s->T, &s->Fd, &s->Z);
  if (st) return st;
  const knobs_config *c = knobs_model_config(m);
  s->C = (int)knobs_config_number(c, "C"), s->H = (int)knobs_config_number(c, "H"), s->W = (int)knobs_config_number(c, "W");
  s->c = s->C / s->T;
  s->D = (size_t)s->C * s->H * s->W;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (in->C != s->C || in->H != s->H || in->W != s->W || in->T != s->T)
    return kn_err(KNOBS_ERR_DATA, "%s has observations of %d frames %dx%dx%d, the model takes %d frames %dx%dx%d",
                  in->name, in->T, in->C / (in->T > 0 ? in->T : 1), in->H, in->W, s->T, s->c, s->H, s->W);
  return KNOBS_OK;
}

/* Codes of 2P sequences x and the swapped decodes: row 2i is A_i's dynamics with B_i's static
 * code, row 2i+1 B_i's dynamics with A_i's; y (2P sequences). f, z, fs scratch of 2P rows. */
static knobs_status swapped(knobs_model *m, const seq_shape *s, const float *x, int P, float *f, float *z, float *fs,
                            float *y) {
  knobs_status st = knobs_dsvae_encode(m, x, 2 * P, f, z);
  if (st) return st;
  for (int i = 0; i < P; i++) {
    memcpy(fs + (size_t)2 * i * s->Fd, f + (size_t)(2 * i + 1) * s->Fd, sizeof(float) * (size_t)s->Fd);
    memcpy(fs + (size_t)(2 * i + 1) * s->Fd, f + (size_t)2 * i * s->Fd, sizeof(float) * (size_t)s->Fd);
  }
  return knobs_dsvae_decode(m, fs, z, 2 * P, y);
}

knobs_status knobs_swap_picture(knobs_model *m, knobs_data *d, int pairs, uint64_t seed, const char *path) {
  knobs_status st = kn_apps_check_image_path("swap", path, 1);
  if (st) return st;
  if (pairs < 1 || pairs > 256) return kn_err(KNOBS_ERR_ARG, "swap: %d pairs (1..256)", pairs);
  seq_shape s;
  if ((st = shape_of(m, d, &s))) return st;
  if (s.c != 1 && s.c != 3)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "swap: frames of %d channels are not pictures (1 or 3)", s.c);
  int P = pairs, T = s.T;
  size_t F = (size_t)s.c * s.H * s.W; /* floats a frame */
  float *x = malloc(sizeof(float) * s.D * 2 * P), *y = malloc(sizeof(float) * s.D * 2 * P);
  float *f = malloc(sizeof(float) * (size_t)s.Fd * 2 * P * 2), *z = malloc(sizeof(float) * (size_t)T * s.Z * 2 * P);
  float *img = malloc(sizeof(float) * s.D * 4 * P);
  if (!x || !y || !f || !z || !img) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate %d pairs", P);
  if (!st) st = knobs_data_draw(d, 2 * P, seed, 0, x, NULL);
  if (!st) st = swapped(m, &s, x, P, f, z, f + (size_t)s.Fd * 2 * P, y);
  if (!st) {
    /* pair i: rows A, B, swap of A, swap of B; each row the T frames */
    for (int i = 0; i < P; i++) {
      const float *rows[4] = {x + s.D * 2 * i, x + s.D * (2 * i + 1), y + s.D * 2 * i, y + s.D * (2 * i + 1)};
      for (int r = 0; r < 4; r++) memcpy(img + s.D * (4 * (size_t)i + r), rows[r], sizeof(float) * s.D);
    }
    uint8_t *g = NULL;
    int gw, gh;
    if (kn_ends_with(path, ".png")) {
      st = knobs_image_grid(img, 4 * P * T, s.c, s.H, s.W, T, 2, 0.5f, &g, &gw, &gh);
      if (!st) st = knobs_png_write(path, g, gw, gh, s.c);
      knobs_free(g);
    } else { /* frame t: the rows' frame t, a pair a row (A, B, swap A, swap B) */
      float *one = malloc(sizeof(float) * F * 4 * P), *anim = NULL;
      size_t fsz = 0;
      if (!one) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate the animation");
      for (int t = 0; !st && t < T; t++) {
        for (int r = 0; r < 4 * P; r++) memcpy(one + F * r, img + s.D * r + F * t, sizeof(float) * F);
        st = knobs_image_grid(one, 4 * P, s.c, s.H, s.W, 4, 2, 0.5f, &g, &gw, &gh);
        if (!st && !anim) {
          fsz = (size_t)s.c * gw * gh;
          if (!(anim = malloc(sizeof(float) * fsz * T))) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate the animation");
        }
        for (size_t p = 0; !st && p < (size_t)gw * gh; p++) /* (gh,gw,c) bytes -> (c,gh,gw) floats */
          for (int k = 0; k < s.c; k++) anim[fsz * t + (size_t)k * gw * gh + p] = g[p * s.c + k] / 255.0f;
        knobs_free(g);
        g = NULL;
      }
      if (!st) st = knobs_gif_write(path, anim, T, s.c, gh, gw, 25);
      free(one), free(anim);
    }
  }
  free(x), free(y), free(f), free(z), free(img);
  return st;
}

/* ---- the score ----------------------------------------------------------------------------- */
enum { CHUNK = 32 }; /* pairs decoded and read at a time */

typedef struct {
  long st_ok, dy_ok, dy3_ok, n; /* swapped frames: static right, dynamic right (within 1, 3), checked */
  long rst_ok, rdy_ok, rn;  /* reconstructions */
  long gen_ok, gen_n;       /* generation: frames t >= 2 */
} tally;

static int near(int a, int b, int k) { return abs(a - b) <= k; }

/* Oracle reads of the 2P sequences y (frames (2P*T) of 64x64) against the static donor `sd`
 * and the dynamics donor `dd` of row j (sequence factors of 6). */
static knobs_status check_rows(knobs_oracle *o, const float *y, int rows, int T, const int32_t *fac,
                               int swap, int32_t *read, long *st_ok, long *dy_ok, long *dy3_ok, long *n) {
  knobs_status st = knobs_oracle_factors(o, y, rows * T, read, NULL);
  if (st) return st;
  for (int j = 0; j < rows; j++) {
    const int32_t *sd = fac + 6 * (size_t)(swap ? j ^ 1 : j), *dd = fac + 6 * (size_t)j;
    for (int t = 0; t < T; t++) {
      const int32_t *r = read + 5 * ((size_t)j * T + t);
      int32_t fr[5];
      kn_dsprites_seq_frame(dd, t, T, fr);
      *st_ok += r[0] == sd[0] && r[1] == sd[1];
      *dy_ok += near(r[3], fr[3], 1) && near(r[4], fr[4], 1);
      if (dy3_ok) *dy3_ok += near(r[3], fr[3], 3) && near(r[4], fr[4], 3);
      (*n)++;
    }
  }
  return KNOBS_OK;
}

knobs_status knobs_swap_evaluate(knobs_model *m, knobs_data *d, int n, uint64_t seed, knobs_swap_score *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || n > 100000) return kn_err(KNOBS_ERR_ARG, "swap score: %d pairs (1..100000)", n);
  seq_shape s;
  knobs_status st = shape_of(m, d, &s);
  if (st) return st;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (strncmp(in->name, "dsprites:seq", 12) || in->K != 6 || s.c != 1 || s.H != 64)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "swap score: the oracle reads dsprites:seq frames; %s is not dsprites:seq",
                  in->name);
  knobs_data *dd = NULL;
  knobs_oracle *o = NULL;
  int threads = (int)knobs_config_number(knobs_model_config(m), "threads");
  if ((st = knobs_data_open("dsprites", NULL, &dd))) return st;
  if ((st = knobs_oracle_create(dd, threads > 0 ? threads : 1, &o))) {
    knobs_data_free(dd);
    return st;
  }
  int T = s.T, P = CHUNK;
  size_t D = s.D;
  float *x = malloc(sizeof(float) * D * 2 * P), *y = malloc(sizeof(float) * D * 2 * P);
  float *f = malloc(sizeof(float) * (size_t)s.Fd * 4 * P), *z = malloc(sizeof(float) * (size_t)T * s.Z * 2 * P);
  int32_t *fac = malloc(sizeof(int32_t) * 6 * 2 * P), *read = malloc(sizeof(int32_t) * 5 * (size_t)T * 2 * P);
  if (!x || !y || !f || !z || !fac || !read) st = kn_err(KNOBS_ERR_NOMEM, "swap score: cannot allocate");
  tally a = {0};
  for (int i0 = 0, chunk = 0; !st && i0 < n; i0 += CHUNK, chunk++) {
    int p = n - i0 < CHUNK ? n - i0 : CHUNK;
    float *fs = f + (size_t)s.Fd * 2 * P;
    st = knobs_data_draw(d, 2 * p, seed, (uint64_t)chunk, x, fac);
    if (!st) st = swapped(m, &s, x, p, f, z, fs, y);
    if (!st) st = check_rows(o, y, 2 * p, T, fac, 1, read, &a.st_ok, &a.dy_ok, &a.dy3_ok, &a.n);
    /* reconstructions: each sequence's own codes */
    if (!st) st = knobs_dsvae_decode(m, f, z, 2 * p, y);
    if (!st) st = check_rows(o, y, 2 * p, T, fac, 0, read, &a.rst_ok, &a.rdy_ok, NULL, &a.rn);
    /* generation: the static code of each A, dynamics sampled from the learned prior */
    for (int i = 0; !st && i < p; i++) memcpy(fs + (size_t)i * s.Fd, f + (size_t)2 * i * s.Fd, sizeof(float) * (size_t)s.Fd);
    if (!st) st = knobs_dsvae_prior(m, p, seed + 7919 * (uint64_t)(chunk + 1), 1, z);
    if (!st) st = knobs_dsvae_decode(m, fs, z, p, y);
    if (!st) st = knobs_oracle_factors(o, y, p * T, read, NULL);
    for (int i = 0; !st && i < p; i++)
      for (int t = 1; t < T; t++) {
        const int32_t *r0 = read + 5 * (size_t)i * T, *r = r0 + 5 * t;
        a.gen_ok += r[0] == r0[0] && r[1] == r0[1];
        a.gen_n++;
      }
  }
  if (!st) {
    out->pairs = n;
    out->frames = a.n;
    out->static_acc = (double)a.st_ok / a.n;
    out->dynamic_acc = (double)a.dy_ok / a.n;
    out->dynamic_acc3 = (double)a.dy3_ok / a.n;
    out->recon_static_acc = (double)a.rst_ok / a.rn;
    out->recon_dynamic_acc = (double)a.rdy_ok / a.rn;
    out->gen_static_acc = (double)a.gen_ok / a.gen_n;
  }
  free(x), free(y), free(f), free(z), free(fac), free(read);
  knobs_oracle_free(o);
  knobs_data_free(dd);
  return st;
}
