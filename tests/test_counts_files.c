/* test_counts_files.c: single-cell count files as datasets (src/data/cells.c, h5ad.c, the
 * row-name column of csv.c):
 * - 10x MTX folders (plain and gzip, features.tsv or genes.tsv, or the .mtx path itself): the
 *   dense rows equal the matrix transposed; labels from a factors file;
 * - refusals naming the file and the problem: truncated, more entries than declared, indices
 *   out of range, a value that is not an integer, a duplicate entry, barcodes or features with
 *   the wrong number of lines, a header that is not MatrixMarket, unsupported variants, corrupt
 *   gzip;
 * - dense CSV/TSV count tables with a column of cell names (pandas' to_csv);
 * - AnnData files written by anndata 0.8 itself (tests/ref/make_cells_ref.py: CSR, CSC, a dense
 *   layer; categorical obs columns with a missing value): values, factors, class names;
 * - AnnData files written here through the HDF5 C API: the anndata 0.7 layout (categories in
 *   obs/__categories, referenced from the codes), the old h5sparse attributes, fixed-length
 *   strings, and refusals: indices out of range, indptr of the wrong length, a shape attribute
 *   that disagrees, codes out of range or of the wrong length, no X, a 3-D X, not HDF5, a
 *   truncated file.
 * Every other file is written here, in a mkdtemp folder that is removed. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data.h"
#include "io/io.h"
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

static void put(const char *name, const char *text) {
  FILE *f = fopen(P(name), "wb");
  CHECK(f && fwrite(text, 1, strlen(text), f) == strlen(text), "cannot write %s", name);
  if (f) fclose(f);
}

static void put_gz(const char *name, const char *text) {
  gzFile g = gzopen(P(name), "wb");
  CHECK(g && gzwrite(g, text, (unsigned)strlen(text)) == (int)strlen(text), "cannot write %s", name);
  if (g) gzclose(g);
}

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

static void open_fails(const char *spec, knobs_status want, const char *name, const char *what) {
  knobs_status s;
  knobs_data *d = try_open(spec, NULL, &s);
  const char *e = knobs_last_error();
  CHECK(s == want && !d && strstr(e, name) && strstr(e, what),
        "%s: status %s (want %s), message '%s' should name '%s' and say '%s'", spec, knobs_status_name(s),
        knobs_status_name(want), e, name, what);
  knobs_data_free(d);
}

/* every row of d as floats (n, C) */
static float *rows(knobs_data *d) {
  const knobs_data_info *in = knobs_data_info_get(d);
  float *x = malloc(sizeof(float) * (size_t)in->n * in->C);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)in->n);
  for (int64_t i = 0; i < in->n; i++) idx[i] = i;
  CHECK(!knobs_data_get(d, idx, (int)in->n, x, NULL), "get: %s", knobs_last_error());
  free(idx);
  return x;
}

/* genes x cells: 4 genes, 3 cells, as 10x writes it (1-based, gene first) */
static const float M[3][4] = {{0, 5, 0, 1}, {2, 0, 0, 0}, {0, 0, 7, 3}};
static const char *MTX = "%%MatrixMarket matrix coordinate integer general\n"
                         "%metadata_json: {\"software_version\": \"test\"}\n"
                         "4 3 5\n"
                         "2 1 5\n4 1 1\n1 2 2\n3 3 7\n4 3 3\n";

static void check_m(knobs_data *d, const char *what) {
  if (!d) return;
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->n == 3 && in->C == 4 && in->H == 1 && in->W == 1 && !in->is_image, "%s: n %lld C %d", what,
        (long long)in->n, in->C);
  if (in->n != 3 || in->C != 4) return;
  float *x = rows(d);
  CHECK(!memcmp(x, M, sizeof M), "%s: rows differ from the matrix transposed", what);
  free(x);
}

