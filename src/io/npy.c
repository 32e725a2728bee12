/* npy.c: knobs_array and the NumPy .npy format (versions 1.0, 2.0, 3.0).
 * Reads any byte order and C or Fortran order; writes version 1.0, little-endian, C order.
 * Does not read object arrays, structured dtypes, strings or float16 (refused with a reason).
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

static const struct {
  knobs_dtype t;
  char kind;
  int size;
  const char *name;
} dtypes[] = {
    {KNOBS_F32, 'f', 4, "float32"}, {KNOBS_F64, 'f', 8, "float64"}, {KNOBS_I64, 'i', 8, "int64"},
    {KNOBS_I32, 'i', 4, "int32"},   {KNOBS_I16, 'i', 2, "int16"},   {KNOBS_I8, 'i', 1, "int8"},
    {KNOBS_U8, 'u', 1, "uint8"},    {KNOBS_U16, 'u', 2, "uint16"},  {KNOBS_U32, 'u', 4, "uint32"},
    {KNOBS_U64, 'u', 8, "uint64"},  {KNOBS_BOOL, 'b', 1, "bool"},
};
#define NDTYPES (int)(sizeof dtypes / sizeof dtypes[0])

size_t knobs_dtype_size(knobs_dtype t) {
  for (int i = 0; i < NDTYPES; i++)
    if (dtypes[i].t == t) return (size_t)dtypes[i].size;
  return 0;
}

const char *knobs_dtype_name(knobs_dtype t) {
  for (int i = 0; i < NDTYPES; i++)
    if (dtypes[i].t == t) return dtypes[i].name;
  return "unknown";
}

int64_t knobs_array_count(const knobs_array *a) {
  int64_t n = 1;
  for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
  return n;
}

/* count of a shape with overflow check; -1 on overflow or negative dims */
static int64_t shape_count(int ndim, const int64_t *shape, size_t itemsize) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] && n > (UINT64_MAX / 2) / (uint64_t)shape[i] / (itemsize ? itemsize : 1)) return -1;
    n *= (uint64_t)shape[i];
  }
  return (int64_t)n;
}

knobs_status knobs_array_alloc(knobs_array *a, knobs_dtype t, int ndim, const int64_t *shape) {
  memset(a, 0, sizeof *a);
  if (ndim < 0 || ndim > KNOBS_MAX_DIMS) return kn_err(KNOBS_ERR_ARG, "array rank %d not in 0..8", ndim);
  size_t isz = knobs_dtype_size(t);
  int64_t n = shape_count(ndim, shape, isz);
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "array shape too large or negative");
  void *p = kn_alloc((size_t)n * isz, "array");
  if (!p) return KNOBS_ERR_NOMEM;
  a->dtype = t;
  a->ndim = ndim;
  for (int i = 0; i < ndim; i++) a->shape[i] = shape[i];
  a->data = p;
  return KNOBS_OK;
}

void knobs_array_free(knobs_array *a) {
  if (!a) return;
  kn_free(a->data);
  memset(a, 0, sizeof *a);
}

double knobs_array_get(const knobs_array *a, int64_t i) {
  const void *p = a->data;
  switch (a->dtype) {
  case KNOBS_F32: return ((const float *)p)[i];
  case KNOBS_F64: return ((const double *)p)[i];
  case KNOBS_I64: return (double)((const int64_t *)p)[i];
  case KNOBS_I32: return ((const int32_t *)p)[i];
  case KNOBS_I16: return ((const int16_t *)p)[i];
  case KNOBS_I8: return ((const int8_t *)p)[i];
  case KNOBS_U8: return ((const uint8_t *)p)[i];
  case KNOBS_U16: return ((const uint16_t *)p)[i];
  case KNOBS_U32: return ((const uint32_t *)p)[i];
  case KNOBS_U64: return (double)((const uint64_t *)p)[i];
  case KNOBS_BOOL: return ((const uint8_t *)p)[i] != 0;
  }
  return 0;
}

