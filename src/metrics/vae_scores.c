/* vae_scores.c: the two intervention-based classifier scores.
 *   beta_vae (beta_vae.py, Higgins et al.): a training point picks a factor k at random, draws
 *     two batches of `batch_size` factor vectors that agree on k, and records
 *     mean_b |z(x1_b) - z(x2_b)| (D features) with label k; a logistic regression
 *     (scikit-learn's defaults: L2, C = 1) is trained on num_train points and scored on
 *     num_eval fresh points: train_accuracy, eval_accuracy.
 *   factor_vae (factor_vae.py, Kim & Mnih): codes scaled by their global std (ddof 1, over
 *     num_variance points); dimensions with std < prune_threshold are inactive; a point picks
 *     k, draws a batch with factor k fixed to one value, and votes (k, argmin over active
 *     dimensions of local variance / global variance); the majority-vote classifier maps each
 *     dimension to its most voted factor; accuracy = votes it gets right / all votes. The
 *     reference reports num_active_dims = D (the length of its boolean mask): we report the
 *     count and keep D as num_active_dims_reference.
 * On a dataset the batches are rendered and encoded (the cost of these scores is encoding:
 * ~1.9 M and ~1 M images at the defaults). On arrays the batches are resampled from the rows:
 * for beta_vae the second element of a pair is a random row sharing the first's value of k,
 * for factor_vae the batch is drawn from the rows with that value of k (without replacement
 * when there are enough); train and eval points are both drawn from all rows. This matches
 * the reference in distribution when the rows are i.i.d. draws of the factors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "metrics/metrics.h"

/* rows grouped by (factor, class): members of class v of factor k are
 * rows[off[k][v] .. off[k][v+1]) */
typedef struct {
  int *rows;   /* (K * n) */
  int *off;    /* per factor (ncls + 1) offsets, concatenated */
  int *base;   /* (K) start of factor k's offsets in off */
} groups;

static void groups_free(groups *g) {
  free(g->rows), free(g->off), free(g->base);
}

static knobs_status groups_make(const kn_mctx *c, const kn_rows *r, groups *g) {
  int K = c->K, n = r->n, tot = 0;
  for (int k = 0; k < K; k++) tot += c->ncls[k] + 1;
  g->rows = malloc(sizeof(int) * (size_t)K * n);
  g->off = calloc((size_t)tot, sizeof(int));
  g->base = malloc(sizeof(int) * (size_t)K);
  if (!g->rows || !g->off || !g->base) {
    groups_free(g);
    return kn_err(KNOBS_ERR_NOMEM, "cannot allocate row groups");
  }
  for (int k = 0, b = 0; k < K; k++) {
    g->base[k] = b;
    int *off = g->off + b, nc = c->ncls[k];
    for (int i = 0; i < n; i++) off[r->y[(size_t)i * K + k] + 1]++;
    for (int v = 0; v < nc; v++) off[v + 1] += off[v];
    int *fill = malloc(sizeof(int) * (size_t)nc);
    if (!fill) {
      groups_free(g);
      return kn_err(KNOBS_ERR_NOMEM, "cannot allocate row groups");
    }
    memcpy(fill, off, sizeof(int) * (size_t)nc);
    for (int i = 0; i < n; i++) g->rows[(size_t)k * n + fill[r->y[(size_t)i * K + k]]++] = i;
    free(fill);
    b += nc + 1;
  }
  return KNOBS_OK;
}

