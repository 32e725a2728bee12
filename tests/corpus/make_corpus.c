/* make_corpus.c: writes the committed corpus of bad files in tests/corpus (replayed by
 * tests/test_data_corpus.c against tests/corpus/MANIFEST). Not part of the build: the files are
 * committed; rerun this only to change them, from the repository root:
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -I/usr/include/hdf5/serial tests/corpus/make_corpus.c \
 *      BUILD/libknobs.a -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lpng -lz \
 *      -lcjson -lm -pthread -o /tmp/make_corpus && /tmp/make_corpus tests/corpus
 * Files found by the fuzzers (h5/segv.h5, h5/leak.h5, norb/oom-*.mat, safetensors/dupmeta.safetensors)
 * are copied in by hand, not written here. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/io.h"
#include "knobs.h"

static char root[512];

static const char *P(const char *name) {
  static char buf[4][700];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
  return buf[k];
}

static void put(const char *name, const void *data, size_t n) {
  FILE *f = fopen(P(name), "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n)) {
    fprintf(stderr, "make_corpus: cannot write %s\n", name);
    exit(1);
  }
  fclose(f);
}
static void puts_(const char *name, const char *text) { put(name, text, strlen(text)); }

static size_t slurp(const char *path, uint8_t *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(buf, 1, cap, f) : 0;
  if (f) fclose(f);
  return n;
}

static void put_gz(const char *name, const void *data, size_t n) {
  gzFile g = gzopen(P(name), "wb");
  gzwrite(g, data, (unsigned)n);
  gzclose(g);
}

/* a .npy with a hand-written header dictionary (version 1) and payload */
static void npy(const char *name, const char *dict, const void *data, size_t n) {
  uint8_t b[4096];
  size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64, hl = dl + pad + 1;
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (uint8_t)hl, b[9] = (uint8_t)(hl >> 8);
  memcpy(b + 10, dict, dl);
  memset(b + 10 + dl, ' ', pad);
  b[10 + dl + pad] = '\n';
  memcpy(b + 10 + hl, data, n);
  put(name, b, 10 + hl + n);
}

static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff), wr16(p + 2, v >> 16); }

/* a one-member zip with the given method, flags, sizes and data, sizes as claimed */
static void zip1(const char *name, const char *member, int method, int flags, uint32_t csize, uint32_t usize,
                 const void *data, size_t n, uint32_t cd_off_delta) {
  uint8_t b[8192];
  size_t nl = strlen(member), k = 0;
  memset(b, 0, sizeof b);
  wr32(b, 0x04034b50), wr16(b + 4, 20), wr16(b + 6, (uint32_t)flags), wr16(b + 8, (uint32_t)method);
  wr32(b + 18, csize), wr32(b + 22, usize), wr16(b + 26, (uint32_t)nl);
  memcpy(b + 30, member, nl);
  k = 30 + nl;
  memcpy(b + k, data, n);
  k += n;
  size_t cd = k;
  wr32(b + k, 0x02014b50), wr16(b + k + 4, 20), wr16(b + k + 6, 20), wr16(b + k + 8, (uint32_t)flags);
  wr16(b + k + 10, (uint32_t)method), wr32(b + k + 20, csize), wr32(b + k + 24, usize), wr16(b + k + 28, (uint32_t)nl);
  memcpy(b + k + 46, member, nl);
  k += 46 + nl;
  wr32(b + k, 0x06054b50), wr16(b + k + 8, 1), wr16(b + k + 10, 1), wr32(b + k + 12, (uint32_t)(46 + nl));
  wr32(b + k + 16, (uint32_t)cd + cd_off_delta);
  k += 22;
  put(name, b, k);
}

static void idx(const char *name, uint8_t type, int nd, const uint32_t *dims, const uint8_t *data, size_t n, int gz) {
  uint8_t b[8192] = {0, 0, type, (uint8_t)nd};
  for (int i = 0; i < nd; i++)
    for (int j = 0; j < 4; j++) b[4 + 4 * i + j] = (uint8_t)(dims[i] >> (24 - 8 * j));
  memcpy(b + 4 + 4 * nd, data, n);
  if (gz) put_gz(name, b, 4 + 4 * (size_t)nd + n);
  else put(name, b, 4 + 4 * (size_t)nd + n);
}

