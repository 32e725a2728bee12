/* io.h: internal file plumbing: atomic output files, a byte-stream reader that hides whether
 * bytes come from a file, a zip member or memory, the npy header parser over such a reader,
 * and safetensors. Every error names the file and what is wrong. */
#ifndef KN_IO_H
#define KN_IO_H
#include <stdio.h>

#include "core/core.h"

/* ---- atomic output --------------------------------------------------------------------- */
/* Open "<path>.tmp-<pid>" for writing; commit renames it over `path`, abort deletes it.
 * Both free the handle; after a failed commit nothing is left at either name. */
typedef struct kn_atomic kn_atomic;
kn_atomic *kn_atomic_open(const char *path);       /* NULL with error set */
FILE *kn_atomic_file(kn_atomic *a);
knobs_status kn_atomic_commit(kn_atomic *a);       /* flush, fsync, close, rename */
void kn_atomic_abort(kn_atomic *a);
/* Write `n` bytes to `path` atomically. */
knobs_status kn_write_file(const char *path, const void *data, size_t n);
/* Read a whole file (at most `max` bytes, else KNOBS_ERR_FORMAT) into a malloc'ed buffer with a
 * terminating NUL after the n bytes. */
knobs_status kn_read_file(const char *path, size_t max, char **data, size_t *n);
/* mkdir -p; KNOBS_ERR_IO naming the part that failed. */
knobs_status kn_mkdirs(const char *path);
int kn_is_dir(const char *path);
int kn_file_exists(const char *path);
int kn_ends_with(const char *s, const char *suffix); /* case-insensitive */

/* ---- readers --------------------------------------------------------------------------- */
/* A forward-only byte source. read() returns the bytes delivered (short only at the end or on
 * error); after an error `status` is set with the detail in knobs_last_error(). */
typedef struct kn_reader kn_reader;
struct kn_reader {
  size_t (*read)(kn_reader *r, void *buf, size_t n);
  void (*close)(kn_reader *r);
  char name[512];       /* what error messages call it: "x.npz:imgs.npy" */
  knobs_status status;  /* KNOBS_OK until an error */
  uint64_t pos;         /* bytes delivered so far */
  uint64_t size;        /* total bytes if known, else UINT64_MAX */
};
knobs_status kn_reader_file(const char *path, kn_reader **out);
knobs_status kn_reader_mem(const void *data, size_t n, const char *name, kn_reader **out);
/* A member of a zip archive (stored or deflate), streamed with bounded memory. */
knobs_status kn_reader_zip(const char *path, const char *member, kn_reader **out);
/* Read exactly n bytes or fail with KNOBS_ERR_FORMAT "<name>: truncated at byte ...". */
knobs_status kn_read_exact(kn_reader *r, void *buf, size_t n, const char *what);
void kn_reader_close(kn_reader *r); /* NULL is a no-op */

/* List zip members (malloc'ed array of malloc'ed names). */
knobs_status kn_zip_list(const char *path, char ***names, int *n);

/* ---- npy ------------------------------------------------------------------------------- */
typedef struct {
  knobs_dtype dtype;
  int big_endian;       /* data bytes need swapping */
  int fortran;          /* data is in Fortran order */
  int ndim;
  int64_t shape[KNOBS_MAX_DIMS];
  uint64_t data_bytes;  /* count * itemsize */
} kn_npy_header;
/* Parse the npy header from `r`, leaving it at the first data byte. */
knobs_status kn_npy_read_header(kn_reader *r, kn_npy_header *h);
/* Read the data after a parsed header into a new array (native order, C order). */
knobs_status kn_npy_read_data(kn_reader *r, const kn_npy_header *h, knobs_array *out);
/* Serialise the npy header for `a` into buf (at most 256 bytes); returns its length. */
size_t kn_npy_header_bytes(const knobs_array *a, char *buf);

/* ---- safetensors ----------------------------------------------------------------------- */
typedef struct {
  char name[128];
  knobs_dtype dtype;    /* F32, F64, I64, I32, U8 ... */
  int ndim;
  int64_t shape[KNOBS_MAX_DIMS];
  uint64_t begin, end;  /* byte offsets into the data section */
} kn_st_tensor;
typedef struct {
  char path[512];
  int n;
  kn_st_tensor *t;
  char *metadata_json;  /* the "__metadata__" object as JSON text, or NULL */
  uint8_t *data;        /* the whole data section */
  uint64_t data_bytes;
} kn_safetensors;
/* Read and validate a whole safetensors file: header size within the file, offsets in
 * order, inside the data section and matching dtype x shape, no overlaps. */
knobs_status kn_st_read(const char *path, kn_safetensors *st);
/* The same from memory (for fuzzing); `name` is used in messages. */
knobs_status kn_st_parse(const uint8_t *buf, size_t n, const char *name, kn_safetensors *st);
void kn_st_free(kn_safetensors *st);
const kn_st_tensor *kn_st_find(const kn_safetensors *st, const char *name);
/* Copy tensor `name` into dst (count floats) checking dtype F32 and the exact shape. */
knobs_status kn_st_get_f32(const kn_safetensors *st, const char *name, int ndim,
                           const int64_t *shape, float *dst);

typedef struct {
  const char *name;
  knobs_dtype dtype;
  int ndim;
  int64_t shape[KNOBS_MAX_DIMS];
  const void *data;
} kn_st_entry;
/* Write tensors (in the given order) with a metadata object (JSON text of string values, or
 * NULL) atomically. */
knobs_status kn_st_write(const char *path, const kn_st_entry *e, int n, const char *metadata_json);

#endif
