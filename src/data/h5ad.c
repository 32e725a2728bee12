/* h5ad.c: AnnData files (.h5ad), the format scanpy and scVI users keep their cells in: an HDF5
 * file with the count matrix (cells x genes) at X (or another path: raw/X, layers/counts) and
 * the cells' annotations in the group obs.
 * - The matrix: a 2-D dataset (dense), or a group with datasets data, indices, indptr and the
 *   attribute shape, whose attribute encoding-type is csr_matrix or csc_matrix (anndata >= 0.7;
 *   older files say h5sparse_format csr/csc and h5sparse_shape). Any numeric type, read as
 *   float32. CSC is transposed to CSR.
 * - The labels: every categorical column of obs becomes a factor whose classes are named by its
 *   categories: anndata >= 0.8 writes obs/<col> as a group (encoding-type categorical) with
 *   datasets categories (strings) and codes (integers, -1 for a missing value, which becomes
 *   the class "(missing)"); anndata 0.7 writes obs/<col> as the codes with an attribute
 *   categories that refers to obs/__categories/<col>. Other columns (numbers, strings) are not
 *   factors. Columns with more than KN_MAX_CLASSES categories are skipped (said in the note).
 *   An obs stored as one compound dataset (anndata < 0.7) is not read (said in the note).
 * As in h5.c, HDF5 runs only in a forked child (libhdf5 1.10 crashes on some corrupt files): the
 * child checks the file, writes the CSR arrays, the codes and the category names into a memfd
 * and reports their sizes through a pipe; the parent maps the memfd (copy-on-write). */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/cells.h"

#define MAX_CATS 100000 /* categories of one column the child will read */

typedef struct {
  int32_t status;
  char msg[1024];
  int64_t n, G, nnz;
  int32_t K;                          /* categorical columns kept */
  char col[KNOBS_MAX_FACTORS][32];
  int32_t ncat[KNOBS_MAX_FACTORS];
  uint64_t off_indices, off_data, off_codes, off_names, bytes;
  char note[200];
} report;

/* ---- the child ----------------------------------------------------------------------------- */

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ctx) {
  if (e->desc && e->desc[0]) snprintf(ctx, 200, "%s", e->desc);
  return 0;
}

static const char *why(void) {
  static char buf[200];
  snprintf(buf, sizeof buf, "unknown HDF5 error");
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, buf);
  return buf;
}

