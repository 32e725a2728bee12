/* names.c: a model's knobs and what they mean: per code dimension the normalised mutual
 * information with every ground-truth factor, the factor it tracks, the KL, the direction and a
 * calibration (a monotone map from code value to factor value), computed by knobs_name and kept
 * in knobs.json beside the checkpoint (format: docs/api.md), together with the names users
 * give the knobs (the knob panel, `knobs name --set`). Every command that prints latents reads
 * it. Uses only the public model and data calls.
 *
 * The samples: n observations drawn with their factors and factor values from (seed, stream
 * 2 + i / 250) in chunks of 250, the KL over n_kl observations of stream 1: the same draws as
 * the knob panel's, so the panel reuses a file this wrote. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "io/io.h"

#define NAME_SEED 0x6b6e6f6273ULL /* fixed: the same run gives the same statistics */
#define MI_BINS 20                /* histogram bins per code dimension (disentanglement_lib) */
#define MI_MIN_NAME 0.05          /* normalised MI a factor needs to name a latent */
#define INACTIVE_KL 0.05          /* nats: a latent with less mean KL names no factor */
#define CHUNK 250

void knobs_name_opts_default(knobs_name_opts *o) {
  o->n = 10000;
  o->n_kl = 512;
  o->seed = NAME_SEED;
}

void knobs_knobs_free(knobs_knobs *k) {
  if (!k) return;
  free(k->knobs);
  free(k);
}

static knobs_knobs *knobs_new(int Z, int K) {
  knobs_knobs *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->knobs = calloc((size_t)(Z > 0 ? Z : 1), sizeof *k->knobs);
  if (!k->knobs) {
    free(k);
    return NULL;
  }
  k->Z = Z, k->K = K;
  for (int z = 0; z < Z; z++) k->knobs[z].factor_index = -1;
  return k;
}

knobs_status knobs_knobs_create(int Z, int K, knobs_knobs **out) {
  *out = NULL;
  if (Z < 1 || Z > 1000000 || K < 0 || K > KNOBS_MAX_FACTORS)
    return kn_err(KNOBS_ERR_ARG, "knobs: %d latents and %d factors out of range", Z, K);
  if (!(*out = knobs_new(Z, K))) return kn_err(KNOBS_ERR_NOMEM, "out of memory for %d knobs", Z);
  return KNOBS_OK;
}

/* Normalised MI of each code dimension with each factor, as disentanglement_lib's MIG: codes
 * discretised into MI_BINS equal-width bins between their min and max (np.histogram +
 * np.digitize), MI in nats (sklearn's mutual_info_score) over the entropy of the factor. */
static knobs_status mutual_info(const float *mu, const int32_t *f, int n, int Z, int K, double *mi) {
  int *bins = malloc(sizeof(int) * (size_t)n);
  if (!bins) return kn_err(KNOBS_ERR_NOMEM, "out of memory for the MI table");
  knobs_status st = KNOBS_OK;
  for (int k = 0; !st && k < K; k++) {
    int nk = 0;
    for (int i = 0; i < n; i++) nk = f[(size_t)i * K + k] + 1 > nk ? f[(size_t)i * K + k] + 1 : nk;
    double *pv = calloc((size_t)nk, sizeof(double)), *pj = calloc((size_t)nk * MI_BINS, sizeof(double));
    if (!pv || !pj) st = kn_err(KNOBS_ERR_NOMEM, "out of memory for the MI table");
    for (int i = 0; !st && i < n; i++) pv[f[(size_t)i * K + k]] += 1.0 / n;
    double hv = 0;
    for (int c = 0; !st && c < nk; c++) if (pv[c] > 0) hv -= pv[c] * log(pv[c]);
    for (int j = 0; !st && j < Z; j++) {
      float lo = INFINITY, hi = -INFINITY;
      for (int i = 0; i < n; i++) {
        float v = mu[(size_t)i * Z + j];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
      }
      for (int i = 0; i < n; i++) {
        int q = hi > lo ? (int)((mu[(size_t)i * Z + j] - lo) / (hi - lo) * MI_BINS) : 0;
        bins[i] = q < 0 ? 0 : q >= MI_BINS ? MI_BINS - 1 : q;
      }
      memset(pj, 0, sizeof(double) * (size_t)nk * MI_BINS);
      double pz[MI_BINS] = {0};
      for (int i = 0; i < n; i++) {
        pj[(size_t)f[(size_t)i * K + k] * MI_BINS + bins[i]] += 1.0 / n;
        pz[bins[i]] += 1.0 / n;
      }
      double v = 0;
      for (int c = 0; c < nk; c++)
        for (int q = 0; q < MI_BINS; q++) {
          double p = pj[(size_t)c * MI_BINS + q];
          if (p > 0) v += p * log(p / (pv[c] * pz[q]));
        }
      mi[(size_t)j * K + k] = hv > 0 ? fmax(0, v / hv) : 0;
    }
    free(pv), free(pj);
  }
  free(bins);
  return st;
}


