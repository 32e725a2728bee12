/* blas.c: the BLAS glue. OpenBLAS is loaded at run time (dlopen), not linked, so that knobs
 * can choose its kernels before OpenBLAS's constructor picks them.
 *
 * Why: OpenBLAS detects the CPU once, when it is loaded, and falls back to its oldest x86-64
 * kernels (Prescott, SSE3) on a CPU model its release does not know. Debian 12's 0.3.21 does
 * not know the Xeons of 2023-24 (family 6, model 207, AVX-512): it runs at 22 GFLOP/s per
 * core there instead of ~120 with its SkylakeX kernels (bench/README.md). OpenBLAS reads the
 * documented environment variable OPENBLAS_CORETYPE while it loads; a linked library has
 * loaded before any of our code runs, a dlopen'ed one has not. So kn_blas_init picks the core
 * from the CPU's features (unless the user set OPENBLAS_CORETYPE), sets the variable and
 * OPENBLAS_NUM_THREADS=1 (knobs does its own threading; no OpenBLAS thread is ever started),
 * loads the library, and restores the environment as it was. If the process has loaded
 * OpenBLAS already (NumPy in the same Python), that copy is used as it is.
 *
 * kn_sgemm splits the product over the pool's threads; each slice is one single-threaded
 * cblas_sgemm writing rows or columns no other thread writes. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 }; /* the CBLAS enum values */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                         int, float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                         const double *, int, double, double *, int);

static struct {
  sgemm_fn sgemm;
  dgemm_fn dgemm;
  void (*set_threads)(int);
  char *(*corename)(void);
  char *(*config)(void);
  const char *chosen; /* the core knobs asked for, or NULL */
  char err[256];
  knobs_status status;
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* OpenBLAS's name for the best kernels this CPU runs, or NULL to let OpenBLAS decide. */
static const char *best_core(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
#endif
  return NULL;
}

static void *open_first(const char *const *names) {
  for (int i = 0; names[i]; i++) {
    void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
  }
  return NULL;
}

/* Set name=value unless it is set; remember to undo it. */
static int set_if_unset(const char *name, const char *value) {
  if (!value || getenv(name)) return 0;
  return setenv(name, value, 0) == 0;
}

/* OpenBLAS loaded before us (NumPy imported first) on a CPU its release does not know runs
 * the Prescott fallback. Its exported gotoblas_dynamic_quit/init re-run its core selection,
 * which reads OPENBLAS_CORETYPE; done only for that fallback, only when the user did not set
 * the variable, and here, before knobs runs any BLAS call. */
static void reselect_if_fallback(void *h) {
  const char *core = best_core();
  char *(*name)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
  void (*quit)(void) = (void (*)(void))dlsym(h, "gotoblas_dynamic_quit");
  void (*init)(void) = (void (*)(void))dlsym(h, "gotoblas_dynamic_init");
  if (!core || !name || !quit || !init || getenv("OPENBLAS_CORETYPE")) return;
  const char *now = name();
  if (!now || (strcasecmp(now, "Prescott") && strcasecmp(now, "Core2") && strcasecmp(now, "Nehalem")))
    return;
  if (setenv("OPENBLAS_CORETYPE", core, 0)) return;
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  blas.chosen = core;
}

static void blas_load(void) {
  static const char *const names[] = {"libopenblas.so.0", "libopenblas.so", NULL};
  /* loaded already (NumPy, or a program linked with -lopenblas): use it as it is */
  void *h = NULL;
  for (int i = 0; names[i] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (h) reselect_if_fallback(h);
  if (!h) {
    const char *core = best_core();
    int set_core = set_if_unset("OPENBLAS_CORETYPE", core);
    int set_nt = set_if_unset("OPENBLAS_NUM_THREADS", "1");
    h = open_first(names);
    if (set_core) unsetenv("OPENBLAS_CORETYPE");
    if (set_nt) unsetenv("OPENBLAS_NUM_THREADS");
    if (set_core) blas.chosen = core;
  }
  if (!h) {
    const char *why = dlerror();
    snprintf(blas.err, sizeof blas.err,
             "cannot load OpenBLAS (libopenblas.so.0: %s); install Debian's libopenblas0",
             why ? why : "not found");
    blas.status = KNOBS_ERR_IO;
    return;
  }
  blas.sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
  blas.dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
  blas.set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
  blas.corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
  blas.config = (char *(*)(void))dlsym(h, "openblas_get_config");
  if (!blas.sgemm || !blas.dgemm || !blas.set_threads) {
    snprintf(blas.err, sizeof blas.err, "the loaded libopenblas.so.0 lacks cblas_sgemm, cblas_dgemm or openblas_set_num_threads");
    blas.status = KNOBS_ERR_IO;
    return;
  }
  blas.set_threads(1);
}

knobs_status kn_blas_init(void) {
  pthread_once(&blas_once, blas_load);
  if (blas.status) return kn_err(blas.status, "%s", blas.err);
  return KNOBS_OK;
}

const char *knobs_blas_info(void) { return kn_blas_describe(); }

const char *kn_blas_describe(void) {
  static char text[200];
  if (kn_blas_init()) return "OpenBLAS not loaded";
  const char *core = blas.corename ? blas.corename() : "?";
  const char *cfg = blas.config ? blas.config() : "OpenBLAS";
  snprintf(text, sizeof text, "%s, kernels %s%s", cfg, core,
           blas.chosen ? " (chosen by knobs for this CPU; OPENBLAS_CORETYPE overrides)" : "");
  return text;
}

typedef struct {
  int ta, tb, M, N, K;
  float alpha, beta;
  const float *A, *B;
  float *C;
  int lda, ldb, ldc, by_rows;
} gemm_job;

/* Every public entry that reaches a GEMM loads BLAS first (kn_pool_create, or kn_blas_init
 * where no pool exists) and reports a failure there; reaching a GEMM without it is a bug. */
static void need_blas(void) {
  pthread_once(&blas_once, blas_load); /* after the first call, one acquire load */
  if (!blas.sgemm) {
    fprintf(stderr, "knobs: BLAS call before OpenBLAS was loaded: %s\n", blas.err[0] ? blas.err : "?");
    abort();
  }
}

static void one_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
  need_blas();
  blas.sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, M, N, K, alpha, A, lda, B,
             ldb, beta, C, ldc);
}

