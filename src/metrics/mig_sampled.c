/* mig_sampled.c: the mutual information gap as Chen et al. compute it (rtqichen/beta-tcvae,
 * disentanglement_metrics.py and metric_helpers/mi_metric.py), a different number from the
 * reference's discretised `mig`:
 *   one sample z_n ~ q(z|x_n) = N(mu_n, exp(logvar_n)) per row;
 *   H(z_j) = -E_s[log (1/N) sum_n q(z_sj | x_n)] over S = min(10000, N) random rows s;
 *   H(z_j | v_k) = sum_v p(v) H_v(z_j), H_v the same estimate within the rows where v_k = v
 *     (Chen weighs the values equally, which p(v) is on a full grid);
 *   MI = H(z_j) - H(z_j | v_k), sorted over j, clamped at 0, divided by log(number of values
 *   of v_k); MIG = mean over the scored factors of (first - second).
 * Chen's dSprites number leaves out shape (a factor subset); Chen works in float32 on a GPU,
 * we in double. The log-sum-exp over components is the hot loop (S x N x D per group): it is
 * shifted by the largest possible term so one pass suffices, with an exact two-pass fallback
 * when the sum would underflow, and a polynomial exp the compiler vectorises. Where the CPU has
 * AVX-512 (checked at run time) a faster kernel does the same sum: the components in blocks of
 * 64 by mu, a block skipped when a bound on its largest term says every term is below the
 * window's cut, and an exp with FMA, a 16-entry table and a degree-6 polynomial (relative
 * error ~1e-15 instead of ~1e-16): the estimates move by ~1e-13, far inside the reference
 * test's 1e-9. Along an inactive latent, where every sample's window holds every component,
 * groups of 4096 or more sum the components that are nearly alike as power series in the sample
 * instead (series_build, below; ~1e-15 on an eval's data, 1e-11 in its test), on both kernels;
 * `kn_mctx.plain` turns both the series and the AVX-512 kernel off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "metrics/metrics.h"

#define BLOCK 64   /* components per block of the AVX-512 kernel's bounds */
#define NSEG 4     /* segments of the direct components by h (seg_build) */
#define SEG_MIN 2048 /* fewer direct components than this stay one segment */

/* one group of m components, SoA per dimension: mu, h = 1/(2 var), cc = log density constant
 * minus the group's largest constant (so every term is <= 1) */
typedef struct {
  int m, D;
  double *mu, *h, *cc, *cmax; /* (D,m) x3 per dimension, (D) */
  /* the direct components [0, md[j]) of dimension j are nseg[j] segments [seg[c], seg[c+1]) of
   * one band of h each (quartiles; one segment for small groups and the plain path), each sorted
   * by mu: a segment's window is as narrow as its own smallest h allows */
  int *nseg, *seg, *sb;        /* (D), (D,NSEG+1), (D,NSEG) */
  double *hmin;                /* (D,NSEG) */
  /* blocks of BLOCK components of a segment: their smallest h, largest cc and mu range, for the
   * AVX-512 kernel; segment c's blocks start at slot sb[c] of the dimension's nb slots */
  int nb;
  double *bh, *bc, *bmu0, *bmu1; /* (D,nb) each */
  int simd;                    /* use sum_avx512 */
  /* the series part (series_build): per dimension the components [md[j], m) of the sorted
   * arrays are summed by nbk[j] power series in u = x - m0[j], one per band of h (centre h0);
   * the direct kernels sum the window of [0, md[j]) */
  int *md, *nbk;
  double *m0, *h0, *P;         /* (D), (D,NBK), (D,NBK,DEG+1) */
  const double *samples;       /* (S,D) the samples scored */
  const double *own;           /* (S,D) log term of each sample's own component */
  int S;
  double *out;                 /* (D,S) log q(z_sj) per sample */
} group_job;

/* log sum_n exp(cc_n - (x - mu_n)^2 h_n) over the components of dimension j, shifted by
 * cmax. Terms below e^-50 times the sample's own component's term are left out: with
 * the components sorted by mu, the window |x - mu| <= sqrt((50 - own) / min h) holds every
 * other term; the sum moves by less than m e^-50 relative (< 1e-15 for a million terms). */
static void window(const group_job *g, int j, int c, double x, double own, int *lo, int *hi) {
  const double *mu = g->mu + (size_t)j * g->m;
  const int *seg = g->seg + (size_t)j * (NSEG + 1);
  double R = sqrt((50.0 - own) / g->hmin[(size_t)j * NSEG + c]);
  int a = seg[c], b = seg[c + 1];
  while (a < b) { /* first mu >= x - R */
    int mid = (a + b) / 2;
    if (mu[mid] < x - R) a = mid + 1;
    else b = mid;
  }
  *lo = a;
  b = seg[c + 1];
  while (a < b) { /* first mu > x + R */
    int mid = (a + b) / 2;
    if (mu[mid] <= x + R) a = mid + 1;
    else b = mid;
  }
  *hi = a;
}

/* exact two-pass log-sum-exp of the terms of components [lo, hi) of dimension j at x, shifted by
 * cmax: for samples far from every component, whose one-pass sum would underflow */
