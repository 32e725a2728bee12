/* files.h: what the file-backed datasets share (3D Shapes, MPI3D, SmallNORB, IDX, user arrays).
 *
 * - a gzip-or-plain byte reader and a locator for stored zip members (random access into .npz),
 * - kn_store: the observations, either in memory or read on demand from the file by offset, in
 *   any numeric dtype and (H,W,C) or (C,H,W) order, converted to float (C,H,W) per row,
 * - kn_factors: a factor table built from per-row values (distinct values become classes), with
 *   the detection of a full factor grid stored in any order,
 * - kn_filedata: a knobs_data implementation over a store and a factor table (get, factor
 *   values), parallel over the dataset's pool,
 * - the CSV/TSV parser and the loader of a user's factors file.
 * Nothing here knows a particular dataset. A dataset is used from one thread at a time (its
 * get() spreads a batch over the dataset's own pool). */
#ifndef KN_DATA_FILES_H
#define KN_DATA_FILES_H
#include "data/data.h"
#include "io/io.h"

/* ---- readers ---------------------------------------------------------------------------- */
/* A file that may be gzip-compressed (detected from its bytes, not its name). size is the file
 * size for a plain file, UINT64_MAX for gzip. Corrupt or truncated gzip data sets status to
 * KNOBS_ERR_FORMAT naming the file. */
knobs_status kn_reader_gz(const char *path, kn_reader **out);
/* The most bytes the reader can deliver: the size of a plain file; for gzip, 1032 times the
 * compressed size (deflate's largest expansion), so that a header claiming more is refused
 * before anything that large is allocated. */
uint64_t kn_reader_gz_bound(const kn_reader *r);
/* KNOBS_ERR_FORMAT "<name>: unexpected bytes after the data" if the reader is not at its end
 * (for gzip this also makes zlib check the stream's CRC). */
knobs_status kn_reader_expect_end(kn_reader *r, const char *what);

/* Where the bytes of a zip member lie: *off is the offset of its (compressed) data in the file,
 * *method 0 (stored) or 8 (deflate), *csize and *usize its compressed and uncompressed sizes. Checks
 * that the data lie inside the file. */
knobs_status kn_zip_span(const char *path, const char *member, uint64_t *off, int *method,
                         uint64_t *csize, uint64_t *usize);

/* The final path component of `path` (no allocation). */
const char *kn_basename(const char *path);
/* dir + "/" + name if that is a regular file, else the same with ".gz" added; 1 if found. */
int kn_find_file(char *out, size_t n, const char *dir, const char *name);

/* ---- observations ------------------------------------------------------------------------ */
typedef struct {
  char name[800];        /* the file, as error messages name it */
  int64_t n;             /* rows (observations) */
  int C, H, W;           /* one row as returned: (C,H,W) floats */
  knobs_dtype dtype;     /* stored element type */
  int swap;              /* stored big-endian: swap bytes */
  int hwc;               /* stored as (H,W,C) (else (C,H,W)) */
  int frames;            /* a row is this many frames of C / frames channels (sequences, 1
                          * otherwise); with hwc each frame is stored (H,W,c): (T,H,W,c) */
  float scale;           /* returned value = stored value * scale (1/255 for uint8 images) */
  uint64_t row_bytes;    /* bytes of one stored row */
  uint8_t *mem;          /* every row in memory (kn_alloc, owned), or NULL */
  void *map;             /* if set, mem lies in this mapping of map_len bytes (munmap'ed) */
  size_t map_len;
  int fd;                /* else: rows read on demand at off + row * stride of this file */
  uint64_t off, stride;
} kn_store;

void kn_store_init(kn_store *s, const char *name, int64_t n, int C, int H, int W, knobs_dtype t,
                   int hwc, float scale);
/* Allocate s->mem for every row (KNOBS_ERR_NOMEM naming the file and size on failure). */
knobs_status kn_store_alloc(kn_store *s);
/* Rows on demand from `path` at byte `off` (stride = row_bytes). Fails naming the file if the
 * rows would run past its end. */
knobs_status kn_store_open_file(kn_store *s, const char *path, uint64_t off);
/* Fill an allocated store with every row from a reader (exactly n * row_bytes bytes). */
knobs_status kn_store_load(kn_store *s, kn_reader *r);
void kn_store_free(kn_store *s);
/* Row `row` as floats (C,H,W) into out; `scratch` holds row_bytes (unused for memory stores). */
knobs_status kn_store_row(const kn_store *s, int64_t row, float *out, uint8_t *scratch);
/* An array in a .npy file or an .npz member, before its data is read. */
typedef struct {
  char path[512];        /* the file */
  char member[256];      /* the .npz member ("imgs.npy"), or "" for a .npy file */
  char name[800];        /* what messages call it: "x.npz:imgs.npy" or the path */
  kn_npy_header h;
  uint64_t data_off;     /* offset of the data in the file if readable in place, else 0 */
  int in_place;          /* plain .npy or stored member, C order: rows can be read by offset */
} kn_npy_src;
/* Parse the header of `path` (member NULL) or of member `member` of the .npz `path`. */
knobs_status kn_npy_probe(const char *path, const char *member, kn_npy_src *src);
/* Fill a store initialised with kn_store_init (n rows x C*H*W elements of src->h.dtype) from the
 * array: read in place by offset when possible, else streamed into memory (deflate members;
 * Fortran order through kn_npy_read_data). */
