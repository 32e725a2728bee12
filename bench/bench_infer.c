/* bench_infer.c: knobs' inference speed on the conv beta-VAE (the module of bench_train):
 * encoder throughput (posterior means of batches of ENC_BATCH 64x64 images, images/s) and
 * decoder latency (one code to one image, median and p90 over many calls). Prints one line
 * of JSON: {"impl", "threads", "enc_batch", "encode_images_per_s", "decode_ms_median",
 * "decode_ms_p90"}. Run by bench/run.sh beside bench/torch_infer.py.
 * usage: bench_infer THREADS [ENC_BATCH] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_infer THREADS [ENC_BATCH]\n");
    return 1;
  }
  knobs_config c;
  kn_config_default(&c, "betavae");
  strcpy(c.arch, "conv");
  strcpy(c.likelihood, "bernoulli");
  c.threads = atoi(argv[1]);
  int B = argc > 2 ? atoi(argv[2]) : 256;
  c.C = 1, c.H = 64, c.W = 64;
  knobs_model *m;
  if (c.threads < 1 || B < 1 || knobs_model_create(&c, &m)) {
    fprintf(stderr, "bench_infer: %s\n", c.threads < 1 || B < 1 ? "bad arguments" : knobs_last_error());
    return 2;
  }
  size_t D = 4096 * (size_t)B;
  float *x = malloc(sizeof(float) * D), *z = malloc(sizeof(float) * (size_t)B * c.z_dim), *img = malloc(sizeof(float) * 4096);
  kn_rng r;
  kn_rng_seed(&r, 1, 1);
  for (size_t i = 0; i < D; i++) x[i] = kn_rng_uniform(&r) < 0.1 ? 1.0f : 0.0f;
  /* encoder: batches of B for at least 2 s */
  for (int i = 0; i < 2; i++) knobs_model_encode(m, x, B, z, NULL);
  double t0 = kn_now(), t;
  long imgs = 0;
  do {
    knobs_model_encode(m, x, B, z, NULL);
    imgs += B;
  } while ((t = kn_now() - t0) < 2.0);
  double enc = imgs / t;
  /* decoder: one code, 2000 calls */
  enum { REPS = 2000 };
  static double lat[REPS];
  for (int i = 0; i < 20; i++) knobs_model_decode(m, z, 1, img);
  for (int i = 0; i < REPS; i++) {
    double a = kn_now();
    knobs_model_decode(m, z + (size_t)(i % B) * c.z_dim, 1, img);
    lat[i] = kn_now() - a;
  }
  qsort(lat, REPS, sizeof(double), cmp_double);
  printf("{\"impl\": \"knobs\", \"threads\": %d, \"enc_batch\": %d, \"encode_images_per_s\": %.0f, "
         "\"decode_ms_median\": %.4f, \"decode_ms_p90\": %.4f}\n", c.threads, B, enc, lat[REPS / 2] * 1e3,
         lat[REPS * 9 / 10] * 1e3);
  free(x), free(z), free(img);
  knobs_model_free(m);
  return 0;
}