static int put(int fd, const void *p, size_t n, uint64_t off) {
  const char *c = p;
  while (n) {
    ssize_t k = pwrite(fd, c, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    c += k, n -= (size_t)k, off += (uint64_t)k;
  }
  return 1;
}

/* a string attribute (fixed or variable length) into buf; 0 if absent or not a string */
static int str_attr(hid_t obj, const char *name, char *buf, size_t n) {
  buf[0] = 0;
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a < 0 ? -1 : H5Aget_type(a);
  if (t < 0 || H5Tget_class(t) != H5T_STRING) return 0;
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 converts no strings between ASCII and UTF-8 */
  if (H5Tis_variable_str(t) > 0) {
    char *s = NULL;
    H5Tset_size(mt, H5T_VARIABLE);
    if (H5Aread(a, mt, &s) < 0 || !s) return 0;
    snprintf(buf, n, "%s", s);
  } else {
    size_t sz = H5Tget_size(t);
    char *s = calloc(sz + 1, 1);
    H5Tset_size(mt, sz + 1);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    if (!s || H5Aread(a, mt, s) < 0) return 0;
    snprintf(buf, n, "%s", s);
  }
  return 1;
}

/* a 1-D dataset's length, or -1 (with *rank the rank) */
static int64_t length1(hid_t ds, int *rank) {
  hid_t sp = H5Dget_space(ds);
  *rank = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
  hsize_t d[2] = {0, 0};
  if (*rank != 1) return -1;
  H5Sget_simple_extent_dims(sp, d, NULL);
  return (int64_t)d[0];
}

/* Read the 1-D dataset `name` of group g: n elements of memory type mt into a new buffer. */
static knobs_status read1(const char *path, const char *where, hid_t g, const char *name, hid_t mt,
                          int64_t want, size_t esz, void **out) {
  *out = NULL;
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: %s has no dataset '%s'", path, where, name);
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open %s/%s: %s", path, where, name, why());
  int rank;
  int64_t n = length1(ds, &rank);
  if (rank != 1) return kn_err(KNOBS_ERR_FORMAT, "%s: %s/%s must be 1-D, it has %d dimensions", path, where, name, rank);
  if (n != want)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s/%s has %lld values, expected %lld", path, where, name, (long long)n, (long long)want);
  hsize_t stored = H5Dget_storage_size(ds);
  if ((uint64_t)n * esz / 1032 > stored + 64)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s/%s declares %lld values but stores only %llu bytes", path, where, name,
                  (long long)n, (unsigned long long)stored);
  *out = malloc((size_t)(n ? n : 1) * esz);
  if (!*out) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %lld values of %s/%s", path, (long long)n, where, name);
  if (n && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read %s/%s: %s", path, where, name, why());
  return KNOBS_OK;
}

/* the sparse matrix group: CSR (or CSC, transposed) into the memfd */
static knobs_status sparse(const char *path, const char *m, hid_t g, int mfd, report *rep) {
  char enc[64], fmt[16] = "";
  int64_t shape[2] = {-1, -1};
  const char *shape_attr = "shape";
  if (str_attr(g, "encoding-type", enc, sizeof enc)) {
    if (!strcmp(enc, "csr_matrix")) strcpy(fmt, "csr");
    else if (!strcmp(enc, "csc_matrix")) strcpy(fmt, "csc");
    else return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: %s is a '%s'; knobs reads a dense array, csr_matrix or csc_matrix", path, m, enc);
  } else if (str_attr(g, "h5sparse_format", enc, sizeof enc) && (!strcmp(enc, "csr") || !strcmp(enc, "csc"))) {
    strcpy(fmt, enc);
    shape_attr = "h5sparse_shape";
  } else {
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s is a group without encoding-type csr_matrix or csc_matrix", path, m);
  }
  if (H5Aexists(g, shape_attr) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: %s has no '%s' attribute", path, m, shape_attr);
  hid_t a = H5Aopen(g, shape_attr, H5P_DEFAULT), sp = a < 0 ? -1 : H5Aget_space(a);
  if (sp < 0 || H5Sget_simple_extent_npoints(sp) != 2 || H5Aread(a, H5T_NATIVE_INT64, shape) < 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s's '%s' attribute must hold 2 integers", path, m, shape_attr);
  int64_t n = shape[0], G = shape[1];
  if (n < 1 || G < 1 || G > INT32_MAX || n > ((int64_t)1 << 40))
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s has shape (%lld, %lld)", path, m, (long long)n, (long long)G);
  int csc = !strcmp(fmt, "csc");
  int64_t outer = csc ? G : n, inner = csc ? n : G, *ptr, *idx;
  float *val;
  knobs_status s = read1(path, m, g, "indptr", H5T_NATIVE_INT64, outer + 1, 8, (void **)&ptr);
  if (s) return s;
  int64_t nnz = ptr[outer];
  if (ptr[0] != 0 || nnz < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: %s/indptr must start at 0 and end at the number of values", path, m);
  for (int64_t i = 0; i < outer; i++)
    if (ptr[i + 1] < ptr[i]) return kn_err(KNOBS_ERR_FORMAT, "%s: %s/indptr decreases at %lld", path, m, (long long)i);
  if ((s = read1(path, m, g, "indices", H5T_NATIVE_INT64, nnz, 8, (void **)&idx))) return s;
  if ((s = read1(path, m, g, "data", H5T_NATIVE_FLOAT, nnz, 4, (void **)&val))) return s;
  for (int64_t e = 0; e < nnz; e++)
    if (idx[e] < 0 || idx[e] >= inner)
      return kn_err(KNOBS_ERR_FORMAT, "%s: %s/indices[%lld] = %lld is out of range 0..%lld (shape (%lld, %lld))", path, m,
                    (long long)e, (long long)idx[e], (long long)inner - 1, (long long)n, (long long)G);
  int64_t *rp = ptr;
  int32_t *ri = malloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
  float *rv = val;
  if (!ri) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  if (csc) { /* transpose: count per row, then place column by column (rows end up sorted) */
    rp = calloc((size_t)n + 1, sizeof *rp);
    rv = malloc(sizeof(float) * (size_t)(nnz ? nnz : 1));
    int64_t *at = malloc(sizeof(int64_t) * (size_t)n);
    if (!rp || !rv || !at) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
    for (int64_t e = 0; e < nnz; e++) rp[idx[e] + 1]++;
    for (int64_t i = 0; i < n; i++) rp[i + 1] += rp[i], at[i] = rp[i];
    for (int64_t j = 0; j < G; j++)
      for (int64_t e = ptr[j]; e < ptr[j + 1]; e++) {
        int64_t q = at[idx[e]]++;
        ri[q] = (int32_t)j, rv[q] = val[e];
      }
  } else {
    for (int64_t e = 0; e < nnz; e++) ri[e] = (int32_t)idx[e];
  }
  rep->n = n, rep->G = G, rep->nnz = nnz;
  rep->off_indices = (uint64_t)(n + 1) * 8;
  rep->off_data = rep->off_indices + (((uint64_t)nnz * 4 + 7) & ~(uint64_t)7);
  rep->off_codes = rep->off_data + (((uint64_t)nnz * 4 + 7) & ~(uint64_t)7);
  if (!put(mfd, rp, (size_t)(n + 1) * 8, 0) || !put(mfd, ri, (size_t)nnz * 4, rep->off_indices) ||
      !put(mfd, rv, (size_t)nnz * 4, rep->off_data))
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot write %lld values to shared memory: %s", path, (long long)nnz, strerror(errno));
  return KNOBS_OK;
}

/* the dense matrix: two passes over slabs of rows (count, then write the nonzeros) */
static knobs_status dense(const char *path, const char *m, hid_t ds, int mfd, report *rep) {
  hid_t fs = H5Dget_space(ds), t = H5Dget_type(ds);
  int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
  H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) return kn_err(KNOBS_ERR_FORMAT, "%s: %s must hold numbers", path, m);
  if (rank != 2) return kn_err(KNOBS_ERR_FORMAT, "%s: %s must be 2-D (cells, genes), it has %d dimensions", path, m, rank);
  hsize_t d[2];
  H5Sget_simple_extent_dims(fs, d, NULL);
  int64_t n = (int64_t)d[0], G = (int64_t)d[1];
  if (n < 1 || G < 1 || G > INT32_MAX) return kn_err(KNOBS_ERR_FORMAT, "%s: %s has shape (%lld, %lld)", path, m, (long long)n, (long long)G);
  if ((uint64_t)n * G * H5Tget_size(t) / 1032 > H5Dget_storage_size(ds) + 64)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %s declares (%lld, %lld) values but stores only %llu bytes", path, m, (long long)n,
                  (long long)G, (unsigned long long)H5Dget_storage_size(ds));
  int64_t slab = (int64_t)((8u << 20) / (uint64_t)G / 4);
  if (slab < 1) slab = 1;
  if (slab > n) slab = n;
  float *buf = malloc(sizeof(float) * (size_t)(slab * G)), *vals = malloc(sizeof(float) * (size_t)(slab * G));
  int32_t *cols = malloc(sizeof(int32_t) * (size_t)(slab * G)); /* a slab's nonzeros, written at once */
  int64_t *ptr = calloc((size_t)n + 1, sizeof *ptr);
  if (!buf || !vals || !cols || !ptr) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  int64_t nnz = 0;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      rep->n = n, rep->G = G, rep->nnz = nnz;
      rep->off_indices = (uint64_t)(n + 1) * 8;
      rep->off_data = rep->off_indices + (((uint64_t)nnz * 4 + 7) & ~(uint64_t)7);
      rep->off_codes = rep->off_data + (((uint64_t)nnz * 4 + 7) & ~(uint64_t)7);
      if (!put(mfd, ptr, (size_t)(n + 1) * 8, 0)) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot write to shared memory", path);
    }
    int64_t e = 0;
    for (int64_t r0 = 0; r0 < n; r0 += slab) {
      int64_t k = n - r0 < slab ? n - r0 : slab;
      hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)k, (hsize_t)G};
      hid_t ms = H5Screate_simple(2, count, NULL);
      if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
          H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf) < 0)
        return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read rows %lld..%lld of %s: %s", path, (long long)r0,
                      (long long)(r0 + k - 1), m, why());
      H5Sclose(ms);
      int64_t q = 0;
      for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < G; j++) {
          float v = buf[i * G + j];
          if (v == 0) continue;
          if (pass == 0) nnz++, ptr[r0 + i + 1]++;
          else cols[q] = (int32_t)j, vals[q++] = v;
        }
      if (pass == 1 && q) {
        if (!put(mfd, cols, (size_t)q * 4, rep->off_indices + (uint64_t)e * 4) ||
            !put(mfd, vals, (size_t)q * 4, rep->off_data + (uint64_t)e * 4))
          return kn_err(KNOBS_ERR_NOMEM, "%s: cannot write to shared memory", path);
        e += q;
      }
    }
    if (pass == 0)
      for (int64_t i = 0; i < n; i++) ptr[i + 1] += ptr[i];
  }
  return KNOBS_OK;
}