static void mat(const char *name, uint32_t magic, int nd, const int32_t *dims, const void *data, size_t n) {
  uint8_t b[65536];
  int32_t h[6] = {(int32_t)magic, nd, 1, 1, 1, 1};
  for (int i = 0; i < nd; i++) h[2 + i] = dims[i];
  size_t hl = 8 + 4 * (size_t)(nd < 3 ? 3 : nd);
  memcpy(b, h, hl);
  memcpy(b + hl, data, n);
  put(name, b, hl + n);
}

static void norb_set(const char *pre, uint32_t dat_magic, size_t dat_cut, int32_t ncat, int32_t azimuth, int with_siblings) {
  static uint8_t px[2 * 2 * 8 * 8];
  char name[256];
  int32_t dd[4] = {2, 2, 8, 8}, dc[1] = {ncat}, dn[2] = {2, 4}, cat[2] = {0, 1}, info[8] = {4, 0, 0, 0, 4, 0, azimuth, 0};
  snprintf(name, sizeof name, "norb/%s-dat.mat", pre);
  mat(name, dat_magic, 4, dd, px, sizeof px - dat_cut);
  if (!with_siblings) return;
  snprintf(name, sizeof name, "norb/%s-cat.mat", pre);
  mat(name, 0x1E3D4C54, 1, dc, cat, sizeof cat);
  snprintf(name, sizeof name, "norb/%s-info.mat", pre);
  mat(name, 0x1E3D4C54, 2, dn, info, sizeof info);
}

