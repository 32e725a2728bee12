/* idx.c: MNIST-style IDX files (plain or .gz): an images file (N,H,W) of unsigned bytes and,
 * found beside it by name ("images" -> "labels", "idx3" -> "idx1"), a labels file (N), which
 * becomes the factor `label`. A folder opens its train-images-idx3-ubyte[.gz]; the name
 * `fashion-mnist` (or fashion-mnist:train / fashion-mnist:test) opens Debian's copy of
 * Fashion-MNIST (package dataset-fashion-mnist). Images are 28x28x1 for MNIST: knobs reports
 * the true shape; the model picks its 28x28 architecture.
 * Plain files are read on demand by offset; gzip files are decompressed once into memory
 * (47 MB for MNIST's training images).
 * Format: big-endian; bytes 0 and 1 zero, byte 2 the type (0x08: unsigned byte, the only one
 * accepted), byte 3 the number of dimensions, then one uint32 per dimension, then the data
 * (LeCun et al., the MNIST database page). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/files.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Header of an IDX file: dimensions into dims, their count returned through *nd. */
static knobs_status idx_header(kn_reader *r, int *nd, int64_t dims[4]) {
  uint8_t b[4 + 16];
  knobs_status s = kn_read_exact(r, b, 4, "IDX magic");
  if (s) return s;
  if (b[0] || b[1] || b[3] < 1 || b[3] > 4)
    return kn_err(KNOBS_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x)", r->name, b[0], b[1], b[2], b[3]);
  if (b[2] != 0x08)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: IDX element type 0x%02x; only unsigned bytes (0x08) are supported",
                  r->name, b[2]);
  *nd = b[3];
  if ((s = kn_read_exact(r, b + 4, 4 * (size_t)*nd, "IDX dimensions"))) return s;
  for (int i = 0; i < *nd; i++) {
    const uint8_t *p = b + 4 + 4 * i;
    dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    if (dims[i] == 0) return kn_err(KNOBS_ERR_DATA, "%s: dimension %d is 0 (no data)", r->name, i);
  }
  return KNOBS_OK;
}

/* the labels file beside an images file, or 0 */
static int labels_path(const char *images, char *out, size_t n) {
  char dir[1024], base[512];
  const char *b = kn_basename(images);
  size_t dl = (size_t)(b - images);
  if (dl >= sizeof dir || strlen(b) >= sizeof base) return 0;
  if (dl) memcpy(dir, images, dl - 1), dir[dl - 1] = 0;
  else strcpy(dir, ".");
  strcpy(base, b);
  if (kn_ends_with(base, ".gz")) base[strlen(base) - 3] = 0;
  char *p = strstr(base, "images"), *q = strstr(base, "idx3");
  if (!p && !q) return 0;
  if (p) memcpy(p, "labels", 6);
  if (q) memcpy(q, "idx1", 4);
  return kn_find_file(out, n, dir, base);
}

static knobs_status read_labels(const char *path, int64_t n, kn_factors *fac) {
  kn_reader *r;
  knobs_status s = kn_reader_gz(path, &r);
  if (s) return s;
  int nd = 0;
  int64_t dims[4];
  uint8_t *lab = NULL;
  double *v = NULL;
  if ((s = idx_header(r, &nd, dims))) goto out;
  if (nd != 1) { s = kn_err(KNOBS_ERR_FORMAT, "%s: a labels file has 1 dimension, this one %d", path, nd); goto out; }
  if (dims[0] != n) { s = kn_err(KNOBS_ERR_DATA, "%s: %lld labels for %lld images", path, (long long)dims[0], (long long)n); goto out; }
  if ((uint64_t)n > kn_reader_gz_bound(r)) { s = kn_err(KNOBS_ERR_FORMAT, "%s: truncated: %lld labels do not fit in the file", path, (long long)n); goto out; }
  lab = malloc((size_t)n);
  v = malloc(sizeof(double) * (size_t)n);
  if (!lab || !v) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path); goto out; }
  if ((s = kn_read_exact(r, lab, (size_t)n, "labels")) || (s = kn_reader_expect_end(r, "labels"))) goto out;
  for (int64_t i = 0; i < n; i++) v[i] = lab[i];
  const char *names[1] = {"label"};
  s = kn_factors_from_values(fac, v, n, 1, names, path);
out:
  kn_reader_close(r);
  free(lab), free(v);
  return s;
}

