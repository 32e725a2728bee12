/* safetensors.c: the checkpoint container. An 8-byte little-endian header length N, N bytes of
 * JSON {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "string", ...}}, then the data section. Validation follows the
 * format's rules (https://github.com/huggingface/safetensors, "Format"): offsets inside the data
 * section, sizes equal to dtype x shape, no overlaps, no holes, header at most 100 MB.
 * It does not memory-map: checkpoints are read whole (they are tens of MB). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

#define MAX_HEADER (100u << 20)

static const struct {
  const char *name;
  knobs_dtype t;
} st_types[] = {{"F32", KNOBS_F32}, {"F64", KNOBS_F64}, {"I64", KNOBS_I64}, {"I32", KNOBS_I32},
                {"I16", KNOBS_I16}, {"I8", KNOBS_I8},   {"U8", KNOBS_U8},   {"U16", KNOBS_U16},
                {"U32", KNOBS_U32}, {"U64", KNOBS_U64}, {"BOOL", KNOBS_BOOL}};
#define NST (int)(sizeof st_types / sizeof st_types[0])

static const char *st_name(knobs_dtype t) {
  for (int i = 0; i < NST; i++)
    if (st_types[i].t == t) return st_types[i].name;
  return "F32";
}

void kn_st_free(kn_safetensors *st) {
  if (!st) return;
  free(st->t);
  free(st->metadata_json);
  free(st->data);
  memset(st, 0, sizeof *st);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const kn_st_tensor *)a)->name, ((const kn_st_tensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
  const kn_st_tensor *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

knobs_status kn_st_parse(const uint8_t *buf, size_t n, const char *name, kn_safetensors *st) {
  memset(st, 0, sizeof *st);
  snprintf(st->path, sizeof st->path, "%s", name);
  if (n < 8) return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: %zu bytes, no safetensors header", name, n);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
  if (hl > MAX_HEADER)
    return kn_err(KNOBS_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", name,
                  (unsigned long long)hl);
  if (hl > n - 8)
    return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: header of %llu bytes, file has %zu after the "
                  "length", name, (unsigned long long)hl, n - 8);
  if (hl == 0 || buf[8] != '{')
    return kn_err(KNOBS_ERR_FORMAT, "%s: header is not a JSON object", name);
  cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hl);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return kn_err(KNOBS_ERR_FORMAT, "%s: header is not valid JSON", name);
  }
  knobs_status s = KNOBS_OK;
  int cap = cJSON_GetArraySize(root);
  st->t = calloc((size_t)cap + 1, sizeof *st->t);
  if (!st->t) { cJSON_Delete(root); return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", name); }
  st->data_bytes = n - 8 - hl;
  for (cJSON *it = root->child; it && !s; it = it->next) {
    if (!strcmp(it->string, "__metadata__")) {
      if (!cJSON_IsObject(it)) { s = kn_err(KNOBS_ERR_FORMAT, "%s: __metadata__ is not an object", name); break; }
      /* a second one would overwrite (and leak) the first: JSON keys must be unique */
      if (st->metadata_json) { s = kn_err(KNOBS_ERR_FORMAT, "%s: __metadata__ appears twice", name); break; }
      for (cJSON *m = it->child; m; m = m->next)
        if (!cJSON_IsString(m)) { s = kn_err(KNOBS_ERR_FORMAT, "%s: metadata value '%s' is not a string", name, m->string); break; }
      if (!s) st->metadata_json = cJSON_PrintUnformatted(it);
      continue;
    }
    kn_st_tensor *t = &st->t[st->n];
    if (strlen(it->string) >= sizeof t->name) { s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor name too long", name); break; }
    strcpy(t->name, it->string);
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", name, t->name);
      break;
    }
    int found = 0;
    for (int i = 0; i < NST; i++)
      if (!strcmp(dt->valuestring, st_types[i].name)) t->dtype = st_types[i].t, found = 1;
    if (!found) { s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: tensor '%s' has unsupported dtype %s", name, t->name, dt->valuestring); break; }
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > KNOBS_MAX_DIMS) { s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' has %d dims", name, t->name, t->ndim); break; }
    uint64_t count = 1;
    int i = 0;
    for (cJSON *d = sh->child; d; d = d->next, i++) {
      if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9.0e15 ||
          d->valuedouble != (double)(int64_t)d->valuedouble) { s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' has a bad shape", name, t->name); break; }
      t->shape[i] = (int64_t)d->valuedouble;
      if (t->shape[i] && count > UINT64_MAX / 16 / (uint64_t)t->shape[i]) { s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' shape overflows", name, t->name); break; }
      count *= (uint64_t)t->shape[i];
    }
    if (s) break;
    cJSON *b = cJSON_GetArrayItem(of, 0), *e = cJSON_GetArrayItem(of, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e) || b->valuedouble < 0 || e->valuedouble < b->valuedouble ||
        e->valuedouble > (double)st->data_bytes) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' data_offsets lie outside the %llu-byte data "
                 "section (file truncated?)", name, t->name, (unsigned long long)st->data_bytes);
      break;
    }
    t->begin = (uint64_t)b->valuedouble;
    t->end = (uint64_t)e->valuedouble;
    if (t->end - t->begin != count * knobs_dtype_size(t->dtype)) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' has %llu bytes but %s x shape needs %llu", name,
                 t->name, (unsigned long long)(t->end - t->begin), dt->valuestring,
                 (unsigned long long)(count * knobs_dtype_size(t->dtype)));
      break;
    }
    st->n++;
  }
  cJSON_Delete(root);
  if (!s) { /* unique names: kn_st_find would only ever see the first of two */
    kn_st_tensor *byname = malloc(((size_t)st->n + 1) * sizeof *byname);
    if (!byname) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", name);
    else {
      memcpy(byname, st->t, (size_t)st->n * sizeof *byname);
      qsort(byname, (size_t)st->n, sizeof *byname, cmp_name);
      for (int i = 1; i < st->n && !s; i++)
        if (!strcmp(byname[i].name, byname[i - 1].name))
          s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' appears twice", name, byname[i].name);
      free(byname);
    }
  }
  if (!s) { /* no overlaps, no holes */
    kn_st_tensor *sorted = malloc(((size_t)st->n + 1) * sizeof *sorted);
    if (!sorted) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", name);
    else {
      memcpy(sorted, st->t, (size_t)st->n * sizeof *sorted);
      qsort(sorted, (size_t)st->n, sizeof *sorted, cmp_begin);
      uint64_t at = 0;
      for (int i = 0; i < st->n && !s; i++) {
        if (sorted[i].begin != at)
          s = kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' starts at %llu, expected %llu (overlap or hole)",
                     name, sorted[i].name, (unsigned long long)sorted[i].begin, (unsigned long long)at);
        at = sorted[i].end;
      }
      if (!s && at != st->data_bytes)
        s = kn_err(KNOBS_ERR_FORMAT, "%s: %llu bytes after the last tensor", name,
                   (unsigned long long)(st->data_bytes - at));
      free(sorted);
    }
  }
  if (!s) {
    st->data = malloc(st->data_bytes ? st->data_bytes : 1);
    if (!st->data) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %llu bytes", name, (unsigned long long)st->data_bytes);
    else memcpy(st->data, buf + 8 + hl, st->data_bytes);
  }
  if (s) kn_st_free(st);
  return s;
}

