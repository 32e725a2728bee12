/* image.c: PNG read/write (libpng), image grids, and a small animated-GIF encoder (GIF89a,
 * LZW, a fixed palette). Grids take float images (N,C,H,W) in [0,1], the layout of knobs'
 * observations. The GIF encoder does not dither or build adaptive palettes: gray frames use a
 * 256-level gray palette, colour frames a uniform 6x7x6 cube. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

/* ---- PNG -------------------------------------------------------------------------------- */

typedef struct {
  knobs_write_fn fn;
  void *ctx;
  int failed;
} png_sink;

static void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
  png_sink *s = png_get_io_ptr(png);
  if (!s->failed && s->fn(s->ctx, data, n) != 0) s->failed = 1;
}
static void png_flush_cb(png_structp png) { (void)png; }

static char png_msg[256];
static void png_error_cb(png_structp png, png_const_charp msg) {
  snprintf(png_msg, sizeof png_msg, "%s", msg);
  png_longjmp(png, 1);
}
static void png_warn_cb(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

knobs_status knobs_png_write_to(knobs_write_fn fn, void *ctx, const uint8_t *pixels, int w, int h,
                                int channels) {
  if (w <= 0 || h <= 0 || w > 1 << 20 || h > 1 << 20)
    return kn_err(KNOBS_ERR_ARG, "PNG size %dx%d out of range", w, h);
  int type = channels == 1 ? PNG_COLOR_TYPE_GRAY
             : channels == 3 ? PNG_COLOR_TYPE_RGB
             : channels == 4 ? PNG_COLOR_TYPE_RGBA : -1;
  if (type < 0) return kn_err(KNOBS_ERR_ARG, "PNG needs 1, 3 or 4 channels, got %d", channels);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_error_cb, png_warn_cb);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return kn_err(KNOBS_ERR_NOMEM, "cannot start the PNG encoder");
  }
  png_sink sink = {fn, ctx, 0};
  png_bytep *rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(rows);
    return kn_err(KNOBS_ERR_IO, "PNG encoding failed: %s", png_msg);
  }
  rows = malloc(sizeof *rows * (size_t)h);
  if (!rows) png_error(png, "out of memory");
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pixels + (size_t)y * w * channels);
  png_set_write_fn(png, &sink, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  if (sink.failed) return kn_err(KNOBS_ERR_IO, "PNG write failed");
  return KNOBS_OK;
}

static int file_sink(void *ctx, const void *data, size_t n) {
  return fwrite(data, 1, n, (FILE *)ctx) == n ? 0 : -1;
}

knobs_status knobs_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels) {
  kn_atomic *a = kn_atomic_open(path);
  if (!a) return knobs_last_status();
  knobs_status s = knobs_png_write_to(file_sink, kn_atomic_file(a), pixels, w, h, channels);
  if (s) {
    kn_atomic_abort(a);
    return kn_err_prefix(s, "%s", path);
  }
  return kn_atomic_commit(a);
}

knobs_status knobs_png_read(const char *path, uint8_t **pixels, int *w, int *h, int *channels) {
  *pixels = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  uint8_t sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
    fclose(f);
    return kn_err(KNOBS_ERR_FORMAT, "%s: not a PNG file", path);
  }
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_error_cb, png_warn_cb);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    fclose(f);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot start the PNG decoder", path);
  }
  uint8_t *volatile buf = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(buf);
    free(rows);
    return kn_err(KNOBS_ERR_FORMAT, "%s: corrupt PNG: %s", path, png_msg);
  }
  png_init_io(png, f);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, 1 << 14, 1 << 14);
  png_read_info(png, info);
  png_set_strip_16(png);
  png_set_packing(png);
  png_set_palette_to_rgb(png);
  png_set_expand_gray_1_2_4_to_8(png);
  png_set_tRNS_to_alpha(png);
  png_read_update_info(png, info);
  int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
  int C = png_get_channels(png, info);
  size_t stride = png_get_rowbytes(png, info);
  if (stride != (size_t)W * C) png_error(png, "unexpected row size");
  buf = malloc(stride * (size_t)H);
  rows = malloc(sizeof(png_bytep) * (size_t)H);
  if (!buf || !rows) png_error(png, "out of memory");
  for (int y = 0; y < H; y++) rows[y] = buf + (size_t)y * stride;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  fclose(f);
  free(rows);
  *pixels = buf;
  *w = W;
  *h = H;
  *channels = C;
  return KNOBS_OK;
}

