/* cells.c: single-cell count data from files: the sparse (CSR) count-matrix dataset behind
 * them, and the reader of 10x Genomics MTX folders (Cell Ranger's filtered_feature_bc_matrix/:
 * matrix.mtx[.gz], barcodes.tsv[.gz], features.tsv[.gz] or, before Cell Ranger 3, genes.tsv).
 * The matrix is MatrixMarket coordinate (integer or real, general), genes x cells as 10x writes
 * it, 1-based; knobs turns it into cells x genes. Every entry is checked (indices in range,
 * the declared number of entries present, no duplicates, finite values) and the barcodes and
 * features files must have one line per cell and per gene. Labels come from a factors file
 * (opts->factors), as for any file data. AnnData files are read by h5ad.c into the same
 * structure. It keeps no gene or cell names and does not filter genes or cells. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "data/cells.h"

/* ---- the dataset --------------------------------------------------------------------------- */

void kn_cells_free(kn_cells *c) {
  if (!c) return;
  if (c->map) {
    munmap(c->map, c->map_len);
  } else {
    free(c->indptr);
    free(c->indices);
    free(c->data);
  }
  for (int k = 0; k < KNOBS_MAX_FACTORS; k++)
    if (c->class_names[k]) {
      for (int j = 0; j < c->fac.sizes[k]; j++) free(c->class_names[k][j]);
      free(c->class_names[k]);
    }
  kn_factors_free(&c->fac);
  memset(c, 0, sizeof *c);
}

static void note(kn_cells *c, const char *s) {
  size_t n = strlen(c->note);
  snprintf(c->note + n, sizeof c->note - n, "%s%s", n ? "; " : "", s);
}

typedef struct {
  int32_t g;
  float v;
} pair;

static int cmp_pair(const void *a, const void *b) {
  int32_t x = ((const pair *)a)->g, y = ((const pair *)b)->g;
  return (x > y) - (x < y);
}

/* sort the entries [lo, hi) of a row by gene (scipy allows unsorted CSR rows) */
static int sort_row(kn_cells *c, int64_t lo, int64_t hi) {
  pair *p = malloc(sizeof(pair) * (size_t)(hi - lo));
  if (!p) return 0;
  for (int64_t e = lo; e < hi; e++) p[e - lo] = (pair){c->indices[e], c->data[e]};
  qsort(p, (size_t)(hi - lo), sizeof *p, cmp_pair);
  for (int64_t e = lo; e < hi; e++) c->indices[e] = p[e - lo].g, c->data[e] = p[e - lo].v;
  free(p);
  return 1;
}

knobs_status kn_cells_check(kn_cells *c, int64_t nnz, const char *what) {
  if (c->indptr[0] != 0) return kn_err(KNOBS_ERR_FORMAT, "%s: indptr starts at %lld, not 0", what, (long long)c->indptr[0]);
  for (int64_t i = 0; i < c->n; i++)
    if (c->indptr[i + 1] < c->indptr[i])
      return kn_err(KNOBS_ERR_FORMAT, "%s: indptr decreases at row %lld (%lld after %lld)", what, (long long)i,
                    (long long)c->indptr[i + 1], (long long)c->indptr[i]);
  if (c->indptr[c->n] != nnz)
    return kn_err(KNOBS_ERR_FORMAT, "%s: indptr ends at %lld but there are %lld stored values", what,
                  (long long)c->indptr[c->n], (long long)nnz);
  int nonint = 0, neg = 0;
  for (int64_t i = 0; i < c->n; i++) {
    int64_t lo = c->indptr[i], hi = c->indptr[i + 1];
    for (int64_t e = lo + 1; e < hi; e++)
      if (c->indices[e] < c->indices[e - 1]) {
        if (!sort_row(c, lo, hi)) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", what);
        break;
      }
    for (int64_t e = lo; e < hi; e++) {
      int32_t g = c->indices[e];
      float v = c->data[e];
      if (g < 0 || g >= c->G)
        return kn_err(KNOBS_ERR_FORMAT, "%s: row %lld: column index %d out of range 0..%d", what, (long long)i, g, c->G - 1);
      if (e > c->indptr[i] && g <= c->indices[e - 1])
        return kn_err(KNOBS_ERR_FORMAT, "%s: row %lld: column %d appears twice", what, (long long)i, g);
      if (!isfinite(v))
        return kn_err(KNOBS_ERR_DATA, "%s: row %lld, column %d is %s", what, (long long)i, g, isnan(v) ? "NaN" : "infinite");
      neg |= v < 0;
      nonint |= v != floorf(v);
    }
  }
  if (neg) note(c, "negative values: not raw counts (scaled data?); a count likelihood needs the raw counts");
  else if (nonint) note(c, "non-integer values: normalised data rather than raw counts?");
  return KNOBS_OK;
}

