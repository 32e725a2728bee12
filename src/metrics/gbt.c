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
 * The trees of one stage are independent and run in parallel, each owning its column.
 * Sums are taken in a different order than scikit-learn's per-node sort and proxies compared
 * without its division: results agree to rounding, and differ only where two splits tie to
 * within rounding, which scikit-learn itself breaks at random (random_state is unset in the
 * reference). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

#define MAX_DEPTH 7 /* node ids fit in uint8 */
#define MAX_NODES ((1 << (MAX_DEPTH + 1)) - 1)
#define SHARE_ROOT 4 /* factors with at least this many trees per stage share the root scan */

typedef struct {
  int feature; /* -1: leaf */
  double thr;
  int left, right;
  double w, sum, sq, imp; /* samples, residual sum, square sum, MSE impurity */
  double value;           /* leaf value */
  int start, end;         /* its samples in the level's sorted lists */
  int pre;                /* >= 0: its best splits were found with its sibling's (scan_children) */
} gnode;

typedef struct {
  float v;
  int32_t i;
} vi_pair;

typedef struct {
  int n, D;
  int32_t *sorted; /* (D,n) samples sorted by value per feature */
  float *Xc;       /* (D,n) the float32 features, column-major */
} presort;

/* per-thread scratch */
typedef struct {
  uint8_t *node_of;  /* (n) current node of each sample */
  uint8_t *goes_left; /* (n) */
  int32_t *list[2];  /* (D,n) x2 the samples of each node sorted by each feature */
  double *cum;       /* (n + 8) prefix sums of the residuals along one list */
  float *vb;         /* (n + 8) the values along one list */
  double *bestp;     /* (slots, D) best proxy per node and feature */
  double *prep;      /* (slots, D) the same for the next level's nodes (scan_children) */
  float *prelo, *prehi;
  float *bestlo, *besthi;
  double *num, *den; /* (MAX_NODES) leaf sums */
  int *perm;         /* (D) */
  double *imp;       /* (D) importances of the tree */
} scratch;

typedef struct {
  int n, m, C, nt;      /* rows, test rows, classes present in train, trees per stage */
  int32_t *y;           /* (n) class 0..C-1 */
  int32_t *yte;         /* (m) class, -1 if not a train class */
  double *raw, *rawte;  /* (nt,n) class-major, (m,nt) */
  double *res;          /* (nt,n) residuals of the current stage, class-major: each tree's
                           column is contiguous */
  double *imp_sum;      /* (D) */
  int relevant;         /* trees that split */
  /* factors with many classes share the root scan: every class's tree has the same root
   * samples, so one pass per feature over the presorted rows serves all of them, vectorised
   * over classes */
  double *resr;         /* (n, ntp) row-major residuals (ntp = nt rounded up to 8), or NULL */
  double *rootp;        /* (D, nt) best root proxy per feature and class */
  int *rootk;           /* (D, nt) its position in the presorted list */
  double *tot;          /* (nt) residual sums */
} factor_fit;

typedef struct {
  const kn_gbt_opts *o;
  const presort *P;
  const float *Xte;
  int D, K, T, stage;
  factor_fit *F;
  int *task_k, *task_c;
  int *rtask_k, *rtask_f, RT; /* root scans: (factor, feature) pairs of shared factors */
  double *task_imp;     /* (T,D) */
  int *task_split;      /* (T) */
  scratch *S;
  uint64_t seed, stream;
} gbt_ctx;

/* ---- one regression tree on the residual column c of factor fit f ----------------------- */
typedef float kn_v8f __attribute__((vector_size(32)));
typedef int32_t kn_v8i __attribute__((vector_size(32)));

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

