/* show.c: a picture of a dataset without a model (knobs_data_show): one row per factor, each
 * varying only that factor when the data can render any factor vector, else examples of each
 * factor's classes; vectors are drawn as bar charts. It does not train or encode anything. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps/apps.h"

/* Vectors drawn as bar charts (n tiles of 1 x 32 x *W gray): bars up or down from the middle
 * line, scaled by the largest |value| of all of them. */
static float *bars(const float *x, int n, int C, int *W) {
  int w = C * 4 < 32 ? 32 : C * 4 > 256 ? 256 : C * 4;
  float *t = malloc(sizeof(float) * (size_t)n * 32 * w);
  if (!t) return NULL;
  double mx = 1e-12;
  for (size_t i = 0; i < (size_t)n * C; i++) mx = fmax(mx, fabs(x[i]));
  for (int i = 0; i < n; i++) {
    float *im = t + (size_t)i * 32 * w;
    for (int p = 0; p < 32 * w; p++) im[p] = 0.92f;
    for (int px = 0; px < w; px++) {
      int c = (int)((long)px * C / w);
      if (C * 4 <= w && px % 4 == 3) continue; /* gaps between bars when they are wide enough */
      double v = x[(size_t)i * C + c] / mx;
      int h = (int)lround(fabs(v) * 15);
      for (int k = 0; k <= h; k++) im[(v >= 0 ? 16 - k : 16 + k) * w + px] = 0.15f;
    }
    for (int px = 0; px < w; px++) im[16 * w + px] = fminf(im[16 * w + px], 0.55f);
  }
  *W = w;
  return t;
}

/* Grid datasets: row k holds `cols` evenly spaced classes of factor k (fewer if it has fewer),
 * the other factors at `base`. */
static knobs_status rendered(knobs_data *d, const knobs_data_info *in, const int32_t *base, int cols, float *x,
                             int32_t *f, char *have) {
  int K = in->K;
  size_t D = (size_t)in->C * in->H * in->W;
  for (int k = 0; k < K; k++) {
    int sz = in->factor_sizes[k], m = sz < cols ? sz : cols;
    for (int j = 0; j < m; j++) {
      int32_t *v = f + (size_t)(k * cols + j) * K;
      memcpy(v, base, sizeof(int32_t) * (size_t)K);
      v[k] = m == 1 ? 0 : (int32_t)((long)j * (sz - 1) / (m - 1));
      have[k * cols + j] = 1;
    }
  }
  knobs_status s = KNOBS_OK;
  for (int i = 0; i < K * cols && !s; i++) /* tile by tile: some tiles stay blank */
    if (have[i]) s = knobs_data_render(d, f + (size_t)i * K, 1, x + (size_t)i * D);
  return s;
}

/* No renderer: for each factor, the first observations (in index order) of evenly spaced
 * classes; the scan stops once every tile is filled. */
static knobs_status examples(knobs_data *d, const knobs_data_info *in, int cols, float *x, char *have) {
  enum { CH = 256 };
  int K = in->K, left = 0;
  size_t D = (size_t)in->C * in->H * in->W;
  for (int k = 0; k < K; k++) left += in->factor_sizes[k] < cols ? in->factor_sizes[k] : cols;
  int64_t idx[CH];
  float *buf = malloc(sizeof(float) * D * CH);
  int32_t *fb = malloc(sizeof(int32_t) * CH * (size_t)K);
  knobs_status s = KNOBS_OK;
  if (!buf || !fb) s = kn_err(KNOBS_ERR_NOMEM, "data show: cannot allocate");
  for (int64_t i0 = 0; i0 < in->n && left > 0 && !s; i0 += CH) {
    int m = (int)(in->n - i0 < CH ? in->n - i0 : CH);
    for (int j = 0; j < m; j++) idx[j] = i0 + j;
    if ((s = knobs_data_get(d, idx, m, buf, fb))) break;
    for (int j = 0; j < m; j++)
      for (int k = 0; k < K; k++) {
        int sz = in->factor_sizes[k], mm = sz < cols ? sz : cols, c = fb[j * K + k];
        for (int t = 0; t < mm; t++) {
          int want = mm == 1 ? 0 : (int)((long)t * (sz - 1) / (mm - 1));
          if (want == c && !have[k * cols + t]) {
            have[k * cols + t] = 1, left--;
            memcpy(x + (size_t)(k * cols + t) * D, buf + (size_t)j * D, sizeof(float) * D);
          }
        }
      }
  }
  free(buf), free(fb);
  return s;
}

