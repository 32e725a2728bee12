/* gbt.c: scikit-learn 1.2's GradientBoostingClassifier with its defaults (the classifier of
 * DCI), one per factor, written for speed but split for split the same trees:
 *   - features cast to float32 (scikit-learn's DTYPE); labels mapped to the sorted classes
 *     present in the training rows;
 *   - init: the class priors clipped to [eps32, 1 - eps32]: log p_c (K > 2) or log(p1/p0);
 *   - per stage and class c (one tree when K == 2), residual r = y_c - softmax(raw)_c (or
 *     y - expit(raw)), computed from the raw predictions at the start of the stage;
 *   - a regression tree on r: criterion friedman_mse (proxy (n_r s_l - n_l s_r)^2/(n_l n_r)),
 *     best splitter, max_depth, min_samples_leaf 1, a node is a leaf if its MSE impurity is
 *     <= DBL_EPSILON; candidate positions only where the next sorted value exceeds the
 *     previous by more than 1e-7 in float32 arithmetic (FEATURE_THRESHOLD); threshold the
 *     midpoint a/2 + b/2 in double; ties between features go to the first in a random feature
 *     order per node (scikit-learn draws one; ours comes from our seed);
 *   - leaf values by one Newton step: sum r / sum (y - r)(1 - y + r), times (K-1)/K for K > 2;
 *     raw += learning_rate * leaf value;
 *   - feature importances: per tree the MSE impurity decrease sum w*imp - w_l*imp_l -
 *     w_r*imp_r per feature / n, averaged over trees that split, normalised to sum 1;
 *   - predictions: argmax of the class probabilities (first on ties).
 * How it is fast: features are presorted once; a node's samples sorted by every feature are
 * kept as index lists, split stably at each level; a split search is a prefix sum and a
 * vectorised pass over proxies; the root of every class's tree of one factor is searched in
 * one pass vectorised over classes (the trees share their root samples); the last level's
 * nodes are searched from their parent's lists, both children at once, without writing lists.
 * The trees of one stage are independent and run in parallel, each owning its column. Where
 * the build has AVX-512 and max_depth <= 3, gbt_lanes.c grows them eight classes at a time
 * instead, the same trees bit for bit (opts.plain keeps this path, for the tests).
 * Sums are taken in a different order than scikit-learn's per-node sort and proxies compared
 * without its division: results agree to rounding, and differ only where two splits tie to
 * within rounding, which scikit-learn itself breaks at random (random_state is unset in the
 * reference). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "metrics/gbt.h"

typedef struct {
  float v;
  int32_t i;
} vi_pair;

/* ---- one regression tree on the residual column c of factor fit f ----------------------- */

/* The best split of a node whose samples, sorted by one feature, are l[0..m): the first
 * position k (left = l[0..k)) with the largest friedman proxy (n_r s_l - n_l s_r)^2/(n_l n_r)
 * among those where the value rises by more than FEATURE_THRESHOLD in float32 arithmetic
 * (v_k > v_{k-1} + 1e-7f). The prefix sums run as four interleaved chains and the proxies
 * eight at a time; sums and proxies agree with scikit-learn's sequential ones to rounding. */
static void scan_node(const int32_t *restrict l, const float *restrict x, int m, const double *restrict res, double W,
                      double tot, double *restrict cum, float *restrict vb, double *bp, float *blo,
                      float *bhi) {
  /* gather and prefix sums: cum[k] = r_0 + ... + r_k */
  int q = m / 4;
  double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (int k = 0; k < q; k++) {
    int i0 = l[k], i1 = l[k + q], i2 = l[k + 2 * q], i3 = l[k + 3 * q];
    vb[k] = x[i0], vb[k + q] = x[i1], vb[k + 2 * q] = x[i2], vb[k + 3 * q] = x[i3];
    cum[k] = c0 += res[i0];
    cum[k + q] = c1 += res[i1];
    cum[k + 2 * q] = c2 += res[i2];
    cum[k + 3 * q] = c3 += res[i3];
  }
  for (int k = 4 * q; k < m; k++) vb[k] = x[l[k]], cum[k] = c3 += res[l[k]];
  double o1 = c0, o2 = c0 + c1, o3 = o2 + c2;
  for (int k = q; k < 2 * q; k++) cum[k] += o1;
  for (int k = 2 * q; k < 3 * q; k++) cum[k] += o2;
  for (int k = 3 * q; k < m; k++) cum[k] += o3;
  /* proxies at k = 1..m-1 */
  kn_v8d zero = {0}, bestv = zero - INFINITY;
  kn_v8l bestk = {0}, lane = {0, 1, 2, 3, 4, 5, 6, 7};
  const kn_v8f thr = {1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f};
  int k = 1;
  for (; k + 8 <= m; k += 8) {
    kn_v8f v, pv;
    kn_v8d sl;
    memcpy(&v, vb + k, sizeof v);
    memcpy(&pv, vb + k - 1, sizeof pv);
    memcpy(&sl, cum + k - 1, sizeof sl);
    kn_v8l valid = __builtin_convertvector((kn_v8i)(v > pv + thr), kn_v8l);
    kn_v8l kk = lane + k;
    kn_v8d wl = __builtin_convertvector(kk, kn_v8d), wr = W - wl;
    kn_v8d diff = wr * sl - wl * (tot - sl), prox = diff * diff / (wl * wr);
    kn_v8l up = (kn_v8l)(prox > bestv) & valid;
    bestv = (kn_v8d)(((kn_v8l)prox & up) | ((kn_v8l)bestv & ~up));
    bestk = (kk & up) | (bestk & ~up);
  }
  double best = -INFINITY;
  int bk = 0;
  for (int u = 0; u < 8; u++) /* the first position among the lanes' bests */
    if (bestv[u] > best || (bestv[u] == best && best > -INFINITY && bestk[u] < bk)) {
      best = bestv[u];
      bk = (int)bestk[u];
    }
  for (; k < m; k++) {
    float lim = vb[k - 1] + 1e-7f;
    if (!(vb[k] > lim)) continue;
    double wl = k, wr = W - wl, sl = cum[k - 1], diff = wr * sl - wl * (tot - sl), prox = diff * diff / (wl * wr);
    if (prox > best) {
      best = prox;
      bk = k;
    }
  }
  *bp = best;
  *blo = best > -INFINITY ? vb[bk - 1] : 0;
  *bhi = best > -INFINITY ? vb[bk] : 0;
}

