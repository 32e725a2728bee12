/* test_data_files.c: the user's own data: CSV/TSV tables (the parser, then as a dataset),
 * .npy and .npz arrays of images and vectors in their dtypes and layouts, factors files (class
 * renumbering, dropped constant columns, binning, a full grid stored shuffled), PNG folders, and
 * every refusal naming the file: NaN, wrong shapes and dtypes, a PNG of another size, an empty
 * folder, a truncated file; sequences (seq:FILE) in each layout with their factors, an exported
 * dsprites:seq read back, and their refusals (4-D images, T = 1, factor rows, NaN, truncation). Every file is written here, in a mkdtemp folder that is removed. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/files.h"
#include "knobs.h"
#include "t.h"

static char dir[64];

static const char *P(const char *name) { return t_path(dir, name); } /* a path in the test folder */

static void put(const char *name, const void *data, size_t n) {
  FILE *f = fopen(P(name), "wb");
  CHECK(f && fwrite(data, 1, n, f) == n, "cannot write %s", name);
  if (f) fclose(f);
}
static void puts_file(const char *name, const char *text) { put(name, text, strlen(text)); }

static knobs_data *try_open(const char *spec, const char *factors, knobs_status *st) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = 2;
  o.factors = factors;
  knobs_data *d = NULL;
  *st = knobs_data_open(spec, &o, &d);
  return d;
}

static knobs_data *open_ok(const char *spec, const char *factors) {
  knobs_status s;
  knobs_data *d = try_open(spec, factors, &s);
  CHECK(s == KNOBS_OK && d, "open %s: %s", spec, knobs_last_error());
  return d;
}

/* opening must fail with status `want` and a message naming `name` and containing `what` */
static void open_fails(const char *spec, const char *factors, knobs_status want, const char *name, const char *what) {
  knobs_status s;
  knobs_data *d = try_open(spec, factors, &s);
  const char *e = knobs_last_error();
  CHECK(s == want && !d && strstr(e, name) && strstr(e, what), "%s: status %s (want %s), message '%s' should name '%s' and say '%s'",
        spec, knobs_status_name(s), knobs_status_name(want), e, name, what);
  knobs_data_free(d);
}

/* ---- CSV parser --------------------------------------------------------------------------- */

static knobs_status csv(const char *text, kn_csv *c) {
  kn_reader *r;
  kn_reader_mem(text, strlen(text), "t.csv", &r);
  knobs_status s = kn_csv_read(r, c);
  kn_reader_close(r);
  return s;
}

static void test_csv_parser(void) {
  T_CASE("csv parser");
  kn_csv c;
  CHECK(csv("\xEF\xBB\xBF" "a, \"b c\" ,x\r\n# comment\r\n\r\n1,2.5,-3e2\r\n \"4\" ,5,6\r\n", &c) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(c.cols == 3 && c.rows == 2 && c.header, "cols %d rows %lld", c.cols, (long long)c.rows);
  CHECK(c.names && !strcmp(c.names[0], "a") && !strcmp(c.names[1], "b c") && !strcmp(c.names[2], "x"), "names");
  CHECK(c.v && c.v[2] == -300 && c.v[3] == 4 && c.v[5] == 6, "values");
  kn_csv_free(&c);
  CHECK(csv("u\tv\n1\t2\n3\t4", &c) == KNOBS_OK && c.cols == 2 && c.rows == 2 && c.v[3] == 4, "tsv without final newline");
  kn_csv_free(&c);
  CHECK(csv("1;2\n3;4\n", &c) == KNOBS_OK && !c.header && c.rows == 2 && !strcmp(c.names[1], "col1"), "no header, ';'");
  kn_csv_free(&c);
  struct {
    const char *text;
    knobs_status st;
    const char *what;
  } bad[] = {
      {"a,b\n1,2\n3,nan\n", KNOBS_ERR_DATA, "t.csv:3: column 'b' is NaN"},
      {"a,b\n1,inf\n", KNOBS_ERR_DATA, "infinite"},
      {"a,b\n1,1e999\n", KNOBS_ERR_DATA, "infinite or out of range"},
      {"a,b\n1,\n", KNOBS_ERR_DATA, "t.csv:2: column 'b' is empty"},
      {"a,b\n1,2\n3\n", KNOBS_ERR_FORMAT, "t.csv:3: 1 fields, but the header has 2"},
      {"a,b\n1,2,3\n", KNOBS_ERR_FORMAT, "3 fields"},
      {"a,b\n1,x7\n", KNOBS_ERR_FORMAT, "'x7' is not a number"},
      {"a,b\n1,2 3\n", KNOBS_ERR_FORMAT, "not a number"},
      {"a,b\n", KNOBS_ERR_DATA, "no data rows"},
      {"", KNOBS_ERR_DATA, "no data rows"},
      {"a,b\n1,\0002\n", KNOBS_ERR_DATA, "empty"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    knobs_status s = csv(bad[i].text, &c);
    CHECK(s == bad[i].st && strstr(knobs_last_error(), bad[i].what), "case %zu: %s '%s', want '%s'", i, knobs_status_name(s),
          knobs_last_error(), bad[i].what);
    CHECK(c.v == NULL && c.names == NULL, "case %zu leaves memory", i);
  }
  /* a NUL byte inside a line */
  kn_reader *r;
  static const char nul[] = "a,b\n1,2\x00x\n";
  kn_reader_mem(nul, sizeof nul - 1, "t.csv", &r);
  CHECK(kn_csv_read(r, &c) == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "NUL"), "NUL: %s", knobs_last_error());
  kn_reader_close(r);
  /* a line over 1 MB */
  size_t big = (1 << 20) + 100;
  char *t = malloc(big + 1);
  memset(t, '1', big);
  t[big] = 0;
  CHECK(csv(t, &c) == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "longer than"), "long line: %s", knobs_last_error());
  free(t);
}

