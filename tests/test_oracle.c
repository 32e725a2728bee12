/* test_oracle.c: the oracle (src/apps/oracle.c) reads back the factors of renderings of dsprites
 * and shapes exactly, of perturbed renderings mostly, the same for any thread count, and refuses
 * what it cannot read. Times are printed, not asserted. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "knobs.h"
#include "t.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static knobs_data *open_data(const char *name) {
  knobs_data *d = NULL;
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = 1;
  knobs_status s = knobs_data_open(name, &o, &d);
  CHECK(s == KNOBS_OK, "open %s: %s", name, knobs_last_error());
  return d;
}

/* uniform in [0, 1) and standard normal from a small LCG (the test's own noise) */
static uint64_t lcg = 12345;
static double unif(void) {
  lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg >> 11) * 0x1p-53;
}
static double gauss(void) { return sqrt(-2 * log(1 - unif())) * cos(2 * M_PI * unif()); }

static float clip01(double v) { return (float)(v < 0 ? 0 : v > 1 ? 1 : v); }

/* Exactness on n renderings: the recovered factors render to the input (distance 0), and equal
 * the input's unless another class renders the same picture, in which case they are the
 * smaller class index. */
static void exactness(const char *name, int n, uint64_t seed) {
  T_CASE(name);
  knobs_data *d = open_data(name);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  int K = in->K;
  size_t per = (size_t)in->C * in->H * in->W;
  int32_t *f = malloc(sizeof *f * (size_t)n * K), *g = malloc(sizeof *g * (size_t)n * K);
  float *x = malloc(sizeof *x * n * per), *r = malloc(sizeof *r * n * per);
  double *dist = malloc(sizeof *dist * n);
  CHECK(knobs_data_sample_factors(d, n, seed, 0, f) == KNOBS_OK, "%s", knobs_last_error());
  if (!strcmp(name, "dsprites")) { /* orientation 39 (angle 2 pi) renders as orientation 0 */
    for (int i = 0; i < 8; i++) f[i * K + 2] = 39;
  }
  CHECK(knobs_data_render(d, f, n, x) == KNOBS_OK, "%s", knobs_last_error());
  knobs_oracle *o = NULL;
  double t0 = now();
  knobs_status s = knobs_oracle_create(d, 1, &o);
  double t_create = now() - t0;
  CHECK(s == KNOBS_OK && o, "create: %s", knobs_last_error());
  if (!o) goto out;
  CHECK(strlen(knobs_oracle_method(o)) > 40, "method: '%s'", knobs_oracle_method(o));
  t0 = now();
  s = knobs_oracle_factors(o, x, n, g, dist);
  double t_cold = now() - t0;
  CHECK(s == KNOBS_OK, "factors: %s", knobs_last_error());
  t0 = now();
  s = knobs_oracle_factors(o, x, n, g, dist);
  double t_warm = now() - t0;
  CHECK(s == KNOBS_OK, "factors again: %s", knobs_last_error());
  CHECK(knobs_data_render(d, g, n, r) == KNOBS_OK, "%s", knobs_last_error());
  int bad_img = 0, bad_f = 0, same_pic = 0, bad_dist = 0;
  for (int i = 0; i < n; i++) {
    int eq_img = !memcmp(x + (size_t)i * per, r + (size_t)i * per, sizeof(float) * per);
    int eq_f = !memcmp(f + (size_t)i * K, g + (size_t)i * K, sizeof(int32_t) * K);
    bad_img += !eq_img;
    bad_dist += dist[i] != 0;
    if (!eq_f) {
      if (eq_img && knobs_data_index(d, g + (size_t)i * K) < knobs_data_index(d, f + (size_t)i * K)) {
        if (++same_pic <= 12) {
          printf("  %s image %d: class", name, i);
          for (int k = 0; k < K; k++) printf(" %d", f[i * K + k]);
          printf(" renders as");
          for (int k = 0; k < K; k++) printf(" %d", g[i * K + k]);
          printf("\n");
        }
      } else {
        bad_f++;
      }
    }
    if (!eq_img && bad_img <= 3) {
      printf("  %s image %d: input class", name, i);
      for (int k = 0; k < K; k++) printf(" %d", f[i * K + k]);
      printf(", recovered");
      for (int k = 0; k < K; k++) printf(" %d", g[i * K + k]);
      printf(" (dist %.4g)\n", dist[i]);
    }
  }
  CHECK(bad_img == 0, "%s: %d of %d recovered factor vectors do not render to the input", name, bad_img, n);
  CHECK(bad_f == 0, "%s: %d of %d recovered factors differ from the input's beyond a same-picture smaller class",
        name, bad_f, n);
  CHECK(bad_dist == 0, "%s: %d of %d distances are not 0", name, bad_dist, n);
  if (!strcmp(name, "dsprites")) /* the first 8 were orientation 39 */
    for (int i = 0; i < 8; i++)
      CHECK(g[i * K + 2] == 0, "image %d: orientation 39 read back as %d, not its twin 0", i, g[i * K + 2]);
  printf("  %s: create %.2f s; %d images: %.2f ms/image cold cache, %.2f ms/image warm; %d read as a smaller "
         "class with the same picture\n", name, t_create, n, 1e3 * t_cold / n, 1e3 * t_warm / n, same_pic);
out:
  knobs_oracle_free(o);
  knobs_data_free(d);
  free(f), free(g), free(x), free(r), free(dist);
}