knobs_status knobs_data_show(knobs_data *d, int cols, int64_t index, uint64_t seed, const char *path,
                             const char **layout) {
  knobs_status s = kn_apps_check_image_path("data show", path, 0);
  if (s) return s;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (cols < 2 || cols > 64) return kn_err(KNOBS_ERR_ARG, "data show: %d columns (2..64)", cols);
  if (index < -1 || index >= in->n)
    return kn_err(KNOBS_ERR_ARG, "data show: index %lld out of range 0..%lld (or -1: drawn with the seed)",
                  (long long)index, (long long)in->n - 1);
  int T = in->T > 1 && in->C % in->T == 0 ? in->T : 1; /* a sequence: its frames side by side */
  if (in->is_image && in->C / T != 1 && in->C / T != 3)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "data show: %s has %d channels%s; only 1 or 3 can be drawn", in->name, in->C / T,
                  T > 1 ? " a frame" : "");
  int K = in->K, rows = K > 0 ? K : cols, n = rows * cols;
  size_t D = (size_t)in->C * in->H * in->W;
  float *x = calloc((size_t)n * D, sizeof(float)), *tiles = NULL;
  int32_t *f = calloc((size_t)n * (K ? K : 1), sizeof(int32_t)), *base = calloc(K ? (size_t)K : 1, sizeof(int32_t));
  char *have = calloc((size_t)n, 1);
  uint8_t *g = NULL;
  const char *how;
  if (!x || !f || !base || !have) {
    s = kn_err(KNOBS_ERR_NOMEM, "data show: cannot allocate %d tiles", n);
    goto done;
  }
  if (K > 0 && in->has_render) {
    how = "each row varies one factor, the others stay fixed";
    if (index >= 0) knobs_data_factors_of(d, index, base);
    else s = knobs_data_sample_factors(d, 1, seed, 0, base);
    if (!s) s = rendered(d, in, base, cols, x, f, have);
  } else if (K > 0) {
    how = "each row shows examples of one factor's classes (other factors vary: this data cannot be rendered)";
    s = examples(d, in, cols, x, have);
  } else {
    how = "random observations (the data has no factors)";
    s = knobs_data_draw(d, n, seed, 0, x, NULL);
    memset(have, 1, (size_t)n);
  }
  if (s) goto done;
  int C = in->C, H = in->H, W = in->W;
  const float *img = x;
  const float blank = 1.0f; /* empty tiles take the padding colour */
  if (!in->is_image) {
    if (!(tiles = bars(x, n, in->C, &W))) {
      s = kn_err(KNOBS_ERR_NOMEM, "data show: cannot allocate");
      goto done;
    }
    C = 1, H = 32, img = tiles;
    for (int i = 0; i < n; i++)
      if (!have[i]) for (int p = 0; p < H * W; p++) tiles[(size_t)i * H * W + p] = blank;
  } else {
    for (int i = 0; i < n; i++)
      if (!have[i]) for (size_t p = 0; p < D; p++) x[(size_t)i * D + p] = blank;
    if (T > 1) {
      if (!(img = tiles = kn_apps_as_strips(x, n, T, &C, H, &W))) {
        s = kn_err(KNOBS_ERR_NOMEM, "data show: cannot allocate");
        goto done;
      }
    }
  }
  int gw, gh;
  s = knobs_image_grid(img, n, C, H, W, cols, 2, 1.0f, &g, &gw, &gh);
  if (!s) s = knobs_png_write(path, g, gw, gh, C);
  if (!s && layout) *layout = how;
done:
  free(x), free(f), free(base), free(have), free(tiles), free(g);
  return s;
}