static void test_mtx(void) {
  T_CASE("10x mtx");
  mkdir(P("tenx"), 0777);
  put("tenx/matrix.mtx", MTX);
  put("tenx/barcodes.tsv", "AAAC-1\nAAAG-1\nAACT-1\n");
  put("tenx/features.tsv", "ENSG1\tA\tGene Expression\nENSG2\tB\tGene Expression\nENSG3\tC\tGene Expression\n"
                           "ENSG4\tD\tGene Expression\n");
  knobs_data *d = open_ok(P("tenx"), NULL);
  check_m(d, "folder");
  knobs_data_free(d);
  d = open_ok(P("tenx/matrix.mtx"), NULL);
  check_m(d, "the .mtx path");
  knobs_data_free(d);
  /* gzip, and genes.tsv (Cell Ranger 2) */
  mkdir(P("tenx2"), 0777);
  put_gz("tenx2/matrix.mtx.gz", MTX);
  put_gz("tenx2/barcodes.tsv.gz", "AAAC-1\nAAAG-1\nAACT-1\n");
  put("tenx2/genes.tsv", "ENSG1\tA\nENSG2\tB\nENSG3\tC\nENSG4\tD\n");
  put("labels.csv", "celltype,condition\n3,0\n1,1\n3,1\n");
  d = open_ok(P("tenx2"), P("labels.csv"));
  check_m(d, "gzip folder");
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    int32_t f[6];
    int64_t idx[3] = {0, 1, 2};
    float x[12];
    CHECK(in->K == 2 && !strcmp(in->factor_names[0], "celltype") && in->factor_sizes[0] == 2, "factors K %d", in->K);
    CHECK(!knobs_data_get(d, idx, 3, x, f) && f[0] == 1 && f[2] == 0 && f[4] == 1 && f[1] == 0 && f[3] == 1,
          "factor classes %d %d %d / %d %d", f[0], f[2], f[4], f[1], f[3]);
  }
  knobs_data_free(d);
  /* a real-valued matrix */
  mkdir(P("real"), 0777);
  put("real/matrix.mtx", "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 0.5\n2 2 1e3\n");
  d = open_ok(P("real"), NULL);
  if (d) {
    float *x = rows(d);
    CHECK(x[0] == 0.5f && x[1] == 0 && x[2] == 0 && x[3] == 1000, "real values %g %g %g %g", x[0], x[1], x[2], x[3]);
    CHECK(strstr(knobs_data_info_get(d)->note, "non-integer"), "note '%s' should say non-integer", knobs_data_info_get(d)->note);
    free(x);
  }
  knobs_data_free(d);
}

static void bad_mtx(const char *name, const char *text, knobs_status want, const char *what) {
  char folder[64], file[96];
  snprintf(folder, sizeof folder, "bad_%s", name);
  snprintf(file, sizeof file, "%s/matrix.mtx", folder);
  mkdir(P(folder), 0777);
  put(file, text);
  open_fails(P(folder), want, "matrix.mtx", what);
}

