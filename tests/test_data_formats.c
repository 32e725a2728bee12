/* test_data_formats.c: the field's standard files, each written here in its own format:
 * MNIST IDX (plain and gzip, labels beside), SmallNORB matrices (merged splits, the 96->64 area
 * resize, camera 0), HDF5 (contiguous, chunked whole images, chunked tiles with gzip, labels),
 * full-size 3D Shapes (480000 images) and MPI3D (460800 images, a ZIP64 .npz) as sparse files
 * so that the real index <-> factor layouts are checked without 6 GB of disk, and the bad cases
 * of each (wrong magic or type, sizes that lie, truncation, counts that disagree).
 * With Debian's dataset-fashion-mnist installed, the real Fashion-MNIST is checked too. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/files.h"
#include "knobs.h"
#include "t.h"

static char dir[64];

static const char *P(const char *name) {
  static char buf[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* write bytes to dir/name, gzip-compressed if gz */
static void put(const char *name, const void *data, size_t n, int gz) {
  if (gz) {
    gzFile g = gzopen(P(name), "wb");
    CHECK(g && gzwrite(g, data, (unsigned)n) == (int)n, "gzwrite %s", name);
    if (g) gzclose(g);
    return;
  }
  FILE *f = fopen(P(name), "wb");
  CHECK(f && fwrite(data, 1, n, f) == n, "write %s", name);
  if (f) fclose(f);
}

static knobs_data *try_open(const char *spec, knobs_status *st) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = 2;
  knobs_data *d = NULL;
  *st = knobs_data_open(spec, &o, &d);
  return d;
}

static knobs_data *open_ok(const char *spec) {
  knobs_status s;
  knobs_data *d = try_open(spec, &s);
  CHECK(s == KNOBS_OK && d, "open %s: %s", spec, knobs_last_error());
  return d;
}

static void open_fails(const char *spec, knobs_status want, const char *name, const char *what) {
  knobs_status s;
  knobs_data *d = try_open(spec, &s);
  const char *e = knobs_last_error();
  CHECK(s == want && !d && strstr(e, name) && strstr(e, what), "%s: status %s (want %s), message '%s' should name '%s' and say '%s'",
        spec, knobs_status_name(s), knobs_status_name(want), e, name, what);
  knobs_data_free(d);
}

/* ---- IDX ----------------------------------------------------------------------------------- */

