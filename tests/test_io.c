/* test_io.c: src/io on its own (test_data_files.c reads .npy/.npz through datasets, and
 * test_models.c/test_ref.c use safetensors through checkpoints and references).
 * - npy and npz: every dtype written and read back bit-exactly (shape, dtype, bytes; 0-d and
 *   empty arrays), npz stored and deflated, listing; a truncated .npy and a truncated .npz
 *   refused naming the file; the header kn_npy_header_bytes writes is 64-byte aligned.
 * - safetensors: a round trip of several dtypes with metadata; kn_st_get_f32 checks dtype and
 *   shape; a truncated file refused naming it.
 * - PNG: an asymmetric image (catches flips, transposes, channel swaps) written to memory and
 *   to a file: the signature, IHDR fields and every chunk's CRC, the IDAT stream inflating to
 *   h (1 + w c) bytes, and the pixels read back equal (FNV-1a checksum and element-wise).
 * - GIF: the header, screen size, the looping extension, one image per frame with its delay,
 *   and the trailer, walking the block structure.
 * - atomic output: success leaves exactly the target; a commit that cannot rename (the target
 *   is a directory), an abort, and a write into a missing folder leave neither the target nor
 *   a temporary file, and name the path. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "t.h"
#include "io/io.h"

static char dir[] = "/tmp/knobs-test-io-XXXXXX";
static char pathbuf[4][600];
static int pathi;
static const char *P(const char *name) {
  char *b = pathbuf[pathi++ & 3];
  snprintf(b, 600, "%s/%s", dir, name);
  return b;
}

/* entries in dir whose name contains `part` */
static int count_named(const char *part) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
  if (d) closedir(d);
  return n;
}

static void truncate_copy(const char *from, const char *to, size_t keep) {
  char *buf = NULL;
  size_t n = 0;
  CHECK(!kn_read_file(from, 1 << 26, &buf, &n) && n > keep, "read %s", from);
  if (buf && n > keep) CHECK(!kn_write_file(to, buf, keep), "write %s", to);
  free(buf);
}

/* ---- npy / npz ---------------------------------------------------------------------------- */
static void fill_array(knobs_array *a, knobs_dtype t, int ndim, const int64_t *shape, unsigned salt) {
  CHECK(!knobs_array_alloc(a, t, ndim, shape), "alloc %s", knobs_dtype_name(t));
  size_t nb = (size_t)knobs_array_count(a) * knobs_dtype_size(t);
  unsigned char *p = a->data;
  for (size_t i = 0; i < nb; i++) p[i] = (unsigned char)(i * 37 + salt * 11 + 5);
  if (t == KNOBS_BOOL)
    for (size_t i = 0; i < nb; i++) p[i] &= 1;
  if (t == KNOBS_F32) /* no NaN payloads: keep every value an ordinary float */
    for (size_t i = 0; i < nb / 4; i++) ((float *)a->data)[i] = (float)i * 0.5f - 3.25f;
  if (t == KNOBS_F64)
    for (size_t i = 0; i < nb / 8; i++) ((double *)a->data)[i] = (double)i * -1e-3 + 1e300 * (i == 1);
}

static int same_array(const knobs_array *a, const knobs_array *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  size_t nb = (size_t)knobs_array_count(a) * knobs_dtype_size(a->dtype);
  return !nb || !memcmp(a->data, b->data, nb);
}