knobs_status knobs_array_convert(const knobs_array *a, knobs_dtype t, knobs_array *out) {
  knobs_status s = knobs_array_alloc(out, t, a->ndim, a->shape);
  if (s) return s;
  int64_t n = knobs_array_count(a);
  if (t == a->dtype) {
    memcpy(out->data, a->data, (size_t)n * knobs_dtype_size(t));
    return KNOBS_OK;
  }
  for (int64_t i = 0; i < n; i++) {
    double v = knobs_array_get(a, i);
    switch (t) {
    case KNOBS_F32: ((float *)out->data)[i] = (float)v; break;
    case KNOBS_F64: ((double *)out->data)[i] = v; break;
    case KNOBS_I64: ((int64_t *)out->data)[i] = (int64_t)v; break;
    case KNOBS_I32: ((int32_t *)out->data)[i] = (int32_t)v; break;
    case KNOBS_I16: ((int16_t *)out->data)[i] = (int16_t)v; break;
    case KNOBS_I8: ((int8_t *)out->data)[i] = (int8_t)v; break;
    case KNOBS_U8: ((uint8_t *)out->data)[i] = (uint8_t)v; break;
    case KNOBS_U16: ((uint16_t *)out->data)[i] = (uint16_t)v; break;
    case KNOBS_U32: ((uint32_t *)out->data)[i] = (uint32_t)v; break;
    case KNOBS_U64: ((uint64_t *)out->data)[i] = (uint64_t)v; break;
    case KNOBS_BOOL: ((uint8_t *)out->data)[i] = v != 0; break;
    }
  }
  return KNOBS_OK;
}

/* ---- header parsing --------------------------------------------------------------------- */

typedef struct {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && isspace((unsigned char)*c->p)) c->p++;
}

static int eat(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* a Python string literal in single or double quotes, without escapes */
static int read_str(cursor *c, char *out, size_t cap) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || n + 1 >= cap) return 0;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end) return 0;
  c->p++;
  out[n] = 0;
  return 1;
}

static knobs_status parse_descr(const char *d, kn_npy_header *h, const char *name) {
  char order = d[0];
  const char *k = d;
  if (order == '<' || order == '>' || order == '|' || order == '=') k++;
  else order = '=';
  char kind = k[0];
  char *e;
  long size = strtol(k + 1, &e, 10);
  if (!kind || e == k + 1 || *e)
    return kn_err(KNOBS_ERR_FORMAT, "%s: dtype '%s' is not a plain numeric dtype", name, d);
  for (int i = 0; i < NDTYPES; i++)
    if (dtypes[i].kind == kind && dtypes[i].size == size) {
      h->dtype = dtypes[i].t;
      h->big_endian = order == '>' && size > 1;
      return KNOBS_OK;
    }
  return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: dtype '%s' is not supported (use float32/64, int8-64, "
                "uint8-64 or bool)", name, d);
}

static knobs_status parse_dict(const char *txt, size_t n, kn_npy_header *h, const char *name) {
  cursor c = {txt, txt + n};
  int have_descr = 0, have_fo = 0, have_shape = 0;
  if (!eat(&c, '{')) goto bad;
  for (;;) {
    if (eat(&c, '}')) break;
    char key[32], val[64];
    if (!read_str(&c, key, sizeof key) || !eat(&c, ':')) goto bad;
    if (!strcmp(key, "descr")) {
      if (!read_str(&c, val, sizeof val)) {
        return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: structured dtypes are not supported", name);
      }
      knobs_status s = parse_descr(val, h, name);
      if (s) return s;
      have_descr = 1;
    } else if (!strcmp(key, "fortran_order")) {
      skip_ws(&c);
      if ((size_t)(c.end - c.p) >= 4 && !strncmp(c.p, "True", 4)) h->fortran = 1, c.p += 4;
      else if ((size_t)(c.end - c.p) >= 5 && !strncmp(c.p, "False", 5)) h->fortran = 0, c.p += 5;
      else goto bad;
      have_fo = 1;
    } else if (!strcmp(key, "shape")) {
      if (!eat(&c, '(')) goto bad;
      h->ndim = 0;
      for (;;) {
        if (eat(&c, ')')) break;
        skip_ws(&c);
        char *e;
        errno = 0;
        long long v = strtoll(c.p, &e, 10);
        if (e == c.p || errno || v < 0 || e > c.end) goto bad;
        if (h->ndim >= KNOBS_MAX_DIMS)
          return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: more than %d dimensions", name, KNOBS_MAX_DIMS);
        h->shape[h->ndim++] = v;
        c.p = e;
        skip_ws(&c);
        if (eat(&c, ',')) continue;
        if (eat(&c, ')')) break;
        goto bad;
      }
      have_shape = 1;
    } else {
      goto bad;
    }
    if (eat(&c, ',')) continue;
    if (eat(&c, '}')) break;
    goto bad;
  }
  if (!have_descr || !have_fo || !have_shape) goto bad;
  return KNOBS_OK;
bad:
  return kn_err(KNOBS_ERR_FORMAT, "%s: malformed npy header dictionary near offset %ld: '%.60s'",
                name, (long)(c.p - txt), txt);
}