static void build_tree(gbt_ctx *g, scratch *s, factor_fit *f, int c, kn_rng *rng, gnode *nodes,
                       int *nnodes) {
  const presort *P = g->P;
  int n = P->n, D = P->D;
  const double *res = f->res + (size_t)c * n;
  /* root */
  double sum = 0, sq = 0;
  for (int i = 0; i < n; i++) {
    sum += res[i];
    sq += res[i] * res[i];
  }
  memset(s->node_of, 0, (size_t)n);
  int nn = 1;
  nodes[0] = (gnode){.feature = -1, .w = n, .sum = sum, .sq = sq, .start = 0, .end = n, .pre = -1};
  nodes[0].imp = sq / n - (sum / n) * (sum / n);
  int level[1 << MAX_DEPTH], nlevel = 1, next[1 << MAX_DEPTH];
  level[0] = 0;
  memset(s->imp, 0, sizeof(double) * (size_t)D);
  /* the sorted lists of the current level: the presort at the root, then the node-by-node
   * stable partitions, alternating between two buffers */
  const int32_t *list = P->sorted;
  int lists_valid = 1; /* the level's nodes have their sorted lists (not after a fused scan) */
  for (int depth = 0; depth < g->o->depth && nlevel; depth++) {
    int split_nodes[1 << MAX_DEPTH], ns = 0;
    for (int t = 0; t < nlevel; t++) {
      gnode *nd = &nodes[level[t]];
      if (nd->w >= 2 && nd->imp > DBL_EPSILON) split_nodes[ns++] = level[t];
    }
    if (!ns) break;
    for (int t = 0; t < ns; t++) {
      gnode *nd = &nodes[split_nodes[t]];
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
        scan_node(list + (size_t)ft * n + nd->start, P->Xc + (size_t)ft * n, nd->end - nd->start, res, nd->w, nd->sum, s->cum, s->vb,
                  s->bestp + (size_t)t * D + ft, s->bestlo + (size_t)t * D + ft, s->besthi + (size_t)t * D + ft);
    }
    /* choose each node's split: the best feature, first in a random order on ties */
    int nnext = 0, last_level = depth + 1 == g->o->depth, fuse = depth + 2 == g->o->depth;
    int32_t *dst = s->list[depth & 1];
    for (int t = 0; t < ns; t++) {
      kn_rng_permutation(rng, s->perm, D);
      int bf = -1;
      double best = -INFINITY;
      for (int q = 0; q < D; q++) {
        int ft = s->perm[q];
        if (s->bestp[(size_t)t * D + ft] > best) {
          best = s->bestp[(size_t)t * D + ft];
          bf = ft;
        }
      }
      if (bf < 0) continue;
      gnode *nd = &nodes[split_nodes[t]];
      double a = s->bestlo[(size_t)t * D + bf], b = s->besthi[(size_t)t * D + bf];
      double thr = a / 2.0 + b / 2.0;
      if (thr == b || isinf(thr)) thr = a;
      nd->feature = bf;
      nd->thr = thr;
      nd->left = nn;
      nd->right = nn + 1;
      nodes[nn] = (gnode){.feature = -1, .pre = -1};
      nodes[nn + 1] = (gnode){.feature = -1, .pre = -1};
      next[nnext++] = nn;
      next[nnext++] = nn + 1;
      nn += 2;
      if (!lists_valid) continue; /* the last level: its samples are sorted out below */
      /* left if X <= thr; the children's sums as scikit-learn's criterion takes them (right =
       * total - left) */
      double lsum = 0, lsq = 0;
      int nl = 0;
      const int32_t *bl = list + (size_t)bf * n;
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
      gnode *L = &nodes[nd->left], *R = &nodes[nd->right];
      *L = (gnode){.feature = -1, .w = nl, .sum = lsum, .sq = lsq, .start = nd->start, .end = nd->start + nl, .pre = -1};
      *R = (gnode){.feature = -1, .w = nd->w - nl, .sum = nd->sum - lsum, .sq = nd->sq - lsq,
                   .start = nd->start + nl, .end = nd->end, .pre = -1};
      L->imp = L->sq / L->w - (L->sum / L->w) * (L->sum / L->w);
      R->imp = R->sq / R->w - (R->sum / R->w) * (R->sum / R->w);
      s->imp[bf] += nd->w * nd->imp - L->w * L->imp - R->w * R->imp;
      if (fuse) { /* the children's splits straight from this node's lists */
        double Wc[2] = {L->w, R->w}, tc[2] = {L->sum, R->sum};
        L->pre = 2 * t, R->pre = 2 * t + 1;
        for (int ft = 0; ft < D; ft++) {
          double bp2[2];
          float lo2[2], hi2[2];
          scan_children(list + (size_t)ft * n, P->Xc + (size_t)ft * n, nd->start, nd->end, res, s->goes_left, Wc,
                        tc, bp2, lo2, hi2);
          for (int q = 0; q < 2; q++) {
            s->prep[(size_t)(2 * t + q) * D + ft] = bp2[q];
            s->prelo[(size_t)(2 * t + q) * D + ft] = lo2[q];
            s->prehi[(size_t)(2 * t + q) * D + ft] = hi2[q];
          }
        }
      } else if (!last_level) /* the children's sorted lists, every feature, stable */
        for (int ft = 0; ft < D; ft++) {
          const int32_t *src = list + (size_t)ft * n;
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
    if (!lists_valid) { /* one pass over the samples for every node split at this level */
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
        L->imp = L->sq / L->w - (L->sum / L->w) * (L->sum / L->w);
        R->imp = R->sq / R->w - (R->sum / R->w) * (R->sum / R->w);
        s->imp[nd->feature] += nd->w * nd->imp - L->w * L->imp - R->w * R->imp;
      }
    }
    lists_valid = lists_valid && !fuse;
    list = dst;
    memcpy(level, next, sizeof(int) * (size_t)nnext);
    nlevel = nnext;
  }
  for (int ft = 0; ft < D; ft++) s->imp[ft] /= n;
  *nnodes = nn;
}

/* Newton leaf values, then raw += lr * value for train and test rows. */
static void finish_tree(gbt_ctx *g, scratch *s, factor_fit *f, int c, gnode *nodes, int nn) {
  int n = g->P->n, nt = f->nt, D = g->D;
  for (int q = 0; q < nn; q++) s->num[q] = s->den[q] = 0;
  for (int i = 0; i < n; i++) {
    double r = f->res[(size_t)c * n + i];
    double y = nt == 1 ? (f->y[i] == 1) : (f->y[i] == c);
    int q = s->node_of[i];
    s->num[q] += r;
    s->den[q] += (y - r) * (1 - y + r);
  }
  for (int q = 0; q < nn; q++) {
    if (nodes[q].feature >= 0) continue;
    double num = s->num[q];
    if (nt > 1) num *= (nt - 1.0) / nt;
    nodes[q].value = fabs(s->den[q]) < 1e-150 ? 0.0 : num / s->den[q];
  }
  double lr = g->o->learning_rate;
  double *raw = f->raw + (size_t)c * n;
  for (int i = 0; i < n; i++) raw[i] += lr * nodes[s->node_of[i]].value;
  for (int i = 0; i < f->m; i++) {
    const float *x = g->Xte + (size_t)i * D;
    int q = 0;
    while (nodes[q].feature >= 0) q = (double)x[nodes[q].feature] <= nodes[q].thr ? nodes[q].left : nodes[q].right;
    f->rawte[(size_t)i * nt + c] += lr * nodes[q].value;
  }
}

/* the root split of every class's tree of a shared factor, for one feature: one pass over
 * the presorted rows with the prefix sums of all classes, eight classes per vector */
static void root_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  const presort *P = g->P;
  int n = P->n;
  long lo, hi;
  kn_split(g->RT, tid, nth, &lo, &hi);
  for (long t = lo; t < hi; t++) {
    factor_fit *f = &g->F[g->rtask_k[t]];
    int ft = g->rtask_f[t], nt = f->nt, nv = (nt + 7) / 8, ntp = nv * 8;
    const int32_t *sl = P->sorted + (size_t)ft * n;
    const float *xc = P->Xc + (size_t)ft * n;
    kn_v8d cum[KN_MAX_CLASSES / 8 + 1], tot[KN_MAX_CLASSES / 8 + 1], best[KN_MAX_CLASSES / 8 + 1];
    kn_v8l bk[KN_MAX_CLASSES / 8 + 1];
    kn_v8d zero = {0};
    for (int v = 0; v < nv; v++) {
      cum[v] = zero;
      best[v] = zero - INFINITY;
      bk[v] = (kn_v8l){0};
      memcpy(&tot[v], f->tot + 8 * v, sizeof tot[v]);
    }
    float prev = xc[sl[0]];
    const double *r0 = f->resr + (size_t)sl[0] * ntp;
    for (int v = 0; v < nv; v++) {
      kn_v8d x;
      memcpy(&x, r0 + 8 * v, sizeof x);
      cum[v] += x;
    }
    for (int k = 1; k < n; k++) {
      int i = sl[k];
      float val = xc[i], lim = prev + 1e-7f;
      if (val > lim) {
        double wl = k, wr = n - wl, inv = 1.0 / (wl * wr);
        kn_v8l kk = (kn_v8l){0} + k;
        for (int v = 0; v < nv; v++) {
          kn_v8d diff = wr * cum[v] - wl * (tot[v] - cum[v]), prox = diff * diff * inv;
          kn_v8l up = (kn_v8l)(prox > best[v]);
          best[v] = (kn_v8d)(((kn_v8l)prox & up) | ((kn_v8l)best[v] & ~up));
          bk[v] = (kk & up) | (bk[v] & ~up);
        }
      }
      const double *ri = f->resr + (size_t)i * ntp;
      for (int v = 0; v < nv; v++) {
        kn_v8d x;
        memcpy(&x, ri + 8 * v, sizeof x);
        cum[v] += x;
      }
      prev = val;
    }
    for (int c = 0; c < nt; c++) {
      f->rootp[(size_t)ft * nt + c] = best[c / 8][c % 8];
      f->rootk[(size_t)ft * nt + c] = (int)bk[c / 8][c % 8];
    }
  }
}

