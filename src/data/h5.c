/* h5.c: HDF5 image files, first of all DeepMind's 3dshapes.h5: a dataset `images` (N,H,W,C) or
 * (N,H,W) of uint8 and an optional `labels` (N,K) of numbers (3D Shapes: 480000 x 64x64x3 and
 * 480000 x 6 float64: floor_hue, wall_hue, object_hue, scale, shape, orientation, orientation
 * varying fastest). Labels become factors (distinct values -> classes); a file of 3D Shapes'
 * shape gets its factor names, and without labels its factor grid.
 *
 * The HDF5 library (serial, 1.10) crashes on some corrupt files (fuzzing finds a SEGV within
 * seconds), so knobs never calls it in its own process: a forked child opens the file, checks
 * it, and hands back what it found through a pipe and a memfd. If the child dies, the file is
 * reported as corrupt and knobs carries on. The parent then reads a contiguous `images` dataset
 * (no filters) on demand straight from the file by offset (pread: the 5.9 GB file costs no
 * memory); any other layout (chunked, compressed) is decompressed once by the child into the
 * memfd as uint8 (N*H*W*C bytes, shared with the parent, never floats).
 * It does not time out: a file on which HDF5 loops forever makes the open hang. */
#include <errno.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/files.h"

static const char *const shapes3d_names[6] = {"floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"};
static const int shapes3d_sizes[6] = {10, 10, 10, 8, 4, 15};

/* what the child reports */
typedef struct {
  int32_t status;        /* knobs_status */
  char msg[1024];        /* its error detail */
  uint64_t N, H, W, C;
  int32_t in_place;      /* 1: images read by the parent at `off`; 0: in the memfd after the labels */
  uint64_t off;
  uint64_t nlab;         /* label rows (0: no labels) and columns */
  int32_t klab;
  uint64_t lab_bytes;    /* the labels at the memfd's start (doubles), padded to 64 bytes */
  uint64_t map_bytes;    /* memfd size */
} h5_report;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ctx) {
  if (e->desc && e->desc[0]) snprintf(ctx, 200, "%s", e->desc); /* keeps the innermost reason */
  return 0;
}

/* HDF5's innermost reason for the last failure */
static const char *h5_reason(char *buf) {
  snprintf(buf, 200, "unknown HDF5 error");
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, buf);
  return buf;
}

/* ---- the child: every HDF5 call ---------------------------------------------------------- */

