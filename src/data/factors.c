/* factors.c: factor tables of file datasets. A column of per-row values becomes a factor whose
 * classes are its distinct values in increasing order (0..size-1); a column with more than
 * KN_MAX_CLASSES distinct values is binned into KN_BINS quantile bins valued at their medians;
 * a constant column is dropped. If every combination of classes occurs exactly once, the rows
 * are a full factor grid (in whatever order they are stored) and the dataset can render any
 * factor vector. Also loads a user's factors file (.npy, .npz member, CSV/TSV).
 * It does not guess which columns are factors: every column of the file is one. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/files.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* first index i in v[0..m) with v[i] >= x */
static int lower_bound(const double *v, int m, double x) {
  int lo = 0, hi = m;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (v[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void note_add(kn_factors *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(kn_factors *f, const char *fmt, ...) {
  size_t n = strlen(f->note);
  if (n + 4 >= sizeof f->note) return;
  if (n) n += (size_t)snprintf(f->note + n, sizeof f->note - n, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->note + n, sizeof f->note - n, fmt, ap);
  va_end(ap);
}

static void find_grid(kn_factors *f, int64_t n) {
  f->grid = 0;
  if (f->K == 0 || !f->classes) return;
  double prod = 1;
  for (int k = 0; k < f->K; k++) prod *= f->sizes[k];
  if (prod != (double)n) return;
  int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
  if (!perm) return; /* not fatal: the data is then used as a plain table */
  memset(perm, 0xff, sizeof(int64_t) * (size_t)n);
  int identity = 1;
  for (int64_t i = 0; i < n; i++) {
    int64_t g = 0;
    for (int k = 0; k < f->K; k++) g = g * f->sizes[k] + f->classes[(size_t)i * f->K + k];
    if (perm[g] >= 0) { /* a combination occurs twice: not a grid */
      free(perm);
      return;
    }
    perm[g] = i;
    if (g != i) identity = 0;
  }
  f->grid = 1;
  if (identity) free(perm);
  else f->perm = perm;
}

knobs_status kn_factors_from_values(kn_factors *f, const double *v, int64_t n, int K,
                                    const char *const *names, const char *what) {
  memset(f, 0, sizeof *f);
  if (K > KNOBS_MAX_FACTORS)
    return kn_err(KNOBS_ERR_DATA, "%s: %d factor columns; at most %d are supported", what, K, KNOBS_MAX_FACTORS);
  if (K <= 0 || n <= 0) return kn_err(KNOBS_ERR_DATA, "%s: no factor values", what);
  double *col = malloc(sizeof(double) * (size_t)n);
  int32_t *cls = malloc(sizeof(int32_t) * (size_t)n * (size_t)K);
  if (!col || !cls) {
    free(col), free(cls);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the factor table", what);
  }
  knobs_status s = KNOBS_OK;
  int kept = 0;
  for (int k = 0; k < K && !s; k++) {
    char name[32];
    if (names && names[k] && names[k][0]) snprintf(name, sizeof name, "%s", names[k]);
    else snprintf(name, sizeof name, "factor%d", k);
    for (int64_t i = 0; i < n; i++) {
      double x = v[(size_t)i * K + k];
      if (!isfinite(x)) {
        s = kn_err(KNOBS_ERR_DATA, "%s: row %lld, factor '%s' is %s", what, (long long)i, name,
                   isnan(x) ? "NaN" : "infinite");
        break;
      }
      col[i] = x;
    }
    if (s) break;
    qsort(col, (size_t)n, sizeof *col, cmp_double);
    int64_t m = 1;
    for (int64_t i = 1; i < n; i++) m += col[i] != col[i - 1];
    if (m == 1) {
      note_add(f, "factor '%s' is constant and was dropped", name);
      continue;
    }
    double *val;
    int size;
    if (m <= KN_MAX_CLASSES) {
      size = (int)m;
      val = malloc(sizeof(double) * (size_t)size);
      if (!val) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", what); break; }
      int j = 0;
      val[j++] = col[0];
      for (int64_t i = 1; i < n; i++)
        if (col[i] != col[i - 1]) val[j++] = col[i];
      for (int64_t i = 0; i < n; i++) cls[(size_t)i * K + kept] = lower_bound(val, size, v[(size_t)i * K + k]);
    } else {
      /* quantile bins: edges at the b/KN_BINS quantiles (deduplicated), a row's class is the
       * number of edges <= its value, a bin's value the median of its rows */
      double edges[KN_BINS];
      int ne = 0;
      for (int b = 1; b < KN_BINS; b++) {
        double e = col[(size_t)((double)n * b / KN_BINS)];
        if (e > col[0] && (ne == 0 || e > edges[ne - 1])) edges[ne++] = e;
      }
      size = ne + 1;
      val = malloc(sizeof(double) * (size_t)size);
      if (!val) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", what); break; }
      int64_t start = 0;
      for (int b = 0; b < size; b++) {
        int64_t end = b < ne ? start : n;
        if (b < ne) while (end < n && col[end] < edges[b]) end++;
        val[b] = col[(start + end - 1) / 2];
        start = end;
      }
      for (int64_t i = 0; i < n; i++) {
        double x = v[(size_t)i * K + k];
        int c = 0;
        while (c < ne && x >= edges[c]) c++;
        cls[(size_t)i * K + kept] = c;
      }
      f->binned[kept] = 1;
      note_add(f, "factor '%s' has %lld distinct values: binned into %d quantile bins", name, (long long)m, size);
    }
    f->values[kept] = val;
    f->sizes[kept] = size;
    snprintf(f->names[kept], sizeof f->names[kept], "%s", name);
    kept++;
  }
  free(col);
  if (s) {
    free(cls);
    kn_factors_free(f);
    return s;
  }
  f->K = kept;
  if (kept == 0) {
    free(cls);
    return KNOBS_OK;
  }
  for (int64_t i = 0; i < n; i++) /* compact rows from stride K to stride kept */
    memmove(cls + (size_t)i * kept, cls + (size_t)i * K, sizeof(int32_t) * (size_t)kept);
  f->classes = cls;
  find_grid(f, n);
  return KNOBS_OK;
}

void kn_factors_grid(kn_factors *f, int K, const char *const *names, const int *sizes) {
  memset(f, 0, sizeof *f);
  KN_ASSERT(K > 0 && K <= KNOBS_MAX_FACTORS);
  f->K = K;
  for (int k = 0; k < K; k++) {
    f->sizes[k] = sizes[k];
    snprintf(f->names[k], sizeof f->names[k], "%s", names[k]);
  }
  f->grid = 1;
}

void kn_factors_free(kn_factors *f) {
  if (!f) return;
  for (int k = 0; k < KNOBS_MAX_FACTORS; k++) free(f->values[k]);
  free(f->classes);
  free(f->perm);
  memset(f, 0, sizeof *f);
}

knobs_status kn_factors_load(const char *path, int64_t n, kn_factors *f) {
  memset(f, 0, sizeof *f);
  double *v = NULL;
  int64_t rows = 0;
  int K = 0;
  char names_buf[KNOBS_MAX_FACTORS][64];
  const char *names[KNOBS_MAX_FACTORS] = {0};
  knobs_status s;
  const char *npz = strstr(path, ".npz:");
  if (npz || kn_ends_with(path, ".npy")) {
    knobs_array a;
    if (npz) {
      char file[1024];
      size_t fl = (size_t)(npz - path) + 4;
      if (fl >= sizeof file) return kn_err(KNOBS_ERR_ARG, "%s: path too long", path);
      memcpy(file, path, fl);
      file[fl] = 0;
      s = knobs_npz_read(file, npz + 5, &a);
    } else {
      s = knobs_npy_read(path, &a);
    }
    if (s) return kn_err_prefix(s, "factors file");
    if (a.ndim != 1 && a.ndim != 2) {
      knobs_array_free(&a);
      return kn_err(KNOBS_ERR_FORMAT, "%s: factors must be (N,) or (N,K), got %d dimensions", path, a.ndim);
    }
    rows = a.shape[0];
    K = a.ndim == 2 ? (int)(a.shape[1] < 1000 ? a.shape[1] : 1000) : 1;
    if (a.ndim == 2 && a.shape[1] > KNOBS_MAX_FACTORS) {
      knobs_array_free(&a);
      return kn_err(KNOBS_ERR_DATA, "%s: %lld factor columns; at most %d are supported", path,
                    (long long)a.shape[1], KNOBS_MAX_FACTORS);
    }
    if (rows == n && K > 0) {
      v = malloc(sizeof(double) * (size_t)(rows * K));
      if (!v) {
        knobs_array_free(&a);
        return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
      }
      for (int64_t i = 0; i < rows * K; i++) v[i] = knobs_array_get(&a, i);
    }
    knobs_array_free(&a);
  } else if (kn_ends_with(path, ".csv") || kn_ends_with(path, ".tsv") || kn_ends_with(path, ".txt") ||
             kn_ends_with(path, ".csv.gz") || kn_ends_with(path, ".tsv.gz")) {
    kn_reader *r;
    if ((s = kn_reader_gz(path, &r))) return kn_err_prefix(s, "factors file");
    kn_csv c;
    s = kn_csv_read(r, &c);
    kn_reader_close(r);
    if (s) return kn_err_prefix(s, "factors file");
    rows = c.rows;
    K = c.cols;
    if (K > KNOBS_MAX_FACTORS) {
      kn_csv_free(&c);
      return kn_err(KNOBS_ERR_DATA, "%s: %d factor columns; at most %d are supported", path, K, KNOBS_MAX_FACTORS);
    }
    for (int k = 0; k < K; k++) {
      snprintf(names_buf[k], sizeof names_buf[k], "%s", c.names[k]);
      names[k] = names_buf[k];
    }
    v = c.v;
    c.v = NULL;
    kn_csv_free(&c);
  } else {
    return kn_err(KNOBS_ERR_ARG, "factors file '%s': use a .npy, FILE.npz:MEMBER, .csv or .tsv file", path);
  }
  if (rows != n) {
    free(v);
    return kn_err(KNOBS_ERR_DATA, "factors file %s has %lld rows but the data has %lld observations",
                  path, (long long)rows, (long long)n);
  }
  s = kn_factors_from_values(f, v, n, K, names[0] ? names : NULL, path);
  free(v);
  return s;
}
