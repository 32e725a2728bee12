/* files.c: the plumbing of the file-backed datasets: a gzip-or-plain reader, the locator of a
 * stored zip member, the observation store (memory, or pread on demand so that a 6 GB file
 * costs no memory), and kn_filedata, the knobs_data over a store and a factor table.
 * It does not parse any dataset's format; see files.h for the contracts. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/files.h"

/* ---- gzip or plain reader ----------------------------------------------------------------- */

typedef struct {
  kn_reader r;
  gzFile g;
  uint64_t file_size;
} gz_reader;

static size_t gz_read(kn_reader *r, void *buf, size_t n) {
  gz_reader *z = (gz_reader *)r;
  if (r->status) return 0;
  size_t got = 0;
  while (got < n) {
    unsigned want = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
    int k = gzread(z->g, (char *)buf + got, want);
    if (k <= 0) break;
    got += (size_t)k;
  }
  if (got < n) { /* end of data, or an error: zlib keeps the reason */
    int e = Z_OK;
    const char *m = gzerror(z->g, &e);
    if (e == Z_ERRNO)
      r->status = kn_err(KNOBS_ERR_IO, "%s: read failed: %s", r->name, strerror(errno));
    else if (e != Z_OK && e != Z_STREAM_END) {
      size_t nl = strlen(r->name); /* zlib's message starts with the path: say it once */
      if (!strncmp(m, r->name, nl) && !strncmp(m + nl, ": ", 2)) m += nl + 2;
      r->status = kn_err(KNOBS_ERR_FORMAT, "%s: corrupt or truncated gzip data: %s", r->name, m);
    }
  }
  r->pos += got;
  return r->status ? 0 : got;
}

static void gz_close(kn_reader *r) {
  gzclose(((gz_reader *)r)->g);
  free(r);
}

knobs_status kn_reader_gz(const char *path, kn_reader **out) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return kn_err(KNOBS_ERR_IO, "%s: not a regular file", path);
  gz_reader *z = calloc(1, sizeof *z);
  if (!z) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a reader", path);
  z->g = gzopen(path, "rb");
  if (!z->g) {
    free(z);
    return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM));
  }
  gzbuffer(z->g, 1 << 17);
  z->r.read = gz_read;
  z->r.close = gz_close;
  z->r.size = gzdirect(z->g) ? (uint64_t)st.st_size : UINT64_MAX;
  z->file_size = (uint64_t)st.st_size;
  snprintf(z->r.name, sizeof z->r.name, "%s", path);
  *out = &z->r;
  return KNOBS_OK;
}

uint64_t kn_reader_gz_bound(const kn_reader *r) {
  if (r->size != UINT64_MAX) return r->size;
  return ((const gz_reader *)r)->file_size * 1032 + 64;
}

knobs_status kn_reader_expect_end(kn_reader *r, const char *what) {
  uint8_t b;
  size_t got = r->read(r, &b, 1);
  if (r->status) return r->status;
  if (got) return r->status = kn_err(KNOBS_ERR_FORMAT, "%s: unexpected bytes after the %s (at byte %llu)",
                                     r->name, what, (unsigned long long)(r->pos - 1));
  return KNOBS_OK;
}

