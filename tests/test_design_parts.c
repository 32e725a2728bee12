/* test_design_parts.c: the parts the latent design search is built from (src/apps):
 *  - image properties (property.c): central finite differences of every property's gradient
 *    on random images in (0.1, 0.9) of odd sizes, C = 1 and C = 3; exact values on small
 *    asymmetric images (a column, a row, one colour); the all-zero image (centroid 0.5, zero
 *    gradient); the names; the refusals (NaN, Inf, bad channel, brightness of C = 2, bad
 *    shape) with nothing written.
 *  - penalties (density.c): exact values of prior; central finite differences of every
 *    penalty's gradient (box at points away from its kinks); the GMM against scikit-learn's
 *    GaussianMixture(covariance_type='diag') and the box bounds against numpy.quantile
 *    (tests/ref/design_ref.json, made by tests/ref/make_design_ref.py); a one-component
 *    mixture against its closed form; duplicates (fewer distinct codes than components);
 *    determinism (the same seed, the same bits); parse, defaults and the refusals.
 * GMM tolerances: the reference's three clusters are 20 standard deviations apart, so a
 * code's responsibility for a foreign cluster is below exp(-100); EM then moves the parameters
 * by less than that after its first steps, and both programs stop at the same fixed point:
 * what is left is double rounding of sums over 270 codes (~1e-14 relative). The test allows
 * 1e-9 (absolute on means and weights, relative on variances and log-densities): five orders
 * above the rounding, and far below what a wrong formula changes (the floor gmm_reg = 1e-4 is
 * >= 6.6e-5 of every variance; n - 1 for n in a variance changes it by >= 0.9%). */
#include <cjson/cJSON.h>
#include <float.h>

#include "apps/density.h"
#include "core/core.h"
#include "io/io.h"
#include "t.h"
#include "ref_json.h"

#define REF_JSON "tests/ref/design_ref.json"
#define LOG_2PI 1.8378770664093453

/* ---- helpers ------------------------------------------------------------------------------ */
static cJSON *ref;

static const cJSON *jget(const cJSON *o, const char *key) {
  return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* a JSON array of numbers (or of arrays of numbers, flattened row-major) into dst (at most
 * max); returns the count, 0 if it is not one */
static int jflat(const cJSON *a, double *dst, int max) {
  int k = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, a) {
    if (cJSON_IsArray(e)) {
      const cJSON *f;
      cJSON_ArrayForEach(f, e) {
        if (!cJSON_IsNumber(f) || k >= max) return 0;
        dst[k++] = f->valuedouble;
      }
    } else {
      if (!cJSON_IsNumber(e) || k >= max) return 0;
      dst[k++] = e->valuedouble;
    }
  }
  return k;
}

static int load_ref(void) {
  ref = t_ref_json(REF_JSON);
  const cJSON *v = jget(ref, "version");
  return cJSON_IsNumber(v) && v->valueint == 1;
}

static float *rand_floats(kn_rng *r, size_t n, float lo, float hi) {
  float *x = malloc(n * sizeof *x);
  if (x) kn_rng_uniform_fill(r, x, n, lo, hi);
  return x;
}

/* ---- image properties ------------------------------------------------------------------- */
typedef struct {
  const char *name;
  knobs_image_property p;
  int channel;
} prop_case;

/* Central differences of property p for every pixel of n random images (n,C,H,W) in
 * (0.1, 0.9): |fd - g| <= 1e-3 * (max |g| of the image) + 1e-3 |g|. The properties are
 * linear (area, brightness, channel) or a ratio of sums of ~100 pixels (centroids), so the
 * O(h^2) truncation of h = 1e-2 is ~1e-6 of the gradient's scale and float32 rounding of the
 * perturbed pixel is taken out by dividing by the step actually made. */
