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
  /* out (chains only): the samples left of it, and their residuals' sum and square sum added
   * one by one in order (split_on_lists' sums: the left child is that prefix of the list) */
  double bc[4][LANES], bs[4][LANES], bq[4][LANES];
} lane_scan_job;

/* ns: nodes per lane at this level (1, 2 or 4); chains: scan_node's arithmetic (else
 * scan_children's). Lanes whose sample is in none of the level's nodes change nothing. The
 * arithmetic is gbt.c's, operation for operation (no contraction into FMAs: ISO C mode). */
static inline __attribute__((always_inline)) void lane_scan(lane_scan_job *a, const int ns, const int chains) {
  const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
  const __m256 thr = _mm256_set1_ps(1e-7f);
  const __m256i basev = _mm256_set1_epi32(a->base);
  __m512d S[4], O[4], C[4], B[4], W[4], T[4], Q[4][3], SS[4], SQ[4], BC[4], BS[4], BQ[4];
  __m256 P[4], LO[4], HI[4];
  for (int q = 0; q < ns; q++) {
    S[q] = O[q] = C[q] = SS[q] = SQ[q] = BC[q] = BS[q] = BQ[q] = zero;
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
      if (chains) {
        BC[q] = _mm512_mask_mov_pd(BC[q], u, C[q]);
        BS[q] = _mm512_mask_mov_pd(BS[q], u, SS[q]);
        BQ[q] = _mm512_mask_mov_pd(BQ[q], u, SQ[q]);
        SS[q] = _mm512_mask_add_pd(SS[q], m[q], SS[q], r);
        SQ[q] = _mm512_mask_add_pd(SQ[q], m[q], SQ[q], _mm512_mul_pd(r, r));
        /* a quarter boundary: the next chain starts, offset by the sums so far */
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
    if (chains) _mm512_storeu_pd(a->bc[q], BC[q]), _mm512_storeu_pd(a->bs[q], BS[q]), _mm512_storeu_pd(a->bq[q], BQ[q]);
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

/* The level's splits applied to every lane's samples in one pass in row order: each sample
 * of a split node moves to its child (nid); with sums, the left children's sample counts,
 * residual sums and square sums per slot and lane, added in row order (split_without_lists'
 * sums). feat, thr: per slot and lane the split (feat -1: none). */
static void lane_rows(const presort *P, const double *resr, int ntp, uint8_t *nid, int base, int ns,
                      const int32_t feat[4][LANES], const double thr[4][LANES], int sums, double lw[4][LANES],
                      double ls[4][LANES], double lq[4][LANES]) {
  int n = P->n, D = P->D;
  const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
  const __m256i basev = _mm256_set1_epi32(base), onei = _mm256_set1_epi32(1);
  __m256i F[4];
  __m512d TH[4], W[4], S[4], Q[4];
  __mmask8 act[4];
  __mmask16 rowmask = (__mmask16)((1u << (D < 16 ? D : 16)) - 1);
  for (int q = 0; q < ns; q++) {
    F[q] = _mm256_loadu_si256((const __m256i *)feat[q]);
    act[q] = _mm256_cmpge_epi32_mask(F[q], _mm256_setzero_si256());
    TH[q] = _mm512_loadu_pd(thr[q]);
    W[q] = S[q] = Q[q] = zero;
  }
  for (int i = 0; i < n; i++) {
    __m128i nb = _mm_loadl_epi64((const __m128i *)(nid + (size_t)i * LANES));
    __m256i id = _mm256_cvtepu8_epi32(nb), pos = _mm256_sub_epi32(id, basev), fs = _mm256_setzero_si256();
    __m512d ts = zero;
    __mmask8 m[4], in = 0;
    for (int q = 0; q < ns; q++) {
      m[q] = _mm256_mask_cmpeq_epi32_mask(act[q], pos, _mm256_set1_epi32(q));
      fs = _mm256_mask_mov_epi32(fs, m[q], F[q]);
      ts = _mm512_mask_mov_pd(ts, m[q], TH[q]);
      in |= m[q];
    }
    if (!in) continue;
    /* each lane's value of its node's feature, from the row; left if (double)x <= thr */
    __m256 x;
    if (D <= 16) /* one load and a permute (a gather is slow on some cores) */
      x = _mm512_castps512_ps256(_mm512_permutexvar_ps(_mm512_castsi256_si512(fs),
                                                       _mm512_maskz_loadu_ps(rowmask, P->Xr + (size_t)i * D)));
    else
      x = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), in, fs, P->Xr + (size_t)i * D, 4);
    __mmask8 left = in & _mm512_cmp_pd_mask(_mm512_cvtps_pd(x), ts, _CMP_LE_OQ);
    /* children of node id: 2 id + 1 (left), 2 id + 2 */
    __m256i child = _mm256_add_epi32(_mm256_add_epi32(id, id), onei);
    child = _mm256_mask_add_epi32(child, in & ~left, child, onei);
    id = _mm256_mask_mov_epi32(id, in, child);
    _mm_storel_epi64((__m128i *)(nid + (size_t)i * LANES), _mm256_cvtepi32_epi8(id));
    if (!sums) continue;
    __m512d r = _mm512_loadu_pd(resr + (size_t)i * ntp), rr = _mm512_mul_pd(r, r);
    for (int q = 0; q < ns; q++) {
      __mmask8 lm = m[q] & left;
      W[q] = _mm512_mask_add_pd(W[q], lm, W[q], one);
      S[q] = _mm512_mask_add_pd(S[q], lm, S[q], r);
      Q[q] = _mm512_mask_add_pd(Q[q], lm, Q[q], rr);
    }
  }
  for (int q = 0; q < ns && sums; q++) {
    _mm512_storeu_pd(lw[q], W[q]);
    _mm512_storeu_pd(ls[q], S[q]);
    _mm512_storeu_pd(lq[q], Q[q]);
  }
}

/* kn_gbt_finish_tree's leaf sums for every lane in one pass in row order: per leaf id and lane
 * the residuals and (y - r)(1 - y + r) (y: the row is of the lane's class), into
 * num/den (LANES_NODES, LANES). */
static void lane_leaf_sums(const factor_fit *f, int c0, const uint8_t *nid, int n, uint16_t leaves,
                           double num[LANES_NODES][LANES], double den[LANES_NODES][LANES]) {
  int ntp = (f->nt + 7) / 8 * 8, ids[LANES_NODES], nids = 0;
  for (int q = 0; q < LANES_NODES; q++)
    if (leaves >> q & 1) ids[nids++] = q;
  __m512d N[LANES_NODES], Dn[LANES_NODES];
  for (int t = 0; t < nids; t++) N[t] = Dn[t] = _mm512_setzero_pd();
  /* the lane's class: c0 + u, or class 1 of a binary factor's single tree */
  const __m256i cls = f->nt == 1 ? _mm256_set1_epi32(1) : _mm256_add_epi32(_mm256_set1_epi32(c0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m512d one = _mm512_set1_pd(1.0);
  for (int i = 0; i < n; i++) {
    __m256i id = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(nid + (size_t)i * LANES)));
    __m512d r = _mm512_loadu_pd(f->resr + (size_t)i * ntp + c0);
    __m512d y = _mm512_maskz_mov_pd(_mm256_cmpeq_epi32_mask(cls, _mm256_set1_epi32(f->y[i])), one);
    __m512d term = _mm512_mul_pd(_mm512_sub_pd(y, r), _mm512_add_pd(_mm512_sub_pd(one, y), r));
    for (int t = 0; t < nids; t++) {
      __mmask8 m = _mm256_cmpeq_epi32_mask(id, _mm256_set1_epi32(ids[t]));
      N[t] = _mm512_mask_add_pd(N[t], m, N[t], r);
      Dn[t] = _mm512_mask_add_pd(Dn[t], m, Dn[t], term);
    }
  }
  for (int q = 0; q < LANES_NODES; q++)
    for (int u = 0; u < LANES; u++) num[q][u] = den[q][u] = 0;
  for (int t = 0; t < nids; t++) _mm512_storeu_pd(num[ids[t]], N[t]), _mm512_storeu_pd(den[ids[t]], Dn[t]);
}

/* Node nd split, its children's counts and sums given for the left one: both children, and
 * the impurity decrease to the feature's importance. */
static void make_children(gnode *nodes, int id, double cnt, double lsum, double lsq, double *imp) {
  gnode *nd = &nodes[id], *Ln = &nodes[nd->left], *Rn = &nodes[nd->right];
  *Ln = (gnode){.feature = -1, .w = cnt, .sum = lsum, .sq = lsq, .pre = -1};
  *Rn = (gnode){.feature = -1, .w = nd->w - cnt, .sum = nd->sum - lsum, .sq = nd->sq - lsq, .pre = -1};
  kn_gbt_set_imp(Ln), kn_gbt_set_imp(Rn);
  imp[nd->feature] += nd->w * nd->imp - Ln->w * Ln->imp - Rn->w * Rn->imp;
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
    /* the best split per lane, slot and feature into lbp/llo/lhi (LANES, 4, D), and at
     * levels with sorted sums the left child's count and sums (lbc/lbs/lbq) */
    if (L == 0 && f->rootp) { /* the shared root scan */
      for (int u = 0; u < nl; u++)
        for (int ft = 0; ft < D; ft++) {
          size_t o = (size_t)ft * f->nt + c0 + u, t = (size_t)u * 4 * D + ft;
          int kk = f->rootk[o];
          const float *xs = P->xs + (size_t)ft * n;
          s->lbp[t] = f->rootp[o];
          s->llo[t] = kk > 0 ? xs[kk - 1] : 0;
          s->lhi[t] = kk > 0 ? xs[kk] : 0;
          s->lbc[t] = kk, s->lbs[t] = f->rootsum[o], s->lbq[t] = f->rootsq[o];
        }
    } else {
      lane_scan_job job = {.n = n, .resr = f->resr + c0, .ntp = ntp, .nid = s->nid, .base = base}, *a = &job;
      for (int q = 0; q < ns; q++)
        for (int u = 0; u < LANES; u++) {
          const gnode *nd = &nodes[u][base + q];
          int qq = (int)nd->w / 4;
          a->W[q][u] = nd->w, a->T[q][u] = nd->sum;
          a->Q[q][0][u] = qq, a->Q[q][1][u] = 2 * qq, a->Q[q][2][u] = 3 * qq;
        }
      for (int ft = 0; ft < D; ft++) {
        a->sl = P->sorted + (size_t)ft * n, a->xs = P->xs + (size_t)ft * n;
        lane_scan_any(a, ns, sorted_sums);
        for (int u = 0; u < nl; u++)
          for (int q = 0; q < ns; q++) {
            size_t o = ((size_t)u * 4 + q) * D + ft;
            s->lbp[o] = a->bp[q][u], s->llo[o] = a->lo[q][u], s->lhi[o] = a->hi[q][u];
            if (sorted_sums) s->lbc[o] = a->bc[q][u], s->lbs[o] = a->bs[q][u], s->lbq[o] = a->bq[q][u];
          }
      }
    }
    /* each lane's splits, in node order, as gbt.c's grow_level makes them */
    int32_t feat[4][LANES];
    double thr[4][LANES], lw[4][LANES], ls[4][LANES], lq[4][LANES];
    for (int q = 0; q < 4; q++)
      for (int u = 0; u < LANES; u++) feat[q][u] = -1, thr[q][u] = 0;
    for (int u = 0; u < nl; u++) {
      for (int q = 0; q < ns; q++) {
        if (!split[u][q]) continue;
        size_t o = ((size_t)u * 4 + q) * D;
        int id = base + q, bf = kn_gbt_choose(&s->lrng[u], s->perm, s->lbp + o, D);
        if (bf < 0) continue;
        gnode *nd = &nodes[u][id];
        nd->feature = feat[q][u] = bf;
        nd->thr = thr[q][u] = kn_gbt_threshold(s->llo[o + bf], s->lhi[o + bf]);
        nd->left = 2 * id + 1, nd->right = 2 * id + 2;
        if (sorted_sums) make_children(nodes[u], id, s->lbc[o + bf], s->lbs[o + bf], s->lbq[o + bf], s->limp + (size_t)u * D);
      }
    }
    lane_rows(P, f->resr + c0, ntp, s->nid, base, ns, (const int32_t(*)[LANES])feat, (const double(*)[LANES])thr,
              !sorted_sums, lw, ls, lq);
    for (int u = 0; u < nl && !sorted_sums; u++) /* split_without_lists' children, in node order */
      for (int q = 0; q < ns; q++)
        if (feat[q][u] >= 0) make_children(nodes[u], base + q, lw[q][u], ls[q][u], lq[q][u], s->limp + (size_t)u * D);
  }
  uint16_t leaves = 0;
  for (int u = 0; u < nl; u++)
    for (int q = 0; q < nn; q++) leaves |= (uint16_t)((nodes[u][q].feature < 0 && nodes[u][q].w > 0) << q);
  double num[LANES_NODES][LANES], den[LANES_NODES][LANES];
  lane_leaf_sums(f, c0, s->nid, n, leaves, num, den);
  for (int u = 0; u < nl; u++) {
    double *imp = s->limp + (size_t)u * D;
    for (int ft = 0; ft < D; ft++) imp[ft] /= n;
    for (int q = 0; q < nn; q++) s->num[q] = num[q][u], s->den[q] = den[q][u];
    kn_gbt_leaf_values(g, s, f, c0 + u, nodes[u], nn, s->nid + u, LANES);
    memcpy(g->task_imp + (size_t)(t0 + u) * D, imp, sizeof(double) * (size_t)D);
    g->task_split[t0 + u] = nodes[u][0].feature >= 0;
  }
}

/* A group's cost, about, in passes over the samples: one per level but the root when the factor
 * shares its root scan, and one for the rest (> 0). */
static int group_cost(const gbt_ctx *g, int q) { return g->o->depth + 1 - (g->F[g->group_k[q]].rootp != NULL); }

void kn_gbt_lanes_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  /* contiguous groups of about equal cost per thread (which thread grows a tree changes
   * nothing in it) */
  long total = 0, before = 0;
  for (int q = 0; q < g->G; q++) total += group_cost(g, q);
  for (int q = 0; q < g->G; q++) {
    long mid = 2 * before + group_cost(g, q); /* twice the group's middle, in cost */
    before += group_cost(g, q);
    if (mid * nth >= 2 * total * tid && mid * nth < 2 * total * (tid + 1))
      grow_group(g, &g->S[tid], g->group_k[q], g->group_c[q], g->group_t[q]);
  }
}
#else
void kn_gbt_lanes_task(void *ctx, int tid, int nth) { KN_ASSERT(0); } /* kn_gbt_lanes is 0 */
#endif