/* ---- stored zip members ---------------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
  uint8_t *p = buf;
  while (n) {
    ssize_t k = pread(fd, p, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    p += k, n -= (size_t)k, off += (uint64_t)k;
  }
  return 1;
}

static knobs_status zbad(const char *path, const char *what) {
  return kn_err(KNOBS_ERR_FORMAT, "%s: not a valid zip/npz file: %s", path, what);
}

knobs_status kn_zip_span(const char *path, const char *member, uint64_t *off, int *method,
                         uint64_t *csize, uint64_t *usize) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  uint8_t *tail = NULL, *cd = NULL;
  knobs_status s = KNOBS_OK;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { s = kn_err(KNOBS_ERR_IO, "%s: not a regular file", path); goto out; }
  uint64_t fsize = (uint64_t)st.st_size;
  if (fsize < 22) { s = zbad(path, "too short"); goto out; }
  size_t tl = fsize < 22 + 65535 ? (size_t)fsize : 22 + 65535;
  tail = malloc(tl);
  if (!tail) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto out; }
  if (!pread_all(fd, tail, tl, fsize - tl)) { s = zbad(path, "read failed"); goto out; }
  long e = -1;
  for (long i = (long)tl - 22; i >= 0; i--)
    if (rd32(tail + i) == 0x06054b50) { e = i; break; }
  if (e < 0) { s = zbad(path, "no end-of-central-directory record"); goto out; }
  uint64_t n = rd16(tail + e + 10), cds = rd32(tail + e + 12), cdo = rd32(tail + e + 16);
  uint64_t epos = fsize - tl + (uint64_t)e;
  if (e >= 20 && rd32(tail + e - 20) == 0x07064b50) { /* ZIP64 locator -> ZIP64 end record */
    uint64_t z = rd64(tail + e - 20 + 8);
    uint8_t r[56];
    if (z > epos || epos - z < 56 || !pread_all(fd, r, 56, z) || rd32(r) != 0x06064b50) { s = zbad(path, "bad ZIP64 end record"); goto out; }
    n = rd64(r + 32), cds = rd64(r + 40), cdo = rd64(r + 48);
  }
  if (cdo > fsize || cds > fsize - cdo || cds > (64u << 20)) { s = zbad(path, "central directory outside the file"); goto out; }
  cd = malloc(cds ? cds : 1);
  if (!cd) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto out; }
  if (!pread_all(fd, cd, cds, cdo)) { s = zbad(path, "central directory truncated"); goto out; }
  size_t ml = strlen(member);
  uint64_t p = 0;
  int found = 0;
  for (uint64_t i = 0; i < n && !found; i++) {
    if (cds - p < 46 || rd32(cd + p) != 0x02014b50) { s = zbad(path, "bad central directory entry"); goto out; }
    uint16_t nl = rd16(cd + p + 28), xl = rd16(cd + p + 30), cl = rd16(cd + p + 32);
    if (cds - p - 46 < (uint64_t)nl + xl + cl) { s = zbad(path, "central directory entry runs past its end"); goto out; }
    if (nl == ml && !memcmp(cd + p + 46, member, ml)) {
      found = 1;
      *method = rd16(cd + p + 10);
      uint64_t cs = rd32(cd + p + 20), us = rd32(cd + p + 24), lo = rd32(cd + p + 42);
      const uint8_t *x = cd + p + 46 + nl, *xe = x + xl;
      while (xe - x >= 4) { /* ZIP64 extra: the saturated fields, in order */
        uint16_t id = rd16(x), sz = rd16(x + 2);
        if (xe - x - 4 < sz) break;
        if (id == 1) {
          const uint8_t *q = x + 4, *qe = q + sz;
          if (us == 0xffffffff && qe - q >= 8) us = rd64(q), q += 8;
          if (cs == 0xffffffff && qe - q >= 8) cs = rd64(q), q += 8;
          if (lo == 0xffffffff && qe - q >= 8) lo = rd64(q), q += 8;
        }
        x += 4 + sz;
      }
      uint8_t lh[30];
      if (lo > fsize || fsize - lo < 30 || !pread_all(fd, lh, 30, lo) || rd32(lh) != 0x04034b50) { s = zbad(path, "bad local file header"); goto out; }
      uint64_t d = lo + 30 + rd16(lh + 26) + rd16(lh + 28);
      if (d > fsize || cs > fsize - d) { s = kn_err(KNOBS_ERR_FORMAT, "%s: truncated: member '%s' needs %llu bytes at offset %llu, the file has %llu", path, member, (unsigned long long)cs, (unsigned long long)d, (unsigned long long)fsize); goto out; }
      *off = d, *csize = cs, *usize = us;
    }
    p += 46 + (uint64_t)nl + xl + cl;
  }
  if (!found) s = kn_err(KNOBS_ERR_FORMAT, "%s: no member '%s'", path, member);
out:
  free(tail);
  free(cd);
  close(fd);
  return s;
}

const char *kn_basename(const char *path) {
  const char *b = strrchr(path, '/');
  return b ? b + 1 : path;
}

