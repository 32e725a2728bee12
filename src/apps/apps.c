/* apps.c: looking at a trained model: latent traversals (PNG grid or GIF), reconstructions and
 * prior samples. Images only; vector data is refused with a pointer to `knobs encode`. Output
 * names must end in .png (or .gif for a traversal): nothing else is written under another name.
 * (Pictures of a dataset without a model: show.c.)
 * A traversal row sets one latent dimension to each value of the range (as
 * disentanglement_lib's latent_traversal_1d_multi_dim does) with the others at the posterior
 * mean of the chosen observation; rows are ordered by the dimension's mean KL over 1000
 * observations (largest first), so the dimensions the model uses come first.
 * A sequence model (dsvae) is traversed in its static code f (or, asked, its dynamic z_t): each
 * cell a decoded sequence, its other codes those of the chosen sequence (knobs_traverse_seq). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/apps.h"
#include "io/io.h"
#include "core/core.h"
#include "data/data.h"

knobs_status kn_apps_check_image_path(const char *what, const char *path, int gif_ok) {
  if (!path || !*path) return kn_err(KNOBS_ERR_ARG, "%s: no output path given", what);
  if (kn_ends_with(path, ".png") || (gif_ok && kn_ends_with(path, ".gif"))) return KNOBS_OK;
  return kn_err(KNOBS_ERR_ARG, "%s: %s: not an image type written here; the name must end in %s", what, path,
                gif_ok ? ".png (a grid) or .gif (an animation)" : ".png");
}

/* The model's input shape (C,H,W) and size, and its frames T (an observation of a sequence
 * model is T frames of C/T channels; 1 otherwise), from its config: apps use a model's public
 * accessors only. */
typedef struct {
  int C, H, W, T;
  size_t D;
} shape;
static shape shape_of(const knobs_model *m) {
  const knobs_config *c = knobs_model_config(m);
  shape s = {(int)knobs_config_number(c, "C"), (int)knobs_config_number(c, "H"), (int)knobs_config_number(c, "W"),
             (int)knobs_config_number(c, "T"), 0};
  if (s.T < 1 || s.C % s.T) s.T = 1;
  s.D = (size_t)s.C * s.H * s.W;
  return s;
}

static knobs_status need_images(const knobs_model *m) {
  shape sh = shape_of(m);
  int image = sh.H > 1 || sh.W > 1, c = sh.C / sh.T;
  if (!image || (c != 1 && c != 3))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "the model's data are %s, not images; use 'knobs encode' and "
                  "plot the codes", image ? (sh.T > 1 ? "frames with neither 1 nor 3 channels"
                                                      : "images with neither 1 nor 3 channels") : "vectors");
  return KNOBS_OK;
}

float *kn_apps_as_strips(const float *x, int n, int T, int *C, int H, int *W) {
  int c = *C / T, w = *W;
  float *out = malloc(sizeof(float) * (size_t)n * *C * H * w);
  if (!out) return NULL;
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++)
      for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < H; y++)
          memcpy(out + (((size_t)i * c + ch) * H + y) * T * w + (size_t)t * w,
                 x + ((((size_t)i * T + t) * c + ch) * H + y) * w, sizeof(float) * (size_t)w);
  *C = c, *W = T * w;
  return out;
}

/* A grid PNG of n observations (C,H,W), `cols` a row; observations of T > 1 frames (T, C/T,
 * H, W) are drawn as their frames side by side, (C/T, H, T W), not as C channels. */
static knobs_status write_grid(const char *path, const float *imgs, int n, int C, int H, int W, int T, int cols) {
  uint8_t *g;
  int gw, gh;
  float *strips = NULL;
  if (T > 1 && !(imgs = strips = kn_apps_as_strips(imgs, n, T, &C, H, &W)))
    return kn_err(KNOBS_ERR_NOMEM, "cannot allocate the picture");
  knobs_status s = knobs_image_grid(imgs, n, C, H, W, cols, 2, 0.5f, &g, &gw, &gh);
  free(strips);
  if (s) return s;
  s = knobs_png_write(path, g, gw, gh, C);
  free(g);
  return s;
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
  const double *kl = ctx;
  int i = *(const int *)a, j = *(const int *)b;
  return kl[i] < kl[j] ? 1 : kl[i] > kl[j] ? -1 : (i > j) - (i < j);
}