static double pearson(const double *a, const double *b, int n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
  ma /= n, mb /= n;
  for (int i = 0; i < n; i++) {
    double x = a[i] - ma, y = b[i] - mb;
    sab += x * y, saa += x * x, sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* The calibration of one knob: isotonic regression (pool adjacent violators, equal weights) of
 * the factor value on the code, increasing if dir > 0 (else decreasing), read at
 * KNOBS_CALIB_KNOTS quantiles of the code. Knots with equal codes are merged. */
static void calibrate(knobs_knob *kb, const float *mu, int Z, int j, const double *val, int K, int k, int n,
                      kn_keyed *t, double *fit, double *w, int *len) {
  for (int i = 0; i < n; i++) t[i].v = mu[(size_t)i * Z + j], t[i].i = i;
  kn_keyed_sort(t, n);
  /* PAVA on y = dir * value in code order (a decreasing fit of value is an increasing fit of -value) */
  int nb = 0;
  for (int i = 0; i < n; i++) {
    fit[nb] = kb->direction * val[(size_t)t[i].i * K + k], w[nb] = 1, len[nb] = 1;
    nb++;
    while (nb > 1 && fit[nb - 2] > fit[nb - 1]) {
      double ww = w[nb - 2] + w[nb - 1];
      fit[nb - 2] = (fit[nb - 2] * w[nb - 2] + fit[nb - 1] * w[nb - 1]) / ww;
      w[nb - 2] = ww, len[nb - 2] += len[nb - 1];
      nb--;
    }
  }
  /* expand the blocks back over the sorted samples, in place from the end */
  int pos = n;
  for (int b = nb - 1; b >= 0; b--) {
    double v = fit[b];
    for (int c = 0; c < len[b]; c++) fit[--pos] = v;
  }
  kb->n_knots = 0;
  for (int q = 0; q < KNOBS_CALIB_KNOTS; q++) {
    int i = (int)lround((double)q * (n - 1) / (KNOBS_CALIB_KNOTS - 1));
    double c = t[i].v, v = kb->direction * fit[i];
    if (kb->n_knots > 0 && c <= kb->knot_code[kb->n_knots - 1]) {
      kb->knot_value[kb->n_knots - 1] = v; /* equal codes: the later (outer) value */
      continue;
    }
    kb->knot_code[kb->n_knots] = c, kb->knot_value[kb->n_knots] = v;
    kb->n_knots++;
  }
  if (kb->n_knots < 2) kb->n_knots = 0;
}

knobs_status knobs_name_codes(const float *mu, const int32_t *f, const double *val, int n, int Z, int K,
                              const char (*factor_names)[32], const double *kl, knobs_knobs **out) {
  *out = NULL;
  if (n < 2 || Z < 1 || K < 1 || K > KNOBS_MAX_FACTORS)
    return kn_err(KNOBS_ERR_ARG, "name: need n >= 2 samples, Z >= 1 and 1..%d factors (got %d, %d, %d)", KNOBS_MAX_FACTORS,
                  n, Z, K);
  for (size_t i = 0; i < (size_t)n * Z; i++)
    if (!isfinite(mu[i])) return kn_err(KNOBS_ERR_DATA, "name: code %zu of sample %zu is not finite", i % Z, i / Z);
  for (size_t i = 0; i < (size_t)n * K; i++) {
    if (f[i] < 0 || f[i] > 100000000)
      return kn_err(KNOBS_ERR_DATA, "name: factor %zu of sample %zu is %d, not a class index", i % K, i / K, (int)f[i]);
    if (val && !isfinite(val[i])) return kn_err(KNOBS_ERR_DATA, "name: factor value %zu of sample %zu is not finite", i % K, i / K);
  }
  double *mi = malloc(sizeof(double) * (size_t)Z * K), *ra = malloc(sizeof(double) * (size_t)n),
         *rb = malloc(sizeof(double) * (size_t)n), *fit = malloc(sizeof(double) * (size_t)n),
         *w = malloc(sizeof(double) * (size_t)n), *fv = val ? NULL : malloc(sizeof(double) * (size_t)n * K);
  int *len = malloc(sizeof(int) * (size_t)n);
  kn_keyed *t = malloc(sizeof(kn_keyed) * (size_t)n);
  knobs_knobs *k = knobs_new(Z, K);
  knobs_status st = KNOBS_OK;
  if (!mi || !ra || !rb || !fit || !w || (!val && !fv) || !len || !t || !k)
    st = kn_err(KNOBS_ERR_NOMEM, "name: out of memory for %d samples", n);
  if (!st && !val) { /* no values: the class index is the value */
    for (size_t i = 0; i < (size_t)n * K; i++) fv[i] = f[i];
    val = fv;
  }
  if (!st) st = mutual_info(mu, f, n, Z, K, mi);
  if (!st) {
    k->n = n;
    for (int q = 0; q < K; q++) snprintf(k->factors[q], sizeof k->factors[q], "%s", factor_names[q]);
    for (int j = 0; j < Z; j++) {
      knobs_knob *kb = &k->knobs[j];
      double a = 0, b = 0;
      for (int i = 0; i < n; i++) a += mu[(size_t)i * Z + j];
      a /= n;
      for (int i = 0; i < n; i++) b += (mu[(size_t)i * Z + j] - a) * (mu[(size_t)i * Z + j] - a);
      kb->mean = a, kb->scale = sqrt(b / n);
      kb->kl = kl && isfinite(kl[j]) ? kl[j] : 0;
      int best = 0;
      for (int q = 0; q < K; q++) {
        kb->mi[q] = mi[(size_t)j * K + q];
        if (kb->mi[q] > kb->mi[best]) best = q;
      }
      /* an inactive latent (the panel's fold: KL under 0.05 nat) is noise: its MI is the
       * histogram's small-sample bias, not a factor */
      if (kb->mi[best] < MI_MIN_NAME || kb->scale <= 0 || (kl && kb->kl < INACTIVE_KL)) continue;
      kb->factor_index = best;
      snprintf(kb->factor, sizeof kb->factor, "%s", factor_names[best]);
      for (int i = 0; i < n; i++) t[i].v = mu[(size_t)i * Z + j], t[i].i = i;
      kn_ranks(t, n, ra);
      for (int i = 0; i < n; i++) t[i].v = val[(size_t)i * K + best], t[i].i = i;
      kn_ranks(t, n, rb);
      kb->corr = pearson(ra, rb, n);
      kb->direction = kb->corr > 0 ? 1 : kb->corr < 0 ? -1 : 0;
      if (kb->direction) calibrate(kb, mu, Z, j, val, K, best, n, t, fit, w, len);
    }
    *out = k, k = NULL;
  }
  free(mi), free(ra), free(rb), free(fit), free(w), free(fv), free(len), free(t);
  knobs_knobs_free(k);
  return st;
}

knobs_status knobs_name(knobs_model *m, knobs_data *d, const knobs_name_opts *o, knobs_knobs **out) {
  *out = NULL;
  knobs_name_opts def;
  if (!o) knobs_name_opts_default(&def), o = &def;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (in->K == 0)
    return kn_err(KNOBS_ERR_ARG, "%s has no ground-truth factors: knobs are named by the factors they track "
                  "(give the data a factors file, or name knobs by hand)", in->name);
  if (o->n < 100 || o->n > 10000000) return kn_err(KNOBS_ERR_ARG, "name: n = %d out of range 100..10000000", o->n);
  if (o->n_kl < 1 || o->n_kl > 1000000) return kn_err(KNOBS_ERR_ARG, "name: n_kl = %d out of range 1..1000000", o->n_kl);
  const knobs_config *c = knobs_model_config(m);
  size_t px = (size_t)knobs_config_number(c, "C") * (size_t)knobs_config_number(c, "H") *
              (size_t)knobs_config_number(c, "W");
  if (px != (size_t)in->C * in->H * in->W)
    return kn_err(KNOBS_ERR_ARG, "%s: observations are %dx%dx%d, the model takes %zu values", in->name, in->C, in->H,
                  in->W, px);
  int n = o->n, Z = knobs_model_code_dim(m), K = in->K;
  int nx = CHUNK > o->n_kl ? CHUNK : o->n_kl;
  float *x = malloc(sizeof(float) * px * (size_t)nx), *mu = malloc(sizeof(float) * (size_t)n * Z);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)n * K);
  double *val = malloc(sizeof(double) * (size_t)n * K), *kl = calloc((size_t)Z, sizeof(double));
  knobs_status st = KNOBS_OK;
  if (!x || !mu || !f || !val || !kl) st = kn_err(KNOBS_ERR_NOMEM, "name: out of memory for %d samples", n);
  for (int i = 0; !st && i < n; i += CHUNK) {
    int b = n - i < CHUNK ? n - i : CHUNK;
    st = knobs_data_draw_values(d, b, o->seed, 2 + (uint64_t)(i / CHUNK), x, f + (size_t)i * K, val + (size_t)i * K);
    if (!st) st = knobs_model_encode(m, x, b, mu + (size_t)i * Z, NULL);
  }
  if (!st && knobs_model_has_posterior(m)) {
    st = knobs_data_draw(d, o->n_kl, o->seed, 1, x, NULL);
    knobs_terms tm;
    if (!st) st = knobs_model_evaluate(m, x, o->n_kl, o->seed, &tm, kl);
  }
  if (!st) st = knobs_name_codes(mu, f, val, n, Z, K, (const char (*)[32])in->factor_names,
                                 knobs_model_has_posterior(m) ? kl : NULL, out);
  if (!st) {
    (*out)->step = knobs_model_step(m);
    snprintf((*out)->data, sizeof (*out)->data, "%s", in->name);
  }
  free(x), free(mu), free(f), free(val), free(kl);
  return st;
}