/* ---- grids ------------------------------------------------------------------------------ */

static uint8_t to_u8(float v) {
  if (!(v > 0)) return 0; /* also NaN */
  if (v >= 1) return 255;
  return (uint8_t)lrintf(v * 255.0f);
}

knobs_status knobs_image_grid(const float *imgs, int n, int C, int H, int W, int cols, int pad,
                              float pad_value, uint8_t **out, int *gw, int *gh) {
  *out = NULL;
  if (n <= 0 || (C != 1 && C != 3) || H <= 0 || W <= 0 || cols <= 0 || pad < 0)
    return kn_err(KNOBS_ERR_ARG, "image grid: bad arguments (n %d, C %d, %dx%d, cols %d)", n, C, H, W, cols);
  if (cols > n) cols = n;
  int rows = (n + cols - 1) / cols;
  int w = cols * W + (cols + 1) * pad, h = rows * H + (rows + 1) * pad;
  uint8_t *g = malloc((size_t)w * h * C);
  if (!g) return kn_err(KNOBS_ERR_NOMEM, "image grid: cannot allocate %dx%d", w, h);
  memset(g, to_u8(pad_value), (size_t)w * h * C);
  for (int i = 0; i < n; i++) {
    int r = i / cols, c = i % cols, y0 = pad + r * (H + pad), x0 = pad + c * (W + pad);
    const float *im = imgs + (size_t)i * C * H * W;
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        for (int ch = 0; ch < C; ch++)
          g[((size_t)(y0 + y) * w + x0 + x) * C + ch] = to_u8(im[((size_t)ch * H + y) * W + x]);
  }
  *out = g;
  *gw = w;
  *gh = h;
  return KNOBS_OK;
}

/* ---- GIF -------------------------------------------------------------------------------- */

typedef struct {
  FILE *f;
  uint8_t block[256];
  int nblock;
  uint32_t bits;
  int nbits;
  int ok;
} gif_out;

static void gif_byte(gif_out *g, uint8_t b) {
  g->block[g->nblock++] = b;
  if (g->nblock == 255) {
    uint8_t n = 255;
    g->ok &= fwrite(&n, 1, 1, g->f) == 1 && fwrite(g->block, 1, 255, g->f) == 255;
    g->nblock = 0;
  }
}

static void gif_code(gif_out *g, int code, int width) {
  g->bits |= (uint32_t)code << g->nbits;
  g->nbits += width;
  while (g->nbits >= 8) {
    gif_byte(g, (uint8_t)(g->bits & 0xff));
    g->bits >>= 8;
    g->nbits -= 8;
  }
}

static void gif_flush(gif_out *g) {
  if (g->nbits > 0) gif_byte(g, (uint8_t)(g->bits & 0xff));
  g->bits = 0;
  g->nbits = 0;
  if (g->nblock) {
    uint8_t n = (uint8_t)g->nblock;
    g->ok &= fwrite(&n, 1, 1, g->f) == 1 && fwrite(g->block, 1, (size_t)n, g->f) == (size_t)n;
    g->nblock = 0;
  }
  g->ok &= fputc(0, g->f) != EOF; /* block terminator */
}