/* The best splits of both children of a node at once, from the node's own sorted list (so
 * the children's lists need not be written): used for the last level that splits. Each
 * element goes to its child (gl: 1 = left) branch-free; the two children's scans are those
 * of scan_node, interleaved. */
static void scan_children(const int32_t *restrict l, const float *restrict x, int a, int b,
                          const double *restrict res, const uint8_t *restrict gl, const double *W,
                          const double *tot, double *bp, float *blo, float *bhi) {
  double s0 = 0, s1 = 0, c0 = 0, c1 = 0, best[2] = {-INFINITY, -INFINITY};
  float p0 = 0, p1 = 0, lo[2] = {0, 0}, hi[2] = {0, 0};
  for (int j = a; j < b; j++) {
    int i = l[j], gg = gl[i];
    float v = x[i];
    double r = res[i];
    double sl = gg ? s0 : s1, wl = gg ? c0 : c1, Wn = gg ? W[0] : W[1], tn = gg ? tot[0] : tot[1];
    float pv = gg ? p0 : p1, lim = pv + 1e-7f;
    if (wl > 0 && v > lim) {
      double wr = Wn - wl, diff = wr * sl - wl * (tn - sl), d2 = diff * diff, den = wl * wr;
      int q = !gg;
      if (d2 > best[q] * den) {
        best[q] = d2 / den;
        lo[q] = pv;
        hi[q] = v;
      }
    }
    s0 = gg ? s0 + r : s0;
    s1 = gg ? s1 : s1 + r;
    c0 += gg;
    c1 += 1 - gg;
    p0 = gg ? v : p0;
    p1 = gg ? p1 : v;
  }
  for (int q = 0; q < 2; q++) bp[q] = best[q], blo[q] = lo[q], bhi[q] = hi[q];
}

/* The state of one tree while it grows, level by level. */
typedef struct {
  gbt_ctx *g;
  scratch *s;
  factor_fit *f;
  int c;                /* the residual column (class) the tree fits */
  const double *res;    /* (n) that column */
  gnode *nodes;
  int nn;               /* nodes so far */
  const int32_t *list;  /* the level's sorted lists (D,n) */
  int lists_valid;      /* the level's nodes have their sorted lists (not after a fused scan) */
} tree_state;

/* The best split per feature of each node to split (slot t of s->bestp/lo/hi): copied from a
 * fused scan, from the shared root scan, or scanned from the node's sorted lists. */
static void level_scan(tree_state *ts, const int *split_nodes, int ns, int depth) {
  const presort *P = ts->g->P;
  scratch *s = ts->s;
  const factor_fit *f = ts->f;
  int n = P->n, D = P->D, c = ts->c;
  for (int t = 0; t < ns; t++) {
    gnode *nd = &ts->nodes[split_nodes[t]];
    if (nd->pre >= 0) { /* scanned with its sibling from the parent's list */
      memcpy(s->bestp + (size_t)t * D, s->prep + (size_t)nd->pre * D, sizeof(double) * (size_t)D);
      memcpy(s->bestlo + (size_t)t * D, s->prelo + (size_t)nd->pre * D, sizeof(float) * (size_t)D);
      memcpy(s->besthi + (size_t)t * D, s->prehi + (size_t)nd->pre * D, sizeof(float) * (size_t)D);
      continue;
    }
    if (depth == 0 && f->rootp) { /* the shared root scan */
      for (int ft = 0; ft < D; ft++) {
        int kk = f->rootk[(size_t)ft * f->nt + c];
        const int32_t *sl = P->sorted + (size_t)ft * n;
        const float *xc = P->Xc + (size_t)ft * n;
        s->bestp[ft] = f->rootp[(size_t)ft * f->nt + c];
        s->bestlo[ft] = kk > 0 ? xc[sl[kk - 1]] : 0;
        s->besthi[ft] = kk > 0 ? xc[sl[kk]] : 0;
      }
      continue;
    }
    for (int ft = 0; ft < D; ft++)
      scan_node(ts->list + (size_t)ft * n + nd->start, P->Xc + (size_t)ft * n, nd->end - nd->start, ts->res, nd->w,
                nd->sum, s->cum, s->vb, s->bestp + (size_t)t * D + ft, s->bestlo + (size_t)t * D + ft,
                s->besthi + (size_t)t * D + ft);
  }
}

