/* rank.c: values sorted with their row numbers, and average ranks as scipy.stats.rankdata
 * gives them (ties share their mean rank); shared by Spearman correlations (metrics/mcc.c,
 * apps/names.c), the calibration's sort (apps/names.c), ROC AUC (metrics/logreg.c) and the
 * class labels of factor columns (metrics/api.c). */
#include <stdlib.h>

#include "core/core.h"

static int cmp_keyed(const void *a, const void *b) {
  const kn_keyed *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

void kn_keyed_sort(kn_keyed *t, int n) { qsort(t, (size_t)n, sizeof *t, cmp_keyed); }

void kn_ranks(kn_keyed *t, int n, double *r) {
  kn_keyed_sort(t, n);
  for (int a = 0; a < n;) {
    int b = a;
    while (b + 1 < n && t[b + 1].v == t[a].v) b++;
    for (int q = a; q <= b; q++) r[t[q].i] = 0.5 * (a + b) + 1;
    a = b + 1;
  }
}
