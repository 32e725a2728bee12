/* gbt_lanes.c: the trees of up to eight classes of one factor and stage grown together, one
 * tree per vector lane, when max_depth <= 3 (scikit-learn's default is 3): the same trees,
 * split for split and bit for bit, as gbt.c grows one at a time (tests/test_metrics.c compares
 * the two paths).
 * Why it is faster: gbt.c keeps each node's samples sorted by every feature as index lists,
 * partitioned at each level, and scans them one tree at a time; the scans' prefix sums are a
 * chain of dependent additions, so a tree costs its latency. Here no lists are written: each
 * level of all eight trees is one pass per feature over the presorted samples, in which every
 * lane adds the sample's residual to the running sums of the node the sample is in within
 * that lane's tree (the classes' residuals of a sample are one vector of the row-major
 * residuals). The samples of a node are met in the order of its sorted list, so every sum is
 * the same sum of the same terms in the same order as gbt.c's, and every comparison the same:
 *   - the levels gbt.c scans with scan_node (the root, when the factor does not share the root
 *     scan, and levels 1..max_depth-2): its prefix sums run as four chains over the node's
 *     quarters, each chain then offset by the sums of those before it; the lane keeps, per
 *     node, the running chain sum and the offset, and moves the chain on at the quarter
 *     boundaries; proxy = diff^2 / (n_l n_r), first largest;
 *   - the last level (scan_children in gbt.c): one running sum; the proxy compared as
 *     diff^2 > best * (n_l n_r).
 * The children's sums are then taken per tree as gbt.c takes them: along the split feature's
 * sorted order (levels with lists) or in row order (the last level). Nodes are numbered as a
 * heap (children of i: 2i+1, 2i+2), which changes no arithmetic.
 * Not here: depths above 3 (up to 8 nodes per level; gbt.c grows those). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "metrics/gbt.h"

#ifdef __AVX512F__
#include <immintrin.h>

#define PREFETCH 24 /* samples ahead */

/* One level's scan of one feature, for the nodes base..base+ns-1 (slot q = node - base) of
 * every lane's tree. */
typedef struct {
  const int32_t *sl;   /* (n) the samples sorted by the feature */
  const float *xs;     /* (n) their values */
  int n;
  const double *resr;  /* row i's lanes at resr[i * ntp] */
  int ntp;
  const uint8_t *nid;  /* (n, LANES) */
  int base;
  double W[4][LANES], T[4][LANES]; /* per slot and lane: samples, residual sum of the node */
  double Q[4][3][LANES];           /* scan_node's chain boundaries: m/4, 2(m/4), 3(m/4) */
  double bp[4][LANES];             /* out: best proxy per slot and lane, -inf if none */
  float lo[4][LANES], hi[4][LANES]; /* out: the values either side of it */
} lane_scan_job;

/* ns: nodes per lane at this level (1, 2 or 4); chains: scan_node's arithmetic (else
 * scan_children's). Lanes whose sample is in none of the level's nodes change nothing. The
 * arithmetic is gbt.c's, operation for operation (no contraction into FMAs: ISO C mode). */