static void fd_property(prop_case pc, int n, int C, int H, int W, uint64_t seed) {
  kn_rng r;
  kn_rng_seed(&r, seed, 0);
  size_t per = (size_t)C * H * W, N = n * per;
  float *x = rand_floats(&r, N, 0.1f, 0.9f), *g = malloc(N * sizeof *g);
  double *v = malloc(n * sizeof *v), *vp = malloc(n * sizeof *vp), *vm = malloc(n * sizeof *vm);
  char what[96];
  snprintf(what, sizeof what, "fd %s C=%d %dx%d", pc.name, C, H, W);
  T_CASE(what);
  if (!x || !g || !v || !vp || !vm) {
    CHECK(0, "out of memory");
    goto done;
  }
  if (knobs_image_property_eval(pc.p, pc.channel, x, n, C, H, W, v, g)) {
    CHECK(0, "eval: %s", knobs_last_error());
    goto done;
  }
  double worst = 0;
  size_t wi = 0;
  int others_moved = 0;
  for (int i = 0; i < n; i++) {
    double gmax = 0;
    for (size_t j = 0; j < per; j++) gmax = fmax(gmax, fabs(g[i * per + j]));
    for (size_t j = 0; j < per; j++) {
      float *xj = x + i * per + j, x0 = *xj;
      float xp = x0 + 1e-2f, xm = x0 - 1e-2f;
      *xj = xp;
      knobs_image_property_eval(pc.p, pc.channel, x, n, C, H, W, vp, NULL);
      *xj = xm;
      knobs_image_property_eval(pc.p, pc.channel, x, n, C, H, W, vm, NULL);
      *xj = x0;
      double fd = (vp[i] - vm[i]) / ((double)xp - xm), gg = g[i * per + j];
      double e = fabs(fd - gg) / (1e-3 * gmax + 1e-3 * fabs(gg));
      if (e > worst) worst = e, wi = i * per + j;
      for (int o = 0; o < n; o++)
        if (o != i && vp[o] != v[o]) others_moved = 1;
    }
  }
  CHECK(worst <= 1, "worst pixel %zu: grad %.9g, relative error %.3g of the tolerance", wi, g[wi], worst);
  CHECK(!others_moved, "a pixel of one image changed another image's value");
done:
  free(x), free(g), free(v), free(vp), free(vm);
}

static void test_property_gradients(void) {
  const prop_case gray[] = {{"area", KNOBS_PROP_AREA, 0},
                            {"cx", KNOBS_PROP_CX, 0},
                            {"cy", KNOBS_PROP_CY, 0},
                            {"brightness", KNOBS_PROP_BRIGHTNESS, 0},
                            {"channel0", KNOBS_PROP_CHANNEL, 0}};
  const prop_case rgb[] = {{"area", KNOBS_PROP_AREA, 0},   {"cx", KNOBS_PROP_CX, 0},
                           {"cy", KNOBS_PROP_CY, 0},       {"brightness", KNOBS_PROP_BRIGHTNESS, 0},
                           {"red", KNOBS_PROP_CHANNEL, 0}, {"green", KNOBS_PROP_CHANNEL, 1},
                           {"blue", KNOBS_PROP_CHANNEL, 2}};
  for (size_t i = 0; i < sizeof gray / sizeof gray[0]; i++) fd_property(gray[i], 2, 1, 7, 5, 11 + i);
  for (size_t i = 0; i < sizeof rgb / sizeof rgb[0]; i++) fd_property(rgb[i], 2, 3, 5, 9, 31 + i);
}

static double prop1(knobs_image_property p, int ch, const float *x, int C, int H, int W, float *g) {
  double v = NAN;
  if (knobs_image_property_eval(p, ch, x, 1, C, H, W, &v, g)) CHECK(0, "eval: %s", knobs_last_error());
  return v;
}

static void test_property_values(void) {
  T_CASE("property values");
  /* gray 1x4x5: one lit pixel at row 1, column 3 (value 1) and one at row 3, column 0 (0.5) */
  float x[20] = {0};
  x[1 * 5 + 3] = 1.0f;
  x[3 * 5 + 0] = 0.5f;
  CHECK_NEAR(prop1(KNOBS_PROP_AREA, 0, x, 1, 4, 5, NULL), 1.5 / 20, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CX, 0, x, 1, 4, 5, NULL), (1.0 * 3.5 / 5 + 0.5 * 0.5 / 5) / 1.5, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CY, 0, x, 1, 4, 5, NULL), (1.0 * 1.5 / 4 + 0.5 * 3.5 / 4) / 1.5, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_BRIGHTNESS, 0, x, 1, 4, 5, NULL), 1.5 / 20, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CHANNEL, 0, x, 1, 4, 5, NULL), 1.5 / 20, 1e-15);
  /* a single column at the right edge: cx = (W - 0.5) / W, cy the middle */
  float col[3 * 4] = {0};
  for (int h = 0; h < 3; h++) col[h * 4 + 3] = 0.7f;
  CHECK_NEAR(prop1(KNOBS_PROP_CX, 0, col, 1, 3, 4, NULL), 3.5 / 4, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CY, 0, col, 1, 3, 4, NULL), 0.5, 1e-15);
  /* RGB 3x2x3: red everywhere 0.2, green one pixel 0.9 at (0,0), blue 0 except (1,2) = 0.6 */
  float c[3 * 6] = {0};
  for (int i = 0; i < 6; i++) c[i] = 0.2f;
  c[6 + 0] = 0.9f;
  c[12 + 5] = 0.6f;
  double R = 0.2f, G = (double)0.9f / 6, B = (double)0.6f / 6;
  CHECK_NEAR(prop1(KNOBS_PROP_CHANNEL, 0, c, 3, 2, 3, NULL), R, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CHANNEL, 1, c, 3, 2, 3, NULL), G, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_CHANNEL, 2, c, 3, 2, 3, NULL), B, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_BRIGHTNESS, 0, c, 3, 2, 3, NULL), 0.299 * R + 0.587 * G + 0.114 * B, 1e-15);
  CHECK_NEAR(prop1(KNOBS_PROP_AREA, 0, c, 3, 2, 3, NULL), (R + G + B) / 3, 1e-15);
  /* the centroid sums the channels: total mass 6*0.2 + 0.9 + 0.6 */
  double S = 6 * (double)0.2f + (double)0.9f + (double)0.6f;
  double cx = ((double)0.2f * 2 * (0.5 + 1.5 + 2.5) / 3 + (double)0.9f * 0.5 / 3 + (double)0.6f * 2.5 / 3) / S;
  CHECK_NEAR(prop1(KNOBS_PROP_CX, 0, c, 3, 2, 3, NULL), cx, 1e-15);
  /* the gradient of a channel mean is zero on the other channels */
  float g[18];
  prop1(KNOBS_PROP_CHANNEL, 1, c, 3, 2, 3, g);
  int ok = 1;
  for (int i = 0; i < 18; i++) ok &= g[i] == (i >= 6 && i < 12 ? (float)(1.0 / 6) : 0.0f);
  CHECK(ok, "channel 1's gradient is 1/6 on channel 1 and 0 elsewhere");

  T_CASE("all-zero image");
  float z[3 * 5 * 7] = {0}, gz[3 * 5 * 7];
  for (int p = KNOBS_PROP_CX; p <= KNOBS_PROP_CY; p++) {
    for (int i = 0; i < 105; i++) gz[i] = 7;
    CHECK(prop1((knobs_image_property)p, 0, z, 3, 5, 7, gz) == 0.5, "centroid %d of a blank image is 0.5", p);
    int zero = 1;
    for (int i = 0; i < 105; i++) zero &= gz[i] == 0;
    CHECK(zero, "centroid %d of a blank image has a zero gradient", p);
  }
  CHECK(prop1(KNOBS_PROP_AREA, 0, z, 3, 5, 7, NULL) == 0, "area of a blank image");
}