/* The mean KL (nats) of each of the Z code dimensions over NKL observations of d drawn with a
 * fixed seed (all 0 for a model without a posterior) into kd, and the dimensions sorted by it,
 * largest first, into ord. Observations are encoded in chunks of at most 64 MB (one chunk for
 * images up to 128x128x1 or 64x64x3: 1000 at once; sequences are larger). */
static knobs_status kl_order(knobs_model *m, knobs_data *d, size_t D, int Z, double *kd, int *ord) {
  enum { NKL = 1000 };
  int chunk = (int)((64u << 20) / (sizeof(float) * D));
  chunk = chunk < 1 ? 1 : chunk > NKL ? NKL : chunk;
  const knobs_data_info *in = knobs_data_info_get(d);
  float *x = malloc(sizeof(float) * D * (size_t)chunk), *mu = malloc(sizeof(float) * (size_t)Z * chunk * 2);
  int64_t *idx = malloc(sizeof(int64_t) * NKL);
  knobs_status s = KNOBS_OK;
  if (!x || !mu || !idx) s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
  kn_rng r;
  kn_rng_seed(&r, 0, KN_STREAM_EVAL);
  for (int i = 0; !s && i < NKL; i++) idx[i] = (int64_t)(kn_rng_u64(&r) % (uint64_t)in->n);
  for (int k = 0; k < Z; k++) kd[k] = 0, ord[k] = k;
  for (int i0 = 0; !s && i0 < NKL && knobs_model_has_posterior(m); i0 += chunk) {
    int b = NKL - i0 < chunk ? NKL - i0 : chunk;
    float *lv = mu + (size_t)Z * chunk;
    s = knobs_data_get(d, idx + i0, b, x, NULL);
    if (!s) s = knobs_model_encode(m, x, b, mu, lv);
    for (int i = 0; !s && i < b; i++)
      for (int k = 0; k < Z; k++) {
        float a = mu[(size_t)i * Z + k], l = lv[(size_t)i * Z + k];
        kd[k] += 0.5 * ((double)a * a + exp((double)l) - l - 1) / NKL;
      }
  }
  if (!s) qsort_r(ord, (size_t)Z, sizeof(int), cmp_desc, kd);
  free(x), free(mu), free(idx);
  return s;
}

