/* test_counts_data.c: the built-in `counts` simulator (src/data/counts.c).
 * - a cell is a pure function of (seed, index): the same bytes on one thread and on two, another
 *   seed gives other cells; counts:log1p is log1p of the raw counts;
 * - the factors: cell types and conditions near uniform;
 * - the generator as documented: library sizes log-normal (median exp(8)), the mean proportion
 *   of each well-expressed gene in a (type, condition) group equals the ground-truth table, and
 *   Pearson residuals under the documented NB (mean = observed total x proportion, gene-wise
 *   theta) have variance 1;
 * - settings are checked, naming the bad one. */
#include "data/data.h"
#include "t.h"

static float *cells(knobs_data *d, int n, int32_t *f) {
  int G = knobs_data_info_get(d)->C;
  float *x = malloc(sizeof(float) * (size_t)n * G);
  int64_t *idx = malloc(sizeof(int64_t) * n);
  for (int i = 0; i < n; i++) idx[i] = i;
  knobs_status s = knobs_data_get(d, idx, n, x, f);
  CHECK(!s, "get: %s", knobs_last_error());
  free(idx);
  return x;
}

static knobs_data *open_counts(const char *spec, uint64_t seed, int threads) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.seed = seed, o.threads = threads;
  knobs_data *d = NULL;
  knobs_status s = knobs_data_open(spec, &o, &d);
  CHECK(!s, "open %s: %s", spec, knobs_last_error());
  return d;
}

