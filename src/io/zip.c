/* zip.c: the zip container under .npz: listing members, streaming one member (stored or
 * deflate, via zlib) with bounded memory and a CRC check, and writing .npz files.
 * Reads ZIP64 sizes and offsets (NumPy writes them); writes plain zip (refuses > 4 GiB).
 * Does not handle encryption, multi-disk archives or methods other than 0 and 8.
 * Format: PKWARE APPNOTE.TXT sections 4.3 (structure) and 4.5.3 (ZIP64 extra field). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/io.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v & 0xffff); wr16(p + 2, v >> 16); }

typedef struct {
  char name[256];
  int method;
  uint32_t crc;
  uint64_t csize, usize, local_off;
} zip_entry;

typedef struct {
  FILE *f;
  uint64_t fsize;
  int n;
  zip_entry *e;
} zip_dir;

static knobs_status zerr(const char *path, const char *what) {
  return kn_err(KNOBS_ERR_FORMAT, "%s: not a valid zip/npz file: %s", path, what);
}

static int read_at(FILE *f, uint64_t off, void *buf, size_t n) {
  if (fseeko(f, (off_t)off, SEEK_SET) != 0) return 0;
  return fread(buf, 1, n, f) == n;
}

static void zip_close(zip_dir *z) {
  if (z->f) fclose(z->f);
  free(z->e);
  memset(z, 0, sizeof *z);
}

static knobs_status zip_open(const char *path, zip_dir *z) {
  memset(z, 0, sizeof *z);
  z->f = fopen(path, "rb");
  if (!z->f) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  knobs_status s = KNOBS_OK;
  if (fseeko(z->f, 0, SEEK_END) != 0) { s = zerr(path, "cannot seek"); goto out; }
  z->fsize = (uint64_t)ftello(z->f);
  if (z->fsize < 22) { s = zerr(path, "too short for an end-of-directory record"); goto out; }
  /* the end-of-central-directory record is in the last 22 + 65535 bytes */
  size_t tail = z->fsize < 22 + 65535 ? (size_t)z->fsize : 22 + 65535;
  uint8_t *buf = malloc(tail);
  if (!buf) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto out; }
  if (!read_at(z->f, z->fsize - tail, buf, tail)) { free(buf); s = zerr(path, "read failed"); goto out; }
  long eocd = -1;
  for (long i = (long)tail - 22; i >= 0; i--)
    if (rd32(buf + i) == 0x06054b50) { eocd = i; break; }
  if (eocd < 0) { free(buf); s = zerr(path, "no end-of-central-directory record"); goto out; }
  uint64_t n = rd16(buf + eocd + 10), cd_size = rd32(buf + eocd + 12), cd_off = rd32(buf + eocd + 16);
  uint64_t eocd_pos = z->fsize - tail + (uint64_t)eocd;
  if (eocd >= 20 && rd32(buf + eocd - 20) == 0x07064b50) { /* ZIP64 locator */
    uint64_t z64 = rd64(buf + eocd - 20 + 8);
    uint8_t r[56];
    if (z64 + 56 > eocd_pos || !read_at(z->f, z64, r, 56) || rd32(r) != 0x06064b50) {
      free(buf);
      s = zerr(path, "bad ZIP64 end-of-central-directory record");
      goto out;
    }
    n = rd64(r + 32);
    cd_size = rd64(r + 40);
    cd_off = rd64(r + 48);
  }
  free(buf);
  if (cd_off > z->fsize || cd_size > z->fsize - cd_off || n > cd_size / 46 + 1 || n > 100000) {
    s = zerr(path, "central directory outside the file");
    goto out;
  }
  uint8_t *cd = malloc(cd_size ? cd_size : 1);
  z->e = calloc(n ? n : 1, sizeof *z->e);
  if (!cd || !z->e) { free(cd); s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto out; }
  if (!read_at(z->f, cd_off, cd, cd_size)) { free(cd); s = zerr(path, "central directory truncated"); goto out; }
  uint64_t p = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (p + 46 > cd_size || rd32(cd + p) != 0x02014b50) { s = zerr(path, "bad central directory entry"); break; }
    zip_entry *e = &z->e[z->n];
    uint16_t flags = rd16(cd + p + 8);
    e->method = rd16(cd + p + 10);
    e->crc = rd32(cd + p + 16);
    e->csize = rd32(cd + p + 20);
    e->usize = rd32(cd + p + 24);
    uint16_t nl = rd16(cd + p + 28), xl = rd16(cd + p + 30), cl = rd16(cd + p + 32);
    e->local_off = rd32(cd + p + 42);
    if (p + 46 + nl + xl + cl > cd_size) { s = zerr(path, "central directory entry runs past its end"); break; }
    if (flags & 1) { s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: encrypted zip members are not supported", path); break; }
    size_t cpy = nl < sizeof e->name - 1 ? nl : sizeof e->name - 1;
    memcpy(e->name, cd + p + 46, cpy);
    e->name[cpy] = 0;
    const uint8_t *x = cd + p + 46 + nl, *xe = x + xl;
    while (x + 4 <= xe) { /* ZIP64 extra: only the fields saturated in the header, in order */
      uint16_t id = rd16(x), sz = rd16(x + 2);
      if (x + 4 + sz > xe) break;
      if (id == 0x0001) {
        const uint8_t *q = x + 4, *qe = q + sz;
        if (e->usize == 0xffffffff && q + 8 <= qe) e->usize = rd64(q), q += 8;
        if (e->csize == 0xffffffff && q + 8 <= qe) e->csize = rd64(q), q += 8;
        if (e->local_off == 0xffffffff && q + 8 <= qe) e->local_off = rd64(q), q += 8;
      }
      x += 4 + sz;
    }
    if (e->local_off >= z->fsize || e->csize > z->fsize) { s = zerr(path, "member offset or size outside the file"); break; }
    z->n++;
    p += 46 + nl + xl + cl;
  }
  free(cd);
