/* result.c: knobs_result, the outcome of a metrics run: a JSON object
 *   {"knobs_version", "seed", "threads", "input": {...}, "metrics": {name: {scores...,
 *    "score": headline, "params": {...}, "seconds": s}}, ...}
 * with lookup by path, JSON text, an atomic writer and a readable table. It does not compute
 * anything; the metric files fill it through the kn_json_* helpers, which refuse NaN/Inf. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "metrics/metrics.h"

struct knobs_result {
  cJSON *root;
};

/* ---- helpers the metrics use ------------------------------------------------------------ */
static cJSON *num(double v) {
  KN_ASSERT(isfinite(v));
  return cJSON_CreateNumber(v);
}

void kn_json_num(cJSON *o, const char *key, double v) { cJSON_AddItemToObject(o, key, num(v)); }

void kn_json_vec(cJSON *o, const char *key, const double *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, num(v[i]));
  cJSON_AddItemToObject(o, key, a);
}

void kn_json_ivec(cJSON *o, const char *key, const int *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
  cJSON_AddItemToObject(o, key, a);
}

void kn_json_mat(cJSON *o, const char *key, const double *m, int r, int c) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < r; i++) {
    cJSON *row = cJSON_CreateArray();
    for (int j = 0; j < c; j++) cJSON_AddItemToArray(row, num(m[(size_t)i * c + j]));
    cJSON_AddItemToArray(a, row);
  }
  cJSON_AddItemToObject(o, key, a);
}

void kn_json_str(cJSON *o, const char *key, const char *s) { cJSON_AddItemToObject(o, key, cJSON_CreateString(s)); }

cJSON *kn_json_params(cJSON *o) {
  cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "params");
  if (!p) {
    p = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "params", p);
  }
  return p;
}

/* ---- the public object ------------------------------------------------------------------ */
knobs_result *kn_result_new(cJSON *root) {
  knobs_result *r = calloc(1, sizeof *r);
  if (!r) {
    cJSON_Delete(root);
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate a metrics result");
    return NULL;
  }
  r->root = root;
  return r;
}

cJSON *kn_result_root(knobs_result *r) { return r->root; }

void knobs_result_free(knobs_result *r) {
  if (!r) return;
  cJSON_Delete(r->root);
  free(r);
}

knobs_status knobs_result_get(const knobs_result *r, const char *path, double *value) {
  if (!r || !path) return kn_err(KNOBS_ERR_ARG, "result: no result or path");
  char buf[256];
  if (strlen(path) >= sizeof buf) return kn_err(KNOBS_ERR_ARG, "result: path too long");
  strcpy(buf, path);
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(r->root, "metrics");
  char *save = NULL;
  for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
    if (cJSON_IsArray(o)) {
      char *end;
      long i = strtol(t, &end, 10);
      o = (*end || end == t || i < 0) ? NULL : cJSON_GetArrayItem(o, (int)i);
    } else {
      o = cJSON_GetObjectItemCaseSensitive(o, t);
    }
  }
  if (!o || !cJSON_IsNumber(o)) return kn_err(KNOBS_ERR_ARG, "result: no number at '%s'", path);
  *value = o->valuedouble;
  return KNOBS_OK;
}

knobs_status knobs_result_set_string(knobs_result *r, const char *key, const char *value) {
  if (!r || !key || !value) return kn_err(KNOBS_ERR_ARG, "result: missing key or value");
  cJSON *s = cJSON_CreateString(value);
  if (!s) return kn_err(KNOBS_ERR_NOMEM, "result: cannot allocate");
  if (cJSON_GetObjectItemCaseSensitive(r->root, key)) cJSON_ReplaceItemInObjectCaseSensitive(r->root, key, s);
  else cJSON_AddItemToObject(r->root, key, s);
  return KNOBS_OK;
}

char *knobs_result_json(const knobs_result *r) {
  char *s = cJSON_Print(r->root);
  if (!s) kn_err(KNOBS_ERR_NOMEM, "result: cannot print");
  return s;
}

knobs_status knobs_result_write(const knobs_result *r, const char *path) {
  char *s = knobs_result_json(r);
  if (!s) return KNOBS_ERR_NOMEM;
  size_t n = strlen(s);
  s[n] = '\n'; /* cJSON_Print leaves room for nothing more, so write the NUL's slot only */
  knobs_status st = kn_write_file(path, s, n + 1);
  free(s);
  return st;
}

/* A growable text buffer for the table. */
typedef struct {
  char *s;
  size_t n, cap;
  int fail;
} tbuf;

static void tprintf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(tbuf *b, const char *fmt, ...) {
  if (b->fail) return;
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->fail = 1;
      return;
    }
    if (b->s && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
    char *t = realloc(b->s, cap);
    if (!t) {
      b->fail = 1;
      return;
    }
    b->s = t;
    b->cap = cap;
  }
}

char *knobs_result_table(const knobs_result *r) {
  tbuf b = {0};
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(r->root, "metrics");
  tprintf(&b, "%-14s %-40s %14s %9s\n", "metric", "score", "value", "seconds");
  const cJSON *m;
  cJSON_ArrayForEach(m, ms) {
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(m, "seconds");
    int first = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, m) {
      if (!cJSON_IsNumber(e) || !strcmp(e->string, "seconds") || !strcmp(e->string, "score")) continue;
      char sec_s[32] = "";
      if (first && sec) snprintf(sec_s, sizeof sec_s, "%.3f", sec->valuedouble);
      tprintf(&b, "%-14s %-40s %14.6g %9s\n", first ? m->string : "", e->string, e->valuedouble, sec_s);
      first = 0;
    }
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(m, "note");
    if (cJSON_IsString(note)) tprintf(&b, "%-14s note: %s\n", first ? m->string : "", note->valuestring);
  }
  if (b.fail) {
    free(b.s);
    kn_err(KNOBS_ERR_NOMEM, "result: cannot format the table");
    return NULL;
  }
  if (!b.s) return kn_strdup("");
  return b.s;
}