/* ---- CSV as a dataset, factors files ----------------------------------------------------- */

static void test_csv_data(void) {
  T_CASE("csv data");
  puts_file("t.csv", "x,y,z\n1,2,3\n4,5,6\n7,8,9\n10,11,12\n");
  puts_file("f.csv", "size,kind,same,fine\n10,1,7,0.5\n3,2,7,0.25\n7,1,7,0.5\n3,2,7,0.125\n");
  knobs_data *d = open_ok(P("t.csv"), P("f.csv"));
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->C == 3 && in->H == 1 && in->W == 1 && !in->is_image && in->n == 4, "shape %d %d %d n %lld", in->C, in->H, in->W,
        (long long)in->n);
  /* 'same' is constant: dropped with a note; classes renumber the sorted distinct values */
  CHECK(in->K == 3 && !strcmp(in->factor_names[0], "size") && !strcmp(in->factor_names[1], "kind") &&
            !strcmp(in->factor_names[2], "fine"), "K %d names %s %s", in->K, in->factor_names[0], in->factor_names[1]);
  CHECK(strstr(in->note, "'same' is constant"), "note '%s'", in->note);
  CHECK(in->factor_sizes[0] == 3 && in->factor_sizes[1] == 2 && in->factor_sizes[2] == 3, "sizes %d %d %d",
        in->factor_sizes[0], in->factor_sizes[1], in->factor_sizes[2]);
  CHECK(knobs_data_factor_value(d, 0, 0) == 3 && knobs_data_factor_value(d, 0, 2) == 10 && knobs_data_factor_value(d, 2, 0) == 0.125,
        "factor values");
  CHECK(!in->has_render, "4 rows cannot be the 3x2x3 grid");
  int64_t idx[2] = {3, 0};
  float x[6];
  int32_t f[6];
  CHECK(knobs_data_get(d, idx, 2, x, f) == KNOBS_OK, "get");
  CHECK(x[0] == 10 && x[2] == 12 && x[3] == 1, "rows %g %g %g", x[0], x[2], x[3]);
  CHECK(f[0] == 0 && f[1] == 1 && f[2] == 0 && f[3] == 2 && f[4] == 0 && f[5] == 2, "classes %d %d %d / %d %d %d", f[0], f[1],
        f[2], f[3], f[4], f[5]);
  int32_t g[3] = {0, 0, 0};
  CHECK(knobs_data_render(d, g, 1, x) == KNOBS_ERR_UNSUPPORTED, "render of a table must be refused");
  knobs_data_free(d);
  /* a spread note for columns of very different scales; a binned continuous factor */
  FILE *fp = fopen(P("wide.csv"), "w"), *ff = fopen(P("cont.csv"), "w");
  fprintf(fp, "small,big\n");
  fprintf(ff, "c\n");
  for (int i = 0; i < 2000; i++) fprintf(fp, "%g,%g\n", 0.001 * (i % 7), 1000.0 * (i % 11)), fprintf(ff, "%d\n", i * 7 % 2000);
  fclose(fp), fclose(ff);
  d = open_ok(P("wide.csv"), P("cont.csv"));
  if (d) {
    in = knobs_data_info_get(d);
    CHECK(strstr(in->note, "differ in spread") && strstr(in->note, "binned into 20"), "note '%s'", in->note);
    CHECK(in->K == 1 && in->factor_sizes[0] == 20 && in->factor_continuous[0], "binned: K %d size %d", in->K, in->factor_sizes[0]);
    int64_t i7[1] = {1};
    int32_t c7;
    knobs_data_get(d, i7, 1, x, &c7);
    CHECK(c7 == 7 * 20 / 2000, "row 1 (value 7) in bin %d", c7); /* equal-count bins of 0..1999: 100 values each */
    knobs_data_free(d);
  }
  /* refusals */
  puts_file("nan.csv", "a,b\n1,2\n3,NaN\n");
  open_fails(P("nan.csv"), NULL, KNOBS_ERR_DATA, "nan.csv:3", "NaN");
  puts_file("f3.csv", "k\n1\n2\n3\n");
  open_fails(P("t.csv"), P("f3.csv"), KNOBS_ERR_DATA, "f3.csv", "3 rows but the data has 4");
  puts_file("fnan.csv", "k\n1\nnan\n3\n4\n");
  open_fails(P("t.csv"), P("fnan.csv"), KNOBS_ERR_DATA, "fnan.csv", "NaN");
  open_fails(P("t.csv"), P("nothere.npy"), KNOBS_ERR_IO, "nothere.npy", "cannot open");
  open_fails(P("t.csv"), P("f.json"), KNOBS_ERR_ARG, "f.json", "use a .npy");
  open_fails(P("missing.csv"), NULL, KNOBS_ERR_IO, "missing.csv", "cannot open");
}