static size_t idx_bytes(uint8_t *out, uint8_t type, int nd, const uint32_t *dims, const uint8_t *data, size_t n) {
  out[0] = out[1] = 0, out[2] = type, out[3] = (uint8_t)nd;
  for (int i = 0; i < nd; i++)
    for (int k = 0; k < 4; k++) out[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
  memcpy(out + 4 + 4 * nd, data, n);
  return 4 + 4 * (size_t)nd + n;
}

static void test_idx(void) {
  T_CASE("idx");
  enum { N = 7, H = 3, W = 2 };
  uint8_t px[N * H * W], lab[N] = {3, 1, 4, 1, 5, 9, 2}, buf[512];
  for (int i = 0; i < N * H * W; i++) px[i] = (uint8_t)(i * 6);
  uint32_t di[3] = {N, H, W}, dl[1] = {N};
  for (int gz = 0; gz < 2; gz++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "t%d-images-idx3-ubyte%s", gz, gz ? ".gz" : "");
    snprintf(b, sizeof b, "t%d-labels-idx1-ubyte%s", gz, gz ? ".gz" : "");
    put(a, buf, idx_bytes(buf, 8, 3, di, px, sizeof px), gz);
    put(b, buf, idx_bytes(buf, 8, 1, dl, lab, N), gz);
    knobs_data *d = open_ok(P(a));
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == N && in->C == 1 && in->H == H && in->W == W && in->is_image && in->K == 1, "gz %d: info", gz);
    CHECK(in->factor_sizes[0] == 6 && !strcmp(in->factor_names[0], "label"), "6 distinct labels: %d", in->factor_sizes[0]);
    int64_t ii[2] = {5, 2};
    float x[12];
    int32_t f[2];
    CHECK(knobs_data_get(d, ii, 2, x, f) == KNOBS_OK, "get");
    CHECK(fabsf(x[1] - 31 * 6 / 255.f) < 1e-6f && knobs_data_factor_value(d, 0, f[0]) == 9 && knobs_data_factor_value(d, 0, f[1]) == 4,
          "gz %d: pixel %g label %g %g", gz, x[1], knobs_data_factor_value(d, 0, f[0]), knobs_data_factor_value(d, 0, f[1]));
    knobs_data_free(d);
  }
  /* without labels: no factors, said so */
  put("solo-images-idx3-ubyte", buf, idx_bytes(buf, 8, 3, di, px, sizeof px), 0);
  knobs_data *d = open_ok(P("solo-images-idx3-ubyte"));
  CHECK(d && knobs_data_info_get(d)->K == 0 && strstr(knobs_data_info_get(d)->note, "no labels"), "no labels");
  knobs_data_free(d);
  /* a folder with train-images-idx3-ubyte */
  mkdir(P("mn"), 0777);
  put("mn/train-images-idx3-ubyte.gz", buf, idx_bytes(buf, 8, 3, di, px, sizeof px), 1);
  d = open_ok(P("mn"));
  CHECK(d && knobs_data_info_get(d)->n == N, "folder");
  knobs_data_free(d);
  /* bad files */
  size_t n = idx_bytes(buf, 8, 3, di, px, sizeof px);
  put("short-images-idx3-ubyte", buf, n - 5, 0);
  open_fails(P("short-images-idx3-ubyte"), KNOBS_ERR_FORMAT, "short-images-idx3-ubyte", "the file has 53");
  put("long-images-idx3-ubyte", buf, n, 0);
  FILE *fp = fopen(P("long-images-idx3-ubyte"), "ab");
  fputs("xx", fp), fclose(fp);
  open_fails(P("long-images-idx3-ubyte"), KNOBS_ERR_FORMAT, "long-images", "the file has 60");
  put("short-images-idx3-ubyte.gz", buf, n - 5, 1);
  open_fails(P("short-images-idx3-ubyte.gz"), KNOBS_ERR_FORMAT, "short-images-idx3-ubyte.gz", "truncated");
  put("long-images-idx3-ubyte.gz", buf, n + 1, 1);
  open_fails(P("long-images-idx3-ubyte.gz"), KNOBS_ERR_FORMAT, "long-images-idx3-ubyte.gz", "unexpected bytes after");
  /* a gzip stream cut short */
  put("cut.gz", buf, n, 1);
  FILE *g = fopen(P("cut.gz"), "rb");
  uint8_t gzb[512];
  size_t gn = fread(gzb, 1, sizeof gzb, g);
  fclose(g);
  put("cut-images-idx3-ubyte.gz", gzb, gn - 12, 0);
  open_fails(P("cut-images-idx3-ubyte.gz"), KNOBS_ERR_FORMAT, "cut-images-idx3-ubyte.gz", "gzip");
  buf[2] = 0x0D; /* float elements */
  put("f-images-idx3-ubyte", buf, n, 0);
  open_fails(P("f-images-idx3-ubyte"), KNOBS_ERR_UNSUPPORTED, "f-images-idx3-ubyte", "0x0d");
  buf[2] = 8, buf[0] = 1;
  put("m-images-idx3-ubyte", buf, n, 0);
  open_fails(P("m-images-idx3-ubyte"), KNOBS_ERR_FORMAT, "m-images-idx3-ubyte", "not an IDX file");
  put("t0-images-idx3-ubyte", buf, idx_bytes(buf, 8, 3, di, px, sizeof px), 0);
  uint32_t d6[1] = {6};
  put("t0-labels-idx1-ubyte", buf, idx_bytes(buf, 8, 1, d6, lab, 6), 0);
  open_fails(P("t0-images-idx3-ubyte"), KNOBS_ERR_DATA, "t0-labels-idx1-ubyte", "6 labels for 7 images");
  open_fails(P("t0-labels-idx1-ubyte"), KNOBS_ERR_FORMAT, "t0-labels-idx1-ubyte", "labels file");
  uint32_t d0[3] = {0, 2, 2};
  put("z-images-idx3-ubyte", buf, idx_bytes(buf, 8, 3, d0, px, 0), 0);
  open_fails(P("z-images-idx3-ubyte"), KNOBS_ERR_DATA, "z-images-idx3-ubyte", "dimension 0 is 0");
}

