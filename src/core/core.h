/* core.h: internal plumbing shared by every module: error detail, allocation, the explicit rng,
 * the thread pool and the BLAS glue. Nothing here knows about layers, models or files. */
#ifndef KN_CORE_H
#define KN_CORE_H
#include <stddef.h>
#include <stdint.h>
#include "knobs.h"

/* ---- errors ---------------------------------------------------------------------------- */
/* Record a status and a printf-style detail for knobs_last_error(); returns `s` so callers can
 * write `return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));`. */
knobs_status kn_err(knobs_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current detail with "<prefix>: " (to add context on the way up). Returns `s`. */
knobs_status kn_err_prefix(knobs_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A programmer error (impossible shape, broken invariant): print file, line and the condition
 * and abort. Never used for anything a user's input can cause. */
#define KN_ASSERT(c)                                                                        \
  do {                                                                                      \
    if (!(c)) kn_assert_fail(#c, __FILE__, __LINE__);                                       \
  } while (0)
_Noreturn void kn_assert_fail(const char *cond, const char *file, int line);

/* ---- memory ---------------------------------------------------------------------------- */
/* 64-byte aligned, zeroed allocation; NULL (with the error set, naming `what`) on failure.
 * Free with kn_free. n == 0 returns a valid unique pointer. */
void *kn_alloc(size_t bytes, const char *what);
void kn_free(void *p);
/* snprintf into a fixed buffer for internal names; truncation is a programmer error (asserts). */
void kn_strfmt(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* strdup with the error set on failure. */
char *kn_strdup(const char *s);

/* ---- rng ------------------------------------------------------------------------------- */
/* xoshiro256** seeded through splitmix64 from (seed, stream). Independent streams for
 * independent uses (data, noise, init, per step): kn_rng_seed(&r, seed, KN_STREAM_X + step).
 * The state is a plain value: copy it to fork, store it to resume. */
typedef struct {
  uint64_t s[4];
} kn_rng;
enum {
  KN_STREAM_INIT = 1ull,          /* parameter initialization */
  KN_STREAM_DATA = 1ull << 40,    /* + step: the batch of step `step` */
  KN_STREAM_NOISE = 2ull << 40,   /* + step: reparameterization noise of step `step` */
  KN_STREAM_EVAL = 3ull << 40,    /* metrics and evaluation draws */
  KN_STREAM_AUX = 4ull << 40      /* + step: anything else a model needs per step */
};
void kn_rng_seed(kn_rng *r, uint64_t seed, uint64_t stream);
/* The next 64 bits (one xoshiro256** step); inline because renderers draw per pixel. */
static inline uint64_t kn_rng_u64(kn_rng *r) {
  uint64_t *s = r->s, out = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = s[3] << 45 | s[3] >> 19;
  return out;
}
double kn_rng_uniform(kn_rng *r);            /* [0, 1), 53 bits */
uint32_t kn_rng_below(kn_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */
double kn_rng_normal(kn_rng *r);             /* standard normal (Box-Muller, no cached pair) */
void kn_rng_normal_fill(kn_rng *r, float *x, size_t n);
void kn_rng_uniform_fill(kn_rng *r, float *x, size_t n, float lo, float hi);
/* Fisher-Yates permutation of 0..n-1 into perm. */
void kn_rng_permutation(kn_rng *r, int *perm, int n);

/* ---- thread pool ------------------------------------------------------------------------ */
/* A fixed set of threads that run one task at a time. The caller is thread 0 and takes part;
 * idle workers spin briefly and then sleep on a condition variable (never a long spin: see
 * ../shared/reference/performance.md on PyTorch's spinning threads). A NULL pool, or a call
 * from inside a task, runs the task inline with nt = 1. Work must be split so that each thread
 * owns its output; kn_split gives the canonical contiguous split. */
typedef struct kn_pool kn_pool;
typedef void (*kn_task)(void *ctx, int tid, int nt);
kn_pool *kn_pool_create(int nthreads); /* NULL with error set on failure; nthreads >= 1 */
void kn_pool_free(kn_pool *p);
int kn_pool_size(const kn_pool *p);    /* 1 for NULL */
void kn_pool_run(kn_pool *p, kn_task fn, void *ctx);
/* [lo, hi) of n items for thread tid of nt, contiguous, sizes differing by at most one. */
static inline void kn_split(long n, int tid, int nt, long *lo, long *hi) {
  long q = n / nt, r = n % nt;
  *lo = tid * q + (tid < r ? tid : r);
  *hi = *lo + q + (tid < r ? 1 : 0);
}

/* ---- BLAS ------------------------------------------------------------------------------- */
/* Row-major C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, through cblas_sgemm
 * running single-threaded in each pool thread; the output is split by rows or columns so each
 * thread owns its slice, which makes the result independent of timing. */
void kn_sgemm(kn_pool *p, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same single-threaded, row-major, in the calling thread, in double. */
void kn_dgemm(int transA, int transB, int M, int N, int K, double alpha, const double *A, int lda,
              const double *B, int ldb, double beta, double *C, int ldc);
/* Load OpenBLAS with the kernels of this CPU and make it single-threaded (src/core/blas.c
 * says why it is loaded at run time). Idempotent and thread-safe; kn_pool_create calls it, and
 * so must any caller of kn_sgemm/kn_dgemm without a pool. KNOBS_ERR_IO if OpenBLAS cannot be
 * loaded. */
knobs_status kn_blas_init(void);
/* "OpenBLAS 0.3.21 ..., kernels SkylakeX (chosen by knobs ...)" for --version. */
const char *kn_blas_describe(void);

/* ---- ranks (rank.c) ------------------------------------------------------------------- */
typedef struct {
  double v; /* the value */
  int i;    /* its row */
} kn_keyed;
/* Sort by value, ties by row (a total order: the same result on every platform). */
void kn_keyed_sort(kn_keyed *t, int n);
/* Sort t (n values with their rows) and write r[row] = the value's average 1-based rank (ties
 * share their mean rank, as scipy.stats.rankdata's default). NaN must not occur. */
void kn_ranks(kn_keyed *t, int n, double *r);

/* ---- time ------------------------------------------------------------------------------- */
double kn_now(void); /* monotonic seconds */

#endif