/* ---- arrays -------------------------------------------------------------------------------- */

static void write_arr(const char *name, knobs_dtype t, int ndim, const int64_t *shape, const void *data) {
  knobs_array a;
  knobs_array_alloc(&a, t, ndim, shape);
  memcpy(a.data, data, (size_t)knobs_array_count(&a) * knobs_dtype_size(t));
  CHECK(knobs_npy_write(P(name), &a) == KNOBS_OK, "write %s", name);
  knobs_array_free(&a);
}

/* a .npy with a hand-written header (byte order, Fortran order, odd dtypes) */
static void write_raw_npy(const char *name, const char *dict, const void *data, size_t n) {
  char hdr[256];
  size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64, hl = dl + pad + 1;
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  hdr[8] = (char)(hl & 0xff), hdr[9] = (char)(hl >> 8);
  memcpy(hdr + 10, dict, dl);
  memset(hdr + 10 + dl, ' ', pad);
  hdr[10 + dl + pad] = '\n';
  FILE *f = fopen(P(name), "wb");
  CHECK(f && fwrite(hdr, 1, 10 + hl, f) == 10 + hl && (!n || fwrite(data, 1, n, f) == n), "write %s", name);
  if (f) fclose(f);
}

static void test_arrays(void) {
  T_CASE("arrays");
  /* (N,H,W) uint8 0..255 -> /255; the "F" test image: asymmetric, catches flips */
  uint8_t img[3 * 4 * 5];
  for (int i = 0; i < 60; i++) img[i] = (uint8_t)(i * 4);
  int64_t s3[3] = {3, 4, 5};
  write_arr("u8.npy", KNOBS_U8, 3, s3, img);
  knobs_data *d = open_ok(P("u8.npy"), NULL);
  float x[3 * 3 * 4 * 5];
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->C == 1 && in->H == 4 && in->W == 5 && in->n == 3 && in->is_image && !in->binary && in->K == 0, "u8 info");
    int64_t i2 = 2;
    CHECK(knobs_data_get(d, &i2, 1, x, NULL) == KNOBS_OK && fabsf(x[0] - 160 / 255.f) < 1e-6f && fabsf(x[19] - 236 / 255.f) < 1e-6f,
          "u8 values %g %g", x[0], x[19]);
    knobs_data_free(d);
  }
  /* 0/1 uint8 is binary, kept as 0/1 */
  uint8_t bin[2 * 3 * 3] = {0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0};
  int64_t sb[3] = {2, 3, 3};
  write_arr("bin.npy", KNOBS_U8, 3, sb, bin);
  if ((d = open_ok(P("bin.npy"), NULL))) {
    int64_t i0 = 0;
    knobs_data_get(d, &i0, 1, x, NULL);
    CHECK(knobs_data_info_get(d)->binary && x[1] == 1 && x[0] == 0, "binary data read as %g %g", x[0], x[1]);
    knobs_data_free(d);
  }
  /* (N,H,W,3) and (N,3,H,W) give the same (C,H,W) observation */
  uint8_t hwc[2 * 2 * 2 * 3], chw[2 * 3 * 2 * 2];
  for (int n = 0; n < 2; n++)
    for (int y = 0; y < 2; y++)
      for (int xx = 0; xx < 2; xx++)
        for (int c = 0; c < 3; c++) {
          uint8_t v = (uint8_t)(n * 100 + c * 30 + y * 10 + xx * 3 + 2);
          hwc[((n * 2 + y) * 2 + xx) * 3 + c] = v;
          chw[((n * 3 + c) * 2 + y) * 2 + xx] = v;
        }
  int64_t sh[4] = {2, 2, 2, 3}, sc[4] = {2, 3, 2, 2};
  write_arr("hwc.npy", KNOBS_U8, 4, sh, hwc);
  write_arr("chw.npy", KNOBS_U8, 4, sc, chw);
  knobs_data *a = open_ok(P("hwc.npy"), NULL), *b = open_ok(P("chw.npy"), NULL);
  if (a && b) {
    float xa[24], xb[24];
    int64_t ii[2] = {0, 1};
    knobs_data_get(a, ii, 2, xa, NULL), knobs_data_get(b, ii, 2, xb, NULL);
    CHECK(!memcmp(xa, xb, sizeof xa) && knobs_data_info_get(a)->C == 3 && knobs_data_info_get(a)->H == 2, "hwc vs chw");
    CHECK(fabsf(xa[12 + 4 + 2] - (100 + 30 + 10 + 0 + 2) / 255.f) < 1e-6f, "hwc element (n1,c1,y1,x0): %g", xa[12 + 4 + 2]);
  }
  knobs_data_free(a), knobs_data_free(b);
  /* vectors: big-endian float64 (N,F); Fortran order (N,F) int16 */
  uint8_t be[2 * 3 * 8];
  double vals[6] = {1.5, -2, 3.25, 1e10, 0, -7};
  for (int i = 0; i < 6; i++) {
    uint64_t u;
    memcpy(&u, &vals[i], 8);
    for (int k = 0; k < 8; k++) be[i * 8 + k] = (uint8_t)(u >> (56 - 8 * k));
  }
  write_raw_npy("be.npy", "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }", be, sizeof be);
  if ((d = open_ok(P("be.npy"), NULL))) {
    const knobs_data_info *in = knobs_data_info_get(d);
    int64_t ii[2] = {1, 0};
    CHECK(!in->is_image && in->C == 3 && in->H == 1 && knobs_data_get(d, ii, 2, x, NULL) == KNOBS_OK, "be vectors");
    CHECK(x[0] == 1e10f && x[2] == -7 && x[3] == 1.5f && x[4] == -2, "be values %g %g %g", x[0], x[2], x[3]);
    knobs_data_free(d);
  }
  int16_t fo[6] = {1, 4, 2, 5, 3, 6}; /* Fortran order of [[1,2,3],[4,5,6]] */
  write_raw_npy("fort.npy", "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", fo, sizeof fo);
  if ((d = open_ok(P("fort.npy"), NULL))) {
    int64_t i1 = 1;
    knobs_data_get(d, &i1, 1, x, NULL);
    CHECK(x[0] == 4 && x[1] == 5 && x[2] == 6, "fortran row 1: %g %g %g", x[0], x[1], x[2]);
    knobs_data_free(d);
  }
  /* float images in [0,1]; outside -> refused; NaN -> refused with the row */
  float fimg[2 * 2 * 2] = {0, 0.5f, 1, 0.25f, 0.125f, 0, 1, 1};
  int64_t s22[3] = {2, 2, 2};
  write_arr("f01.npy", KNOBS_F32, 3, s22, fimg);
  if ((d = open_ok(P("f01.npy"), NULL))) {
    CHECK(knobs_data_info_get(d)->is_image, "float images");
    knobs_data_free(d);
  }
  fimg[5] = 1.5f;
  write_arr("f15.npy", KNOBS_F32, 3, s22, fimg);
  open_fails(P("f15.npy"), NULL, KNOBS_ERR_DATA, "f15.npy", "range from 0 to 1.5");
  fimg[5] = NAN;
  write_arr("fnan.npy", KNOBS_F32, 3, s22, fimg);
  open_fails(P("fnan.npy"), NULL, KNOBS_ERR_DATA, "fnan.npy", "observation 1 holds NaN");
  int16_t i16[8] = {0};
  write_arr("i16.npy", KNOBS_I16, 3, s22, i16);
  open_fails(P("i16.npy"), NULL, KNOBS_ERR_FORMAT, "i16.npy", "int16 images");
  int64_t s5[5] = {1, 1, 1, 1, 1};
  write_arr("5d.npy", KNOBS_U8, 5, s5, i16);
  open_fails(P("5d.npy"), NULL, KNOBS_ERR_FORMAT, "5d.npy", "5 dimensions");
  int64_t s0[3] = {0, 2, 2};
  write_arr("empty.npy", KNOBS_U8, 3, s0, i16);
  open_fails(P("empty.npy"), NULL, KNOBS_ERR_DATA, "empty.npy", "no observations");
  int64_t s44[4] = {2, 4, 4, 4};
  uint8_t z[128] = {0};
  write_arr("c4.npy", KNOBS_U8, 4, s44, z);
  open_fails(P("c4.npy"), NULL, KNOBS_ERR_FORMAT, "c4.npy", "C 1 or 3");
  /* a header that lies about the size; truncated data */
  write_raw_npy("lies.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (100, 8, 8), }", z, 128);
  open_fails(P("lies.npy"), NULL, KNOBS_ERR_FORMAT, "lies.npy", "truncated");
  write_raw_npy("obj.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", z, 16);
  open_fails(P("obj.npy"), NULL, KNOBS_ERR_FORMAT, "obj.npy", "dtype");
}

