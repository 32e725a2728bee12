/* norb.c: SmallNORB in its binary-matrix files (plain or .gz): for each split, "<prefix>-dat.mat"
 * (N,2,96,96) uint8 stereo pairs, "-cat.mat" (N) int32 categories and "-info.mat" (N,4) int32
 * instance, elevation (0..8), azimuth (0, 2, ..., 34) and lighting (0..5).
 * A folder holding the training and/or testing files is merged (as the reference study does);
 * a path to one "-dat.mat" file opens that split. Only the first camera is kept, resized from
 * 96x96 to 64x64 by area averaging (each output pixel is the mean of the 1.5 x 1.5 input pixels
 * it covers), into memory as uint8 while the files stream (48600 images: 199 MB).
 * Factors: category 5, instance 10, elevation 9 (30..70 degrees), azimuth 18 (0..340 degrees),
 * lighting 6; both splits together are a full grid. The reference study treats the instance as a
 * nuisance; here it is a factor (metrics can ignore it).
 * Format: a little-endian magic (0x1E3D4C55 bytes, 0x1E3D4C54 int32), the number of dimensions,
 * then max(ndim, 3) int32 dimensions, then the data (LeCun & Huang, the NORB dataset page). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/files.h"

#define MAGIC_U8 0x1E3D4C55u
#define MAGIC_I32 0x1E3D4C54u

static const char *const names[5] = {"category", "instance", "elevation", "azimuth", "lighting"};

typedef struct {
  uint32_t magic;
  int ndim;
  int64_t dims[4];
} mat_hdr;

static uint32_t le32(const uint8_t *b) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

/* the header of a matrix file that must hold `want` elements in `ndim` dimensions */
static knobs_status read_hdr(kn_reader *r, mat_hdr *h, uint32_t want, int ndim) {
  uint8_t b[8 + 16];
  knobs_status s = kn_read_exact(r, b, 8, "NORB header");
  if (s) return s;
  h->magic = le32(b);
  h->ndim = (int)le32(b + 4);
  if (h->magic != MAGIC_U8 && h->magic != MAGIC_I32)
    return kn_err(KNOBS_ERR_FORMAT, "%s: not a NORB matrix file (magic %08x)", r->name, h->magic);
  if (h->magic != want)
    return kn_err(KNOBS_ERR_FORMAT, "%s: holds %s, expected %s", r->name, h->magic == MAGIC_U8 ? "bytes" : "int32",
                  want == MAGIC_U8 ? "bytes" : "int32");
  if (h->ndim != ndim)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %d dimensions, expected %d", r->name, h->ndim, ndim);
  int nd = ndim < 3 ? 3 : ndim; /* the format always stores at least 3 */
  if ((s = kn_read_exact(r, b + 8, (size_t)nd * 4, "NORB dimensions"))) return s;
  for (int i = 0; i < ndim; i++) {
    int32_t v = (int32_t)le32(b + 8 + 4 * i);
    if (v <= 0 || v > (1 << 24)) return kn_err(KNOBS_ERR_FORMAT, "%s: dimension %d is %d", r->name, i, v);
    h->dims[i] = v;
  }
  return KNOBS_OK;
}

typedef struct {
  char dat[1024], cat[1024], info[1024];
  int64_t n;
  int cams, H, W;
} split;

/* "<x>-dat.mat[.gz]" -> the sibling "<x>-<kind>.mat" (or .gz) */
static int sibling(const char *dat, const char *kind, char *out, size_t n) {
  const char *p = strstr(dat, "-dat.mat");
  if (!p) return 0;
  char dir[1024], base[600];
  const char *b = kn_basename(dat);
  size_t dl = (size_t)(b - dat);
  if (dl >= sizeof dir || (size_t)(p - b) + 16 >= sizeof base) return 0;
  memcpy(dir, dat, dl ? dl - 1 : 0);
  dir[dl ? dl - 1 : 0] = 0;
  if (!dl) strcpy(dir, ".");
  snprintf(base, sizeof base, "%.*s-%s.mat", (int)(p - b), b, kind);
  return kn_find_file(out, n, dir, base);
}