knobs_status kn_npy_read_header(kn_reader *r, kn_npy_header *h) {
  memset(h, 0, sizeof *h);
  uint8_t pre[12];
  knobs_status s = kn_read_exact(r, pre, 10, "npy preamble");
  if (s) return s;
  if (memcmp(pre, "\x93NUMPY", 6) != 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: not a .npy file (bad magic)", r->name);
  int major = pre[6];
  uint32_t hlen;
  if (major == 1) {
    hlen = pre[8] | (uint32_t)pre[9] << 8;
  } else if (major == 2 || major == 3) {
    s = kn_read_exact(r, pre + 10, 2, "npy header length");
    if (s) return s;
    hlen = pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
  } else {
    return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: npy format version %d.%d not supported", r->name,
                  major, pre[7]);
  }
  if (hlen > 1 << 20)
    return kn_err(KNOBS_ERR_FORMAT, "%s: npy header length %u is implausible", r->name, hlen);
  if (r->size != UINT64_MAX && r->pos + hlen > r->size)
    return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: npy header of %u bytes runs past the end",
                  r->name, hlen);
  char *txt = malloc(hlen + 1);
  if (!txt) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the header", r->name);
  s = kn_read_exact(r, txt, hlen, "npy header");
  if (!s) {
    txt[hlen] = 0;
    s = parse_dict(txt, hlen, h, r->name);
  }
  free(txt);
  if (s) return s;
  size_t isz = knobs_dtype_size(h->dtype);
  int64_t n = shape_count(h->ndim, h->shape, isz);
  if (n < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: npy shape overflows", r->name);
  h->data_bytes = (uint64_t)n * isz;
  if (r->size != UINT64_MAX) {
    uint64_t left = r->size - r->pos;
    if (left < h->data_bytes)
      return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: header says %llu data bytes, file has %llu",
                    r->name, (unsigned long long)h->data_bytes, (unsigned long long)left);
    if (left > h->data_bytes)
      return kn_err(KNOBS_ERR_FORMAT, "%s: %llu bytes after the data the header describes",
                    r->name, (unsigned long long)(left - h->data_bytes));
  }
  return KNOBS_OK;
}

static void byteswap(void *p, int64_t n, size_t isz) {
  uint8_t *b = p;
  for (int64_t i = 0; i < n; i++, b += isz)
    for (size_t j = 0; j < isz / 2; j++) {
      uint8_t t = b[j];
      b[j] = b[isz - 1 - j];
      b[isz - 1 - j] = t;
    }
}

