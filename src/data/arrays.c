/* arrays.c: the user's own data, without a converter:
 * - a .npy, or a member of a .npz ("x.npz:member"; a lone member, or one named images, imgs,
 *   x, X, data or arr_0, is found by itself): (N,H,W), (N,H,W,C) or (N,C,H,W) with C 1 or 3 are
 *   images (uint8 or bool /255 or as 0/1, uint16 /65535, float already in [0,1]); (N,F) (or (N,))
 *   are vectors of any numeric dtype. Plain .npy and stored members are read on demand by
 *   offset; deflated members are decompressed once into memory in their own dtype.
 * - the same prefixed seq: ("seq:clips.npy", "seq:x.npz:member") holds sequences of T >= 2
 *   image frames, (N,T,H,W), (N,T,H,W,C) or (N,T,C,H,W) with C 1 or 3: an observation is
 *   (T*C, H, W), frames in order, info.T = T, as dsprites:seq (the layout sequence models read).
 *   Only with the prefix: a 4-D array is otherwise images, and a 5-D one is refused with a
 *   pointer to it.
 * - a folder of PNG files (sorted by name; gray or RGB, alpha dropped): all the same size.
 * - a CSV/TSV table of numbers (optionally .gz) with a header: vectors, one row per observation.
 * Factors come from opts->factors (.npy, .npz member, CSV/TSV; see factors.c), or for a .npz
 * from a member named factors, labels, latents_classes or y with one row per observation.
 * Every value is checked once at open (NaN/Inf, the range of images). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/files.h"

static int is_table(const char *s) {
  return kn_ends_with(s, ".csv") || kn_ends_with(s, ".tsv") || kn_ends_with(s, ".csv.gz") || kn_ends_with(s, ".tsv.gz");
}

static int is_array(const char *s) { return kn_ends_with(s, ".npy") || kn_ends_with(s, ".npz") || strstr(s, ".npz:"); }

static int arr_match(const char *spec) { return is_array(spec) || is_table(spec) || kn_is_dir(spec); }

/* ---- factors for a data file ------------------------------------------------------------ */

/* the factors of an .npz's own member, if it has one of the usual names and n rows */
static knobs_status npz_factors(const char *path, char **members, int nm, int64_t n, kn_factors *fac, int *found) {
  static const char *const want[] = {"factors.npy", "labels.npy", "latents_classes.npy", "y.npy"};
  *found = 0;
  for (int w = 0; w < 4; w++)
    for (int i = 0; i < nm; i++) {
      if (strcmp(members[i], want[w])) continue;
      kn_npy_src src;
      if (kn_npy_probe(path, members[i], &src) || (src.h.ndim != 1 && src.h.ndim != 2) || src.h.shape[0] != n)
        continue; /* not usable as factors: ignore it */
      char spec[1100];
      snprintf(spec, sizeof spec, "%s:%s", path, members[i]);
      *found = 1;
      return kn_factors_load(spec, n, fac);
    }
  return KNOBS_OK;
}

/* ---- .npy / .npz ---------------------------------------------------------------------- */

/* How an array's rows become observations (C,H,W); a sequence's C is T * (channels a frame). */
typedef struct {
  int64_t N;
  int C, H, W, T, hwc, image;
} layout;

static int dim(int64_t v) { return v < 1 << 30 ? (int)v : 0; } /* 0: too large, refused below */

static knobs_status image_layout(const kn_npy_src *src, layout *L) {
  const int64_t *sh = src->h.shape;
  *L = (layout){src->h.ndim ? sh[0] : 0, 1, 1, 1, 1, 0, 1};
  switch (src->h.ndim) {
  case 1: L->image = 0; break;
  case 2: L->C = dim(sh[1]), L->image = 0; break;
  case 3: L->H = dim(sh[1]), L->W = dim(sh[2]); break;
  case 4:
    if (sh[3] == 1 || sh[3] == 3) L->H = dim(sh[1]), L->W = dim(sh[2]), L->C = (int)sh[3], L->hwc = 1;
    else if (sh[1] == 1 || sh[1] == 3) L->C = (int)sh[1], L->H = dim(sh[2]), L->W = dim(sh[3]);
    else return kn_err(KNOBS_ERR_FORMAT, "%s: 4-D arrays must be (N,H,W,C) or (N,C,H,W) with C 1 or 3 (sequences "
                       "(N,T,H,W) open as seq:FILE)", src->name);
    break;
  case 5:
    return kn_err(KNOBS_ERR_FORMAT, "%s: 5 dimensions: if these are sequences (N,T,H,W,C), open them as seq:%s",
                  src->name, src->name);
  default:
    return kn_err(KNOBS_ERR_FORMAT, "%s: %d dimensions; knobs reads (N,F) vectors or (N,H,W), (N,H,W,C), (N,C,H,W) images",
                  src->name, src->h.ndim);
  }
  return KNOBS_OK;
}