/* Perturbed renderings: intensities scaled to 0.9, Gaussian noise (sd 0.1, clipped to [0, 1]),
 * a 3x3 box blur; each kind of image must be read as its clean rendering is in at least `share`
 * of the cases (the second call on o also runs on a warm cache: the same answers).
 * Then: the same images give the same factors and distances with 2 threads as with 1. */
static void robustness(const char *name, int n, double share) {
  T_CASE(name);
  knobs_data *d = open_data(name);
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  int K = in->K, C = in->C, H = in->H, W = in->W;
  size_t per = (size_t)C * H * W;
  int32_t *f = malloc(sizeof *f * (size_t)n * K), *g = malloc(sizeof *g * (size_t)3 * n * K),
          *g2 = malloc(sizeof *g2 * (size_t)3 * n * K);
  float *x = malloc(sizeof *x * 3 * n * per);
  double *dist = malloc(sizeof *dist * 3 * n), *dist2 = malloc(sizeof *dist2 * 3 * n);
  CHECK(knobs_data_sample_factors(d, n, 7, 0, f) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(knobs_data_render(d, f, n, x) == KNOBS_OK, "%s", knobs_last_error());
  knobs_oracle *o = NULL, *o2 = NULL;
  CHECK(knobs_oracle_create(d, 1, &o) == KNOBS_OK, "create: %s", knobs_last_error());
  CHECK(knobs_oracle_create(d, 2, &o2) == KNOBS_OK, "create (2 threads): %s", knobs_last_error());
  if (!o || !o2) goto out;
  /* "right" is the reading of the clean rendering (exact: the same picture; a twin class with the
   * same picture is read as the smaller one) */
  CHECK(knobs_oracle_factors(o, x, n, f, NULL) == KNOBS_OK, "%s", knobs_last_error());
  float *xs = x, *xn = x + n * per, *xb = x + 2 * n * per;
  for (size_t p = 0; p < n * per; p++) xn[p] = clip01(xs[p] + 0.1 * gauss());
  for (int i = 0; i < n; i++)
    for (int c = 0; c < C; c++) {
      const float *a = xs + i * per + (size_t)c * H * W;
      float *b = xb + i * per + (size_t)c * H * W;
      for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
          double s = 0;
          int m = 0;
          for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
              if (y + dy >= 0 && y + dy < H && xx + dx >= 0 && xx + dx < W) s += a[(y + dy) * W + xx + dx], m++;
          b[y * W + xx] = (float)(s / m);
        }
    }
  for (size_t p = 0; p < n * per; p++) xs[p] *= 0.9f;
  double t0 = now();
  CHECK(knobs_oracle_factors(o, x, 3 * n, g, dist) == KNOBS_OK, "%s", knobs_last_error());
  double t1 = now() - t0;
  t0 = now();
  CHECK(knobs_oracle_factors(o2, x, 3 * n, g2, dist2) == KNOBS_OK, "%s", knobs_last_error());
  double t2 = now() - t0;
  const char *kinds[3] = {"intensity 0.9", "noise sd 0.1", "3x3 blur"};
  for (int t = 0; t < 3; t++) {
    int ok = 0;
    for (int i = 0; i < n; i++) ok += !memcmp(f + (size_t)i * K, g + ((size_t)t * n + i) * K, sizeof(int32_t) * K);
    printf("  %s, %s: %d of %d read right (asserted: at least %.0f%%)\n", name, kinds[t], ok, n, 100 * share);
    CHECK(ok >= share * n, "%s, %s: %d of %d read right", name, kinds[t], ok, n);
  }
  CHECK(!memcmp(g, g2, sizeof(int32_t) * 3 * n * K), "%s: factors differ between 1 and 2 threads", name);
  CHECK(!memcmp(dist, dist2, sizeof(double) * 3 * n), "%s: distances differ between 1 and 2 threads", name);
  printf("  %s: %d perturbed images, %.2f ms/image on 1 thread (warm cache), %.2f on 2 threads (cold)\n", name, 3 * n,
         1e3 * t1 / (3 * n), 1e3 * t2 / (3 * n));
out:
  knobs_oracle_free(o);
  knobs_oracle_free(o2);
  knobs_data_free(d);
  free(f), free(g), free(g2), free(x), free(dist), free(dist2);
}