static void test_npz(void) {
  T_CASE("npz");
  uint8_t img[4 * 3 * 3];
  for (int i = 0; i < 36; i++) img[i] = (uint8_t)(7 * i);
  int32_t lab[4] = {5, 9, 5, 9};
  knobs_array arr[2];
  int64_t s3[3] = {4, 3, 3}, s1[1] = {4};
  knobs_array_alloc(&arr[0], KNOBS_U8, 3, s3);
  knobs_array_alloc(&arr[1], KNOBS_I32, 1, s1);
  memcpy(arr[0].data, img, sizeof img), memcpy(arr[1].data, lab, sizeof lab);
  const char *names[2] = {"images", "labels"};
  CHECK(knobs_npz_write(P("s.npz"), names, arr, 2, 0) == KNOBS_OK && knobs_npz_write(P("c.npz"), names, arr, 2, 1) == KNOBS_OK,
        "write npz");
  const char *other[2] = {"a", "b"};
  knobs_npz_write(P("ab.npz"), other, arr, 2, 0);
  float xs[2 * 9], xc[2 * 9];
  int32_t fs[2], fc[2];
  int64_t ii[2] = {3, 1};
  knobs_data *s = open_ok(P("s.npz"), NULL), *c = open_ok(P("c.npz"), NULL);
  if (s && c) {
    CHECK(knobs_data_get(s, ii, 2, xs, fs) == KNOBS_OK && knobs_data_get(c, ii, 2, xc, fc) == KNOBS_OK, "get");
    CHECK(!memcmp(xs, xc, sizeof xs) && fabsf(xs[0] - 189 / 255.f) < 1e-6f, "stored vs deflated: %g", xs[0]);
    CHECK(knobs_data_info_get(s)->K == 1 && fs[0] == 1 && fs[1] == 1 && fc[0] == 1, "labels member as factors");
    CHECK(knobs_data_factor_value(s, 0, 1) == 9 && strstr(knobs_data_info_get(s)->note, "archive's own labels"), "note '%s'",
          knobs_data_info_get(s)->note);
  }
  knobs_data_free(s), knobs_data_free(c);
  open_fails(P("ab.npz"), NULL, KNOBS_ERR_ARG, "ab.npz", "which array? its members are a.npy, b.npy");
  char spec[300];
  snprintf(spec, sizeof spec, "%s:a", P("ab.npz"));
  knobs_data *d = open_ok(spec, NULL);
  CHECK(d && knobs_data_info_get(d)->n == 4 && knobs_data_info_get(d)->K == 0, "x.npz:member");
  knobs_data_free(d);
  snprintf(spec, sizeof spec, "%s:nope", P("ab.npz"));
  open_fails(spec, NULL, KNOBS_ERR_FORMAT, "ab.npz", "no member 'nope.npy'");
  /* factors from another npz member */
  snprintf(spec, sizeof spec, "%s:b", P("ab.npz"));
  d = open_ok(P("s.npz"), spec);
  CHECK(d && knobs_data_info_get(d)->K == 1 && !strstr(knobs_data_info_get(d)->note, "archive"), "factors from x.npz:b");
  knobs_data_free(d);
  /* truncated stored and deflated archives */
  for (int k = 0; k < 2; k++) {
    FILE *f = fopen(P(k ? "c.npz" : "s.npz"), "rb");
    uint8_t buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    put(k ? "ct.npz" : "st.npz", buf, n - 30);
    open_fails(P(k ? "ct.npz" : "st.npz"), NULL, KNOBS_ERR_FORMAT, k ? "ct.npz" : "st.npz", "zip");
    /* a flipped byte in the stored data (after the 30 + 10 byte local header and the 128 byte
     * npy header): the zip reader's CRC finds it. (In-place reads of stored members, used for
     * datasets, cannot check a CRC over 6 GB at every open; they check sizes only.) */
    if (!k) {
      buf[30 + 10 + 128 + 5] ^= 0x55;
      put("crc.npz", buf, n);
      knobs_array arr2;
      CHECK(knobs_npz_read(P("crc.npz"), "images", &arr2) == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "CRC mismatch"),
            "flipped byte: %s", knobs_last_error());
    }
  }
  knobs_array_free(&arr[0]), knobs_array_free(&arr[1]);
}

