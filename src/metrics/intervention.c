/* intervention.c: the intervention concentration score (../shared/reference/
 * intervention-score.md; docs/metrics.md has the definition in full):
 *   s_j = std (ddof 1) of the code over intervention_scale_n random observations; active
 *   dimensions A = {j : s_j >= 0.05 max s};
 *   an intervention on factor k draws a base factor vector v and sets v'_k to the next grid
 *   value (cyclic factors wrap; others step back from the last value); both are rendered and
 *   encoded; delta_j = (z_j(v') - z_j(v)) / s_j over A, p = |delta| / sum |delta|;
 *   concentration: max form (|A| max p - 1) / (|A| - 1), entropy form 1 - H(p) / log |A|
 *   (both 1 when |A| = 1); an intervention that changes no pixel is skipped; one that changes
 *   pixels but no active code scores 0 ("unresponsive");
 *   per factor: the means of both forms over its scored interventions, and the consistency
 *   (share of interventions whose largest |delta_j| is in the factor's most frequent
 *   dimension); a factor with more than half of its interventions skipped is reported as
 *   skipped; overall: the means over the scored factors ("score" is the max form).
 * Interventions go round-robin over the factors. It needs a dataset that renders. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "data/data.h"
#include "metrics/metrics.h"

#define PER_CALL 256 /* interventions rendered and encoded together */

static int contains_ci(const char *s, const char *sub) {
  for (; *s; s++) {
    size_t i = 0;
    while (sub[i] && tolower((unsigned char)s[i]) == sub[i]) i++;
    if (!sub[i]) return 1;
  }
  return 0;
}

/* "auto": an orientation-like factor whose values span a full turn (2 pi or 360, with or
 * without the end point) */
static int auto_cyclic(knobs_data *d, int kd) {
  const knobs_data_info *in = &d->info;
  if (!contains_ci(in->factor_names[kd], "orient") && !contains_ci(in->factor_names[kd], "angle") &&
      !contains_ci(in->factor_names[kd], "rotation"))
    return 0;
  int n = in->factor_sizes[kd];
  if (n < 3) return 0;
  double span = fabs(knobs_data_factor_value(d, kd, n - 1) - knobs_data_factor_value(d, kd, 0));
  const double turns[2] = {6.283185307179586, 360.0};
  for (int t = 0; t < 2; t++)
    if (fabs(span - turns[t]) <= 1e-6 * turns[t] || fabs(span - turns[t] * (n - 1) / n) <= 1e-6 * turns[t]) return 1;
  return 0;
}

static knobs_status cyclic_flags(const kn_mctx *c, int *cyc) {
  const char *spec = c->o->intervention_cyclic;
  for (int k = 0; k < c->K; k++) cyc[k] = 0;
  if (!spec || !strcmp(spec, "auto")) {
    for (int k = 0; k < c->K; k++) cyc[k] = auto_cyclic(c->data, c->fmap[k]);
    return KNOBS_OK;
  }
  if (!strcmp(spec, "none")) return KNOBS_OK;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int found = -1;
    for (int k = 0; k < c->K; k++)
      if (!strcmp(c->fname[k], t)) found = k;
    if (found < 0) return kn_err(KNOBS_ERR_ARG, "intervention: no factor '%s' to treat as cyclic", t);
    cyc[found] = 1;
  }
  return KNOBS_OK;
}

/* The state of a run, carved from one arena: per-call buffers, code scales, and per factor
 * the sums of both forms, the scored, skipped and unresponsive counts, argmax counts (K,D)
 * and the summaries. */
typedef struct {
  int32_t *f;         /* (max(NS, 2 PER_CALL), KD) factor vectors */
  float *z, *obs;     /* their codes, (2 PER_CALL) observations */
  double *dl, *sd, *mean;
  int *act, *kof;
  uint8_t *same;
  double *smax, *sent, *pf_max, *pf_ent, *pf_cons;
  int *nscored, *nskip, *nunresp, *argmax, *pf_skip, *pf_dim;
  int cyc[KN_MAX_K];
  int na;             /* active dimensions */
  long encoded;       /* observations encoded */
} iv_state;