static void test_npy(void) {
  T_CASE("npy round trip, every dtype");
  const int64_t s3[3] = {2, 3, 5};
  for (int t = KNOBS_F32; t <= KNOBS_BOOL; t++) {
    knobs_array a = {0}, b = {0};
    fill_array(&a, (knobs_dtype)t, 3, s3, (unsigned)t);
    char name[64];
    snprintf(name, sizeof name, "a-%s.npy", knobs_dtype_name((knobs_dtype)t));
    CHECK(!knobs_npy_write(P(name), &a), "write %s: %s", name, knobs_last_error());
    CHECK(!knobs_npy_read(P(name), &b), "read %s: %s", name, knobs_last_error());
    CHECK(same_array(&a, &b), "%s changed through a file", name);
    knobs_array_free(&a), knobs_array_free(&b);
  }
  /* 0-d (a scalar) and an empty array keep their shapes */
  knobs_array a = {0}, b = {0};
  fill_array(&a, KNOBS_I64, 0, NULL, 1);
  CHECK(!knobs_npy_write(P("scalar.npy"), &a) && !knobs_npy_read(P("scalar.npy"), &b) && same_array(&a, &b),
        "0-d array: %s", knobs_last_error());
  knobs_array_free(&a), knobs_array_free(&b);
  const int64_t s0[2] = {0, 4};
  fill_array(&a, KNOBS_F32, 2, s0, 1);
  CHECK(!knobs_npy_write(P("empty.npy"), &a) && !knobs_npy_read(P("empty.npy"), &b) && same_array(&a, &b),
        "empty array: %s", knobs_last_error());
  knobs_array_free(&a), knobs_array_free(&b);

  T_CASE("npy header");
  fill_array(&a, KNOBS_U16, 3, s3, 2);
  char hdr[256];
  size_t hl = kn_npy_header_bytes(&a, hdr);
  CHECK(hl % 64 == 0 && hl <= 256 && !memcmp(hdr, "\x93NUMPY\x01\x00", 8) && hdr[hl - 1] == '\n', "header of %zu bytes", hl);
  CHECK(memmem(hdr, hl, "'descr': '<u2'", 14) && memmem(hdr, hl, "'shape': (2, 3, 5)", 18) &&
        memmem(hdr, hl, "'fortran_order': False", 22), "header text: %.*s", (int)hl - 10, hdr + 10);

  T_CASE("npy truncated");
  knobs_npy_write(P("u16.npy"), &a);
  truncate_copy(P("u16.npy"), P("cut.npy"), hl + 7);
  knobs_array_free(&a);
  knobs_status s = knobs_npy_read(P("cut.npy"), &b);
  CHECK(s == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), P("cut.npy")) && strstr(knobs_last_error(), "truncated"),
        "truncated data: %d '%s'", s, knobs_last_error());
  CHECK(!b.data, "a refused read left data");
  truncate_copy(P("u16.npy"), P("cuthdr.npy"), 20);
  s = knobs_npy_read(P("cuthdr.npy"), &b);
  CHECK(s != KNOBS_OK && strstr(knobs_last_error(), "cuthdr.npy"), "truncated header: %d '%s'", s, knobs_last_error());
  s = knobs_npy_read(P("absent.npy"), &b);
  CHECK(s == KNOBS_ERR_IO && strstr(knobs_last_error(), "absent.npy"), "missing file: %d '%s'", s, knobs_last_error());
}