int kn_gbt_choose(kn_rng *rng, int *perm, const double *bp, int D) {
  kn_rng_permutation(rng, perm, D);
  int bf = -1;
  double best = -INFINITY;
  for (int q = 0; q < D; q++) {
    int ft = perm[q];
    if (bp[ft] > best) {
      best = bp[ft];
      bf = ft;
    }
  }
  return bf;
}

double kn_gbt_threshold(float lo, float hi) {
  double a = lo, b = hi, thr = a / 2.0 + b / 2.0;
  return thr == b || isinf(thr) ? a : thr;
}

/* Split node nd (slot t) on its lists: left if X <= thr, the children's sums as
 * scikit-learn's criterion takes them (right = total - left); then either the children's
 * splits straight from this node's lists (fuse), or the children's sorted lists into dst. */
static void split_on_lists(tree_state *ts, gnode *nd, int t, int fuse, int last_level, int32_t *dst) {
  const presort *P = ts->g->P;
  scratch *s = ts->s;
  const double *res = ts->res;
  int n = P->n, D = P->D, bf = nd->feature;
  double thr = nd->thr, lsum = 0, lsq = 0;
  int nl = 0;
  const int32_t *bl = ts->list + (size_t)bf * n;
  const float *xb = P->Xc + (size_t)bf * n;
  for (int j = nd->start; j < nd->end; j++) {
    int i = bl[j], left = (double)xb[i] <= thr;
    s->goes_left[i] = (uint8_t)left;
    if (left) {
      lsum += res[i];
      lsq += res[i] * res[i];
      nl++;
    }
    s->node_of[i] = (uint8_t)(left ? nd->left : nd->right);
  }
  gnode *L = &ts->nodes[nd->left], *R = &ts->nodes[nd->right];
  *L = (gnode){.feature = -1, .w = nl, .sum = lsum, .sq = lsq, .start = nd->start, .end = nd->start + nl, .pre = -1};
  *R = (gnode){.feature = -1, .w = nd->w - nl, .sum = nd->sum - lsum, .sq = nd->sq - lsq,
               .start = nd->start + nl, .end = nd->end, .pre = -1};
  kn_gbt_set_imp(L), kn_gbt_set_imp(R);
  s->imp[bf] += nd->w * nd->imp - L->w * L->imp - R->w * R->imp;
  if (fuse) {
    double Wc[2] = {L->w, R->w}, tc[2] = {L->sum, R->sum};
    L->pre = 2 * t, R->pre = 2 * t + 1;
    for (int ft = 0; ft < D; ft++) {
      double bp2[2];
      float lo2[2], hi2[2];
      scan_children(ts->list + (size_t)ft * n, P->Xc + (size_t)ft * n, nd->start, nd->end, res, s->goes_left, Wc, tc,
                    bp2, lo2, hi2);
      for (int q = 0; q < 2; q++) {
        s->prep[(size_t)(2 * t + q) * D + ft] = bp2[q];
        s->prelo[(size_t)(2 * t + q) * D + ft] = lo2[q];
        s->prehi[(size_t)(2 * t + q) * D + ft] = hi2[q];
      }
    }
  } else if (!last_level) /* stable, every feature */
    for (int ft = 0; ft < D; ft++) {
      const int32_t *src = ts->list + (size_t)ft * n;
      int32_t *to = dst + (size_t)ft * n;
      const uint8_t *gl = s->goes_left;
      int pl = nd->start, pr = nd->start + nl, e = nd->end;
      for (int j = nd->start; j < e; j++) { /* branch-free: the side is unpredictable */
        int i = src[j], lft = gl[i];
        int qq = lft ? pl : pr;
        pl += lft;
        pr += 1 - lft;
        to[qq] = i;
      }
    }
}

/* The last level after a fused scan (no lists): one pass over the samples for every node
 * split at this level. */
static void split_without_lists(tree_state *ts, const int *split_nodes, int ns) {
  const presort *P = ts->g->P;
  scratch *s = ts->s;
  gnode *nodes = ts->nodes;
  const double *res = ts->res;
  int n = P->n;
  double ls[MAX_NODES] = {0}, lq[MAX_NODES] = {0}, lw[MAX_NODES] = {0};
  for (int i = 0; i < n; i++) {
    gnode *nd = &nodes[s->node_of[i]];
    if (nd->feature < 0) continue;
    int left = (double)P->Xc[(size_t)nd->feature * n + i] <= nd->thr, id = s->node_of[i];
    if (left) ls[id] += res[i], lq[id] += res[i] * res[i], lw[id] += 1;
    s->node_of[i] = (uint8_t)(left ? nd->left : nd->right);
  }
  for (int t = 0; t < ns; t++) {
    gnode *nd = &nodes[split_nodes[t]];
    if (nd->feature < 0) continue;
    int id = split_nodes[t];
    gnode *L = &nodes[nd->left], *R = &nodes[nd->right];
    L->w = lw[id], L->sum = ls[id], L->sq = lq[id];
    R->w = nd->w - lw[id], R->sum = nd->sum - ls[id], R->sq = nd->sq - lq[id];
    kn_gbt_set_imp(L), kn_gbt_set_imp(R);
    s->imp[nd->feature] += nd->w * nd->imp - L->w * L->imp - R->w * R->imp;
  }
}