/* seq:FILE: (N,T,H,W) gray frames, (N,T,H,W,C) or (N,T,C,H,W) with C 1 or 3. A 4-D array whose
 * last axis is 1 or 3 is refused: it reads as (N,H,W,C) images far more likely than as frames
 * 1 or 3 pixels wide (those can say so with a last axis of 1). */
static knobs_status seq_layout(const kn_npy_src *src, layout *L) {
  const int64_t *sh = src->h.shape;
  int nd = src->h.ndim;
  *L = (layout){nd ? sh[0] : 0, 1, 1, 1, 1, 0, 1};
  if (nd == 4 && (sh[3] == 1 || sh[3] == 3))
    return kn_err(KNOBS_ERR_FORMAT, "%s: (%lld, %lld, %lld, %lld) looks like images (N,H,W,C), not sequences: "
                  "sequences of colour frames are 5-D (N,T,H,W,C); gray ones (N,T,H,W) (frames %lld pixels wide: "
                  "reshape to (N,T,H,W,1))", src->name, (long long)sh[0], (long long)sh[1], (long long)sh[2],
                  (long long)sh[3], (long long)sh[3]);
  if (nd == 4) {
    L->T = dim(sh[1]), L->H = dim(sh[2]), L->W = dim(sh[3]);
  } else if (nd == 5 && (sh[4] == 1 || sh[4] == 3)) {
    L->T = dim(sh[1]), L->H = dim(sh[2]), L->W = dim(sh[3]), L->C = (int)sh[4], L->hwc = 1;
  } else if (nd == 5 && (sh[2] == 1 || sh[2] == 3)) {
    L->T = dim(sh[1]), L->C = (int)sh[2], L->H = dim(sh[3]), L->W = dim(sh[4]);
  } else if (nd == 5) {
    return kn_err(KNOBS_ERR_FORMAT, "%s: 5-D sequences must be (N,T,H,W,C) or (N,T,C,H,W) with C 1 or 3", src->name);
  } else {
    return kn_err(KNOBS_ERR_FORMAT, "%s: %d dimension%s; sequences are (N,T,H,W) or (N,T,H,W,C)%s", src->name, nd,
                  nd == 1 ? "" : "s", nd == 3 ? " ((N,H,W) are single images: open the file without seq:)" : "");
  }
  if (L->T == 1)
    return kn_err(KNOBS_ERR_DATA, "%s: T = 1 frame per sequence; a sequence needs at least 2 (single images: open the "
                  "file without seq:)", src->name);
  if (L->T < 1 || L->T > 4096)
    return kn_err(KNOBS_ERR_FORMAT, "%s: %lld frames per sequence (2..4096)", src->name, (long long)sh[1]);
  L->C *= L->T;
  return KNOBS_OK;
}