static void test_npz(void) {
  const int64_t sa[2] = {40, 30}, sb[1] = {7}, sc[4] = {2, 1, 3, 2};
  knobs_array arr[3] = {{0}};
  fill_array(&arr[0], KNOBS_F32, 2, sa, 3);
  fill_array(&arr[1], KNOBS_I8, 1, sb, 4);
  fill_array(&arr[2], KNOBS_U64, 4, sc, 5);
  const char *names[3] = {"images", "labels", "big"};
  for (int compress = 0; compress < 2; compress++) {
    T_CASE(compress ? "npz deflated" : "npz stored");
    const char *file = compress ? P("z.npz") : P("s.npz");
    CHECK(!knobs_npz_write(file, names, arr, 3, compress), "write: %s", knobs_last_error());
    char **list = NULL;
    int n = 0;
    CHECK(!knobs_npz_list(file, &list, &n) && n == 3, "list: %d members: %s", n, knobs_last_error());
    int found = 0;
    for (int i = 0; i < n; i++)
      found += !strcmp(list[i], "images.npy") || !strcmp(list[i], "labels.npy") || !strcmp(list[i], "big.npy");
    CHECK(found == 3, "member names");
    knobs_npz_names_free(list, n);
    for (int i = 0; i < 3; i++) {
      knobs_array b = {0};
      CHECK(!knobs_npz_read(file, names[i], &b) && same_array(&arr[i], &b), "member %s: %s", names[i], knobs_last_error());
      knobs_array_free(&b);
    }
    knobs_array b = {0};
    knobs_status s = knobs_npz_read(file, "labels.npy", &b); /* with ".npy" */
    CHECK(!s && same_array(&arr[1], &b), "member named with .npy: %s", knobs_last_error());
    knobs_array_free(&b);
    s = knobs_npz_read(file, "nosuch", &b);
    CHECK(s != KNOBS_OK && strstr(knobs_last_error(), "nosuch"), "absent member: '%s'", knobs_last_error());
    /* a key that itself ends in .npy is stored as x.npy.npy (as np.savez does) and found by
     * the same key, as NumPy's NpzFile finds it */
    const char *odd[1] = {"x.npy"};
    CHECK(!knobs_npz_write(P("odd.npz"), odd, &arr[1], 1, compress), "write x.npy: %s", knobs_last_error());
    s = knobs_npz_read(P("odd.npz"), "x.npy", &b);
    CHECK(!s && same_array(&arr[1], &b), "member keyed x.npy: %s", knobs_last_error());
    knobs_array_free(&b);
  }
  T_CASE("npz truncated");
  struct stat st;
  stat(P("z.npz"), &st);
  truncate_copy(P("z.npz"), P("cut.npz"), (size_t)st.st_size / 2);
  knobs_array b = {0};
  knobs_status s = knobs_npz_read(P("cut.npz"), "images", &b);
  CHECK(s != KNOBS_OK && strstr(knobs_last_error(), "cut.npz"), "truncated npz: %d '%s'", s, knobs_last_error());
  for (int i = 0; i < 3; i++) knobs_array_free(&arr[i]);
}

/* ---- safetensors ------------------------------------------------------------------------ */
static void test_safetensors(void) {
  T_CASE("safetensors round trip");
  float w[6] = {1.5f, -2, 3, 0.25f, -0.125f, 1e-30f};
  double dd[3] = {1e-300, -2.5, 3};
  int64_t ii[2] = {-1, 1LL << 40};
  uint8_t u[5] = {0, 1, 2, 254, 255};
  kn_st_entry e[4] = {{"enc.w", KNOBS_F32, 2, {2, 3}, w}, {"d", KNOBS_F64, 1, {3}, dd},
                      {"step", KNOBS_I64, 1, {2}, ii}, {"bytes", KNOBS_U8, 1, {5}, u}};
  const char *meta = "{\"format\":\"knobs\",\"note\":\"a \\\"quoted\\\" value\"}";
  CHECK(!kn_st_write(P("t.safetensors"), e, 4, meta), "write: %s", knobs_last_error());
  kn_safetensors st = {0};
  CHECK(!kn_st_read(P("t.safetensors"), &st), "read: %s", knobs_last_error());
  CHECK(st.n == 4, "%d tensors", st.n);
  for (int i = 0; i < 4; i++) {
    const kn_st_tensor *t = kn_st_find(&st, e[i].name);
    CHECK(t && t->dtype == e[i].dtype && t->ndim == e[i].ndim && t->shape[0] == e[i].shape[0], "tensor %s", e[i].name);
    size_t nb = knobs_dtype_size(e[i].dtype) * (size_t)e[i].shape[0] * (size_t)(e[i].ndim > 1 ? e[i].shape[1] : 1);
    CHECK(t && t->end - t->begin == nb && !memcmp(st.data + t->begin, e[i].data, nb), "data of %s", e[i].name);
  }
  CHECK(st.metadata_json && strstr(st.metadata_json, "knobs") && strstr(st.metadata_json, "quoted"), "metadata: %s",
        st.metadata_json ? st.metadata_json : "(none)");
  CHECK(!kn_st_find(&st, "absent"), "found an absent tensor");
  float got[6];
  const int64_t shp[2] = {2, 3}, wrong[2] = {3, 2};
  CHECK(!kn_st_get_f32(&st, "enc.w", 2, shp, got) && !memcmp(got, w, sizeof w), "get_f32: %s", knobs_last_error());
  CHECK(kn_st_get_f32(&st, "enc.w", 2, wrong, got) != KNOBS_OK && strstr(knobs_last_error(), "enc.w"),
        "wrong shape accepted: '%s'", knobs_last_error());
  CHECK(kn_st_get_f32(&st, "d", 1, (const int64_t[]){3}, got) != KNOBS_OK, "F64 read as F32");
  kn_st_free(&st);

  T_CASE("safetensors truncated");
  struct stat sb;
  stat(P("t.safetensors"), &sb);
  truncate_copy(P("t.safetensors"), P("cut.safetensors"), (size_t)sb.st_size - 3);
  kn_safetensors s2 = {0};
  knobs_status s = kn_st_read(P("cut.safetensors"), &s2);
  CHECK(s != KNOBS_OK && strstr(knobs_last_error(), "cut.safetensors"), "truncated: %d '%s'", s, knobs_last_error());
  kn_st_free(&s2);
}