/* One level: choose each node's split and make its children; returns the next level's count. */
static int grow_level(tree_state *ts, kn_rng *rng, const int *split_nodes, int ns, int depth, int *next) {
  int D = ts->g->D, nnext = 0, last_level = depth + 1 == ts->g->o->depth, fuse = depth + 2 == ts->g->o->depth;
  int32_t *dst = ts->s->list[depth & 1];
  for (int t = 0; t < ns; t++) {
    int bf = kn_gbt_choose(rng, ts->s->perm, ts->s->bestp + (size_t)t * D, D);
    if (bf < 0) continue;
    gnode *nd = &ts->nodes[split_nodes[t]];
    double thr = kn_gbt_threshold(ts->s->bestlo[(size_t)t * D + bf], ts->s->besthi[(size_t)t * D + bf]);
    int nn = ts->nn;
    nd->feature = bf, nd->thr = thr, nd->left = nn, nd->right = nn + 1;
    ts->nodes[nn] = (gnode){.feature = -1, .pre = -1};
    ts->nodes[nn + 1] = (gnode){.feature = -1, .pre = -1};
    next[nnext++] = nn;
    next[nnext++] = nn + 1;
    ts->nn += 2;
    if (ts->lists_valid) split_on_lists(ts, nd, t, fuse, last_level, dst);
  }
  if (!ts->lists_valid) split_without_lists(ts, split_nodes, ns);
  ts->lists_valid = ts->lists_valid && !fuse;
  ts->list = dst;
  return nnext;
}

/* A regression tree on residual column c of factor fit f, into nodes (nnodes of them);
 * its impurity importances per feature to s->imp. */
static void build_tree(gbt_ctx *g, scratch *s, factor_fit *f, int c, kn_rng *rng, gnode *nodes,
                       int *nnodes) {
  const presort *P = g->P;
  int n = P->n, D = P->D;
  tree_state ts = {.g = g, .s = s, .f = f, .c = c, .res = f->res + (size_t)c * n, .nodes = nodes, .nn = 1,
                   .list = P->sorted, .lists_valid = 1};
  double sum = 0, sq = 0;
  for (int i = 0; i < n; i++) {
    sum += ts.res[i];
    sq += ts.res[i] * ts.res[i];
  }
  memset(s->node_of, 0, (size_t)n);
  nodes[0] = (gnode){.feature = -1, .w = n, .sum = sum, .sq = sq, .start = 0, .end = n, .pre = -1};
  nodes[0].imp = sq / n - (sum / n) * (sum / n);
  int level[1 << MAX_DEPTH], nlevel = 1, next[1 << MAX_DEPTH];
  level[0] = 0;
  memset(s->imp, 0, sizeof(double) * (size_t)D);
  for (int depth = 0; depth < g->o->depth && nlevel; depth++) {
    int split_nodes[1 << MAX_DEPTH], ns = 0;
    for (int t = 0; t < nlevel; t++) {
      gnode *nd = &nodes[level[t]];
      if (nd->w >= 2 && nd->imp > DBL_EPSILON) split_nodes[ns++] = level[t];
    }
    if (!ns) break;
    level_scan(&ts, split_nodes, ns, depth);
    nlevel = grow_level(&ts, rng, split_nodes, ns, depth, next);
    memcpy(level, next, sizeof(int) * (size_t)nlevel);
  }
  for (int ft = 0; ft < D; ft++) s->imp[ft] /= n;
  *nnodes = ts.nn;
}

void kn_gbt_finish_tree(gbt_ctx *g, scratch *s, factor_fit *f, int c, gnode *nodes, int nn,
                        const uint8_t *node_of, int stride) {
  int n = g->P->n, nt = f->nt;
  for (int q = 0; q < nn; q++) s->num[q] = s->den[q] = 0;
  for (int i = 0; i < n; i++) {
    double r = f->res[(size_t)c * n + i];
    double y = nt == 1 ? (f->y[i] == 1) : (f->y[i] == c);
    int q = node_of[(size_t)i * stride];
    s->num[q] += r;
    s->den[q] += (y - r) * (1 - y + r);
  }
  kn_gbt_leaf_values(g, s, f, c, nodes, nn, node_of, stride);
}

void kn_gbt_leaf_values(gbt_ctx *g, scratch *s, factor_fit *f, int c, gnode *nodes, int nn, const uint8_t *node_of,
                        int stride) {
  int n = g->P->n, nt = f->nt, D = g->D;
  double val[MAX_NODES];
  for (int q = 0; q < nn; q++) {
    if (nodes[q].feature >= 0) continue;
    double num = s->num[q];
    if (nt > 1) num *= (nt - 1.0) / nt;
    val[q] = nodes[q].value = fabs(s->den[q]) < 1e-150 ? 0.0 : num / s->den[q];
  }
  double lr = g->o->learning_rate;
  double *raw = f->raw + (size_t)c * n;
  for (int i = 0; i < n; i++) raw[i] += lr * val[node_of[(size_t)i * stride]];
  for (int i = 0; i < f->m; i++) {
    const float *x = g->Xte + (size_t)i * D;
    int q = 0;
    while (nodes[q].feature >= 0) q = (double)x[nodes[q].feature] <= nodes[q].thr ? nodes[q].left : nodes[q].right;
    f->rawte[(size_t)i * nt + c] += lr * nodes[q].value;
  }
}

