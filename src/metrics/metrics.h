/* metrics.h: the internal interface of the metrics module: the rows a metric sees, the metric
 * table, and the numerical pieces several metrics share (NumPy's histogram discretiser,
 * scikit-learn's mutual information, the classifiers: gradient-boosted trees, a linear SVM,
 * logistic regression). Each metric family lives in its own file; api.c drives them.
 * Nothing here knows about models: dataset metrics see an encoder callback. */
#ifndef KN_METRICS_H
#define KN_METRICS_H
#include <cjson/cJSON.h>
#include <string.h>

#include "core/core.h"

/* Limits on array inputs (checked with a clear message): factors are class labels. */
#define KN_MAX_K 256          /* factors */
#define KN_MAX_CLASSES 1024   /* distinct values of one factor */

/* ---- the rows a metric sees ------------------------------------------------------------- */
/* n rows of codes and factors. Factor classes are 0..ncls[k]-1 (sorted distinct values of the
 * factor over all rows, or the dataset's class indices). */
typedef struct {
  int n;
  const double *z;      /* (n,D) codes */
  const int32_t *y;     /* (n,K) class of each factor */
  const double *yv;     /* (n,K) factor values as given (irs discretises the values) */
  const double *lv;     /* (n,D) posterior log-variances, or NULL */
} kn_rows;

typedef struct {
  int D, K;
  int f32;                    /* codes were float32: histogram edges in float32, as NumPy's */
  const int *ncls;            /* (K) classes of each factor */
  const char *const *fname;   /* (K) factor names */
  kn_rows all;                /* every row (arrays) or the num_train draw (dataset) */
  kn_rows train, test;        /* the split of classifier metrics */
  const knobs_metrics_opts *o;
  kn_pool *pool;
  knobs_data *data;           /* dataset metrics: the dataset (else NULL) */
  const int *fmap;            /* dataset metrics: the dataset factor of each scored factor
                                 (factors with a single value are left out) */
  const knobs_encoder *enc;   /* dataset metrics: the encoder (else NULL) */
  uint64_t stream;            /* this metric's rng stream base (KN_STREAM_EVAL + id << 32) */
  const knobs_grid_codes *grid; /* dataset metrics: the codes of every grid point, or NULL */
  int plain;                  /* 1: the portable kernels even where the CPU has faster ones
                                 (tests compare the two) */
} kn_mctx;

/* What a metric needs, checked before anything runs. */
enum {
  KN_NEED_FACTORS = 1,   /* ground-truth factors */
  KN_NEED_SPLIT = 2,     /* a train/test split with every factor varying in train */
  KN_NEED_DATASET = 4,   /* a dataset with render (no array form) */
  KN_NEED_LOGVAR = 8,    /* posterior log-variances */
  KN_NEED_EVALUATE = 16, /* the encoder's evaluate callback (elbo) */
  KN_NEED_K2 = 32,       /* at least two factors */
  KN_NEED_RENDER = 64,   /* on a dataset: rendering of any factor vector */
  KN_NEED_MIXING = 128,  /* the options amari_unmixing and amari_mixing (files) */
  KN_CONTINUOUS = 256    /* reads factor values: takes continuous (non-integral) factors */
};

typedef struct {
  const char *name;
  const char *describe;
  int needs;
  const char *headline;  /* key copied to "score" */
  /* on rows (NULL for dataset-only metrics); fills `out` */
  knobs_status (*rows)(const kn_mctx *c, cJSON *out);
  /* on a dataset; NULL means: run `rows` on the shared draw */
  knobs_status (*dataset)(const kn_mctx *c, cJSON *out);
} kn_metric;