/* ---- knobs.json -------------------------------------------------------------------------- */
static void json_path(const char *model_path, char *path, size_t n) {
  struct stat st;
  if (stat(model_path, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(path, n, "%s/knobs.json", model_path);
  } else {
    const char *sl = strrchr(model_path, '/');
    snprintf(path, n, "%.*s/knobs.json", sl ? (int)(sl - model_path) : 1, sl ? model_path : ".");
  }
}

static int num_array(const cJSON *a, double *v, int max) {
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > max) return -1;
  int i = 0;
  for (const cJSON *e = a->child; e; e = e->next, i++) {
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) return -1;
    v[i] = e->valuedouble;
  }
  return i;
}

static double num_or(const cJSON *o, const char *key, double def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : def;
}

knobs_status knobs_knobs_read(const char *model_path, int Z, knobs_knobs **out) {
  *out = NULL;
  char path[1100];
  json_path(model_path, path, sizeof path);
  struct stat sb;
  if (stat(path, &sb) != 0) return KNOBS_OK; /* no names yet */
  char *txt = NULL;
  size_t len = 0;
  knobs_status s = kn_read_file(path, 16u << 20, &txt, &len);
  if (s) return s;
  cJSON *j = cJSON_ParseWithLength(txt, len);
  free(txt);
  const cJSON *lat = j ? cJSON_GetObjectItemCaseSensitive(j, "latents") : NULL;
  const cJSON *fac = j ? cJSON_GetObjectItemCaseSensitive(j, "factors") : NULL;
  if (!cJSON_IsArray(lat)) {
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs.json (no \"latents\" array)", path);
  }
  if (cJSON_GetArraySize(lat) != Z) {
    int got = cJSON_GetArraySize(lat);
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_FORMAT, "%s: names %d latents, the model has %d", path, got, Z);
  }
  int K = cJSON_IsArray(fac) ? cJSON_GetArraySize(fac) : 0;
  if (K > KNOBS_MAX_FACTORS) {
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_FORMAT, "%s: %d factors, at most %d", path, K, KNOBS_MAX_FACTORS);
  }
  knobs_knobs *k = knobs_new(Z, K);
  if (!k) {
    cJSON_Delete(j);
    return kn_err(KNOBS_ERR_NOMEM, "out of memory reading %s", path);
  }
  for (int q = 0; q < K; q++) {
    const cJSON *e = cJSON_GetArrayItem(fac, q);
    snprintf(k->factors[q], sizeof k->factors[q], "%s", cJSON_IsString(e) ? e->valuestring : "?");
  }
  k->step = (long)num_or(j, "step", -1);
  int ver = (int)num_or(j, "version", 1);
  k->n = (int)num_or(j, ver >= 2 ? "n" : "n_mi", 0);
  const cJSON *dn = cJSON_GetObjectItemCaseSensitive(j, "data");
  if (cJSON_IsString(dn)) snprintf(k->data, sizeof k->data, "%s", dn->valuestring);
  int bad = 0;
  for (int z = 0; z < Z && !bad; z++) {
    const cJSON *e = cJSON_GetArrayItem(lat, z);
    knobs_knob *kb = &k->knobs[z];
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *f = cJSON_GetObjectItemCaseSensitive(e, "factor");
    if (cJSON_IsString(nm)) snprintf(kb->name, sizeof kb->name, "%s", nm->valuestring);
    if (cJSON_IsString(f)) {
      snprintf(kb->factor, sizeof kb->factor, "%s", f->valuestring);
      for (int q = 0; q < K; q++) if (!strcmp(k->factors[q], kb->factor)) kb->factor_index = q;
    }
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(e, "mi");
    if (mi && num_array(mi, kb->mi, KNOBS_MAX_FACTORS) != (cJSON_GetArraySize(mi) ? K : 0)) bad = 1;
    kb->kl = num_or(e, "kl", 0), kb->mean = num_or(e, "mean", 0), kb->scale = num_or(e, "scale", 0);
    kb->corr = num_or(e, "corr", 0);
    kb->direction = (int)num_or(e, "direction", 0);
    if (kb->direction < -1 || kb->direction > 1) bad = 1;
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(e, "calibration");
    if (cJSON_IsObject(cal)) {
      int a = num_array(cJSON_GetObjectItemCaseSensitive(cal, "code"), kb->knot_code, KNOBS_CALIB_KNOTS);
      int b = num_array(cJSON_GetObjectItemCaseSensitive(cal, "value"), kb->knot_value, KNOBS_CALIB_KNOTS);
      if (a < 2 || a != b) bad = 1;
      for (int i = 1; !bad && i < a; i++)
        if (kb->knot_code[i] <= kb->knot_code[i - 1] ||
            (kb->knot_value[i] - kb->knot_value[i - 1]) * (kb->knot_value[a - 1] - kb->knot_value[0]) < 0)
          bad = 1;
      kb->n_knots = bad ? 0 : a;
    }
    if (bad) {
      knobs_knobs_free(k);
      cJSON_Delete(j);
      return kn_err(KNOBS_ERR_FORMAT, "%s: latent %d: a malformed mi row or calibration", path, z);
    }
  }
  cJSON_Delete(j);
  *out = k;
  return KNOBS_OK;
}