#define ROOT_PREFETCH 16 /* rows ahead */

/* the root split of eight classes' trees of a shared factor (vector v of its classes), for one
 * feature: one pass over the presorted rows with the classes' prefix sums in one vector */
static void root_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  const presort *P = g->P;
  int n = P->n;
  long lo, hi;
  kn_split(g->RT, tid, nth, &lo, &hi);
  for (long t = lo; t < hi; t++) {
    factor_fit *f = &g->F[g->rtask_k[t]];
    int ft = g->rtask_f[t], v = g->rtask_v[t], nt = f->nt, ntp = (nt + 7) / 8 * 8;
    const int32_t *sl = P->sorted + (size_t)ft * n;
    const float *xs = P->xs + (size_t)ft * n;
    const double *resr = f->resr + 8 * v;
    kn_v8d zero = {0}, cum, sq, tot, best = zero - INFINITY, bsum = zero, bsq = zero, x;
    kn_v8l bk = {0};
    memcpy(&tot, f->tot + 8 * v, sizeof tot);
    memcpy(&x, resr + (size_t)sl[0] * ntp, sizeof x);
    cum = zero + x;
    sq = zero + x * x;
    for (int k = 1; k < n; k++) {
      if (k + ROOT_PREFETCH < n) /* the rows come in the feature's order: random, from L2 or L3 */
        __builtin_prefetch(resr + (size_t)sl[k + ROOT_PREFETCH] * ntp);
      if (xs[k] > xs[k - 1] + 1e-7f) {
        double wl = k, wr = n - wl, inv = P->inv[k]; /* 1 / (wl wr) */
        kn_v8l kk = (kn_v8l){0} + k;
        kn_v8d diff = wr * cum - wl * (tot - cum), prox = diff * diff * inv;
        kn_v8l up = (kn_v8l)(prox > best);
        best = (kn_v8d)(((kn_v8l)prox & up) | ((kn_v8l)best & ~up));
        bk = (kk & up) | (bk & ~up);
        bsum = (kn_v8d)(((kn_v8l)cum & up) | ((kn_v8l)bsum & ~up));
        bsq = (kn_v8d)(((kn_v8l)sq & up) | ((kn_v8l)bsq & ~up));
      }
      memcpy(&x, resr + (size_t)sl[k] * ntp, sizeof x);
      cum += x;
      sq += x * x;
    }
    for (int c = 8 * v; c < nt && c < 8 * v + 8; c++) {
      size_t o = (size_t)ft * nt + c;
      f->rootp[o] = best[c % 8], f->rootk[o] = (int)bk[c % 8];
      f->rootsum[o] = bsum[c % 8], f->rootsq[o] = bsq[c % 8];
    }
  }
}

uint64_t kn_gbt_tree_stream(const gbt_ctx *g, int k, int c) {
  return g->stream + (((uint64_t)k * 8192 + (uint64_t)g->stage) * 2048 + (uint64_t)c);
}

static void tree_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  long lo, hi;
  kn_split(g->T, tid, nth, &lo, &hi);
  gnode nodes[MAX_NODES];
  for (long t = lo; t < hi; t++) {
    int k = g->task_k[t], c = g->task_c[t];
    kn_rng rng;
    kn_rng_seed(&rng, g->seed, kn_gbt_tree_stream(g, k, c));
    int nn;
    build_tree(g, &g->S[tid], &g->F[k], c, &rng, nodes, &nn);
    kn_gbt_finish_tree(g, &g->S[tid], &g->F[k], c, nodes, nn, g->S[tid].node_of, 1);
    memcpy(g->task_imp + (size_t)t * g->D, g->S[tid].imp, sizeof(double) * (size_t)g->D);
    g->task_split[t] = nn > 1;
  }
}

/* residuals of every factor from the raw predictions at the start of the stage, in blocks
 * of 8 samples (the class-major arrays are read 8 contiguous values per class) */
#define RB 8
static void residual_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  int n = g->P->n, nb = (n + RB - 1) / RB;
  long lo, hi;
  kn_split((long)g->K * nb, tid, nth, &lo, &hi);
  double tmp[RB * KN_MAX_CLASSES];
  for (long q = lo; q < hi; q++) {
    factor_fit *f = &g->F[q / nb];
    int i0 = (int)(q % nb) * RB, nt = f->nt, b = n - i0 < RB ? n - i0 : RB;
    for (int c = 0; c < nt; c++)
      for (int u = 0; u < b; u++) tmp[u * nt + c] = f->raw[(size_t)c * n + i0 + u];
    for (int u = 0; u < b; u++) {
      double *raw = tmp + u * nt;
      int yi = f->y[i0 + u];
      if (nt == 1) {
        raw[0] = (yi == 1) - 1.0 / (1.0 + exp(-raw[0]));
        continue;
      }
      double mx = raw[0];
      for (int c = 1; c < nt; c++)
        if (raw[c] > mx) mx = raw[c];
      /* y - exp(raw - logsumexp(raw)) as y - exp(raw - mx) / sum: the same to rounding */
      int c = 0;
      for (; c + 8 <= nt; c += 8) {
        kn_v8d v;
        memcpy(&v, raw + c, sizeof v);
        v -= mx;
        kn_exp8(&v);
        memcpy(raw + c, &v, sizeof v);
      }
      for (; c < nt; c++) raw[c] = kn_exp(raw[c] - mx);
      double se = 0;
      for (c = 0; c < nt; c++) se += raw[c];
      double inv = 1.0 / se;
      for (c = 0; c < nt; c++) raw[c] = (yi == c) - raw[c] * inv;
    }
    for (int c = 0; c < nt; c++)
      for (int u = 0; u < b; u++) f->res[(size_t)c * n + i0 + u] = tmp[u * nt + c];
    if (f->resr) {
      int ntp = (nt + 7) / 8 * 8;
      for (int u = 0; u < b; u++) memcpy(f->resr + (size_t)(i0 + u) * ntp, tmp + u * nt, sizeof(double) * (size_t)nt);
    }
  }
}

