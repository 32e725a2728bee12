/* bench_gemm.c: the sgemm roof under the training step. Times kn_sgemm (knobs' OpenBLAS, the
 * kernels it picks at run time, single-threaded per pool thread) on large square products
 * on 1 and 2 threads, and, on one thread, the products one thread of the conv beta-VAE step
 * at batch 64 on 2 threads issues per im2col chunk (src/nn/conv.c: a chunk holds at most
 * 2^17 im2col floats, so conv1 and deconv4 take 8 images, conv2 and deconv3 one) and the
 * dense layers' products. Prints a table: shape, GFLOP/s (2 M N K per product; best of 3
 * rounds of at least 0.1 s each). bench/README.md ("Per-layer profile") reads it beside the
 * profile. usage: bench_gemm */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

typedef struct {
  const char *what;
  int ta, tb, M, N, K, threads;
} shape;

static const shape shapes[] = {
    {"square 1024 (1 thread)", 0, 0, 1024, 1024, 1024, 1},
    {"square 1024 (2 threads)", 0, 0, 1024, 1024, 1024, 2},
    {"square 2048 (1 thread)", 0, 0, 2048, 2048, 2048, 1},
    {"square 2048 (2 threads)", 0, 0, 2048, 2048, 2048, 2},
    {"encoder.conv1 forward: W (32,16) x cols (16, 8 images x 1024)", 0, 0, 32, 8192, 16, 1},
    {"encoder.conv1 weight gradient: dy (32, 8192) x cols^T", 0, 1, 32, 16, 8192, 1},
    {"encoder.conv2 forward: W (32,512) x cols (512, 1 image x 256)", 0, 0, 32, 256, 512, 1},
    {"encoder.conv2 weight gradient: dy (32, 256) x cols^T", 0, 1, 32, 512, 256, 1},
    {"encoder.conv2 input gradient: W^T (512,32) x dy", 1, 0, 512, 256, 32, 1},
    {"decoder.deconv3 forward: W^T (512,32) x x (32, 1 image x 256)", 1, 0, 512, 256, 32, 1},
    {"decoder.deconv3 weight gradient: x (32,256) x cols^T", 0, 1, 32, 512, 256, 1},
    {"decoder.deconv4 forward: W^T (16,32) x x (32, 8 images x 1024)", 1, 0, 16, 8192, 32, 1},
    {"decoder.deconv4 input gradient: W (32,16) x cols (16, 8192)", 0, 0, 32, 8192, 16, 1},
    {"decoder.deconv4 weight gradient: x (32, 8192) x cols^T", 0, 1, 32, 16, 8192, 1},
    {"decoder.fc2 forward: x (64,256) x W^T (256,1024)", 0, 1, 64, 1024, 256, 2},
    {"encoder.fc1 weight gradient: dy^T (256,64) x x (64,1024)", 1, 0, 256, 1024, 64, 2},
};

int main(void) {
  kn_pool *pools[3] = {NULL, kn_pool_create(1), kn_pool_create(2)};
  if (!pools[1] || !pools[2]) {
    fprintf(stderr, "bench_gemm: %s\n", knobs_last_error());
    return 2;
  }
  printf("%s\n", kn_blas_describe());
  printf("%-66s %8s\n", "product (M,K) x (K,N), row-major", "GFLOP/s");
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const shape *s = &shapes[i];
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb), *c = malloc(sizeof(float) * nc);
    if (!a || !b || !c) return 2;
    kn_rng r;
    kn_rng_seed(&r, 7, i);
    kn_rng_uniform_fill(&r, a, na, -1, 1);
    kn_rng_uniform_fill(&r, b, nb, -1, 1);
    kn_rng_uniform_fill(&r, c, nc, -1, 1);
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flop = 2.0 * s->M * s->N * s->K, best = 0;
    for (int round = 0; round < 3; round++) {
      long reps = 0;
      double t0 = kn_now(), t;
      do {
        kn_sgemm(pools[s->threads], s->ta, s->tb, s->M, s->N, s->K, 1.0f, a, lda, b, ldb, 0.5f, c, s->N);
        reps++;
      } while ((t = kn_now() - t0) < 0.1);
      double g = flop * reps / t * 1e-9;
      if (g > best) best = g;
    }
    printf("%-66s %8.1f\n", s->what, best);
    free(a), free(b), free(c);
  }
  kn_pool_free(pools[1]), kn_pool_free(pools[2]);
  return 0;
}