/* A number written with 17 significant digits, which read back to the same double (cJSON's own
 * printer tries 15 digits first and keeps them when they read back within its tolerance, which
 * can drop the last bit). Finite values only (the knots are). */
static cJSON *exact_number(double v) {
  char b[40];
  snprintf(b, sizeof b, "%.17g", v);
  return cJSON_CreateRaw(b);
}

static double round6(double v) { return round(v * 1e6) / 1e6; }

knobs_status knobs_knobs_write(const knobs_knobs *k, const char *model_path) {
  cJSON *j = cJSON_CreateObject(), *fac = cJSON_AddArrayToObject(j, "factors"), *lat = cJSON_AddArrayToObject(j, "latents");
  cJSON_AddNumberToObject(j, "version", 2);
  cJSON_AddNumberToObject(j, "step", (double)k->step);
  cJSON_AddNumberToObject(j, "n", k->n);
  cJSON_AddNumberToObject(j, "n_mi", k->n);
  cJSON_AddStringToObject(j, "data", k->data);
  for (int q = 0; q < k->K; q++) cJSON_AddItemToArray(fac, cJSON_CreateString(k->factors[q]));
  for (int z = 0; z < k->Z; z++) {
    const knobs_knob *kb = &k->knobs[z];
    cJSON *e = cJSON_CreateObject();
    if (kb->name[0]) cJSON_AddStringToObject(e, "name", kb->name);
    else cJSON_AddNullToObject(e, "name");
    if (kb->factor[0]) cJSON_AddStringToObject(e, "factor", kb->factor);
    else cJSON_AddNullToObject(e, "factor");
    cJSON *mi = cJSON_AddArrayToObject(e, "mi");
    for (int q = 0; q < k->K && k->n > 0; q++) cJSON_AddItemToArray(mi, cJSON_CreateNumber(round6(kb->mi[q])));
    if (k->n > 0) {
      cJSON_AddNumberToObject(e, "kl", round6(kb->kl));
      cJSON_AddNumberToObject(e, "mean", round6(kb->mean));
      cJSON_AddNumberToObject(e, "scale", round6(kb->scale));
      cJSON_AddNumberToObject(e, "corr", round6(kb->corr));
      cJSON_AddNumberToObject(e, "direction", kb->direction);
    }
    if (kb->n_knots >= 2) {
      cJSON *cal = cJSON_AddObjectToObject(e, "calibration");
      /* full precision: knots must stay strictly increasing when read back */
      cJSON *cc = cJSON_AddArrayToObject(cal, "code"), *cv = cJSON_AddArrayToObject(cal, "value");
      for (int i = 0; i < kb->n_knots; i++) {
        cJSON_AddItemToArray(cc, exact_number(kb->knot_code[i]));
        cJSON_AddItemToArray(cv, exact_number(kb->knot_value[i]));
      }
    }
    cJSON_AddItemToArray(lat, e);
  }
  char *txt = cJSON_Print(j);
  cJSON_Delete(j);
  if (!txt) return kn_err(KNOBS_ERR_NOMEM, "out of memory for knobs.json");
  char path[1100];
  json_path(model_path, path, sizeof path);
  size_t n = strlen(txt);
  txt[n] = '\n'; /* cJSON_Print's buffer has room: the terminator */
  knobs_status s = kn_write_file(path, txt, n + 1);
  free(txt);
  return s;
}

