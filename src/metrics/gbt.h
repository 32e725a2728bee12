/* gbt.h: the internals gbt.c (the fit, and trees grown one at a time) shares with
 * gbt_lanes.c (the trees of up to eight classes of one factor grown together, one per vector
 * lane). Not part of the library's interface. */
#ifndef KN_GBT_H
#define KN_GBT_H
#include <stdint.h>

#include "metrics/metrics.h"

#define MAX_DEPTH 7 /* node ids fit in uint8 */
#define MAX_NODES ((1 << (MAX_DEPTH + 1)) - 1)
#define SHARE_ROOT 4 /* factors with at least this many trees per stage share the root scan */
#define LANES 8      /* trees grown together by gbt_lanes.c */
#define LANES_MAX_DEPTH 3 /* ... when max_depth is at most this (its nodes per level <= 4) */
#define LANES_NODES ((1 << (LANES_MAX_DEPTH + 1)) - 1)
#ifdef __AVX512F__
#define KN_GBT_LANES 1 /* gbt_lanes.c is written with AVX-512 intrinsics; elsewhere gbt.c grows every tree */
#else
#define KN_GBT_LANES 0
#endif

typedef float kn_v8f __attribute__((vector_size(32)));
typedef int32_t kn_v8i __attribute__((vector_size(32)));

typedef struct {
  int feature; /* -1: leaf */
  double thr;
  int left, right;
  double w, sum, sq, imp; /* samples, residual sum, square sum, MSE impurity */
  double value;           /* leaf value */
  int start, end;         /* its samples in the level's sorted lists */
  int pre;                /* >= 0: its best splits were found with its sibling's (scan_children) */
} gnode;

typedef struct {
  int n, D;
  int32_t *sorted; /* (D,n) samples sorted by value per feature */
  float *Xc;       /* (D,n) the float32 features, column-major */
  float *Xr;       /* (n,D) the same, row-major */
  float *xs;       /* (D,n) the same in sorted order: xs[ft][k] = Xc[ft][sorted[ft][k]] */
  double *inv;     /* (n) 1 / (k (n - k)) at 1..n-1 */
} presort;

/* per-thread scratch */
typedef struct {
  uint8_t *node_of;  /* (n) current node of each sample */
  uint8_t *goes_left; /* (n) */
  int32_t *list[2];  /* (D,n) x2 the samples of each node sorted by each feature */
  double *cum;       /* (n + 8) prefix sums of the residuals along one list */
  float *vb;         /* (n + 8) the values along one list */
  double *bestp;     /* (slots, D) best proxy per node and feature */
  double *prep;      /* (slots, D) the same for the next level's nodes (scan_children) */
  float *prelo, *prehi;
  float *bestlo, *besthi;
  double *num, *den; /* (MAX_NODES) leaf sums */
  int *perm;         /* (D) */
  double *imp;       /* (D) importances of the tree */
  /* gbt_lanes.c: the trees of one lane group */
  uint8_t *nid;      /* (n, LANES) node of each sample in each lane's tree (heap numbering) */
  gnode *lnodes;     /* (LANES, LANES_NODES) */
  double *lbp;       /* (LANES, 4, D) best proxy per lane, level slot and feature */
  float *llo, *lhi;  /* (LANES, 4, D) the values either side of it */
  double *lbc, *lbs, *lbq; /* (LANES, 4, D) the left child's samples, residual sum, square sum */
  double *limp;      /* (LANES, D) importances */
  kn_rng *lrng;      /* (LANES) */
} scratch;

typedef struct {
  int n, m, C, nt;      /* rows, test rows, classes present in train, trees per stage */
  int32_t *y;           /* (n) class 0..C-1 */
  int32_t *yte;         /* (m) class, -1 if not a train class */
  double *raw, *rawte;  /* (nt,n) class-major, (m,nt) */
  double *res;          /* (nt,n) residuals of the current stage, class-major: each tree's
                           column is contiguous */
  double *imp_sum;      /* (D) */
  int relevant;         /* trees that split */
  /* row-major residuals (ntp = nt rounded up to 8, the padding 0): the shared root scan's and
   * gbt_lanes.c's (8 classes of a row in one vector), or NULL */
  double *resr;         /* (n, ntp) */
  /* factors with many classes share the root scan: every class's tree has the same root
   * samples, so one pass per feature over the presorted rows serves all of them, vectorised
   * over classes */
  double *rootp;        /* (D, nt) best root proxy per feature and class, or NULL */
  int *rootk;           /* (D, nt) its position in the presorted list */
  double *rootsum, *rootsq; /* (D, nt) the sums of the residuals and their squares left of it,
                               added in the presorted order (split_on_lists' sums) */
  double *tot;          /* (nt) residual sums */
} factor_fit;

typedef struct {
  const kn_gbt_opts *o;
  const presort *P;
  const float *Xte;
  int D, K, T, stage;
  factor_fit *F;
  int *task_k, *task_c;
  int *rtask_k, *rtask_f, *rtask_v, RT; /* root scans: (factor, feature, 8 classes) of shared factors */
  int lanes;            /* trees grown LANES at a time (gbt_lanes.c) */
  int G;                /* lane groups per stage */
  int *group_k, *group_c, *group_t; /* (G) factor, first class, its task index */
  double *task_imp;     /* (T,D) */
  int *task_split;      /* (T) */
  scratch *S;
  uint64_t seed, stream;
} gbt_ctx;

static inline void kn_gbt_set_imp(gnode *x) { x->imp = x->sq / x->w - (x->sum / x->w) * (x->sum / x->w); }

/* The best feature among D proxies bp, the first in a random order (drawn into perm) on
 * ties; -1 if none splits. */
int kn_gbt_choose(kn_rng *rng, int *perm, const double *bp, int D);
/* The split threshold between the values lo < hi: their midpoint in double, or lo when the
 * midpoint rounds to hi (scikit-learn's rule). */
double kn_gbt_threshold(float lo, float hi);
/* Newton leaf values of the tree of class column c (nodes[0..nn)), the sample i in node
 * node_of[i * stride]; then raw += lr * value for train and test rows. */
void kn_gbt_finish_tree(gbt_ctx *g, scratch *s, factor_fit *f, int c, gnode *nodes, int nn,
                        const uint8_t *node_of, int stride);
/* The same from the leaves' sums s->num (residuals) and s->den ((y - r)(1 - y + r)), added in
 * row order. */
void kn_gbt_leaf_values(gbt_ctx *g, scratch *s, factor_fit *f, int c, gnode *nodes, int nn, const uint8_t *node_of,
                        int stride);
/* The seed stream of the tree of class c of factor k at the current stage. */
uint64_t kn_gbt_tree_stream(const gbt_ctx *g, int k, int c);
/* kn_pool task: the lane groups of the stage (gbt_lanes.c; only when KN_GBT_LANES). */
void kn_gbt_lanes_task(void *ctx, int tid, int nth);

#endif