static double lse_two_pass(const group_job *g, int j, double x, int lo, int hi) {
  const double *mu = g->mu + (size_t)j * g->m, *h = g->h + (size_t)j * g->m, *cc = g->cc + (size_t)j * g->m;
  double mx = -INFINITY, s = 0;
  for (int n = lo; n < hi; n++) {
    double d = x - mu[n], t = cc[n] - d * d * h[n];
    if (t > mx) mx = t;
  }
  for (int n = lo; n < hi; n++) {
    double d = x - mu[n];
    s += exp(cc[n] - d * d * h[n] - mx);
  }
  return g->cmax[j] + mx + log(s);
}

/* the sum of the terms of segment c's components in its window, shifted by cmax (linear; the
 * caller adds the other segments and the series part, takes the log, and falls back to
 * lse_two_pass on underflow) */
static double sum_one(const group_job *g, int j, int c, double x, double own, int *wlo, int *whi) {
  int lo, hi;
  window(g, j, c, x, own, &lo, &hi);
  *wlo = lo, *whi = hi;
  const double *mu = g->mu + (size_t)j * g->m + lo, *h = g->h + (size_t)j * g->m + lo, *cc = g->cc + (size_t)j * g->m + lo;
  int m = hi - lo;
  kn_v8d acc = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0}, xv = {x, x, x, x, x, x, x, x};
  int n = 0;
  /* four independent chains keep the out-of-order core busy through the polynomial */
  for (; n + 32 <= m; n += 32) {
    kn_v8d mv[4], hv[4], cv[4];
    memcpy(mv, mu + n, sizeof mv);
    memcpy(hv, h + n, sizeof hv);
    memcpy(cv, cc + n, sizeof cv);
    kn_v8d e[4];
    for (int u = 0; u < 4; u++) {
      kn_v8d d = xv - mv[u];
      e[u] = cv[u] - d * d * hv[u];
    }
    for (int u = 0; u < 4; u++) kn_exp8(&e[u]);
    acc += e[0], acc1 += e[1], acc2 += e[2], acc3 += e[3];
  }
  acc = (acc + acc1) + (acc2 + acc3);
  for (; n + 8 <= m; n += 8) {
    kn_v8d mv, hv, cv;
    memcpy(&mv, mu + n, sizeof mv);
    memcpy(&hv, h + n, sizeof hv);
    memcpy(&cv, cc + n, sizeof cv);
    kn_v8d d = xv - mv;
    kn_v8d e = cv - d * d * hv;
    kn_exp8(&e);
    acc += e;
  }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; n < m; n++) {
    double d = x - mu[n];
    s += kn_exp(cc[n] - d * d * h[n]);
  }
  return s;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX512_KERNEL 1
#define AVX512 __attribute__((target("avx512f,fma")))

/* exp(t) for t <= 0 (t < -700 taken as -700, as kn_exp8): t = (16 q + k) ln2/16 + r, |r| <=
 * ln2/32, exp(t) = 2^q 2^(k/16) p(r), p the degree-6 Taylor polynomial (remainder < 4e-16
 * relative), 2^(k/16) from 16 correctly rounded doubles in two registers; the result is normal
 * (>= 2^-1010), so 2^q goes straight into the exponent bits. */
static const double exp16_table[16] = {
    1.0, 1.0442737824274138, 1.0905077326652577, 1.1387886347566916, 1.189207115002721, 1.2418578120734840,
    1.2968395546510096, 1.3542555469368927, 1.4142135623730951, 1.4768261459394993, 1.5422108254079407,
    1.6104903319492543, 1.681792830507429, 1.7562521603732995, 1.8340080864093424, 1.9152065613971474};

AVX512 static inline __m512d exp16(__m512d t, __m512d tab0, __m512d tab1) {
  const __m512d magic = _mm512_set1_pd(6755399441055744.0); /* 1.5 * 2^52 */
  t = _mm512_max_pd(t, _mm512_set1_pd(-700.0));
  __m512d k = _mm512_fmadd_pd(t, _mm512_set1_pd(23.083120654223414), magic); /* 16 / ln 2 */
  __m512d nn = _mm512_sub_pd(k, magic);
  __m512d r = _mm512_fnmadd_pd(nn, _mm512_set1_pd(0.04332169878499658), t); /* ln2/16, hi + lo */
  r = _mm512_fnmadd_pd(nn, _mm512_set1_pd(1.4494042586539372e-18), r);
  __m512d p = _mm512_fmadd_pd(_mm512_set1_pd(1.0 / 720.0), r, _mm512_set1_pd(1.0 / 120.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 24.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0 / 6.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(0.5));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
  __m512i n = _mm512_sub_epi64(_mm512_castpd_si512(k), _mm512_castpd_si512(magic));
  p = _mm512_mul_pd(p, _mm512_permutex2var_pd(tab0, n, tab1)); /* the low 4 bits index */
  __m512i e = _mm512_slli_epi64(_mm512_srai_epi64(n, 4), 52);
  return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(p), e));
}