knobs_status kn_npy_read_data(kn_reader *r, const kn_npy_header *h, knobs_array *out) {
  knobs_array a;
  knobs_status s = knobs_array_alloc(&a, h->dtype, h->ndim, h->shape);
  if (s) return kn_err_prefix(s, "%s", r->name);
  s = kn_read_exact(r, a.data, h->data_bytes, "npy data");
  if (s) {
    knobs_array_free(&a);
    return s;
  }
  size_t isz = knobs_dtype_size(h->dtype);
  int64_t n = knobs_array_count(&a);
  if (h->big_endian) byteswap(a.data, n, isz);
  if (h->fortran && h->ndim > 1) {
    knobs_array c;
    s = knobs_array_alloc(&c, h->dtype, h->ndim, h->shape);
    if (s) {
      knobs_array_free(&a);
      return s;
    }
    int64_t idx[KNOBS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) { /* i runs over C order; idx is its multi-index */
      int64_t off = 0, stride = 1;
      for (int d = 0; d < h->ndim; d++) {
        off += idx[d] * stride;
        stride *= h->shape[d];
      }
      memcpy((uint8_t *)c.data + i * isz, (uint8_t *)a.data + off * isz, isz);
      for (int d = h->ndim - 1; d >= 0; d--) {
        if (++idx[d] < h->shape[d]) break;
        idx[d] = 0;
      }
    }
    knobs_array_free(&a);
    a = c;
  }
  if (h->dtype == KNOBS_BOOL) {
    uint8_t *b = a.data;
    for (int64_t i = 0; i < n; i++) b[i] = b[i] != 0;
  }
  *out = a;
  return KNOBS_OK;
}

knobs_status knobs_npy_read(const char *path, knobs_array *out) {
  memset(out, 0, sizeof *out);
  kn_reader *r;
  knobs_status s = kn_reader_file(path, &r);
  if (s) return s;
  kn_npy_header h;
  s = kn_npy_read_header(r, &h);
  if (!s) s = kn_npy_read_data(r, &h, out);
  kn_reader_close(r);
  return s;
}

size_t kn_npy_header_bytes(const knobs_array *a, char *buf) {
  /* Python tuple syntax: "()", "(5,)", "(3, 4)" */
  char shape[200] = "";
  size_t sl = 0;
  for (int i = 0; i < a->ndim; i++)
    sl += (size_t)snprintf(shape + sl, sizeof shape - sl, "%s%lld", i ? ", " : "",
                           (long long)a->shape[i]);
  if (a->ndim == 1) snprintf(shape + sl, sizeof shape - sl, ",");
  const char *descr = "<f4";
  switch (a->dtype) {
  case KNOBS_F32: descr = "<f4"; break;
  case KNOBS_F64: descr = "<f8"; break;
  case KNOBS_I64: descr = "<i8"; break;
  case KNOBS_I32: descr = "<i4"; break;
  case KNOBS_I16: descr = "<i2"; break;
  case KNOBS_I8: descr = "|i1"; break;
  case KNOBS_U8: descr = "|u1"; break;
  case KNOBS_U16: descr = "<u2"; break;
  case KNOBS_U32: descr = "<u4"; break;
  case KNOBS_U64: descr = "<u8"; break;
  case KNOBS_BOOL: descr = "|b1"; break;
  }
  char dict[240];
  int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                    descr, shape);
  size_t total = 10 + (size_t)dl + 1;
  size_t pad = (64 - total % 64) % 64;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  size_t hlen = (size_t)dl + pad + 1;
  buf[8] = (char)(hlen & 0xff);
  buf[9] = (char)(hlen >> 8);
  memcpy(buf + 10, dict, (size_t)dl);
  memset(buf + 10 + dl, ' ', pad);
  buf[10 + dl + pad] = '\n';
  return 10 + hlen;
}

knobs_status knobs_npy_write(const char *path, const knobs_array *a) {
  char hdr[320];
  size_t hl = kn_npy_header_bytes(a, hdr);
  kn_atomic *f = kn_atomic_open(path);
  if (!f) return knobs_last_status();
  size_t nb = (size_t)knobs_array_count(a) * knobs_dtype_size(a->dtype);
  if (fwrite(hdr, 1, hl, kn_atomic_file(f)) != hl ||
      (nb && fwrite(a->data, 1, nb, kn_atomic_file(f)) != nb)) {
    kn_atomic_abort(f);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  return kn_atomic_commit(f);
}
