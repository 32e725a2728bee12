/* bench_dsprites.c: how fast the built-in dSprites renders and the .npz reader loads.
 * 1. Training-style batches (knobs_data_draw, batch 64) of every variant on 1 and 2 threads:
 *    images/s and ms per batch, wall clock and CPU time (compare with a ~60 ms training step).
 * 2. Loading a dSprites .npz: a complete sub-grid (3x6x40x8x8 = 46080 images, 189 MB of pixels)
 *    written to a temporary file, deflate-compressed as NumPy's savez_compressed writes the
 *    original and stored as savez writes; MB/s of uncompressed pixel bytes (the original file is
 *    3 GB of pixels, so its load time is about 3000 / that rate seconds).
 * usage: bench_dsprites [SECONDS_PER_CASE]   (run by bench/run.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/data.h"
#include "io/io.h"

static int render_bench(const char *spec, int threads, double secs) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = threads;
  knobs_data *d;
  if (knobs_data_open(spec, &o, &d)) {
    fprintf(stderr, "bench_dsprites: %s\n", knobs_last_error());
    return 1;
  }
  enum { B = 64 };
  const knobs_data_info *in = knobs_data_info_get(d);
  float *x = malloc(sizeof(float) * B * in->C * in->H * in->W);
  int32_t *f = malloc(sizeof(int32_t) * B * in->K);
  knobs_data_draw(d, B, 1, 0, x, f); /* warm up: threads, pages */
  long n = 0;
  double t0 = kn_now(), t;
  clock_t c0 = clock();
  do {
    knobs_data_draw(d, B, 1, KN_STREAM_DATA + (uint64_t)n, x, f);
    n++;
  } while ((t = kn_now() - t0) < secs);
  double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
  printf("%-18s %7d %12.0f %14.3f %14.3f\n", spec, threads, n * B / t, 1e3 * t / n, 1e3 * cpu / n);
  free(x), free(f);
  knobs_data_free(d);
  return 0;
}

static int load_bench(int compress) {
  static const int sub[5] = {3, 6, 40, 8, 8};
  int64_t N = 1;
  for (int k = 0; k < 5; k++) N *= sub[k];
  knobs_data *plain;
  if (knobs_data_open("dsprites", NULL, &plain)) return 1;
  knobs_array imgs, cls;
  int64_t ish[3] = {N, 64, 64}, csh[2] = {N, 6};
  if (knobs_array_alloc(&imgs, KNOBS_U8, 3, ish) || knobs_array_alloc(&cls, KNOBS_I64, 2, csh)) return 1;
  float *img = malloc(sizeof(float) * 4096);
  for (int64_t i = 0; i < N; i++) {
    int32_t f[5];
    int64_t rest = i;
    for (int k = 4; k >= 0; k--) f[k] = (int32_t)(rest % sub[k]), rest /= sub[k];
    for (int k = 0; k < 6; k++) ((int64_t *)cls.data)[i * 6 + k] = k ? f[k - 1] : 0;
    knobs_data_render(plain, f, 1, img);
    for (int j = 0; j < 4096; j++) ((uint8_t *)imgs.data)[i * 4096 + j] = img[j] > 0.5f;
  }
  free(img);
  knobs_data_free(plain);
  char path[64];
  snprintf(path, sizeof path, "/tmp/bench_dsprites_%d.npz", (int)getpid());
  const char *names[2] = {"imgs", "latents_classes"};
  knobs_array arr[2] = {imgs, cls};
  knobs_status s = knobs_npz_write(path, names, arr, 2, compress);
  knobs_array_free(&imgs), knobs_array_free(&cls);
  if (s) {
    fprintf(stderr, "bench_dsprites: %s\n", knobs_last_error());
    return 1;
  }
  FILE *fp = fopen(path, "rb");
  long fsize = 0;
  if (fp) fseek(fp, 0, SEEK_END), fsize = ftell(fp), fclose(fp);
  double best = 1e30;
  for (int rep = 0; rep < 3; rep++) {
    knobs_data *d;
    double t0 = kn_now();
    s = knobs_data_open(path, NULL, &d);
    double t = kn_now() - t0;
    if (s) {
      fprintf(stderr, "bench_dsprites: %s\n", knobs_last_error());
      unlink(path);
      return 1;
    }
    knobs_data_free(d);
    if (t < best) best = t;
  }
  double mb = N * 4096 / 1e6;
  printf("%-10s %8lld %10.1f %10.1f %10.3f %12.0f  (original: ~%.1f s)\n", compress ? "deflate" : "stored",
         (long long)N, mb, fsize / 1e6, best, mb / best, 737280 * 4096.0 / 1e6 / (mb / best));
  unlink(path);
  return 0;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(secs > 0)) secs = 1.0;
  static const char *specs[4] = {"dsprites", "dsprites:color", "dsprites:noisy", "dsprites:noshape"};
  printf("rendering, batch 64 (knobs_data_draw); cpu = CPU time of all threads (on a busy machine\n"
         "the wall-clock columns suffer, the cpu column much less)\n%-18s %7s %12s %14s %14s\n",
         "dataset", "threads", "images/s", "ms/batch", "cpu ms/batch");
  for (int v = 0; v < 4; v++)
    for (int t = 1; t <= 2; t++)
      if (render_bench(specs[v], t, secs)) return 2;
  printf("\nloading a dSprites .npz (sub-grid 3x6x40x8x8)\n%-10s %8s %10s %10s %10s %12s\n", "member", "images",
         "pixel MB", "file MB", "seconds", "MB/s");
  if (load_bench(1) || load_bench(0)) return 2;
  return 0;
}