/* A full factor grid stored in shuffled order becomes renderable: render(f) returns the row
 * whose factors are f. */
static void test_shuffled_grid(void) {
  T_CASE("shuffled grid");
  enum { A = 3, B = 4, N = A * B };
  int perm[N];
  for (int i = 0; i < N; i++) perm[i] = (i * 5 + 3) % N; /* 5 is coprime with 12 */
  uint8_t img[N * 2 * 2];
  double fac[N * 2];
  for (int r = 0; r < N; r++) {
    int g = perm[r], a = g / B, b = g % B;
    fac[r * 2] = 10 + a * 10; /* 10, 20, 30 */
    fac[r * 2 + 1] = -b;      /* 0, -1, -2, -3: classes in increasing value: -3 is class 0 */
    for (int p = 0; p < 4; p++) img[r * 4 + p] = (uint8_t)(r * 20 + p);
  }
  int64_t si[3] = {N, 2, 2}, sf[2] = {N, 2};
  write_arr("g.npy", KNOBS_U8, 3, si, img);
  write_arr("gf.npy", KNOBS_F64, 2, sf, fac);
  knobs_data *d = open_ok(P("g.npy"), P("gf.npy"));
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->K == 2 && in->factor_sizes[0] == 3 && in->factor_sizes[1] == 4 && in->has_render, "grid K %d render %d", in->K,
        in->has_render);
  int ok = 1;
  for (int r = 0; r < N; r++) {
    int32_t f[2] = {(int32_t)(fac[r * 2] / 10 - 1), (int32_t)(3 + fac[r * 2 + 1])};
    float x[4];
    CHECK(knobs_data_render(d, f, 1, x) == KNOBS_OK, "render");
    ok &= fabsf(x[0] - (r * 20) / 255.f) < 1e-6f;
  }
  CHECK(ok, "render(f) is not the row with factors f");
  /* draws give matching observations and factors */
  float xs[64 * 4];
  int32_t fs[64 * 2];
  CHECK(knobs_data_draw(d, 64, 1, 2, xs, fs) == KNOBS_OK, "draw");
  for (int i = 0; i < 64; i++) {
    int row = (int)lrintf(xs[i * 4] * 255) / 20;
    ok &= fac[row * 2] == knobs_data_factor_value(d, 0, fs[i * 2]) && fac[row * 2 + 1] == knobs_data_factor_value(d, 1, fs[i * 2 + 1]);
  }
  CHECK(ok, "drawn factors do not match the drawn rows");
  knobs_data_free(d);
  /* a duplicated combination: not a grid */
  fac[2] = fac[0], fac[3] = fac[1];
  write_arr("gd.npy", KNOBS_F64, 2, sf, fac);
  d = open_ok(P("g.npy"), P("gd.npy"));
  CHECK(d && !knobs_data_info_get(d)->has_render, "a duplicated combination is still a grid");
  knobs_data_free(d);
}