out:
  if (s) zip_close(z);
  return s;
}

knobs_status kn_zip_list(const char *path, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  zip_dir z;
  knobs_status s = zip_open(path, &z);
  if (s) return s;
  char **v = calloc((size_t)z.n + 1, sizeof *v);
  if (!v) { zip_close(&z); return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); }
  for (int i = 0; i < z.n; i++) {
    v[i] = strdup(z.e[i].name);
    if (!v[i]) { knobs_npz_names_free(v, i); zip_close(&z); return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); }
  }
  *names = v;
  *n = z.n;
  zip_close(&z);
  return KNOBS_OK;
}

void knobs_npz_names_free(char **names, int n) {
  if (!names) return;
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

knobs_status knobs_npz_list(const char *path, char ***names, int *n) { return kn_zip_list(path, names, n); }

/* ---- streaming member reader ------------------------------------------------------------ */

typedef struct {
  kn_reader r;
  FILE *f;
  zip_entry e;
  uint64_t cleft;       /* compressed bytes not yet read from the file */
  z_stream zs;
  int inflating, zdone;
  uint32_t crc;
  uint8_t in[1 << 16];
} zip_reader;

static size_t zr_read_piece(kn_reader *r, void *buf, size_t n) {
  zip_reader *z = (zip_reader *)r;
  if (r->status) return 0;
  uint64_t left = z->e.usize - r->pos;
  if (n > left) n = (size_t)left;
  size_t got = 0;
  if (z->e.method == 0) {
    got = fread(buf, 1, n, z->f);
    if (got < n) r->status = kn_err(KNOBS_ERR_FORMAT, "%s: truncated member data", r->name);
  } else {
    z->zs.next_out = buf;
    z->zs.avail_out = (uInt)n;
    while (z->zs.avail_out > 0 && !z->zdone) {
      if (z->zs.avail_in == 0) {
        size_t want = z->cleft < sizeof z->in ? (size_t)z->cleft : sizeof z->in;
        size_t k = want ? fread(z->in, 1, want, z->f) : 0;
        if (k < want || (k == 0 && z->cleft == 0)) {
          r->status = kn_err(KNOBS_ERR_FORMAT, "%s: truncated compressed data", r->name);
          break;
        }
        z->cleft -= k;
        z->zs.next_in = z->in;
        z->zs.avail_in = (uInt)k;
      }
      int rc = inflate(&z->zs, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) z->zdone = 1;
      else if (rc != Z_OK) {
        r->status = kn_err(KNOBS_ERR_FORMAT, "%s: corrupt deflate data (%s)", r->name,
                           z->zs.msg ? z->zs.msg : "inflate failed");
        break;
      }
    }
    got = n - z->zs.avail_out;
    if (!r->status && got < n)
      r->status = kn_err(KNOBS_ERR_FORMAT, "%s: compressed data ends %llu bytes early", r->name,
                         (unsigned long long)(left - got));
  }
  z->crc = (uint32_t)crc32(z->crc, buf, (uInt)got);
  r->pos += got;
  if (!r->status && r->pos == z->e.usize && z->crc != z->e.crc)
    r->status = kn_err(KNOBS_ERR_FORMAT, "%s: CRC mismatch (stored %08x, computed %08x)", r->name,
                       z->e.crc, z->crc);
  return r->status ? 0 : got;
}

/* zlib counts in 32-bit uInt (avail_out, crc32's length): a request over 4 GiB (a whole
 * MPI3D or 3D Shapes member read at once) goes through in pieces of at most 1 GiB. */
static size_t zr_read(kn_reader *r, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got < ((size_t)1 << 30) ? n - got : (size_t)1 << 30;
    size_t k = zr_read_piece(r, (uint8_t *)buf + got, want);
    got += k;
    if (k < want) break;
  }
  return r->status ? 0 : got;
}