static void bad_input(void) {
  T_CASE("bad input");
  knobs_oracle *o = (knobs_oracle *)&o;
  const char *refused[] = {"physics", "dsprites:color", "dsprites:noshape"};
  for (int t = 0; t < 3; t++) {
    knobs_data *d = open_data(refused[t]);
    if (!d) continue;
    o = (knobs_oracle *)&o;
    knobs_status s = knobs_oracle_create(d, 1, &o);
    CHECK(s == KNOBS_ERR_UNSUPPORTED, "%s: status %d", refused[t], (int)s);
    CHECK(strstr(knobs_last_error(), refused[t]) != NULL, "message '%s' does not name %s", knobs_last_error(), refused[t]);
    CHECK(o == NULL, "%s: *out not cleared", refused[t]);
    knobs_data_free(d);
  }
  knobs_data *d = open_data("dsprites");
  if (!d) return;
  CHECK(knobs_oracle_create(d, 0, &o) == KNOBS_ERR_ARG, "threads 0 accepted");
  o = NULL;
  CHECK(knobs_oracle_create(d, 1, &o) == KNOBS_OK, "%s", knobs_last_error());
  if (o) {
    float *x = calloc(2 * 4096, sizeof *x);
    int32_t f[10];
    double dist[2];
    x[4096 + 100] = NAN;
    knobs_status s = knobs_oracle_factors(o, x, 2, f, dist);
    CHECK(s == KNOBS_ERR_DATA, "NaN: status %d", (int)s);
    CHECK(strstr(knobs_last_error(), "image 1") && strstr(knobs_last_error(), "NaN"), "NaN message: %s", knobs_last_error());
    x[4096 + 100] = INFINITY;
    CHECK(knobs_oracle_factors(o, x, 2, f, dist) == KNOBS_ERR_DATA, "infinity accepted");
    CHECK(knobs_oracle_factors(o, x, -1, f, dist) == KNOBS_ERR_ARG, "n = -1 accepted");
    CHECK(knobs_oracle_factors(o, x, 0, f, dist) == KNOBS_OK, "n = 0 refused: %s", knobs_last_error());
    x[4096 + 100] = 0;
    CHECK(knobs_oracle_factors(o, x, 2, NULL, dist) == KNOBS_ERR_ARG, "NULL factors accepted");
    /* a blank image still gets an answer, with its distance the mean of the mask */
    CHECK(knobs_oracle_factors(o, x, 2, f, NULL) == KNOBS_OK, "blank: %s", knobs_last_error());
    CHECK(knobs_oracle_factors(o, x, 1, f, dist) == KNOBS_OK && dist[0] > 0 && dist[0] < 0.1,
          "blank: dist %g", dist[0]);
    free(x);
  }
  knobs_oracle_free(o);
  knobs_oracle_free(NULL);
  knobs_data_free(d);
}

int main(void) {
  exactness("dsprites", 300, 11);
  exactness("shapes", 300, 12);
  robustness("dsprites", 100, 0.9);
  robustness("shapes", 100, 0.9);
  bad_input();
  return t_done();
}