knobs_status knobs_knobs_merge_names(knobs_knobs *to, const knobs_knobs *from) {
  if (!to || !from) return KNOBS_OK;
  if (to->Z != from->Z) return kn_err(KNOBS_ERR_ARG, "names of %d latents cannot go to a model of %d", from->Z, to->Z);
  for (int z = 0; z < to->Z; z++) memcpy(to->knobs[z].name, from->knobs[z].name, sizeof to->knobs[z].name);
  return KNOBS_OK;
}

/* "3" or "z3": a dimension number; -1 otherwise. */
static int dim_number(const char *s) {
  if (*s == 'z' || *s == 'Z') s++;
  if (!isdigit((unsigned char)*s)) return -1;
  long v = 0;
  for (; *s; s++) {
    if (!isdigit((unsigned char)*s) || v > 1000000) return -1;
    v = v * 10 + (*s - '0');
  }
  return (int)v;
}

knobs_status knobs_knobs_rename(knobs_knobs *k, int z, const char *name) {
  if (z < 0 || z >= k->Z) return kn_err(KNOBS_ERR_ARG, "latent %d out of range (the model has %d)", z, k->Z);
  size_t n = strlen(name);
  if (n >= sizeof k->knobs[z].name) return kn_err(KNOBS_ERR_ARG, "name longer than %zu bytes", sizeof k->knobs[z].name - 1);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return kn_err(KNOBS_ERR_ARG, "name has a control character");
  if (dim_number(name) >= 0) return kn_err(KNOBS_ERR_ARG, "name \"%s\" reads as a latent number; choose a word", name);
  snprintf(k->knobs[z].name, sizeof k->knobs[z].name, "%s", name);
  return KNOBS_OK;
}