/* the metric functions, one family per file */
knobs_status kn_mig(const kn_mctx *c, cJSON *out);             /* info.c */
knobs_status kn_modularity(const kn_mctx *c, cJSON *out);      /* info.c */
knobs_status kn_unsupervised(const kn_mctx *c, cJSON *out);    /* unsupervised.c */
knobs_status kn_irs(const kn_mctx *c, cJSON *out);             /* irs.c */
knobs_status kn_dci(const kn_mctx *c, cJSON *out);             /* dci.c */
knobs_status kn_sap(const kn_mctx *c, cJSON *out);             /* svm.c */
knobs_status kn_explicitness(const kn_mctx *c, cJSON *out);    /* logreg.c */
knobs_status kn_beta_vae_rows(const kn_mctx *c, cJSON *out);   /* vae_scores.c */
knobs_status kn_beta_vae_data(const kn_mctx *c, cJSON *out);
knobs_status kn_factor_vae_rows(const kn_mctx *c, cJSON *out);
knobs_status kn_factor_vae_data(const kn_mctx *c, cJSON *out);
knobs_status kn_mig_sampled_rows(const kn_mctx *c, cJSON *out); /* mig_sampled.c */
knobs_status kn_mig_sampled_data(const kn_mctx *c, cJSON *out);
/* the estimate with the posterior samples zs (n,D) given (tests feed fixed samples) */
knobs_status kn_mig_sampled_core(const kn_mctx *c, const double *zs, kn_rng *rng, cJSON *out);
/* (group, dimension) pairs mig_sampled has summed in part by its series, since the start (tests) */
extern long kn_mig_sampled_series_count;
knobs_status kn_intervention(const kn_mctx *c, cJSON *out);    /* intervention.c */
knobs_status kn_elbo(const kn_mctx *c, cJSON *out);            /* elbo.c */
knobs_status kn_mcc(const kn_mctx *c, cJSON *out);             /* mcc.c */
knobs_status kn_amari(const kn_mctx *c, cJSON *out);

/* ---- JSON helpers (result.c) ------------------------------------------------------------ */
/* Add a number / a vector / a row-major (r,c) matrix to `o`. Non-finite values are a
 * programmer error (asserted): no NaN or Inf ever reaches a result. */
void kn_json_num(cJSON *o, const char *key, double v);
void kn_json_vec(cJSON *o, const char *key, const double *v, int n);
void kn_json_ivec(cJSON *o, const char *key, const int *v, int n);
void kn_json_mat(cJSON *o, const char *key, const double *m, int r, int c);
void kn_json_str(cJSON *o, const char *key, const char *s);
cJSON *kn_json_params(cJSON *o); /* the "params" sub-object (created on first use) */
/* Wrap a JSON root in a result (takes ownership; NULL with NOMEM set on failure). */
knobs_result *kn_result_new(cJSON *root);
cJSON *kn_result_root(knobs_result *r);

/* ---- discretisation and information (info.c) -------------------------------------------- */
/* NumPy's `np.digitize(x, np.histogram(x, bins)[1][:-1])` over n values with stride `stride`:
 * `bins` equal-width bins between min and max (edges from np.linspace in double, rounded to
 * float32 when f32, as NumPy does for float32 input; a constant column gets min-0.5..max+0.5);
 * out[i] in 1..bins, the last bin closed. */
void kn_histogram_discretize(const double *x, int n, int stride, int bins, int f32, int32_t *out);
/* scikit-learn's mutual_info_score of two label vectors a in 0..na-1 and b in 0..nb-1 (n
 * values each, strides sa and sb), in nats; `count` is scratch of na*nb + na + nb ints. Per-cell terms
 * below DBL_EPSILON are zeroed and the sum clipped at 0, as scikit-learn does. */
double kn_mutual_info(const int32_t *a, int sa, int na, const int32_t *b, int sb, int nb, int n,
                      int64_t *count);
/* (D,K) mutual information between the discretised codes of `r` and its factors; codes
 * discretised into `disc` (n,D) (values 1..bins). Returns NOMEM on failure. */
knobs_status kn_mi_matrix(const kn_mctx *c, const kn_rows *r, int32_t *disc, double *mi);

/* ---- gradient-boosted trees (gbt.c) ------------------------------------------------------ */
typedef struct {
  int stages, depth;          /* 100, 3 */
  double learning_rate;       /* 0.1 */
  int plain;                  /* 1: grow every tree on its own (gbt.c) even where gbt_lanes.c
                                 would grow eight at once; the same trees (tests compare them) */
} kn_gbt_opts;
/* A fit: one GradientBoostingClassifier per factor, as scikit-learn 1.2 fits it (log-loss,
 * prior init, friedman_mse trees on float32 features, Newton leaf values), on Xtr (n,D) with
 * labels ytr (n,K) (classes 0..ncls[k]-1, those absent from train are never predicted),
 * evaluated on Xte (m,D). Ties between equally good splits are broken by a random feature
 * order per node drawn from (seed, stream), as scikit-learn draws one. */