/* stream one split into rows [row0, row0 + n) of the store and the value table */
static knobs_status load_split(const split *sp, kn_store *st, int64_t row0, double *vals) {
  kn_reader *r = NULL;
  knobs_status s;
  mat_hdr h = {0};
  /* categories and info first: small, and they say whether the images are worth reading */
  int32_t *cat = malloc(sizeof(int32_t) * (size_t)sp->n), *info = malloc(sizeof(int32_t) * (size_t)sp->n * 4);
  uint8_t *rec = malloc((size_t)sp->cams * sp->H * sp->W);
  float *tmp = malloc(sizeof(float) * 64 * (size_t)sp->W);
  if (!cat || !info || !rec || !tmp) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", sp->dat); goto out; }
  if ((s = kn_reader_gz(sp->cat, &r)) || (s = read_hdr(r, &h, MAGIC_I32, 1))) goto out;
  if (h.dims[0] != sp->n) { s = kn_err(KNOBS_ERR_FORMAT, "%s: %lld categories for %lld images in %s", sp->cat, (long long)h.dims[0], (long long)sp->n, sp->dat); goto out; }
  if ((s = kn_read_exact(r, cat, sizeof(int32_t) * (size_t)sp->n, "categories")) || (s = kn_reader_expect_end(r, "categories"))) goto out;
  kn_reader_close(r);
  if ((s = kn_reader_gz(sp->info, &r)) || (s = read_hdr(r, &h, MAGIC_I32, 2))) goto out;
  if (h.dims[0] != sp->n || h.dims[1] != 4) { s = kn_err(KNOBS_ERR_FORMAT, "%s: info is %lld x %lld, expected %lld x 4", sp->info, (long long)h.dims[0], (long long)h.dims[1], (long long)sp->n); goto out; }
  if ((s = kn_read_exact(r, info, sizeof(int32_t) * (size_t)sp->n * 4, "info")) || (s = kn_reader_expect_end(r, "info"))) goto out;
  kn_reader_close(r);
  r = NULL;
  for (int64_t i = 0; i < sp->n; i++) { /* little-endian int32 on disk; knobs targets little-endian hosts */
    const int32_t *in = info + i * 4;
    int32_t c = cat[i];
    if (c < 0 || c > 4 || in[0] < 0 || in[0] > 9 || in[1] < 0 || in[1] > 8 || in[2] < 0 || in[2] > 34 || in[2] % 2 || in[3] < 0 || in[3] > 5) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s / %s: row %lld has category %d, instance %d, elevation %d, azimuth %d, "
                 "lighting %d; expected 0..4, 0..9, 0..8, 0, 2, ..., 34, 0..5", sp->cat, sp->info, (long long)i, c,
                 in[0], in[1], in[2], in[3]);
      goto out;
    }
    double *v = vals + (row0 + i) * 5;
    v[0] = c, v[1] = in[0], v[2] = 30 + 5 * in[1], v[3] = 10 * in[2], v[4] = in[3];
  }
  if ((s = kn_reader_gz(sp->dat, &r)) || (s = read_hdr(r, &h, MAGIC_U8, 4))) goto out;
  size_t rb = (size_t)sp->cams * sp->H * sp->W;
  int resize = sp->H == 96 && sp->W == 96;
  for (int64_t i = 0; i < sp->n; i++) {
    if ((s = kn_read_exact(r, rec, rb, "image pair"))) goto out;
    uint8_t *o = st->mem + (uint64_t)(row0 + i) * st->row_bytes;
    if (!resize) {
      memcpy(o, rec, (size_t)sp->H * sp->W);
      continue;
    }
    /* area resize 96 -> 64: output o covers input [1.5 o, 1.5 o + 1.5): weights (1, 0.5) when o
     * is even, (0.5, 1) when odd, normalised by 1.5 per axis */
    for (int y = 0; y < 64; y++) {
      int y0 = 3 * y / 2;
      float a = y % 2 ? 0.5f : 1.0f, b = y % 2 ? 1.0f : 0.5f;
      for (int x = 0; x < 96; x++) tmp[y * 96 + x] = a * rec[y0 * 96 + x] + b * rec[(y0 + 1) * 96 + x];
    }
    for (int y = 0; y < 64; y++)
      for (int x = 0; x < 64; x++) {
        int x0 = 3 * x / 2;
        float a = x % 2 ? 0.5f : 1.0f, b = x % 2 ? 1.0f : 0.5f;
        float v = (a * tmp[y * 96 + x0] + b * tmp[y * 96 + x0 + 1]) / 2.25f;
        o[y * 64 + x] = (uint8_t)(v + 0.5f);
      }
  }
  s = kn_reader_expect_end(r, "images");
out:
  kn_reader_close(r);
  free(cat), free(info), free(rec), free(tmp);
  return s;
}