static knobs_status child_work(const char *path, int mfd, h5_report *rep) {
  char why[200];
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as messages, not prints */
  if (H5Fis_hdf5(path) <= 0) return kn_err(KNOBS_ERR_FORMAT, "%s: not an HDF5 file", path);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open as HDF5: %s", path, h5_reason(why));
  if (H5Lexists(file, "images", H5P_DEFAULT) <= 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: no dataset 'images' (3D Shapes files have 'images' and 'labels')", path);
  hid_t ds = H5Dopen2(file, "images", H5P_DEFAULT);
  if (ds < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open 'images': %s", path, h5_reason(why));
  hid_t t = H5Dget_type(ds);
  if (!(t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE))
    return kn_err(KNOBS_ERR_FORMAT, "%s: 'images' must be uint8", path);
  hid_t fs = H5Dget_space(ds);
  int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
  if (rank != 3 && rank != 4)
    return kn_err(KNOBS_ERR_FORMAT, "%s: 'images' must be (N,H,W) or (N,H,W,C), it has %d dimensions", path, rank);
  hsize_t dims[4] = {0, 0, 0, 1};
  H5Sget_simple_extent_dims(fs, dims, NULL);
  hsize_t N = dims[0], H = dims[1], W = dims[2], C = dims[3], row = H * W * C;
  if (N == 0) return kn_err(KNOBS_ERR_DATA, "%s: 'images' is empty", path);
  if (N > (1ull << 40) || H == 0 || W == 0 || H > 4096 || W > 4096 || (C != 1 && C != 3))
    return kn_err(KNOBS_ERR_FORMAT, "%s: 'images' has shape (%llu, %llu, %llu, %llu); expected N images "
                  "of at most 4096x4096 with 1 or 3 channels", path, (unsigned long long)N,
                  (unsigned long long)H, (unsigned long long)W, (unsigned long long)C);
  rep->N = N, rep->H = H, rep->W = W, rep->C = C;
  hid_t dcpl = H5Dget_create_plist(ds);
  if (dcpl < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read the layout of 'images': %s", path, h5_reason(why));
  H5D_layout_t layout = H5Pget_layout(dcpl);
  int plain = layout == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0 && H5Pget_external_count(dcpl) == 0;
  hsize_t cd[4] = {1, 1, 1, 1};
  if (layout == H5D_CHUNKED) H5Pget_chunk(dcpl, 4, cd);
  haddr_t off = plain ? H5Dget_offset(ds) : HADDR_UNDEF;
  hsize_t stored = H5Dget_storage_size(ds);
  if (off != HADDR_UNDEF) {
    if (stored != N * row)
      return kn_err(KNOBS_ERR_FORMAT, "%s: 'images' stores %llu bytes, its shape needs %llu", path,
                    (unsigned long long)stored, (unsigned long long)(N * row));
    rep->in_place = 1, rep->off = off;
  } else if (N * row / 1032 > stored + 64) { /* as deflate's 1032:1 limit: mostly never written */
    return kn_err(KNOBS_ERR_FORMAT, "%s: 'images' declares %llu bytes but stores only %llu", path,
                  (unsigned long long)(N * row), (unsigned long long)stored);
  }
  /* labels */
  hsize_t ldims[2] = {0, 1};
  hid_t ld = -1;
  if (H5Lexists(file, "labels", H5P_DEFAULT) > 0) {
    ld = H5Dopen2(file, "labels", H5P_DEFAULT);
    if (ld < 0) return kn_err(KNOBS_ERR_FORMAT, "%s: cannot open 'labels': %s", path, h5_reason(why));
    hid_t lt = H5Dget_type(ld), ls = H5Dget_space(ld);
    H5T_class_t cls = lt >= 0 ? H5Tget_class(lt) : H5T_NO_CLASS;
    int lr = ls >= 0 ? H5Sget_simple_extent_ndims(ls) : -1;
    if (lr == 1 || lr == 2) H5Sget_simple_extent_dims(ls, ldims, NULL);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) return kn_err(KNOBS_ERR_FORMAT, "%s: 'labels' must hold numbers", path);
    if (lr != 1 && lr != 2)
      return kn_err(KNOBS_ERR_FORMAT, "%s: 'labels' must be (N,) or (N,K), it has %d dimensions", path, lr);
    if (ldims[0] != N)
      return kn_err(KNOBS_ERR_FORMAT, "%s: 'labels' has %llu rows but 'images' has %llu", path,
                    (unsigned long long)ldims[0], (unsigned long long)N);
    if (ldims[1] < 1 || ldims[1] > KNOBS_MAX_FACTORS)
      return kn_err(KNOBS_ERR_DATA, "%s: 'labels' has %llu columns; 1 to %d are supported", path,
                    (unsigned long long)ldims[1], KNOBS_MAX_FACTORS);
    rep->nlab = N, rep->klab = (int32_t)ldims[1];
  }
  rep->lab_bytes = (rep->nlab * (uint64_t)rep->klab * sizeof(double) + 63) & ~(uint64_t)63;
  rep->map_bytes = rep->lab_bytes + (rep->in_place ? 0 : N * row);
  if (!rep->map_bytes) return KNOBS_OK;
  if (ftruncate(mfd, (off_t)rep->map_bytes) != 0)
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot reserve %.1f MB of shared memory: %s", path, (double)rep->map_bytes / 1e6,
                  strerror(errno));
  uint8_t *map = mmap(NULL, rep->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (map == MAP_FAILED) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot map shared memory: %s", path, strerror(errno));
  if (ld >= 0 && H5Dread(ld, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, map) < 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read 'labels': %s", path, h5_reason(why));
  if (!rep->in_place) { /* in slabs of whole chunks, so that each chunk is decompressed once */
    hsize_t slab = cd[0] ? cd[0] : 1;
    while (slab * row < (32u << 20) && slab < N) slab *= 2;
    for (hsize_t r0 = 0; r0 < N; r0 += slab) {
      hsize_t m = N - r0 < slab ? N - r0 : slab;
      hsize_t start[4] = {r0, 0, 0, 0}, count[4] = {m, H, W, C};
      hid_t ms = H5Screate_simple(rank, count, NULL);
      herr_t rc = ms < 0 ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
      if (rc >= 0) rc = H5Dread(ds, H5T_NATIVE_UCHAR, ms, fs, H5P_DEFAULT, map + rep->lab_bytes + r0 * row);
      if (rc < 0)
        return kn_err(KNOBS_ERR_FORMAT, "%s: cannot read images %llu..%llu: %s", path, (unsigned long long)r0,
                      (unsigned long long)(r0 + m - 1), h5_reason(why));
      H5Sclose(ms);
    }
  }
  return KNOBS_OK; /* the process exits: HDF5 objects and the mapping go with it */
}

/* Run child_work in a child process; on success *map is the memfd mapped (or NULL if empty). */
static knobs_status run_child(const char *path, h5_report *rep, uint8_t **map) {
  *map = NULL;
  memset(rep, 0, sizeof *rep);
  int mfd = memfd_create("knobs-h5", MFD_CLOEXEC), pfd[2];
  if (mfd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot create shared memory: %s", path, strerror(errno));
  if (pipe(pfd) != 0) {
    close(mfd);
    return kn_err(KNOBS_ERR_IO, "%s: cannot create a pipe: %s", path, strerror(errno));
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(mfd), close(pfd[0]), close(pfd[1]);
    return kn_err(KNOBS_ERR_IO, "%s: cannot start the HDF5 reader: %s", path, strerror(errno));
  }
  if (pid == 0) {
    /* a crash in HDF5 must end this process, quietly: no inherited handler (the embedding
     * program's, a sanitizer's, a fuzzer's) may report it or carry on */
    const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (int i = 0; i < 5; i++) signal(sigs[i], SIG_DFL);
    close(pfd[0]);
    h5_report r;
    memset(&r, 0, sizeof r);
    r.status = child_work(path, mfd, &r);
    if (r.status) snprintf(r.msg, sizeof r.msg, "%s", knobs_last_error());
    ssize_t k = write(pfd[1], &r, sizeof r);
    _exit(k == (ssize_t)sizeof r ? 0 : 1);
  }
  close(pfd[1]);
  size_t got = 0;
  while (got < sizeof *rep) {
    ssize_t k = read(pfd[0], (char *)rep + got, sizeof *rep - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(pfd[0]);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  knobs_status s = KNOBS_OK;
  if (got != sizeof *rep) {
    if (WIFSIGNALED(ws))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: corrupt HDF5 file: the HDF5 library crashed (signal %d) reading it", path,
                 WTERMSIG(ws));
    else
      s = kn_err(KNOBS_ERR_FORMAT, "%s: the HDF5 reader stopped without an answer (exit status %d)", path,
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
  } else if (rep->status) {
    rep->msg[sizeof rep->msg - 1] = 0;
    s = kn_err((knobs_status)rep->status, "%s", rep->msg);
  } else if (rep->map_bytes) {
    struct stat st;
    if (fstat(mfd, &st) != 0 || (uint64_t)st.st_size != rep->map_bytes || rep->lab_bytes > rep->map_bytes) {
      s = kn_err(KNOBS_ERR_IO, "%s: the HDF5 reader's shared memory has the wrong size", path);
    } else {
      void *m = mmap(NULL, rep->map_bytes, PROT_READ, MAP_SHARED, mfd, 0);
      if (m == MAP_FAILED) s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot map shared memory: %s", path, strerror(errno));
      else *map = m;
    }
  }
  close(mfd);
  return s;
}

/* ---- the dataset ----------------------------------------------------------------------------- */

static int h5_match(const char *spec) {
  return kn_ends_with(spec, ".h5") || kn_ends_with(spec, ".hdf5") || kn_ends_with(spec, ".he5");
}

static knobs_status h5_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  struct stat st;
  if (stat(spec, &st) != 0 || !S_ISREG(st.st_mode))
    return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", spec, errno ? strerror(errno) : "not a regular file");
  h5_report rep;
  uint8_t *map;
  knobs_status s = run_child(spec, &rep, &map);
  if (s) return s;
  kn_filedata *f = kn_filedata_new();
  if (!f) {
    if (map) munmap(map, rep.map_bytes);
    return knobs_last_status();
  }
  kn_store_init(&f->obs, spec, (int64_t)rep.N, (int)rep.C, (int)rep.H, (int)rep.W, KNOBS_U8, 1, 1.0f / 255);
  if (rep.in_place) {
    s = kn_store_open_file(&f->obs, spec, rep.off);
  } else if (!map || rep.map_bytes - rep.lab_bytes != rep.N * f->obs.row_bytes) {
    s = kn_err(KNOBS_ERR_IO, "%s: the HDF5 reader returned no images", spec);
  } else {
    f->obs.mem = map + rep.lab_bytes;
    f->obs.map = map, f->obs.map_len = rep.map_bytes; /* the store unmaps it */
  }
  const kn_store *ob = &f->obs;
  int is3d = !s && ob->n == 480000 && ob->H == 64 && ob->W == 64 && ob->C == 3;
  if (!s && o->factors) s = kn_factors_load(o->factors, ob->n, &f->fac);
  else if (!s && rep.nlab)
    s = kn_factors_from_values(&f->fac, (const double *)map, (int64_t)rep.nlab, rep.klab, is3d && rep.klab == 6 ? shapes3d_names : NULL, spec);
  else if (!s && is3d) kn_factors_grid(&f->fac, 6, shapes3d_names, shapes3d_sizes);
  if (map && !f->obs.map) munmap(map, rep.map_bytes); /* labels only: no longer needed */
  if (s) {
    kn_filedata_free(f);
    return s;
  }
  s = kn_filedata_attach(d, f, kn_basename(spec), 1, 0, o);
  if (!s && is3d && f->fac.K && !f->fac.grid) kn_data_note(&d->info, "the labels do not form 3D Shapes' full factor grid");
  return s;
}

const kn_data_entry kn_data_h5 = {
    NULL,
    "*.h5, *.hdf5: HDF5 with 'images' (N,H,W[,C]) uint8 and optional 'labels' (N,K), e.g. "
    "DeepMind's 3dshapes.h5",
    h5_match,
    h5_open,
};
