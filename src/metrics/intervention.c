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

knobs_status kn_intervention(const kn_mctx *c, cJSON *out) {
  knobs_data *d = c->data;
  int D = c->D, K = c->K, KD = d->info.K, NS = c->o->intervention_scale_n, NI = c->o->intervention_n;
  size_t per = (size_t)d->info.C * d->info.H * d->info.W;
  int nf = NS > 2 * PER_CALL ? NS : 2 * PER_CALL;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)nf * KD);
  float *z = malloc(sizeof(float) * (size_t)nf * D);
  float *obs = malloc(sizeof(float) * per * 2 * PER_CALL);
  double *dl = malloc(sizeof(double) * (size_t)D);
  double *sd = calloc((size_t)D, sizeof(double)), *mean = calloc((size_t)D, sizeof(double));
  int *act = malloc(sizeof(int) * (size_t)D), *kof = malloc(sizeof(int) * PER_CALL);
  uint8_t *same = malloc(PER_CALL);
  /* per factor: sums of both forms, scored, skipped, unresponsive, argmax counts (K,D) */
  double *smax = calloc((size_t)K, sizeof(double)), *sent = calloc((size_t)K, sizeof(double));
  int *nscored = calloc((size_t)K, sizeof(int)), *nskip = calloc((size_t)K, sizeof(int));
  int *nunresp = calloc((size_t)K, sizeof(int)), *argc = calloc((size_t)K * D, sizeof(int));
  double *pf_max = calloc((size_t)K, sizeof(double)), *pf_ent = calloc((size_t)K, sizeof(double));
  double *pf_cons = calloc((size_t)K, sizeof(double));
  int *pf_skip = calloc((size_t)K, sizeof(int)), *pf_dim = calloc((size_t)K, sizeof(int)), cyc[KN_MAX_K];
  knobs_status s = KNOBS_OK;
  if (!f || !z || !obs || !dl || !sd || !mean || !act || !kof || !same || !smax || !sent || !nscored || !nskip ||
      !nunresp || !argc || !pf_max || !pf_ent || !pf_cons || !pf_skip || !pf_dim) {
    s = kn_err(KNOBS_ERR_NOMEM, "intervention: cannot allocate");
    goto done;
  }
  if ((s = cyclic_flags(c, cyc))) goto done;
  kn_rng rng;
  kn_rng_seed(&rng, c->o->seed, c->stream);
  double t0 = kn_now();
  /* code scales */
  kn_data_sample_factors(d, &rng, NS, f);
  if ((s = kn_encode_factors(c, f, NS, z))) goto done;
  for (int i = 0; i < NS; i++)
    for (int j = 0; j < D; j++) mean[j] += z[(size_t)i * D + j];
  for (int j = 0; j < D; j++) mean[j] /= NS;
  for (int i = 0; i < NS; i++)
    for (int j = 0; j < D; j++) sd[j] += (z[(size_t)i * D + j] - mean[j]) * (z[(size_t)i * D + j] - mean[j]);
  double smx = 0;
  for (int j = 0; j < D; j++) {
    sd[j] = NS > 1 ? sqrt(sd[j] / (NS - 1)) : 0;
    if (sd[j] > smx) smx = sd[j];
  }
  int na = 0;
  for (int j = 0; j < D; j++) na += act[j] = smx > 0 && sd[j] >= c->o->intervention_active * smx;
  long encoded = NS;
  for (int i0 = 0; na && i0 < NI; i0 += PER_CALL) {
    int b = NI - i0 < PER_CALL ? NI - i0 : PER_CALL;
    for (int q = 0; q < b; q++) {
      int k = (i0 + q) % K, kd = c->fmap[k], size = d->info.factor_sizes[kd];
      kof[q] = k;
      int32_t *v = f + (size_t)2 * q * KD, *v2 = v + KD;
      kn_data_sample_factors(d, &rng, 1, v);
      memcpy(v2, v, sizeof(int32_t) * (size_t)KD);
      v2[kd] = v[kd] + 1 < size ? v[kd] + 1 : cyc[k] ? 0 : v[kd] - 1;
    }
    if ((s = knobs_data_render(d, f, 2 * b, obs))) goto done;
    for (int q = 0; q < b; q++) /* skipped if the two renderings are pixel-identical */
      same[q] = !memcmp(obs + 2 * q * per, obs + (2 * q + 1) * per, sizeof(float) * per);
    if ((s = kn_encode_obs(c, obs, 2 * b, z))) goto done;
    encoded += 2 * b;
    for (int q = 0; q < b; q++) {
      int k = kof[q];
      if (same[q]) {
        nskip[k]++;
        continue;
      }
      double tot = 0, mx = 0;
      int arg = -1;
      for (int j = 0; j < D; j++) {
        dl[j] = act[j] ? fabs(((double)z[(size_t)(2 * q + 1) * D + j] - z[(size_t)2 * q * D + j]) / sd[j]) : 0;
        tot += dl[j];
        if (act[j] && (arg < 0 || dl[j] > mx)) {
          mx = dl[j];
          arg = j;
        }
      }
      nscored[k]++;
      if (tot == 0) {
        nunresp[k]++;
        continue; /* concentration 0; no argmax */
      }
      argc[(size_t)k * D + arg]++;
      if (na == 1) {
        smax[k] += 1;
        sent[k] += 1;
        continue;
      }
      double h = 0;
      for (int j = 0; j < D; j++)
        if (dl[j] > 0) {
          double p = dl[j] / tot;
          h -= p * log(p);
        }
      smax[k] += (na * (mx / tot) - 1) / (na - 1);
      sent[k] += 1 - h / log((double)na);
    }
    if ((s = kn_progress(c, "intervention", i0 + b, NI))) goto done;
  }
  double secs = kn_now() - t0, omax = 0, oent = 0, ocons = 0;
  int nfs = 0;
  for (int k = 0; k < K; k++) {
    int total = nscored[k] + nskip[k];
    pf_skip[k] = !na || total == 0 || 2 * nskip[k] > total;
    int best = 0;
    for (int j = 1; j < D; j++)
      if (argc[(size_t)k * D + j] > argc[(size_t)k * D + best]) best = j;
    pf_dim[k] = best;
    if (pf_skip[k] || !nscored[k]) continue;
    pf_max[k] = smax[k] / nscored[k];
    pf_ent[k] = sent[k] / nscored[k];
    pf_cons[k] = (double)argc[(size_t)k * D + best] / nscored[k];
    omax += pf_max[k], oent += pf_ent[k], ocons += pf_cons[k];
    nfs++;
  }
  kn_json_num(out, "concentration_max", nfs ? omax / nfs : 0);
  kn_json_num(out, "concentration_entropy", nfs ? oent / nfs : 0);
  kn_json_num(out, "consistency", nfs ? ocons / nfs : 0);
  kn_json_num(out, "num_active_dims", na);
  kn_json_num(out, "factors_scored", nfs);
  kn_json_vec(out, "per_factor_max", pf_max, K);
  kn_json_vec(out, "per_factor_entropy", pf_ent, K);
  kn_json_vec(out, "per_factor_consistency", pf_cons, K);
  kn_json_ivec(out, "per_factor_dim", pf_dim, K);
  kn_json_ivec(out, "per_factor_skipped", pf_skip, K);
  kn_json_ivec(out, "interventions_scored", nscored, K);
  kn_json_ivec(out, "interventions_skipped", nskip, K);
  kn_json_ivec(out, "interventions_unresponsive", nunresp, K);
  kn_json_vec(out, "code_scale", sd, D);
  kn_json_num(out, "images_encoded", (double)encoded);
  kn_json_num(out, "images_per_second", secs > 0 ? encoded / secs : 0);
  if (!na) kn_json_str(out, "note", "every code dimension is constant: nothing to score");
  else if (!nfs) kn_json_str(out, "note", "every factor was skipped (its interventions change no pixel)");
  cJSON *p = kn_json_params(out);
  kn_json_num(p, "interventions", NI);
  kn_json_num(p, "scale_points", NS);
  kn_json_num(p, "active_threshold", c->o->intervention_active);
  kn_json_ivec(p, "cyclic", cyc, K);
done:
  free(f), free(z), free(obs), free(dl), free(sd), free(mean), free(act), free(kof), free(same), free(smax), free(sent);
  free(nscored), free(nskip), free(nunresp), free(argc), free(pf_max), free(pf_ent), free(pf_cons), free(pf_skip),
      free(pf_dim);
  return s;
}