/* A 1-D dataset of category labels as NUL-separated strings (numbers formatted with %.17g). */
static knobs_status categories(const char *path, const char *col, hid_t ds, char **blob, size_t *len, int *ncat) {
  int rank;
  int64_t n = length1(ds, &rank);
  if (rank != 1 || n < 0 || n > MAX_CATS)
    return kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s: categories must be a 1-D array of at most %d values", path, col, MAX_CATS);
  hid_t t = H5Dget_type(ds);
  H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
  size_t cap = 64 * (size_t)(n + 1), at = 0;
  char *b = malloc(cap);
  if (!b) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  char **vs = NULL, *fx = NULL;
  double *num = NULL;
  size_t sz = 0;
  int ok = 1;
  if (cls == H5T_STRING && H5Tis_variable_str(t) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t));
    H5Tset_size(mt, H5T_VARIABLE);
    vs = calloc((size_t)(n ? n : 1), sizeof *vs);
    ok = vs && (!n || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vs) >= 0);
  } else if (cls == H5T_STRING) {
    sz = H5Tget_size(t) + 1;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t));
    H5Tset_size(mt, sz);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    fx = calloc((size_t)(n ? n : 1), sz);
    ok = fx && (!n || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, fx) >= 0);
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    num = malloc(sizeof(double) * (size_t)(n ? n : 1));
    ok = num && (!n || H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, num) >= 0);
  } else {
    return kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s: categories must be strings or numbers", path, col);
  }
  if (!ok) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read the categories of obs/%s: %s", path, col, why());
  for (int64_t i = 0; i < n; i++) {
    char tmp[64];
    const char *s = vs ? (vs[i] ? vs[i] : "") : fx ? fx + (size_t)i * sz : tmp;
    if (num) snprintf(tmp, sizeof tmp, "%.17g", num[i]);
    size_t l = strnlen(s, 63); /* names are kept to 63 bytes */
    memcpy(b + at, s, l), b[at + l] = 0;
    at += l + 1;
  }
  *blob = b, *len = at, *ncat = (int)n;
  return KNOBS_OK;
}