static void test_property_refusals(void) {
  T_CASE("property refusals");
  float x[2 * 3 * 3 * 3];
  for (int i = 0; i < 54; i++) x[i] = 0.5f;
  double v[2] = {-7, -7};
  float g[54];
  x[27 + 4] = NAN;
  CHECK(knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, 2, 3, 3, 3, v, g) == KNOBS_ERR_DATA &&
            strstr(knobs_last_error(), "image 1") && strstr(knobs_last_error(), "NaN"),
        "NaN: %s", knobs_last_error());
  x[27 + 4] = INFINITY;
  CHECK(knobs_image_property_eval(KNOBS_PROP_CX, 0, x, 2, 3, 3, 3, v, g) == KNOBS_ERR_DATA, "Inf: %s",
        knobs_last_error());
  x[27 + 4] = 0.5f;
  CHECK(v[0] == -7 && v[1] == -7, "nothing written on failure");
  CHECK(knobs_image_property_eval(KNOBS_PROP_CHANNEL, 3, x, 2, 3, 3, 3, v, g) == KNOBS_ERR_ARG &&
            strstr(knobs_last_error(), "channel 3"),
        "channel 3 of RGB: %s", knobs_last_error());
  CHECK(knobs_image_property_eval(KNOBS_PROP_CHANNEL, -1, x, 2, 3, 3, 3, v, g) == KNOBS_ERR_ARG, "channel -1");
  CHECK(knobs_image_property_eval(KNOBS_PROP_CHANNEL, 1, x, 1, 1, 3, 3, v, g) == KNOBS_ERR_ARG,
        "channel 1 of gray");
  CHECK(knobs_image_property_eval(KNOBS_PROP_BRIGHTNESS, 0, x, 1, 2, 3, 3, v, g) == KNOBS_ERR_ARG &&
            strstr(knobs_last_error(), "2 channels"),
        "brightness of C=2: %s", knobs_last_error());
  CHECK(knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, 1, 0, 3, 3, v, g) == KNOBS_ERR_ARG, "C = 0");
  CHECK(knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, -1, 1, 3, 3, v, g) == KNOBS_ERR_ARG, "n = -1");
  CHECK(knobs_image_property_eval((knobs_image_property)9, 0, x, 1, 1, 3, 3, v, g) == KNOBS_ERR_ARG,
        "unknown property");
  CHECK(v[0] == -7 && v[1] == -7, "nothing written on failure");
  CHECK(knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, 2, 3, 3, 3, v, NULL) == KNOBS_OK && v[1] == 0.5,
        "no gradient asked");

  T_CASE("property names");
  const struct {
    const char *s;
    int p, ch;
  } names[] = {{"area", KNOBS_PROP_AREA, 0},        {"cx", KNOBS_PROP_CX, 0},
               {"cy", KNOBS_PROP_CY, 0},            {"brightness", KNOBS_PROP_BRIGHTNESS, 0},
               {"red", KNOBS_PROP_CHANNEL, 0},      {"green", KNOBS_PROP_CHANNEL, 1},
               {"blue", KNOBS_PROP_CHANNEL, 2},     {"channel0", KNOBS_PROP_CHANNEL, 0},
               {"channel1", KNOBS_PROP_CHANNEL, 1}, {"channel2", KNOBS_PROP_CHANNEL, 2}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int ch = -5;
    CHECK(knobs_image_property_parse(names[i].s, &ch) == names[i].p && ch == names[i].ch, "%s -> %d", names[i].s,
          ch);
  }
  const char *bad[] = {"Area", "channel3", "", "x", "redd", "channel"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(knobs_image_property_parse(bad[i], NULL) == -1, "'%s' is unknown", bad[i]);
  CHECK(knobs_image_property_parse(NULL, NULL) == -1, "NULL");
}