knobs_status knobs_traverse(knobs_model *m, knobs_data *d, int64_t index, double lo, double hi,
                            int steps, const char *path, int *order, double *kl) {
  if (knobs_dsvae_dims(m, NULL, NULL, NULL) == KNOBS_OK) { /* a sequence model: its static code */
    knobs_seq_traverse_opts o;
    knobs_seq_traverse_opts_default(&o);
    o.index = index, o.lo = lo, o.hi = hi, o.steps = steps;
    return knobs_traverse_seq(m, d, &o, path, order, kl);
  }
  knobs_clear_error();
  knobs_status s = kn_apps_check_image_path("traverse", path, 1);
  if (!s) s = need_images(m);
  if (s) return s;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (index < 0 || index >= in->n)
    return kn_err(KNOBS_ERR_ARG, "traverse: index %lld out of range 0..%lld", (long long)index, (long long)in->n - 1);
  if (steps < 2 || steps > 101) return kn_err(KNOBS_ERR_ARG, "traverse: %d steps (2..101)", steps);
  shape sh = shape_of(m);
  int Z = knobs_model_code_dim(m), C = sh.C, H = sh.H, W = sh.W;
  size_t D = sh.D;
  float *x = malloc(sizeof(float) * D), *mu = malloc(sizeof(float) * (size_t)Z);
  float *z = malloc(sizeof(float) * (size_t)Z * Z * steps), *img = malloc(sizeof(float) * D * (size_t)Z * steps);
  double *kd = calloc((size_t)Z, sizeof(double));
  int *ord = malloc(sizeof(int) * (size_t)Z);
  if (!x || !mu || !z || !img || !kd || !ord) {
    s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
    goto out;
  }
  if ((s = kl_order(m, d, D, Z, kd, ord))) goto out;
  /* the base code: the posterior mean of the chosen observation */
  s = knobs_data_get(d, &index, 1, x, NULL);
  if (!s) s = knobs_model_encode(m, x, 1, mu, NULL);
  if (s) goto out;
  for (int row = 0; row < Z; row++)
    for (int j = 0; j < steps; j++) {
      float *zz = z + ((size_t)row * steps + j) * Z;
      memcpy(zz, mu, sizeof(float) * (size_t)Z);
      zz[ord[row]] = (float)(lo + (hi - lo) * j / (steps - 1));
    }
  s = knobs_model_decode(m, z, Z * steps, img);
  if (s) goto out;
  if (sh.T > 1) { /* a model of sequences that is not a dsvae: each cell its frames side by side */
    float *strips = kn_apps_as_strips(img, Z * steps, sh.T, &C, H, &W);
    if (!strips) {
      s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
      goto out;
    }
    free(img);
    img = strips;
  }
  if (kn_ends_with(path, ".gif")) {
    /* frame j: the Z rows' images at value j side by side; forward then back */
    int nf = 2 * steps - 2, fw = Z * (W + 2);
    float *fr = calloc((size_t)nf * C * H * fw, sizeof(float));
    if (!fr) {
      s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
      goto out;
    }
    for (int f = 0; f < nf; f++) {
      int j = f < steps ? f : 2 * steps - 2 - f;
      for (int row = 0; row < Z; row++)
        for (int c = 0; c < C; c++)
          for (int y = 0; y < H; y++)
            memcpy(fr + (((size_t)f * C + c) * H + y) * fw + row * (W + 2) + 1,
                   img + (((size_t)row * steps + j) * C + c) * H * W + (size_t)y * W, sizeof(float) * (size_t)W);
    }
    s = knobs_gif_write(path, fr, nf, C, H, fw, 12);
    free(fr);
  } else {
    s = write_grid(path, img, Z * steps, C, H, W, 1, steps);
  }
  if (!s) {
    if (order) memcpy(order, ord, sizeof(int) * (size_t)Z);
    if (kl) memcpy(kl, kd, sizeof(double) * (size_t)Z);
  }
out:
  free(x), free(mu), free(z), free(img), free(kd), free(ord);
  return s;
}

/* ---- sequences: traversal of a dsvae's codes ------------------------------------------------ */

void knobs_seq_traverse_opts_default(knobs_seq_traverse_opts *o) {
  memset(o, 0, sizeof *o);
  o->lo = -2, o->hi = 2, o->steps = 11;
}

/* n images (C,H,W), image i at imgs + i * stride floats, laid out as knobs_image_grid lays them
 * (cols a row, pad pixels of pad_value around and between) into out (C, gh, gw) floats. */
static void tile(const float *imgs, size_t stride, int n, int C, int H, int W, int cols, int pad, float pad_value,
                 float *out, int gw, int gh) {
  for (size_t i = 0; i < (size_t)C * gh * gw; i++) out[i] = pad_value;
  for (int i = 0; i < n; i++) {
    int y0 = pad + i / cols * (H + pad), x0 = pad + i % cols * (W + pad);
    for (int ch = 0; ch < C; ch++)
      for (int y = 0; y < H; y++)
        memcpy(out + ((size_t)ch * gh + y0 + y) * gw + x0, imgs + stride * i + ((size_t)ch * H + y) * W,
               sizeof(float) * (size_t)W);
  }
}