static void iv_layout(kn_arena *a, const kn_mctx *c, iv_state *s) {
  int D = c->D, K = c->K, KD = c->data->info.K, NS = c->o->intervention_scale_n;
  size_t per = (size_t)c->data->info.C * c->data->info.H * c->data->info.W;
  int nf = NS > 2 * PER_CALL ? NS : 2 * PER_CALL;
  s->f = kn_arena_take(a, sizeof(int32_t) * (size_t)nf * KD);
  s->z = kn_arena_take(a, sizeof(float) * (size_t)nf * D);
  s->obs = kn_arena_take(a, sizeof(float) * per * 2 * PER_CALL);
  s->dl = kn_arena_take(a, sizeof(double) * (size_t)D);
  s->sd = kn_arena_take(a, sizeof(double) * (size_t)D);
  s->mean = kn_arena_take(a, sizeof(double) * (size_t)D);
  s->act = kn_arena_take(a, sizeof(int) * (size_t)D);
  s->kof = kn_arena_take(a, sizeof(int) * PER_CALL);
  s->same = kn_arena_take(a, PER_CALL);
  s->smax = kn_arena_take(a, sizeof(double) * (size_t)K);
  s->sent = kn_arena_take(a, sizeof(double) * (size_t)K);
  s->pf_max = kn_arena_take(a, sizeof(double) * (size_t)K);
  s->pf_ent = kn_arena_take(a, sizeof(double) * (size_t)K);
  s->pf_cons = kn_arena_take(a, sizeof(double) * (size_t)K);
  s->nscored = kn_arena_take(a, sizeof(int) * (size_t)K);
  s->nskip = kn_arena_take(a, sizeof(int) * (size_t)K);
  s->nunresp = kn_arena_take(a, sizeof(int) * (size_t)K);
  s->argmax = kn_arena_take(a, sizeof(int) * (size_t)K * D);
  s->pf_skip = kn_arena_take(a, sizeof(int) * (size_t)K);
  s->pf_dim = kn_arena_take(a, sizeof(int) * (size_t)K);
}

/* s_j = std (ddof 1) of the codes of NS random observations; the active dimensions. */
static knobs_status code_scales(const kn_mctx *c, kn_rng *rng, iv_state *s) {
  int D = c->D, NS = c->o->intervention_scale_n;
  kn_data_sample_factors(c->data, rng, NS, s->f);
  knobs_status st = kn_encode_factors(c, s->f, NS, s->z);
  if (st) return st;
  const float *z = s->z;
  for (int i = 0; i < NS; i++)
    for (int j = 0; j < D; j++) s->mean[j] += z[(size_t)i * D + j];
  for (int j = 0; j < D; j++) s->mean[j] /= NS;
  for (int i = 0; i < NS; i++)
    for (int j = 0; j < D; j++)
      s->sd[j] += (z[(size_t)i * D + j] - s->mean[j]) * (z[(size_t)i * D + j] - s->mean[j]);
  double smx = 0;
  for (int j = 0; j < D; j++) {
    s->sd[j] = NS > 1 ? sqrt(s->sd[j] / (NS - 1)) : 0;
    if (s->sd[j] > smx) smx = s->sd[j];
  }
  s->na = 0;
  for (int j = 0; j < D; j++) s->na += s->act[j] = smx > 0 && s->sd[j] >= c->o->intervention_active * smx;
  s->encoded = NS;
  return KNOBS_OK;
}

/* Interventions i0 .. i0+b-1 (round-robin over factors): base and moved vectors, rendered;
 * same[q] if the two renderings are pixel-identical; then encoded. */
static knobs_status draw_pairs(const kn_mctx *c, kn_rng *rng, iv_state *s, int i0, int b) {
  knobs_data *d = c->data;
  int K = c->K, KD = d->info.K;
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  for (int q = 0; q < b; q++) {
    int k = (i0 + q) % K, kd = c->fmap[k], size = d->info.factor_sizes[kd];
    s->kof[q] = k;
    int32_t *v = s->f + (size_t)2 * q * KD, *v2 = v + KD;
    kn_data_sample_factors(d, rng, 1, v);
    memcpy(v2, v, sizeof(int32_t) * (size_t)KD);
    v2[kd] = v[kd] + 1 < size ? v[kd] + 1 : s->cyc[k] ? 0 : v[kd] - 1;
  }
  knobs_status st = knobs_data_render(d, s->f, 2 * b, s->obs);
  if (st) return st;
  for (int q = 0; q < b; q++)
    s->same[q] = !memcmp(s->obs + 2 * q * per, s->obs + (2 * q + 1) * per, sizeof(float) * per);
  if ((st = kn_encode_rendered(c, s->f, s->obs, 2 * b, s->z))) return st;
  s->encoded += 2 * b;
  return KNOBS_OK;
}

/* Score intervention q of the last pair drawn into its factor's sums. */
static void score_pair(const kn_mctx *c, iv_state *s, int q) {
  int D = c->D, k = s->kof[q], na = s->na;
  if (s->same[q]) {
    s->nskip[k]++;
    return;
  }
  double tot = 0, mx = 0, *dl = s->dl;
  const float *z = s->z;
  int arg = -1;
  for (int j = 0; j < D; j++) {
    dl[j] = s->act[j] ? fabs(((double)z[(size_t)(2 * q + 1) * D + j] - z[(size_t)2 * q * D + j]) / s->sd[j]) : 0;
    tot += dl[j];
    if (s->act[j] && (arg < 0 || dl[j] > mx)) {
      mx = dl[j];
      arg = j;
    }
  }
  s->nscored[k]++;
  if (tot == 0) { /* concentration 0; no argmax */
    s->nunresp[k]++;
    return;
  }
  s->argmax[(size_t)k * D + arg]++;
  if (na == 1) {
    s->smax[k] += 1;
    s->sent[k] += 1;
    return;
  }
  double h = 0;
  for (int j = 0; j < D; j++)
    if (dl[j] > 0) {
      double p = dl[j] / tot;
      h -= p * log(p);
    }
  s->smax[k] += (na * (mx / tot) - 1) / (na - 1);
  s->sent[k] += 1 - h / log((double)na);
}

