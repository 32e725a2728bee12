/* bench_data.c: how fast knobs renders and loads data, and what loading costs in memory.
 * Rendering: `shapes` (cold: the per-case geometry is ray-cast on first use; warm: every case
 * cached) and `physics`, in images (vectors) per second at 1 and 2 threads.
 * Loading: synthetic files written here at realistic sizes (3D Shapes-like HDF5, contiguous and
 * gzip-chunked; MPI3D-like .npz, stored and deflated; full-size SmallNORB .mat, plain and .gz; a
 * CSV table; a folder of PNGs; a float .npy), then opened and read: MB/s of uncompressed data,
 * random batches of 64 per second, and the resident memory the open added. Files are written to
 * a temporary folder and removed; the page cache is warm (the files were just written), so the
 * figures are the parsers' speed, not the disk's.
 * Usage: bench_data [SCALE]   (SCALE 1 = the sizes below, e.g. 100000 images of 64x64x3) */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "knobs.h"

static char dir[64];
static double scale = 1;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double rss_mb(void) { /* resident set size now */
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f && fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
  if (f) fclose(f);
  return (double)res * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static const char *P(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static knobs_data *open_data(const char *spec, int threads) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = threads;
  knobs_data *d;
  if (knobs_data_open(spec, &o, &d)) {
    fprintf(stderr, "bench_data: %s: %s\n", spec, knobs_last_error());
    exit(2);
  }
  return d;
}

/* image-like bytes: smooth gradients, a blob, a little noise (compresses like real renders) */
static void fill_image(uint8_t *p, int64_t i, int H, int W, int C) {
  uint32_t s = (uint32_t)i * 2654435761u + 1;
  int cx = (int)(i % W), cy = (int)(i / 7 % H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++) {
        s = s * 1664525u + 1013904223u;
        int v = (x * (c + 1) + y * 2 + (int)(i % 97)) & 0xff;
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < 60) v = 255 - v;
        if ((s >> 28) == 0) v ^= (int)(s >> 20) & 15;
        p[((size_t)y * W + x) * C + c] = (uint8_t)v;
      }
}

/* random batches of 64 through knobs_data_get: images/s */
static double random_batches(knobs_data *d, int batches) {
  const knobs_data_info *in = knobs_data_info_get(d);
  size_t D = (size_t)in->C * in->H * in->W;
  float *x = malloc(sizeof(float) * D * 64);
  int64_t idx[64];
  uint64_t s = 88172645463325252ull;
  double t0 = now();
  for (int b = 0; b < batches; b++) {
    for (int j = 0; j < 64; j++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      idx[j] = (int64_t)(s % (uint64_t)in->n);
    }
    if (knobs_data_get(d, idx, 64, x, NULL)) {
      fprintf(stderr, "bench_data: get: %s\n", knobs_last_error());
      exit(2);
    }
  }
  double t = now() - t0;
  free(x);
  return batches * 64 / t;
}

/* every observation once, in order, through knobs_data_get: stored MB/s */
static double sequential(knobs_data *d, double bytes_per_obs) {
  const knobs_data_info *in = knobs_data_info_get(d);
  size_t D = (size_t)in->C * in->H * in->W;
  float *x = malloc(sizeof(float) * D * 1024);
  int64_t idx[1024];
  double t0 = now();
  for (int64_t i = 0; i < in->n; i += 1024) {
    int m = (int)(in->n - i < 1024 ? in->n - i : 1024);
    for (int j = 0; j < m; j++) idx[j] = i + j;
    knobs_data_get(d, idx, m, x, NULL);
  }
  double t = now() - t0;
  free(x);
  return (double)in->n * bytes_per_obs / t / 1e6;
}

/* one table row: the open (and what it loaded), a pass over everything, random batches, memory */
static void row(const char *what, knobs_data *d, double mb, double open_s, int loads, double rss0) {
  const knobs_data_info *in = knobs_data_info_get(d);
  double bytes = mb * 1e6 / (double)in->n;
  double all = sequential(d, bytes), rnd = random_batches(d, 1000);
  double rss = rss_mb() - rss0; /* after the pass: every loaded page has been touched */
  char load[32] = "in place";
  if (loads) snprintf(load, sizeof load, "%.0f", mb / open_s);
  printf("| %-46s | %7.0f | %6.2f | %8s | %8.0f | %9.0f | %6.0f |\n", what, mb, open_s, load, all, rnd, rss);
}