/* ---- penalties ---------------------------------------------------------------------------- */
/* Central differences of penalty p at code z (Z): |fd - g| <= 1e-4 (1 + |g|), h = 1e-3. The
 * penalties are smooth at the points used (box points stay >= 0.05 from its kinks), so the
 * truncation is O(h^2 |f'''|) ~ 1e-6 and the double value of a float code has no rounding
 * beyond 1e-12. grad starts at 1 and the check subtracts it: eval must add. */
static void fd_penalty(const char *what, const knobs_penalty *p, const float *z0, int Z) {
  T_CASE(what);
  float *z = malloc(Z * sizeof *z);
  double *g = malloc(Z * sizeof *g);
  if (!z || !g) {
    CHECK(0, "out of memory");
    free(z), free(g);
    return;
  }
  memcpy(z, z0, Z * sizeof *z);
  for (int d = 0; d < Z; d++) g[d] = 1;
  double v = knobs_penalty_eval(p, z, g), worst = 0;
  int wd = 0;
  for (int d = 0; d < Z; d++) {
    float zp = z0[d] + 1e-3f, zm = z0[d] - 1e-3f;
    z[d] = zp;
    double fp = knobs_penalty_eval(p, z, NULL);
    z[d] = zm;
    double fm = knobs_penalty_eval(p, z, NULL);
    z[d] = z0[d];
    double fd = (fp - fm) / ((double)zp - zm), gg = g[d] - 1;
    double e = fabs(fd - gg) / (1e-4 * (1 + fabs(gg)));
    if (e > worst) worst = e, wd = d;
  }
  CHECK(isfinite(v) && worst <= 1, "value %.9g; latent %d: grad %.9g, error %.3g of the tolerance", v, wd,
        g[wd] - 1, worst);
  free(z), free(g);
}

static knobs_penalty *fit(knobs_penalty_kind k, const float *x, int n, int Z, const knobs_penalty_opts *o) {
  knobs_penalty *p = NULL;
  if (knobs_penalty_fit(k, x, n, Z, o, &p)) CHECK(0, "fit %d: %s", (int)k, knobs_last_error());
  return p;
}

static void test_prior(void) {
  T_CASE("prior values");
  knobs_penalty *p = fit(KNOBS_PENALTY_PRIOR, NULL, 0, 3, NULL);
  if (!p) return;
  float z[3] = {1.0f, -2.0f, 0.5f};
  double g[3] = {10, 20, 30};
  CHECK_NEAR(knobs_penalty_eval(p, z, g), 0.5 * (1 + 4 + 0.25) + 1.5 * LOG_2PI, 1e-14);
  CHECK(g[0] == 11 && g[1] == 18 && g[2] == 30.5, "grad += z: %g %g %g", g[0], g[1], g[2]);
  knobs_penalty_free(p);
  p = fit(KNOBS_PENALTY_PRIOR, NULL, 0, 1, NULL);
  float zero = 0;
  if (p) CHECK_NEAR(knobs_penalty_eval(p, &zero, NULL), 0.91893853320467274, 1e-15); /* log(2 pi) / 2 */
  knobs_penalty_free(p);
  p = fit(KNOBS_PENALTY_PRIOR, NULL, 0, 6, NULL);
  float z6[6] = {0.3f, -1.1f, 2.2f, 0.05f, -0.7f, 1.3f};
  if (p) fd_penalty("fd prior", p, z6, 6);
  knobs_penalty_free(p);

  T_CASE("none");
  p = fit(KNOBS_PENALTY_NONE, NULL, 0, 2, NULL);
  double g2[2] = {3, 4};
  CHECK(p && knobs_penalty_eval(p, z, g2) == 0 && g2[0] == 3 && g2[1] == 4, "none: 0, grad untouched");
  CHECK(knobs_penalty_eval(NULL, z, g2) == 0 && g2[0] == 3, "NULL penalty: 0");
  knobs_penalty_free(p);
  knobs_penalty_free(NULL);
}