static void test_determinism(void) {
  T_CASE("counts determinism");
  enum { N = 64, G = 40 };
  knobs_data *a = open_counts("counts:genes=40,cells=500", 7, 1);
  knobs_data *b = open_counts("counts:genes=40,cells=500", 7, 2);
  knobs_data *c = open_counts("counts:genes=40,cells=500", 8, 1);
  knobs_data *l = open_counts("counts:genes=40,cells=500,log1p", 7, 1);
  if (!a || !b || !c || !l) return;
  int32_t fa[2 * N], fb[2 * N];
  float *xa = cells(a, N, fa), *xb = cells(b, N, fb), *xc = cells(c, N, NULL), *xl = cells(l, N, NULL);
  CHECK(!memcmp(xa, xb, sizeof(float) * N * G) && !memcmp(fa, fb, sizeof fa), "two threads give other cells");
  CHECK(memcmp(xa, xc, sizeof(float) * N * G), "another seed gives the same cells");
  double worst = 0;
  int integral = 1;
  for (int i = 0; i < N * G; i++) {
    worst = fmax(worst, fabs(xl[i] - (float)log1p(xa[i])));
    integral &= xa[i] >= 0 && xa[i] == floorf(xa[i]);
  }
  CHECK(worst == 0, "log1p variant differs from log1p(counts) by %g", worst);
  CHECK(integral, "raw counts are not non-negative whole numbers");
  const knobs_data_info *in = knobs_data_info_get(a);
  CHECK(in->C == G && in->H == 1 && in->W == 1 && in->n == 500 && in->K == 2 && !in->is_image,
        "info: C %d H %d W %d n %lld K %d", in->C, in->H, in->W, (long long)in->n, in->K);
  CHECK(!strcmp(in->factor_names[0], "celltype") && in->factor_sizes[0] == 4 &&
            !strcmp(in->factor_names[1], "condition") && in->factor_sizes[1] == 2,
        "factors %s (%d), %s (%d)", in->factor_names[0], in->factor_sizes[0], in->factor_names[1], in->factor_sizes[1]);
  free(xa), free(xb), free(xc), free(xl);
  knobs_data_free(a), knobs_data_free(b), knobs_data_free(c), knobs_data_free(l);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_generator(void) {
  T_CASE("counts generator");
  enum { N = 4000, G = 200 };
  knobs_data *d = open_counts("counts:genes=200,cells=4000", 3, 2);
  if (!d) return;
  const float *theta, *prop;
  int T, GG;
  CHECK(kn_counts_truth(d, &theta, &prop, &T, &GG) && T == 4 && GG == G, "truth tables: T %d G %d", T, GG);
  int32_t *f = malloc(sizeof(int32_t) * 2 * N);
  float *x = cells(d, N, f);
  /* factors */
  int nt[4] = {0}, nc[2] = {0};
  for (int i = 0; i < N; i++) nt[f[2 * i]]++, nc[f[2 * i + 1]]++;
  for (int t = 0; t < 4; t++) CHECK(fabs(nt[t] - N / 4.0) < 5 * sqrt(N * 0.1875), "type %d: %d cells of %d", t, nt[t], N);
  CHECK(fabs(nc[1] - N / 2.0) < 5 * sqrt(N * 0.25), "stim: %d cells of %d", nc[1], N);
  /* library sizes: the observed total is the log-normal size plus NB noise of relative size ~1/sqrt */
  double *tot = malloc(sizeof(double) * N), *sorted = malloc(sizeof(double) * N);
  for (int i = 0; i < N; i++) {
    double s = 0;
    for (int g = 0; g < G; g++) s += x[(size_t)i * G + g];
    tot[i] = sorted[i] = s;
  }
  qsort(sorted, N, sizeof(double), cmp_double);
  double med = sorted[N / 2], q84 = sorted[(int)(0.8413 * N)];
  CHECK(fabs(log(med) - 8.0) < 0.05, "median library size %g, want about exp(8) = 2981", med);
  CHECK(fabs(log(q84 / med) - 0.3) < 0.06, "log-sd of library sizes %g, want about 0.3", log(q84 / med));
  /* proportions per (type, condition) group, and NB Pearson residuals */
  double worst = 0, rsum = 0, rn = 0;
  for (int t = 0; t < 4; t++)
    for (int c = 0; c < 2; c++) {
      const float *p = prop + ((size_t)t * 2 + c) * G;
      double T_all = 0;
      int n = 0;
      for (int i = 0; i < N; i++)
        if (f[2 * i] == t && f[2 * i + 1] == c) T_all += tot[i], n++;
      for (int g = 0; g < G; g++) {
        double s = 0;
        for (int i = 0; i < N; i++)
          if (f[2 * i] == t && f[2 * i + 1] == c) {
            double y = x[(size_t)i * G + g], mu = tot[i] * p[g];
            s += y;
            if (mu > 5) rsum += (y - mu) * (y - mu) / (mu + mu * mu / theta[g]), rn++;
          }
        /* in standard errors of the ratio: relative variance per cell 1/mean + 1/theta */
        double m = p[g] * T_all / n, se = sqrt((1 / m + 1 / theta[g]) / n);
        if (p[g] * T_all > 500) worst = fmax(worst, fabs(s / T_all - p[g]) / p[g] / se);
      }
    }
  CHECK(worst < 4.5, "group mean proportions differ from the truth by %.3g standard errors", worst);
  CHECK(rn > 10000 && fabs(rsum / rn - 1) < 0.06, "NB Pearson residual variance %.4g over %.0f counts, want 1", rsum / rn, rn);
  free(f), free(x), free(tot), free(sorted);
  knobs_data_free(d);
}

static void test_settings(void) {
  T_CASE("counts settings");
  const char *bad[][2] = {
      {"counts:genes=1", "genes"},  {"counts:cells=x", "cells"},  {"counts:types=0", "types"},
      {"counts:tissue=3", "tissue"}, {"counts:dropout=q", "dropout"}, {"counts:log2", "log2"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    knobs_data *d = NULL;
    knobs_status s = knobs_data_open(bad[i][0], NULL, &d);
    CHECK(s == KNOBS_ERR_ARG && strstr(knobs_last_error(), bad[i][1]), "%s: status %d, '%s'", bad[i][0], s,
          knobs_last_error());
    knobs_data_free(d);
  }
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.obs_dim = 30;
  knobs_data *d = NULL;
  CHECK(!knobs_data_open("counts:cells=10", &o, &d) && knobs_data_info_get(d)->C == 30, "obs_dim sets the genes");
  knobs_data_free(d);
  d = NULL;
  CHECK(knobs_data_open("counts:genes=20", &o, &d) == KNOBS_ERR_ARG, "obs_dim and genes= disagree: accepted");
  knobs_data_free(d);
  /* dropout: more zeros than without */
  knobs_data *a = open_counts("counts:genes=50,cells=200", 1, 1), *b = open_counts("counts:genes=50,cells=200,dropout=1", 1, 1);
  if (!a || !b) return;
  float *xa = cells(a, 200, NULL), *xb = cells(b, 200, NULL);
  int za = 0, zb = 0;
  for (int i = 0; i < 200 * 50; i++) za += xa[i] == 0, zb += xb[i] == 0;
  CHECK(zb > za + 200, "dropout=1: %d zeros, %d without", zb, za);
  free(xa), free(xb);
  knobs_data_free(a), knobs_data_free(b);
}

int main(void) {
  test_determinism();
  test_generator();
  test_settings();
  return t_done();
}