static void bench_render(void) {
  printf("\n### rendering (images or vectors per second; shapes: batches of 64 cold, 256 warm)\n\n");
  printf("| dataset | threads | cold (first use) | warm |\n|---|---|---|---|\n");
  for (int t = 1; t <= 2; t++) {
    knobs_data *d = open_data("shapes", t);
    float *x = malloc(sizeof(float) * 256 * 3 * 4096);
    double t0 = now();
    int nb = 40;
    for (int b = 0; b < nb; b++) knobs_data_draw(d, 64, 1, (uint64_t)b, x, NULL);
    double cold = nb * 64 / (now() - t0);
    int32_t f[6] = {0, 0, 0, 0, 0, 0};
    for (int c = 0; c < 480; c++) { /* fill every case */
      f[3] = c / 60 % 8, f[4] = c / 15 % 4, f[5] = c % 15;
      knobs_data_render(d, f, 1, x);
    }
    nb = (int)(100 * scale) + 1;
    t0 = now();
    for (int b = 0; b < nb; b++) knobs_data_draw(d, 256, 2, (uint64_t)b, x, NULL);
    double warm = nb * 256 / (now() - t0);
    printf("| shapes 64x64x3 | %d | %.0f | %.0f |\n", t, cold, warm);
    free(x);
    knobs_data_free(d);
  }
  knobs_data *d = open_data("physics", 1);
  float *x = malloc(sizeof(float) * 10 * 4096);
  double t0 = now();
  int nb = (int)(250 * scale) + 1;
  for (int b = 0; b < nb; b++) knobs_data_draw(d, 4096, 3, (uint64_t)b, x, NULL);
  printf("| physics, 10 channels | 1 | - | %.0f |\n", nb * 4096 / (now() - t0));
  free(x);
  knobs_data_free(d);
}

static void write_h5(const char *path, int64_t N, int chunked) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[4] = {(hsize_t)N, 64, 64, 3}, cd[4] = {64, 64, 64, 3};
  hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) H5Pset_chunk(dcpl, 4, cd), H5Pset_deflate(dcpl, 4);
  hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  enum { SLAB = 1024 };
  uint8_t *buf = malloc((size_t)SLAB * 12288);
  for (int64_t r = 0; r < N; r += SLAB) {
    hsize_t m = (hsize_t)(N - r < SLAB ? N - r : SLAB), start[4] = {(hsize_t)r, 0, 0, 0}, cnt[4] = {m, 64, 64, 3};
    for (hsize_t i = 0; i < m; i++) fill_image(buf + i * 12288, r + (int64_t)i, 64, 64, 3);
    hid_t ms = H5Screate_simple(4, cnt, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL);
    H5Dwrite(ds, H5T_NATIVE_UCHAR, ms, sp, H5P_DEFAULT, buf);
    H5Sclose(ms);
  }
  free(buf);
  H5Dclose(ds), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
}