static void gemm_task(void *ctx, int tid, int nt) {
  gemm_job *j = ctx;
  long lo, hi;
  if (j->by_rows) {
    kn_split(j->M, tid, nt, &lo, &hi);
    if (hi <= lo) return;
    const float *A = j->ta ? j->A + lo : j->A + lo * (long)j->lda;
    one_sgemm(j->ta, j->tb, (int)(hi - lo), j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb,
              j->beta, j->C + lo * (long)j->ldc, j->ldc);
  } else {
    /* split columns in multiples of 16 so each slice keeps full SIMD panels */
    long blocks = (j->N + 15) / 16;
    kn_split(blocks, tid, nt, &lo, &hi);
    lo *= 16;
    hi = hi * 16 < j->N ? hi * 16 : j->N;
    if (hi <= lo) return;
    const float *B = j->tb ? j->B + lo * (long)j->ldb : j->B + lo;
    one_sgemm(j->ta, j->tb, j->M, (int)(hi - lo), j->K, j->alpha, j->A, j->lda, B, j->ldb,
              j->beta, j->C + lo, j->ldc);
  }
}

void kn_sgemm(kn_pool *p, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  gemm_job j = {transA, transB, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, 0};
  int nt = kn_pool_size(p);
  double flops = 2.0 * M * N * K;
  if (nt == 1 || flops < 2e5) {
    gemm_task(&j, 0, 1);
    return;
  }
  /* split the larger output dimension; prefer columns (contiguous in row-major C) */
  j.by_rows = (M >= 2 * N) || N < 32 * nt;
  kn_pool_run(p, gemm_task, &j);
}

void kn_dgemm(int transA, int transB, int M, int N, int K, double alpha, const double *A, int lda,
              const double *B, int ldb, double beta, double *C, int ldc) {
  need_blas();
  blas.dgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, alpha, A,
             lda, B, ldb, beta, C, ldc);
}