static int predict_row(const double *raw, int nt) {
  if (nt == 1) {
    double p1 = 1.0 / (1.0 + exp(-raw[0]));
    return p1 > 1.0 - p1;
  }
  double mx = raw[0];
  for (int c = 1; c < nt; c++)
    if (raw[c] > mx) mx = raw[c];
  double se = 0;
  for (int c = 0; c < nt; c++) se += exp(raw[c] - mx);
  double lse = log(se) + mx, best = -1;
  int arg = 0;
  for (int c = 0; c < nt; c++) {
    double p = exp(raw[c] - lse);
    if (p > best) {
      best = p;
      arg = c;
    }
  }
  return arg;
}

static int cmp_vi(const void *a, const void *b) {
  const vi_pair *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Every buffer of a fit, carved from one arena (see core/arena.h: run once to count, once
 * for real). nt[k]: trees per stage of factor k. */
static void fit_layout(kn_arena *ar, const kn_gbt_job *j, const int *nt, int nth, gbt_ctx *g, presort *P, float **X,
                       vi_pair **pairs) {
  int n = j->n, m = j->m ? j->m : 1, D = j->D, K = j->K;
  size_t nD = (size_t)n * D, slots = (size_t)(1 << MAX_DEPTH) * D;
  *X = P->Xr = kn_arena_take(ar, sizeof(float) * nD);
  g->Xte = kn_arena_take(ar, sizeof(float) * (size_t)m * D);
  P->sorted = kn_arena_take(ar, sizeof(int32_t) * nD);
  P->Xc = kn_arena_take(ar, sizeof(float) * nD);
  P->xs = kn_arena_take(ar, sizeof(float) * nD);
  P->inv = kn_arena_take(ar, sizeof(double) * (size_t)n);
  *pairs = kn_arena_take(ar, sizeof(vi_pair) * (size_t)n);
  g->F = kn_arena_take(ar, sizeof(factor_fit) * (size_t)K);
  g->S = kn_arena_take(ar, sizeof(scratch) * (size_t)nth);
  for (int t = 0; t < nth; t++) {
    scratch S;
    S.node_of = kn_arena_take(ar, (size_t)n);
    S.goes_left = kn_arena_take(ar, (size_t)n);
    for (int b = 0; b < 2; b++) S.list[b] = kn_arena_take(ar, g->lanes ? 0 : sizeof(int32_t) * nD);
    S.cum = kn_arena_take(ar, sizeof(double) * (size_t)(n + 8));
    S.vb = kn_arena_take(ar, sizeof(float) * (size_t)(n + 8));
    S.bestp = kn_arena_take(ar, sizeof(double) * slots);
    S.prep = kn_arena_take(ar, sizeof(double) * slots);
    S.prelo = kn_arena_take(ar, sizeof(float) * slots);
    S.prehi = kn_arena_take(ar, sizeof(float) * slots);
    S.bestlo = kn_arena_take(ar, sizeof(float) * slots);
    S.besthi = kn_arena_take(ar, sizeof(float) * slots);
    S.num = kn_arena_take(ar, sizeof(double) * MAX_NODES);
    S.den = kn_arena_take(ar, sizeof(double) * MAX_NODES);
    S.perm = kn_arena_take(ar, sizeof(int) * (size_t)D);
    S.imp = kn_arena_take(ar, sizeof(double) * (size_t)D);
    size_t ln = g->lanes ? 1 : 0, lslots = ln * (size_t)D * 4 * LANES;
    S.nid = kn_arena_take(ar, ln * (size_t)n * LANES);
    S.lnodes = kn_arena_take(ar, ln * sizeof(gnode) * LANES * LANES_NODES);
    S.lbp = kn_arena_take(ar, sizeof(double) * lslots);
    S.llo = kn_arena_take(ar, sizeof(float) * lslots);
    S.lhi = kn_arena_take(ar, sizeof(float) * lslots);
    S.lbc = kn_arena_take(ar, sizeof(double) * lslots);
    S.lbs = kn_arena_take(ar, sizeof(double) * lslots);
    S.lbq = kn_arena_take(ar, sizeof(double) * lslots);
    S.limp = kn_arena_take(ar, ln * sizeof(double) * LANES * (size_t)D);
    S.lrng = kn_arena_take(ar, ln * sizeof(kn_rng) * LANES);
    if (g->S) g->S[t] = S;
  }
  g->T = g->RT = g->G = 0;
  for (int k = 0; k < K; k++) {
    factor_fit f = {.n = n, .m = j->m, .nt = nt[k]};
    f.y = kn_arena_take(ar, sizeof(int32_t) * (size_t)n);
    f.yte = kn_arena_take(ar, sizeof(int32_t) * (size_t)m);
    f.raw = kn_arena_take(ar, sizeof(double) * (size_t)n * f.nt);
    f.rawte = kn_arena_take(ar, sizeof(double) * (size_t)m * f.nt);
    f.res = kn_arena_take(ar, sizeof(double) * (size_t)n * f.nt);
    f.imp_sum = kn_arena_take(ar, sizeof(double) * (size_t)D);
    int ntp = (f.nt + 7) / 8 * 8;
    if (f.nt >= SHARE_ROOT || g->lanes) /* zeroed: the padding stays 0 */
      f.resr = kn_arena_take(ar, sizeof(double) * (size_t)n * ntp);
    if (f.nt >= SHARE_ROOT) {
      f.rootp = kn_arena_take(ar, sizeof(double) * (size_t)D * f.nt);
      f.rootk = kn_arena_take(ar, sizeof(int) * (size_t)D * f.nt);
      f.rootsum = kn_arena_take(ar, sizeof(double) * (size_t)D * f.nt);
      f.rootsq = kn_arena_take(ar, sizeof(double) * (size_t)D * f.nt);
      f.tot = kn_arena_take(ar, sizeof(double) * (size_t)ntp);
      g->RT += D * (ntp / 8);
    }
    if (g->F) g->F[k] = f;
    g->T += f.nt;
    g->G += g->lanes ? ntp / LANES : 0;
  }
  g->rtask_k = kn_arena_take(ar, sizeof(int) * (size_t)(g->RT + 1));
  g->rtask_f = kn_arena_take(ar, sizeof(int) * (size_t)(g->RT + 1));
  g->rtask_v = kn_arena_take(ar, sizeof(int) * (size_t)(g->RT + 1));
  g->task_k = kn_arena_take(ar, sizeof(int) * (size_t)g->T);
  g->task_c = kn_arena_take(ar, sizeof(int) * (size_t)g->T);
  g->group_k = kn_arena_take(ar, sizeof(int) * (size_t)(g->G + 1));
  g->group_c = kn_arena_take(ar, sizeof(int) * (size_t)(g->G + 1));
  g->group_t = kn_arena_take(ar, sizeof(int) * (size_t)(g->G + 1));
  g->task_imp = kn_arena_take(ar, sizeof(double) * (size_t)g->T * D);
  g->task_split = kn_arena_take(ar, sizeof(int) * (size_t)g->T);
}

/* Classes of factor k present in the train rows: map (ncls) to 0..C-1 or -1, counts. */
static int train_classes(const kn_gbt_job *j, int k, int *map, int64_t *cnt) {
  int nc = j->ncls[k], C = 0;
  memset(cnt, 0, sizeof(int64_t) * (size_t)nc);
  for (int i = 0; i < j->n; i++) cnt[j->ytr[(size_t)i * j->K + k]]++;
  for (int q = 0; q < nc; q++) map[q] = cnt[q] ? C++ : -1;
  KN_ASSERT(C >= 2); /* checked by the driver */
  return C;
}

/* Factor k's labels, and its initial raw predictions: the class priors clipped to
 * [eps32, 1 - eps32], log p_c (K > 2) or log(p1/p0). */
static void init_factor(const kn_gbt_job *j, int k, factor_fit *f) {
  int n = j->n, m = j->m, K = j->K, nc = j->ncls[k], map[KN_MAX_CLASSES];
  int64_t cnt[KN_MAX_CLASSES];
  f->C = train_classes(j, k, map, cnt);
  for (int i = 0; i < n; i++) f->y[i] = map[j->ytr[(size_t)i * K + k]];
  for (int i = 0; i < m; i++) f->yte[i] = map[j->yte[(size_t)i * K + k]];
  double init[KN_MAX_CLASSES];
  const double eps = FLT_EPSILON;
  int c2 = 0;
  for (int q = 0; q < nc; q++) {
    if (!cnt[q]) continue;
    double p = (double)cnt[q] / n;
    p = p < eps ? eps : p > 1 - eps ? 1 - eps : p;
    init[c2++] = p;
  }
  if (f->nt == 1) init[0] = log(init[1] / (1 - init[1]));
  else
    for (int c = 0; c < f->C; c++) init[c] = log(init[c]);
  for (int c = 0; c < f->nt; c++)
    for (int i = 0; i < n; i++) f->raw[(size_t)c * n + i] = init[c];
  for (int i = 0; i < m; i++) memcpy(f->rawte + (size_t)i * f->nt, init, sizeof(double) * (size_t)f->nt);
}

/* Features to float32, presorted per feature; factors initialised; the task lists. */
static void fit_prepare(const kn_gbt_job *j, gbt_ctx *g, presort *P, float *X, vi_pair *pairs) {
  int n = j->n, D = j->D, K = j->K;
  for (size_t q = 0; q < (size_t)n * D; q++) X[q] = (float)j->Xtr[q];
  for (size_t q = 0; q < (size_t)j->m * D; q++) ((float *)g->Xte)[q] = (float)j->Xte[q];
  for (int ft = 0; ft < D; ft++) {
    for (int i = 0; i < n; i++) pairs[i] = (vi_pair){P->Xc[(size_t)ft * n + i] = X[(size_t)i * D + ft], i};
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_vi);
    for (int i = 0; i < n; i++) {
      P->sorted[(size_t)ft * n + i] = pairs[i].i;
      P->xs[(size_t)ft * n + i] = pairs[i].v;
    }
  }
  for (int k = 1; k < n; k++) {
    double wl = k, wr = n - wl;
    P->inv[k] = 1.0 / (wl * wr);
  }
  for (int k = 0; k < K; k++) init_factor(j, k, &g->F[k]);
  for (int k = 0, t = 0; k < K; k++)
    for (int ft = 0; g->F[k].rootp && ft < D; ft++)
      for (int v = 0; v < (g->F[k].nt + 7) / 8; v++, t++) g->rtask_k[t] = k, g->rtask_f[t] = ft, g->rtask_v[t] = v;
  for (int k = 0, t = 0, q = 0; k < K; k++)
    for (int c = 0; c < g->F[k].nt; c++, t++) {
      g->task_k[t] = k, g->task_c[t] = c;
      if (g->lanes && c % LANES == 0) g->group_k[q] = k, g->group_c[q] = c, g->group_t[q++] = t;
    }
}