typedef struct {
  knobs_data *d;
  const kn_cells *c;
  const int64_t *idx;
  int n;
  float *obs;
  int32_t *factors;
} get_job;

static void get_run(void *ctx, int tid, int nt) {
  get_job *j = ctx;
  const kn_cells *c = j->c;
  int K = c->fac.K;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    int64_t g = j->idx[i], row = c->fac.perm ? c->fac.perm[g] : g;
    float *x = j->obs + (size_t)i * c->G;
    memset(x, 0, sizeof(float) * (size_t)c->G);
    for (int64_t e = c->indptr[row]; e < c->indptr[row + 1]; e++) x[c->indices[e]] = c->data[e];
    if (j->factors && K > 0) {
      if (c->fac.classes) memcpy(j->factors + (size_t)i * K, c->fac.classes + (size_t)row * K, sizeof(int32_t) * (size_t)K);
      else knobs_data_factors_of(j->d, g, j->factors + (size_t)i * K);
    }
  }
}

static knobs_status cells_get(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors) {
  const kn_cells *c = d->impl;
  get_job j = {d, c, idx, n, obs, factors};
  kn_pool_run(n >= 4 && (size_t)n * c->G >= ((size_t)1 << 20) ? d->pool : NULL, get_run, &j);
  return KNOBS_OK;
}

static double cells_value(const knobs_data *d, int k, int c) {
  const kn_cells *x = d->impl;
  return x->fac.values[k] ? x->fac.values[k][c] : c;
}

static const char *cells_class_name(const knobs_data *d, int k, int c) {
  const kn_cells *x = d->impl;
  return x->class_names[k] ? x->class_names[k][c] : NULL;
}

static void cells_free(void *impl) {
  kn_cells_free(impl);
  free(impl);
}

static const kn_data_ops cells_ops = {
    .get = cells_get,
    .factor_value = cells_value,
    .free_impl = cells_free,
    .class_name = cells_class_name,
};

knobs_status kn_cells_attach(knobs_data *d, kn_cells *c, const char *name, const knobs_data_opts *o) {
  kn_cells *own = malloc(sizeof *own);
  if (!own) {
    kn_cells_free(c);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", name);
  }
  *own = *c;
  memset(c, 0, sizeof *c);
  d->ops = &cells_ops;
  d->impl = own;
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", name);
  in->C = own->G, in->H = 1, in->W = 1;
  in->n = own->n;
  const char *names[KNOBS_MAX_FACTORS];
  for (int k = 0; k < own->fac.K; k++) names[k] = own->fac.names[k];
  kn_data_set_factors(in, own->fac.K, names, own->fac.sizes);
  for (int k = 0; k < own->fac.K; k++) in->factor_continuous[k] = own->fac.binned[k];
  in->has_render = own->fac.K > 0 && own->fac.grid;
  if (own->note[0]) kn_data_note(in, "%s", own->note);
  if (own->fac.note[0]) kn_data_note(in, "%s", own->fac.note);
  if (o->threads > 1 && !d->pool && !(d->pool = kn_pool_create(o->threads))) return knobs_last_status();
  return KNOBS_OK;
}

/* ---- lines of a (gzip or plain) text file -------------------------------------------------- */

typedef struct {
  kn_reader *r;
  char buf[1 << 16];
  size_t n, at;
  int eof;
  char line[4096];
  long long lineno;
} lines;