/* LZW with 8-bit symbols; `next` is a (4096 x 256) trie of child codes, 0 = none. */
static void gif_lzw(gif_out *g, const uint8_t *idx, size_t n, uint16_t *next) {
  const int clear = 256, eoi = 257;
  int width = 9, avail = 258;
  memset(next, 0, sizeof(uint16_t) * 4096 * 256);
  gif_code(g, clear, width);
  int cur = idx[0];
  for (size_t i = 1; i < n; i++) {
    int k = idx[i];
    uint16_t nx = next[cur * 256 + k];
    if (nx) {
      cur = nx;
      continue;
    }
    gif_code(g, cur, width);
    next[cur * 256 + k] = (uint16_t)avail; /* as gif.h: assign, widen at 2^w, clear at 4096 */
    if (avail == (1 << width) && width < 12) width++;
    if (++avail == 4096) {
      gif_code(g, clear, width);
      memset(next, 0, sizeof(uint16_t) * 4096 * 256);
      width = 9;
      avail = 258;
    }
    cur = k;
  }
  gif_code(g, cur, width);
  gif_code(g, eoi, width);
  gif_flush(g);
}

knobs_status knobs_gif_write(const char *path, const float *frames, int n_frames, int C, int H,
                             int W, int delay_cs) {
  if (n_frames <= 0 || (C != 1 && C != 3) || H <= 0 || W <= 0 || H > 65535 || W > 65535)
    return kn_err(KNOBS_ERR_ARG, "%s: GIF needs frames of 1 or 3 channels up to 65535 px", path);
  uint16_t *trie = malloc(sizeof(uint16_t) * 4096 * 256);
  uint8_t *idx = malloc((size_t)H * W);
  if (!trie || !idx) {
    free(trie);
    free(idx);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the GIF encoder", path);
  }
  kn_atomic *a = kn_atomic_open(path);
  if (!a) {
    free(trie);
    free(idx);
    return knobs_last_status();
  }
  gif_out g = {.f = kn_atomic_file(a), .ok = 1};
  uint8_t hdr[13] = {'G', 'I', 'F', '8', '9', 'a', (uint8_t)W, (uint8_t)(W >> 8), (uint8_t)H,
                     (uint8_t)(H >> 8), 0xF7 /* global table of 256 */, 0, 0};
  g.ok &= fwrite(hdr, 1, 13, g.f) == 13;
  for (int i = 0; i < 256; i++) {
    uint8_t rgb[3];
    if (C == 1) rgb[0] = rgb[1] = rgb[2] = (uint8_t)i;
    else if (i < 252) rgb[0] = (uint8_t)(i / 42 * 51), rgb[1] = (uint8_t)(i / 6 % 7 * 255 / 6), rgb[2] = (uint8_t)(i % 6 * 51);
    else rgb[0] = rgb[1] = rgb[2] = 0;
    g.ok &= fwrite(rgb, 1, 3, g.f) == 3;
  }
  static const uint8_t loop[19] = {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E',
                                   '2', '.', '0', 0x03, 0x01, 0x00, 0x00, 0x00};
  g.ok &= fwrite(loop, 1, 19, g.f) == 19;
  for (int fr = 0; fr < n_frames; fr++) {
    const float *im = frames + (size_t)fr * C * H * W;
    for (size_t p = 0; p < (size_t)H * W; p++) {
      if (C == 1) idx[p] = to_u8(im[p]);
      else {
        int r = (to_u8(im[p]) * 5 + 127) / 255, gg = (to_u8(im[(size_t)H * W + p]) * 6 + 127) / 255,
            b = (to_u8(im[2 * (size_t)H * W + p]) * 5 + 127) / 255;
        idx[p] = (uint8_t)(r * 42 + gg * 6 + b);
      }
    }
    uint8_t gce[8] = {0x21, 0xF9, 0x04, 0x00, (uint8_t)delay_cs, (uint8_t)(delay_cs >> 8), 0, 0};
    uint8_t desc[10] = {0x2C, 0, 0, 0, 0, (uint8_t)W, (uint8_t)(W >> 8), (uint8_t)H, (uint8_t)(H >> 8), 0};
    g.ok &= fwrite(gce, 1, 8, g.f) == 8 && fwrite(desc, 1, 10, g.f) == 10 && fputc(8, g.f) != EOF;
    gif_lzw(&g, idx, (size_t)H * W, trie);
  }
  g.ok &= fputc(0x3B, g.f) != EOF;
  free(trie);
  free(idx);
  if (!g.ok) {
    kn_atomic_abort(a);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  return kn_atomic_commit(a);
}