/* the classifier part of beta_vae, shared by both forms */
static knobs_status beta_vae_score(const kn_mctx *c, const double *ftr, const int32_t *ltr, int ntr,
                                   const double *fev, const int32_t *lev, int nev, cJSON *out) {
  int D = c->D, K = c->K;
  int map[KN_MAX_K], nc = 0;
  for (int k = 0; k < K; k++) map[k] = -1;
  for (int i = 0; i < ntr; i++) map[ltr[i]] = 0;
  for (int k = 0; k < K; k++)
    if (!map[k]) map[k] = nc++;
  int32_t *y = malloc(sizeof(int32_t) * (size_t)(ntr > nev ? ntr : nev));
  int32_t *pred = malloc(sizeof(int32_t) * (size_t)(ntr > nev ? ntr : nev));
  double *W = malloc(sizeof(double) * (size_t)(nc > 1 ? nc : 2) * (D + 1));
  double *proba = malloc(sizeof(double) * (size_t)(ntr > nev ? ntr : nev) * (nc > 1 ? nc : 2));
  knobs_status s = KNOBS_OK;
  if (!y || !pred || !W || !proba) {
    s = kn_err(KNOBS_ERR_NOMEM, "beta_vae: cannot allocate");
    goto done;
  }
  double acc_tr = 1, acc_ev = 0;
  int it = 0;
  if (nc < 2) { /* one label only: the classifier predicts it */
    int ok = 0;
    for (int i = 0; i < nev; i++) ok += lev[i] == ltr[0];
    acc_ev = nev ? (double)ok / nev : 0;
  } else {
    for (int i = 0; i < ntr; i++) y[i] = map[ltr[i]];
    it = kn_logreg_fit(c->pool, ftr, y, ntr, D, nc, c->o->logreg_C, W);
    if (it < 0) {
      s = kn_err(KNOBS_ERR_NOMEM, "beta_vae: cannot allocate the solver");
      goto done;
    }
    kn_logreg_predict(W, ftr, ntr, D, nc, proba, pred);
    int ok = 0;
    for (int i = 0; i < ntr; i++) ok += pred[i] == y[i];
    acc_tr = (double)ok / ntr;
    kn_logreg_predict(W, fev, nev, D, nc, proba, pred);
    ok = 0;
    for (int i = 0; i < nev; i++) ok += map[lev[i]] >= 0 && pred[i] == map[lev[i]];
    acc_ev = nev ? (double)ok / nev : 0;
  }
  kn_json_num(out, "train_accuracy", acc_tr);
  kn_json_num(out, "eval_accuracy", acc_ev);
  kn_json_num(out, "solver_iterations", it);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "batch_size", c->o->batch_size);
  kn_json_num(p, "num_train", ntr);
  kn_json_num(p, "num_eval", nev);
  kn_json_num(p, "C", c->o->logreg_C);
done:
  free(y), free(pred), free(W), free(proba);
  return s;
}

knobs_status kn_beta_vae_rows(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, B = c->o->batch_size, ntr = c->o->num_train, nev = c->o->num_eval, n = r->n;
  groups g = {0};
  knobs_status s = groups_make(c, r, &g);
  if (s) return s;
  double *feat = calloc((size_t)(ntr + nev) * D, sizeof(double));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ntr + nev));
  if (!feat || !lab) {
    s = kn_err(KNOBS_ERR_NOMEM, "beta_vae: cannot allocate %d points", ntr + nev);
    goto done;
  }
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  for (int p = 0; p < ntr + nev; p++) {
    int k = (int)kn_rng_below(&rng, (uint32_t)K);
    lab[p] = k;
    double *f = feat + (size_t)p * D;
    for (int b = 0; b < B; b++) {
      int r1 = (int)kn_rng_below(&rng, (uint32_t)n);
      int v = r->y[(size_t)r1 * K + k];
      const int *off = g.off + g.base[k];
      int m = off[v + 1] - off[v], r2 = r1;
      if (m > 1)
        while (r2 == r1) r2 = g.rows[(size_t)k * n + off[v] + (int)kn_rng_below(&rng, (uint32_t)m)];
      for (int j = 0; j < D; j++) f[j] += fabs(r->z[(size_t)r1 * D + j] - r->z[(size_t)r2 * D + j]);
    }
    for (int j = 0; j < D; j++) f[j] /= B;
  }
  s = beta_vae_score(c, feat, lab, ntr, feat + (size_t)ntr * D, lab + ntr, nev, out);
  if (!s) kn_json_str(out, "sampling", "pairs resampled from the rows");
done:
  groups_free(&g);
  free(feat), free(lab);
  return s;
}

/* ---- dataset forms ---------------------------------------------------------------------- */
#define POINTS_PER_CALL 8 /* training points rendered and encoded together */

knobs_status kn_beta_vae_data(const kn_mctx *c, cJSON *out) {
  knobs_data *d = c->data;
  int D = c->D, K = c->K, KD = d->info.K, B = c->o->batch_size;
  int ntr = c->o->num_train, nev = c->o->num_eval, tot = ntr + nev;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)POINTS_PER_CALL * 2 * B * KD);
  float *z = malloc(sizeof(float) * (size_t)POINTS_PER_CALL * 2 * B * D);
  double *feat = calloc((size_t)tot * D, sizeof(double));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)tot);
  knobs_status s = KNOBS_OK;
  if (!f || !z || !feat || !lab) {
    s = kn_err(KNOBS_ERR_NOMEM, "beta_vae: cannot allocate");
    goto done;
  }
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  double t0 = kn_now();
  for (int p0 = 0; p0 < tot; p0 += POINTS_PER_CALL) {
    int np = tot - p0 < POINTS_PER_CALL ? tot - p0 : POINTS_PER_CALL;
    for (int q = 0; q < np; q++) {
      int k = (int)kn_rng_below(&rng, (uint32_t)K), kd = c->fmap[k];
      lab[p0 + q] = k;
      int32_t *f1 = f + (size_t)q * 2 * B * KD, *f2 = f1 + (size_t)B * KD;
      kn_data_sample_factors(d, &rng, B, f1);
      kn_data_sample_factors(d, &rng, B, f2);
      for (int b = 0; b < B; b++) f2[(size_t)b * KD + kd] = f1[(size_t)b * KD + kd];
    }
    if ((s = kn_encode_factors(c, f, np * 2 * B, z))) goto done;
    for (int q = 0; q < np; q++) {
      double *ft = feat + (size_t)(p0 + q) * D;
      const float *z1 = z + (size_t)q * 2 * B * D, *z2 = z1 + (size_t)B * D;
      for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++) ft[j] += fabs((double)z1[(size_t)b * D + j] - (double)z2[(size_t)b * D + j]);
      for (int j = 0; j < D; j++) ft[j] /= B;
    }
    if ((s = kn_progress(c, "beta_vae", p0 + np, tot))) goto done;
  }
  double secs = kn_now() - t0;
  s = beta_vae_score(c, feat, lab, ntr, feat + (size_t)ntr * D, lab + ntr, nev, out);
  if (!s) {
    kn_json_num(out, "images_encoded", 2.0 * B * tot);
    kn_json_num(out, "images_per_second", secs > 0 ? 2.0 * B * tot / secs : 0);
  }