/* ---- PNG folders -------------------------------------------------------------------------- */

static void test_pngs(void) {
  T_CASE("png folder");
  mkdir(P("png"), 0777);
  uint8_t rgb[4 * 3 * 3], gray[4 * 3];
  for (int i = 0; i < 36; i++) rgb[i] = (uint8_t)(i * 7);
  for (int i = 0; i < 12; i++) gray[i] = (uint8_t)(i * 20);
  CHECK(knobs_png_write(P("png/b.png"), rgb, 4, 3, 3) == KNOBS_OK && knobs_png_write(P("png/a.png"), gray, 4, 3, 1) == KNOBS_OK, "write");
  knobs_status st;
  knobs_data *d = try_open(P("png"), NULL, &st);
  /* the first file (a.png) is gray: b.png is colour -> refused */
  CHECK(!d && st == KNOBS_ERR_DATA && strstr(knobs_last_error(), "b.png") && strstr(knobs_last_error(), "colour"), "%s",
        knobs_last_error());
  CHECK(knobs_png_write(P("png/a.png"), rgb, 4, 3, 3) == KNOBS_OK && knobs_png_write(P("png/c.png"), gray, 4, 3, 1) == KNOBS_OK, "write");
  d = open_ok(P("png"), NULL);
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == 3 && in->C == 3 && in->H == 3 && in->W == 4 && in->is_image, "info n %lld C %d %dx%d", (long long)in->n, in->C, in->H,
          in->W);
    float x[3 * 36];
    int64_t ii[3] = {0, 1, 2};
    CHECK(knobs_data_get(d, ii, 3, x, NULL) == KNOBS_OK, "get");
    /* pixel (y0,x1) channel 2 of a.png = rgb[(0*4+1)*3+2]; c.png's gray replicated */
    CHECK(fabsf(x[2 * 12 + 1] - rgb[5] / 255.f) < 1e-6f && fabsf(x[72 + 12 + 5] - gray[5] / 255.f) < 1e-6f, "pixels %g %g", x[25],
          x[72 + 17]);
    knobs_data_free(d);
  }
  /* another size, named */
  uint8_t small[2 * 2 * 3] = {0};
  knobs_png_write(P("png/d.png"), small, 2, 2, 3);
  open_fails(P("png"), NULL, KNOBS_ERR_DATA, "d.png", "2x2 pixels");
  unlink(P("png/d.png"));
  /* a truncated PNG, named */
  put("png/e.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  open_fails(P("png"), NULL, KNOBS_ERR_FORMAT, "e.png", "PNG");
  unlink(P("png/e.png"));
  /* factors for the folder (sorted file order) */
  puts_file("pf.csv", "k\n1\n2\n3\n");
  d = open_ok(P("png"), P("pf.csv"));
  CHECK(d && knobs_data_info_get(d)->K == 1 && knobs_data_info_get(d)->factor_sizes[0] == 3, "png factors");
  knobs_data_free(d);
  /* 0/255 pixels are binary */
  mkdir(P("bw"), 0777);
  uint8_t bw[4] = {0, 255, 255, 0};
  knobs_png_write(P("bw/x.png"), bw, 2, 2, 1);
  d = open_ok(P("bw"), NULL);
  CHECK(d && knobs_data_info_get(d)->binary, "0/255 PNGs are binary");
  knobs_data_free(d);
  /* an empty folder */
  mkdir(P("empty"), 0777);
  open_fails(P("empty"), NULL, KNOBS_ERR_DATA, "empty", "no .png files");
}

/* ---- seq:FILE, the user's own sequences ------------------------------------------------------ */

/* every row of d into x (n rows of D floats) */
static int get_all(knobs_data *d, float *x) {
  const knobs_data_info *in = knobs_data_info_get(d);
  int64_t idx[16];
  for (int i = 0; i < in->n && i < 16; i++) idx[i] = i;
  return knobs_data_get(d, idx, (int)in->n, x, NULL) == KNOBS_OK;
}