typedef struct {
  kn_pool *pool;
  const kn_gbt_opts *o;
  const double *Xtr;          /* (n,D) train features */
  const int32_t *ytr;         /* (n,K) train labels */
  const double *Xte;          /* (m,D) test features */
  const int32_t *yte;         /* (m,K) test labels */
  int n, m, D, K;
  const int *ncls;            /* (K) classes of each factor */
  uint64_t seed, stream;
  double *importance;         /* out (D,K): each column the normalised impurity importances,
                                 all zero if no tree split */
  double *acc_train, *acc_test; /* out (K) each */
  /* called after each stage (done stages of total) from the calling thread; may be NULL;
   * a non-OK status stops the fit, which returns it (outputs unset) */
  knobs_status (*progress)(void *ctx, double done, double total);
  void *progress_ctx;
} kn_gbt_job;
/* Deterministic for any thread count. One scratch allocation (KNOBS_ERR_NOMEM if it fails). */
knobs_status kn_gbt_fit(const kn_gbt_job *j);

/* ---- linear SVM (svm.c) ------------------------------------------------------------------ */
/* scikit-learn's LinearSVC (liblinear's dual coordinate descent for the L2-regularised
 * squared-hinge loss, with its shrinking and stopping rule) on one feature plus a bias feature
 * of value 1 (intercept_scaling 1, regularised with w): classes 0..ncls-1 of y (n labels), one
 * vs rest if more than two, class weights "balanced" if `balanced`. w (ncls or 1, 2) gets
 * (weight, bias) per class; returns the most iterations any sub-problem took. */
int kn_linear_svc(const double *x, const int32_t *y, int n, int ncls, double C, int balanced,
                  double eps, int max_iter, kn_rng *rng, double *w);
/* Predicted class of x under such a model (ties: the lowest class). */
int kn_linear_svc_predict(const double *w, int ncls, double x);

/* ---- logistic regression (logreg.c) ------------------------------------------------------- */
/* scikit-learn's LogisticRegression objective (L2 on the weights, not the intercept, strength
 * 1/C, summed log-loss): binary (one weight vector, class 1 positive) when ncls == 2,
 * multinomial otherwise. X (n,d), y in 0..ncls-1. Solved by L-BFGS to a tight tolerance (not
 * scikit-learn's 100 iterations; see docs/metrics.md). W gets (ncls or 1, d+1) rows of
 * weights then intercept. Returns the iterations taken, or -1 on allocation failure. */
int kn_logreg_fit(kn_pool *pool, const double *X, const int32_t *y, int n, int d, int ncls,
                  double C, double *W);
/* Class probabilities (n,ncls) and predicted classes (may be NULL) of such a model. */
void kn_logreg_predict(const double *W, const double *X, int n, int d, int ncls, double *proba,
                       int32_t *pred);
/* ROC AUC of scores (n, stride apart) for the labels y (0/1), ties counted half (=
 * scikit-learn's trapezoids); -1 if only one class is present. `scratch`: 16 n bytes. */
double kn_roc_auc(const double *score, int stride, const uint8_t *y, int n, void *scratch);

/* ---- small numerics (unsupervised.c) ---------------------------------------------------- */
/* Eigenvalues of a symmetric (n,n) matrix (destroyed) by cyclic Jacobi, into ev (n). */
void kn_sym_eigenvalues(double *a, int n, double *ev);

/* ---- a fast exp for x <= 0 ----------------------------------------------------------- */
/* exp(x) for x <= 0 to ~2 ulp: x = (8q + k) ln2/8 + r with |r| <= ln2/16, exp(x) =
 * 2^q 2^(k/8) p(r), p the degree-8 Taylor polynomial (remainder < 1e-17 relative), 2^(k/8)
 * from a table of 8 correctly rounded doubles; arguments below -700 give exp(-700) (~1e-304:
 * callers that sum such terms check for tiny sums). Written with GCC vector extensions so the
 * 8-wide form compiles to AVX-512 (or narrower vectors elsewhere) with the same result element
 * by element; the scalar kn_exp is the same arithmetic on one lane. */
typedef double kn_v8d __attribute__((vector_size(64)));
typedef long long kn_v8l __attribute__((vector_size(64)));
typedef double kn_v1d __attribute__((vector_size(8)));
typedef long long kn_v1l __attribute__((vector_size(8)));
static const double kn_exp_table[8] = {1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
                                       1.4142135623730951, 1.5422108254079407, 1.681792830507429,
                                       1.8340080864093424};
#if defined(__GNUC__) && !defined(__clang__)
/* 2^(k/8) for 8 lanes in one permute of a register holding the table (vpermpd) */
#define KN_EXP_TABLE8(tab, kk)                                                                     \
  {                                                                                                \
    kn_v8d tv_;                                                                                    \
    memcpy(&tv_, kn_exp_table, sizeof tv_);                                                        \
    tab = __builtin_shuffle(tv_, kk);                                                              \
  }