int kn_find_file(char *out, size_t n, const char *dir, const char *name) {
  if ((size_t)snprintf(out, n, "%s/%s", dir, name) < n && kn_file_exists(out)) return 1;
  if ((size_t)snprintf(out, n, "%s/%s.gz", dir, name) < n && kn_file_exists(out)) return 1;
  return 0;
}

/* ---- the observation store ---------------------------------------------------------------- */

void kn_store_init(kn_store *s, const char *name, int64_t n, int C, int H, int W, knobs_dtype t,
                   int hwc, float scale) {
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->n = n, s->C = C, s->H = H, s->W = W, s->dtype = t, s->hwc = hwc, s->scale = scale;
  s->frames = 1;
  s->row_bytes = (uint64_t)C * H * W * knobs_dtype_size(t);
  s->stride = s->row_bytes;
  s->fd = -1;
}

knobs_status kn_store_alloc(kn_store *s) {
  if (s->n <= 0 || s->row_bytes == 0 || (uint64_t)s->n > (UINT64_MAX >> 2) / s->row_bytes)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %lld rows of %llu bytes is not a usable size", s->name,
                  (long long)s->n, (unsigned long long)s->row_bytes);
  uint64_t bytes = (uint64_t)s->n * s->row_bytes;
  s->mem = kn_alloc((size_t)bytes, "observations");
  if (!s->mem) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %.1f MB for %lld observations",
                             s->name, (double)bytes / 1e6, (long long)s->n);
  return KNOBS_OK;
}

knobs_status kn_store_open_file(kn_store *s, const char *path, uint64_t off) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return kn_err(KNOBS_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
  }
  uint64_t fsize = (uint64_t)st.st_size;
  if (s->n <= 0 || (s->row_bytes && (uint64_t)s->n > UINT64_MAX / 2 / s->row_bytes) || off > fsize ||
      (uint64_t)s->n * s->row_bytes > fsize - off) {
    close(fd);
    return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: %lld observations of %llu bytes at offset %llu need "
                  "%.0f bytes, the file has %llu", s->name, (long long)s->n, (unsigned long long)s->row_bytes,
                  (unsigned long long)off, (double)off + (double)s->n * (double)s->row_bytes,
                  (unsigned long long)fsize);
  }
  s->fd = fd;
  s->off = off;
  s->stride = s->row_bytes;
  return KNOBS_OK;
}

knobs_status kn_store_load(kn_store *s, kn_reader *r) {
  uint64_t total = (uint64_t)s->n * s->row_bytes, done = 0;
  while (done < total) { /* in pieces: readers take size_t, and a failure names the offset */
    size_t k = total - done > (256u << 20) ? (256u << 20) : (size_t)(total - done);
    knobs_status st = kn_read_exact(r, s->mem + done, k, "observations");
    if (st) return st;
    done += k;
  }
  return KNOBS_OK;
}

void kn_store_free(kn_store *s) {
  if (!s) return;
  if (s->map) munmap(s->map, s->map_len);
  else kn_free(s->mem);
  s->map = NULL;
  if (s->fd >= 0) close(s->fd);
  s->mem = NULL;
  s->fd = -1;
}

static inline double elem(const uint8_t *p, knobs_dtype t, int swap) {
  uint8_t b[8];
  size_t sz = knobs_dtype_size(t);
  if (swap) {
    for (size_t i = 0; i < sz; i++) b[i] = p[sz - 1 - i];
    p = b;
  }
  switch (t) {
  case KNOBS_F32: { float v; memcpy(&v, p, 4); return v; }
  case KNOBS_F64: { double v; memcpy(&v, p, 8); return v; }
  case KNOBS_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
  case KNOBS_I32: { int32_t v; memcpy(&v, p, 4); return v; }
  case KNOBS_I16: { int16_t v; memcpy(&v, p, 2); return v; }
  case KNOBS_I8: return (int8_t)p[0];
  case KNOBS_U8: return p[0];
  case KNOBS_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
  case KNOBS_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
  case KNOBS_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
  case KNOBS_BOOL: return p[0] != 0;
  }
  return 0;
}