static void test_mtx_refusals(void) {
  T_CASE("10x mtx refusals");
  const char *H = "%%MatrixMarket matrix coordinate integer general\n";
  char t[512];
  snprintf(t, sizeof t, "%s4 3 5\n2 1 5\n4 1 1\n1 2 2\n", H);
  bad_mtx("truncated", t, KNOBS_ERR_FORMAT, "truncated: the header declares 5 entries, the file has 3");
  snprintf(t, sizeof t, "%s4 3 2\n2 1 5\n4 1 1\n1 2 2\n", H);
  bad_mtx("more", t, KNOBS_ERR_FORMAT, ":5: more entries than the 2");
  snprintf(t, sizeof t, "%s4 3 2\n5 1 5\n4 1 1\n", H);
  bad_mtx("row", t, KNOBS_ERR_FORMAT, ":3: gene (row) index 5 out of range 1..4");
  snprintf(t, sizeof t, "%s4 3 2\n1 1 5\n4 0 1\n", H);
  bad_mtx("col", t, KNOBS_ERR_FORMAT, ":4: cell (column) index 0 out of range 1..3");
  snprintf(t, sizeof t, "%s4 3 2\n1 1 5\n4 2 1.5\n", H);
  bad_mtx("nonint", t, KNOBS_ERR_FORMAT, "'1.5' is not an integer");
  snprintf(t, sizeof t, "%s4 3 2\n1 1 5\n1 1 2\n", H);
  bad_mtx("dup", t, KNOBS_ERR_FORMAT, "gene 1 of cell 1 has two entries");
  snprintf(t, sizeof t, "%s4 3\n1 1 5\n", H);
  bad_mtx("size", t, KNOBS_ERR_FORMAT, "size line");
  snprintf(t, sizeof t, "%s40000 30000 99999999\n1 1 5\n", H);
  bad_mtx("huge", t, KNOBS_ERR_FORMAT, "more than the file can hold");
  snprintf(t, sizeof t, "%s4 3 1\n1 1 x\n", H);
  bad_mtx("text", t, KNOBS_ERR_FORMAT, "'x' is not an integer");
  snprintf(t, sizeof t, "%s4 3 1\n1 1\n", H);
  bad_mtx("short", t, KNOBS_ERR_FORMAT, ":3: expected 'gene cell value'");
  snprintf(t, sizeof t, "%s", H);
  bad_mtx("nosize", t, KNOBS_ERR_FORMAT, "no size line");
  bad_mtx("header", "4 3 1\n1 1 1\n", KNOBS_ERR_FORMAT, "not a MatrixMarket file");
  bad_mtx("pattern", "%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 1\n", KNOBS_ERR_UNSUPPORTED, "pattern");
  bad_mtx("array", "%%MatrixMarket matrix array integer general\n2 2\n1\n2\n3\n4\n", KNOBS_ERR_UNSUPPORTED, "array");
  bad_mtx("sym", "%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 1 1\n", KNOBS_ERR_UNSUPPORTED, "symmetric");
  /* barcodes and features that disagree with the matrix */
  mkdir(P("bad_barcodes"), 0777);
  put("bad_barcodes/matrix.mtx", MTX);
  put("bad_barcodes/barcodes.tsv", "AAAC-1\nAAAG-1\n");
  open_fails(P("bad_barcodes"), KNOBS_ERR_DATA, "barcodes.tsv", "2 lines, but matrix.mtx has 3 cells");
  mkdir(P("bad_features"), 0777);
  put("bad_features/matrix.mtx", MTX);
  put("bad_features/features.tsv", "a\nb\nc\nd\ne\n");
  open_fails(P("bad_features"), KNOBS_ERR_DATA, "features.tsv", "5 lines, but matrix.mtx has 4 genes");
  /* corrupt gzip: the compressed bytes cut short */
  mkdir(P("bad_gz"), 0777);
  put_gz("bad_gz/full.mtx.gz", MTX);
  FILE *f = fopen(P("bad_gz/full.mtx.gz"), "rb");
  char buf[512];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  f = fopen(P("bad_gz/matrix.mtx.gz"), "wb");
  if (f) fwrite(buf, 1, n / 2, f), fclose(f);
  remove(P("bad_gz/full.mtx.gz"));
  open_fails(P("bad_gz"), KNOBS_ERR_FORMAT, "matrix.mtx.gz", "");
}