/* sum_one on blocks of components: a block whose largest possible term, cc_max - h_min gap^2
 * (gap: the distance from x to its mu range), is below the cut own - 50 is skipped (every
 * term of it is, as every term outside the window); the others are summed 8 at a time, the
 * window's ends masked. */
AVX512 static double sum_avx512(const group_job *g, int j, int c, double x, double own, int *wlo, int *whi) {
  int lo, hi;
  window(g, j, c, x, own, &lo, &hi);
  *wlo = lo, *whi = hi;
  int s0 = g->seg[(size_t)j * (NSEG + 1) + c];
  size_t o = (size_t)j * g->m, ob = (size_t)j * g->nb + g->sb[(size_t)j * NSEG + c];
  const double *mu = g->mu + o, *h = g->h + o, *cc = g->cc + o;
  const double *bh = g->bh + ob, *bc = g->bc + ob, *bmu0 = g->bmu0 + ob, *bmu1 = g->bmu1 + ob;
  const __m512d tab0 = _mm512_loadu_pd(exp16_table), tab1 = _mm512_loadu_pd(exp16_table + 8), xv = _mm512_set1_pd(x);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  double cut = own - 50.0;
#define TERM(q) _mm512_fnmadd_pd(_mm512_mul_pd(d##q, d##q), _mm512_loadu_pd(h + a + 8 * q), _mm512_loadu_pd(cc + a + 8 * q))
  for (int b = (lo - s0) / BLOCK; s0 + b * BLOCK < hi; b++) {
    double gap = x < bmu0[b] ? bmu0[b] - x : x > bmu1[b] ? x - bmu1[b] : 0.0;
    if (bc[b] - bh[b] * gap * gap < cut) continue;
    int a = s0 + b * BLOCK > lo ? s0 + b * BLOCK : lo, e = s0 + (b + 1) * BLOCK < hi ? s0 + (b + 1) * BLOCK : hi;
    if (e - a == BLOCK) /* a whole block: four independent chains */
      for (; a < e; a += 32) {
        __m512d d0 = _mm512_sub_pd(xv, _mm512_loadu_pd(mu + a)), d1 = _mm512_sub_pd(xv, _mm512_loadu_pd(mu + a + 8));
        __m512d d2 = _mm512_sub_pd(xv, _mm512_loadu_pd(mu + a + 16)), d3 = _mm512_sub_pd(xv, _mm512_loadu_pd(mu + a + 24));
        acc0 = _mm512_add_pd(acc0, exp16(TERM(0), tab0, tab1));
        acc1 = _mm512_add_pd(acc1, exp16(TERM(1), tab0, tab1));
        acc2 = _mm512_add_pd(acc2, exp16(TERM(2), tab0, tab1));
        acc3 = _mm512_add_pd(acc3, exp16(TERM(3), tab0, tab1));
      }
    for (; a < e; a += 8) { /* the window's ends */
      __mmask8 m = e - a >= 8 ? 0xff : (__mmask8)((1u << (e - a)) - 1);
      __m512d d = _mm512_sub_pd(xv, _mm512_maskz_loadu_pd(m, mu + a));
      __m512d t = _mm512_fnmadd_pd(_mm512_mul_pd(d, d), _mm512_maskz_loadu_pd(m, h + a), _mm512_maskz_loadu_pd(m, cc + a));
      acc0 = _mm512_mask_add_pd(acc0, m, acc0, exp16(t, tab0, tab1));
    }
  }
#undef TERM
  return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc0, acc1), _mm512_add_pd(acc2, acc3)));
}
#else
#define HAVE_AVX512_KERNEL 0
static double sum_avx512(const group_job *g, int j, int c, double x, double own, int *wlo, int *whi) {
  return sum_one(g, j, c, x, own, wlo, whi);
}
#endif