/* C stored channels of one image ((H,W,C) if hwc, else (C,H,W)) -> floats (C,H,W) */
static void convert_image(const kn_store *s, size_t C, const uint8_t *src, float *out) {
  size_t HW = (size_t)s->H * s->W, D = HW * C;
  float sc = s->scale;
  if (s->dtype == KNOBS_U8 || s->dtype == KNOBS_BOOL) {
    if (!s->hwc || C == 1) {
      if (s->dtype == KNOBS_BOOL)
        for (size_t i = 0; i < D; i++) out[i] = (float)(src[i] != 0) * sc;
      else
        for (size_t i = 0; i < D; i++) out[i] = (float)src[i] * sc;
    } else if (C == 3) {
      float *r = out, *g = out + HW, *b = out + 2 * HW;
      for (size_t p = 0; p < HW; p++) {
        r[p] = (float)src[3 * p] * sc;
        g[p] = (float)src[3 * p + 1] * sc;
        b[p] = (float)src[3 * p + 2] * sc;
      }
      if (s->dtype == KNOBS_BOOL)
        for (size_t i = 0; i < D; i++) out[i] = out[i] != 0 ? sc : 0;
    } else {
      for (size_t p = 0; p < HW; p++)
        for (size_t c = 0; c < C; c++) out[c * HW + p] = (float)src[p * C + c] * sc;
    }
    return;
  }
  if (s->dtype == KNOBS_F32 && !s->swap && (!s->hwc || C == 1)) {
    memcpy(out, src, D * sizeof(float));
    if (sc != 1)
      for (size_t i = 0; i < D; i++) out[i] *= sc;
    return;
  }
  size_t isz = knobs_dtype_size(s->dtype);
  for (size_t p = 0; p < HW; p++)
    for (size_t c = 0; c < C; c++) {
      size_t si = s->hwc ? p * C + c : c * HW + p;
      out[c * HW + p] = (float)(elem(src + si * isz, s->dtype, s->swap) * sc);
    }
}

/* stored row -> floats (C,H,W); a sequence stored (T,H,W,c) converts frame by frame to (T,c,H,W) */
static void convert_row(const kn_store *s, const uint8_t *src, float *out) {
  int F = s->hwc && s->frames > 1 ? s->frames : 1;
  size_t c = (size_t)(s->C / F), per = c * s->H * s->W, isz = knobs_dtype_size(s->dtype);
  for (int t = 0; t < F; t++) convert_image(s, c, src + per * isz * t, out + per * t);
}

knobs_status kn_store_row(const kn_store *s, int64_t row, float *out, uint8_t *scratch) {
  const uint8_t *src;
  if (s->mem) {
    src = s->mem + (uint64_t)row * s->row_bytes;
  } else {
    KN_ASSERT(s->fd >= 0);
    if (!pread_all(s->fd, scratch, s->row_bytes, s->off + (uint64_t)row * s->stride))
      return kn_err(KNOBS_ERR_IO, "%s: cannot read observation %lld (file changed or unreadable: %s)",
                    s->name, (long long)row, errno ? strerror(errno) : "short read");
    src = scratch;
  }
  convert_row(s, src, out);
  return KNOBS_OK;
}