static void zr_close(kn_reader *r) {
  zip_reader *z = (zip_reader *)r;
  if (z->inflating) inflateEnd(&z->zs);
  fclose(z->f);
  free(z);
}

knobs_status kn_reader_zip(const char *path, const char *member, kn_reader **out) {
  *out = NULL;
  zip_dir d;
  knobs_status s = zip_open(path, &d);
  if (s) return s;
  int k = -1;
  for (int i = 0; i < d.n && k < 0; i++)
    if (!strcmp(d.e[i].name, member)) k = i;
  if (k < 0) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: no member '%s'", path, member);
    zip_close(&d);
    return s;
  }
  zip_reader *z = calloc(1, sizeof *z);
  if (!z) { zip_close(&d); return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); }
  z->e = d.e[k];
  z->f = d.f;
  d.f = NULL;
  zip_close(&d);
  snprintf(z->r.name, sizeof z->r.name, "%s:%s", path, member);
  z->r.read = zr_read;
  z->r.close = zr_close;
  z->r.size = z->e.usize;
  uint8_t lh[30];
  if (!read_at(z->f, z->e.local_off, lh, 30) || rd32(lh) != 0x04034b50) {
    zr_close(&z->r);
    return zerr(path, "bad local file header");
  }
  uint64_t data_off = z->e.local_off + 30 + rd16(lh + 26) + rd16(lh + 28);
  if (data_off > z->e.local_off + 30 + 131070 || fseeko(z->f, (off_t)data_off, SEEK_SET) != 0 ||
      z->e.csize > (uint64_t)-1 - data_off) {
    zr_close(&z->r);
    return zerr(path, "member data offset outside the file");
  }
  z->cleft = z->e.csize;
  if (z->e.method == 8 && z->e.usize / 1032 > z->e.csize + 64) {
    /* deflate expands at most 1032:1: a larger claim is a lying header, and believing it would
     * make callers allocate (and zero) whatever size it says */
    s = kn_err(KNOBS_ERR_FORMAT, "%s: member '%s' claims %llu bytes from %llu compressed, beyond "
               "deflate's 1032:1 limit", path, member, (unsigned long long)z->e.usize,
               (unsigned long long)z->e.csize);
    zr_close(&z->r);
    return s;
  }
  if (z->e.method == 8) {
    if (inflateInit2(&z->zs, -15) != Z_OK) {
      zr_close(&z->r);
      return kn_err(KNOBS_ERR_NOMEM, "%s: cannot start inflate", path);
    }
    z->inflating = 1;
  } else if (z->e.method != 0) {
    s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: member '%s' uses compression method %d (only stored "
               "and deflate are supported)", path, member, z->e.method);
    zr_close(&z->r); /* after the message: it reads z->e */
    return s;
  } else if (z->e.csize != z->e.usize) {
    zr_close(&z->r);
    return zerr(path, "stored member with different compressed and uncompressed sizes");
  }
  *out = &z->r;
  return KNOBS_OK;
}

/* ---- npz -------------------------------------------------------------------------------- */

knobs_status knobs_npz_read(const char *path, const char *name, knobs_array *out) {
  memset(out, 0, sizeof *out);
  /* NumPy's lookup (NpzFile.__getitem__): a member named exactly `name`, else `name`.npy, so
   * "x" finds x.npy and "x.npy" finds x.npy, or x.npy.npy as np.savez(x.npy=...) names it */
  char member[300];
  snprintf(member, sizeof member, "%s.npy", name);
  char **names = NULL;
  int nn = 0;
  knobs_status ls = kn_zip_list(path, &names, &nn);
  if (ls) return ls;
  for (int i = 0; i < nn; i++)
    if (!strcmp(names[i], name)) snprintf(member, sizeof member, "%s", name);
  knobs_npz_names_free(names, nn);
  kn_reader *r;
  knobs_status s = kn_reader_zip(path, member, &r);
  if (s) return s;
  kn_npy_header h;
  s = kn_npy_read_header(r, &h);
  if (!s) s = kn_npy_read_data(r, &h, out);
  kn_reader_close(r);
  return s;
}