/* One boosting stage: residuals, the shared root scans, every tree, the importances. */
static void fit_stage(kn_pool *pool, gbt_ctx *g, int stage) {
  int n = g->P->n, K = g->K, D = g->D;
  factor_fit *F = g->F;
  g->stage = stage;
  kn_pool_run(pool, residual_task, g);
  if (g->RT) {
    for (int k = 0; k < K; k++) /* the root sums, summed as build_tree sums them */
      if (F[k].rootp)
        for (int c = 0; c < F[k].nt; c++) {
          double sum = 0;
          const double *rc = F[k].res + (size_t)c * n;
          for (int i = 0; i < n; i++) sum += rc[i];
          F[k].tot[c] = sum;
        }
    kn_pool_run(pool, root_task, g);
  }
  kn_pool_run(pool, g->lanes ? kn_gbt_lanes_task : tree_task, g);
  for (int t = 0; t < g->T; t++) { /* scikit-learn's order: stage by stage, class by class */
    if (!g->task_split[t]) continue;
    factor_fit *f = &F[g->task_k[t]];
    for (int ft = 0; ft < D; ft++) f->imp_sum[ft] += g->task_imp[(size_t)t * D + ft];
    f->relevant++;
  }
}

/* Normalised importances and the train and test accuracies. */
static void fit_finish(const kn_gbt_job *j, const gbt_ctx *g) {
  int n = j->n, m = j->m, D = j->D, K = j->K;
  for (int k = 0; k < K; k++) {
    const factor_fit *f = &g->F[k];
    double tot = 0;
    for (int ft = 0; ft < D; ft++) tot += f->relevant ? f->imp_sum[ft] / f->relevant : 0;
    for (int ft = 0; ft < D; ft++)
      j->importance[(size_t)ft * K + k] = tot > 0 ? fabs(f->imp_sum[ft] / f->relevant / tot) : 0.0;
    int ok = 0;
    double row[KN_MAX_CLASSES];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < f->nt; c++) row[c] = f->raw[(size_t)c * n + i];
      ok += predict_row(row, f->nt) == f->y[i];
    }
    j->acc_train[k] = (double)ok / n;
    ok = 0;
    for (int i = 0; i < m; i++) ok += predict_row(f->rawte + (size_t)i * f->nt, f->nt) == f->yte[i];
    j->acc_test[k] = m ? (double)ok / m : 0.0;
  }
}