/* the fitted component whose mean is nearest `mean` */
static int nearest_comp(const kn_gmm_view *v, const double *mean) {
  int best = -1;
  double bd = INFINITY;
  for (int k = 0; k < v->K; k++) {
    double d = 0;
    for (int j = 0; j < v->Z; j++) d += (v->mu[k * v->Z + j] - mean[j]) * (v->mu[k * v->Z + j] - mean[j]);
    if (d < bd) bd = d, best = k;
  }
  return best;
}

static void test_gmm_reference(void) {
  const cJSON *g = jget(ref, "gmm");
  int n = jget(g, "n") ? jget(g, "n")->valueint : 0, Z = 3, K = 3;
  double X[300 * 3], mu[9], var[9], w[3], T[8 * 3], ss[8];
  T_CASE("gmm reference");
  if (!(n == 270 && jflat(jget(g, "X"), X, 900) == n * Z && jflat(jget(g, "means"), mu, 9) == 9 &&
        jflat(jget(g, "variances"), var, 9) == 9 && jflat(jget(g, "weights"), w, 3) == 3 &&
        jflat(jget(g, "test_points"), T, 24) == 24 && jflat(jget(g, "score_samples"), ss, 8) == 8 &&
        cJSON_IsNumber(jget(g, "score")))) {
    CHECK(0, "%s: the gmm case is incomplete", REF_JSON);
    return;
  }
  double score = jget(g, "score")->valuedouble;
  float x[270 * 3], t[8 * 3];
  for (int i = 0; i < n * Z; i++) x[i] = (float)X[i];
  for (int i = 0; i < 24; i++) t[i] = (float)T[i];
  knobs_penalty_opts o;
  knobs_penalty_opts_default(&o);
  o.gmm_k = K;
  o.gmm_tol = 1e-12;
  o.gmm_iter = 1000;
  CHECK(o.gmm_reg == jget(g, "reg")->valuedouble, "the reference used knobs' default floor");
  const uint64_t seeds[] = {0, 1, 2, 12345};
  for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
    char what[64];
    snprintf(what, sizeof what, "gmm vs sklearn, seed %llu", (unsigned long long)seeds[si]);
    T_CASE(what);
    o.seed = seeds[si];
    knobs_penalty *p = fit(KNOBS_PENALTY_GMM, x, n, Z, &o);
    kn_gmm_view v;
    if (!p || !kn_penalty_gmm_view(p, &v) || v.K != K) {
      CHECK(0, "fit gave %d components", p && kn_penalty_gmm_view(p, &v) ? v.K : -1);
      knobs_penalty_free(p);
      continue;
    }
    CHECK(v.converged && v.iters < 1000, "converged after %d iterations", v.iters);
    int used[3] = {0, 0, 0}, ok = 1;
    double emu = 0, evar = 0, ew = 0;
    for (int k = 0; k < K; k++) {
      int c = nearest_comp(&v, mu + k * Z);
      if (c < 0 || used[c]++) {
        ok = 0;
        break;
      }
      for (int j = 0; j < Z; j++) {
        emu = fmax(emu, fabs(v.mu[c * Z + j] - mu[k * Z + j]));
        evar = fmax(evar, fabs(v.var[c * Z + j] - var[k * Z + j]) / var[k * Z + j]);
      }
      ew = fmax(ew, fabs(v.w[c] - w[k]));
    }
    CHECK(ok, "each sklearn component matches its own fitted component");
    CHECK(emu <= 1e-9 && evar <= 1e-9 && ew <= 1e-9, "max error: means %.3g, variances (rel) %.3g, weights %.3g",
          emu, evar, ew);
    double es = 0;
    for (int i = 0; i < 8; i++) es = fmax(es, fabs(-knobs_penalty_eval(p, t + i * Z, NULL) - ss[i]) / fabs(ss[i]));
    CHECK(es <= 1e-9, "score_samples: max relative error %.3g", es);
    double mean = 0;
    for (int i = 0; i < n; i++) mean -= knobs_penalty_eval(p, x + i * Z, NULL);
    mean /= n;
    CHECK_NEAR(mean, score, 1e-9 * fabs(score));
    CHECK(fabs(v.ll - score) <= 1e-9 * fabs(score), "the last E-step's mean log-likelihood %.12g vs %.12g", v.ll,
          score);
    /* the gradient between the clusters (every component counts) and at a centre */
    fd_penalty("fd gmm (reference mixture, between clusters)", p, t + 3 * Z, Z);
    fd_penalty("fd gmm (reference mixture, centre)", p, t + 1 * Z, Z);
    knobs_penalty_free(p);
  }
}