typedef struct {
  const char *path;
  int64_t n;
  int mfd;
  report *rep;
  int32_t *codes;            /* (K, n) as columns, written at the end */
  char *names;               /* all categories, NUL-separated */
  size_t names_len, names_cap;
  char index[64];            /* the obs index column (not a label) */
  char skipped_names[120];   /* columns that are not factors, for the note */
  int skipped, too_many;
  knobs_status s;
} obs_walk;

static int skip(obs_walk *w, const char *name) {
  size_t l = strlen(w->skipped_names);
  if (l + strlen(name) + 3 < sizeof w->skipped_names) snprintf(w->skipped_names + l, sizeof w->skipped_names - l, "%s%s", l ? ", " : "", name);
  w->skipped++;
  return 0;
}

static herr_t obs_col(hid_t obs, const char *name, const H5L_info_t *info, void *ctx) {
  obs_walk *w = ctx;
  if (!strcmp(name, "__categories") || !strcmp(name, w->index)) return 0;
  hid_t o = H5Oopen(obs, name, H5P_DEFAULT);
  if (o < 0) return 0;
  char enc[64];
  hid_t codes = -1, cats = -1;
  if (H5Iget_type(o) == H5I_GROUP) { /* anndata >= 0.8 */
    if (!str_attr(o, "encoding-type", enc, sizeof enc) || strcmp(enc, "categorical")) return skip(w, name);
    if (H5Lexists(o, "codes", H5P_DEFAULT) <= 0 || H5Lexists(o, "categories", H5P_DEFAULT) <= 0) {
      w->s = kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s is categorical but lacks 'codes' or 'categories'", w->path, name);
      return -1;
    }
    codes = H5Dopen2(o, "codes", H5P_DEFAULT), cats = H5Dopen2(o, "categories", H5P_DEFAULT);
  } else if (H5Iget_type(o) == H5I_DATASET && H5Aexists(o, "categories") > 0) { /* anndata 0.7 */
    hid_t a = H5Aopen(o, "categories", H5P_DEFAULT), at = a < 0 ? -1 : H5Aget_type(a);
    hobj_ref_t ref;
    if (at < 0 || H5Tget_class(at) != H5T_REFERENCE || H5Aread(a, H5T_STD_REF_OBJ, &ref) < 0 ||
        (cats = H5Rdereference2(o, H5P_DEFAULT, H5R_OBJECT, &ref)) < 0) {
      w->s = kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s: its 'categories' attribute does not refer to a dataset", w->path, name);
      return -1;
    }
    codes = o;
  } else {
    return skip(w, name);
  }
  if (codes < 0 || cats < 0) {
    w->s = kn_err(KNOBS_ERR_FORMAT, "%s: cannot open the codes or categories of obs/%s: %s", w->path, name, why());
    return -1;
  }
  hid_t ct = H5Dget_type(codes);
  if (ct < 0 || H5Tget_class(ct) != H5T_INTEGER) {
    w->s = kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s: codes must be integers", w->path, name);
    return -1;
  }
  char *blob = NULL;
  size_t len = 0;
  int ncat = 0;
  if ((w->s = categories(w->path, name, cats, &blob, &len, &ncat))) return -1;
  if (ncat > KN_MAX_CLASSES) return w->too_many++, 0;
  if (w->rep->K == KNOBS_MAX_FACTORS) return skip(w, name);
  int rank;
  int64_t n = length1(codes, &rank);
  if (rank != 1 || n != w->n) {
    w->s = kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s has %lld codes, but the matrix has %lld cells", w->path, name,
                  (long long)(rank == 1 ? n : -1), (long long)w->n);
    return -1;
  }
  int K = w->rep->K;
  int32_t *c = w->codes + (size_t)K * (size_t)w->n;
  if (H5Dread(codes, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, c) < 0) {
    w->s = kn_err(KNOBS_ERR_FORMAT, "%s: cannot read the codes of obs/%s: %s", w->path, name, why());
    return -1;
  }
  for (int64_t i = 0; i < n; i++)
    if (c[i] < -1 || c[i] >= ncat) {
      w->s = kn_err(KNOBS_ERR_FORMAT, "%s: obs/%s: cell %lld has code %d, out of range -1..%d (%d categories)", w->path,
                    name, (long long)i, c[i], ncat - 1, ncat);
      return -1;
    }
  if (w->names_len + len > w->names_cap) {
    size_t nc = (w->names_len + len) * 2;
    char *q = realloc(w->names, nc);
    if (!q) {
      w->s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", w->path);
      return -1;
    }
    w->names = q, w->names_cap = nc;
  }
  memcpy(w->names + w->names_len, blob, len);
  w->names_len += len;
  snprintf(w->rep->col[K], sizeof w->rep->col[K], "%s", name);
  w->rep->ncat[K] = ncat;
  w->rep->K++;
  return 0;
}