/* ---- PNG -------------------------------------------------------------------------------- */
typedef struct {
  unsigned char *buf;
  size_t n, cap;
} membuf;

static int mem_sink(void *ctx, const void *data, size_t n) {
  membuf *m = ctx;
  if (m->n + n > m->cap) {
    size_t cap = (m->n + n) * 2;
    unsigned char *b = realloc(m->buf, cap);
    if (!b) return 1;
    m->buf = b, m->cap = cap;
  }
  memcpy(m->buf + m->n, data, n);
  m->n += n;
  return 0;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static uint32_t fnv1a(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Walks the chunks: signature, IHDR first with (w, h, 8, colour type), every CRC right, IEND
 * last; the concatenated IDAT inflates to h (1 + w c) bytes. */
static void check_png_bytes(const unsigned char *b, size_t n, int w, int h, int c) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK(n > 8 + 25 + 12 && !memcmp(b, sig, 8), "PNG signature");
  if (n <= 8 + 25 + 12 || memcmp(b, sig, 8)) return;
  int colour = c == 1 ? 0 : c == 3 ? 2 : 6, crc_bad = 0, nchunks = 0;
  CHECK(be32(b + 8) == 13 && !memcmp(b + 12, "IHDR", 4) && be32(b + 16) == (uint32_t)w && be32(b + 20) == (uint32_t)h &&
        b[24] == 8 && b[25] == colour && b[28] == 0, "IHDR: %ux%u depth %d colour %d interlace %d", be32(b + 16),
        be32(b + 20), b[24], b[25], b[28]);
  unsigned char *idat = malloc(n);
  size_t ni = 0, pos = 8;
  const unsigned char *last = NULL;
  while (pos + 12 <= n) {
    uint32_t len = be32(b + pos);
    if (pos + 12 + len > n) break;
    const unsigned char *type = b + pos + 4;
    crc_bad += (uint32_t)crc32(0, type, len + 4) != be32(b + pos + 8 + len);
    if (!memcmp(type, "IDAT", 4)) memcpy(idat + ni, type + 4, len), ni += len;
    last = type;
    pos += 12 + len;
    nchunks++;
  }
  CHECK(pos == n && last && !memcmp(last, "IEND", 4), "chunks end at %zu of %zu", pos, n);
  CHECK(!crc_bad, "%d of %d chunk CRCs wrong", crc_bad, nchunks);
  uLongf rawn = (uLongf)h * (1 + (uLongf)w * c) + 16;
  unsigned char *raw = malloc(rawn);
  int zr = uncompress(raw, &rawn, idat, ni);
  CHECK(zr == Z_OK && rawn == (uLongf)h * (1 + (uLongf)w * c), "IDAT inflates (%d) to %lu bytes", zr, (unsigned long)rawn);
  free(raw), free(idat);
}

static void test_png(void) {
  T_CASE("png bytes");
  /* an asymmetric image: an "F" in the top-left of a 13x7 canvas, and a gradient per channel,
   * so a flip, a transpose or a channel swap changes the pixels */
  enum { W = 13, H = 7 };
  for (int c = 1; c <= 4; c++) {
    if (c == 2) continue;
    uint8_t px[W * H * 4];
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int k = 0; k < c; k++) {
          int f = (x == 1 && y >= 1 && y <= 5) || (y == 1 && x >= 1 && x <= 4) || (y == 3 && x >= 1 && x <= 3);
          px[(y * W + x) * c + k] = (uint8_t)(f ? 255 - 40 * k : x * 9 + y * 17 + k * 50);
        }
    membuf m = {0};
    CHECK(!knobs_png_write_to(mem_sink, &m, px, W, H, c), "write_to: %s", knobs_last_error());
    check_png_bytes(m.buf, m.n, W, H, c);
    char name[32];
    snprintf(name, sizeof name, "img%d.png", c);
    CHECK(!knobs_png_write(P(name), px, W, H, c), "write: %s", knobs_last_error());
    char *fb = NULL;
    size_t fn = 0;
    CHECK(!kn_read_file(P(name), 1 << 20, &fb, &fn) && fn == m.n && !memcmp(fb, m.buf, fn), "file and memory PNGs differ");
    free(fb), free(m.buf);
    uint8_t *back = NULL;
    int w = 0, h = 0, ch = 0;
    CHECK(!knobs_png_read(P(name), &back, &w, &h, &ch), "read: %s", knobs_last_error());
    size_t nb = (size_t)W * H * c;
    CHECK(back && w == W && h == H && ch == c && fnv1a(back, nb) == fnv1a(px, nb) && !memcmp(back, px, nb),
          "%d channels: read back %dx%dx%d, checksum %08x want %08x", c, w, h, ch, back ? fnv1a(back, nb) : 0, fnv1a(px, nb));
    free(back);
  }
  uint8_t one = 0;
  CHECK(knobs_png_write(P("bad.png"), &one, 1, 1, 2) == KNOBS_ERR_ARG, "2 channels accepted");
  CHECK(knobs_png_write(P("bad.png"), &one, 0, 1, 1) != KNOBS_OK, "width 0 accepted");
  CHECK(!kn_file_exists(P("bad.png")) && count_named("tmp-") == 0, "a refused PNG left a file");
}