/* The checks of knobs_traverse_seq (knobs.h), before any work: 0 or the status. */
static knobs_status seq_traverse_check(knobs_model *m, knobs_data *d, const knobs_seq_traverse_opts *o,
                                       const char *path, int *T, int *Fd, int *Z) {
  knobs_status s = kn_apps_check_image_path("traverse", path, 1);
  if (!s) s = knobs_dsvae_dims(m, T, Fd, Z);
  if (s) return s;
  shape sh = shape_of(m);
  const knobs_data_info *in = knobs_data_info_get(d);
  int c = sh.C / *T;
  if (in->C != sh.C || in->H != sh.H || in->W != sh.W || in->T != *T)
    return kn_err(KNOBS_ERR_DATA, "traverse: %s has observations of %d frames %dx%dx%d, the model takes %d frames %dx%dx%d",
                  in->name, in->T, in->C / (in->T > 0 ? in->T : 1), in->H, in->W, *T, c, sh.H, sh.W);
  if ((c != 1 && c != 3) || (sh.H == 1 && sh.W == 1))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "traverse: frames of %d channel%s %dx%d are not pictures (1 or 3 channels); "
                  "use 'knobs encode' and plot the codes", c, c == 1 ? "" : "s", sh.H, sh.W);
  if (o->index < 0 || o->index >= in->n)
    return kn_err(KNOBS_ERR_ARG, "traverse: index %lld out of range 0..%lld", (long long)o->index, (long long)in->n - 1);
  if (o->steps < 2 || o->steps > 101) return kn_err(KNOBS_ERR_ARG, "traverse: %d steps (2..101)", o->steps);
  if (o->frame < 0 || o->frame >= *T)
    return kn_err(KNOBS_ERR_ARG, "traverse: frame %d out of range 0..%d (the model's sequences have %d frames)", o->frame,
                  *T - 1, *T);
  if (o->dynamic != 0 && o->dynamic != 1) return kn_err(KNOBS_ERR_ARG, "traverse: dynamic is 0 (f) or 1 (z_t)");
  return KNOBS_OK;
}

knobs_status knobs_traverse_seq(knobs_model *m, knobs_data *d, const knobs_seq_traverse_opts *o, const char *path,
                                int *order, double *kl) {
  int T, Fd, Z;
  knobs_status s = seq_traverse_check(m, d, o, path, &T, &Fd, &Z);
  if (s) return s;
  shape sh = shape_of(m);
  int c = sh.C / T, H = sh.H, W = sh.W, R = o->dynamic ? Z : Fd, S = o->steps, n = R * S;
  size_t D = sh.D, F = D / (size_t)T; /* floats a sequence, a frame */
  float *x = malloc(sizeof(float) * D), *f = malloc(sizeof(float) * (size_t)Fd * n);
  float *z = malloc(sizeof(float) * (size_t)T * Z * n), *img = malloc(sizeof(float) * D * n), *pic = NULL;
  double *kd = malloc(sizeof(double) * (size_t)R);
  int *ord = malloc(sizeof(int) * (size_t)R);
  if (!x || !f || !z || !img || !kd || !ord) {
    s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate %d sequences", n);
    goto out;
  }
  if (!o->dynamic) s = kl_order(m, d, D, Fd, kd, ord);
  for (int k = 0; o->dynamic && k < R; k++) ord[k] = k, kd[k] = NAN; /* no KL of z_t from the public API */
  if (!s) s = knobs_data_get(d, &o->index, 1, x, NULL);
  if (!s) s = knobs_dsvae_encode(m, x, 1, f, z); /* row 0: the sequence's own codes */
  if (s) goto out;
  /* cell (r, j): the own codes with dimension ord[r] of f (or of z_t at every t) at value j */
  for (int i = n - 1; i >= 0; i--) {
    float *fi = f + (size_t)i * Fd, *zi = z + (size_t)i * T * Z, v = (float)(o->lo + (o->hi - o->lo) * (i % S) / (S - 1));
    if (i > 0) memcpy(fi, f, sizeof(float) * (size_t)Fd), memcpy(zi, z, sizeof(float) * (size_t)T * Z);
    if (!o->dynamic) fi[ord[i / S]] = v;
    for (int t = 0; o->dynamic && t < T; t++) zi[(size_t)t * Z + ord[i / S]] = v;
  }
  if ((s = knobs_dsvae_decode(m, f, z, n, img))) goto out;
  int gw = S * W + (S + 1) * 2, gh = R * H + (R + 1) * 2;
  size_t gsz = (size_t)c * gw * gh;
  int gif = kn_ends_with(path, ".gif");
  if (!(pic = malloc(sizeof(float) * (gif ? gsz * T : F * n)))) {
    s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate the picture");
    goto out;
  }
  if (gif) { /* frame t: every cell's frame t */
    for (int t = 0; t < T; t++) tile(img + F * t, D, n, c, H, W, S, 2, 0.5f, pic + gsz * t, gw, gh);
    s = knobs_gif_write(path, pic, T, c, gh, gw, 25);
  } else {
    for (int i = 0; i < n; i++) memcpy(pic + F * i, img + D * i + F * o->frame, sizeof(float) * F);
    s = write_grid(path, pic, n, c, H, W, 1, S);
  }
  if (!s) {
    if (order) memcpy(order, ord, sizeof(int) * (size_t)R);
    if (kl) memcpy(kl, kd, sizeof(double) * (size_t)R);
  }
out:
  free(x), free(f), free(z), free(img), free(pic), free(kd), free(ord);
  return s;
}