done:
  free(f), free(z), free(feat), free(lab);
  return s;
}

/* ---- factor_vae ------------------------------------------------------------------------- */
/* variances (ddof 1) of n codes (n,D) with stride-1 rows */
static void variances(const double *z, int n, int D, double *var) {
  for (int j = 0; j < D; j++) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += z[(size_t)i * D + j];
    m /= n;
    for (int i = 0; i < n; i++) {
      double t = z[(size_t)i * D + j] - m;
      v += t * t;
    }
    var[j] = n > 1 ? v / (n - 1) : 0;
  }
}

/* argmin over active dims of local / global variance (first on ties) */
static int vote_dim(const double *local, const double *global, const int *active, int D) {
  int arg = -1;
  double best = INFINITY;
  for (int j = 0; j < D; j++) {
    if (!active[j]) continue;
    double r = local[j] / global[j];
    if (arg < 0 || r < best) {
      best = r;
      arg = j;
    }
  }
  return arg;
}

static void factor_vae_report(const kn_mctx *c, const int64_t *vtr, const int64_t *vev, int nact,
                              cJSON *out) {
  int D = c->D, K = c->K;
  double right_tr = 0, all_tr = 0, right_ev = 0, all_ev = 0;
  int *cls = malloc(sizeof(int) * (size_t)D);
  for (int j = 0; j < D; j++) {
    int arg = 0;
    for (int k = 1; k < K; k++)
      if (vtr[(size_t)k * D + j] > vtr[(size_t)arg * D + j]) arg = k;
    if (cls) cls[j] = arg;
    right_tr += (double)vtr[(size_t)arg * D + j];
    right_ev += (double)vev[(size_t)arg * D + j];
    for (int k = 0; k < K; k++) all_tr += (double)vtr[(size_t)k * D + j], all_ev += (double)vev[(size_t)k * D + j];
  }
  kn_json_num(out, "train_accuracy", nact && all_tr > 0 ? right_tr / all_tr : 0.0);
  kn_json_num(out, "eval_accuracy", nact && all_ev > 0 ? right_ev / all_ev : 0.0);
  kn_json_num(out, "num_active_dims", nact);
  kn_json_num(out, "num_active_dims_reference", nact ? D : 0);
  if (cls && nact) kn_json_ivec(out, "classifier", cls, D);
  free(cls);
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "batch_size", c->o->batch_size);
  kn_json_num(p, "num_train", c->o->num_train);
  kn_json_num(p, "num_eval", c->o->num_eval);
  kn_json_num(p, "prune_threshold", c->o->prune_threshold);
}