/* The next line (without its end, CR dropped) into L->line: 1, 0 at the end, -1 on error. */
static int next_line(lines *L) {
  size_t len = 0;
  int any = 0;
  for (;;) {
    if (L->at == L->n) {
      if (L->eof) break;
      L->n = L->r->read(L->r, L->buf, sizeof L->buf), L->at = 0;
      if (L->r->status) return -1;
      if (!L->n) {
        L->eof = 1;
        break;
      }
    }
    any = 1;
    char c = L->buf[L->at++];
    if (c == '\n') break;
    if (len + 1 >= sizeof L->line) {
      kn_err(KNOBS_ERR_FORMAT, "%s:%lld: line longer than %zu bytes", L->r->name, L->lineno + 1, sizeof L->line - 1);
      return -1;
    }
    L->line[len++] = c;
  }
  if (!any) return 0;
  if (len && L->line[len - 1] == '\r') len--;
  L->line[len] = 0;
  L->lineno++;
  return 1;
}

/* Lines of a text file (blank lines not counted), or -1 with the error set. */
static int64_t count_lines(const char *path) {
  kn_reader *r;
  if (kn_reader_gz(path, &r)) return -1;
  lines *L = malloc(sizeof *L);
  if (!L) {
    kn_reader_close(r);
    kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
    return -1;
  }
  L->r = r, L->n = L->at = 0, L->eof = 0, L->lineno = 0;
  int64_t n = 0;
  int k;
  while ((k = next_line(L)) > 0)
    if (L->line[strspn(L->line, " \t")]) n++;
  kn_reader_close(r);
  free(L);
  return k < 0 ? -1 : n;
}

/* ---- MatrixMarket --------------------------------------------------------------------------- */

/* whitespace-separated tokens of s, in place; returns the count (at most max) */
static int tokens(char *s, char **t, int max) {
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) break;
    if (n == max) return max + 1;
    t[n++] = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    if (*s) *s++ = 0;
  }
  return n;
}

static int parse_i64(const char *s, long long *v) {
  char *e;
  errno = 0;
  *v = strtoll(s, &e, 10);
  return e != s && !*e && !errno;
}

typedef struct {
  int32_t gene, cell;
  float v;
} entry;

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->cell != y->cell) return x->cell < y->cell ? -1 : 1;
  return (x->gene > y->gene) - (x->gene < y->gene);
}