knobs_status kn_st_read(const char *path, kn_safetensors *st) {
  char *buf;
  size_t n;
  memset(st, 0, sizeof *st);
  knobs_status s = kn_read_file(path, (size_t)1 << 36, &buf, &n);
  if (s) return s;
  s = kn_st_parse((uint8_t *)buf, n, path, st);
  free(buf);
  return s;
}

const kn_st_tensor *kn_st_find(const kn_safetensors *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (!strcmp(st->t[i].name, name)) return &st->t[i];
  return NULL;
}

knobs_status kn_st_get_f32(const kn_safetensors *st, const char *name, int ndim,
                           const int64_t *shape, float *dst) {
  const kn_st_tensor *t = kn_st_find(st, name);
  if (!t) return kn_err(KNOBS_ERR_FORMAT, "%s: missing tensor '%s'", st->path, name);
  if (t->dtype != KNOBS_F32)
    return kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", st->path, name, st_name(t->dtype));
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (!ok) {
    char want[128] = "", got[128] = "";
    size_t a = 0, b = 0;
    for (int i = 0; i < ndim; i++) a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", i ? "," : "", (long long)shape[i]);
    for (int i = 0; i < t->ndim; i++) b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    return kn_err(KNOBS_ERR_FORMAT, "%s: tensor '%s' has shape (%s), expected (%s)", st->path, name, got, want);
  }
  memcpy(dst, st->data + t->begin, t->end - t->begin);
  return KNOBS_OK;
}

knobs_status kn_st_write(const char *path, const kn_st_entry *e, int n, const char *metadata_json) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  knobs_status s = KNOBS_OK;
  if (metadata_json) {
    cJSON *m = cJSON_Parse(metadata_json);
    if (!m || !cJSON_IsObject(m)) {
      cJSON_Delete(m);
      cJSON_Delete(root);
      return kn_err(KNOBS_ERR_ARG, "%s: metadata is not a JSON object", path);
    }
    cJSON_AddItemToObject(root, "__metadata__", m);
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "dtype", st_name(e[i].dtype));
    cJSON *sh = cJSON_AddArrayToObject(t, "shape");
    uint64_t count = 1;
    for (int d = 0; d < e[i].ndim; d++) {
      cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e[i].shape[d]));
      count *= (uint64_t)e[i].shape[d];
    }
    uint64_t bytes = count * knobs_dtype_size(e[i].dtype);
    cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + bytes)));
    cJSON_AddItemToObject(root, e[i].name, t);
    off += bytes;
  }
  char *hdr = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!hdr) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the header", path);
  size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7; /* pad with spaces to 8 bytes */
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  kn_atomic *a = kn_atomic_open(path);
  if (!a) {
    free(hdr);
    return knobs_last_status();
  }
  FILE *f = kn_atomic_file(a);
  int ok = fwrite(len, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
  for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
  for (int i = 0; ok && i < n; i++) {
    uint64_t count = 1;
    for (int d = 0; d < e[i].ndim; d++) count *= (uint64_t)e[i].shape[d];
    size_t bytes = (size_t)count * knobs_dtype_size(e[i].dtype);
    ok = !bytes || fwrite(e[i].data, 1, bytes, f) == bytes;
  }
  free(hdr);
  if (!ok) {
    kn_atomic_abort(a);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  s = kn_atomic_commit(a);
  return s;
}
