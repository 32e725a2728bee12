/* image.c: the panel's image bytes in memory: an uploaded PNG turned into a model input (the
 * training preprocessing: 8-bit values / 255, channels first), a row of decodes as PNG, and a
 * traversal as GIF. The PNG/GIF codecs of the library read and write files, so uploads and GIFs
 * pass through a private temporary file (mkstemp/mkdtemp under $TMPDIR or /tmp) removed at once;
 * no name from a request is ever used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "serve/serve.h"

static const char *tmpdir(void) {
  const char *t = getenv("TMPDIR");
  return t && t[0] ? t : "/tmp";
}

typedef struct {
  uint8_t *b;
  size_t n, cap;
} membuf;

static int mem_write(void *ctx, const void *data, size_t n) {
  membuf *m = ctx;
  if (m->n + n > m->cap) {
    size_t c = m->cap ? m->cap * 2 : 4096;
    while (c < m->n + n) c *= 2;
    uint8_t *b = realloc(m->b, c);
    if (!b) return -1;
    m->b = b, m->cap = c;
  }
  memcpy(m->b + m->n, data, n);
  m->n += n;
  return 0;
}

knobs_status kn_png_row(const float *x, int n, int C, int H, int W, uint8_t **out, size_t *len) {
  uint8_t *pix;
  int gw, gh;
  knobs_status st = knobs_image_grid(x, n, C, H, W, n, n > 1 ? 1 : 0, 0.5f, &pix, &gw, &gh);
  if (st) return st;
  membuf m = {0};
  st = knobs_png_write_to(mem_write, &m, pix, gw, gh, C);
  free(pix);
  if (st) {
    free(m.b);
    return st;
  }
  *out = m.b, *len = m.n;
  return KNOBS_OK;
}

knobs_status kn_gif_bytes(const float *x, int n, int C, int H, int W, int delay_cs, uint8_t **out, size_t *len) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/knobs-serve-XXXXXX", tmpdir());
  if (!mkdtemp(dir)) return kn_err(KNOBS_ERR_IO, "%s: cannot make a temporary folder: %s", dir, strerror(errno));
  snprintf(path, sizeof path, "%s/t.gif", dir);
  knobs_status st = knobs_gif_write(path, x, n, C, H, W, delay_cs);
  if (!st) {
    FILE *fp = fopen(path, "rb");
    membuf m = {0};
    char buf[8192];
    size_t r;
    if (!fp) st = kn_err(KNOBS_ERR_IO, "%s: cannot read back: %s", path, strerror(errno));
    while (fp && (r = fread(buf, 1, sizeof buf, fp)) > 0)
      if (mem_write(&m, buf, r)) {
        st = kn_err(KNOBS_ERR_NOMEM, "out of memory for a GIF");
        break;
      }
    if (fp) fclose(fp);
    if (st) free(m.b);
    else *out = m.b, *len = m.n;
  }
  unlink(path);
  rmdir(dir);
  return st;
}

/* Bilinear sample of channel c of an interleaved (h,w,ch) 8-bit image at (y,x) in source pixels
 * (pixel centres at integer + 0.5, as PIL/torchvision resize without antialiasing). */
static float bilinear(const uint8_t *p, int w, int h, int ch, int c, double y, double x) {
  y -= 0.5, x -= 0.5;
  int y0 = (int)(y < 0 ? -1 : y), x0 = (int)(x < 0 ? -1 : x);
  double fy = y - y0, fx = x - x0;
  int y1 = y0 + 1, x1 = x0 + 1;
  y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0;
  y1 = y1 >= h ? h - 1 : y1, x1 = x1 >= w ? w - 1 : x1;
  double a = p[((size_t)y0 * w + x0) * ch + c], b = p[((size_t)y0 * w + x1) * ch + c];
  double d = p[((size_t)y1 * w + x0) * ch + c], e = p[((size_t)y1 * w + x1) * ch + c];
  return (float)(((1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * d + fx * e)) / 255.0);
}

knobs_status kn_png_to_input(const uint8_t *png, size_t len, int C, int H, int W, float *x, char *note, size_t note_n) {
  note[0] = 0;
  if (len < 8 || memcmp(png, "\x89PNG\r\n\x1a\n", 8)) return kn_err(KNOBS_ERR_FORMAT, "the upload is not a PNG file");
  char path[512];
  snprintf(path, sizeof path, "%s/knobs-upload-XXXXXX", tmpdir());
  int fd = mkstemp(path);
  if (fd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot make a temporary file: %s", path, strerror(errno));
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, png + off, len - off);
    if (w <= 0) {
      close(fd), unlink(path);
      return kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    off += (size_t)w;
  }
  close(fd);
  uint8_t *p;
  int w, h, ch;
  knobs_status st = knobs_png_read(path, &p, &w, &h, &ch);
  unlink(path);
  if (st) return kn_err_prefix(KNOBS_ERR_FORMAT, "the uploaded PNG");
  int color = ch >= 3;
  if (color && C == 1) {
    /* an RGB file of a gray picture is fine; a coloured one is not */
    for (size_t i = 0; i < (size_t)w * h && color; i++)
      if (p[i * ch] == p[i * ch + 1] && p[i * ch] == p[i * ch + 2]) continue;
      else color = 2;
    if (color == 2) {
      free(p);
      return kn_err(KNOBS_ERR_ARG, "the model takes grayscale images (1 channel) and this PNG is in colour (%d channels): "
                    "convert it to grayscale", ch);
    }
  }
  if (!color && C == 3) {
    free(p);
    return kn_err(KNOBS_ERR_ARG, "the model takes colour images (3 channels, RGB) and this PNG is grayscale (%d channel%s)", ch,
                  ch > 1 ? "s" : "");
  }
  if (w != W || h != H) snprintf(note, note_n, "resized from %dx%d to %dx%d (bilinear)", w, h, W, H);
  for (int c = 0; c < C; c++)
    for (int yy = 0; yy < H; yy++)
      for (int xx = 0; xx < W; xx++) {
        float v;
        if (w == W && h == H) v = (float)p[((size_t)yy * w + xx) * ch + c] / 255.0f;
        else v = bilinear(p, w, h, ch, c, (yy + 0.5) * h / H, (xx + 0.5) * w / W);
        x[((size_t)c * H + yy) * W + xx] = v;
      }
  free(p);
  return KNOBS_OK;
}
