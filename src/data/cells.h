/* cells.h: count matrices of single-cell data (cells x genes), kept sparse (CSR) in memory and
 * handed out as dense rows, with categorical labels as factors whose classes have names.
 * Readers: a 10x Genomics MTX folder (cells.c) and AnnData .h5ad (h5ad.c). Dense CSV/TSV count
 * tables go through arrays.c's table reader (csv.c), which skips a column of cell names. */
#ifndef KN_DATA_CELLS_H
#define KN_DATA_CELLS_H
#include "data/files.h"

typedef struct {
  int64_t n;              /* cells (rows) */
  int G;                  /* genes (columns) */
  int64_t *indptr;        /* (n+1): row i's entries are [indptr[i], indptr[i+1]) */
  int32_t *indices;       /* (nnz) gene of each entry, increasing within a row */
  float *data;            /* (nnz) its count */
  void *map;              /* if set, the three arrays lie in this mapping (munmap'ed), else malloc'ed */
  size_t map_len;
  kn_factors fac;         /* the labels as factors (K = 0 if none) */
  char **class_names[KNOBS_MAX_FACTORS]; /* per factor, its classes' names (malloc'ed), or NULL */
  char note[200];         /* what the reader noticed about the values ("" if nothing) */
} kn_cells;

void kn_cells_free(kn_cells *c);
/* Give `c` to `d` (which then owns it, also on failure): vectors of G values (C = G, H = W = 1),
 * n observations, factors and class names from c; the ops get (dense rows, parallel over the
 * dataset's pool for large batches), factor_value and class_name; notes appended to
 * d->info.note; d->pool created for o->threads. */
knobs_status kn_cells_attach(knobs_data *d, kn_cells *c, const char *name, const knobs_data_opts *o);
/* Check the CSR arrays of c: indptr from 0, non-decreasing, ending at nnz; indices in [0, G),
 * each at most once per row (rows are sorted by gene in place if they are not); values finite.
 * `what` names the file in messages. Notes negative or non-integer values in c->note. */
knobs_status kn_cells_check(kn_cells *c, int64_t nnz, const char *what);

/* Read an AnnData file: the matrix at `matrix` ("X" by default: a dense 2-D dataset, or a
 * group holding a CSR or CSC matrix: data, indices, indptr and its shape attribute) and the
 * categorical columns of `obs` as factors (anndata >= 0.8: obs/<col>/{categories, codes};
 * 0.7: integer codes with the categories in obs/__categories/<col>). HDF5 runs in a forked
 * child, as in h5.c. Errors name the file and what is wrong. */
knobs_status kn_h5ad_read(const char *path, const char *matrix, kn_cells *c);

#endif
