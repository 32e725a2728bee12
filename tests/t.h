/* t.h: the tiny test helper. Each tests/test_*.c includes it, runs checks, and ends with
 * `return t_done();`, which prints "N passed, N failed, N skipped" and returns non-zero on any
 * failure. A check that cannot run (a tool or package not installed) says so with T_SKIP, which
 * prints "skip: <case>: <reason>" and counts one skip, never a pass.
 * A check that fails prints file:line and what it compared; the binary keeps going so one run
 * shows every failure. Not a framework: no fixtures, no registration, no globals outside here. */
#ifndef KNOBS_T_H
#define KNOBS_T_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed, t_skipped;
static const char *t_case = "";

#define T_CASE(name) (t_case = (name))

/* Count one skip of the current case, with the reason (printf-style) on stdout. */
#define T_SKIP(...)                                                                        \
  do {                                                                                     \
    t_skipped++;                                                                           \
    printf("skip: %s: ", t_case);                                                          \
    printf(__VA_ARGS__);                                                                   \
    putchar('\n');                                                                         \
  } while (0)

#define CHECK(cond, ...)                                                                   \
  do {                                                                                     \
    if (cond) {                                                                            \
      t_passed++;                                                                          \
    } else {                                                                               \
      t_failed++;                                                                          \
      fprintf(stderr, "FAIL %s:%d [%s] %s: ", __FILE__, __LINE__, t_case, #cond);         \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fputc('\n', stderr);                                                                 \
    }                                                                                      \
  } while (0)

/* |a - b| <= tol, and neither is NaN. */
#define CHECK_NEAR(a, b, tol)                                                              \
  do {                                                                                     \
    double t_a_ = (double)(a), t_b_ = (double)(b), t_t_ = (double)(tol);                   \
    CHECK(fabs(t_a_ - t_b_) <= t_t_ && !isnan(t_a_) && !isnan(t_b_),                       \
          "%s = %.9g, %s = %.9g, |diff| %.3g > tol %.3g", #a, t_a_, #b, t_b_,               \
          fabs(t_a_ - t_b_), t_t_);                                                        \
  } while (0)

/* max |a_i - b_i| / (atol + rtol * |b_i|) <= 1 over n floats; reports the worst index. */
static inline int t_allclose(const float *a, const float *b, size_t n, double rtol, double atol,
                             const char *what, const char *file, int line) {
  size_t worst = 0;
  double wr = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    double r = d / (atol + rtol * fabs((double)b[i]));
    if (isnan(a[i]) != isnan(b[i])) r = INFINITY;
    if (r > wr || isnan(r)) { wr = isnan(r) ? INFINITY : r; worst = i; }
  }
  if (wr <= 1.0) { t_passed++; return 1; }
  t_failed++;
  fprintf(stderr, "FAIL %s:%d [%s] %s: at [%zu] got %.9g want %.9g (rtol %.2g atol %.2g)\n",
          file, line, t_case, what, worst, a[worst], b[worst], rtol, atol);
  return 0;
}
#define CHECK_CLOSE(a, b, n, rtol, atol) t_allclose((a), (b), (n), (rtol), (atol), #a, __FILE__, __LINE__)

/* dir/name in one of 8 rotating buffers (each valid for the next 7 calls): a test's scratch
 * file, in the folder it made. */
static inline const char *t_path(const char *dir, const char *name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static inline int t_done(void) {
  printf("%d passed, %d failed, %d skipped\n", t_passed, t_failed, t_skipped);
  return t_failed ? 1 : 0;
}
#endif