knobs_status kn_factor_vae_rows(const kn_mctx *c, cJSON *out) {
  const kn_rows *r = &c->all;
  int D = c->D, K = c->K, B = c->o->batch_size, n = r->n, tot = c->o->num_train + c->o->num_eval;
  groups g = {0};
  knobs_status s = groups_make(c, r, &g);
  if (s) return s;
  double *gv = malloc(sizeof(double) * (size_t)D), *lv = malloc(sizeof(double) * (size_t)D);
  double *bz = malloc(sizeof(double) * (size_t)B * D);
  int *act = malloc(sizeof(int) * (size_t)D), *pick = malloc(sizeof(int) * (size_t)B);
  int64_t *votes = calloc((size_t)2 * K * D, sizeof(int64_t));
  if (!gv || !lv || !bz || !act || !pick || !votes) {
    s = kn_err(KNOBS_ERR_NOMEM, "factor_vae: cannot allocate");
    goto done;
  }
  variances(r->z, n, D, gv);
  int nact = 0;
  for (int j = 0; j < D; j++) nact += act[j] = sqrt(gv[j]) >= c->o->prune_threshold;
  if (nact) {
    kn_rng rng;
    kn_rng_seed(&rng, c->o->seed, c->stream);
    for (int p = 0; p < tot; p++) {
      int k = (int)kn_rng_below(&rng, (uint32_t)K);
      int v = r->y[(size_t)kn_rng_below(&rng, (uint32_t)n) * K + k];
      const int *off = g.off + g.base[k];
      const int *mem = g.rows + (size_t)k * n + off[v];
      int m = off[v + 1] - off[v];
      for (int b = 0; b < B; b++) {
        int t;
        for (;;) { /* without replacement when the group is large enough */
          t = mem[kn_rng_below(&rng, (uint32_t)m)];
          int dup = 0;
          if (m >= B)
            for (int q = 0; q < b && !dup; q++) dup = pick[q] == t;
          if (!dup) break;
        }
        pick[b] = t;
        memcpy(bz + (size_t)b * D, r->z + (size_t)t * D, sizeof(double) * (size_t)D);
      }
      variances(bz, B, D, lv);
      int arg = vote_dim(lv, gv, act, D);
      votes[(size_t)(p < c->o->num_train ? 0 : 1) * K * D + (size_t)k * D + arg]++;
    }
  }
  factor_vae_report(c, votes, votes + (size_t)K * D, nact, out);
  kn_json_str(out, "sampling", "batches resampled from the rows");
done:
  groups_free(&g);
  free(gv), free(lv), free(bz), free(act), free(pick), free(votes);
  return s;
}

knobs_status kn_factor_vae_data(const kn_mctx *c, cJSON *out) {
  knobs_data *d = c->data;
  int D = c->D, K = c->K, KD = d->info.K, B = c->o->batch_size, NV = c->o->num_variance;
  int tot = c->o->num_train + c->o->num_eval, chunk = POINTS_PER_CALL * 2 * B;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)(NV > chunk ? NV : chunk) * KD);
  float *z = malloc(sizeof(float) * (size_t)(NV > chunk ? NV : chunk) * D);
  double *zd = malloc(sizeof(double) * (size_t)(NV > B ? NV : B) * D);
  double *gv = malloc(sizeof(double) * (size_t)D), *lv = malloc(sizeof(double) * (size_t)D);
  int *act = malloc(sizeof(int) * (size_t)D);
  int64_t *votes = calloc((size_t)2 * K * D, sizeof(int64_t));
  knobs_status s = KNOBS_OK;
  if (!f || !z || !zd || !gv || !lv || !act || !votes) {
    s = kn_err(KNOBS_ERR_NOMEM, "factor_vae: cannot allocate");
    goto done;
  }
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  double t0 = kn_now();
  kn_data_sample_factors(d, &rng, NV, f);
  if ((s = kn_encode_factors(c, f, NV, z))) goto done;
  for (size_t q = 0; q < (size_t)NV * D; q++) zd[q] = z[q];
  variances(zd, NV, D, gv);
  int nact = 0;
  for (int j = 0; j < D; j++) nact += act[j] = sqrt(gv[j]) >= c->o->prune_threshold;
  int per = chunk / B;
  for (int p0 = 0; nact && p0 < tot; p0 += per) {
    int np = tot - p0 < per ? tot - p0 : per, ks[POINTS_PER_CALL * 2];
    for (int q = 0; q < np; q++) {
      int k = (int)kn_rng_below(&rng, (uint32_t)K), kd = c->fmap[k];
      ks[q] = k;
      int32_t *fq = f + (size_t)q * B * KD;
      kn_data_sample_factors(d, &rng, B, fq);
      for (int b = 1; b < B; b++) fq[(size_t)b * KD + kd] = fq[kd];
    }
    if ((s = kn_encode_factors(c, f, np * B, z))) goto done;
    for (int q = 0; q < np; q++) {
      for (size_t t = 0; t < (size_t)B * D; t++) zd[t] = z[(size_t)q * B * D + t];
      variances(zd, B, D, lv);
      int arg = vote_dim(lv, gv, act, D);
      votes[(size_t)(p0 + q < c->o->num_train ? 0 : 1) * K * D + (size_t)ks[q] * D + arg]++;
    }
    if ((s = kn_progress(c, "factor_vae", p0 + np, tot))) goto done;
  }
  double secs = kn_now() - t0, imgs = NV + (nact ? (double)tot * B : 0);
  factor_vae_report(c, votes, votes + (size_t)K * D, nact, out);
  kn_json_num(kn_json_params(out), "num_variance", NV);
  kn_json_num(out, "images_encoded", imgs);
  kn_json_num(out, "images_per_second", secs > 0 ? imgs / secs : 0);
done:
  free(f), free(z), free(zd), free(gv), free(lv), free(act), free(votes);
  return s;
}