static knobs_status open_images(knobs_data *d, const char *path, const char *name, const knobs_data_opts *o) {
  kn_reader *r;
  knobs_status s = kn_reader_gz(path, &r);
  if (s) return s;
  int nd = 0;
  int64_t dims[4] = {0, 0, 0, 1};
  kn_filedata *f = NULL;
  if ((s = idx_header(r, &nd, dims))) goto fail;
  if (nd == 1) { s = kn_err(KNOBS_ERR_FORMAT, "%s: a labels file (1 dimension); pass the images file", path); goto fail; }
  if (nd != 3 && !(nd == 4 && (dims[3] == 1 || dims[3] == 3))) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: IDX images are (N,H,W) or (N,H,W,C) with C 1 or 3, this file has %d dimensions", path, nd);
    goto fail;
  }
  if (dims[1] > 4096 || dims[2] > 4096) { s = kn_err(KNOBS_ERR_FORMAT, "%s: images of %lldx%lld are too large", path, (long long)dims[1], (long long)dims[2]); goto fail; }
  if (!(f = kn_filedata_new())) { s = knobs_last_status(); goto fail; }
  kn_store_init(&f->obs, path, dims[0], (int)dims[3], (int)dims[1], (int)dims[2], KNOBS_U8, 1, 1.0f / 255);
  if (r->size != UINT64_MAX) { /* plain: read in place, after checking the size */
    uint64_t want = (uint64_t)(4 + 4 * nd) + (uint64_t)f->obs.n * f->obs.row_bytes;
    if (r->size != want) {
      s = kn_err(KNOBS_ERR_FORMAT, "%s: the header says %lld images of %lldx%lld (%llu bytes with the header), "
                 "the file has %llu", path, (long long)dims[0], (long long)dims[1], (long long)dims[2],
                 (unsigned long long)want, (unsigned long long)r->size);
      goto fail;
    }
    s = kn_store_open_file(&f->obs, path, (uint64_t)(4 + 4 * nd));
  } else if ((uint64_t)f->obs.n * f->obs.row_bytes > kn_reader_gz_bound(r)) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: the header says %lld images of %lldx%lld, more than the compressed file "
               "can hold", path, (long long)dims[0], (long long)dims[1], (long long)dims[2]);
  } else {
    if (!(s = kn_store_alloc(&f->obs)) && !(s = kn_store_load(&f->obs, r))) s = kn_reader_expect_end(r, "images");
  }
  if (s) goto fail;
  kn_reader_close(r);
  r = NULL;
  char lp[1100];
  int have_labels = 0;
  if (o->factors) s = kn_factors_load(o->factors, f->obs.n, &f->fac);
  else if ((have_labels = labels_path(path, lp, sizeof lp))) s = read_labels(lp, f->obs.n, &f->fac);
  if (s) goto fail;
  s = kn_filedata_attach(d, f, name, 1, 0, o);
  if (!s && !o->factors && !have_labels) kn_data_note(&d->info, "no labels file found beside %s: no factors", kn_basename(path));
  return s;
fail:
  kn_reader_close(r);
  kn_filedata_free(f);
  return s;
}

static int idx_match(const char *spec) {
  const char *b = kn_basename(spec);
  if (strstr(b, "idx3") || strstr(b, "idx1") || kn_ends_with(spec, ".idx") || kn_ends_with(spec, ".idx.gz")) return 1;
  char p[1100];
  return kn_is_dir(spec) && kn_find_file(p, sizeof p, spec, "train-images-idx3-ubyte");
}

static knobs_status idx_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  char p[1100];
  if (kn_is_dir(spec)) {
    if (!kn_find_file(p, sizeof p, spec, "train-images-idx3-ubyte"))
      return kn_err(KNOBS_ERR_IO, "%s: no train-images-idx3-ubyte[.gz] in this folder", spec);
    return open_images(d, p, kn_basename(spec), o);
  }
  return open_images(d, spec, kn_basename(spec), o);
}

static int fashion_match(const char *spec) {
  return !strcmp(spec, "fashion-mnist") || !strcmp(spec, "fashion-mnist:train") || !strcmp(spec, "fashion-mnist:test");
}

static knobs_status fashion_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  const char *file = strcmp(spec, "fashion-mnist:test") ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
  char p[1100];
  if (!kn_find_file(p, sizeof p, FASHION_DIR, file))
    return kn_err(KNOBS_ERR_IO, "%s: %s/%s.gz not found: install the Debian package dataset-fashion-mnist, "
                  "or pass the path of an IDX images file", spec, FASHION_DIR, file);
  knobs_status s = open_images(d, p, spec, o);
  if (!s && d->info.K == 1 && !o->factors)
    kn_data_note(&d->info, "labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, "
                 "6 shirt, 7 sneaker, 8 bag, 9 ankle boot");
  return s;
}

const kn_data_entry kn_data_idx = {
    NULL,
    "*idx3-ubyte[.gz]: MNIST-style IDX images with the labels file beside them (or a folder with "
    "train-images-idx3-ubyte)",
    idx_match,
    idx_open,
};

const kn_data_entry kn_data_fashion = {
    "fashion-mnist",
    "Fashion-MNIST 28x28 from Debian's dataset-fashion-mnist (60000 train; fashion-mnist:test for "
    "10000), factor: label",
    fashion_match,
    fashion_open,
};