const char *knobs_knobs_label(const knobs_knobs *k, int z, char *buf, size_t n) {
  if (k && z >= 0 && z < k->Z && k->knobs[z].name[0]) snprintf(buf, n, "%s", k->knobs[z].name);
  else if (k && z >= 0 && z < k->Z && k->knobs[z].factor[0]) snprintf(buf, n, "%s", k->knobs[z].factor);
  else snprintf(buf, n, "z%d", z);
  return buf;
}

int knobs_knobs_find(const knobs_knobs *k, int Z, const char *name) {
  int d = dim_number(name);
  if (d >= 0) {
    if (d < Z) return d;
    kn_err(KNOBS_ERR_ARG, "latent %d out of range: the model has %d (0..%d)", d, Z, Z - 1);
    return -1;
  }
  if (k && k->Z == Z) {
    for (int z = 0; z < Z; z++) if (k->knobs[z].name[0] && !strcmp(k->knobs[z].name, name)) return z;
    int hit = -1, hits = 0;
    for (int z = 0; z < Z; z++)
      if (!k->knobs[z].name[0] && !strcmp(k->knobs[z].factor, name)) hit = hit < 0 ? z : hit, hits++;
    if (hits == 1) return hit;
    if (hits > 1) {
      /* several latents track this factor: take the one of largest MI */
      int best = -1;
      for (int z = 0; z < Z; z++)
        if (!k->knobs[z].name[0] && !strcmp(k->knobs[z].factor, name) &&
            (best < 0 || k->knobs[z].mi[k->knobs[z].factor_index] > k->knobs[best].mi[k->knobs[best].factor_index]))
          best = z;
      return best;
    }
  }
  char known[512] = "";
  size_t used = 0;
  for (int z = 0; k && k->Z == Z && z < Z && used + 80 < sizeof known; z++) {
    char b[64];
    knobs_knobs_label(k, z, b, sizeof b);
    used += (size_t)snprintf(known + used, sizeof known - used, "%s%d=%s", used ? ", " : "", z, b);
  }
  kn_err(KNOBS_ERR_ARG, "unknown knob \"%s\": give a latent number 0..%d%s%s%s", name, Z - 1,
         known[0] ? " or a name (" : (k ? "" : " (the model has no knobs.json: run 'knobs name')"), known,
         known[0] ? ")" : "");
  return -1;
}

