/* csv.c: tables of numbers in CSV/TSV text, streamed from a kn_reader (plain or gzip) a block
 * at a time, so memory is the parsed values plus one line.
 * Accepts: ',' or tab or ';' as delimiter (chosen from the first line), an optional header
 * (a first line that is not all numbers), quotes around fields ("" inside quotes is a quote),
 * blank lines and '#' comments, CRLF line ends, a UTF-8 byte-order mark, and a first column
 * of row names (any text: cell barcodes, pandas' index) when the header's first field is
 * empty or one of index, cell, cells, barcode, barcodes, cell_id, obs_names.
 * Refuses, naming the line and column: a field that is not a number, a missing value, NaN or
 * Inf, a row with a different number of fields, a line over 1 MB, a file without data rows.
 * It does not handle newlines inside quoted fields (a table of numbers has none). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/files.h"

#define MAX_LINE (1 << 20)
#define MAX_COLS 100000

typedef struct {
  kn_reader *r;
  uint8_t buf[1 << 16];
  size_t n, at;         /* bytes in buf, next unread */
  int eof;
  char *line;           /* current line (NUL-terminated, without the line end) */
  size_t cap;
  long long lineno;
} lines;

/* Next line into L->line; 1 if there is one, 0 at the end, -1 on error (status set). */
static int next_line(lines *L) {
  size_t len = 0;
  int any = 0;
  for (;;) {
    if (L->at == L->n) {
      if (L->eof) break;
      L->n = L->r->read(L->r, L->buf, sizeof L->buf);
      L->at = 0;
      if (L->r->status) return -1;
      if (L->n == 0) {
        L->eof = 1;
        break;
      }
    }
    any = 1;
    uint8_t *p = L->buf + L->at, *nl = memchr(p, '\n', L->n - L->at);
    size_t take = nl ? (size_t)(nl - p) : L->n - L->at;
    if (len + take + 1 > MAX_LINE) {
      kn_err(KNOBS_ERR_FORMAT, "%s:%lld: line longer than %d bytes", L->r->name, L->lineno + 1, MAX_LINE);
      return -1;
    }
    if (len + take + 1 > L->cap) {
      size_t nc = L->cap ? L->cap : 4096;
      while (nc < len + take + 1) nc *= 2;
      char *q = realloc(L->line, nc);
      if (!q) {
        kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a line buffer", L->r->name);
        return -1;
      }
      L->line = q, L->cap = nc;
    }
    memcpy(L->line + len, p, take);
    len += take;
    L->at += take;
    if (nl) {
      L->at++;
      break;
    }
  }
  if (!any && len == 0) return 0;
  if (!L->line) { /* an empty last line */
    L->line = malloc(1);
    if (!L->line) {
      kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a line buffer", L->r->name);
      return -1;
    }
    L->cap = 1;
  }
  if (len && L->line[len - 1] == '\r') len--;
  L->line[len] = 0;
  L->lineno++;
  if (memchr(L->line, 0, len)) {
    kn_err(KNOBS_ERR_FORMAT, "%s:%lld: a NUL byte: not a text table", L->r->name, L->lineno);
    return -1;
  }
  return 1;
}

/* Split the line in place into fields at `delim`, unquoting; returns the count (or -1 if more
 * than max). Fields point into the line. */
static int split(char *s, char delim, char **f, int max) {
  int n = 0;
  for (;;) {
    while (*s == ' ' || (*s == '\t' && delim != '\t')) s++;
    if (n == max) return -1;
    if (*s == '"') {
      char *w = ++s;
      f[n++] = w;
      while (*s) {
        if (*s == '"' && s[1] == '"') *w++ = '"', s += 2;
        else if (*s == '"') { s++; break; }
        else *w++ = *s++;
      }
      char *end = w;
      while (*s && *s != delim) s++; /* anything after the closing quote is ignored */
      *end = 0;
      if (!*s) return n;
      s++;
    } else {
      f[n++] = s;
      char *d = strchr(s, delim);
      char *end = d ? d : s + strlen(s);
      char *t = end;
      while (t > s && (t[-1] == ' ' || (t[-1] == '\t' && delim != '\t'))) t--;
      if (!d) {
        *t = 0;
        return n;
      }
      *t = 0;
      s = d + 1;
    }
  }
}