static void test_seq_arrays(void) {
  T_CASE("seq: arrays");
  enum { N = 4, T = 3, H = 5, W = 6, c = 3, HW = H * W };
  /* (N,T,H,W) uint8: frames in order, gray */
  uint8_t g[N * T * HW], rgb[N * T * HW * c];
  for (int i = 0; i < N * T * HW; i++) g[i] = (uint8_t)(i * 7 % 251);
  for (int i = 0; i < N * T * HW * c; i++) rgb[i] = (uint8_t)(i * 13 % 253);
  int64_t s4[4] = {N, T, H, W}, s5[5] = {N, T, H, W, c}, s5c[5] = {N, T, c, H, W};
  write_arr("sg.npy", KNOBS_U8, 4, s4, g);
  char spec[300];
  snprintf(spec, sizeof spec, "seq:%s", P("sg.npy"));
  knobs_data *d = open_ok(spec, NULL);
  float x[N * T * c * HW];
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->T == T && in->C == T && in->H == H && in->W == W && in->n == N && in->is_image && !strcmp(in->name, "seq:sg.npy"),
          "info T %d C %d %dx%d n %lld name %s", in->T, in->C, in->H, in->W, (long long)in->n, in->name);
    int ok = get_all(d, x);
    for (int i = 0; i < N * T * HW; i++) ok &= fabsf(x[i] - g[i] / 255.f) < 1e-6f;
    CHECK(ok, "(N,T,H,W) rows are not the frames in order");
    knobs_data_free(d);
  }
  /* (N,T,H,W,C) colour: each frame (H,W,C) -> (C,H,W), frames in order: (T,C,H,W) */
  write_arr("sc.npy", KNOBS_U8, 5, s5, rgb);
  snprintf(spec, sizeof spec, "seq:%s", P("sc.npy"));
  d = open_ok(spec, NULL);
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->T == T && in->C == T * c, "colour: T %d C %d", in->T, in->C);
    int ok = get_all(d, x);
    for (int i = 0; i < N; i++)
      for (int t = 0; t < T; t++)
        for (int ch = 0; ch < c; ch++)
          for (int p = 0; p < HW; p++)
            ok &= fabsf(x[(((size_t)i * T + t) * c + ch) * HW + p] - rgb[(((size_t)i * T + t) * HW + p) * c + ch] / 255.f) < 1e-6f;
    CHECK(ok, "(N,T,H,W,C) frames are not (T,C,H,W)");
    knobs_data_free(d);
  }
  /* (N,T,C,H,W) float32 as stored, and (N,T,H,W,1) float64 */
  float fx[N * T * c * HW];
  double dx[N * T * HW];
  for (int i = 0; i < N * T * c * HW; i++) fx[i] = (float)(i % 97) / 96.f;
  for (int i = 0; i < N * T * HW; i++) dx[i] = (double)(i % 89) / 88.0;
  write_arr("sf.npy", KNOBS_F32, 5, s5c, fx);
  int64_t s51[5] = {N, T, H, W, 1};
  write_arr("sd.npy", KNOBS_F64, 5, s51, dx);
  snprintf(spec, sizeof spec, "seq:%s", P("sf.npy"));
  d = open_ok(spec, NULL);
  if (d) {
    CHECK(knobs_data_info_get(d)->C == T * c && get_all(d, x) && !memcmp(x, fx, sizeof fx), "(N,T,C,H,W) float32");
    knobs_data_free(d);
  }
  snprintf(spec, sizeof spec, "seq:%s", P("sd.npy"));
  d = open_ok(spec, NULL);
  if (d) {
    int ok = knobs_data_info_get(d)->C == T && get_all(d, x);
    for (int i = 0; i < N * T * HW; i++) ok &= x[i] == (float)dx[i];
    CHECK(ok, "(N,T,H,W,1) float64");
    knobs_data_free(d);
  }
  /* factors: a .npy and a CSV of one row a sequence, and an .npz's own member */
  int64_t fsh[2] = {N, 2};
  double fac[N * 2] = {0, 1, 1, 1, 0, 2, 0, 1}; /* not a full grid: get(i) is row i */
  write_arr("sfac.npy", KNOBS_F64, 2, fsh, fac);
  puts_file("sfac.csv", "kind,speed\n0,1\n1,1\n0,2\n0,1\n");
  snprintf(spec, sizeof spec, "seq:%s", P("sg.npy"));
  const char *facs[2] = {P("sfac.npy"), P("sfac.csv")};
  for (int k = 0; k < 2; k++) {
    d = open_ok(spec, facs[k]);
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    int32_t f[N * 2];
    int64_t idx[N] = {0, 1, 2, 3};
    CHECK(in->K == 2 && knobs_data_get(d, idx, N, x, f) == KNOBS_OK && f[2] == 1 && f[5] == 1, "factors %s: K %d", facs[k], in->K);
    CHECK(k == 0 || !strcmp(in->factor_names[1], "speed"), "CSV factor names");
    knobs_data_free(d);
  }
  knobs_array arr[2];
  const char *names[2] = {"clips", "factors"};
  knobs_array_alloc(&arr[0], KNOBS_U8, 4, s4), knobs_array_alloc(&arr[1], KNOBS_F64, 2, fsh);
  memcpy(arr[0].data, g, sizeof g), memcpy(arr[1].data, fac, sizeof fac);
  CHECK(knobs_npz_write(P("s.npz"), names, arr, 2, 1) == KNOBS_OK, "npz: %s", knobs_last_error());
  knobs_array_free(&arr[0]), knobs_array_free(&arr[1]);
  snprintf(spec, sizeof spec, "seq:%s:clips", P("s.npz"));
  d = open_ok(spec, NULL);
  CHECK(d && knobs_data_info_get(d)->T == T && knobs_data_info_get(d)->K == 2 && get_all(d, x) && fabsf(x[5] - g[5] / 255.f) < 1e-6f,
        "seq: of a deflated .npz member with its own factors");
  knobs_data_free(d);
  /* export of a sequence dataset writes (N,T,c,H,W), which seq: reads back as drawn */
  knobs_data *ds;
  CHECK(knobs_data_open("dsprites:seq:3", NULL, &ds) == KNOBS_OK, "dsprites:seq:3");
  float *xs = malloc(sizeof(float) * 5 * 3 * 4096), *xr = malloc(sizeof(float) * 5 * 3 * 4096);
  CHECK(knobs_data_export(ds, 5, 9, KNOBS_U8, P("ex.npy"), NULL, NULL) == KNOBS_OK && knobs_data_draw(ds, 5, 9, 0, xs, NULL) == KNOBS_OK,
        "export: %s", knobs_last_error());
  knobs_array ex = {0};
  CHECK(knobs_npy_read(P("ex.npy"), &ex) == KNOBS_OK && ex.ndim == 5 && ex.shape[1] == 3 && ex.shape[2] == 1 && ex.shape[3] == 64,
        "export shape: ndim %d", ex.ndim);
  knobs_array_free(&ex);
  snprintf(spec, sizeof spec, "seq:%s", P("ex.npy"));
  d = open_ok(spec, NULL);
  CHECK(d && knobs_data_info_get(d)->T == 3 && knobs_data_info_get(d)->C == 3 && get_all(d, xr) &&
            !memcmp(xs, xr, sizeof(float) * 5 * 3 * 4096), "seq: of an exported dsprites:seq is not what was drawn");
  knobs_data_free(d);
  knobs_data_free(ds);
  free(xs), free(xr);
}