/* An array of images or vectors, or with `seq` of sequences (seq:FILE, FILE without the prefix). */
static knobs_status open_array(knobs_data *d, const char *spec, const knobs_data_opts *o, int seq) {
  char path[1024], member[256] = "";
  char **members = NULL;
  int nm = 0;
  knobs_status s;
  const char *colon = strstr(spec, ".npz:");
  if (colon) {
    size_t pl = (size_t)(colon - spec) + 4;
    if (pl >= sizeof path) return kn_err(KNOBS_ERR_ARG, "%s: path too long", spec);
    memcpy(path, spec, pl), path[pl] = 0;
    snprintf(member, sizeof member, "%s%s", colon + 5, kn_ends_with(colon + 5, ".npy") ? "" : ".npy");
  } else {
    snprintf(path, sizeof path, "%s", spec);
  }
  int npz = kn_ends_with(path, ".npz");
  if (npz && (s = kn_zip_list(path, &members, &nm))) return s;
  if (npz && !member[0]) {
    static const char *const pref[] = {"images.npy", "imgs.npy", "x.npy", "X.npy", "data.npy", "arr_0.npy"};
    if (nm == 1) snprintf(member, sizeof member, "%s", members[0]);
    for (int p = 0; p < 6 && !member[0]; p++)
      for (int i = 0; i < nm; i++)
        if (!strcmp(members[i], pref[p])) snprintf(member, sizeof member, "%s", members[i]);
    if (!member[0]) {
      char list[400] = "";
      size_t l = 0;
      for (int i = 0; i < nm && l < sizeof list - 64; i++) l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", members[i]);
      knobs_npz_names_free(members, nm);
      return kn_err(KNOBS_ERR_ARG, "%s: which array? its members are %s: name one as %s:MEMBER", path,
                    nm ? list : "(none)", path);
    }
  }
  kn_npy_src src;
  if ((s = kn_npy_probe(path, npz ? member : NULL, &src))) goto out;
  knobs_dtype t = src.h.dtype;
  layout L;
  if ((s = seq ? seq_layout(&src, &L) : image_layout(&src, &L))) goto out;
  int64_t N = L.N;
  int C = L.C, H = L.H, W = L.W, hwc = L.hwc, image = L.image;
  if (N == 0) { s = kn_err(KNOBS_ERR_DATA, "%s: no observations (the first dimension is 0)", src.name); goto out; }
  if (C <= 0 || H <= 0 || W <= 0 || H > 8192 || W > 8192 || C > (1 << 24)) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: observations of %d x %d x %d are empty or too large", src.name, C, H, W);
    goto out;
  }
  if (image && t != KNOBS_U8 && t != KNOBS_BOOL && t != KNOBS_U16 && t != KNOBS_F32 && t != KNOBS_F64) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: %s images: use uint8, uint16 or float in [0,1]%s", src.name, knobs_dtype_name(t),
               seq ? "" : " (or reshape to (N,F) for vectors)");
    goto out;
  }
  kn_filedata *f = kn_filedata_new();
  if (!f) { s = knobs_last_status(); goto out; }
  kn_store_init(&f->obs, src.name, N, C, H, W, t, hwc, 1);
  f->obs.frames = L.T;
  kn_store_stats st;
  if ((s = kn_store_from_npy(&f->obs, &src)) || (s = kn_store_scan(&f->obs, &st))) goto fail;
  if (st.nonfinite_row >= 0) {
    s = kn_err(KNOBS_ERR_DATA, "%s: %s %lld holds NaN or Inf", src.name, seq ? "sequence" : "observation",
               (long long)st.nonfinite_row);
    goto fail;
  }
  int binary = image && st.zero_one;
  if (image) {
    if (t == KNOBS_U8) f->obs.scale = st.zero_one ? 1.0f : 1.0f / 255;
    else if (t == KNOBS_U16) f->obs.scale = st.zero_one ? 1.0f : 1.0f / 65535;
    else if ((t == KNOBS_F32 || t == KNOBS_F64) && (st.min < 0 || st.max > 1)) {
      s = kn_err(KNOBS_ERR_DATA, "%s: float images must lie in [0,1]; values range from %g to %g (scale them%s)",
                 src.name, st.min, st.max, seq ? "" : ", or reshape to (N,F) to use them as vectors");
      goto fail;
    }
  }
  int found = 0;
  if (o->factors) s = kn_factors_load(o->factors, N, &f->fac);
  else if (npz) s = npz_factors(path, members, nm, N, &f->fac, &found);
  if (s) goto fail;
  char name[300];
  snprintf(name, sizeof name, "%s%s", seq ? "seq:" : "", kn_basename(spec));
  s = kn_filedata_attach(d, f, name, image, binary, o);
  d->info.T = L.T;
  if (!s && found) kn_data_note(&d->info, "factors from the archive's own labels");
  goto out;
fail:
  kn_filedata_free(f);
out:
  knobs_npz_names_free(members, nm);
  return s;
}

/* ---- CSV / TSV ------------------------------------------------------------------------ */

