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
 * when the sum would underflow, and a polynomial exp the compiler vectorises. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "metrics/metrics.h"

/* one group of m components, SoA per dimension: mu, h = 1/(2 var), cc = log density constant
 * minus the group's largest constant (so every term is <= 1) */
typedef struct {
  int m, D;
  double *mu, *h, *cc, *cmax; /* (D,m) x3 sorted by mu per dimension, (D) */
  double *hmin;                /* (D) */
  const double *samples;       /* (S,D) the samples scored */
  const double *own;           /* (S,D) log term of each sample's own component */
  int S;
  double *out;                 /* (D,S) log q(z_sj) per sample */
} group_job;

/* log sum_n exp(cc_n - (x - mu_n)^2 h_n) over the components of dimension j, shifted by
 * cmax. Terms below e^-50 times the sample's own component's term are left out: with
 * the components sorted by mu, the window |x - mu| <= sqrt((50 - own) / min h) holds every
 * other term; the sum moves by less than m e^-50 relative (< 1e-15 for a million terms). */
static double lse_one(const group_job *g, int j, double x, double own) {
  const double *mu = g->mu + (size_t)j * g->m, *h = g->h + (size_t)j * g->m, *cc = g->cc + (size_t)j * g->m;
  double R = sqrt((50.0 - own) / g->hmin[j]);
  int a = 0, b = g->m;
  while (a < b) { /* first mu >= x - R */
    int mid = (a + b) / 2;
    if (mu[mid] < x - R) a = mid + 1;
    else b = mid;
  }
  int lo = a;
  b = g->m;
  while (a < b) { /* first mu > x + R */
    int mid = (a + b) / 2;
    if (mu[mid] <= x + R) a = mid + 1;
    else b = mid;
  }
  mu += lo, h += lo, cc += lo;
  int m = a - lo;
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
  if (s > 1e-280) return g->cmax[j] + log(s);
  /* far from every component: exact two-pass log-sum-exp over the window */
  double mx = -INFINITY;
  for (n = 0; n < m; n++) {
    double d = x - mu[n], t = cc[n] - d * d * h[n];
    if (t > mx) mx = t;
  }
  s = 0;
  for (n = 0; n < m; n++) {
    double d = x - mu[n];
    s += exp(cc[n] - d * d * h[n] - mx);
  }
  return g->cmax[j] + mx + log(s);
}

static void group_task(void *ctx, int tid, int nth) {
  group_job *g = ctx;
  long lo, hi;
  kn_split((long)g->D * g->S, tid, nth, &lo, &hi);
  for (long q = lo; q < hi; q++) {
    int j = (int)(q / g->S), s = (int)(q % g->S);
    g->out[q] = lse_one(g, j, g->samples[(size_t)s * g->D + j], g->own[(size_t)s * g->D + j]);
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
                                  double *work) {
  group_job g = {.m = m, .D = D, .S = S};
  double *buf = work;
  g.mu = buf;
  g.h = g.mu + (size_t)D * m;
  g.cc = g.h + (size_t)D * m;
  g.cmax = g.cc + (size_t)D * m;
  g.hmin = g.cmax + D;
  double *samples = g.hmin + D, *own = samples + (size_t)S * D;
  g.out = own + (size_t)S * D;
  comp *cs = (comp *)(g.out + (size_t)S * D);
  const double LOG2PI = 1.8378770664093453;
  for (int j = 0; j < D; j++) {
    double mx = -INFINITY, hm = INFINITY;
    for (int t = 0; t < m; t++) {
      int i = rows[t];
      double lv = r->lv[(size_t)i * D + j];
      cs[t] = (comp){r->z[(size_t)i * D + j], 0.5 * exp(-lv), -0.5 * (LOG2PI + lv)};
      if (cs[t].cc > mx) mx = cs[t].cc;
      if (cs[t].h < hm) hm = cs[t].h;
    }
    g.cmax[j] = mx;
    g.hmin[j] = hm;
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
  kn_pool_run(pool, group_task, &g);
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
  double *work = malloc(sizeof(double) * ((size_t)3 * D * n + 2 * D + (size_t)3 * Smax * D) + sizeof(comp) * (size_t)n);
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
  s = group_entropy(c->pool, r, D, zs, rows, n, Smax, &rng, Hm, work);
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
      s = group_entropy(c->pool, r, D, zs, sorted + off[v], m, S < m ? S : m, &rng, Hv, work);
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