knobs_status kn_store_from_npy(kn_store *s, const kn_npy_src *src);

/* One pass over every stored value: min and max, the first row holding NaN or +-Inf (-1 if
 * none), and whether every value is 0 or 1. Bounded memory (reads 8 MB at a time). */
typedef struct {
  double min, max;
  int64_t nonfinite_row;
  int zero_one;
} kn_store_stats;
knobs_status kn_store_scan(const kn_store *s, kn_store_stats *st);

/* ---- factors ---------------------------------------------------------------------------- */
#define KN_MAX_CLASSES 1000 /* more distinct values than this: binned into KN_BINS quantile bins */
#define KN_BINS 20
typedef struct {
  int K;
  int sizes[KNOBS_MAX_FACTORS];
  char names[KNOBS_MAX_FACTORS][32];
  double *values[KNOBS_MAX_FACTORS]; /* class -> value (malloc'ed), or NULL: the class index */
  uint8_t binned[KNOBS_MAX_FACTORS]; /* classes are quantile bins of a continuous column */
  int32_t *classes;                  /* (n,K) class of each row, or NULL: rows are the grid */
  int64_t *perm;                     /* grid index -> row, or NULL (identity) */
  int grid;                          /* every combination of classes occurs exactly once */
  char note[200];                    /* what was done to the columns ("" if nothing) */
} kn_factors;

/* Classes from values (n,K) row-major: the distinct values of each column, sorted, numbered
 * from 0 (more than KN_MAX_CLASSES: KN_BINS bins of equal counts, valued at their medians).
 * Constant columns are dropped (said in f->note); NaN/Inf is KNOBS_ERR_DATA naming `what`, the
 * row and the column. `names` may be NULL ("factor0", ...). Then looks for a full grid. */
knobs_status kn_factors_from_values(kn_factors *f, const double *v, int64_t n, int K,
                                    const char *const *names, const char *what);
/* A known full grid in row-major order (no per-row table): sizes, names, optional values. */
void kn_factors_grid(kn_factors *f, int K, const char *const *names, const int *sizes);
void kn_factors_free(kn_factors *f);
/* Load a user's factors file for n observations: .npy (N,) or (N,K), "file.npz:member", or a
 * CSV/TSV with a header (its column names become the factor names). */
knobs_status kn_factors_load(const char *path, int64_t n, kn_factors *f);

/* ---- CSV/TSV ----------------------------------------------------------------------------- */
typedef struct {
  int cols;
  char (*names)[64];     /* column names from the header ("col0", ... if there is none) */
  int header;            /* 1 if the first line named the columns */
  int rownames;          /* 1 if the first column held row names (skipped, not in cols) */
  int64_t rows;
  double *v;             /* (rows, cols) row-major */
} kn_csv;
/* Parse a table of numbers: delimiter ',', tab or ';' (from the first line), an optional
 * header, blank lines and '#' comment lines skipped, optional quotes around fields, CRLF and a
 * UTF-8 BOM accepted. A header whose first field is empty (pandas' unnamed index) or index,
 * cell(s), barcode(s), cell_id or obs_names makes the first column row names: any text,
 * skipped (rownames = 1). Errors name the reader, the line and the column: a field that is not a
 * number (KNOBS_ERR_FORMAT), NaN/Inf or a missing value (KNOBS_ERR_DATA), a row with a
 * different number of fields (KNOBS_ERR_FORMAT), no data rows (KNOBS_ERR_DATA). */
knobs_status kn_csv_read(kn_reader *r, kn_csv *out);
void kn_csv_free(kn_csv *c);

/* ---- a dataset over a store and a factor table ------------------------------------------ */
typedef struct {
  kn_store obs;
  kn_factors fac;
  int nt;                /* threads the scratch below is sized for */
  uint8_t *scratch;      /* nt * obs.row_bytes */
  knobs_status *st;      /* per-thread status of a parallel get */
  char (*msg)[512];      /* and its message */
  void *extra;           /* dataset-specific state, freed by extra_free */
  void (*extra_free)(void *extra);
} kn_filedata;

/* A zeroed kn_filedata (obs.fd = -1). */
kn_filedata *kn_filedata_new(void);
void kn_filedata_free(void *fd);
/* Give `fd` to `d` (which then owns it, also on failure): shape and n from the store, factors
 * from the table (has_render when they form a full grid), is_image/binary as given, the name,
 * the ops (get, factor_value), the notes of the factor table appended to d->info.note, and
 * d->pool created for o->threads. */
knobs_status kn_filedata_attach(knobs_data *d, kn_filedata *fd, const char *name, int is_image,
                                int binary, const knobs_data_opts *o);
/* Append a sentence to info->note (separated by "; ", truncated if full). */
void kn_data_note(knobs_data_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
