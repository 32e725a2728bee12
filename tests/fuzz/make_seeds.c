/* make_seeds.c: valid starting inputs for the fuzz targets, written with knobs' own writers
 * (and HDF5's) so that the fuzzer starts from files that parse and mutates into the corners.
 * Usage: make_seeds DIR  -> DIR/fuzz_<target>/seed-<n>. Built and run by tests/fuzz/build.sh. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/io.h"
#include "knobs.h"

static char out[512];
static int nseed;

static const char *seed_path(const char *target) {
  static char p[700];
  snprintf(p, sizeof p, "%s/%s", out, target);
  mkdir(p, 0777);
  snprintf(p, sizeof p, "%s/%s/seed-%d", out, target, nseed++);
  return p;
}

static void seed_bytes(const char *target, const void *data, size_t n) {
  FILE *f = fopen(seed_path(target), "wb");
  if (!f || fwrite(data, 1, n, f) != n) {
    fprintf(stderr, "make_seeds: cannot write a %s seed\n", target);
    exit(1);
  }
  fclose(f);
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap, f) : 0;
  if (f) fclose(f);
  return n;
}

static size_t gz_bytes(const uint8_t *in, size_t n, uint8_t *buf, size_t cap) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/tmp.gz", out);
  gzFile g = gzopen(tmp, "wb");
  gzwrite(g, in, (unsigned)n);
  gzclose(g);
  size_t k = slurp(tmp, buf, cap);
  remove(tmp);
  return k;
}

/* parts joined as fz_split reads them: a 2-byte length before each part but the last */
static void seed_parts(const char *target, int parts, const uint8_t **p, const size_t *n) {
  static uint8_t buf[1 << 20];
  size_t k = 0;
  for (int i = 0; i < parts; i++) {
    if (i < parts - 1) buf[k++] = (uint8_t)n[i], buf[k++] = (uint8_t)(n[i] >> 8);
    memcpy(buf + k, p[i], n[i]);
    k += n[i];
  }
  seed_bytes(target, buf, k);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 1;
  }
  snprintf(out, sizeof out, "%s", argv[1]);
  mkdir(out, 0777);
  static uint8_t buf[1 << 20], buf2[1 << 16];
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/tmp.bin", out);

  /* npy: several dtypes and layouts */
  knobs_array a;
  int64_t s3[3] = {3, 4, 5}, s2[2] = {4, 3}, s1[1] = {6};
  const knobs_dtype types[4] = {KNOBS_U8, KNOBS_F32, KNOBS_I64, KNOBS_BOOL};
  for (int t = 0; t < 4; t++) {
    knobs_array_alloc(&a, types[t], t == 0 ? 3 : t == 3 ? 1 : 2, t == 0 ? s3 : t == 3 ? s1 : s2);
    for (int64_t i = 0; i < knobs_array_count(&a) * (int64_t)knobs_dtype_size(types[t]); i++) ((uint8_t *)a.data)[i] = (uint8_t)(i * 37);
    if (types[t] == KNOBS_BOOL)
      for (int64_t i = 0; i < 6; i++) ((uint8_t *)a.data)[i] &= 1;
    knobs_npy_write(tmp, &a);
    seed_bytes("fuzz_npy", buf, slurp(tmp, buf, sizeof buf));
    knobs_array_free(&a);
  }
  static const char fort[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
  memcpy(buf, fort, sizeof fort - 1);
  memset(buf + sizeof fort - 1, ' ', 10 + 0x76 - (sizeof fort - 1));
  buf[10 + 0x76 - 1] = '\n';
  memset(buf + 10 + 0x76, 7, 12);
  seed_bytes("fuzz_npy", buf, 10 + 0x76 + 12);

  /* npz: stored and deflated, images and labels */
  knobs_array arr[2];
  int64_t si[3] = {4, 3, 3}, sl[1] = {4};
  knobs_array_alloc(&arr[0], KNOBS_U8, 3, si);
  knobs_array_alloc(&arr[1], KNOBS_I32, 1, sl);
  for (int i = 0; i < 36; i++) ((uint8_t *)arr[0].data)[i] = (uint8_t)(i * 7);
  for (int i = 0; i < 4; i++) ((int32_t *)arr[1].data)[i] = i % 2;
  const char *names[2] = {"images", "labels"};
  for (int c = 0; c < 2; c++) {
    knobs_npz_write(tmp, names, arr, 2, c);
    seed_bytes("fuzz_npz", buf, slurp(tmp, buf, sizeof buf));
  }
  knobs_array_free(&arr[0]), knobs_array_free(&arr[1]);

  /* safetensors */
  float w[6] = {1, 2, 3, 4, 5, 6};
  int64_t b8[2] = {8, 9};
  kn_st_entry e[2] = {{"w", KNOBS_F32, 2, {2, 3}, w}, {"b", KNOBS_I64, 1, {2}, b8}};
  kn_st_write(tmp, e, 2, "{\"model\":\"betavae\"}");
  seed_bytes("fuzz_safetensors", buf, slurp(tmp, buf, sizeof buf));

  /* png: gray, RGB, RGBA */
  uint8_t px[4 * 3 * 4];
  for (int i = 0; i < 48; i++) px[i] = (uint8_t)(i * 5);
  for (int c = 1; c <= 4; c += c == 1 ? 2 : 1) {
    char p[700];
    snprintf(p, sizeof p, "%s/tmp.png", out);
    knobs_png_write(p, px, 4, 3, c);
    seed_bytes("fuzz_png", buf, slurp(p, buf, sizeof buf));
    remove(p);
  }

  /* csv */
  const char *tables[] = {"a,b,c\n1,2,3\n4,5,6\n1,5,3\n4,2,6\n", "x\ty\n0.5\t-1e3\n2\t3\n", "\"q\";\"r\"\n1;2\n# c\n\n3;4\r\n",
                          "1,2\n3,4\n"};
  for (int i = 0; i < 4; i++) seed_bytes("fuzz_csv", tables[i], strlen(tables[i]));

  /* idx: images + labels, plain and gzip */
  uint8_t idx[16 + 2 * 3 * 3], lab[8 + 2];
  memcpy(idx, "\0\0\x08\x03\0\0\0\x02\0\0\0\x03\0\0\0\x03", 16);
  for (int i = 0; i < 18; i++) idx[16 + i] = (uint8_t)(i * 13);
  memcpy(lab, "\0\0\x08\x01\0\0\0\x02\x07\x01", 10);
  for (int gz = 0; gz < 2; gz++) {
    const uint8_t *p[2] = {idx, lab};
    size_t n[2] = {sizeof idx, sizeof lab};
    if (gz) {
      n[0] = gz_bytes(idx, sizeof idx, buf2, sizeof buf2 / 2);
      n[1] = gz_bytes(lab, sizeof lab, buf2 + sizeof buf2 / 2, sizeof buf2 / 2);
      p[0] = buf2, p[1] = buf2 + sizeof buf2 / 2;
    }
    seed_parts("fuzz_idx", 2, p, n);
  }

  /* norb: 2 records of 2 x 4 x 4 (not resized), categories, info */
  static uint8_t dat[24 + 2 * 2 * 16];
  int32_t dh[6] = {0x1E3D4C55, 4, 2, 2, 4, 4}, ch[5] = {0x1E3D4C54, 1, 2, 1, 1}, ih[5] = {0x1E3D4C54, 2, 2, 4, 1};
  memcpy(dat, dh, 24);
  for (int i = 0; i < 64; i++) dat[24 + i] = (uint8_t)(i * 3);
  int32_t cat[5 + 2], info[5 + 8];
  memcpy(cat, ch, 20), cat[5] = 1, cat[6] = 4;
  memcpy(info, ih, 20);
  int32_t iv[8] = {4, 0, 0, 1, 6, 8, 34, 5};
  memcpy(info + 5, iv, 32);
  const uint8_t *np[3] = {dat, (const uint8_t *)cat, (const uint8_t *)info};
  size_t nn[3] = {sizeof dat, sizeof cat, sizeof info};
  seed_parts("fuzz_norb", 3, np, nn);

  /* hdf5: images + labels, contiguous and chunked with gzip */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  for (int chunked = 0; chunked < 2; chunked++) {
    char p[700];
    snprintf(p, sizeof p, "%s/tmp.h5", out);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {4, 3, 3, 1}, cd[4] = {1, 3, 3, 1}, ld[2] = {4, 2};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) H5Pset_chunk(dcpl, 4, cd), H5Pset_deflate(dcpl, 1);
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    uint8_t im[36];
    for (int i = 0; i < 36; i++) im[i] = (uint8_t)(i * 7);
    H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, im);
    hid_t ls = H5Screate_simple(2, ld, NULL), l = H5Dcreate2(f, "labels", H5T_IEEE_F64LE, ls, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double lv[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    H5Dwrite(l, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lv);
    H5Dclose(l), H5Sclose(ls), H5Dclose(ds), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
    seed_bytes("fuzz_h5", buf, slurp(p, buf, sizeof buf));
    remove(p);
  }
  remove(tmp);
  printf("make_seeds: %d seeds in %s\n", nseed, out);
  return 0;
}