static knobs_status open_table(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  kn_reader *r;
  knobs_status s = kn_reader_gz(spec, &r);
  if (s) return s;
  kn_csv c;
  s = kn_csv_read(r, &c);
  kn_reader_close(r);
  if (s) return s;
  kn_filedata *f = kn_filedata_new();
  if (!f) {
    kn_csv_free(&c);
    return knobs_last_status();
  }
  kn_store_init(&f->obs, spec, c.rows, c.cols, 1, 1, KNOBS_F32, 0, 1);
  if (!(s = kn_store_alloc(&f->obs))) {
    float *m = (float *)f->obs.mem;
    for (size_t i = 0; i < (size_t)c.rows * c.cols; i++) {
      m[i] = (float)c.v[i];
      if (!isfinite(m[i]) && !s) /* finite as a double, too large for float32 */
        s = kn_err(KNOBS_ERR_DATA, "%s: row %zu, column '%s': %g is beyond the float32 range", spec,
                   i / (size_t)c.cols + 1, c.names[i % (size_t)c.cols], c.v[i]);
    }
  }
  /* columns of very different spread train poorly with one fixed-variance Gaussian: say so */
  double lo = INFINITY, hi = 0;
  int ilo = 0, ihi = 0;
  for (int j = 0; j < c.cols && !s; j++) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < c.rows; i++) m += c.v[(size_t)i * c.cols + j];
    m /= (double)c.rows;
    for (int64_t i = 0; i < c.rows; i++) v += (c.v[(size_t)i * c.cols + j] - m) * (c.v[(size_t)i * c.cols + j] - m);
    double sd = sqrt(v / (double)c.rows);
    if (sd < lo) lo = sd, ilo = j;
    if (sd > hi) hi = sd, ihi = j;
  }
  char note[200] = "";
  if (!s && c.rows > 1 && hi > 100 * lo)
    snprintf(note, sizeof note, "columns differ in spread (std %.3g for '%.40s', %.3g for '%.40s'): consider "
             "standardising them", lo, c.names[ilo], hi, c.names[ihi]);
  if (!s && o->factors) s = kn_factors_load(o->factors, c.rows, &f->fac);
  kn_csv_free(&c);
  if (s) {
    kn_filedata_free(f);
    return s;
  }
  s = kn_filedata_attach(d, f, kn_basename(spec), 0, 0, o);
  if (!s && note[0]) kn_data_note(&d->info, "%s", note);
  return s;
}

/* ---- a folder of PNG files -------------------------------------------------------------- */

typedef struct {
  char (*files)[1024];
  int n;
  kn_store *st;
  int W, H, C;
  knobs_status *err;   /* per thread */
  char (*msg)[1200];
  int *not01;          /* per thread: a pixel other than 0 and 255 was seen */
} png_job;

static int cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* decode file i into row i; 0 or a status with the message in msg */
static knobs_status png_one(png_job *j, int i, char *msg, int *not01) {
  uint8_t *px;
  int w, h, c;
  knobs_status s = knobs_png_read(j->files[i], &px, &w, &h, &c);
  if (s) {
    snprintf(msg, 1200, "%s", knobs_last_error());
    return s;
  }
  if (w != j->W || h != j->H) {
    snprintf(msg, 1200, "%s: %dx%d pixels, but %s is %dx%d: every image must have the same size", j->files[i], w, h,
             j->files[0], j->W, j->H);
    free(px);
    return KNOBS_ERR_DATA;
  }
  if (j->C == 1 && c >= 3) {
    snprintf(msg, 1200, "%s: a colour image, but %s is gray: convert them to one kind", j->files[i], j->files[0]);
    free(px);
    return KNOBS_ERR_DATA;
  }
  uint8_t *o = j->st->mem + (uint64_t)i * j->st->row_bytes;
  size_t HW = (size_t)w * h;
  for (size_t p = 0; p < HW; p++) {
    const uint8_t *q = px + p * (size_t)c;
    if (j->C == 1) o[p] = q[0]; /* gray, or gray + alpha */
    else if (c >= 3) o[3 * p] = q[0], o[3 * p + 1] = q[1], o[3 * p + 2] = q[2];
    else o[3 * p] = o[3 * p + 1] = o[3 * p + 2] = q[0];
  }
  for (size_t k = 0; k < HW * (size_t)j->C && !*not01; k++) *not01 = o[k] != 0 && o[k] != 255;
  free(px);
  return KNOBS_OK;
}

static void png_run(void *ctx, int tid, int nt) {
  png_job *j = ctx;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  for (long i = lo; i < hi && !j->err[tid]; i++) j->err[tid] = png_one(j, (int)i, j->msg[tid], &j->not01[tid]);
}