static void test_csv(void) {
  T_CASE("count tables");
  put("counts.csv", ",GeneA,GeneB,GeneC\nAAAC-1,0,3,1\nAAAG-1,2,0,0\n");
  knobs_data *d = open_ok(P("counts.csv"), NULL);
  if (d) {
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == 2 && in->C == 3, "n %lld C %d", (long long)in->n, in->C);
    float *x = rows(d);
    CHECK(x[0] == 0 && x[1] == 3 && x[2] == 1 && x[3] == 2 && x[5] == 0, "values %g %g %g %g", x[0], x[1], x[2], x[3]);
    free(x);
  }
  knobs_data_free(d);
  put("counts.tsv", "cell\tGeneA\tGeneB\nc1\t4\t0\nc2\t0\t9\nc3\t1\t1\n");
  put("labels.tsv", "condition\n0\n1\n1\n");
  d = open_ok(P("counts.tsv"), P("labels.tsv"));
  if (d) CHECK(knobs_data_info_get(d)->C == 2 && knobs_data_info_get(d)->K == 1, "tsv with cell names and labels");
  knobs_data_free(d);
  put("ragged.csv", ",GeneA,GeneB\nc1,0,3\nc2,2\n");
  open_fails(P("ragged.csv"), KNOBS_ERR_FORMAT, "ragged.csv", ":3: 2 fields, but the header has 3");
  put("word.csv", ",GeneA,GeneB\nc1,0,three\n");
  open_fails(P("word.csv"), KNOBS_ERR_FORMAT, "word.csv", "'three' is not a number");
}

/* ---- AnnData --------------------------------------------------------------------------------- */

static void test_h5ad_ref(void) {
  T_CASE("h5ad by anndata");
  kn_safetensors st;
  if (kn_st_read("tests/ref/cells_ref.safetensors", &st)) {
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  const kn_st_tensor *tx = kn_st_find(&st, "X"), *tc = kn_st_find(&st, "celltype"), *tk = kn_st_find(&st, "condition");
  CHECK(tx && tc && tk, "reference tensors missing");
  if (!tx || !tc || !tk) return;
  float X[35];
  int64_t ct[7], cd[7];
  memcpy(X, st.data + tx->begin, sizeof X);
  memcpy(ct, st.data + tc->begin, sizeof ct);
  memcpy(cd, st.data + tk->begin, sizeof cd);
  kn_st_free(&st);
  const char *specs[3] = {"tests/ref/cells_ref.h5ad", "tests/ref/cells_ref_csc.h5ad", "tests/ref/cells_ref.h5ad:layers/counts"};
  static const char *const cnames[3] = {"B", "NK", "T"}, *const knames[2] = {"ctrl", "stim"};
  for (int s = 0; s < 3; s++) {
    knobs_data *d = open_ok(specs[s], NULL);
    if (!d) continue;
    const knobs_data_info *in = knobs_data_info_get(d);
    CHECK(in->n == 7 && in->C == 5 && in->K == 2, "%s: n %lld C %d K %d", specs[s], (long long)in->n, in->C, in->K);
    if (in->n != 7 || in->C != 5 || in->K != 2) {
      knobs_data_free(d);
      continue;
    }
    CHECK(!strcmp(in->factor_names[0], "celltype") && in->factor_sizes[0] == 4 && !strcmp(in->factor_names[1], "condition") &&
              in->factor_sizes[1] == 2, "%s: factors %s %d, %s %d", specs[s], in->factor_names[0], in->factor_sizes[0],
          in->factor_names[1], in->factor_sizes[1]);
    CHECK(strstr(in->note, "n_counts"), "%s: note '%s' should name n_counts", specs[s], in->note);
    float x[35];
    int32_t f[14];
    int64_t idx[7] = {0, 1, 2, 3, 4, 5, 6};
    CHECK(!knobs_data_get(d, idx, 7, x, f), "get: %s", knobs_last_error());
    CHECK(!memcmp(x, X, sizeof X), "%s: values differ from anndata's X", specs[s]);
    int ok = 1;
    for (int i = 0; i < 7; i++) {
      const char *a = kn_data_class_name(d, 0, f[2 * i]), *b = kn_data_class_name(d, 1, f[2 * i + 1]);
      ok &= a && !strcmp(a, ct[i] < 0 ? "(missing)" : cnames[ct[i]]) && b && !strcmp(b, knames[cd[i]]);
    }
    CHECK(ok, "%s: class names of the cells differ from anndata's categories", specs[s]);
    CHECK(kn_data_class_find(d, 1, "stim") == 1 && kn_data_class_find(d, 0, "T") == 3 &&
              kn_data_class_find(d, 0, "Q") == -1, "%s: class lookup by name", specs[s]);
    knobs_data_free(d);
  }
  open_fails("tests/ref/cells_ref.h5ad:raw/X", KNOBS_ERR_FORMAT, "cells_ref.h5ad", "no 'raw' (looking for raw/X)");
  open_fails("tests/ref/cells_ref.h5ad:obs", KNOBS_ERR_UNSUPPORTED, "cells_ref.h5ad", "obs is a 'dataframe'");
}

/* HDF5 writing helpers: datasets and attributes */
static void ds(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data) {
  hid_t sp = H5Screate_simple(rank, dims, NULL), d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(d >= 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "write %s", name);
  H5Dclose(d), H5Sclose(sp);
}
static void attr_str(hid_t loc, const char *name, const char *v) { /* fixed-length ASCII */
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v));
  hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(a >= 0 && H5Awrite(a, t, v) >= 0, "attribute %s", name);
  H5Aclose(a), H5Sclose(sp), H5Tclose(t);
}
static void attr_i64(hid_t loc, const char *name, const int64_t *v, hsize_t n) {
  hid_t sp = H5Screate_simple(1, &n, NULL), a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, v) >= 0, "attribute %s", name);
  H5Aclose(a), H5Sclose(sp);
}
static void strings(hid_t loc, const char *name, const char *const *v, hsize_t n) { /* fixed-length */
  char buf[8][8] = {{0}};
  for (hsize_t i = 0; i < n; i++) snprintf(buf[i], 8, "%s", v[i]);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, 8);
  ds(loc, name, t, 1, &n, buf);
  H5Tclose(t);
}