static void h5(const char *name, hid_t type, int rank, const hsize_t *dims, const void *data, hsize_t label_rows) {
  hid_t f = H5Fcreate(P(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (type >= 0) {
    hid_t sp = H5Screate_simple(rank, dims, NULL), ds = H5Dcreate2(f, "images", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, type == H5T_STD_U8LE ? H5T_NATIVE_UCHAR : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds), H5Sclose(sp);
  }
  if (label_rows) {
    hsize_t ld[2] = {label_rows, 2};
    double lab[64] = {0};
    hid_t sp = H5Screate_simple(2, ld, NULL), ds = H5Dcreate2(f, "labels", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
    H5Dclose(ds), H5Sclose(sp);
  }
  H5Fclose(f);
}

/* a 3-cell x 4-gene AnnData file: CSR X (indptr, indices as given) and obs/grp, a categorical
 * column (anndata >= 0.8 layout) with the codes given and 2 categories */
static void h5ad(const char *name, const int64_t *indptr, hsize_t nptr, const int64_t *indices, const int8_t *codes,
                 hsize_t ncodes) {
  hid_t f = H5Fcreate(P(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t x = H5Gcreate2(f, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 10);
  hid_t sc = H5Screate(H5S_SCALAR), a = H5Acreate2(x, "encoding-type", st, sc, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, st, "csr_matrix"), H5Aclose(a);
  int64_t shape[2] = {3, 4};
  hsize_t two = 2, nnz = (hsize_t)indptr[nptr - 1];
  hid_t s2 = H5Screate_simple(1, &two, NULL);
  a = H5Acreate2(x, "shape", H5T_STD_I64LE, s2, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, shape), H5Aclose(a), H5Sclose(s2);
  float val[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  struct { const char *n; hid_t t; const void *d; hsize_t len; } dsets[3] = {
      {"indptr", H5T_NATIVE_INT64, indptr, nptr}, {"indices", H5T_NATIVE_INT64, indices, nnz}, {"data", H5T_NATIVE_FLOAT, val, nnz}};
  for (int i = 0; i < 3; i++) {
    hid_t sp = H5Screate_simple(1, &dsets[i].len, NULL), d = H5Dcreate2(x, dsets[i].n, dsets[i].t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, dsets[i].t, H5S_ALL, H5S_ALL, H5P_DEFAULT, dsets[i].d), H5Dclose(d), H5Sclose(sp);
  }
  hid_t obs = H5Gcreate2(f, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), g = H5Gcreate2(obs, "grp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Tset_size(st, 11);
  a = H5Acreate2(g, "encoding-type", st, sc, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, st, "categorical"), H5Aclose(a);
  hid_t sp = H5Screate_simple(1, &ncodes, NULL), d = H5Dcreate2(g, "codes", H5T_NATIVE_INT8, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, codes), H5Dclose(d), H5Sclose(sp);
  char cats[2][4] = {"ctl", "sti"};
  hsize_t nc = 2;
  H5Tset_size(st, 4);
  sp = H5Screate_simple(1, &nc, NULL), d = H5Dcreate2(g, "categories", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, cats), H5Dclose(d), H5Sclose(sp);
  H5Gclose(g), H5Gclose(obs), H5Gclose(x), H5Sclose(sc), H5Tclose(st), H5Fclose(f);
}

static void st_raw(const char *name, const char *json, size_t data_bytes, uint64_t claimed_len) {
  uint8_t b[4096] = {0};
  size_t jl = strlen(json);
  uint64_t L = claimed_len ? claimed_len : jl;
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(L >> (8 * i));
  memcpy(b + 8, json, jl);
  put(name, b, 8 + jl + data_bytes);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_corpus DIR\n");
    return 1;
  }
  snprintf(root, sizeof root, "%s", argv[1]);
  const char *dirs[] = {"npy", "npz", "csv", "png", "png/mixed", "png/truncated", "png/notpng", "png/colour", "idx", "norb", "h5",
                        "safetensors", "mpi3d", "ok", "mtx", "h5ad"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) mkdir(P(dirs[i]), 0777);
  uint8_t z[4096] = {0}, buf[65536];

  /* a good 4-row table: the data the factors cases are checked against */
  puts_("ok/four.csv", "a,b\n1,2\n3,4\n5,6\n7,8\n");

  /* npy */
  put("npy/bad_magic.npy", "\x93NUMPX\x01\x00\x10\x00{'descr': '|u1'}", 26);
  npy("npy/truncated.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4, 4), }", z, 20);
  npy("npy/lies.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1000, 64, 64), }", z, 64);
  npy("npy/object.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", z, 16);
  npy("npy/half.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", z, 8);
  put("npy/huge_header.npy", "\x93NUMPY\x02\x00\xff\xff\xff\x7f{'descr'", 20);
  npy("npy/junk_header.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", z, 8);
  npy("npy/trailing.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }", z, 8 + 5);
  npy("npy/negative.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (-1, 4), }", z, 4);
  float nanv[6] = {0, 1, 2, 3, 0.0f / 0.0f, 5};
  npy("npy/nan.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", nanv, sizeof nanv);
  npy("npy/wrongdims.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", z, 1);
  float rng[2 * 2 * 2] = {0, 0.5f, 3, 0, 0, 0, 0, 1};
  npy("npy/range.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", rng, sizeof rng);
  put("npy/version9.npy", "\x93NUMPY\x09\x00\x10\x00{}              \n", 26);
  uint8_t f3[2 * 2 * 2] = {0};
  npy("npy/factors_3d.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 1, 2), }", f3, 8);
  double f20[4 * 20];
  for (int i = 0; i < 80; i++) f20[i] = i % 3;
  npy("npy/factors_20cols.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 20), }", f20, sizeof f20);

  /* npz */
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s/tmp.npz", root);
  knobs_array a;
  int64_t s3[3] = {16, 8, 8};
  knobs_array_alloc(&a, KNOBS_U8, 3, s3);
  for (int i = 0; i < 16 * 64; i++) ((uint8_t *)a.data)[i] = (uint8_t)(i * 31);
  const char *nm[1] = {"images"};
  knobs_npz_write(tmp, nm, &a, 1, 0);
  size_t n = slurp(tmp, buf, sizeof buf);
  put("npz/truncated.npz", buf, n / 2);
  knobs_npz_write(tmp, nm, &a, 1, 1);
  n = slurp(tmp, buf, sizeof buf);
  buf[30 + 10 + 40] ^= 0xff; /* inside the deflate stream */
  put("npz/corrupt.npz", buf, n);
  knobs_array_free(&a);
  uint8_t stored[10 + 118 + 8];
  zip1("npz/cd_outside.npz", "images.npy", 0, 0, 8, 8, z, 8, 100000);
  zip1("npz/bomb.npz", "images.npy", 8, 0, 16, 0xfffffff0u, "\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, 0);
  zip1("npz/encrypted.npz", "images.npy", 0, 1, 8, 8, z, 8, 0);
  zip1("npz/method.npz", "images.npy", 12, 0, 8, 8, z, 8, 0);
  memset(stored, 'x', sizeof stored);
  zip1("npz/notnpy.npz", "images.npy", 0, 0, sizeof stored, sizeof stored, stored, sizeof stored, 0);
  remove(tmp);

  /* mpi3d: right names, wrong shapes (deflated zeros keep them small) */
  int64_t sm[4] = {10, 64, 64, 3}, sg[3] = {4, 64, 64};
  knobs_array_alloc(&a, KNOBS_U8, 4, sm);
  knobs_npz_write(P("mpi3d/mpi3d_small.npz"), nm, &a, 1, 1);
  knobs_array_free(&a);
  knobs_array_alloc(&a, KNOBS_U8, 3, sg);
  knobs_npz_write(P("mpi3d/mpi3d_gray.npz"), nm, &a, 1, 1);
  knobs_array_free(&a);

  /* csv */
  puts_("csv/nan.csv", "x,y\n1,2\n3,nan\n");
  puts_("csv/ragged.csv", "x,y\n1,2\n3\n");
  puts_("csv/text.csv", "x,y\n1,2\n3,four\n");
  puts_("csv/empty.csv", "x,y\n");
  puts_("csv/missing.csv", "x,y\n1,2\n,4\n");
  puts_("csv/inf.tsv", "x\ty\n1\t-inf\n");
  put("csv/nul.csv", "x,y\n1,2\x00\n", 9);
  puts_("csv/short_factors.csv", "k\n1\n2\n3\n");
  puts_("csv/nan_factors.csv", "k\n1\n2\nNaN\n4\n");

  /* png folders */
  uint8_t px[8 * 8 * 3];
  for (int i = 0; i < 192; i++) px[i] = (uint8_t)(i * 3);
  knobs_png_write(P("png/mixed/a.png"), px, 8, 8, 1);
  knobs_png_write(P("png/mixed/b.png"), px, 4, 4, 1);
  knobs_png_write(P("png/colour/a.png"), px, 8, 8, 1);
  knobs_png_write(P("png/colour/b.png"), px, 8, 8, 3);
  knobs_png_write(P("png/truncated/a.png"), px, 8, 8, 3);
  n = slurp(P("png/truncated/a.png"), buf, sizeof buf);
  put("png/truncated/a.png", buf, n - 20);
  puts_("png/notpng/a.png", "this is not a PNG file\n");

  /* idx */
  uint32_t d3[3] = {5, 2, 2}, d1[1] = {4}, dbig[3] = {1000000, 4096, 4096};
  uint8_t id[20] = {0};
  idx("idx/bad-images-idx3-ubyte", 8, 3, d3, id, 20, 0);
  put("idx/bad-images-idx3-ubyte", "\x01\x02\x08\x03", 4);
  idx("idx/float-images-idx3-ubyte", 0x0D, 3, d3, id, 20, 0);
  uint32_t d10[3] = {10, 28, 28};
  idx("idx/short-images-idx3-ubyte", 8, 3, d10, id, 20, 0);
  idx("idx/count-images-idx3-ubyte", 8, 3, d3, id, 20, 0);
  idx("idx/count-labels-idx1-ubyte", 8, 1, d1, id, 4, 0);
  idx("idx/lies-images-idx3-ubyte.gz", 8, 3, dbig, id, 20, 1);
  {
    uint8_t raw[16 + 20] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 2};
    put_gz("idx/tmp.gz", raw, sizeof raw);
    n = slurp(P("idx/tmp.gz"), buf, sizeof buf);
    remove(P("idx/tmp.gz"));
    put("idx/cut-images-idx3-ubyte.gz", buf, n - 10);
  }

  /* norb: one set of three files per case */
  norb_set("magic", 0x12345678, 0, 2, 0, 1);
  norb_set("trunc", 0x1E3D4C55, 50, 2, 0, 1);
  norb_set("count", 0x1E3D4C55, 0, 3, 0, 1);
  norb_set("range", 0x1E3D4C55, 0, 2, 35, 1);
  norb_set("nocat", 0x1E3D4C55, 0, 2, 0, 0);

  /* hdf5 */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  puts_("h5/notreally.h5", "this is text with an .h5 name\n");
  hsize_t dims[4] = {4, 3, 3, 1};
  uint8_t im[36] = {0};
  h5("h5/noimages.h5", -1, 0, NULL, NULL, 0);
  h5("h5/float.h5", H5T_IEEE_F32LE, 4, dims, z, 0);
  h5("h5/labels.h5", H5T_STD_U8LE, 4, dims, im, 3);
  h5("h5/tmp.h5", H5T_STD_U8LE, 4, dims, im, 4);
  n = slurp(P("h5/tmp.h5"), buf, sizeof buf);
  remove(P("h5/tmp.h5"));
  put("h5/truncated.h5", buf, n / 2);

  /* 10x MatrixMarket (opened by the .mtx path) */
  const char *mh = "%%MatrixMarket matrix coordinate integer general\n";
  char mt[512];
  snprintf(mt, sizeof mt, "%s4 3 5\n2 1 5\n4 1 1\n1 2 2\n", mh);
  puts_("mtx/truncated.mtx", mt);
  snprintf(mt, sizeof mt, "%s4 3 2\n2 1 5\n4 1 1\n1 2 2\n", mh);
  puts_("mtx/extra.mtx", mt);
  snprintf(mt, sizeof mt, "%s4 3 2\n2 1 5\n4 9 1\n", mh);
  puts_("mtx/column.mtx", mt);
  snprintf(mt, sizeof mt, "%s4 3 2\n2 1 5\n2 1 1\n", mh);
  puts_("mtx/duplicate.mtx", mt);
  snprintf(mt, sizeof mt, "%s40000 30000 99999999\n1 1 1\n", mh);
  puts_("mtx/lies.mtx", mt);
  puts_("mtx/pattern.mtx", "%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 1\n");
  puts_("mtx/notmm.mtx", "4 3 1\n1 1 1\n");
  snprintf(mt, sizeof mt, "%s4 3 1\n1 1 2.5\n", mh);
  puts_("mtx/real_in_integer.mtx", mt);
  snprintf(mt, sizeof mt, "%s4 3 5\n2 1 5\n4 1 1\n1 2 2\n3 3 7\n4 3 3\n", mh);
  put_gz("mtx/tmp.mtx.gz", mt, strlen(mt));
  n = slurp(P("mtx/tmp.mtx.gz"), buf, sizeof buf);
  remove(P("mtx/tmp.mtx.gz"));
  put("mtx/cut.mtx.gz", buf, n - 6);

  /* AnnData */
  const int64_t ptr_ok[4] = {0, 2, 3, 5}, ptr_down[4] = {0, 3, 2, 5}, idx_ok[5] = {1, 3, 0, 2, 3}, idx_out[5] = {1, 3, 0, 2, 7};
  const int8_t codes_ok[3] = {1, 0, 1}, codes_out[3] = {1, 0, 5};
  puts_("h5ad/notreally.h5ad", "an .h5ad name on a text file\n");
  h5ad("h5ad/index.h5ad", ptr_ok, 4, idx_out, codes_ok, 3);
  h5ad("h5ad/indptr.h5ad", ptr_down, 4, idx_ok, codes_ok, 3);
  h5ad("h5ad/short_indptr.h5ad", ptr_ok, 3, idx_ok, codes_ok, 3);
  h5ad("h5ad/code.h5ad", ptr_ok, 4, idx_ok, codes_out, 3);
  h5ad("h5ad/codes_length.h5ad", ptr_ok, 4, idx_ok, codes_ok, 2);
  h5ad("h5ad/tmp.h5ad", ptr_ok, 4, idx_ok, codes_ok, 3);
  n = slurp(P("h5ad/tmp.h5ad"), buf, sizeof buf);
  remove(P("h5ad/tmp.h5ad"));
  put("h5ad/truncated.h5ad", buf, n / 2);

  /* safetensors */
  st_raw("safetensors/truncated.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 6, 0);
  st_raw("safetensors/badjson.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}", 16, 0);
  st_raw("safetensors/outside.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,64]}}", 16, 0);
  st_raw("safetensors/overlap.safetensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0);
  st_raw("safetensors/hugeheader.safetensors", "{}", 0, 1ull << 40);
  st_raw("safetensors/wrongsize.safetensors", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, 0);
  st_raw("safetensors/dupname.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0);
  printf("make_corpus: wrote %s\n", root);
  return 0;
}