#else
#define KN_EXP_TABLE8(tab, kk)                                                                     \
  for (int u_ = 0; u_ < 8; u_++) tab[u_] = kn_exp_table[kk[u_]];
#endif
#define KN_EXP_TABLE1(tab, kk) tab[0] = kn_exp_table[kk[0]];
#define KN_EXP_INPLACE(T, TL, TABLE, xp)                                                               \
  T x = *(xp), zero = {0};                                                                         \
  const T magic = zero + 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */     \
  T lim = zero - 700.0;                                                                            \
  TL below = (TL)(x < lim);                                                                        \
  x = (T)(((TL)x & ~below) | ((TL)lim & below));                                                  \
  T t = x * 11.541560327111707 + magic; /* 8 / ln 2 */                                             \
  T nn = t - magic;                                                                                \
  T r = x - nn * 0.08664339754614048 - nn * 2.3852686615882346e-11; /* ln2/8, hi + lo */          \
  T p = r * (1.0 / 40320.0) + 1.0 / 5040.0;                                                        \
  p = p * r + 1.0 / 720.0;                                                                         \
  p = p * r + 1.0 / 120.0;                                                                         \
  p = p * r + 1.0 / 24.0;                                                                          \
  p = p * r + 1.0 / 6.0;                                                                           \
  p = p * r + 0.5;                                                                                 \
  p = p * r + 1.0;                                                                                 \
  p = p * r + 1.0;                                                                                 \
  TL n8 = (TL)t - (TL)magic, kk = n8 & 7, q = n8 >> 3;                                            \
  T tab;                                                                                           \
  TABLE(tab, kk)                                                                                   \
  *(xp) = p * tab * (T)((q + 1023) << 52);

/* (vectors are passed by pointer: by value they would change the ABI when the build has no
 * AVX-512, which GCC warns about) */
static inline void kn_exp8(kn_v8d *xp) { KN_EXP_INPLACE(kn_v8d, kn_v8l, KN_EXP_TABLE8, xp) }
static inline void kn_exp1(kn_v1d *xp) { KN_EXP_INPLACE(kn_v1d, kn_v1l, KN_EXP_TABLE1, xp) }
static inline double kn_exp(double x) {
  kn_v1d v = {x};
  kn_exp1(&v);
  return v[0];
}

/* ---- options (options.c) ---------------------------------------------------------------- */
/* Every number of `o` in the range of its knobs_metrics_field; KNOBS_ERR_ARG naming it. */
knobs_status kn_metrics_check_opts(const knobs_metrics_opts *o);

/* ---- encoding helpers (api.c) ------------------------------------------------------------ */
/* Render n factor vectors (n,KD) of the context's dataset and encode them into codes (n,D)
 * float, in chunks of the encoder's batch (from the grid table instead when the context has
 * one); kn_encode_obs encodes observations given. */
knobs_status kn_encode_factors(const kn_mctx *c, const int32_t *f, int n, float *codes);
knobs_status kn_encode_obs(const kn_mctx *c, const float *obs, int n, float *codes);
/* Codes of n observations obs rendered from the factor vectors f (n,KD): from the grid table
 * when the context has one, else encoded. */
knobs_status kn_encode_rendered(const kn_mctx *c, const int32_t *f, const float *obs, int n, float *codes);
/* grid.c: check that opts->grid_codes fits the dataset and encoder (OK for NULL); copy the
 * codes (and log-variances, if non-NULL) of n factor vectors (n,KD) from c->grid. */
knobs_status kn_grid_check(const knobs_grid_codes *g, const knobs_data *d, const knobs_encoder *enc);
void kn_grid_lookup(const kn_mctx *c, const int32_t *f, int n, float *codes, float *logvar);
/* Report progress of a long metric; KNOBS_ERR_INTERRUPTED if the callback asks to stop. */
knobs_status kn_progress(const kn_mctx *c, const char *metric, double done, double total);
/* Fixed-order parallel sum: run fn over `chunks` chunks of [0,n) (chunk i gets a contiguous
 * range); results of chunk i go to partial + i*width; the caller sums them in chunk order, so
 * the result is independent of the thread count. */
typedef void (*kn_chunk_fn)(void *ctx, long lo, long hi, double *partial);
void kn_parallel_chunks(kn_pool *pool, long n, int chunks, int width, kn_chunk_fn fn, void *ctx,
                        double *partial);

#endif