/* A 3 cells x 4 genes file (the matrix M): CSR X (or `legacy`: h5sparse attributes), obs with a
 * categorical column `grp` in the 0.8 layout (or `old`: the 0.7 layout). `mess` breaks one
 * thing: 1 an index out of range, 2 indptr too short, 3 a shape that disagrees, 4 a code out of
 * range, 5 codes of the wrong length, 6 no X, 7 a 3-D X. */
static void write_h5ad(const char *name, int legacy, int old, int mess) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fcreate(P(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  int64_t ptr[4] = {0, 2, 3, 5}, idx[5] = {1, 3, 0, 2, 3}, shape[2] = {3, 4};
  float val[5] = {5, 1, 2, 7, 3};
  if (mess == 1) idx[4] = 4;
  if (mess == 3) shape[1] = 3;
  if (mess == 7) {
    float cube[24] = {0};
    hsize_t d3[3] = {3, 4, 2};
    ds(f, "X", H5T_NATIVE_FLOAT, 3, d3, cube);
  } else if (mess != 6) {
    hid_t x = H5Gcreate2(f, "X", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    attr_str(x, legacy ? "h5sparse_format" : "encoding-type", legacy ? "csr" : "csr_matrix");
    attr_i64(x, legacy ? "h5sparse_shape" : "shape", shape, 2);
    hsize_t np = mess == 2 ? 3 : 4, nz = 5;
    ds(x, "indptr", H5T_NATIVE_INT64, 1, &np, ptr);
    ds(x, "indices", H5T_NATIVE_INT64, 1, &nz, idx);
    ds(x, "data", H5T_NATIVE_FLOAT, 1, &nz, val);
    H5Gclose(x);
  }
  hid_t obs = H5Gcreate2(f, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  attr_str(obs, "_index", "_index");
  static const char *const cells[3] = {"c0", "c1", "c2"}, *const cats[2] = {"ctrl", "stim"};
  strings(obs, "_index", cells, 3);
  int8_t codes[3] = {1, 0, mess == 4 ? 2 : 1};
  hsize_t nc = mess == 5 ? 2 : 3, ncat = 2;
  if (old) {
    hid_t cg = H5Gcreate2(obs, "__categories", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    strings(cg, "grp", cats, ncat);
    hobj_ref_t ref;
    H5Rcreate(&ref, cg, "grp", H5R_OBJECT, -1);
    ds(obs, "grp", H5T_NATIVE_INT8, 1, &nc, codes);
    hid_t d = H5Dopen2(obs, "grp", H5P_DEFAULT);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(d, "categories", H5T_STD_REF_OBJ, sp, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, H5T_STD_REF_OBJ, &ref) >= 0, "reference attribute");
    H5Aclose(a), H5Sclose(sp), H5Dclose(d), H5Gclose(cg);
  } else {
    hid_t g = H5Gcreate2(obs, "grp", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    attr_str(g, "encoding-type", "categorical");
    ds(g, "codes", H5T_NATIVE_INT8, 1, &nc, codes);
    strings(g, "categories", cats, ncat);
    H5Gclose(g);
  }
  H5Gclose(obs);
  H5Fclose(f);
}

static void test_h5ad_written(void) {
  T_CASE("h5ad layouts");
  const char *layouts[3] = {"new.h5ad", "old.h5ad", "legacy.h5ad"};
  for (int i = 0; i < 3; i++) {
    write_h5ad(layouts[i], i == 2, i == 1, 0);
    knobs_data *d = open_ok(P(layouts[i]), NULL);
    check_m(d, layouts[i]);
    if (d) {
      const knobs_data_info *in = knobs_data_info_get(d);
      int32_t f[3];
      int64_t idx[3] = {0, 1, 2};
      float x[12];
      CHECK(in->K == 1 && !strcmp(in->factor_names[0], "grp") && !knobs_data_get(d, idx, 3, x, f) && f[0] == 1 && f[1] == 0 &&
                f[2] == 1 && !strcmp(kn_data_class_name(d, 0, 0), "ctrl") && !strcmp(kn_data_class_name(d, 0, 1), "stim"),
            "%s: the categorical column as a factor", layouts[i]);
    }
    knobs_data_free(d);
  }
  T_CASE("h5ad refusals");
  struct {
    int mess;
    knobs_status want;
    const char *what;
  } bad[] = {
      {1, KNOBS_ERR_FORMAT, "X/indices[4] = 4 is out of range 0..3"},
      {2, KNOBS_ERR_FORMAT, "X/indptr has 3 values, expected 4"},
      {3, KNOBS_ERR_FORMAT, "X/indices[1] = 3 is out of range 0..2 (shape (3, 3))"},
      {4, KNOBS_ERR_FORMAT, "obs/grp: cell 2 has code 2, out of range -1..1"},
      {5, KNOBS_ERR_FORMAT, "obs/grp has 2 codes, but the matrix has 3 cells"},
      {6, KNOBS_ERR_FORMAT, "no matrix 'X'"},
      {7, KNOBS_ERR_FORMAT, "X must be 2-D (cells, genes), it has 3 dimensions"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "bad%d.h5ad", bad[i].mess);
    write_h5ad(name, 0, 0, bad[i].mess);
    open_fails(P(name), bad[i].want, name, bad[i].what);
  }
  put("text.h5ad", "not hdf5\n");
  open_fails(P("text.h5ad"), KNOBS_ERR_FORMAT, "text.h5ad", "not an HDF5 file");
  /* the anndata file cut in half */
  FILE *in = fopen("tests/ref/cells_ref.h5ad", "rb"), *out = fopen(P("cut.h5ad"), "wb");
  static char buf[1 << 16];
  size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
  if (out) fwrite(buf, 1, n / 2, out), fclose(out);
  if (in) fclose(in);
  knobs_status s;
  knobs_data *d = try_open(P("cut.h5ad"), NULL, &s);
  CHECK(s == KNOBS_ERR_FORMAT && !d && strstr(knobs_last_error(), "cut.h5ad"), "a truncated h5ad: status %s, '%s'",
        knobs_status_name(s), knobs_last_error());
  knobs_data_free(d);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/knobs-cells-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_mtx();
  test_mtx_refusals();
  test_csv();
  test_h5ad_ref();
  test_h5ad_written();
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return t_done();
}