double knobs_knob_value(const knobs_knob *k, double c) {
  int n = k->n_knots;
  if (n < 2) {
    kn_err(KNOBS_ERR_ARG, "the knob has no calibration (it tracks no factor: run 'knobs name')");
    return NAN;
  }
  if (c <= k->knot_code[0]) return k->knot_value[0];
  if (c >= k->knot_code[n - 1]) return k->knot_value[n - 1];
  int i = 1;
  while (k->knot_code[i] < c) i++;
  double t = (c - k->knot_code[i - 1]) / (k->knot_code[i] - k->knot_code[i - 1]);
  return k->knot_value[i - 1] + t * (k->knot_value[i] - k->knot_value[i - 1]);
}

knobs_status knobs_knob_code(const knobs_knob *k, double v, double *c) {
  int n = k->n_knots;
  if (n < 2) return kn_err(KNOBS_ERR_ARG, "the knob has no calibration (it tracks no factor: run 'knobs name')");
  if (!isfinite(v)) return kn_err(KNOBS_ERR_ARG, "factor value %g is not a number", v);
  double lo = fmin(k->knot_value[0], k->knot_value[n - 1]), hi = fmax(k->knot_value[0], k->knot_value[n - 1]);
  if (v < lo || v > hi)
    return kn_err(KNOBS_ERR_ARG, "factor value %g is outside what this knob reaches (%g..%g)", v, lo, hi);
  /* the codes where the monotone map equals v form an interval [a, b]: return its middle */
  double a = NAN, b = NAN;
  for (int i = 1; i < n; i++) {
    double v0 = k->knot_value[i - 1], v1 = k->knot_value[i];
    if ((v - v0) * (v - v1) > 0) continue;
    double x0, x1;
    if (v0 == v1) x0 = k->knot_code[i - 1], x1 = k->knot_code[i];
    else x0 = x1 = k->knot_code[i - 1] + (v - v0) / (v1 - v0) * (k->knot_code[i] - k->knot_code[i - 1]);
    if (isnan(a)) a = x0;
    b = x1;
  }
  *c = 0.5 * (a + b);
  return KNOBS_OK;
}

knobs_status knobs_knob_names(const char *model_path, int Z, char (*names)[64]) {
  for (int z = 0; z < Z; z++) names[z][0] = 0;
  knobs_knobs *k;
  knobs_status s = knobs_knobs_read(model_path, Z, &k);
  if (s || !k) return s;
  for (int z = 0; z < Z; z++)
    snprintf(names[z], 64, "%s", k->knobs[z].name[0] ? k->knobs[z].name : k->knobs[z].factor);
  knobs_knobs_free(k);
  return KNOBS_OK;
}