/* whether this CPU runs sum_avx512 */
static int have_avx512(void) {
#if HAVE_AVX512_KERNEL
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* ---- the series part ----------------------------------------------------------------------
 * Along an inactive latent the components are nearly alike (mu near a centre m0, h = 1/(2 var)
 * near a band's centre h0) and the window of a sample holds every one of them. There the sum is
 * a power series in u = x - m0 instead. With b = mu - m0,
 *   cc - h (x - mu)^2 = -h0 u^2 + alpha + beta u + gamma u^2,
 *   alpha = cc - h b^2,  beta = 2 h b,  gamma = h0 - h,
 * and exp(beta u + gamma u^2) = sum_d c_d u^d with c_0 = 1, c_1 = beta,
 * (d + 1) c_{d+1} = beta c_d + 2 gamma c_{d-1}. Summed over a band's components once per group,
 *   sum_n exp(term_n) = exp(-h0 u^2) sum_d P_d u^d,  P_d = sum_n exp(alpha_n) c_d(n),
 * a sample costs DEG multiply-adds a band instead of a term a component. A component joins a
 * band only if |beta| umax <= R1 and |gamma| umax^2 <= R2, umax the largest |u| of the group's
 * samples: then the series' tail past degree DEG is below 2^25/25! e^2.1 ~ 2e-17 of the term,
 * and the absolute values of its terms sum to at most e^(2 R1 + 2 R2) ~ 70 times the term
 * (~1e-14 relative rounding at worst). Every other component stays with the direct kernels. */
#define DEG 24          /* series degree */
#define NBK 48          /* bands per dimension at most */
#define NBIN 4096       /* h bins of width dh a dimension may span */
#define R1 2.0
#define R2 0.1
#define SERIES_MIN 4096 /* groups smaller than this are summed directly */

long kn_mig_sampled_series_count;

static double series(const group_job *g, int j, double x) {
  double u = x - g->m0[j], u2 = u * u, s = 0;
  const double *P = g->P + (size_t)j * NBK * (DEG + 1), *h0 = g->h0 + (size_t)j * NBK;
  for (int b = 0; b < g->nbk[j]; b++) {
    const double *p = P + (size_t)b * (DEG + 1);
    double v = p[DEG];
    for (int d = DEG - 1; d >= 0; d--) v = v * u + p[d];
    s += exp(-h0[b] * u2) * v;
  }
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_count_desc(const void *a, const void *b, void *ctx) {
  const int *cnt = ctx, i = *(const int *)a, k = *(const int *)b;
  return cnt[i] < cnt[k] ? 1 : cnt[i] > cnt[k] ? -1 : (i > k) - (i < k);
}

/* Scratch of series_build: the h histogram and its order, a band per component, and room to
 * move the series' components aside. */
typedef struct {
  int bin[NBIN], order[NBIN], which[NBIN];
  double hs[4096];     /* seg_build's sample of h */
  unsigned char *band; /* (m) */
  double *aside;       /* (3 m) */
} series_scratch;

/* For dimension j of a group whose arrays (mu, h, cc) are sorted by mu: choose the series part
 * (m0, the bands, P) and move its components behind the others, which keep their order by mu
 * in [0, md[j]); or leave them all direct (nbk[j] = 0, md[j] = m). */
static void series_build(group_job *g, int j, series_scratch *w) {
  int m = g->m;
  double *mu = g->mu + (size_t)j * m, *h = g->h + (size_t)j * m, *cc = g->cc + (size_t)j * m;
  g->nbk[j] = 0, g->md[j] = m;
  if (m < SERIES_MIN) return;
  double m0 = mu[m / 2], umax = 1e-8;
  for (int s = 0; s < g->S; s++) {
    double u = fabs(g->samples[(size_t)s * g->D + j] - m0);
    umax = u > umax ? u : umax;
  }
  double bmax = R1 / (2 * umax); /* a component may join if h |mu - m0| <= bmax */
  double hlo = INFINITY, hhi = -INFINITY;
  for (int n = 0; n < m; n++)
    if (h[n] * fabs(mu[n] - m0) <= bmax) hlo = h[n] < hlo ? h[n] : hlo, hhi = h[n] > hhi ? h[n] : hhi;
  double dh = 2 * R2 / (umax * umax); /* a band's width: |gamma| <= dh / 2 */
  if (!(hhi >= hlo) || (hhi - hlo) / dh >= NBIN - 1) return;
  int nbin = (int)((hhi - hlo) / dh) + 1;
  memset(w->bin, 0, sizeof(int) * (size_t)nbin);
  for (int n = 0; n < m; n++) {
    int q = h[n] * fabs(mu[n] - m0) <= bmax ? (int)((h[n] - hlo) / dh) : -1;
    w->band[n] = 255;
    if (q >= 0) w->bin[q < nbin ? q : nbin - 1]++;
  }
  /* the fullest bins become bands while a band holds enough components to pay for itself */
  for (int q = 0; q < nbin; q++) w->order[q] = q, w->which[q] = -1;
  qsort_r(w->order, (size_t)nbin, sizeof(int), cmp_count_desc, w->bin);
  int nb = 0;
  long kept = 0;
  while (nb < NBK && nb < nbin && w->bin[w->order[nb]] >= 8 * (DEG + 1)) kept += w->bin[w->order[nb]], nb++;
  if (nb == 0 || kept < m / 8) return;
  double *P = g->P + (size_t)j * NBK * (DEG + 1), *h0 = g->h0 + (size_t)j * NBK;
  memset(P, 0, sizeof(double) * NBK * (DEG + 1));
  for (int b = 0; b < nb; b++) w->which[w->order[b]] = b, h0[b] = hlo + (w->order[b] + 0.5) * dh;
  for (int n = 0; n < m; n++) {
    if (!(h[n] * fabs(mu[n] - m0) <= bmax)) continue;
    int q = (int)((h[n] - hlo) / dh), b = w->which[q < nbin ? q : nbin - 1];
    if (b < 0) continue;
    w->band[n] = (unsigned char)b;
    double bb = mu[n] - m0, beta = 2 * h[n] * bb, gamma = h0[b] - h[n], e = exp(cc[n] - h[n] * bb * bb);
    double c0 = 1, c1 = beta, *p = P + (size_t)b * (DEG + 1);
    p[0] += e, p[1] += e * c1;
    for (int d = 1; d < DEG; d++) {
      double c2 = (beta * c1 + 2 * gamma * c0) / (d + 1);
      p[d + 1] += e * c2;
      c0 = c1, c1 = c2;
    }
  }
  /* stable partition: the direct components first, still sorted by mu, then the series' */
  int nd = 0, ns = 0;
  for (int n = 0; n < m; n++) {
    if (w->band[n] == 255) {
      mu[nd] = mu[n], h[nd] = h[n], cc[nd] = cc[n], nd++;
    } else {
      w->aside[3 * (size_t)ns] = mu[n], w->aside[3 * (size_t)ns + 1] = h[n], w->aside[3 * (size_t)ns + 2] = cc[n], ns++;
    }
  }
  for (int t = 0; t < ns; t++) mu[nd + t] = w->aside[3 * (size_t)t], h[nd + t] = w->aside[3 * (size_t)t + 1], cc[nd + t] = w->aside[3 * (size_t)t + 2];
  g->md[j] = nd, g->nbk[j] = nb, g->m0[j] = m0;
  kn_mig_sampled_series_count++;
}

/* Split dimension j's direct components [0, md) (sorted by mu) into NSEG segments by the
 * quartiles of their h (estimated on at most 4096 of them), each still sorted by mu (a stable
 * partition through the scratch `aside`); one segment when `split` is 0 or there are few. */
static void seg_build(group_job *g, int j, series_scratch *w, int split) {
  int m = g->m, md = g->md[j], *seg = g->seg + (size_t)j * (NSEG + 1);
  double *mu = g->mu + (size_t)j * m, *h = g->h + (size_t)j * m, *cc = g->cc + (size_t)j * m;
  seg[0] = 0;
  for (int c = 1; c <= NSEG; c++) seg[c] = md;
  g->nseg[j] = 1;
  if (!split || md < SEG_MIN) return;
  int step = md / 4096 + 1, ns = 0;
  for (int n = 0; n < md; n += step) w->hs[ns++] = h[n];
  qsort(w->hs, (size_t)ns, sizeof(double), cmp_double);
  double th[NSEG - 1];
  for (int c = 0; c < NSEG - 1; c++) th[c] = w->hs[(size_t)(c + 1) * ns / NSEG];
  int cnt[NSEG] = {0}, at[NSEG];
  for (int n = 0; n < md; n++) {
    int c = 0;
    while (c < NSEG - 1 && h[n] >= th[c]) c++;
    w->band[n] = (unsigned char)c;
    cnt[c]++;
  }
  at[0] = 0;
  for (int c = 1; c < NSEG; c++) at[c] = at[c - 1] + cnt[c - 1];
  for (int c = 0; c < NSEG; c++) seg[c] = at[c];
  seg[NSEG] = md;
  for (int n = 0; n < md; n++) {
    double *a = w->aside + 3 * (size_t)at[w->band[n]]++;
    a[0] = mu[n], a[1] = h[n], a[2] = cc[n];
  }
  for (int n = 0; n < md; n++) mu[n] = w->aside[3 * (size_t)n], h[n] = w->aside[3 * (size_t)n + 1], cc[n] = w->aside[3 * (size_t)n + 2];
  g->nseg[j] = NSEG;
}

static void group_task(void *ctx, int tid, int nth) {
  group_job *g = ctx;
  /* every nth (latent, sample): each thread takes its share of every latent, whose costs differ
   * by far (a series latent against an active one); each writes only its own out[q] */
  for (long q = tid; q < (long)g->D * g->S; q += nth) {
    int j = (int)(q / g->S), s = (int)(q % g->S);
    int wlo, whi;
    double x = g->samples[(size_t)s * g->D + j], own = g->own[(size_t)s * g->D + j];
    double sum = 0;
    for (int c = 0; c < g->nseg[j]; c++)
      sum += g->simd ? sum_avx512(g, j, c, x, own, &wlo, &whi) : sum_one(g, j, c, x, own, &wlo, &whi);
    if (g->nbk[j]) sum += series(g, j, x);
    if (sum > 1e-280) g->out[q] = g->cmax[j] + log(sum);
    else if (g->nbk[j] || g->nseg[j] > 1) g->out[q] = lse_two_pass(g, j, x, 0, g->m); /* exact, every component */
    else g->out[q] = lse_two_pass(g, j, x, wlo, whi);
  }
}

/* Entropy estimates H_j (D) of the mixture of the components `rows` (m of them) at S samples
 * drawn from `samp_rows` (the sample z of those rows). */
typedef struct {
  double mu, h, cc;
} comp;

static int cmp_comp(const void *a, const void *b) {
  const comp *x = a, *y = b;
  return (x->mu > y->mu) - (x->mu < y->mu);
}

static knobs_status group_entropy(kn_pool *pool, const kn_rows *r, int D, const double *zs,
                                  const int *rows, int m, int S, kn_rng *rng, double *H,
                                  double *work, int simd, int use_series) {
  group_job g = {.m = m, .D = D, .S = S, .nb = (m + BLOCK - 1) / BLOCK + NSEG, .simd = simd};
  series_scratch *sw = malloc(sizeof *sw);
  int *md = malloc(sizeof(int) * (size_t)D * (3 + 2 * NSEG + 1));
  double *sp = malloc(sizeof(double) * (size_t)D * (1 + NBK * (DEG + 2)));
  unsigned char *band = malloc((size_t)m);
  if (!sw || !md || !sp || !band) {
    free(sw), free(md), free(sp), free(band);
    return kn_err(KNOBS_ERR_NOMEM, "mig_sampled: cannot allocate for a group of %d", m);
  }
  g.md = md, g.nbk = md + D, g.nseg = md + 2 * D, g.seg = md + 3 * D, g.sb = g.seg + (size_t)D * (NSEG + 1);
  g.m0 = sp, g.h0 = sp + D, g.P = sp + D + (size_t)D * NBK;
  double *buf = work;
  g.mu = buf;
  g.h = g.mu + (size_t)D * m;
  g.cc = g.h + (size_t)D * m;
  g.cmax = g.cc + (size_t)D * m;
  g.hmin = g.cmax + D;
  double *samples = g.hmin + (size_t)D * NSEG, *own = samples + (size_t)S * D;
  g.out = own + (size_t)S * D;
  g.bh = g.out + (size_t)S * D;
  g.bc = g.bh + (size_t)D * g.nb;
  g.bmu0 = g.bc + (size_t)D * g.nb;
  g.bmu1 = g.bmu0 + (size_t)D * g.nb;
  comp *cs = (comp *)(g.bmu1 + (size_t)D * g.nb);
  const double LOG2PI = 1.8378770664093453;
  for (int j = 0; j < D; j++) {
    double mx = -INFINITY;
    for (int t = 0; t < m; t++) {
      int i = rows[t];
      double lv = r->lv[(size_t)i * D + j];
      cs[t] = (comp){r->z[(size_t)i * D + j], 0.5 * exp(-lv), -0.5 * (LOG2PI + lv)};
      if (cs[t].cc > mx) mx = cs[t].cc;
    }
    g.cmax[j] = mx;
    qsort(cs, (size_t)m, sizeof *cs, cmp_comp);
    for (int t = 0; t < m; t++) {
      g.mu[(size_t)j * m + t] = cs[t].mu;
      g.h[(size_t)j * m + t] = cs[t].h;
      g.cc[(size_t)j * m + t] = cs[t].cc - mx;
    }
  }
  /* the first S of a random permutation of the group's rows (torch.randperm(m)[:S]) */
  int *perm = (int *)cs;
  kn_rng_permutation(rng, perm, m);
  for (int s = 0; s < S; s++) {
    int i = rows[perm[s]];
    for (int j = 0; j < D; j++) {
      double x = zs[(size_t)i * D + j], lv = r->lv[(size_t)i * D + j], d = x - r->z[(size_t)i * D + j];
      samples[(size_t)s * D + j] = x;
      own[(size_t)s * D + j] = -0.5 * (LOG2PI + lv) - g.cmax[j] - d * d * 0.5 * exp(-lv);
    }
  }
  g.samples = samples;
  g.own = own;
  /* the series part of each dimension (it reorders the arrays), then the direct components'
   * smallest h (the window) and the blocks of the AVX-512 kernel, over [0, md) */
  sw->band = band, sw->aside = (double *)cs;
  for (int j = 0; j < D; j++) {
    if (use_series) series_build(&g, j, sw);
    else g.md[j] = m, g.nbk[j] = 0;
    seg_build(&g, j, sw, use_series);
    const int *seg = g.seg + (size_t)j * (NSEG + 1);
    int slot = 0;
    for (int c = 0; c < g.nseg[j]; c++) {
      double hm = INFINITY;
      for (int t = seg[c]; t < seg[c + 1]; t++) hm = g.h[(size_t)j * m + t] < hm ? g.h[(size_t)j * m + t] : hm;
      g.hmin[(size_t)j * NSEG + c] = hm;
      g.sb[(size_t)j * NSEG + c] = slot;
      for (int b = 0; seg[c] + b * BLOCK < seg[c + 1]; b++, slot++) {
        size_t q = (size_t)j * g.nb + slot, t0 = (size_t)j * m + seg[c] + (size_t)b * BLOCK;
        int e = seg[c + 1] - seg[c] - b * BLOCK < BLOCK ? seg[c + 1] - seg[c] - b * BLOCK : BLOCK;
        g.bh[q] = INFINITY, g.bc[q] = -INFINITY, g.bmu0[q] = g.mu[t0], g.bmu1[q] = g.mu[t0 + e - 1];
        for (int t = 0; t < e; t++) {
          if (g.h[t0 + t] < g.bh[q]) g.bh[q] = g.h[t0 + t];
          if (g.cc[t0 + t] > g.bc[q]) g.bc[q] = g.cc[t0 + t];
        }
      }
    }
    KN_ASSERT(slot <= g.nb);
  }
  kn_pool_run(pool, group_task, &g);
  free(sw), free(md), free(sp), free(band);
  double logm = log((double)m);
  for (int j = 0; j < D; j++) {
    double s = 0;
    for (int t = 0; t < S; t++) s += g.out[(size_t)j * S + t] - logm;
    H[j] = -s / S;
  }
  return KNOBS_OK;
}

/* parse the factor subset: names or indices, comma separated */
static knobs_status parse_subset(const kn_mctx *c, int *use) {
  int K = c->K;
  const char *spec = c->o->mig_sampled_factors;
  if (!spec || !*spec || !strcmp(spec, "all")) {
    for (int k = 0; k < K; k++) use[k] = 1;
    return KNOBS_OK;
  }
  for (int k = 0; k < K; k++) use[k] = 0;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = -1;
    for (int k = 0; k < K; k++)
      if (c->fname && !strcmp(c->fname[k], t)) found = k;
    if (found < 0) {
      char *end;
      long v = strtol(t, &end, 10);
      if (!*end && end != t && v >= 0 && v < K) found = (int)v;
    }
    if (found < 0) return kn_err(KNOBS_ERR_ARG, "mig_sampled: no factor '%s' (give names or indices 0..%d)", t, K - 1);
    use[found] = 1;
  }
  return KNOBS_OK;
}

knobs_status kn_mig_sampled_rows(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  size_t nd = (size_t)r->n * c->D;
  double *zs = malloc(sizeof(double) * nd);
  if (!zs) return kn_err(KNOBS_ERR_NOMEM, "mig_sampled: cannot allocate %d samples", r->n);
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  for (size_t q = 0; q < nd; q++) zs[q] = r->z[q] + exp(0.5 * r->lv[q]) * kn_rng_normal(&rng);
  knobs_status s = kn_mig_sampled_core(c, zs, &rng, out);
  free(zs);
  return s;
}

knobs_status kn_mig_sampled_core(const kn_mctx *c, const double *zs, kn_rng *rngp, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, n = r->n, S = c->o->mig_sampled_samples;
  int use[KN_MAX_K];
  knobs_status s = parse_subset(c, use);
  if (s) return s;
  int Smax = S < n ? S : n;
  int *rows = malloc(sizeof(int) * (size_t)n), *sorted = malloc(sizeof(int) * (size_t)n);
  size_t nb = (size_t)(n + BLOCK - 1) / BLOCK + NSEG; /* block slots a dimension */
  double *work = malloc(sizeof(double) * ((size_t)3 * D * n + (size_t)(1 + NSEG) * D + (size_t)3 * Smax * D + 4 * D * nb) +
                        sizeof(comp) * (size_t)n);
  int simd = !c->plain && have_avx512();
  double *Hm = malloc(sizeof(double) * (size_t)D), *Hc = calloc((size_t)K * D, sizeof(double));
  double *Hv = malloc(sizeof(double) * (size_t)D), *mi = calloc((size_t)K * D, sizeof(double));
  double *gap = calloc((size_t)K, sizeof(double));
  int *off = malloc(sizeof(int) * (KN_MAX_CLASSES + 1));
  if (!rows || !sorted || !work || !Hm || !Hc || !Hv || !mi || !gap || !off) {
    s = kn_err(KNOBS_ERR_NOMEM, "mig_sampled: cannot allocate for %d rows", n);
    goto done;
  }
  kn_rng rng = *rngp;
  for (int i = 0; i < n; i++) rows[i] = i;
  s = group_entropy(c->pool, r, D, zs, rows, n, Smax, &rng, Hm, work, simd, !c->plain);
  if ((s = s ? s : kn_progress(c, "mig_sampled", 1, 1 + K))) goto done;
  double sum = 0;
  int nused = 0;
  for (int k = 0; k < K; k++) {
    if (!use[k]) continue;
    int nc = c->ncls[k];
    memset(off, 0, sizeof(int) * (size_t)(nc + 1));
    for (int i = 0; i < n; i++) off[r->y[(size_t)i * K + k] + 1]++;
    for (int v = 0; v < nc; v++) off[v + 1] += off[v];
    int present = 0;
    for (int v = 0; v < nc; v++) present += off[v + 1] > off[v];
    int *fill = rows; /* reuse as the fill pointer per class */
    for (int v = 0; v < nc; v++) fill[v] = off[v];
    for (int i = 0; i < n; i++) sorted[fill[r->y[(size_t)i * K + k]]++] = i;
    for (int v = 0; v < nc; v++) {
      int m = off[v + 1] - off[v];
      if (!m) continue;
      s = group_entropy(c->pool, r, D, zs, sorted + off[v], m, S < m ? S : m, &rng, Hv, work, simd, !c->plain);
      if (s) goto done;
      for (int j = 0; j < D; j++) Hc[(size_t)k * D + j] += (double)m / n * Hv[j];
    }
    /* sort MI over codes descending, clamp at 0, normalise by log(values) */
    double m1 = -INFINITY, m2 = -INFINITY;
    for (int j = 0; j < D; j++) {
      double v = Hm[j] - Hc[(size_t)k * D + j];
      mi[(size_t)k * D + j] = v;
      if (v > m1) {
        m2 = m1;
        m1 = v;
      } else if (v > m2) {
        m2 = v;
      }
    }
    double nv = c->data ? c->data->info.factor_sizes[c->fmap[k]] : present;
    m1 = m1 > 0 ? m1 : 0;
    m2 = m2 > 0 ? m2 : 0;
    gap[k] = (m1 - m2) / log(nv);
    sum += gap[k];
    nused++;
    if ((s = kn_progress(c, "mig_sampled", 2 + k, 1 + K))) goto done;
  }
  KN_ASSERT(nused > 0);
  kn_json_num(out, "mig_sampled", sum / nused);
  kn_json_vec(out, "per_factor", gap, K);
  kn_json_ivec(out, "factors_scored", use, K);
  kn_json_vec(out, "marginal_entropies", Hm, D);
  kn_json_mat(out, "conditional_entropies", Hc, K, D);
  kn_json_mat(out, "mutual_info", mi, K, D);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "num_points", n);
  kn_json_num(p, "samples", S);
done:
  free(rows), free(sorted), free(work), free(Hm), free(Hc), free(Hv), free(mi), free(gap), free(off);
  return s;
}

/* On a dataset: the posteriors of the whole dataset (Chen's definition; grid datasets) or of
 * mig_sampled_points random observations. */
knobs_status kn_mig_sampled_data(const kn_mctx *c, cJSON *out) {
  knobs_data *d = c->data;
  const knobs_encoder *e = c->enc;
  int D = c->D, K = c->K, KD = d->info.K;
  int whole = c->o->mig_sampled_points <= 0;
  if (whole && !d->grid)
    return kn_err(KNOBS_ERR_ARG, "mig_sampled: %s is not a full factor grid; set option "
                  "'mig_sampled_points' to a number of points", d->info.name);
  if (whole && d->info.n > 4000000)
    return kn_err(KNOBS_ERR_ARG, "mig_sampled: %s has %lld observations; set option "
                  "'mig_sampled_points' to a number of points", d->info.name, (long long)d->info.n);
  int n = whole ? (int)d->info.n : c->o->mig_sampled_points;
  int B = e->batch > 0 ? e->batch : 512;
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  float *obs = malloc(sizeof(float) * per * (size_t)B), *mf = malloc(sizeof(float) * (size_t)B * D);
  float *lf = malloc(sizeof(float) * (size_t)B * D);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)n * KD), *y = malloc(sizeof(int32_t) * (size_t)n * K);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
  double *z = malloc(sizeof(double) * (size_t)n * D), *lv = malloc(sizeof(double) * (size_t)n * D);
  double *yv = malloc(sizeof(double) * (size_t)n * K);
  knobs_status s = KNOBS_OK;
  if (!obs || !mf || !lf || !f || !y || !idx || !z || !lv || !yv) {
    s = kn_err(KNOBS_ERR_NOMEM, "mig_sampled: cannot allocate the posteriors of %d observations", n);
    goto done;
  }
  if (!whole) {
    kn_rng rng;
    kn_rng_seed(&rng, c->o->seed, c->stream + 1);
    kn_data_sample_factors(d, &rng, n, f);
  }
  double t0 = kn_now();
  int table = c->grid && c->grid->logvar; /* the posteriors from the grid code table */
  for (int i = 0; i < n; i += B) {
    int b = n - i < B ? n - i : B;
    if (table) { /* no rendering, no encoding */
      for (int t = 0; whole && t < b; t++) knobs_data_factors_of(d, i + t, f + (size_t)(i + t) * KD);
      kn_grid_lookup(c, f + (size_t)i * KD, b, mf, lf);
    } else {
      if (whole) {
        for (int t = 0; t < b; t++) idx[t] = i + t;
        s = knobs_data_get(d, idx, b, obs, f + (size_t)i * KD);
      } else {
        s = knobs_data_render(d, f + (size_t)i * KD, b, obs);
      }
      if (!s) s = e->posterior(e->ctx, obs, b, mf, lf);
    }
    if (s) goto done;
    for (size_t q = 0; q < (size_t)b * D; q++) {
      z[(size_t)i * D + q] = mf[q];
      lv[(size_t)i * D + q] = lf[q];
      if (!isfinite(mf[q]) || !isfinite(lf[q])) {
        s = kn_err(KNOBS_ERR_DATA, "mig_sampled: the encoder returned a non-finite posterior for observation %d", i + (int)(q / D));
        goto done;
      }
    }
    if ((s = kn_progress(c, "mig_sampled (encoding)", i + b, n))) goto done;
  }
  double secs = kn_now() - t0;
  for (int i = 0; i < n; i++)
    for (int k = 0; k < K; k++) {
      y[(size_t)i * K + k] = f[(size_t)i * KD + c->fmap[k]];
      yv[(size_t)i * K + k] = y[(size_t)i * K + k];
    }
  kn_mctx c2 = *c;
  c2.all = (kn_rows){n, z, y, yv, lv};
  s = kn_mig_sampled_rows(&c2, out);
  if (!s) {
    kn_json_num(out, "images_encoded", n);
    kn_json_num(out, "images_per_second", secs > 0 ? n / secs : 0);
    kn_json_str(out, "points", whole ? "the whole dataset" : "random observations");
  }
done:
  free(obs), free(mf), free(lf), free(f), free(y), free(idx), free(z), free(lv), free(yv);
  return s;
}