static knobs_status read_mtx(const char *path, kn_cells *c) {
  kn_reader *r;
  knobs_status s = kn_reader_gz(path, &r);
  if (s) return s;
  lines *L = malloc(sizeof *L);
  entry *E = NULL;
  if (!L) {
    kn_reader_close(r);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  }
  L->r = r, L->n = L->at = 0, L->eof = 0, L->lineno = 0;
  char *t[6];
  int k = next_line(L), integer = 0;
  if (k < 0) { s = knobs_last_status(); goto out; }
  if (k == 0 || strncasecmp(L->line, "%%MatrixMarket", 14)) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: not a MatrixMarket file (the first line must start with %%%%MatrixMarket)", path);
    goto out;
  }
  if (tokens(L->line, t, 5) != 5) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s:1: the header must be '%%%%MatrixMarket matrix coordinate integer|real general'", path);
    goto out;
  }
  if (strcasecmp(t[1], "matrix") || strcasecmp(t[2], "coordinate") || strcasecmp(t[4], "general") ||
      (strcasecmp(t[3], "integer") && strcasecmp(t[3], "real"))) {
    s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: a MatrixMarket '%s %s %s %s'; knobs reads 'matrix coordinate integer|real "
               "general', as 10x Genomics writes", path, t[1], t[2], t[3], t[4]);
    goto out;
  }
  integer = !strcasecmp(t[3], "integer");
  long long M = -1, N = -1, nnz = -1;
  while ((k = next_line(L)) > 0) {
    char *p = L->line + strspn(L->line, " \t");
    if (!*p || *p == '%') continue;
    if (tokens(p, t, 3) != 3 || !parse_i64(t[0], &M) || !parse_i64(t[1], &N) || !parse_i64(t[2], &nnz)) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: expected the size line 'genes cells entries'", path, L->lineno);
      goto out;
    }
    break;
  }
  if (k < 0) { s = knobs_last_status(); goto out; }
  if (M < 0) { s = kn_err(KNOBS_ERR_FORMAT, "%s: truncated: no size line", path); goto out; }
  if (M < 1 || N < 1 || M > INT32_MAX || N > INT32_MAX || nnz < 0 || (double)nnz > (double)M * (double)N) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: size %lld genes x %lld cells with %lld entries is impossible", path,
               L->lineno, M, N, nnz);
    goto out;
  }
  if ((uint64_t)nnz > kn_reader_gz_bound(r) / 6) { /* an entry line takes at least 6 bytes */
    s = kn_err(KNOBS_ERR_FORMAT, "%s: the header declares %lld entries, more than the file can hold", path, nnz);
    goto out;
  }
  E = malloc(sizeof(entry) * (size_t)(nnz ? nnz : 1));
  c->indptr = calloc((size_t)N + 1, sizeof(int64_t));
  if (!E || !c->indptr) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %lld entries", path, nnz); goto out; }
  long long got = 0;
  while ((k = next_line(L)) > 0) {
    char *p = L->line + strspn(L->line, " \t");
    if (!*p || *p == '%') continue;
    if (got == nnz) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: more entries than the %lld the header declares", path, L->lineno, nnz);
      goto out;
    }
    long long i, j, iv = 0;
    double v;
    char *e;
    if (tokens(p, t, 3) != 3 || !parse_i64(t[0], &i) || !parse_i64(t[1], &j)) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: expected 'gene cell value'", path, L->lineno);
      goto out;
    }
    if (integer) {
      if (!parse_i64(t[2], &iv)) { s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: '%.40s' is not an integer", path, L->lineno, t[2]); goto out; }
      v = (double)iv;
    } else {
      v = strtod(t[2], &e);
      if (e == t[2] || *e) { s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: '%.40s' is not a number", path, L->lineno, t[2]); goto out; }
    }
    if (i < 1 || i > M) { s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: gene (row) index %lld out of range 1..%lld", path, L->lineno, i, M); goto out; }
    if (j < 1 || j > N) { s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: cell (column) index %lld out of range 1..%lld", path, L->lineno, j, N); goto out; }
    if (!isfinite((float)v)) { s = kn_err(KNOBS_ERR_DATA, "%s:%lld: value %.40s is not a finite float32", path, L->lineno, t[2]); goto out; }
    E[got++] = (entry){(int32_t)(i - 1), (int32_t)(j - 1), (float)v};
  }
  if (k < 0) { s = knobs_last_status(); goto out; }
  if (got < nnz) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: truncated: the header declares %lld entries, the file has %lld", path, nnz, got);
    goto out;
  }
  qsort(E, (size_t)nnz, sizeof *E, cmp_entry);
  c->n = N, c->G = (int)M;
  c->indices = malloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
  c->data = malloc(sizeof(float) * (size_t)(nnz ? nnz : 1));
  if (!c->indices || !c->data) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %lld entries", path, nnz); goto out; }
  for (long long e = 0; e < nnz; e++) {
    if (e && E[e].cell == E[e - 1].cell && E[e].gene == E[e - 1].gene) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s: gene %d of cell %d has two entries", path, E[e].gene + 1, E[e].cell + 1);
      goto out;
    }
    c->indptr[E[e].cell + 1]++;
    c->indices[e] = E[e].gene, c->data[e] = E[e].v;
  }
  for (long long j = 0; j < N; j++) c->indptr[j + 1] += c->indptr[j];
  s = kn_cells_check(c, nnz, path);
out:
  free(E);
  free(L);
  kn_reader_close(r);
  return s;
}

/* ---- the 10x folder ------------------------------------------------------------------------- */

static int mtx_file(const char *s) { return kn_ends_with(s, ".mtx") || kn_ends_with(s, ".mtx.gz"); }