/* Per factor summaries; the overall means over the scored factors (returns their count). */
static int summarise(const kn_mctx *c, iv_state *s, double *omax, double *oent, double *ocons) {
  int D = c->D, K = c->K, nfs = 0;
  *omax = *oent = *ocons = 0;
  for (int k = 0; k < K; k++) {
    int total = s->nscored[k] + s->nskip[k];
    s->pf_skip[k] = !s->na || total == 0 || 2 * s->nskip[k] > total;
    int best = 0;
    for (int j = 1; j < D; j++)
      if (s->argmax[(size_t)k * D + j] > s->argmax[(size_t)k * D + best]) best = j;
    s->pf_dim[k] = best;
    if (s->pf_skip[k] || !s->nscored[k]) continue;
    s->pf_max[k] = s->smax[k] / s->nscored[k];
    s->pf_ent[k] = s->sent[k] / s->nscored[k];
    s->pf_cons[k] = (double)s->argmax[(size_t)k * D + best] / s->nscored[k];
    *omax += s->pf_max[k], *oent += s->pf_ent[k], *ocons += s->pf_cons[k];
    nfs++;
  }
  return nfs;
}

/* The scores, summaries and parameters into out. */
static void put_json(const kn_mctx *c, iv_state *s, double secs, cJSON *out) {
  int D = c->D, K = c->K, NI = c->o->intervention_n, NS = c->o->intervention_scale_n;
  double omax, oent, ocons;
  int nfs = summarise(c, s, &omax, &oent, &ocons);
  kn_json_num(out, "concentration_max", nfs ? omax / nfs : 0);
  kn_json_num(out, "concentration_entropy", nfs ? oent / nfs : 0);
  kn_json_num(out, "consistency", nfs ? ocons / nfs : 0);
  kn_json_num(out, "num_active_dims", s->na);
  kn_json_num(out, "factors_scored", nfs);
  kn_json_vec(out, "per_factor_max", s->pf_max, K);
  kn_json_vec(out, "per_factor_entropy", s->pf_ent, K);
  kn_json_vec(out, "per_factor_consistency", s->pf_cons, K);
  kn_json_ivec(out, "per_factor_dim", s->pf_dim, K);
  kn_json_ivec(out, "per_factor_skipped", s->pf_skip, K);
  kn_json_ivec(out, "interventions_scored", s->nscored, K);
  kn_json_ivec(out, "interventions_skipped", s->nskip, K);
  kn_json_ivec(out, "interventions_unresponsive", s->nunresp, K);
  kn_json_vec(out, "code_scale", s->sd, D);
  kn_json_num(out, "images_encoded", (double)s->encoded);
  kn_json_num(out, "images_per_second", secs > 0 ? s->encoded / secs : 0);
  if (!s->na) kn_json_str(out, "note", "every code dimension is constant: nothing to score");
  else if (!nfs) kn_json_str(out, "note", "every factor was skipped (its interventions change no pixel)");
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "interventions", NI);
  kn_json_num(p, "scale_points", NS);
  kn_json_num(p, "active_threshold", c->o->intervention_active);
  kn_json_ivec(p, "cyclic", s->cyc, K);
}

knobs_status kn_intervention(const kn_mctx *c, cJSON *out) {
  int NI = c->o->intervention_n;
  kn_arena a = {0};
  iv_state s = {0};
  iv_layout(&a, c, &s); /* counting */
  knobs_status st = kn_arena_reserve(&a, "intervention");
  if (st) return st;
  iv_layout(&a, c, &s);
  if ((st = cyclic_flags(c, s.cyc))) goto done;
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  double t0 = kn_now();
  if ((st = code_scales(c, &rng, &s))) goto done;
  for (int i0 = 0; s.na && i0 < NI; i0 += PER_CALL) {
    int b = NI - i0 < PER_CALL ? NI - i0 : PER_CALL;
    if ((st = draw_pairs(c, &rng, &s, i0, b))) goto done;
    for (int q = 0; q < b; q++) score_pair(c, &s, q);
    if ((st = kn_progress(c, "intervention", i0 + b, NI))) goto done;
  }
  put_json(c, &s, kn_now() - t0, out);
done:
  kn_arena_free(&a);
  return st;
}
