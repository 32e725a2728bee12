/* property.c: scalar properties of images (n,C,H,W) and their exact gradients with respect to
 * every pixel, for property-guided design (design.c) to push through the decoder's VJP.
 * The definitions (include/knobs.h, docs/apps.md "Design penalties and image properties"):
 *   area        a = sum_{c,h,w} x / (C H W)
 *   centroid x  cx = sum_{c,h,w} x (w + 0.5) / W / S,  S = sum_{c,h,w} x; 0.5 when S <= 0
 *   centroid y  cy = the same with (h + 0.5) / H
 *   brightness  C = 1: area; C = 3: sum_{h,w} (0.299 R + 0.587 G + 0.114 B) / (H W)
 *   channel k   sum_{h,w} x_k / (H W)
 * Sums are in double. It does not decide what a property means for a dataset (design.c and
 * the user do), and it does not clamp images to [0, 1]. */
#include <math.h>
#include <string.h>

#include "core/core.h"

static const double luma[3] = {0.299, 0.587, 0.114};

/* The centroid of one image along w (axis 0) or h (axis 1), and its gradient if g != NULL.
 * dcx/dx_{chw} = ((w + 0.5) / W - cx) / S. S <= 0 (an all-zero image) has no weighted mean:
 * the centre, 0.5, with a zero gradient, so a design that starts from a blank image is not
 * pushed by a division by zero. */
static double centroid(const float *x, int C, int H, int W, int axis, float *g) {
  double S = 0, M = 0;
  for (int c = 0; c < C; c++)
    for (int h = 0; h < H; h++)
      for (int w = 0; w < W; w++) {
        double v = x[((size_t)c * H + h) * W + w];
        S += v;
        M += v * (axis ? (h + 0.5) / H : (w + 0.5) / W);
      }
  size_t hw = (size_t)C * H * W;
  if (!(S > 0)) {
    if (g) memset(g, 0, hw * sizeof *g);
    return 0.5;
  }
  double m = M / S;
  if (g)
    for (int c = 0; c < C; c++)
      for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
          g[((size_t)c * H + h) * W + w] = (float)(((axis ? (h + 0.5) / H : (w + 0.5) / W) - m) / S);
  return m;
}

/* sum_c w_c * mean_{h,w} x_c and its gradient w_c / (H W), with w_c = wc[c] (wc NULL: 1/C,
 * the mean over channels too). */
static double weighted_mean(const float *x, int C, int H, int W, const double *wc, float *g) {
  size_t hw = (size_t)H * W;
  double v = 0;
  for (int c = 0; c < C; c++) {
    double s = 0, wgt = wc ? wc[c] : 1.0 / C;
    const float *xc = x + c * hw;
    for (size_t i = 0; i < hw; i++) s += xc[i];
    v += wgt * (s / (double)hw);
    if (g) {
      float d = (float)(wgt / (double)hw);
      for (size_t i = 0; i < hw; i++) g[c * hw + i] = d;
    }
  }
  return v;
}

knobs_status knobs_image_property_eval(knobs_image_property p, int channel, const float *x, int n, int C,
                                       int H, int W, double *v, float *grad) {
  if (n < 0 || C < 1 || H < 1 || W < 1)
    return kn_err(KNOBS_ERR_ARG, "image property: shape (%d,%d,%d,%d): n must be >= 0 and C, H, W >= 1", n, C,
                  H, W);
  if (n > 0 && (!x || !v)) return kn_err(KNOBS_ERR_ARG, "image property: images or values are NULL");
  if ((int)p < (int)KNOBS_PROP_AREA || (int)p > (int)KNOBS_PROP_CHANNEL)
    return kn_err(KNOBS_ERR_ARG, "image property: unknown property %d", (int)p);
  if (p == KNOBS_PROP_BRIGHTNESS && C != 1 && C != 3)
    return kn_err(KNOBS_ERR_ARG, "image property brightness: images have %d channels; it needs 1 (gray) or 3 (RGB)",
                  C);
  if (p == KNOBS_PROP_CHANNEL && (channel < 0 || channel >= C))
    return kn_err(KNOBS_ERR_ARG, "image property channel: channel %d is out of range: the images have %d channel%s",
                  channel, C, C == 1 ? "" : "s");
  size_t per = (size_t)C * H * W;
  for (int i = 0; i < n; i++)
    for (size_t j = 0; j < per; j++)
      if (!isfinite(x[i * per + j]))
        return kn_err(KNOBS_ERR_DATA, "image property: image %d has a %s pixel at element %zu (c %zu, h %zu, w %zu)",
                      i, isnan(x[i * per + j]) ? "NaN" : "infinite", j, j / ((size_t)H * W), j / W % H, j % W);
  /* area, and brightness of gray images: the plain mean; brightness of RGB: the luma weights */
  const double *wc = p == KNOBS_PROP_BRIGHTNESS && C == 3 ? luma : NULL;
  for (int i = 0; i < n; i++) {
    const float *xi = x + i * per;
    float *gi = grad ? grad + i * per : NULL;
    switch (p) {
    case KNOBS_PROP_CX: v[i] = centroid(xi, C, H, W, 0, gi); break;
    case KNOBS_PROP_CY: v[i] = centroid(xi, C, H, W, 1, gi); break;
    case KNOBS_PROP_CHANNEL: {
      /* one channel: the others have a zero gradient */
      size_t hw = (size_t)H * W;
      if (gi) memset(gi, 0, per * sizeof *gi);
      v[i] = weighted_mean(xi + channel * hw, 1, H, W, NULL, gi ? gi + channel * hw : NULL);
      break;
    }
    default: v[i] = weighted_mean(xi, C, H, W, wc, gi); break;
    }
  }
  return KNOBS_OK;
}

int knobs_image_property_parse(const char *name, int *channel) {
  static const struct {
    const char *name;
    knobs_image_property p;
    int channel;
  } names[] = {
      {"area", KNOBS_PROP_AREA, 0},         {"cx", KNOBS_PROP_CX, 0},
      {"cy", KNOBS_PROP_CY, 0},             {"brightness", KNOBS_PROP_BRIGHTNESS, 0},
      {"red", KNOBS_PROP_CHANNEL, 0},       {"green", KNOBS_PROP_CHANNEL, 1},
      {"blue", KNOBS_PROP_CHANNEL, 2},      {"channel0", KNOBS_PROP_CHANNEL, 0},
      {"channel1", KNOBS_PROP_CHANNEL, 1},  {"channel2", KNOBS_PROP_CHANNEL, 2},
  };
  if (!name) return -1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) {
      if (channel) *channel = names[i].channel;
      return (int)names[i].p;
    }
  return -1;
}
