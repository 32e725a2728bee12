/* apps.c: looking at a trained model: latent traversals (PNG grid or GIF), reconstructions and
 * prior samples. Images only; vector data is refused with a pointer to `knobs encode`. Output
 * names must end in .png (or .gif for a traversal): nothing else is written under another name.
 * (Pictures of a dataset without a model: show.c.)
 * A traversal row sets one latent dimension to each value of the range (as
 * disentanglement_lib's latent_traversal_1d_multi_dim does) with the others at the posterior
 * mean of the chosen observation; rows are ordered by the dimension's mean KL over 1000
 * observations (largest first), so the dimensions the model uses come first. */
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

/* The model's input shape (C,H,W) and size, from its config: apps use a model's public
 * accessors only. */
typedef struct {
  int C, H, W;
  size_t D;
} shape;
static shape shape_of(const knobs_model *m) {
  const knobs_config *c = knobs_model_config(m);
  shape s = {(int)knobs_config_number(c, "C"), (int)knobs_config_number(c, "H"), (int)knobs_config_number(c, "W"), 0};
  s.D = (size_t)s.C * s.H * s.W;
  return s;
}

static knobs_status need_images(const knobs_model *m) {
  shape sh = shape_of(m);
  int image = sh.H > 1 || sh.W > 1;
  if (!image || (sh.C != 1 && sh.C != 3))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "the model's data are %s, not images; use 'knobs encode' and "
                  "plot the codes", image ? "images with neither 1 nor 3 channels" : "vectors");
  return KNOBS_OK;
}

static knobs_status write_grid(const char *path, const float *imgs, int n, int C, int H, int W, int cols) {
  uint8_t *g;
  int gw, gh;
  knobs_status s = knobs_image_grid(imgs, n, C, H, W, cols, 2, 0.5f, &g, &gw, &gh);
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

knobs_status knobs_traverse(knobs_model *m, knobs_data *d, int64_t index, double lo, double hi,
                            int steps, const char *path, int *order, double *kl) {
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
  enum { NKL = 1000 };
  float *x = malloc(sizeof(float) * D * NKL), *mu = malloc(sizeof(float) * (size_t)Z * NKL * 2);
  float *z = malloc(sizeof(float) * (size_t)Z * Z * steps), *img = malloc(sizeof(float) * D * (size_t)Z * steps);
  double *kd = calloc((size_t)Z, sizeof(double));
  int *ord = malloc(sizeof(int) * (size_t)Z);
  if (!x || !mu || !z || !img || !kd || !ord) {
    s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
    goto out;
  }
  /* per-dimension KL over NKL observations drawn with a fixed seed */
  kn_rng r;
  kn_rng_seed(&r, 0, KN_STREAM_EVAL);
  int64_t *idx = (int64_t *)malloc(sizeof(int64_t) * NKL);
  if (!idx) {
    s = kn_err(KNOBS_ERR_NOMEM, "traverse: cannot allocate");
    goto out;
  }
  for (int i = 0; i < NKL; i++) idx[i] = (int64_t)(kn_rng_u64(&r) % (uint64_t)in->n);
  s = knobs_data_get(d, idx, NKL, x, NULL);
  free(idx);
  if (!s && knobs_model_has_posterior(m)) {
    float *lv = mu + (size_t)Z * NKL;
    s = knobs_model_encode(m, x, NKL, mu, lv);
    for (int i = 0; !s && i < NKL; i++)
      for (int k = 0; k < Z; k++) {
        float a = mu[(size_t)i * Z + k], l = lv[(size_t)i * Z + k];
        kd[k] += 0.5 * ((double)a * a + exp((double)l) - l - 1) / NKL;
      }
  }
  if (s) goto out;
  for (int k = 0; k < Z; k++) ord[k] = k;
  qsort_r(ord, (size_t)Z, sizeof(int), cmp_desc, kd);
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
    s = write_grid(path, img, Z * steps, C, H, W, steps);
  }
  if (!s) {
    if (order) memcpy(order, ord, sizeof(int) * (size_t)Z);
    if (kl) memcpy(kl, kd, sizeof(double) * (size_t)Z);
  }
out:
  free(x), free(mu), free(z), free(img), free(kd), free(ord);
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
  s = write_grid(path, grid, k, sh.C, sh.H, sh.W, cols);
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
  float *z = malloc(sizeof(float) * (size_t)Z * n), *img = malloc(sizeof(float) * shape_of(m).D * n);
  if (!z || !img) {
    free(z), free(img);
    return kn_err(KNOBS_ERR_NOMEM, "sample: cannot allocate");
  }
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_EVAL + 2);
  kn_rng_normal_fill(&r, z, (size_t)Z * n);
  s = knobs_model_decode(m, z, n, img);
  if (!s) s = write_grid(path, img, n, shape_of(m).C, shape_of(m).H, shape_of(m).W, cols);
  free(z), free(img);
  return s;
}