static void test_seq_refusals(void) {
  T_CASE("seq: refusals");
  char spec[300];
#define SEQ(name) (snprintf(spec, sizeof spec, "seq:%s", P(name)), spec)
  uint8_t z[2 * 2 * 4 * 4 * 5] = {0}; /* the largest array below */
  int64_t hwc[4] = {2, 4, 4, 3}, one[4] = {2, 1, 4, 4}, s3[3] = {2, 4, 4}, s5[5] = {2, 2, 4, 4, 5};
  write_arr("hwc.npy", KNOBS_U8, 4, hwc, z); /* (N,H,W,C) images: 4-D where 5-D was needed */
  open_fails(SEQ("hwc.npy"), NULL, KNOBS_ERR_FORMAT, "hwc.npy", "looks like images (N,H,W,C)");
  write_arr("one.npy", KNOBS_U8, 4, one, z);
  open_fails(SEQ("one.npy"), NULL, KNOBS_ERR_DATA, "one.npy", "T = 1 frame");
  write_arr("s3.npy", KNOBS_U8, 3, s3, z);
  open_fails(SEQ("s3.npy"), NULL, KNOBS_ERR_FORMAT, "s3.npy", "single images");
  write_arr("s5.npy", KNOBS_U8, 5, s5, z);
  open_fails(SEQ("s5.npy"), NULL, KNOBS_ERR_FORMAT, "s5.npy", "(N,T,H,W,C) or (N,T,C,H,W)");
  /* 5-D without the prefix: a pointer to it; 4-D sequences without it: a hint */
  int64_t ok5[5] = {2, 2, 4, 4, 1}, seq4[4] = {2, 5, 4, 4};
  write_arr("ok5.npy", KNOBS_U8, 5, ok5, z);
  open_fails(P("ok5.npy"), NULL, KNOBS_ERR_FORMAT, "ok5.npy", "open them as seq:");
  write_arr("seq4.npy", KNOBS_U8, 4, seq4, z);
  open_fails(P("seq4.npy"), NULL, KNOBS_ERR_FORMAT, "seq4.npy", "seq:FILE");
  /* factors of another row count */
  puts_file("f3.csv", "k\n0\n1\n2\n");
  open_fails(SEQ("ok5.npy"), P("f3.csv"), KNOBS_ERR_DATA, "f3.csv", "has 3 rows but the data has 2");
  /* NaN, values out of [0,1], an integer dtype */
  float nan5[2 * 2 * 16] = {0};
  nan5[40] = NAN;
  write_arr("nan.npy", KNOBS_F32, 5, ok5, nan5);
  open_fails(SEQ("nan.npy"), NULL, KNOBS_ERR_DATA, "nan.npy", "sequence 1 holds NaN");
  nan5[40] = 3;
  write_arr("big.npy", KNOBS_F32, 5, ok5, nan5);
  open_fails(SEQ("big.npy"), NULL, KNOBS_ERR_DATA, "big.npy", "must lie in [0,1]");
  int32_t iz[2 * 2 * 16] = {0};
  write_arr("i32.npy", KNOBS_I32, 5, ok5, iz);
  open_fails(SEQ("i32.npy"), NULL, KNOBS_ERR_FORMAT, "i32.npy", "int32 images");
  /* a truncated file: the header promises more than the file holds */
  uint8_t zz[40] = {0};
  write_raw_npy("trunc.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 4, 4, 1), }", zz, sizeof zz);
  open_fails(SEQ("trunc.npy"), NULL, KNOBS_ERR_FORMAT, "trunc.npy", "truncated");
  /* not an array; a missing file */
  puts_file("t.csv", "a\n1\n");
  open_fails(SEQ("t.csv"), NULL, KNOBS_ERR_ARG, "t.csv", "seq: reads sequences from a .npy");
  open_fails(SEQ("nosuch.npy"), NULL, KNOBS_ERR_IO, "nosuch.npy", "cannot open");
#undef SEQ
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/knobs-dfiles-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_csv_parser();
  test_csv_data();
  test_arrays();
  test_npz();
  test_shuffled_grid();
  test_pngs();
  test_seq_arrays();
  test_seq_refusals();
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return t_done();
}