static int mtx_dir(const char *s) {
  char p[1200];
  return kn_is_dir(s) && kn_find_file(p, sizeof p, s, "matrix.mtx");
}

static knobs_status open_mtx(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  char dir[1024], mtx[1200], side[1200];
  if (mtx_file(spec)) {
    const char *b = kn_basename(spec);
    snprintf(dir, sizeof dir, "%.*s", b == spec ? 1 : (int)(b - spec - 1), b == spec ? "." : spec);
    snprintf(mtx, sizeof mtx, "%s", spec);
  } else {
    snprintf(dir, sizeof dir, "%s", spec);
    kn_find_file(mtx, sizeof mtx, dir, "matrix.mtx");
  }
  kn_cells c;
  memset(&c, 0, sizeof c);
  knobs_status s = read_mtx(mtx, &c);
  /* the barcodes (one per cell) and features (one per gene) beside it, when there */
  const char *sides[3] = {"barcodes.tsv", "features.tsv", "genes.tsv"};
  int have_features = 0;
  for (int i = 0; i < 3 && !s; i++) {
    if ((i == 2 && have_features) || !kn_find_file(side, sizeof side, dir, sides[i])) continue;
    have_features |= i == 1;
    int64_t n = count_lines(side), want = i == 0 ? c.n : c.G;
    if (n < 0) s = knobs_last_status();
    else if (n != want)
      s = kn_err(KNOBS_ERR_DATA, "%s: %lld lines, but %s has %lld %s", side, (long long)n, kn_basename(mtx),
                 (long long)want, i == 0 ? "cells (columns)" : "genes (rows)");
  }
  if (!s && o->factors) s = kn_factors_load(o->factors, c.n, &c.fac);
  if (s) {
    kn_cells_free(&c);
    return s;
  }
  return kn_cells_attach(d, &c, kn_basename(mtx_file(spec) ? dir : spec), o);
}

/* ---- the registry entry: MTX folders and .h5ad files --------------------------------------- */

static const char *h5ad_colon(const char *s) { return strstr(s, ".h5ad:"); }

static int cells_match(const char *spec) {
  return kn_ends_with(spec, ".h5ad") || h5ad_colon(spec) || mtx_file(spec) || mtx_dir(spec);
}

static knobs_status open_h5ad(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  char path[1024];
  const char *colon = h5ad_colon(spec), *matrix = colon ? colon + 6 : "X";
  size_t pl = colon ? (size_t)(colon - spec) + 5 : strlen(spec);
  if (pl >= sizeof path) return kn_err(KNOBS_ERR_ARG, "%s: path too long", spec);
  memcpy(path, spec, pl), path[pl] = 0;
  if (!*matrix) return kn_err(KNOBS_ERR_ARG, "%s: name the matrix after the colon (X, raw/X, layers/counts)", spec);
  kn_cells c;
  memset(&c, 0, sizeof c);
  knobs_status s = kn_h5ad_read(path, matrix, &c);
  if (!s && o->factors) { /* a factors file replaces the obs labels */
    for (int k = 0; k < KNOBS_MAX_FACTORS; k++)
      if (c.class_names[k]) {
        for (int j = 0; j < c.fac.sizes[k]; j++) free(c.class_names[k][j]);
        free(c.class_names[k]), c.class_names[k] = NULL;
      }
    kn_factors_free(&c.fac);
    s = kn_factors_load(o->factors, c.n, &c.fac);
  }
  if (s) {
    kn_cells_free(&c);
    return s;
  }
  return kn_cells_attach(d, &c, kn_basename(path), o);
}

static knobs_status cells_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (kn_ends_with(spec, ".h5ad") || h5ad_colon(spec)) return open_h5ad(d, spec, o);
  return open_mtx(d, spec, o);
}

const kn_data_entry kn_data_cells = {
    NULL,
    "*.h5ad[:MATRIX], a 10x folder with matrix.mtx[.gz] (or that file): single-cell counts, cells x "
    "genes; AnnData's categorical obs columns as factors",
    cells_match,
    cells_open,
};