static inline __attribute__((always_inline)) void lane_scan(lane_scan_job *a, const int ns, const int chains) {
  const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
  const __m256 thr = _mm256_set1_ps(1e-7f);
  const __m256i basev = _mm256_set1_epi32(a->base);
  __m512d S[4], O[4], C[4], B[4], W[4], T[4], Q[4][3];
  __m256 P[4], LO[4], HI[4];
  for (int q = 0; q < ns; q++) {
    S[q] = O[q] = C[q] = zero;
    B[q] = _mm512_set1_pd(-INFINITY);
    P[q] = LO[q] = HI[q] = _mm256_setzero_ps();
    W[q] = _mm512_loadu_pd(a->W[q]), T[q] = _mm512_loadu_pd(a->T[q]);
    for (int b = 0; b < 3; b++) Q[q][b] = _mm512_loadu_pd(a->Q[q][b]);
  }
  for (int k = 0; k < a->n; k++) {
    int i = a->sl[k];
    if (k + PREFETCH < a->n) { /* the rows come in the feature's order: random, from L2 or L3 */
      int ip = a->sl[k + PREFETCH];
      _mm_prefetch((const char *)(a->resr + (size_t)ip * a->ntp), _MM_HINT_T0);
      _mm_prefetch((const char *)(a->nid + (size_t)ip * LANES), _MM_HINT_T0);
    }
    __m256 vv = _mm256_set1_ps(a->xs[k]);
    __m512d r = _mm512_loadu_pd(a->resr + (size_t)i * a->ntp);
    __m128i nb = _mm_loadl_epi64((const __m128i *)(a->nid + (size_t)i * LANES));
    __m256i pos = _mm256_sub_epi32(_mm256_cvtepu8_epi32(nb), basev);
    __mmask8 m[4], in = 0;
    for (int q = 0; q < ns; q++) {
      m[q] = _mm256_cmpeq_epi32_mask(pos, _mm256_set1_epi32(q));
      in |= m[q];
    }
    /* the state of the node each lane's sample is in */
    __m512d Sc = S[0], Oc = O[0], Cc = C[0], Wc = W[0], Tc = T[0], Bc = B[0];
    __m256 Pc = P[0];
    for (int q = 1; q < ns; q++) {
      Sc = _mm512_mask_mov_pd(Sc, m[q], S[q]), Cc = _mm512_mask_mov_pd(Cc, m[q], C[q]);
      Wc = _mm512_mask_mov_pd(Wc, m[q], W[q]), Tc = _mm512_mask_mov_pd(Tc, m[q], T[q]);
      Bc = _mm512_mask_mov_pd(Bc, m[q], B[q]), Pc = _mm256_mask_mov_ps(Pc, m[q], P[q]);
      if (chains) Oc = _mm512_mask_mov_pd(Oc, m[q], O[q]);
    }
    /* a candidate: the node's samples so far to the left, if the value rises past them */
    __mmask8 valid = in & _mm512_cmp_pd_mask(Cc, one, _CMP_GE_OQ) &
                     _mm256_cmp_ps_mask(vv, _mm256_add_ps(Pc, thr), _CMP_GT_OQ);
    __m512d sl = chains ? _mm512_add_pd(Sc, Oc) : Sc;
    __m512d wr = _mm512_sub_pd(Wc, Cc);
    __m512d diff = _mm512_sub_pd(_mm512_mul_pd(wr, sl), _mm512_mul_pd(Cc, _mm512_sub_pd(Tc, sl)));
    __m512d d2 = _mm512_mul_pd(diff, diff), den = _mm512_mul_pd(Cc, wr), nbest = _mm512_div_pd(d2, den);
    __mmask8 up = chains ? valid & _mm512_cmp_pd_mask(nbest, Bc, _CMP_GT_OQ)
                         : valid & _mm512_cmp_pd_mask(d2, _mm512_mul_pd(Bc, den), _CMP_GT_OQ);
    for (int q = 0; q < ns; q++) {
      __mmask8 u = m[q] & up;
      B[q] = _mm512_mask_mov_pd(B[q], u, nbest);
      LO[q] = _mm256_mask_mov_ps(LO[q], u, P[q]);
      HI[q] = _mm256_mask_mov_ps(HI[q], u, vv);
      if (chains) { /* a quarter boundary: the next chain starts, offset by the sums so far */
        __mmask8 bnd = _mm512_mask_cmp_pd_mask(m[q], C[q], Q[q][0], _CMP_EQ_OQ) |
                       _mm512_mask_cmp_pd_mask(m[q], C[q], Q[q][1], _CMP_EQ_OQ) |
                       _mm512_mask_cmp_pd_mask(m[q], C[q], Q[q][2], _CMP_EQ_OQ);
        O[q] = _mm512_mask_add_pd(O[q], bnd, O[q], S[q]);
        S[q] = _mm512_mask_mov_pd(S[q], bnd, zero);
      }
      S[q] = _mm512_mask_add_pd(S[q], m[q], S[q], r);
      C[q] = _mm512_mask_add_pd(C[q], m[q], C[q], one);
      P[q] = _mm256_mask_mov_ps(P[q], m[q], vv);
    }
  }
  for (int q = 0; q < ns; q++) {
    _mm512_storeu_pd(a->bp[q], B[q]);
    _mm256_storeu_ps(a->lo[q], LO[q]);
    _mm256_storeu_ps(a->hi[q], HI[q]);
  }
}

static void lane_scan_any(lane_scan_job *a, int ns, int chains) {
  if (chains) {
    if (ns == 1) lane_scan(a, 1, 1);
    else if (ns == 2) lane_scan(a, 2, 1);
    else lane_scan(a, 4, 1);
  } else {
    if (ns == 2) lane_scan(a, 2, 0);
    else lane_scan(a, 4, 0);
  }
}