static void test_fashion(void) {
  T_CASE("fashion-mnist (Debian package)");
  if (!kn_file_exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    T_SKIP("/usr/share/datasets/fashion-mnist not installed (package dataset-fashion-mnist)");
    return;
  }
  const char *spec[2] = {"fashion-mnist", "fashion-mnist:test"};
  const int64_t want_n[2] = {60000, 10000};
  const double want_mean[2] = {0.2860, 0.2868}; /* the published per-pixel means */
  for (int s = 0; s < 2; s++) {
    knobs_data *d = open_ok(spec[s]);
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == want_n[s] && in->C == 1 && in->H == 28 && in->W == 28 && in->K == 1 && in->factor_sizes[0] == 10, "%s info",
          spec[s]);
    int64_t count[10] = {0}, idx[1000];
    float *x = malloc(sizeof(float) * 784 * 1000);
    int32_t f[1000], first = -1;
    double sum = 0;
    for (int64_t i = 0; i < in->n && x; i += 1000) {
      for (int j = 0; j < 1000; j++) idx[j] = i + j;
      if (knobs_data_get(d, idx, 1000, x, f)) break;
      if (i == 0) first = f[0];
      for (int j = 0; j < 1000; j++) count[f[j]]++;
      for (int j = 0; j < 784 * 1000; j++) sum += x[j];
    }
    int even = 1;
    for (int c = 0; c < 10; c++) even &= count[c] == in->n / 10;
    CHECK(even, "%s: classes are not %lld each (class 0: %lld)", spec[s], (long long)in->n / 10, (long long)count[0]);
    CHECK(first == 9, "%s: the first label is %d, want 9 (ankle boot)", spec[s], first);
    double mean = sum / (784.0 * (double)in->n);
    CHECK(fabs(mean - want_mean[s]) < 0.002, "%s: mean pixel %.4f, want %.4f", spec[s], mean, want_mean[s]);
    free(x);
    knobs_data_free(d);
  }
}

/* ---- SmallNORB ----------------------------------------------------------------------------- */

static void put_mat(const char *name, uint32_t magic, int nd, const int32_t *dims, const void *data, size_t n, int gz) {
  size_t hl = 8 + 4 * (size_t)(nd < 3 ? 3 : nd);
  uint8_t *b = malloc(hl + n);
  int32_t h[6] = {(int32_t)magic, nd, 1, 1, 1, 1};
  for (int i = 0; i < nd; i++) h[2 + i] = dims[i];
  memcpy(b, h, hl); /* little-endian host */
  memcpy(b + hl, data, n);
  put(name, b, hl + n, gz);
  free(b);
}

/* one split of `n` records: category c = r % 5, azimuth 2 * (r / 5 % 2) (stored 0 or 2),
 * instance `inst`; image: camera 0 constant `base + r`, camera 1 constant 255 - that */
static void norb_split(const char *prefix, int n, int inst, int base, int gz, const int *order) {
  uint8_t *dat = malloc((size_t)n * 2 * 96 * 96);
  int32_t *cat = malloc(sizeof(int32_t) * (size_t)n), *info = malloc(sizeof(int32_t) * (size_t)n * 4);
  for (int i = 0; i < n; i++) {
    int r = order[i];
    memset(dat + (size_t)i * 2 * 9216, base + r, 9216);
    memset(dat + (size_t)i * 2 * 9216 + 9216, 255 - base - r, 9216);
    cat[i] = r % 5;
    info[i * 4] = inst, info[i * 4 + 1] = 3, info[i * 4 + 2] = 2 * (r / 5 % 2), info[i * 4 + 3] = 1;
  }
  char name[128];
  int32_t dd[4] = {n, 2, 96, 96}, dc[1] = {n}, dn[2] = {n, 4};
  snprintf(name, sizeof name, "%s-dat.mat%s", prefix, gz ? ".gz" : "");
  put_mat(name, 0x1E3D4C55, 4, dd, dat, (size_t)n * 2 * 9216, gz);
  snprintf(name, sizeof name, "%s-cat.mat%s", prefix, gz ? ".gz" : "");
  put_mat(name, 0x1E3D4C54, 1, dc, cat, sizeof(int32_t) * (size_t)n, gz);
  snprintf(name, sizeof name, "%s-info.mat%s", prefix, gz ? ".gz" : "");
  put_mat(name, 0x1E3D4C54, 2, dn, info, sizeof(int32_t) * (size_t)n * 4, gz);
  free(dat), free(cat), free(info);
}