static knobs_status child_work(const char *path, const char *m, int mfd, report *rep) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  if (H5Fis_hdf5(path) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: not an HDF5 file (an .h5ad is one)", path);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open as HDF5: %s", path, why());
  /* every component of m must exist (H5Oopen of a/b fails quietly if a is missing) */
  char part[256];
  for (const char *p = m; (p = strchr(p, '/')); p++) {
    snprintf(part, sizeof part, "%.*s", (int)(p - m), m);
    if (H5Lexists(file, part, H5P_DEFAULT) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: no '%s' (looking for %s)", path, part, m);
  }
  if (H5Lexists(file, m, H5P_DEFAULT) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: no matrix '%s'", path, m);
  hid_t x = H5Oopen(file, m, H5P_DEFAULT);
  if (x < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open '%s': %s", path, m, why());
  knobs_status s = H5Iget_type(x) == H5I_GROUP ? sparse(path, m, x, mfd, rep) : dense(path, m, x, mfd, rep);
  if (s) return s;
  obs_walk w;
  memset(&w, 0, sizeof w);
  w.path = path, w.n = rep->n, w.mfd = mfd, w.rep = rep;
  w.codes = malloc(sizeof(int32_t) * (size_t)rep->n * KNOBS_MAX_FACTORS);
  if (!w.codes) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the labels of %lld cells", path, (long long)rep->n);
  if (H5Lexists(file, "obs", H5P_DEFAULT) > 0) {
    hid_t obs = H5Oopen(file, "obs", H5P_DEFAULT);
    if (obs >= 0 && H5Iget_type(obs) == H5I_GROUP) {
      if (!str_attr(obs, "_index", w.index, sizeof w.index)) snprintf(w.index, sizeof w.index, "index");
      if (H5Literate(obs, H5_INDEX_NAME, H5_ITER_INC, NULL, obs_col, &w) < 0 && !w.s)
        return kn_err(KNOBS_ERR_FORMAT, "%s: cannot list obs: %s", path, why());
      if (w.s) return w.s;
    } else {
      snprintf(rep->note, sizeof rep->note, "obs is not a group (anndata < 0.7 wrote a compound table): labels not read");
    }
  }
  size_t nl = strlen(rep->note);
  if (w.skipped)
    nl += (size_t)snprintf(rep->note + nl, sizeof rep->note - nl, "%sobs columns that are not factors (not categorical, "
                           "or beyond %d): %s%s", nl ? "; " : "", KNOBS_MAX_FACTORS, w.skipped_names,
                           w.skipped > 3 ? " ..." : "");
  if (w.too_many && nl < sizeof rep->note)
    snprintf(rep->note + nl, sizeof rep->note - nl, "%s%d obs columns with more than %d categories are not factors",
             nl ? "; " : "", w.too_many, KN_MAX_CLASSES);
  rep->off_names = rep->off_codes + (uint64_t)rep->K * (uint64_t)rep->n * 4;
  rep->bytes = rep->off_names + w.names_len;
  if ((rep->K && !put(mfd, w.codes, (size_t)rep->K * (size_t)rep->n * 4, rep->off_codes)) ||
      (w.names_len && !put(mfd, w.names, w.names_len, rep->off_names)) || ftruncate(mfd, (off_t)rep->bytes) != 0)
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot write the labels to shared memory: %s", path, strerror(errno));
  return KNOBS_OK;
}

/* ---- the parent ------------------------------------------------------------------------------ */

static knobs_status run_child(const char *path, const char *m, report *rep, uint8_t **map) {
  *map = NULL;
  memset(rep, 0, sizeof *rep);
  int mfd = memfd_create("knobs-h5ad", MFD_CLOEXEC), pfd[2];
  if (mfd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot create shared memory: %s", path, strerror(errno));
  if (pipe(pfd) != 0) {
    close(mfd);
    return kn_err(KNOBS_ERR_IO, "%s: cannot create a pipe: %s", path, strerror(errno));
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(mfd), close(pfd[0]), close(pfd[1]);
    return kn_err(KNOBS_ERR_IO, "%s: cannot start the HDF5 reader: %s", path, strerror(errno));
  }
  if (pid == 0) { /* as in h5.c: a crash in HDF5 ends this process quietly */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (int i = 0; i < 5; i++) signal(sigs[i], SIG_DFL);
    close(pfd[0]);
    report r;
    memset(&r, 0, sizeof r);
    r.status = child_work(path, m, mfd, &r);
    if (r.status) snprintf(r.msg, sizeof r.msg, "%s", knobs_last_error());
    ssize_t k = write(pfd[1], &r, sizeof r);
    _exit(k == (ssize_t)sizeof r ? 0 : 1);
  }
  close(pfd[1]);
  size_t got = 0;
  while (got < sizeof *rep) {
    ssize_t k = read(pfd[0], (char *)rep + got, sizeof *rep - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(pfd[0]);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  knobs_status s = KNOBS_OK;
  struct stat st;
  if (got != sizeof *rep) {
    s = WIFSIGNALED(ws) ? kn_err(KNOBS_ERR_FORMAT, "%s: corrupt HDF5 file: the HDF5 library crashed (signal %d) reading it", path, WTERMSIG(ws))
                        : kn_err(KNOBS_ERR_FORMAT, "%s: the HDF5 reader stopped without an answer", path);
  } else if (rep->status) {
    rep->msg[sizeof rep->msg - 1] = 0;
    s = kn_err((knobs_status)rep->status, "%s", rep->msg);
  } else if (fstat(mfd, &st) != 0 || (uint64_t)st.st_size != rep->bytes || rep->off_indices > rep->off_data ||
             rep->off_data > rep->off_codes || rep->off_codes > rep->off_names || rep->off_names > rep->bytes ||
             rep->K < 0 || rep->K > KNOBS_MAX_FACTORS) {
    s = kn_err(KNOBS_ERR_IO, "%s: the HDF5 reader's shared memory has the wrong size", path);
  } else {
    void *p = mmap(NULL, rep->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
    if (p == MAP_FAILED) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot map shared memory: %s", path, strerror(errno));
    else *map = p;
  }
  close(mfd);
  return s;
}

knobs_status kn_h5ad_read(const char *path, const char *m, kn_cells *c) {
  memset(c, 0, sizeof *c);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "not a regular file");
  report rep;
  uint8_t *map;
  knobs_status s = run_child(path, m, &rep, &map);
  if (s) return s;
  c->map = map, c->map_len = rep.bytes;
  c->n = rep.n, c->G = (int)rep.G;
  c->indptr = (int64_t *)map;
  c->indices = (int32_t *)(map + rep.off_indices);
  c->data = (float *)(map + rep.off_data);
  snprintf(c->note, sizeof c->note, "%s", rep.note);
  char what[1200];
  snprintf(what, sizeof what, "%s:%s", path, m);
  if ((s = kn_cells_check(c, rep.nnz, what))) goto fail;
  if (rep.K == 0) return KNOBS_OK;
  /* the labels: codes -> factors; class c of factor k is the code values[k][c] */
  double *v = malloc(sizeof(double) * (size_t)rep.n * rep.K);
  const char *names[KNOBS_MAX_FACTORS];
  const char *cat[KNOBS_MAX_FACTORS]; /* first category name of each column in the blob */
  if (!v) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto fail; }
  const int32_t *codes = (const int32_t *)(map + rep.off_codes);
  const char *b = (const char *)(map + rep.off_names), *be = (const char *)(map + rep.bytes);
  for (int k = 0; k < rep.K; k++) {
    rep.col[k][sizeof rep.col[k] - 1] = 0;
    names[k] = rep.col[k];
    cat[k] = b;
    for (int j = 0; j < rep.ncat[k]; j++) {
      const char *z = memchr(b, 0, (size_t)(be - b));
      if (!z) { free(v); s = kn_err(KNOBS_ERR_IO, "%s: the HDF5 reader's category names are cut short", path); goto fail; }
      b = z + 1;
    }
    for (int64_t i = 0; i < rep.n; i++) v[(size_t)i * rep.K + k] = codes[(size_t)k * rep.n + i];
  }
  s = kn_factors_from_values(&c->fac, v, rep.n, rep.K, names, what);
  free(v);
  if (s) goto fail;
  for (int k = 0; k < c->fac.K; k++) {
    int col = 0;
    while (col < rep.K && strcmp(rep.col[col], c->fac.names[k])) col++;
    if (col == rep.K || c->fac.binned[k] || !c->fac.values[k]) continue;
    c->class_names[k] = calloc((size_t)c->fac.sizes[k], sizeof(char *));
    if (!c->class_names[k]) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto fail; }
    for (int j = 0; j < c->fac.sizes[k]; j++) {
      int code = (int)c->fac.values[k][j];
      const char *nm = "(missing)";
      if (code >= 0) {
        nm = cat[col];
        for (int q = 0; q < code; q++) nm += strlen(nm) + 1;
      }
      if (!(c->class_names[k][j] = kn_strdup(nm))) { s = knobs_last_status(); goto fail; }
    }
  }
  return KNOBS_OK;
fail:
  kn_cells_free(c);
  return s;
}