static knobs_status probe_split(split *sp) {
  if (!sibling(sp->dat, "cat", sp->cat, sizeof sp->cat) || !sibling(sp->dat, "info", sp->info, sizeof sp->info))
    return kn_err(KNOBS_ERR_IO, "%s: the matching -cat.mat and -info.mat files (or .gz) are missing", sp->dat);
  kn_reader *r;
  mat_hdr h = {0};
  knobs_status s = kn_reader_gz(sp->dat, &r);
  if (s) return s;
  s = read_hdr(r, &h, MAGIC_U8, 4);
  uint64_t bound = kn_reader_gz_bound(r);
  kn_reader_close(r);
  if (s) return s;
  if (h.dims[1] > 2 || h.dims[2] > 4096 || h.dims[3] > 4096)
    return kn_err(KNOBS_ERR_FORMAT, "%s: shape (%lld, %lld, %lld, %lld) is not (N, 2, 96, 96)", sp->dat,
                  (long long)h.dims[0], (long long)h.dims[1], (long long)h.dims[2], (long long)h.dims[3]);
  if ((uint64_t)h.dims[0] * (uint64_t)h.dims[1] * (uint64_t)h.dims[2] * (uint64_t)h.dims[3] > bound) /* before allocating */
    return kn_err(KNOBS_ERR_FORMAT, "%s: truncated: %lld image pairs of %lldx%lld do not fit in the file", sp->dat,
                  (long long)h.dims[0], (long long)h.dims[2], (long long)h.dims[3]);
  sp->n = h.dims[0], sp->cams = (int)h.dims[1], sp->H = (int)h.dims[2], sp->W = (int)h.dims[3];
  return KNOBS_OK;
}

/* the -dat.mat files of a folder, training before testing (at most 2) */
static int find_dats(const char *dir, split *sp) {
  DIR *dp = opendir(dir);
  if (!dp) return 0;
  int n = 0;
  char found[2][512] = {"", ""};
  for (struct dirent *e; (e = readdir(dp));) {
    const char *nm = e->d_name;
    if (!kn_ends_with(nm, "-dat.mat") && !kn_ends_with(nm, "-dat.mat.gz")) continue;
    int slot = strstr(nm, "test") ? 1 : 0;
    if (!found[slot][0] || strcmp(nm, found[slot]) < 0) snprintf(found[slot], sizeof found[slot], "%s", nm);
  }
  closedir(dp);
  for (int i = 0; i < 2; i++)
    if (found[i][0]) snprintf(sp[n++].dat, sizeof sp[0].dat, "%.500s/%.500s", dir, found[i]);
  return n;
}

static int norb_match(const char *spec) {
  if (kn_ends_with(spec, "-dat.mat") || kn_ends_with(spec, "-dat.mat.gz")) return 1;
  split sp[2];
  return kn_is_dir(spec) && find_dats(spec, sp) > 0;
}

static knobs_status norb_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  split sp[2];
  memset(sp, 0, sizeof sp);
  int ns = 1;
  if (kn_is_dir(spec)) ns = find_dats(spec, sp);
  else snprintf(sp[0].dat, sizeof sp[0].dat, "%s", spec);
  knobs_status s = KNOBS_OK;
  int64_t n = 0;
  for (int i = 0; i < ns && !s; i++) {
    s = probe_split(&sp[i]);
    if (!s && i && (sp[i].H != sp[0].H || sp[i].W != sp[0].W || sp[i].cams != sp[0].cams))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: images of %dx%d, but %s has %dx%d", sp[i].dat, sp[i].H, sp[i].W,
                 sp[0].dat, sp[0].H, sp[0].W);
    n += sp[i].n;
  }
  if (s) return s;
  int resize = sp[0].H == 96 && sp[0].W == 96;
  kn_filedata *f = kn_filedata_new();
  double *vals = malloc(sizeof(double) * (size_t)n * 5);
  if (!f || !vals) {
    free(vals);
    kn_filedata_free(f);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", spec);
  }
  kn_store_init(&f->obs, spec, n, 1, resize ? 64 : sp[0].H, resize ? 64 : sp[0].W, KNOBS_U8, 0, 1.0f / 255);
  s = kn_store_alloc(&f->obs);
  for (int i = 0, row = 0; i < ns && !s; row += (int)sp[i].n, i++) s = load_split(&sp[i], &f->obs, row, vals);
  if (!s) s = o->factors ? kn_factors_load(o->factors, n, &f->fac) : kn_factors_from_values(&f->fac, vals, n, 5, names, spec);
  free(vals);
  if (s) {
    kn_filedata_free(f);
    return s;
  }
  s = kn_filedata_attach(d, f, kn_basename(spec), 1, 0, o);
  if (!s && ns == 1) kn_data_note(&d->info, "one split only (%s); the reference study merges training and testing", kn_basename(sp[0].dat));
  return s;
}

const kn_data_entry kn_data_norb = {
    NULL,
    "SmallNORB folder or *-dat.mat[.gz] (with -cat/-info): 96x96 resized to 64x64, one camera, "
    "5 factors; splits merged",
    norb_match,
    norb_open,
};
