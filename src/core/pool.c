/* pool.c: the thread pool behind every parallel kernel, and the BLAS glue.
 *
 * One task at a time: kn_pool_run publishes (fn, ctx), bumps a generation counter, runs its own
 * share as thread 0 and waits for the others. Workers spin for a short while (a step issues a
 * few hundred tasks back to back, so most wake-ups are caught spinning) and then sleep on a
 * condition variable, so an idle knobs never burns a core and a busy neighbour process is not
 * starved. It deliberately does not do work stealing or nested parallelism: a task that calls
 * kn_pool_run runs the inner task inline. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/core.h"

#define SPIN_ITERS 20000 /* ~50-100 us of polling before sleeping */

struct kn_pool {
  int n;                       /* threads including the caller */
  pthread_t *th;               /* n - 1 workers */
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  atomic_ulong gen;            /* bumped once per task */
  atomic_int pending;          /* workers still running the current task */
  atomic_int sleepers;         /* workers blocked (or about to block) on `wake` */
  int quit;
  kn_task fn;
  void *ctx;
};

static _Thread_local int in_task;

typedef struct {
  kn_pool *p;
  int tid;
} worker_arg;

static void *worker(void *arg) {
  worker_arg wa = *(worker_arg *)arg;
  free(arg);
  kn_pool *p = wa.p;
  unsigned long seen = 0;
  in_task = 1;
  for (;;) {
    unsigned long g;
    int spins = 0;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
      spins++;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    if (g == seen) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while ((g = atomic_load(&p->gen)) == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      int quit = p->quit;
      pthread_mutex_unlock(&p->mu);
      if (quit && g == seen) return NULL;
    }
    seen = g;
    if (p->quit) return NULL;
    p->fn(p->ctx, wa.tid, p->n);
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

kn_pool *kn_pool_create(int nthreads) {
  if (nthreads < 1) {
    kn_err(KNOBS_ERR_ARG, "thread count must be at least 1, got %d", nthreads);
    return NULL;
  }
  if (kn_blas_init()) return NULL;
  kn_pool *p = calloc(1, sizeof *p);
  if (!p) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate the thread pool");
    return NULL;
  }
  p->n = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  if (nthreads > 1) {
    p->th = calloc((size_t)nthreads - 1, sizeof *p->th);
    if (!p->th) goto fail;
    for (int i = 1; i < nthreads; i++) {
      worker_arg *wa = malloc(sizeof *wa);
      if (!wa) goto fail_threads;
      wa->p = p;
      wa->tid = i;
      if (pthread_create(&p->th[i - 1], NULL, worker, wa) != 0) {
        free(wa);
        goto fail_threads;
      }
      continue;
    fail_threads:
      p->n = i; /* join what started */
      kn_pool_free(p);
      kn_err(KNOBS_ERR_NOMEM, "cannot start %d threads", nthreads);
      return NULL;
    }
  }
  return p;
fail:
  free(p);
  kn_err(KNOBS_ERR_NOMEM, "cannot allocate the thread pool");
  return NULL;
}

void kn_pool_free(kn_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  atomic_fetch_add(&p->gen, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->n; i++) pthread_join(p->th[i - 1], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p->th);
  free(p);
}

int kn_pool_size(const kn_pool *p) { return p ? p->n : 1; }

void kn_pool_run(kn_pool *p, kn_task fn, void *ctx) {
  if (!p || p->n == 1 || in_task) {
    fn(ctx, 0, 1);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  atomic_store(&p->pending, p->n - 1);
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  in_task = 1;
  fn(ctx, 0, p->n);
  in_task = 0;
  int spins = 0;
  while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
    spins++;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  if (atomic_load(&p->pending) > 0) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
}

double kn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
