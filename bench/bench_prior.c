/* bench_prior.c: the measurements behind the training-time property penalty (issue 12,
 * docs/results.md "Property penalty"), on a model of the built-in dSprites. Used by
 * bench/apps/penalty.sh; not part of `make bench`'s default run.
 *
 *   bench_prior labels RUN N CODES.npy LABELS.npy
 *       encode N dataset observations (a seeded draw) to posterior means, and label each 1
 *       when its sprite is large (ground-truth scale index >= 4 of 6: the largest third), else 0
 *   bench_prior share RUN N [SEED]
 *       draw N codes z ~ N(0, I), decode them, and print as JSON: the share of samples the
 *       oracle reads as large (scale index >= 4), the mean image area (knobs_image_property
 *       area), the share whose area exceeds the dataset's 67th area percentile and the share
 *       below the smallest area of N dataset observations (near-empty images), and the mean
 *       squared pixel distance to the nearest rendering (the oracle's: how plausible)
 *
 * Only the public API (knobs.h). Exit 0 done, 1 usage, 2 failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knobs.h"

#define LARGE_SCALE 4 /* dSprites scale index 4 or 5 of 0..5 */

static int fail(const char *what) {
  fprintf(stderr, "bench_prior: %s: %s\n", what, knobs_last_error());
  return 2;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Standard normal draws from a splitmix64 stream (Box-Muller); the benchmark's own, so that
 * it depends on no internal rng. */
static uint64_t sm64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double gauss(uint64_t *s) {
  double u1 = ((double)(sm64(s) >> 11) + 0.5) / 9007199254740992.0, u2 = (double)(sm64(s) >> 11) / 9007199254740992.0;
  return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The scale factor's index among the dataset's factors, or -1. */
static int scale_factor(const knobs_data_info *in) {
  for (int k = 0; k < in->K; k++)
    if (!strcmp(in->factor_names[k], "scale")) return k;
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_prior labels RUN N CODES.npy LABELS.npy | bench_prior share RUN N [SEED]\n");
    return 1;
  }
  const char *mode = argv[1], *run = argv[2];
  char *end;
  long N = strtol(argv[3], &end, 10);
  if (*end || N < 100 || N > 1000000) {
    fprintf(stderr, "bench_prior: N '%s': expected 100..1000000\n", argv[3]);
    return 1;
  }
  int labels = !strcmp(mode, "labels");
  if (!labels && strcmp(mode, "share")) {
    fprintf(stderr, "bench_prior: unknown mode '%s'\n", mode);
    return 1;
  }
  if (labels && argc != 6) {
    fprintf(stderr, "bench_prior: labels needs RUN N CODES.npy LABELS.npy\n");
    return 1;
  }
  uint64_t seed = argc > 4 && !labels ? strtoull(argv[4], NULL, 10) : 1;
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  if (knobs_model_load(run, 0, &m)) return fail("load");
  if (knobs_model_open_data(m, NULL, &d)) return fail("data");
  const knobs_data_info *in = knobs_data_info_get(d);
  int ks = scale_factor(in), Z = knobs_model_code_dim(m), C = in->C, H = in->H, W = in->W;
  if (ks < 0 || !in->is_image) {
    fprintf(stderr, "bench_prior: %s has no 'scale' factor: this benchmark is for dSprites\n", in->name);
    return 1;
  }
  size_t D = (size_t)C * H * W;
  enum { B = 256 };
  float *x = malloc(sizeof(float) * D * B), *z = malloc(sizeof(float) * (size_t)Z * B);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)in->K * B);
  double *area = malloc(sizeof(double) * (size_t)N), *v = malloc(sizeof(double) * B);
  knobs_array codes = {0}, lab = {0};
  int rc = 0;
  if (!x || !z || !f || !area || !v) return fail("out of memory");
  if (labels && (knobs_array_alloc(&codes, KNOBS_F32, 2, (int64_t[]){N, Z}) ||
                 knobs_array_alloc(&lab, KNOBS_F32, 1, (int64_t[]){N})))
    return fail("alloc");
  /* N dataset observations: their area (for the percentile), codes and labels */
  uint64_t s = 12345;
  long large = 0;
  for (long i = 0; i < N && !rc; i += B) {
    int b = (int)(N - i < B ? N - i : B);
    int64_t idx[B];
    for (int j = 0; j < b; j++) idx[j] = (int64_t)(sm64(&s) % (uint64_t)in->n);
    if (knobs_data_get(d, idx, b, x, f)) rc = fail("data");
    else if (knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, b, C, H, W, area + i, NULL)) rc = fail("area");
    else if (labels && knobs_model_encode(m, x, b, (float *)codes.data + (size_t)i * Z, NULL)) rc = fail("encode");
    for (int j = 0; labels && !rc && j < b; j++) {
      int big = f[(size_t)j * in->K + ks] >= LARGE_SCALE;
      ((float *)lab.data)[i + j] = (float)big;
      large += big;
    }
  }
  if (!rc && labels) {
    if (knobs_npy_write(argv[4], &codes) || knobs_npy_write(argv[5], &lab)) rc = fail("write");
    else printf("{\"n\": %ld, \"large\": %.4f, \"codes\": \"%s\", \"labels\": \"%s\"}\n", N, (double)large / N, argv[4], argv[5]);
  }
  if (!rc && !labels) {
    qsort(area, (size_t)N, sizeof(double), cmp_double);
    double p67 = area[(size_t)(0.67 * (double)(N - 1))];
    knobs_oracle *o = NULL;
    if (knobs_oracle_create(d, 2, &o)) rc = fail("oracle");
    long big = 0, over = 0, tiny = 0;
    double sum = 0, near = 0, dist[B];
    uint64_t g = seed * 0x9E3779B97F4A7C15ull + 1;
    for (long i = 0; i < N && !rc; i += B) {
      int b = (int)(N - i < B ? N - i : B);
      for (int j = 0; j < b * Z; j++) z[j] = (float)gauss(&g);
      if (knobs_model_decode(m, z, b, x)) rc = fail("decode");
      else if (knobs_image_property_eval(KNOBS_PROP_AREA, 0, x, b, C, H, W, v, NULL)) rc = fail("area");
      else if (knobs_oracle_factors(o, x, b, f, dist)) rc = fail("oracle");
      for (int j = 0; !rc && j < b; j++) {
        big += f[(size_t)j * in->K + ks] >= LARGE_SCALE;
        over += v[j] > p67;
        tiny += v[j] < area[0];
        sum += v[j];
        near += dist[j];
      }
    }
    knobs_oracle_free(o);
    if (!rc)
      printf("{\"n\": %ld, \"seed\": %llu, \"large_share\": %.4f, \"mean_area\": %.5f, \"over_p67_share\": %.4f, "
             "\"below_data_min_share\": %.4f, \"mean_nearest\": %.5f, \"data_area_p67\": %.5f, \"data_area_min\": %.5f}\n",
             N, (unsigned long long)seed, (double)big / N, sum / N, (double)over / N, (double)tiny / N, near / N, p67, area[0]);
  }
  knobs_array_free(&codes);
  knobs_array_free(&lab);
  free(x), free(z), free(f), free(area), free(v);
  knobs_data_free(d);
  knobs_model_free(m);
  return rc;
}