knobs_status knobs_npz_write(const char *path, const char *const *names, const knobs_array *arrays,
                             int n, int compress) {
  kn_atomic *f = kn_atomic_open(path);
  if (!f) return knobs_last_status();
  FILE *fp = kn_atomic_file(f);
  uint8_t *cd = NULL;
  size_t cd_len = 0, cd_cap = 0;
  uint64_t off = 0;
  knobs_status s = KNOBS_OK;
  for (int i = 0; i < n && !s; i++) {
    char hdr[320];
    size_t hl = kn_npy_header_bytes(&arrays[i], hdr);
    size_t dl = (size_t)knobs_array_count(&arrays[i]) * knobs_dtype_size(arrays[i].dtype);
    uint64_t usize = hl + dl;
    if (usize >= 0xffffffffu) { s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: member %s is over 4 GiB", path, names[i]); break; }
    uint8_t *raw = malloc(usize ? usize : 1);
    if (!raw) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); break; }
    memcpy(raw, hdr, hl);
    memcpy(raw + hl, arrays[i].data, dl);
    uint32_t crc = (uint32_t)crc32(0, raw, (uInt)usize);
    uint8_t *data = raw;
    uint64_t csize = usize;
    int method = 0;
    if (compress) {
      uLong cap = compressBound((uLong)usize) + 64;
      uint8_t *c = malloc(cap);
      z_stream zs = {0};
      if (!c || deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(c);
        free(raw);
        s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot start deflate", path);
        break;
      }
      zs.next_in = raw;
      zs.avail_in = (uInt)usize;
      zs.next_out = c;
      zs.avail_out = (uInt)cap;
      int rc = deflate(&zs, Z_FINISH);
      csize = zs.total_out;
      deflateEnd(&zs);
      if (rc != Z_STREAM_END) { free(c); free(raw); s = kn_err(KNOBS_ERR_IO, "%s: deflate failed", path); break; }
      data = c;
      method = 8;
    }
    char mname[300];
    snprintf(mname, sizeof mname, "%s.npy", names[i]);
    size_t nl = strlen(mname);
    uint8_t lh[30] = {0};
    wr32(lh, 0x04034b50); wr16(lh + 4, 20); wr16(lh + 8, (uint32_t)method);
    wr16(lh + 10, 0); wr16(lh + 12, 0x21); /* 1980-01-01 00:00, fixed so output is reproducible */
    wr32(lh + 14, crc); wr32(lh + 18, (uint32_t)csize); wr32(lh + 22, (uint32_t)usize);
    wr16(lh + 26, (uint32_t)nl);
    if (off + 30 + nl + csize >= 0xffffffffu) s = kn_err(KNOBS_ERR_UNSUPPORTED, "%s: archive over 4 GiB", path);
    else if (fwrite(lh, 1, 30, fp) != 30 || fwrite(mname, 1, nl, fp) != nl || fwrite(data, 1, csize, fp) != csize)
      s = kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!s) {
      if (cd_len + 46 + nl > cd_cap) {
        cd_cap = (cd_len + 46 + nl) * 2;
        uint8_t *ncd = realloc(cd, cd_cap);
        if (!ncd) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
        else cd = ncd;
      }
      if (!s) {
        uint8_t *c = cd + cd_len;
        memset(c, 0, 46);
        wr32(c, 0x02014b50); wr16(c + 4, 20); wr16(c + 6, 20); wr16(c + 10, (uint32_t)method);
        wr16(c + 14, 0x21); wr32(c + 16, crc); wr32(c + 20, (uint32_t)csize);
        wr32(c + 24, (uint32_t)usize); wr16(c + 28, (uint32_t)nl); wr32(c + 42, (uint32_t)off);
        memcpy(c + 46, mname, nl);
        cd_len += 46 + nl;
        off += 30 + nl + csize;
      }
    }
    if (data != raw) free(data);
    free(raw);
  }
  if (!s) {
    uint8_t e[22] = {0};
    wr32(e, 0x06054b50); wr16(e + 8, (uint32_t)n); wr16(e + 10, (uint32_t)n);
    wr32(e + 12, (uint32_t)cd_len); wr32(e + 16, (uint32_t)off);
    if ((cd_len && fwrite(cd, 1, cd_len, fp) != cd_len) || fwrite(e, 1, 22, fp) != 22)
      s = kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  free(cd);
  if (s) {
    kn_atomic_abort(f);
    return s;
  }
  return kn_atomic_commit(f);
}
