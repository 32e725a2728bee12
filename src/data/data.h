/* data.h: the ground-truth dataset interface behind knobs_data.
 *
 * A dataset fills a knobs_data_info and a table of operations. A ground-truth dataset (K > 0)
 * must implement render(factors) or get(index) (the other is derived through the row-major
 * factor grid when info.n equals the product of the factor sizes); sample_factors defaults to
 * independent uniform classes. Metrics and training use only this interface, so a new dataset
 * is one file here plus one line in the registry (data.c). */
#ifndef KN_DATA_H
#define KN_DATA_H
#include "core/core.h"

typedef struct {
  /* Observations (n,C,H,W) for n factor vectors (n,K), already range-checked. May be NULL. */
  knobs_status (*render)(knobs_data *d, const int32_t *factors, int n, float *obs);
  /* Observations by index in [0, info.n), already range-checked; factors (n,K) if non-NULL.
   * May be NULL for grid datasets with render. */
  knobs_status (*get)(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors);
  /* n factor vectors drawn from the generative process. NULL: independent uniform. */
  void (*sample_factors)(knobs_data *d, kn_rng *r, int n, int32_t *factors);
  /* Continuous value of class c of factor k. NULL: the class index. */
  double (*factor_value)(const knobs_data *d, int k, int c);
  void (*free_impl)(void *impl);
  /* Optional: draw n observations as training draws them, with their factors (n,K) and factor
   * values (n,K) if non-NULL (datasets with continuous factors, e.g. physics). When set,
   * kn_data_batch uses it instead of sampling classes and rendering. */
  knobs_status (*draw)(knobs_data *d, kn_rng *r, int n, float *obs, int32_t *factors,
                       double *values);
  /* Optional: the mixing matrix (C,K) for knobs_data_mixing. */
  void (*mixing)(const knobs_data *d, double *A);
  /* Optional: the name of class c of factor k ("ctrl", "B cells"), or NULL if it has none
   * (categorical labels of cell data). k and c are in range. */
  const char *(*class_name)(const knobs_data *d, int k, int c);
} kn_data_ops;

struct knobs_data {
  knobs_data_info info;
  const kn_data_ops *ops;
  void *impl;
  kn_pool *pool;     /* rendering threads (owned) */
  int grid;          /* 1 if info.n == prod(factor_sizes) and index <-> factors is row-major:
                      * datasets with render, and get-only datasets that set info.has_render */
};

/* A registry entry: `match` says whether this opener handles `spec` (a name like "dsprites" or
 * "dsprites:color", or a path); `open` fills d->info, d->ops and d->impl. */
typedef struct {
  const char *name;        /* canonical name shown by knobs_data_names, or NULL for file types */
  const char *describe;
  int (*match)(const char *spec);
  knobs_status (*open)(knobs_data *d, const char *spec, const knobs_data_opts *o);
} kn_data_entry;

/* Fill the info's factor table in one call: names and sizes of K factors. */
void kn_data_set_factors(knobs_data_info *info, int K, const char *const *names, const int *sizes);

/* n factor vectors (n,K) from the dataset's generative process with rng r (independent
 * uniform classes unless the dataset has sample_factors). K must be > 0. */
void kn_data_sample_factors(knobs_data *d, kn_rng *r, int n, int32_t *factors);

/* Draw a training batch: B observations (B,C,H,W) with the rng, and their factors (B,K) if
 * non-NULL and K > 0. Grid datasets draw factors uniformly (or by sample_factors) and render;
 * others draw indices uniformly. Allocates nothing. */
knobs_status kn_data_batch(knobs_data *d, kn_rng *r, int B, float *obs, int32_t *factors,
                           int32_t *scratch /* B*K ints, or NULL if factors given */);

/* The openers, one per file in src/data/. */
extern const kn_data_entry kn_data_dsprites;
extern const kn_data_entry kn_data_dsprites_seq; /* dsprites_seq.c */
extern const kn_data_entry kn_data_shapes;       /* shapes.c */
extern const kn_data_entry kn_data_physics;      /* physics.c */
extern const kn_data_entry kn_data_counts;       /* counts.c: simulated single-cell counts */
extern const kn_data_entry kn_data_fashion;      /* idx.c: the Debian copy of Fashion-MNIST */
extern const kn_data_entry kn_data_h5;           /* h5.c: 3dshapes.h5 and HDF5 image files */
extern const kn_data_entry kn_data_mpi3d;        /* mpi3d.c */
extern const kn_data_entry kn_data_norb;         /* norb.c */
extern const kn_data_entry kn_data_idx;          /* idx.c: MNIST-style IDX files */
extern const kn_data_entry kn_data_arrays;       /* arrays.c: .npy/.npz, PNG folders, CSV/TSV */
extern const kn_data_entry kn_data_seq_arrays;   /* arrays.c: seq:FILE, the user's own sequences */
extern const kn_data_entry kn_data_cells;        /* cells.c, h5ad.c: 10x MTX folders, .h5ad */

/* The name of class c of factor k, or NULL when the dataset names none or k, c are out of range. */
const char *kn_data_class_name(const knobs_data *d, int k, int c);
/* The class of factor k named `name`, or -1 if no class has that name. */
int kn_data_class_find(const knobs_data *d, int k, const char *name);

/* The ground truth of a `counts` dataset (counts.c): its gene-wise inverse dispersions theta (G)
 * and the expected proportions (T,2,G) of each gene in a cell of type t and condition c (the
 * mean count is the library size times the proportion). 0 if d is not a counts dataset. */
int kn_counts_truth(const knobs_data *d, const float **theta, const float **prop, int *T, int *G);

#endif