/* The trees of classes c0..c0+nl-1 of factor k at the current stage, task t0 onwards. */
static void grow_group(gbt_ctx *g, scratch *s, int k, int c0, int t0) {
  const presort *P = g->P;
  factor_fit *f = &g->F[k];
  int n = P->n, D = P->D, depth = g->o->depth, nl = f->nt - c0 < LANES ? f->nt - c0 : LANES;
  int ntp = (f->nt + 7) / 8 * 8, nn = (1 << (depth + 1)) - 1;
  gnode(*nodes)[LANES_NODES] = (gnode(*)[LANES_NODES])s->lnodes;
  for (int u = 0; u < LANES; u++)
    for (int q = 0; q < LANES_NODES; q++) nodes[u][q] = (gnode){.feature = -1, .pre = -1};
  for (int u = 0; u < nl; u++) {
    const double *res = f->res + (size_t)(c0 + u) * n;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
      sum += res[i];
      sq += res[i] * res[i];
    }
    nodes[u][0] = (gnode){.feature = -1, .w = n, .sum = sum, .sq = sq, .pre = -1};
    nodes[u][0].imp = sq / n - (sum / n) * (sum / n);
    kn_rng_seed(&s->lrng[u], g->seed, kn_gbt_tree_stream(g, k, c0 + u));
  }
  memset(s->limp, 0, sizeof(double) * LANES * (size_t)D);
  for (int i = 0; i < n; i++)
    for (int u = 0; u < LANES; u++) s->nid[(size_t)i * LANES + u] = u < nl ? 0 : 255;
  for (int L = 0; L < depth; L++) {
    int base = (1 << L) - 1, ns = 1 << L, any = 0, sorted_sums = L == 0 || L <= depth - 2;
    int split[LANES][4] = {{0}};
    for (int u = 0; u < nl; u++)
      for (int q = 0; q < ns; q++) {
        const gnode *nd = &nodes[u][base + q];
        any |= split[u][q] = nd->w >= 2 && nd->imp > DBL_EPSILON;
      }
    if (!any) break;
    /* the best split per lane, slot and feature into lbp/llo/lhi (LANES, 4, D) */
    if (L == 0 && f->rootp) { /* the shared root scan */
      for (int u = 0; u < nl; u++)
        for (int ft = 0; ft < D; ft++) {
          int kk = f->rootk[(size_t)ft * f->nt + c0 + u];
          const float *xs = P->xs + (size_t)ft * n;
          s->lbp[(size_t)u * 4 * D + ft] = f->rootp[(size_t)ft * f->nt + c0 + u];
          s->llo[(size_t)u * 4 * D + ft] = kk > 0 ? xs[kk - 1] : 0;
          s->lhi[(size_t)u * 4 * D + ft] = kk > 0 ? xs[kk] : 0;
        }
    } else {
      lane_scan_job a = {.n = n, .resr = f->resr + c0, .ntp = ntp, .nid = s->nid, .base = base};
      for (int q = 0; q < ns; q++)
        for (int u = 0; u < LANES; u++) {
          const gnode *nd = &nodes[u][base + q];
          int qq = (int)nd->w / 4;
          a.W[q][u] = nd->w, a.T[q][u] = nd->sum;
          a.Q[q][0][u] = qq, a.Q[q][1][u] = 2 * qq, a.Q[q][2][u] = 3 * qq;
        }
      for (int ft = 0; ft < D; ft++) {
        a.sl = P->sorted + (size_t)ft * n, a.xs = P->xs + (size_t)ft * n;
        lane_scan_any(&a, ns, sorted_sums);
        for (int u = 0; u < nl; u++)
          for (int q = 0; q < ns; q++) {
            size_t o = ((size_t)u * 4 + q) * D + ft;
            s->lbp[o] = a.bp[q][u], s->llo[o] = a.lo[q][u], s->lhi[o] = a.hi[q][u];
          }
      }
    }
    /* each lane's splits, in node order, as gbt.c's grow_level makes them */
    for (int u = 0; u < nl; u++) {
      const double *res = f->res + (size_t)(c0 + u) * n;
      double *imp = s->limp + (size_t)u * D;
      for (int q = 0; q < ns; q++) {
        if (!split[u][q]) continue;
        size_t o = ((size_t)u * 4 + q) * D;
        int id = base + q, bf = kn_gbt_choose(&s->lrng[u], s->perm, s->lbp + o, D);
        if (bf < 0) continue;
        gnode *nd = &nodes[u][id], *Ln = &nodes[u][2 * id + 1], *Rn = &nodes[u][2 * id + 2];
        nd->feature = bf, nd->thr = kn_gbt_threshold(s->llo[o + bf], s->lhi[o + bf]);
        nd->left = 2 * id + 1, nd->right = 2 * id + 2;
        if (!sorted_sums) continue;
        /* split_on_lists' sums: along the node's samples sorted by the split feature */
        const int32_t *sl = P->sorted + (size_t)bf * n;
        const float *xs = P->xs + (size_t)bf * n;
        double lsum = 0, lsq = 0;
        int cnt = 0;
        double thr = nd->thr;
        uint8_t idl = (uint8_t)nd->left, idr = (uint8_t)nd->right;
        for (int j = 0; j < n; j++) { /* branch-free: both tests are unpredictable; adding
                                         +0.0 leaves a sum that started at +0.0 unchanged */
          int i = sl[j];
          uint8_t *ni = s->nid + (size_t)i * LANES + u;
          int in = *ni == id, left = in & ((double)xs[j] <= thr);
          double r = left ? res[i] : 0.0;
          lsum += r;
          lsq += r * r;
          cnt += left;
          *ni = in ? (left ? idl : idr) : *ni;
        }
        *Ln = (gnode){.feature = -1, .w = cnt, .sum = lsum, .sq = lsq, .pre = -1};
        *Rn = (gnode){.feature = -1, .w = nd->w - cnt, .sum = nd->sum - lsum, .sq = nd->sq - lsq, .pre = -1};
        kn_gbt_set_imp(Ln), kn_gbt_set_imp(Rn);
        imp[bf] += nd->w * nd->imp - Ln->w * Ln->imp - Rn->w * Rn->imp;
      }
      if (sorted_sums) continue;
      /* split_without_lists' sums: in row order, every node of the level at once */
      double ls[LANES_NODES] = {0}, lq[LANES_NODES] = {0}, lw[LANES_NODES] = {0};
      for (int i = 0; i < n; i++) {
        uint8_t *ni = s->nid + (size_t)i * LANES + u;
        const gnode *nd = &nodes[u][*ni];
        if (nd->feature < 0) continue;
        int left = (double)P->Xc[(size_t)nd->feature * n + i] <= nd->thr, id = *ni;
        double r = left ? res[i] : 0.0; /* branch-free, as above */
        ls[id] += r, lq[id] += r * r, lw[id] += left;
        *ni = (uint8_t)(left ? nd->left : nd->right);
      }
      for (int q = 0; q < ns; q++) {
        int id = base + q;
        gnode *nd = &nodes[u][id];
        if (nd->feature < 0) continue;
        gnode *Ln = &nodes[u][nd->left], *Rn = &nodes[u][nd->right];
        *Ln = (gnode){.feature = -1, .w = lw[id], .sum = ls[id], .sq = lq[id], .pre = -1};
        *Rn = (gnode){.feature = -1, .w = nd->w - lw[id], .sum = nd->sum - ls[id], .sq = nd->sq - lq[id], .pre = -1};
        kn_gbt_set_imp(Ln), kn_gbt_set_imp(Rn);
        imp[nd->feature] += nd->w * nd->imp - Ln->w * Ln->imp - Rn->w * Rn->imp;
      }
    }
  }
  for (int u = 0; u < nl; u++) {
    double *imp = s->limp + (size_t)u * D;
    for (int ft = 0; ft < D; ft++) imp[ft] /= n;
    kn_gbt_finish_tree(g, s, f, c0 + u, nodes[u], nn, s->nid + u, LANES);
    memcpy(g->task_imp + (size_t)(t0 + u) * D, imp, sizeof(double) * (size_t)D);
    g->task_split[t0 + u] = nodes[u][0].feature >= 0;
  }
}

void kn_gbt_lanes_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  long lo, hi;
  kn_split(g->G, tid, nth, &lo, &hi);
  for (long q = lo; q < hi; q++) grow_group(g, &g->S[tid], g->group_k[q], g->group_c[q], g->group_t[q]);
}
#else
void kn_gbt_lanes_task(void *ctx, int tid, int nth) { KN_ASSERT(0); } /* kn_gbt_lanes is 0 */
#endif