static void tree_task(void *ctx, int tid, int nth) {
  gbt_ctx *g = ctx;
  long lo, hi;
  kn_split(g->T, tid, nth, &lo, &hi);
  gnode nodes[MAX_NODES];
  for (long t = lo; t < hi; t++) {
    int k = g->task_k[t], c = g->task_c[t];
    kn_rng rng;
    kn_rng_seed(&rng, g->seed, g->stream + (((uint64_t)k * 8192 + (uint64_t)g->stage) * 2048 + (uint64_t)c));
    int nn;
    build_tree(g, &g->S[tid], &g->F[k], c, &rng, nodes, &nn);
    finish_tree(g, &g->S[tid], &g->F[k], c, nodes, nn);
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

knobs_status kn_gbt_fit(kn_pool *pool, const kn_gbt_opts *o, const double *Xtr, int n,
                        const int32_t *ytr, const double *Xte, int m, const int32_t *yte, int D,
                        int K, const int *ncls, uint64_t seed, uint64_t stream, double *importance,
                        double *acc_train, double *acc_test) {
  KN_ASSERT(o->depth >= 1 && o->depth <= MAX_DEPTH && n >= 1 && D >= 1 && K >= 1);
  int nth = kn_pool_size(pool);
  knobs_status st = KNOBS_OK;
  presort P = {.n = n, .D = D};
  float *X = malloc(sizeof(float) * (size_t)n * D), *Xt = malloc(sizeof(float) * (size_t)(m ? m : 1) * D);
  P.sorted = malloc(sizeof(int32_t) * (size_t)n * D);
  P.Xc = malloc(sizeof(float) * (size_t)n * D);
  vi_pair *pairs = malloc(sizeof(vi_pair) * (size_t)n);
  factor_fit *F = calloc((size_t)K, sizeof(factor_fit));
  scratch *S = calloc((size_t)nth, sizeof(scratch));
  gbt_ctx g = {.o = o, .P = &P, .D = D, .K = K, .F = F, .S = S, .seed = seed, .stream = stream};
  if (!X || !Xt || !P.sorted || !P.Xc || !pairs || !F || !S) goto nomem;
  for (size_t q = 0; q < (size_t)n * D; q++) X[q] = (float)Xtr[q];
  for (size_t q = 0; q < (size_t)m * D; q++) Xt[q] = (float)Xte[q];
  g.Xte = Xt;
  for (int ft = 0; ft < D; ft++) {
    for (int i = 0; i < n; i++) pairs[i] = (vi_pair){P.Xc[(size_t)ft * n + i] = X[(size_t)i * D + ft], i};
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_vi);
    for (int i = 0; i < n; i++) P.sorted[(size_t)ft * n + i] = pairs[i].i;
  }
  for (int t = 0; t < nth; t++) {
    S[t].node_of = malloc((size_t)n);
    S[t].goes_left = malloc((size_t)n);
    for (int b = 0; b < 2; b++)
      if (!(S[t].list[b] = malloc(sizeof(int32_t) * (size_t)n * D))) goto nomem;
    S[t].prep = malloc(sizeof(double) * (size_t)(1 << MAX_DEPTH) * D);
    S[t].prelo = malloc(sizeof(float) * (size_t)(1 << MAX_DEPTH) * D);
    S[t].prehi = malloc(sizeof(float) * (size_t)(1 << MAX_DEPTH) * D);
    if (!S[t].prep || !S[t].prelo || !S[t].prehi) goto nomem;
    S[t].cum = malloc(sizeof(double) * (size_t)(n + 8));
    S[t].vb = malloc(sizeof(float) * (size_t)(n + 8));
    if (!S[t].cum || !S[t].vb) goto nomem;
    S[t].bestp = malloc(sizeof(double) * (size_t)(1 << MAX_DEPTH) * D);
    S[t].bestlo = malloc(sizeof(float) * (size_t)(1 << MAX_DEPTH) * D);
    S[t].besthi = malloc(sizeof(float) * (size_t)(1 << MAX_DEPTH) * D);
    S[t].num = malloc(sizeof(double) * MAX_NODES);
    S[t].den = malloc(sizeof(double) * MAX_NODES);
    S[t].perm = malloc(sizeof(int) * (size_t)D);
    S[t].imp = malloc(sizeof(double) * (size_t)D);
    if (!S[t].node_of || !S[t].goes_left || !S[t].bestp || !S[t].bestlo || !S[t].besthi || !S[t].num ||
        !S[t].den || !S[t].perm || !S[t].imp)
      goto nomem;
  }
  /* per factor: classes present in train, priors, initial raw predictions */
  int T = 0;
  for (int k = 0; k < K; k++) {
    factor_fit *f = &F[k];
    int nc = ncls[k];
    int *map = malloc(sizeof(int) * (size_t)nc);
    int64_t *cnt = calloc((size_t)nc, sizeof(int64_t));
    if (!map || !cnt) {
      free(map), free(cnt);
      goto nomem;
    }
    for (int i = 0; i < n; i++) cnt[ytr[(size_t)i * K + k]]++;
    int C = 0;
    for (int q = 0; q < nc; q++) map[q] = cnt[q] ? C++ : -1;
    KN_ASSERT(C >= 2); /* checked by the driver */
    f->n = n, f->m = m, f->C = C, f->nt = C == 2 ? 1 : C;
    f->y = malloc(sizeof(int32_t) * (size_t)n);
    f->yte = malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
    f->raw = malloc(sizeof(double) * (size_t)n * f->nt);
    f->rawte = malloc(sizeof(double) * (size_t)(m ? m : 1) * f->nt);
    f->res = malloc(sizeof(double) * (size_t)n * f->nt);
    f->imp_sum = calloc((size_t)D, sizeof(double));
    if (f->nt >= SHARE_ROOT) {
      int ntp = (f->nt + 7) / 8 * 8;
      f->resr = calloc((size_t)n * ntp, sizeof(double)); /* padding stays 0 */
      f->rootp = malloc(sizeof(double) * (size_t)D * f->nt);
      f->rootk = malloc(sizeof(int) * (size_t)D * f->nt);
      f->tot = calloc((size_t)ntp, sizeof(double));
      if (!f->resr || !f->rootp || !f->rootk || !f->tot) {
        free(map), free(cnt);
        goto nomem;
      }
    }
    if (!f->y || !f->yte || !f->raw || !f->rawte || !f->res || !f->imp_sum) {
      free(map), free(cnt);
      goto nomem;
    }
    for (int i = 0; i < n; i++) f->y[i] = map[ytr[(size_t)i * K + k]];
    for (int i = 0; i < m; i++) f->yte[i] = map[yte[(size_t)i * K + k]];
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
      for (int c = 0; c < C; c++) init[c] = log(init[c]);
    for (int c = 0; c < f->nt; c++)
      for (int i = 0; i < n; i++) f->raw[(size_t)c * n + i] = init[c];
    for (int i = 0; i < m; i++) memcpy(f->rawte + (size_t)i * f->nt, init, sizeof(double) * (size_t)f->nt);
    T += f->nt;
    free(map), free(cnt);
  }
  g.T = T;
  for (int k = 0; k < K; k++) g.RT += F[k].resr ? D : 0;
  g.rtask_k = malloc(sizeof(int) * (size_t)(g.RT + 1));
  g.rtask_f = malloc(sizeof(int) * (size_t)(g.RT + 1));
  if (!g.rtask_k || !g.rtask_f) goto nomem;
  for (int k = 0, t = 0; k < K; k++)
    for (int ft = 0; F[k].resr && ft < D; ft++, t++) g.rtask_k[t] = k, g.rtask_f[t] = ft;
  g.task_k = malloc(sizeof(int) * (size_t)T);
  g.task_c = malloc(sizeof(int) * (size_t)T);
  g.task_imp = malloc(sizeof(double) * (size_t)T * D);
  g.task_split = malloc(sizeof(int) * (size_t)T);
  if (!g.task_k || !g.task_c || !g.task_imp || !g.task_split) goto nomem;
  for (int k = 0, t = 0; k < K; k++)
    for (int c = 0; c < F[k].nt; c++, t++) g.task_k[t] = k, g.task_c[t] = c;

  for (int stage = 0; stage < o->stages; stage++) {
    g.stage = stage;
    kn_pool_run(pool, residual_task, &g);
    if (g.RT) {
      for (int k = 0; k < K; k++) /* the root sums, summed as build_tree sums them */
        if (F[k].resr)
          for (int c = 0; c < F[k].nt; c++) {
            double sum = 0;
            const double *rc = F[k].res + (size_t)c * n;
            for (int i = 0; i < n; i++) sum += rc[i];
            F[k].tot[c] = sum;
          }
      kn_pool_run(pool, root_task, &g);
    }
    kn_pool_run(pool, tree_task, &g);
    for (int t = 0; t < T; t++) { /* scikit-learn's order: stage by stage, class by class */
      if (!g.task_split[t]) continue;
      factor_fit *f = &F[g.task_k[t]];
      for (int ft = 0; ft < D; ft++) f->imp_sum[ft] += g.task_imp[(size_t)t * D + ft];
      f->relevant++;
    }
  }
  for (int k = 0; k < K; k++) {
    factor_fit *f = &F[k];
    double tot = 0;
    for (int ft = 0; ft < D; ft++) tot += f->relevant ? f->imp_sum[ft] / f->relevant : 0;
    for (int ft = 0; ft < D; ft++)
      importance[(size_t)ft * K + k] = tot > 0 ? fabs(f->imp_sum[ft] / f->relevant / tot) : 0.0;
    int ok = 0;
    double row[KN_MAX_CLASSES];
    for (int i = 0; i < n; i++) {
      for (int c = 0; c < f->nt; c++) row[c] = f->raw[(size_t)c * n + i];
      ok += predict_row(row, f->nt) == f->y[i];
    }
    acc_train[k] = (double)ok / n;
    ok = 0;
    for (int i = 0; i < m; i++) ok += predict_row(f->rawte + (size_t)i * f->nt, f->nt) == f->yte[i];
    acc_test[k] = m ? (double)ok / m : 0.0;
  }
  goto done;
nomem:
  st = kn_err(KNOBS_ERR_NOMEM, "gradient boosting: cannot allocate for %d rows x %d codes", n, D);
done:
  if (S)
    for (int t = 0; t < nth; t++) {
      free(S[t].node_of), free(S[t].goes_left), free(S[t].list[0]), free(S[t].list[1]), free(S[t].cum), free(S[t].vb), free(S[t].prep), free(S[t].prelo), free(S[t].prehi), free(S[t].bestp), free(S[t].bestlo), free(S[t].besthi);
      free(S[t].num), free(S[t].den), free(S[t].perm), free(S[t].imp);
    }
  if (F)
    for (int k = 0; k < K; k++) {
      free(F[k].y), free(F[k].yte), free(F[k].raw), free(F[k].rawte), free(F[k].res), free(F[k].imp_sum);
      free(F[k].resr), free(F[k].rootp), free(F[k].rootk), free(F[k].tot);
    }
  free(g.task_k), free(g.task_c), free(g.rtask_k), free(g.rtask_f), free(g.task_imp), free(g.task_split);
  free(X), free(Xt), free(P.sorted), free(P.Xc), free(pairs), free(F), free(S);
  return st;
}