static void test_norb(void) {
  T_CASE("smallnorb");
  int order[10] = {7, 2, 9, 0, 4, 1, 8, 3, 6, 5};
  for (int gz = 0; gz < 2; gz++) {
    const char *sub = gz ? "norbgz" : "norb";
    char pre[64];
    mkdir(P(sub), 0777);
    snprintf(pre, sizeof pre, "%s/smallnorb-5x46789x9x18x6x2x96x96-training", sub);
    norb_split(pre, 10, 4, 10, gz, order);
    snprintf(pre, sizeof pre, "%s/smallnorb-5x01235x9x18x6x2x96x96-testing", sub);
    norb_split(pre, 10, 0, 100, gz, order);
    knobs_data *d = open_ok(P(sub));
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    /* elevation and lighting are constant here: dropped; category 5 x instance 2 x azimuth 2 */
    CHECK(in->n == 20 && in->C == 1 && in->H == 64 && in->W == 64 && in->K == 3 && in->has_render, "info n %lld K %d render %d",
          (long long)in->n, in->K, in->has_render);
    CHECK(!strcmp(in->factor_names[0], "category") && !strcmp(in->factor_names[1], "instance") &&
              !strcmp(in->factor_names[2], "azimuth") && strstr(in->note, "'elevation' is constant"), "names / note '%s'", in->note);
    CHECK(knobs_data_factor_value(d, 2, 1) == 20, "azimuth stored 2 is 20 degrees: %g", knobs_data_factor_value(d, 2, 1));
    /* render (category 3, instance 4 = class 1, azimuth class 1): record r = 3 + 5 of training */
    int32_t f[3] = {3, 1, 1};
    float x[4096];
    CHECK(knobs_data_render(d, f, 1, x) == KNOBS_OK, "render");
    CHECK(fabsf(x[0] - 18 / 255.f) < 1e-6f && fabsf(x[4095] - 18 / 255.f) < 1e-6f, "camera 0, record 8: %g", x[0] * 255);
    f[1] = 0; /* instance 0: testing */
    knobs_data_render(d, f, 1, x);
    CHECK(fabsf(x[100] - 108 / 255.f) < 1e-6f, "testing record: %g", x[100] * 255);
    knobs_data_free(d);
  }
  /* the 96 -> 64 area resize: one bright input column x = 1 -> output columns 0 and 1 at 1/3 */
  uint8_t *dat = calloc(2 * 9216, 1);
  for (int y = 0; y < 96; y++) dat[y * 96 + 1] = 255, dat[y * 96 + 60] = 150, dat[y * 96 + 61] = 150;
  int32_t dd[4] = {1, 2, 96, 96}, dc[1] = {1}, dn[2] = {1, 4}, cat[1] = {2}, info[4] = {1, 2, 4, 3};
  mkdir(P("rs"), 0777);
  put_mat("rs/x-dat.mat", 0x1E3D4C55, 4, dd, dat, 2 * 9216, 0);
  put_mat("rs/x-cat.mat", 0x1E3D4C54, 1, dc, cat, 4, 0);
  put_mat("rs/x-info.mat", 0x1E3D4C54, 2, dn, info, 16, 0);
  knobs_data *d = open_ok(P("rs/x-dat.mat"));
  if (d) {
    float x[4096];
    int64_t i0 = 0;
    knobs_data_get(d, &i0, 1, x, NULL);
    /* columns 60, 61 -> output 40 covers [60, 61.5): (150 + 75) / 1.5 = 150 */
    CHECK(fabsf(x[10 * 64] - 85 / 255.f) < 1e-6f && fabsf(x[10 * 64 + 1] - 85 / 255.f) < 1e-6f && x[10 * 64 + 2] == 0 &&
              fabsf(x[10 * 64 + 40] - 150 / 255.f) < 1e-6f, "resize: %g %g %g %g", x[640] * 255, x[641] * 255, x[642] * 255,
          x[680] * 255);
    CHECK(strstr(knobs_data_info_get(d)->note, "one split only"), "note '%s'", knobs_data_info_get(d)->note);
    knobs_data_free(d);
  }
  /* bad files, each named */
  put_mat("rs/y-dat.mat", 0x1E3D4C55, 4, dd, dat, 9216, 0); /* one camera short */
  put_mat("rs/y-cat.mat", 0x1E3D4C54, 1, dc, cat, 4, 0);
  put_mat("rs/y-info.mat", 0x1E3D4C54, 2, dn, info, 16, 0);
  open_fails(P("rs/y-dat.mat"), KNOBS_ERR_FORMAT, "y-dat.mat", "truncated");
  put_mat("rs/z-dat.mat", 0x1E3D4C54, 4, dd, dat, 2 * 9216, 0); /* int32 magic for bytes */
  put_mat("rs/z-cat.mat", 0x1E3D4C54, 1, dc, cat, 4, 0);
  put_mat("rs/z-info.mat", 0x1E3D4C54, 2, dn, info, 16, 0);
  open_fails(P("rs/z-dat.mat"), KNOBS_ERR_FORMAT, "z-dat.mat", "expected bytes");
  put_mat("rs/w-dat.mat", 0x1E3D4C55, 4, dd, dat, 2 * 9216, 0);
  open_fails(P("rs/w-dat.mat"), KNOBS_ERR_IO, "w-dat.mat", "-cat.mat and -info.mat");
  int32_t bad[4] = {1, 2, 35, 3}; /* azimuth 35 is not stored by NORB */
  put_mat("rs/v-dat.mat", 0x1E3D4C55, 4, dd, dat, 2 * 9216, 0);
  put_mat("rs/v-cat.mat", 0x1E3D4C54, 1, dc, cat, 4, 0);
  put_mat("rs/v-info.mat", 0x1E3D4C54, 2, dn, bad, 16, 0);
  open_fails(P("rs/v-dat.mat"), KNOBS_ERR_FORMAT, "v-info.mat", "azimuth 35");
  int32_t d2[1] = {2};
  put_mat("rs/u-dat.mat", 0x1E3D4C55, 4, dd, dat, 2 * 9216, 0);
  put_mat("rs/u-cat.mat", 0x1E3D4C54, 1, d2, cat, 4, 0); /* says 2 categories, holds 1 */
  put_mat("rs/u-info.mat", 0x1E3D4C54, 2, dn, info, 16, 0);
  open_fails(P("rs/u-dat.mat"), KNOBS_ERR_FORMAT, "u-cat.mat", "2 categories for 1 images");
  put("rs/t-dat.mat", "\x55\x4c\x3d\x1e\x04\0\0\0\x01\0", 10, 0);
  put_mat("rs/t-cat.mat", 0x1E3D4C54, 1, dc, cat, 4, 0);
  put_mat("rs/t-info.mat", 0x1E3D4C54, 2, dn, info, 16, 0);
  open_fails(P("rs/t-dat.mat"), KNOBS_ERR_FORMAT, "t-dat.mat", "truncated");
  free(dat);
}