/* ---- GIF -------------------------------------------------------------------------------- */
static void test_gif(void) {
  T_CASE("gif structure");
  enum { NF = 3, C = 3, H = 5, W = 9 };
  float fr[NF * C * H * W];
  for (int i = 0; i < NF * C * H * W; i++) fr[i] = (float)((i * 7) % 11) / 10.0f;
  CHECK(!knobs_gif_write(P("a.gif"), fr, NF, C, H, W, 12), "write: %s", knobs_last_error());
  char *b = NULL;
  size_t n = 0;
  CHECK(!kn_read_file(P("a.gif"), 1 << 20, &b, &n), "read: %s", knobs_last_error());
  if (!b) return;
  const unsigned char *g = (const unsigned char *)b;
  CHECK(n > 13 && !memcmp(g, "GIF89a", 6) && (g[6] | g[7] << 8) == W && (g[8] | g[9] << 8) == H, "header %.6s %dx%d",
        b, g[6] | g[7] << 8, g[8] | g[9] << 8);
  size_t pos = 13;
  if (g[10] & 0x80) pos += 3u << ((g[10] & 7) + 1); /* global colour table */
  int images = 0, loop = 0, delays_ok = 1, ended = 0, broken = 0;
  while (pos < n && !ended && !broken) {
    if (g[pos] == 0x3B) {
      ended = 1, pos++;
    } else if (g[pos] == 0x21 && pos + 2 < n) {
      int label = g[pos + 1];
      pos += 2;
      if (label == 0xFF && pos + 12 <= n && g[pos] == 11 && !memcmp(g + pos + 1, "NETSCAPE2.0", 11)) loop = 1;
      if (label == 0xF9 && pos + 5 <= n) delays_ok &= (g[pos + 2] | g[pos + 3] << 8) == 12;
      while (pos < n && g[pos]) pos += 1u + g[pos]; /* sub-blocks */
      pos++;
    } else if (g[pos] == 0x2C && pos + 10 < n) {
      int lw = g[pos + 5] | g[pos + 6] << 8, lh = g[pos + 7] | g[pos + 8] << 8, flags = g[pos + 9];
      broken |= lw != W || lh != H;
      pos += 10;
      if (flags & 0x80) pos += 3u << ((flags & 7) + 1);
      pos++; /* LZW minimum code size */
      while (pos < n && g[pos]) pos += 1u + g[pos];
      pos++;
      images++;
    } else {
      broken = 1;
    }
  }
  CHECK(!broken && ended && pos == n, "block structure: broken %d, trailer %d at %zu of %zu", broken, ended, pos, n);
  CHECK(images == NF && loop && delays_ok, "%d images (want %d), loop %d, delays %d", images, NF, loop, delays_ok);
  free(b);
  CHECK(knobs_gif_write(P("b.gif"), fr, NF, 2, H, W, 12) != KNOBS_OK && !kn_file_exists(P("b.gif")), "C = 2 accepted");
}