static int is_number(const char *s, double *v) {
  char *e;
  if (!*s) return 0;
  errno = 0;
  *v = strtod(s, &e);
  return e != s && *e == 0;
}

static int blank(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return *s == 0 || *s == '#';
}

/* A header field that names a column of row names (pandas writes "" for an unnamed index). */
static int row_names_header(const char *h) {
  static const char *const names[] = {"", "index", "cell", "cells", "barcode", "barcodes", "cell_id", "obs_names"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcasecmp(h, names[i])) return 1;
  return 0;
}

void kn_csv_free(kn_csv *c) {
  if (!c) return;
  free(c->names);
  free(c->v);
  memset(c, 0, sizeof *c);
}

knobs_status kn_csv_read(kn_reader *r, kn_csv *out) {
  memset(out, 0, sizeof *out);
  lines *L = calloc(1, sizeof *L);
  char **f = malloc(sizeof(char *) * (MAX_COLS + 1));
  if (!L || !f) {
    free(L), free(f);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the parser", r->name);
  }
  L->r = r;
  knobs_status s = KNOBS_OK;
  size_t cap = 0;
  char delim = ',';
  int first = 1, k;
  for (;;) {
    k = next_line(L);
    if (k < 0) { s = knobs_last_status(); break; }
    if (k == 0) break;
    char *line = L->line;
    if (L->lineno == 1 && (unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB && (unsigned char)line[2] == 0xBF)
      line += 3;
    if (blank(line)) continue;
    if (first) {
      delim = strchr(line, '\t') ? '\t' : strchr(line, ',') ? ',' : strchr(line, ';') ? ';' : ',';
    }
    int nf = split(line, delim, f, MAX_COLS);
    if (nf < 0) { s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: more than %d columns", r->name, L->lineno, MAX_COLS); break; }
    if (first) {
      first = 0;
      out->cols = nf;
      out->names = calloc((size_t)nf, sizeof *out->names);
      if (!out->names) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", r->name); break; }
      double v;
      int numeric = 1;
      for (int j = 0; j < nf && numeric; j++) numeric = is_number(f[j], &v);
      out->header = !numeric;
      out->rownames = out->header && nf > 1 && row_names_header(f[0]);
      if (out->rownames) { /* the first column names the rows: not a column of values */
        out->cols = --nf;
        f++;
      }
      for (int j = 0; j < nf; j++) {
        if (out->header && f[j][0]) snprintf(out->names[j], sizeof out->names[j], "%s", f[j]);
        else snprintf(out->names[j], sizeof out->names[j], "col%d", j);
      }
      if (out->rownames) f--;
      if (out->header) continue;
    }
    if (nf != out->cols + out->rownames) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: %d fields, but the %s has %d", r->name, L->lineno, nf,
                 out->header ? "header" : "first row", out->cols + out->rownames);
      break;
    }
    char **fv = f + out->rownames;
    nf -= out->rownames;
    if ((size_t)(out->rows + 1) * (size_t)out->cols > cap) {
      size_t nc = cap ? cap * 2 : (size_t)out->cols * 1024;
      double *q = realloc(out->v, nc * sizeof(double));
      if (!q) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %zu values", r->name, nc); break; }
      out->v = q, cap = nc;
    }
    double *row = out->v + (size_t)out->rows * out->cols;
    for (int j = 0; j < nf && !s; j++) {
      double v;
      if (!fv[j][0])
        s = kn_err(KNOBS_ERR_DATA, "%s:%lld: column '%s' is empty (missing value)", r->name, L->lineno, out->names[j]);
      else if (!is_number(fv[j], &v))
        s = kn_err(KNOBS_ERR_FORMAT, "%s:%lld: column '%s': '%.40s' is not a number", r->name, L->lineno, out->names[j], fv[j]);
      else if (!isfinite(v))
        s = kn_err(KNOBS_ERR_DATA, "%s:%lld: column '%s' is %s ('%.40s'); knobs needs finite numbers",
                   r->name, L->lineno, out->names[j], isnan(v) ? "NaN" : "infinite or out of range", fv[j]);
      else row[j] = v;
    }
    if (s) break;
    out->rows++;
  }
  if (!s && out->rows == 0) s = kn_err(KNOBS_ERR_DATA, "%s: no data rows", r->name);
  free(L->line);
  free(L);
  free(f);
  if (s) kn_csv_free(out);
  return s;
}