/* ---- HDF5 / 3D Shapes ------------------------------------------------------------------------ */

enum { CONTIG, CHUNK_WHOLE, CHUNK_TILES };

/* images (N,H,W,C) uint8 with a layout, labels (N,K) float64 if K > 0; rows written = all if
 * `rows` is NULL, else only the listed rows of `px` (one image each) */
static int make_h5(const char *path, hsize_t N, int H, int W, int C, int layout, const uint8_t *px, const double *labels, int K,
                   const int64_t *rows, int nrows) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[4] = {N, (hsize_t)H, (hsize_t)W, (hsize_t)C};
  hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (layout == CONTIG) {
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
  } else {
    hsize_t cd[4] = {layout == CHUNK_WHOLE ? 2 : 3, layout == CHUNK_WHOLE ? (hsize_t)H : 2, layout == CHUNK_WHOLE ? (hsize_t)W : 2,
                     layout == CHUNK_WHOLE ? (hsize_t)C : 1};
    H5Pset_chunk(dcpl, 4, cd);
    if (layout == CHUNK_TILES) H5Pset_deflate(dcpl, 4);
  }
  hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  herr_t rc = ds < 0 ? -1 : 0;
  if (!rows && rc >= 0) rc = H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, px);
  for (int i = 0; rows && i < nrows && rc >= 0; i++) {
    hsize_t start[4] = {(hsize_t)rows[i], 0, 0, 0}, cnt[4] = {1, (hsize_t)H, (hsize_t)W, (hsize_t)C};
    hid_t ms = H5Screate_simple(4, cnt, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL);
    rc = H5Dwrite(ds, H5T_NATIVE_UCHAR, ms, sp, H5P_DEFAULT, px + (size_t)i * H * W * C);
    H5Sclose(ms);
  }
  if (K > 0 && rc >= 0) {
    hsize_t ld[2] = {N, (hsize_t)K};
    hid_t ls = H5Screate_simple(2, ld, NULL);
    hid_t l = H5Dcreate2(f, "labels", H5T_IEEE_F64LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc = H5Dwrite(l, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
    H5Dclose(l), H5Sclose(ls);
  }
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
  CHECK(rc >= 0, "writing %s failed", path);
  return rc >= 0;
}

static void test_h5(void) {
  T_CASE("hdf5");
  /* 12 images of 5x4x3, labels a shuffled 3 x 4 grid */
  enum { N = 12, H = 5, W = 4, C = 3 };
  uint8_t px[N * H * W * C];
  double lab[N * 2];
  for (int r = 0; r < N; r++) {
    int g = (r * 7 + 2) % N;
    lab[r * 2] = 0.5 * (g / 4), lab[r * 2 + 1] = g % 4;
    for (int p = 0; p < H * W * C; p++) px[r * H * W * C + p] = (uint8_t)(r * 17 + p);
  }
  const char *files[3] = {"c.h5", "w.h5", "t.h5"};
  float ref[N * C * H * W];
  for (int l = 0; l < 3; l++) {
    if (!make_h5(P(files[l]), N, H, W, C, l, px, lab, 2, NULL, 0)) continue;
    knobs_data *d = open_ok(P(files[l]));
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == N && in->C == C && in->H == H && in->W == W && in->K == 2 && in->factor_sizes[0] == 3 && in->factor_sizes[1] == 4 &&
              in->has_render, "%s: info", files[l]);
    /* every grid cell renders the row that holds it, whatever the layout */
    float x[N * C * H * W];
    int ok = 1;
    for (int r = 0; r < N; r++) {
      int32_t f[2] = {(int32_t)(lab[r * 2] * 2), (int32_t)lab[r * 2 + 1]};
      knobs_status s = knobs_data_render(d, f, 1, x + r * C * H * W);
      ok &= s == KNOBS_OK;
      /* channel 1, pixel (y 2, x 3) of row r: stored at ((2 * W + 3) * C + 1) */
      ok &= fabsf(x[r * C * H * W + (1 * H + 2) * W + 3] - (uint8_t)(r * 17 + (2 * W + 3) * C + 1) / 255.f) < 1e-6f;
    }
    CHECK(ok, "%s: rendered rows are wrong", files[l]);
    if (l == 0) memcpy(ref, x, sizeof ref);
    else CHECK(!memcmp(ref, x, sizeof ref), "%s differs from the contiguous file", files[l]);
    knobs_data_free(d);
  }
  /* bad files */
  put("not.h5", "just text, not HDF5", 19, 0);
  open_fails(P("not.h5"), KNOBS_ERR_FORMAT, "not.h5", "not an HDF5 file");
  FILE *f = fopen(P("c.h5"), "rb");
  static uint8_t buf[1 << 16];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  put("trunc.h5", buf, n / 2, 0);
  knobs_status s;
  knobs_data *d = try_open(P("trunc.h5"), &s);
  CHECK(!d && s == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "trunc.h5"), "truncated: %s %s", knobs_status_name(s),
        knobs_last_error());
  put("trunc2.h5", buf, n - 64, 0);
  d = try_open(P("trunc2.h5"), &s);
  CHECK(!d && s != KNOBS_OK && strstr(knobs_last_error(), "trunc2.h5"), "truncated end: %s %s", knobs_status_name(s),
        knobs_last_error());
  hid_t h = H5Fcreate(P("none.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(h);
  open_fails(P("none.h5"), KNOBS_ERR_FORMAT, "none.h5", "no dataset 'images'");
  /* float images */
  h = H5Fcreate(P("float.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[3] = {2, 2, 2};
  hid_t sp = H5Screate_simple(3, dims, NULL), ds = H5Dcreate2(h, "images", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds), H5Sclose(sp), H5Fclose(h);
  open_fails(P("float.h5"), KNOBS_ERR_FORMAT, "float.h5", "must be uint8");
  /* labels of the wrong length */
  make_h5(P("lab.h5"), N, H, W, C, CONTIG, px, lab, 2, NULL, 0);
  h = H5Fopen(P("lab.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(h, "labels", H5P_DEFAULT);
  hsize_t ld[2] = {5, 2};
  sp = H5Screate_simple(2, ld, NULL);
  ds = H5Dcreate2(h, "labels", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
  H5Dclose(ds), H5Sclose(sp), H5Fclose(h);
  open_fails(P("lab.h5"), KNOBS_ERR_FORMAT, "lab.h5", "'labels' has 5 rows but 'images' has 12");
}

/* full-size 3D Shapes as a sparse file: 480000 images (5.9 GB apparent, a few written) and the
 * labels grid of the real file (orientation fastest) */
static void test_3dshapes(void) {
  T_CASE("3dshapes.h5 full size");
  const int64_t N = 480000;
  static const double scale8[8] = {0.75, 0.82142857, 0.89285714, 0.96428571, 1.03571429, 1.10714286, 1.17857143, 1.25};
  double *lab = malloc(sizeof(double) * (size_t)N * 6);
  int64_t rows[3] = {0, 123457, 479999};
  uint8_t *px = malloc(3 * 64 * 64 * 3);
  if (!lab || !px) return;
  for (int64_t i = 0; i < N; i++) {
    int64_t r = i;
    int o = (int)(r % 15), sh;
    r /= 15, sh = (int)(r % 4), r /= 4;
    int sc = (int)(r % 8);
    r /= 8;
    int oh = (int)(r % 10), wh = (int)(r / 10 % 10), fh = (int)(r / 100);
    double *v = lab + i * 6;
    v[0] = fh / 10.0, v[1] = wh / 10.0, v[2] = oh / 10.0, v[3] = scale8[sc], v[4] = sh, v[5] = -30 + 60.0 * o / 14;
  }
  for (int k = 0; k < 3; k++)
    for (int p = 0; p < 64 * 64 * 3; p++) px[k * 12288 + p] = (uint8_t)(k * 80 + p % 7 + 1);
  int made = make_h5(P("3dshapes.h5"), (hsize_t)N, 64, 64, 3, CONTIG, px, lab, 6, rows, 3);
  free(lab);
  knobs_data *d = made ? open_ok(P("3dshapes.h5")) : NULL;
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    const int sizes[6] = {10, 10, 10, 8, 4, 15};
    int ok = in->K == 6 && in->n == N && in->has_render;
    for (int k = 0; ok && k < 6; k++) ok = in->factor_sizes[k] == sizes[k];
    CHECK(ok && !strcmp(in->factor_names[0], "floor_hue") && !strcmp(in->factor_names[5], "orientation"), "3D Shapes factors");
    CHECK(fabs(knobs_data_factor_value(d, 5, 14) - 30) < 1e-9 && fabs(knobs_data_factor_value(d, 3, 0) - 0.75) < 1e-9, "values");
    float *x = malloc(sizeof(float) * 3 * 12288);
    int32_t f[18];
    CHECK(knobs_data_get(d, rows, 3, x, f) == KNOBS_OK, "get: %s", knobs_last_error());
    /* row 123457 = ((((fh*10 + wh)*10 + oh)*8 + sc)*4 + sh)*15 + o */
    int64_t g = ((((int64_t)f[6] * 10 + f[7]) * 10 + f[8]) * 8 + f[9]) * 4 * 15 + f[10] * 15 + f[11];
    CHECK(g == 123457 && f[12] == 9 && f[17] == 14, "factors of row 123457: index %lld", (long long)g);
    CHECK(fabsf(x[12288 + 0] - 81 / 255.f) < 1e-6f && fabsf(x[2 * 12288 + 4096 + 1] - (160 + (3 * 1 + 1) % 7 + 1) / 255.f) < 1e-6f,
          "pixels of the written rows: %g", x[12288] * 255);
    free(x);
    knobs_data_free(d);
  }
  free(px);
  unlink(P("3dshapes.h5"));
}

/* ---- MPI3D: a ZIP64 .npz with a stored 5.7 GB member, sparse ---------------------------------- */

static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff), wr16(p + 2, v >> 16); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v), wr32(p + 4, (uint32_t)(v >> 32)); }

static int make_mpi3d(const char *path, int64_t N, const int64_t *rows, int nrows, const uint8_t *px) {
  knobs_array hdr = {KNOBS_U8, 4, {N, 64, 64, 3}, NULL};
  char npy[320];
  size_t hl = kn_npy_header_bytes(&hdr, npy);
  uint64_t usize = hl + (uint64_t)N * 12288;
  const char *name = "images.npy";
  size_t nl = strlen(name);
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return 0;
  uint8_t lh[30 + 10 + 20] = {0};
  wr32(lh, 0x04034b50), wr16(lh + 4, 45), wr32(lh + 18, 0xffffffff), wr32(lh + 22, 0xffffffff), wr16(lh + 26, (uint32_t)nl);
  wr16(lh + 28, 20);
  memcpy(lh + 30, name, nl);
  wr16(lh + 40, 1), wr16(lh + 42, 16), wr64(lh + 44, usize), wr64(lh + 52, usize);
  uint64_t data = sizeof lh, off = data + usize;
  int ok = pwrite(fd, lh, sizeof lh, 0) == (ssize_t)sizeof lh && pwrite(fd, npy, hl, (off_t)data) == (ssize_t)hl;
  for (int i = 0; i < nrows && ok; i++)
    ok = pwrite(fd, px + (size_t)i * 12288, 12288, (off_t)(data + hl + (uint64_t)rows[i] * 12288)) == 12288;
  uint8_t cd[46 + 10 + 20] = {0}, z64[56] = {0}, loc[20] = {0}, e[22] = {0};
  wr32(cd, 0x02014b50), wr16(cd + 4, 45), wr16(cd + 6, 45), wr32(cd + 20, 0xffffffff), wr32(cd + 24, 0xffffffff);
  wr16(cd + 28, (uint32_t)nl), wr16(cd + 30, 20);
  memcpy(cd + 46, name, nl);
  wr16(cd + 56, 1), wr16(cd + 58, 16), wr64(cd + 60, usize), wr64(cd + 68, usize);
  wr32(z64, 0x06064b50), wr64(z64 + 4, 44), wr16(z64 + 12, 45), wr16(z64 + 14, 45), wr64(z64 + 24, 1), wr64(z64 + 32, 1);
  wr64(z64 + 40, sizeof cd), wr64(z64 + 48, off);
  wr32(loc, 0x07064b50), wr64(loc + 8, off + sizeof cd), wr32(loc + 16, 1);
  wr32(e, 0x06054b50), wr16(e + 8, 0xffff), wr16(e + 10, 0xffff), wr32(e + 12, 0xffffffff), wr32(e + 16, 0xffffffff);
  ok = ok && pwrite(fd, cd, sizeof cd, (off_t)off) == (ssize_t)sizeof cd &&
       pwrite(fd, z64, sizeof z64, (off_t)(off + sizeof cd)) == (ssize_t)sizeof z64 &&
       pwrite(fd, loc, sizeof loc, (off_t)(off + sizeof cd + 56)) == (ssize_t)sizeof loc &&
       pwrite(fd, e, sizeof e, (off_t)(off + sizeof cd + 76)) == (ssize_t)sizeof e;
  close(fd);
  return ok;
}

static void test_mpi3d(void) {
  T_CASE("mpi3d full size");
  int64_t rows[3] = {0, 200001, 460799};
  uint8_t *px = malloc(3 * 12288);
  for (int k = 0; k < 3; k++)
    for (int p = 0; p < 12288; p++) px[k * 12288 + p] = (uint8_t)(k * 50 + p % 3 + 1); /* R, G, B = k*50 + 1, 2, 3 */
  CHECK(make_mpi3d(P("mpi3d_toy.npz"), 460800, rows, 3, px), "write the sparse npz");
  knobs_data *d = open_ok(P("mpi3d_toy.npz"));
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    const int sizes[7] = {4, 4, 2, 3, 3, 40, 40};
    int ok = in->K == 7 && in->n == 460800 && in->C == 3 && in->H == 64 && in->has_render;
    for (int k = 0; ok && k < 7; k++) ok = in->factor_sizes[k] == sizes[k];
    CHECK(ok && !strcmp(in->factor_names[6], "vertical_axis"), "MPI3D factors");
    float *x = malloc(sizeof(float) * 3 * 12288), *y = malloc(sizeof(float) * 12288);
    int32_t f[21];
    CHECK(knobs_data_get(d, rows, 3, x, f) == KNOBS_OK, "get: %s", knobs_last_error());
    /* (N,64,64,3) -> (3,64,64): channel c of row k is k*50 + c + 1 everywhere */
    CHECK(fabsf(x[12288 + 0] - 51 / 255.f) < 1e-6f && fabsf(x[12288 + 4096 * 2 + 77] - 53 / 255.f) < 1e-6f, "pixels %g %g",
          x[12288] * 255, x[12288 + 8192 + 77] * 255);
    CHECK(f[14] == 3 && f[15] == 3 && f[16] == 1 && f[17] == 2 && f[20] == 39, "factors of the last image");
    CHECK(knobs_data_render(d, f + 7, 1, y) == KNOBS_OK && !memcmp(y, x + 12288, sizeof(float) * 12288), "render != get");
    free(x), free(y);
    knobs_data_free(d);
  }
  CHECK(make_mpi3d(P("mpi3d_odd.npz"), 1000, rows, 1, px), "write");
  open_fails(P("mpi3d_odd.npz"), KNOBS_ERR_FORMAT, "mpi3d_odd.npz", "MPI3D has 460800");
  /* cut the file: the archive's directory is gone */
  CHECK(truncate(P("mpi3d_toy.npz"), 5000000000LL) == 0, "truncate");
  open_fails(P("mpi3d_toy.npz"), KNOBS_ERR_FORMAT, "mpi3d_toy.npz", "zip");
  free(px);
  unlink(P("mpi3d_toy.npz")), unlink(P("mpi3d_odd.npz"));
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/knobs-dfmt-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_idx();
  test_fashion();
  test_norb();
  test_h5();
  test_3dshapes();
  test_mpi3d();
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return t_done();
}