static void bench_files(void) {
  printf("\n### loading\n\n");
  printf("MB: uncompressed data; open: seconds for knobs_data_open; load MB/s: MB / open time, for formats\n"
         "loaded into memory at open (\"in place\": read on demand by offset); read all: every\n"
         "observation once, in order, as float (MB/s of stored data); random: images per second in\n"
         "random batches of 64; RSS: resident memory added by the open and the reads (MB).\n\n");
  printf("| file | MB | open s | load MB/s | read all MB/s | random img/s | RSS MB |\n|---|---|---|---|---|---|---|\n");
  int64_t N = (int64_t)(100000 * scale), NZ = (int64_t)(20000 * scale);
  double mb = (double)N * 12288 / 1e6, mbz = (double)NZ * 12288 / 1e6;

  /* 3D Shapes-like HDF5, contiguous: read in place */
  write_h5(P("c.h5"), N, 0);
  double r0 = rss_mb(), t0 = now();
  knobs_data *d = open_data(P("c.h5"), 2);
  row("HDF5 contiguous (3dshapes.h5 layout)", d, mb, now() - t0, 0, r0);
  knobs_data_free(d);
  unlink(P("c.h5"));
  /* chunked + gzip: decompressed once into memory by the HDF5 child */
  write_h5(P("z.h5"), NZ, 1);
  r0 = rss_mb(), t0 = now();
  d = open_data(P("z.h5"), 2);
  row("HDF5 chunked (64 images) + gzip 4", d, mbz, now() - t0, 1, r0);
  knobs_data_free(d);
  unlink(P("z.h5"));

  /* MPI3D-like .npz: stored (np.savez) read in place; deflated (savez_compressed) into memory */
  for (int c = 0; c < 2; c++) {
    int64_t n = c ? NZ : N;
    knobs_array a;
    int64_t sh[4] = {n, 64, 64, 3};
    if (knobs_array_alloc(&a, KNOBS_U8, 4, sh)) exit(2);
    for (int64_t i = 0; i < n; i++) fill_image((uint8_t *)a.data + i * 12288, i, 64, 64, 3);
    const char *names[1] = {"images"};
    knobs_npz_write(P("m.npz"), names, &a, 1, c);
    knobs_array_free(&a);
    r0 = rss_mb(), t0 = now();
    d = open_data(P("m.npz"), 2);
    row(c ? ".npz deflated (MPI3D layout)" : ".npz stored (MPI3D layout)", d, (double)n * 12288 / 1e6, now() - t0, c, r0);
    knobs_data_free(d);
    unlink(P("m.npz"));
  }

  /* SmallNORB at full size (24300 pairs of 96x96 per split, both splits), plain and .gz */
  int64_t nn = (int64_t)(24300 * scale);
  uint8_t *rec = malloc(2 * 9216);
  for (int gz = 0; gz < 2; gz++) {
    char sub[32];
    snprintf(sub, sizeof sub, "norb%d", gz);
    mkdir(P(sub), 0777);
    for (int split = 0; split < 2; split++) {
      char name[128];
      const char *pre = split ? "smallnorb-5x01235x9x18x6x2x96x96-testing" : "smallnorb-5x46789x9x18x6x2x96x96-training";
      snprintf(name, sizeof name, "%s/%s-dat.mat%s", sub, pre, gz ? ".gz" : "");
      gzFile g = gz ? gzopen(P(name), "wb6") : NULL;
      FILE *fp = gz ? NULL : fopen(P(name), "wb");
      int32_t hd[6] = {0x1E3D4C55, 4, (int32_t)nn, 2, 96, 96}, hc[5] = {0x1E3D4C54, 1, (int32_t)nn, 1, 1},
              hi[5] = {0x1E3D4C54, 2, (int32_t)nn, 4, 1};
      if (gz) gzwrite(g, hd, 24);
      else fwrite(hd, 1, 24, fp);
      for (int64_t i = 0; i < nn; i++) {
        fill_image(rec, i, 96, 96, 2);
        if (gz) gzwrite(g, rec, 2 * 9216);
        else fwrite(rec, 1, 2 * 9216, fp);
      }
      if (gz) gzclose(g);
      else fclose(fp);
      int32_t *cat = malloc(4 * (size_t)nn), *info = malloc(16 * (size_t)nn);
      for (int64_t i = 0; i < nn; i++) {
        int64_t g2 = i;
        info[i * 4 + 3] = (int32_t)(g2 % 6), g2 /= 6;
        info[i * 4 + 2] = (int32_t)(g2 % 18 * 2), g2 /= 18;
        info[i * 4 + 1] = (int32_t)(g2 % 9), g2 /= 9;
        info[i * 4] = (int32_t)(g2 % 5 * 2 + split), cat[i] = (int32_t)(g2 / 5 % 5);
      }
      snprintf(name, sizeof name, "%s/%s-cat.mat", sub, pre);
      fp = fopen(P(name), "wb");
      fwrite(hc, 1, 20, fp), fwrite(cat, 4, (size_t)nn, fp), fclose(fp);
      snprintf(name, sizeof name, "%s/%s-info.mat", sub, pre);
      fp = fopen(P(name), "wb");
      fwrite(hi, 1, 20, fp), fwrite(info, 16, (size_t)nn, fp), fclose(fp);
      free(cat), free(info);
    }
    r0 = rss_mb(), t0 = now();
    d = open_data(P(sub), 2);
    row(gz ? "SmallNORB .mat.gz (2 splits, 96->64)" : "SmallNORB .mat (2 splits, 96->64)", d, 2.0 * (double)nn * 2 * 9216 / 1e6,
        now() - t0, 1, r0);
    knobs_data_free(d);
  }
  free(rec);

  /* Fashion-MNIST, the real gzip IDX files */
  if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0) {
    r0 = rss_mb(), t0 = now();
    d = open_data("fashion-mnist", 2);
    row("Fashion-MNIST train, IDX .gz (Debian's copy)", d, 60000.0 * 784 / 1e6, now() - t0, 1, r0);
    knobs_data_free(d);
  }

  /* a CSV table */
  int64_t rows = (int64_t)(200000 * scale);
  FILE *fp = fopen(P("t.csv"), "w");
  fprintf(fp, "a,b,c,d,e,f,g,h,i,j\n");
  for (int64_t i = 0; i < rows; i++)
    for (int j = 0; j < 10; j++) fprintf(fp, "%.6g%c", sin((double)i * 0.001 * (j + 1)) * 100, j == 9 ? '\n' : ',');
  fclose(fp);
  struct stat st;
  stat(P("t.csv"), &st);
  r0 = rss_mb(), t0 = now();
  d = open_data(P("t.csv"), 1);
  row("CSV, 10 columns (MB of text)", d, (double)st.st_size / 1e6, now() - t0, 1, r0);
  knobs_data_free(d);

  /* a float32 .npy of vectors: the open scans every value (NaN/Inf) */
  knobs_array a;
  int64_t sv[2] = {(int64_t)(1000000 * scale), 32};
  knobs_array_alloc(&a, KNOBS_F32, 2, sv);
  for (int64_t i = 0; i < sv[0] * 32; i++) ((float *)a.data)[i] = (float)(i % 1000) * 0.01f;
  knobs_npy_write(P("v.npy"), &a);
  knobs_array_free(&a);
  r0 = rss_mb(), t0 = now();
  d = open_data(P("v.npy"), 2);
  row(".npy float32 (N,32) (the open scans it)", d, (double)sv[0] * 128 / 1e6, now() - t0, 1, r0);
  knobs_data_free(d);

  /* a folder of PNGs */
  int np = (int)(5000 * scale);
  mkdir(P("png"), 0777);
  uint8_t *img = malloc(12288);
  for (int i = 0; i < np; i++) {
    char name[64];
    snprintf(name, sizeof name, "png/%06d.png", i);
    fill_image(img, i, 64, 64, 3);
    knobs_png_write(P(name), img, 64, 64, 3);
  }
  free(img);
  for (int th = 1; th <= 2; th++) {
    r0 = rss_mb(), t0 = now();
    d = open_data(P("png"), th);
    double t = now() - t0;
    char what[64];
    snprintf(what, sizeof what, "%d PNGs 64x64x3, %d thread%s: %.0f files/s", np, th, th > 1 ? "s" : "", np / t);
    row(what, d, (double)np * 12288 / 1e6, t, 1, r0);
    knobs_data_free(d);
  }
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(int argc, char **argv) {
  if (argc > 1) scale = atof(argv[1]);
  if (!(scale > 0) || scale > 10) {
    fprintf(stderr, "usage: bench_data [SCALE in (0, 10]]\n");
    return 1;
  }
  snprintf(dir, sizeof dir, "/tmp/knobs-bench-data-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("bench_data: scale %g, %ld CPUs, knobs %s\n", scale, ncpu, knobs_version());
  bench_render();
  bench_files();
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}