knobs_status knobs_reconstruct(knobs_model *m, knobs_data *d, int n, uint64_t seed, const char *path) {
  knobs_status s = kn_apps_check_image_path("reconstruct", path, 0);
  if (!s) s = need_images(m);
  if (s) return s;
  if (n < 1 || n > 4096) return kn_err(KNOBS_ERR_ARG, "reconstruct: n = %d (1..4096)", n);
  int Z = knobs_model_code_dim(m), cols = n < 16 ? n : 16;
  shape sh = shape_of(m);
  size_t D = sh.D;
  float *x = malloc(sizeof(float) * D * n), *rec = malloc(sizeof(float) * D * n);
  int rows = (n + cols - 1) / cols;
  float *mu = malloc(sizeof(float) * (size_t)Z * n), *grid = malloc(sizeof(float) * D * 2 * rows * cols);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)n * KNOBS_MAX_FACTORS);
  if (!x || !rec || !mu || !grid || !f) {
    s = kn_err(KNOBS_ERR_NOMEM, "reconstruct: cannot allocate");
    goto out;
  }
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_EVAL + 1);
  s = kn_data_batch(d, &r, n, x, NULL, f);
  if (!s) s = knobs_model_encode(m, x, n, mu, NULL);
  if (!s) s = knobs_model_decode(m, mu, n, rec);
  if (s) goto out;
  /* rows of originals, each followed by the row of their reconstructions; gray fills the
   * last row pair when n is not a multiple of the columns */
  for (size_t i = 0; i < D * 2 * rows * cols; i++) grid[i] = 0.5f;
  for (int i = 0; i < n; i++) {
    int row = i / cols, col = i % cols;
    memcpy(grid + ((size_t)(2 * row) * cols + col) * D, x + (size_t)i * D, sizeof(float) * D);
    memcpy(grid + ((size_t)(2 * row + 1) * cols + col) * D, rec + (size_t)i * D, sizeof(float) * D);
  }
  int k = 2 * rows * cols;
  s = write_grid(path, grid, k, sh.C, sh.H, sh.W, sh.T, cols);
out:
  free(x), free(rec), free(mu), free(grid), free(f);
  return s;
}

knobs_status knobs_sample(knobs_model *m, int n, uint64_t seed, const char *path) {
  knobs_status s = kn_apps_check_image_path("sample", path, 0);
  if (!s) s = need_images(m);
  if (s) return s;
  if (n < 1 || n > 4096) return kn_err(KNOBS_ERR_ARG, "sample: n = %d (1..4096)", n);
  int Z = knobs_model_code_dim(m), cols = 1;
  while (cols * cols < n) cols++;
  shape sh = shape_of(m);
  float *z = malloc(sizeof(float) * (size_t)Z * n), *img = malloc(sizeof(float) * sh.D * n);
  if (!z || !img) {
    free(z), free(img);
    return kn_err(KNOBS_ERR_NOMEM, "sample: cannot allocate");
  }
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_EVAL + 2);
  kn_rng_normal_fill(&r, z, (size_t)Z * n);
  s = knobs_model_decode(m, z, n, img);
  if (!s) s = write_grid(path, img, n, sh.C, sh.H, sh.W, sh.T, cols);
  free(z), free(img);
  return s;
}