static void test_gmm_forms(void) {
  kn_rng r;
  kn_rng_seed(&r, 99, 0);
  int n = 200, Z = 4;
  float *x = malloc(n * Z * sizeof *x);
  if (!x) return;
  /* overlapping data: two blobs 1.5 apart with unit noise, so responsibilities are mixed */
  for (int i = 0; i < n; i++)
    for (int d = 0; d < Z; d++) x[i * Z + d] = (float)(kn_rng_normal(&r) + (i % 2 ? 1.5 : 0) * (d % 2 ? 1 : -1));

  T_CASE("gmm one component: closed form");
  knobs_penalty_opts o;
  knobs_penalty_opts_default(&o);
  o.gmm_k = 1;
  knobs_penalty *p = fit(KNOBS_PENALTY_GMM, x, n, Z, &o);
  kn_gmm_view v;
  if (p && kn_penalty_gmm_view(p, &v)) {
    double m[4] = {0}, s[4] = {0};
    for (int i = 0; i < n; i++)
      for (int d = 0; d < Z; d++) m[d] += x[i * Z + d];
    for (int d = 0; d < Z; d++) m[d] /= n;
    for (int i = 0; i < n; i++)
      for (int d = 0; d < Z; d++) s[d] += (x[i * Z + d] - m[d]) * (x[i * Z + d] - m[d]);
    double e = 0, lp = 0;
    float z[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    for (int d = 0; d < Z; d++) {
      double vv = s[d] / n + o.gmm_reg;
      e = fmax(e, fabs(v.mu[d] - m[d]) + fabs(v.var[d] - vv) / vv);
      lp += -0.5 * log(2 * M_PI * vv) - 0.5 * (z[d] - m[d]) * (z[d] - m[d]) / vv;
    }
    CHECK(v.K == 1 && v.w[0] == 1 && e <= 1e-12, "K %d w %g: mean/variance error %.3g", v.K, v.w[0], e);
    CHECK_NEAR(knobs_penalty_eval(p, z, NULL), -lp, 1e-12);
  }
  knobs_penalty_free(p);

  o.gmm_k = 4;
  o.seed = 5;
  p = fit(KNOBS_PENALTY_GMM, x, n, Z, &o);
  if (p) {
    const float pts[3][4] = {{0.1f, 0.2f, -0.3f, 0.4f}, {-1.2f, 1.4f, -1.0f, 1.6f}, {6.0f, -5.0f, 4.0f, 7.0f}};
    fd_penalty("fd gmm (overlapping, inside)", p, pts[0], Z);
    fd_penalty("fd gmm (overlapping, a blob)", p, pts[1], Z);
    fd_penalty("fd gmm (overlapping, far out)", p, pts[2], Z);
  }

  T_CASE("gmm determinism");
  knobs_penalty *q = fit(KNOBS_PENALTY_GMM, x, n, Z, &o);
  kn_gmm_view a, b;
  if (p && q && kn_penalty_gmm_view(p, &a) && kn_penalty_gmm_view(q, &b)) {
    CHECK(a.K == b.K && a.iters == b.iters && !memcmp(a.w, b.w, a.K * sizeof *a.w) &&
              !memcmp(a.mu, b.mu, a.K * Z * sizeof *a.mu) && !memcmp(a.var, b.var, a.K * Z * sizeof *a.var),
          "the same seed gives the same parameters, bit for bit");
    double ga[4] = {0}, gb[4] = {0};
    double va = knobs_penalty_eval(p, x, ga), vb = knobs_penalty_eval(q, x, gb);
    CHECK(!memcmp(&va, &vb, sizeof va) && !memcmp(ga, gb, sizeof ga), "the same values and gradients");
  }
  knobs_penalty_free(q);
  o.seed = 6;
  q = fit(KNOBS_PENALTY_GMM, x, n, Z, &o);
  if (p && q && kn_penalty_gmm_view(q, &b) && kn_penalty_gmm_view(p, &a))
    CHECK(a.K != b.K || memcmp(a.mu, b.mu, a.K * Z * sizeof *a.mu), "another seed starts elsewhere");
  knobs_penalty_free(q);
  knobs_penalty_free(p);

  T_CASE("gmm with fewer distinct codes than components");
  float dup[12] = {1, 1, 1, 1, 1, 1, -2, 3, -2, 3, -2, 3}; /* 6 codes of Z = 2, two distinct */
  o.gmm_k = 3;
  o.seed = 0;
  p = fit(KNOBS_PENALTY_GMM, dup, 6, 2, &o);
  if (p && kn_penalty_gmm_view(p, &v)) {
    CHECK(v.K == 2, "components kept: %d", v.K);
    CHECK(fabs(v.w[0] - 0.5) < 1e-12 && fabs(v.w[1] - 0.5) < 1e-12 && v.var[0] == o.gmm_reg,
          "two halves with the floor as variance: w %g %g var %g", v.w[0], v.w[1], v.var[0]);
    float at[2] = {1, 1};
    CHECK_NEAR(knobs_penalty_eval(p, at, NULL), -(log(0.5) - log(2 * M_PI * o.gmm_reg)), 1e-9);
  }
  knobs_penalty_free(p);

  T_CASE("gmm on the largest floats, with the smallest floor");
  float big[8] = {3e38f, -3e38f, -3e38f, 3e38f, 1, 2, 1.5f, 2.5f};
  o.gmm_k = 2;
  o.gmm_reg = 1e-12;
  p = fit(KNOBS_PENALTY_GMM, big, 4, 2, &o);
  if (p && kn_penalty_gmm_view(p, &v)) {
    double gb[2] = {0, 0};
    double vb = knobs_penalty_eval(p, big + 4, gb);
    CHECK(isfinite(v.ll) && isfinite(vb) && isfinite(gb[0]) && isfinite(gb[1]), "ll %g value %g grad %g %g", v.ll,
          vb, gb[0], gb[1]);
  }
  knobs_penalty_free(p);
  free(x);
}

static void test_box(void) {
  const cJSON *bx = jget(ref, "box");
  double X[37 * 3], qs[8], lo[8 * 3], hi[8 * 3];
  int nq = jflat(jget(bx, "q"), qs, 8);
  T_CASE("box reference");
  if (!(jflat(jget(bx, "X"), X, 111) == 111 && nq > 0 && jflat(jget(bx, "lo"), lo, 24) == nq * 3 &&
        jflat(jget(bx, "hi"), hi, 24) == nq * 3)) {
    CHECK(0, "%s: the box case is incomplete", REF_JSON);
    return;
  }
  float x[111];
  for (int i = 0; i < 111; i++) x[i] = (float)X[i];
  knobs_penalty_opts o;
  knobs_penalty_opts_default(&o);
  for (int k = 0; k < nq; k++) {
    char what[48];
    snprintf(what, sizeof what, "box vs numpy.quantile, q %g", qs[k]);
    T_CASE(what);
    o.box_q = qs[k];
    knobs_penalty *p = fit(KNOBS_PENALTY_BOX, x, 37, 3, &o);
    const double *l, *h;
    if (!p || !kn_penalty_box_view(p, &l, &h)) {
      knobs_penalty_free(p);
      continue;
    }
    double e = 0;
    for (int d = 0; d < 3; d++) e = fmax(e, fmax(fabs(l[d] - lo[k * 3 + d]), fabs(h[d] - hi[k * 3 + d])));
    CHECK(e <= 1e-12, "max |bound - numpy| %.3g", e); /* the same arithmetic: equal unless libm differs */
    /* the value outside: latent 0 below, latent 1 inside, latent 2 above */
    float z[3] = {(float)(l[0] - 0.75), (float)(0.5 * (l[1] + h[1])), (float)(h[2] + 0.4)};
    double want = (l[0] - z[0]) * (l[0] - z[0]) + (z[2] - h[2]) * (z[2] - h[2]);
    double g[3] = {0, 0, 0};
    CHECK_NEAR(knobs_penalty_eval(p, z, g), want, 1e-12);
    CHECK(g[0] == -2 * (l[0] - z[0]) && g[1] == 0 && g[2] == 2 * (z[2] - h[2]), "gradient %g %g %g", g[0], g[1],
          g[2]);
    if (qs[k] < 0.5) fd_penalty("fd box (below, inside, above)", p, z, 3);
    float in[3] = {(float)(0.5 * (l[0] + h[0])), (float)(0.5 * (l[1] + h[1])), (float)(0.5 * (l[2] + h[2]))};
    CHECK(knobs_penalty_eval(p, in, NULL) == 0 || qs[k] == 0.5, "zero inside the box");
    knobs_penalty_free(p);
  }
}

static void test_penalty_api(void) {
  T_CASE("penalty names and defaults");
  CHECK(knobs_penalty_parse("none") == KNOBS_PENALTY_NONE && knobs_penalty_parse("prior") == KNOBS_PENALTY_PRIOR &&
            knobs_penalty_parse("gmm") == KNOBS_PENALTY_GMM && knobs_penalty_parse("box") == KNOBS_PENALTY_BOX,
        "the four names");
  CHECK(knobs_penalty_parse("GMM") == -1 && knobs_penalty_parse("") == -1 && knobs_penalty_parse(NULL) == -1 &&
            knobs_penalty_parse("boxes") == -1,
        "unknown names are -1");
  knobs_penalty_opts o;
  memset(&o, 0xff, sizeof o);
  knobs_penalty_opts_default(&o);
  CHECK(o.gmm_k == 10 && o.gmm_iter == 200 && o.gmm_tol == 1e-4 && o.gmm_reg == 1e-4 && o.box_q == 0.01 &&
            o.seed == 0,
        "the documented defaults");

  T_CASE("penalty refusals");
  float x[5 * 2] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  knobs_penalty *p = (knobs_penalty *)&o; /* a non-NULL sentinel: a failure must reset it */
  o.gmm_k = 6;
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, x, 5, 2, &o, &p) == KNOBS_ERR_ARG && !p &&
            strstr(knobs_last_error(), "gmm_k"),
        "n < gmm_k: %s", knobs_last_error());
  o.gmm_k = 2;
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, x, 5, 0, &o, &p) == KNOBS_ERR_ARG && !p, "Z = 0");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_PRIOR, NULL, 0, 0, &o, &p) == KNOBS_ERR_ARG && !p, "prior Z = 0");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_BOX, x, 5, -1, &o, &p) == KNOBS_ERR_ARG && !p, "box Z = -1");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, NULL, 5, 2, &o, &p) == KNOBS_ERR_ARG && !p, "gmm without codes");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_BOX, x, 0, 2, &o, &p) == KNOBS_ERR_ARG && !p, "box without codes");
  CHECK(knobs_penalty_fit((knobs_penalty_kind)7, x, 5, 2, &o, &p) == KNOBS_ERR_ARG && !p, "unknown kind");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, x, 5, 2, &o, NULL) == KNOBS_ERR_ARG, "out NULL");
  x[7] = NAN;
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, x, 5, 2, &o, &p) == KNOBS_ERR_DATA && !p &&
            strstr(knobs_last_error(), "code 3") && strstr(knobs_last_error(), "latent 1"),
        "NaN: %s", knobs_last_error());
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_BOX, x, 5, 2, &o, &p) == KNOBS_ERR_DATA && !p, "NaN (box)");
  x[7] = -INFINITY;
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_BOX, x, 5, 2, &o, &p) == KNOBS_ERR_DATA && !p, "Inf (box)");
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_PRIOR, x, 5, 2, &o, &p) == KNOBS_OK && p, "prior ignores the codes");
  knobs_penalty_free(p);
  x[7] = 7;
  const struct {
    const char *what;
    knobs_penalty_kind k;
    int gmm_k, gmm_iter;
    double tol, reg, q;
  } bad[] = {{"gmm_k 0", KNOBS_PENALTY_GMM, 0, 10, 1e-4, 1e-4, 0.01},
             {"gmm_k 1025", KNOBS_PENALTY_GMM, 1025, 10, 1e-4, 1e-4, 0.01},
             {"gmm_iter 0", KNOBS_PENALTY_GMM, 2, 0, 1e-4, 1e-4, 0.01},
             {"gmm_tol -1", KNOBS_PENALTY_GMM, 2, 10, -1, 1e-4, 0.01},
             {"gmm_tol NaN", KNOBS_PENALTY_GMM, 2, 10, NAN, 1e-4, 0.01},
             {"gmm_reg 0", KNOBS_PENALTY_GMM, 2, 10, 1e-4, 0, 0.01},
             {"gmm_reg 1e-13", KNOBS_PENALTY_GMM, 2, 10, 1e-4, 1e-13, 0.01},
             {"box_q 0.6", KNOBS_PENALTY_BOX, 2, 10, 1e-4, 1e-4, 0.6},
             {"box_q -0.1", KNOBS_PENALTY_BOX, 2, 10, 1e-4, 1e-4, -0.1},
             {"box_q NaN", KNOBS_PENALTY_BOX, 2, 10, 1e-4, 1e-4, NAN}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    knobs_penalty_opts_default(&o);
    o.gmm_k = bad[i].gmm_k, o.gmm_iter = bad[i].gmm_iter, o.gmm_tol = bad[i].tol, o.gmm_reg = bad[i].reg;
    o.box_q = bad[i].q;
    p = NULL;
    CHECK(knobs_penalty_fit(bad[i].k, x, 5, 2, &o, &p) == KNOBS_ERR_ARG && !p &&
              strstr(knobs_last_error(), bad[i].what[0] == 'b' ? "box_q" : "gmm_"),
          "%s: %s", bad[i].what, knobs_last_error());
  }
  /* the options of the other kinds are not read */
  knobs_penalty_opts_default(&o);
  o.box_q = 3;
  o.gmm_k = 2;
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, x, 5, 2, &o, &p) == KNOBS_OK && p, "gmm ignores box_q: %s",
        knobs_last_error());
  knobs_penalty_free(p);
  /* NULL options: the defaults (gmm_k 10 needs 10 codes) */
  float many[20 * 2];
  for (int i = 0; i < 40; i++) many[i] = (float)((i * 37) % 11);
  CHECK(knobs_penalty_fit(KNOBS_PENALTY_GMM, many, 20, 2, NULL, &p) == KNOBS_OK && p, "NULL options: %s",
        knobs_last_error());
  knobs_penalty_free(p);
}

int main(void) {
  test_property_gradients();
  test_property_values();
  test_property_refusals();
  test_prior();
  test_penalty_api();
  test_gmm_forms();
  T_CASE("reference file");
  if (load_ref()) {
    test_gmm_reference();
    test_box();
  } else {
    CHECK(0, "%s: missing or not version 1", REF_JSON);
  }
  cJSON_Delete(ref);
  return t_done();
}