/* ---- atomic output ---------------------------------------------------------------------- */
static void test_atomic(void) {
  T_CASE("atomic write");
  CHECK(!kn_write_file(P("ok.bin"), "abc", 3), "write: %s", knobs_last_error());
  char *b = NULL;
  size_t n = 0;
  CHECK(!kn_read_file(P("ok.bin"), 100, &b, &n) && n == 3 && !memcmp(b, "abc", 4), "content");
  free(b);
  CHECK(kn_read_file(P("ok.bin"), 2, &b, &n) == KNOBS_ERR_FORMAT && strstr(knobs_last_error(), "ok.bin"), "max size: '%s'",
        knobs_last_error());
  CHECK(!kn_write_file(P("ok.bin"), "defg", 4) && !kn_read_file(P("ok.bin"), 100, &b, &n) && n == 4, "overwrite");
  free(b);
  CHECK(count_named("tmp-") == 0, "a successful write left a temporary file");

  /* a commit that cannot rename: the target is a non-empty directory */
  CHECK(!kn_mkdirs(P("adir/inner")), "mkdirs: %s", knobs_last_error());
  knobs_status s = kn_write_file(P("adir"), "x", 1);
  CHECK(s == KNOBS_ERR_IO && strstr(knobs_last_error(), "adir"), "rename over a directory: %d '%s'", s, knobs_last_error());
  CHECK(kn_is_dir(P("adir")) && kn_is_dir(P("adir/inner")), "the directory was touched");
  CHECK(count_named("tmp-") == 0, "a failed commit left its temporary file");
  knobs_array a = {0};
  const int64_t sh[1] = {4};
  fill_array(&a, KNOBS_F32, 1, sh, 0);
  s = knobs_npy_write(P("adir"), &a);
  CHECK(s != KNOBS_OK && count_named("tmp-") == 0, "npy over a directory: %d, temporary files %d", s, count_named("tmp-"));

  /* an aborted write, and one into a folder that does not exist */
  kn_atomic *at = kn_atomic_open(P("aborted.bin"));
  CHECK(at && kn_atomic_file(at), "open: %s", knobs_last_error());
  if (at) {
    fputs("half", kn_atomic_file(at));
    CHECK(count_named("aborted.bin") == 1, "no temporary file while writing");
    kn_atomic_abort(at);
  }
  CHECK(count_named("aborted") == 0, "abort left a file");
  s = knobs_npy_write(P("nosuch/x.npy"), &a);
  CHECK(s == KNOBS_ERR_IO && strstr(knobs_last_error(), "nosuch"), "missing folder: %d '%s'", s, knobs_last_error());
  CHECK(!kn_file_exists(P("nosuch")), "a folder was created");
  knobs_array_free(&a);
}

int main(void) {
  if (!mkdtemp(dir)) return 2;
  test_npy();
  test_npz();
  test_safetensors();
  test_png();
  test_gif();
  test_atomic();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  return t_done();
}