static knobs_status open_pngs(knobs_data *d, const char *dir, const knobs_data_opts *o) {
  DIR *dp = opendir(dir);
  if (!dp) return kn_err(KNOBS_ERR_IO, "%s: cannot open the folder", dir);
  png_job j = {0};
  int cap = 0;
  knobs_status s = KNOBS_OK;
  for (struct dirent *e; (e = readdir(dp));) {
    if (!kn_ends_with(e->d_name, ".png") || e->d_name[0] == '.') continue;
    if (j.n == cap) {
      cap = cap ? cap * 2 : 256;
      void *q = realloc(j.files, sizeof *j.files * (size_t)cap);
      if (!q) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate the file list", dir); break; }
      j.files = q;
    }
    snprintf(j.files[j.n++], sizeof j.files[0], "%.500s/%.500s", dir, e->d_name);
  }
  closedir(dp);
  if (!s && j.n == 0)
    s = kn_err(KNOBS_ERR_DATA, "%s: the folder has no .png files (knobs reads a folder of PNG images, or "
               "SmallNORB / IDX files)", dir);
  kn_filedata *f = NULL;
  if (s) goto out;
  qsort(j.files, (size_t)j.n, sizeof *j.files, cmp_name);
  uint8_t *px;
  int c;
  if ((s = knobs_png_read(j.files[0], &px, &j.W, &j.H, &c))) goto out;
  free(px);
  j.C = c >= 3 ? 3 : 1;
  if (!(f = kn_filedata_new())) { s = knobs_last_status(); goto out; }
  kn_store_init(&f->obs, dir, j.n, j.C, j.H, j.W, KNOBS_U8, 1, 1.0f / 255);
  if ((s = kn_store_alloc(&f->obs))) goto out;
  if (o->threads > 1 && !(d->pool = kn_pool_create(o->threads))) { s = knobs_last_status(); goto out; }
  int nt = kn_pool_size(d->pool);
  j.st = &f->obs;
  j.err = calloc((size_t)nt, sizeof *j.err);
  j.msg = calloc((size_t)nt, sizeof *j.msg);
  j.not01 = calloc((size_t)nt, sizeof *j.not01);
  if (!j.err || !j.msg || !j.not01) { s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", dir); goto out; }
  kn_pool_run(d->pool, png_run, &j);
  int binary = 1;
  for (int t = 0; t < nt && !s; t++) {
    if (j.err[t]) s = kn_err(j.err[t], "%s", j.msg[t]);
    if (j.not01[t]) binary = 0;
  }
  if (s) goto out;
  if (o->factors && (s = kn_factors_load(o->factors, j.n, &f->fac))) goto out;
  s = kn_filedata_attach(d, f, kn_basename(dir), 1, binary, o);
  f = NULL; /* owned by d now */
out:
  kn_filedata_free(f);
  free(j.files), free(j.err), free(j.msg), free(j.not01);
  return s;
}

static knobs_status arr_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (is_table(spec)) return open_table(d, spec, o);
  if (is_array(spec)) return open_array(d, spec, o, 0);
  return open_pngs(d, spec, o);
}

const kn_data_entry kn_data_arrays = {
    NULL,
    "*.npy, *.npz[:MEMBER], a folder of *.png, *.csv/*.tsv[.gz]: your own images (N,H,W[,C]) or vectors "
    "(N,F); their factors from a separate labels file (setting 'factors')",
    arr_match,
    arr_open,
};

/* ---- seq:FILE: the user's own sequences ------------------------------------------------- */

static int seq_match(const char *spec) { return !strncmp(spec, "seq:", 4); }

static knobs_status seq_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (!is_array(spec + 4))
    return kn_err(KNOBS_ERR_ARG, "'%s': seq: reads sequences from a .npy file or a .npz member (seq:clips.npy, "
                  "seq:clips.npz:MEMBER), (N,T,H,W) or (N,T,H,W,C)", spec);
  return open_array(d, spec + 4, o, 1);
}

const kn_data_entry kn_data_seq_arrays = {
    NULL,
    "seq:*.npy, seq:*.npz[:MEMBER]: your own sequences (N,T,H,W), (N,T,H,W,C) or (N,T,C,H,W) (C 1 or 3, T >= 2) "
    "as T frames an observation; factors one row a sequence (setting 'factors')",
    seq_match,
    seq_open,
};