knobs_status kn_store_scan(const kn_store *s, kn_store_stats *st) {
  st->min = INFINITY, st->max = -INFINITY, st->nonfinite_row = -1, st->zero_one = 1;
  size_t isz = knobs_dtype_size(s->dtype);
  uint64_t per = s->row_bytes / isz;
  int64_t chunk = (int64_t)((8u << 20) / (s->row_bytes ? s->row_bytes : 1));
  if (chunk < 1) chunk = 1;
  uint8_t *buf = NULL;
  if (!s->mem) {
    buf = malloc((size_t)(chunk * s->row_bytes));
    if (!buf) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a read buffer", s->name);
  }
  knobs_status rc = KNOBS_OK;
  for (int64_t r0 = 0; r0 < s->n && !rc; r0 += chunk) {
    int64_t m = s->n - r0 < chunk ? s->n - r0 : chunk;
    const uint8_t *p;
    if (s->mem) p = s->mem + (uint64_t)r0 * s->row_bytes;
    else if (!pread_all(s->fd, buf, (size_t)(m * s->row_bytes), s->off + (uint64_t)r0 * s->stride)) {
      rc = kn_err(KNOBS_ERR_IO, "%s: read failed at observation %lld", s->name, (long long)r0);
      break;
    } else {
      p = buf;
    }
    uint64_t cnt = (uint64_t)m * per;
    if (s->dtype == KNOBS_U8 || s->dtype == KNOBS_BOOL) {
      uint8_t lo = 255, hi = 0;
      for (uint64_t i = 0; i < cnt; i++) {
        uint8_t v = s->dtype == KNOBS_BOOL ? p[i] != 0 : p[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      st->min = fmin(st->min, lo), st->max = fmax(st->max, hi);
      if (hi > 1) st->zero_one = 0;
      continue;
    }
    for (uint64_t i = 0; i < cnt; i++) {
      double v = elem(p + i * isz, s->dtype, s->swap);
      if (!isfinite(v)) {
        if (st->nonfinite_row < 0) st->nonfinite_row = r0 + (int64_t)(i / per);
        continue;
      }
      if (v < st->min) st->min = v;
      if (v > st->max) st->max = v;
      if (v != 0 && v != 1) st->zero_one = 0;
    }
    if (st->nonfinite_row >= 0) break;
  }
  free(buf);
  return rc;
}

knobs_status kn_npy_probe(const char *path, const char *member, kn_npy_src *src) {
  memset(src, 0, sizeof *src);
  snprintf(src->path, sizeof src->path, "%s", path);
  snprintf(src->member, sizeof src->member, "%s", member ? member : "");
  if (member) snprintf(src->name, sizeof src->name, "%s:%s", path, member);
  else snprintf(src->name, sizeof src->name, "%s", path);
  kn_reader *r;
  knobs_status s = member ? kn_reader_zip(path, member, &r) : kn_reader_file(path, &r);
  if (s) return s;
  s = kn_npy_read_header(r, &src->h);
  uint64_t hlen = r->pos;
  kn_reader_close(r);
  if (s) return s;
  if (src->h.fortran && src->h.ndim > 1) return KNOBS_OK;
  if (!member) {
    src->data_off = hlen, src->in_place = 1;
    return KNOBS_OK;
  }
  uint64_t off, cs, us;
  int method;
  if ((s = kn_zip_span(path, member, &off, &method, &cs, &us))) return s;
  if (method == 0 && cs == us && hlen <= us) src->data_off = off + hlen, src->in_place = 1;
  return KNOBS_OK;
}

knobs_status kn_store_from_npy(kn_store *s, const kn_npy_src *src) {
  snprintf(s->name, sizeof s->name, "%s", src->name);
  if (src->in_place) {
    s->swap = src->h.big_endian;
    return kn_store_open_file(s, src->path, src->data_off);
  }
  kn_reader *r;
  knobs_status st = src->member[0] ? kn_reader_zip(src->path, src->member, &r) : kn_reader_file(src->path, &r);
  if (st) return st;
  kn_npy_header h;
  if ((st = kn_npy_read_header(r, &h))) goto out;
  if (h.fortran && h.ndim > 1) { /* transposed to C order (and native bytes) on the way in */
    knobs_array a;
    if ((st = kn_npy_read_data(r, &h, &a))) goto out;
    s->mem = a.data;
    s->swap = 0;
  } else {
    if ((st = kn_store_alloc(s))) goto out;
    s->swap = h.big_endian;
    st = kn_store_load(s, r);
  }
out:
  kn_reader_close(r);
  return st;
}

/* ---- kn_filedata ------------------------------------------------------------------------- */

kn_filedata *kn_filedata_new(void) {
  kn_filedata *f = calloc(1, sizeof *f);
  if (!f) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate a dataset");
    return NULL;
  }
  f->obs.fd = -1;
  return f;
}

void kn_filedata_free(void *p) {
  kn_filedata *f = p;
  if (!f) return;
  kn_store_free(&f->obs);
  kn_factors_free(&f->fac);
  if (f->extra_free) f->extra_free(f->extra);
  free(f->scratch);
  free(f->st);
  free(f->msg);
  free(f);
}

typedef struct {
  knobs_data *d;
  kn_filedata *f;
  const int64_t *idx;
  int n;
  float *obs;
  int32_t *factors;
} get_task;

static void get_run(void *ctx, int tid, int nt) {
  get_task *t = ctx;
  kn_filedata *f = t->f;
  long lo, hi;
  kn_split(t->n, tid, nt, &lo, &hi);
  size_t D = (size_t)f->obs.C * f->obs.H * f->obs.W;
  int K = f->fac.K;
  f->st[tid] = KNOBS_OK;
  for (long i = lo; i < hi; i++) {
    int64_t g = t->idx[i], row = f->fac.perm ? f->fac.perm[g] : g;
    knobs_status s = kn_store_row(&f->obs, row, t->obs + (size_t)i * D, f->scratch + (size_t)tid * f->obs.row_bytes);
    if (s) {
      f->st[tid] = s;
      snprintf(f->msg[tid], sizeof f->msg[tid], "%s", knobs_last_error());
      return;
    }
    if (t->factors && K > 0) {
      if (f->fac.classes) memcpy(t->factors + (size_t)i * K, f->fac.classes + (size_t)row * K, sizeof(int32_t) * (size_t)K);
      else knobs_data_factors_of(t->d, g, t->factors + (size_t)i * K);
    }
  }
}

static knobs_status fd_get(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors) {
  kn_filedata *f = d->impl;
  get_task t = {d, f, idx, n, obs, factors};
  /* a training batch (64 images of 64x64x3: 0.2 ms) is cheaper than waking the pool, which
   * is costly when the machine is busy; large gets (exports, metrics) are split */
  size_t work = (size_t)n * f->obs.C * f->obs.H * f->obs.W;
  kn_pool *pool = n >= 4 && work >= ((size_t)1 << 20) ? d->pool : NULL;
  KN_ASSERT(kn_pool_size(pool) <= f->nt);
  memset(f->st, 0, sizeof *f->st * (size_t)f->nt); /* a nested call runs inline: only st[0] */
  kn_pool_run(pool, get_run, &t);
  for (int i = 0; i < kn_pool_size(pool); i++)
    if (f->st[i]) return kn_err(f->st[i], "%s", f->msg[i]);
  return KNOBS_OK;
}

static double fd_value(const knobs_data *d, int k, int c) {
  const kn_filedata *f = d->impl;
  return f->fac.values[k] ? f->fac.values[k][c] : c;
}

static const kn_data_ops filedata_ops = {
    .get = fd_get,
    .factor_value = fd_value,
    .free_impl = kn_filedata_free,
};

void kn_data_note(knobs_data_info *info, const char *fmt, ...) {
  size_t n = strlen(info->note);
  if (n + 3 >= sizeof info->note) return;
  if (n) n += (size_t)snprintf(info->note + n, sizeof info->note - n, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(info->note + n, sizeof info->note - n, fmt, ap);
  va_end(ap);
}

knobs_status kn_filedata_attach(knobs_data *d, kn_filedata *f, const char *name, int is_image,
                                int binary, const knobs_data_opts *o) {
  d->ops = &filedata_ops;
  d->impl = f; /* owned by d from here: knobs_data_free releases it */
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", name);
  in->C = f->obs.C, in->H = f->obs.H, in->W = f->obs.W;
  in->n = f->obs.n;
  in->is_image = is_image;
  in->binary = binary;
  const char *names[KNOBS_MAX_FACTORS];
  for (int k = 0; k < f->fac.K; k++) names[k] = f->fac.names[k];
  kn_data_set_factors(in, f->fac.K, names, f->fac.sizes);
  for (int k = 0; k < f->fac.K; k++) in->factor_continuous[k] = f->fac.binned[k];
  in->has_render = f->fac.K > 0 && f->fac.grid;
  if (f->fac.note[0]) kn_data_note(in, "%s", f->fac.note);
  f->nt = o->threads;
  f->scratch = malloc((size_t)f->nt * (f->obs.row_bytes ? f->obs.row_bytes : 1));
  f->st = calloc((size_t)f->nt, sizeof *f->st);
  f->msg = calloc((size_t)f->nt, sizeof *f->msg);
  if (!f->scratch || !f->st || !f->msg) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", name);
  if (o->threads > 1 && !d->pool && !(d->pool = kn_pool_create(o->threads))) return knobs_last_status();
  return KNOBS_OK;
}