knobs_status kn_gbt_fit(const kn_gbt_job *j) {
  KN_ASSERT(j->o->depth >= 1 && j->o->depth <= MAX_DEPTH && j->n >= 1 && j->D >= 1 && j->K >= 1 && j->K <= KN_MAX_K);
  int nth = kn_pool_size(j->pool), nt[KN_MAX_K], map[KN_MAX_CLASSES];
  int64_t cnt[KN_MAX_CLASSES];
  for (int k = 0; k < j->K; k++) {
    int C = train_classes(j, k, map, cnt);
    nt[k] = C == 2 ? 1 : C;
  }
  presort P = {.n = j->n, .D = j->D};
  gbt_ctx g = {.o = j->o, .P = &P, .D = j->D, .K = j->K, .seed = j->seed, .stream = j->stream,
               .lanes = KN_GBT_LANES && !j->o->plain && j->o->depth <= LANES_MAX_DEPTH};
  float *X;
  vi_pair *pairs;
  kn_arena ar = {0};
  fit_layout(&ar, j, nt, nth, &g, &P, &X, &pairs); /* counting */
  knobs_status s = kn_arena_reserve(&ar, "gradient boosting");
  if (s) return kn_err_prefix(s, "%d rows x %d codes", j->n, j->D);
  fit_layout(&ar, j, nt, nth, &g, &P, &X, &pairs);
  fit_prepare(j, &g, &P, X, pairs);
  for (int stage = 0; stage < j->o->stages && !s; stage++) {
    fit_stage(j->pool, &g, stage);
    if (j->progress) s = j->progress(j->progress_ctx, stage + 1, j->o->stages);
  }
  if (!s) fit_finish(j, &g);
  kn_arena_free(&ar);
  return s;
}
