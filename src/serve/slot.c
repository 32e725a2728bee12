/* slot.c: one model of the panel: loading a run, the per-latent statistics the page shows (KL,
 * code scale, normalised mutual information with each ground-truth factor), the knob names and
 * their file knobs.json, and following a run that is still training (reload when the checkpoint
 * file is replaced). Uses only the public API of models and data.
 *
 * knobs.json (run folder; docs/api.md): {"version":1, "step":S, "n_mi":N, "factors":[...],
 * "latents":[{"name":"x"|null, "factor":"posX"|null, "mi":[...]}, ...]} with one latent entry per
 * code dimension in dimension order. The MI is reused when step and n_mi match; names always.
 *
 * Not here: HTTP (server.c) and the request handlers (api.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "serve/serve.h"

#define STAT_SEED 0x6b6e6f6273ULL /* fixed: the same run gives the same statistics */
#define MI_MIN_NAME 0.05          /* normalised MI a factor needs to name a latent */

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static int ck_stat(const char *path, double *mtime, ino_t *ino, off_t *size) {
  struct stat st;
  if (stat(path, &st)) return -1;
  *mtime = (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
  *ino = st.st_ino;
  *size = st.st_size;
  return 0;
}

/* KL per latent (knobs_model_evaluate's kl_dim) and the std of the posterior mean, over n_kl
 * dataset observations drawn with a fixed seed; the KL order. */
static knobs_status compute_kl(kn_slot *s) {
  size_t px = (size_t)s->C * s->H * s->W;
  int n = s->n_kl;
  float *x = malloc(sizeof(float) * px * (size_t)n), *mu = malloc(sizeof(float) * (size_t)n * s->Z);
  knobs_status st = KNOBS_OK;
  if (!x || !mu) st = kn_err(KNOBS_ERR_NOMEM, "out of memory for %d samples", n);
  if (!st) st = knobs_data_draw(s->d, n, STAT_SEED, 1, x, NULL);
  knobs_terms t;
  if (!st) st = knobs_model_evaluate(s->m, x, n, STAT_SEED, &t, s->kl);
  if (!st) st = knobs_model_encode(s->m, x, n, mu, NULL);
  if (!st) {
    for (int j = 0; j < s->Z; j++) {
      double a = 0, b = 0;
      for (int i = 0; i < n; i++) a += mu[(size_t)i * s->Z + j];
      a /= n;
      for (int i = 0; i < n; i++) {
        double e = mu[(size_t)i * s->Z + j] - a;
        b += e * e;
      }
      s->scale[j] = sqrt(b / n);
      if (!isfinite(s->kl[j])) s->kl[j] = 0;
    }
    for (int j = 0; j < s->Z; j++) s->order[j] = j;
    for (int a = 1; a < s->Z; a++) /* insertion sort, stable: ties keep dimension order */
      for (int b = a; b > 0 && s->kl[s->order[b]] > s->kl[s->order[b - 1]]; b--) {
        int t2 = s->order[b];
        s->order[b] = s->order[b - 1], s->order[b - 1] = t2;
      }
  }
  free(x), free(mu);
  return st;
}

/* Normalised MI as disentanglement_lib's MIG computes it: each code dimension discretised into
 * 20 equal-width bins between its min and max (np.histogram + np.digitize), MI in nats
 * (sklearn's mutual_info_score) divided by the entropy of the factor. */
static knobs_status compute_mi(kn_slot *s) {
  int n = s->n_mi, Z = s->Z, K = s->K, chunk = 250;
  size_t px = (size_t)s->C * s->H * s->W;
  float *x = malloc(sizeof(float) * px * (size_t)chunk), *mu = malloc(sizeof(float) * (size_t)n * Z);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)n * K), *fc = malloc(sizeof(int32_t) * (size_t)chunk * K);
  int *bins = malloc(sizeof(int) * (size_t)n);
  knobs_status st = KNOBS_OK;
  if (!x || !mu || !f || !fc || !bins) st = kn_err(KNOBS_ERR_NOMEM, "out of memory for %d samples", n);
  for (int i = 0; !st && i < n; i += chunk) {
    int b = n - i < chunk ? n - i : chunk;
    st = knobs_data_draw(s->d, b, STAT_SEED, 2 + (uint64_t)(i / chunk), x, fc);
    if (!st) st = knobs_model_encode(s->m, x, b, mu + (size_t)i * Z, NULL);
    if (!st) memcpy(f + (size_t)i * K, fc, sizeof(int32_t) * (size_t)b * K);
  }
  for (int k = 0; !st && k < K; k++) {
    int nk = 0;
    for (int i = 0; i < n; i++) nk = f[(size_t)i * K + k] + 1 > nk ? f[(size_t)i * K + k] + 1 : nk;
    double *pv = calloc((size_t)nk, sizeof(double)), *pj = calloc((size_t)nk * KN_SERVE_MI_BINS, sizeof(double));
    if (!pv || !pj) {
      free(pv), free(pj);
      st = kn_err(KNOBS_ERR_NOMEM, "out of memory for the MI table");
      break;
    }
    for (int i = 0; i < n; i++) pv[f[(size_t)i * K + k]] += 1.0 / n;
    double hv = 0;
    for (int c = 0; c < nk; c++) if (pv[c] > 0) hv -= pv[c] * log(pv[c]);
    for (int j = 0; j < Z; j++) {
      float lo = INFINITY, hi = -INFINITY;
      for (int i = 0; i < n; i++) {
        float v = mu[(size_t)i * Z + j];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
      }
      for (int i = 0; i < n; i++) {
        int q = hi > lo ? (int)((mu[(size_t)i * Z + j] - lo) / (hi - lo) * KN_SERVE_MI_BINS) : 0;
        bins[i] = q < 0 ? 0 : q >= KN_SERVE_MI_BINS ? KN_SERVE_MI_BINS - 1 : q;
      }
      memset(pj, 0, sizeof(double) * (size_t)nk * KN_SERVE_MI_BINS);
      double pz[KN_SERVE_MI_BINS] = {0};
      for (int i = 0; i < n; i++) {
        pj[(size_t)f[(size_t)i * K + k] * KN_SERVE_MI_BINS + bins[i]] += 1.0 / n;
        pz[bins[i]] += 1.0 / n;
      }
      double mi = 0;
      for (int c = 0; c < nk; c++)
        for (int q = 0; q < KN_SERVE_MI_BINS; q++) {
          double p = pj[(size_t)c * KN_SERVE_MI_BINS + q];
          if (p > 0) mi += p * log(p / (pv[c] * pz[q]));
        }
      s->mi[(size_t)j * K + k] = hv > 0 ? fmax(0, mi / hv) : 0;
    }
    free(pv), free(pj);
  }
  free(x), free(mu), free(f), free(fc), free(bins);
  return st;
}

static char *read_text(const char *path, size_t max) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  char *b = malloc(max + 1);
  size_t n = b ? fread(b, 1, max, fp) : 0;
  fclose(fp);
  if (b) b[n] = 0;
  return b;
}

/* knobs.json: names always; the MI only if it was computed on this step with this n. Returns 1
 * if the MI was taken from the file. */
static int load_names(kn_slot *s) {
  char path[1100];
  snprintf(path, sizeof path, "%s/knobs.json", s->run);
  char *txt = read_text(path, 1 << 20);
  if (!txt) return 0;
  cJSON *j = cJSON_Parse(txt);
  free(txt);
  int mi_ok = 0;
  cJSON *lat = cJSON_GetObjectItemCaseSensitive(j, "latents");
  if (cJSON_IsArray(lat) && cJSON_GetArraySize(lat) == s->Z) {
    cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step"), *nmi = cJSON_GetObjectItemCaseSensitive(j, "n_mi");
    mi_ok = s->K > 0 && cJSON_IsNumber(step) && (long)step->valuedouble == s->step && cJSON_IsNumber(nmi) &&
            (int)nmi->valuedouble == s->n_mi;
    for (int z = 0; z < s->Z; z++) {
      cJSON *e = cJSON_GetArrayItem(lat, z), *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
      if (cJSON_IsString(nm)) snprintf(s->names[z], sizeof s->names[z], "%s", nm->valuestring);
      cJSON *mi = cJSON_GetObjectItemCaseSensitive(e, "mi");
      if (!cJSON_IsArray(mi) || cJSON_GetArraySize(mi) != s->K) mi_ok = 0;
      for (int k = 0; mi_ok && k < s->K; k++) {
        cJSON *v = cJSON_GetArrayItem(mi, k);
        if (!cJSON_IsNumber(v)) mi_ok = 0;
        else s->mi[(size_t)z * s->K + k] = v->valuedouble;
      }
    }
  }
  cJSON_Delete(j);
  return mi_ok;
}

void kn_slot_label(const kn_slot *s, int j, char *name, size_t n, char *factor, size_t nf) {
  factor[0] = 0;
  if (s->K > 0 && s->mi) {
    int best = 0;
    for (int k = 1; k < s->K; k++) if (s->mi[(size_t)j * s->K + k] > s->mi[(size_t)j * s->K + best]) best = k;
    if (s->mi[(size_t)j * s->K + best] >= MI_MIN_NAME) snprintf(factor, nf, "%s", s->factor_names[best]);
  }
  if (s->names[j][0]) snprintf(name, n, "%s", s->names[j]);
  else if (factor[0]) snprintf(name, n, "%s", factor);
  else snprintf(name, n, "z%d", j);
}

/* Write knobs.json to a temporary name in the run folder and rename it over the old one. */
static knobs_status save_names(kn_slot *s) {
  cJSON *j = cJSON_CreateObject(), *fac = cJSON_AddArrayToObject(j, "factors"), *lat = cJSON_AddArrayToObject(j, "latents");
  cJSON_AddNumberToObject(j, "version", 1);
  cJSON_AddNumberToObject(j, "step", (double)s->step);
  cJSON_AddNumberToObject(j, "n_mi", s->n_mi);
  for (int k = 0; k < s->K; k++) cJSON_AddItemToArray(fac, cJSON_CreateString(s->factor_names[k]));
  for (int z = 0; z < s->Z; z++) {
    cJSON *e = cJSON_CreateObject();
    char nm[64], f[32];
    kn_slot_label(s, z, nm, sizeof nm, f, sizeof f);
    if (s->names[z][0]) cJSON_AddStringToObject(e, "name", s->names[z]);
    else cJSON_AddNullToObject(e, "name");
    if (f[0]) cJSON_AddStringToObject(e, "factor", f);
    else cJSON_AddNullToObject(e, "factor");
    cJSON *mi = cJSON_AddArrayToObject(e, "mi");
    for (int k = 0; k < s->K; k++) cJSON_AddItemToArray(mi, cJSON_CreateNumber(round(s->mi[(size_t)z * s->K + k] * 1e6) / 1e6));
    cJSON_AddItemToArray(lat, e);
  }
  char *txt = cJSON_Print(j);
  cJSON_Delete(j);
  if (!txt) return kn_err(KNOBS_ERR_NOMEM, "out of memory for knobs.json");
  char path[1100], tmp[1200];
  snprintf(path, sizeof path, "%s/knobs.json", s->run);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *fp = fopen(tmp, "wb");
  knobs_status st = KNOBS_OK;
  if (!fp) st = kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
  else {
    int bad = fputs(txt, fp) < 0 || fputc('\n', fp) < 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path)) {
      st = kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
      unlink(tmp);
    }
  }
  free(txt);
  return st;
}

static knobs_status compute_all(kn_slot *s) {
  knobs_status st = compute_kl(s);
  if (st || s->K == 0) return st;
  if (load_names(s)) return KNOBS_OK;
  if ((st = compute_mi(s))) return st;
  /* the cache is a convenience: a read-only run folder still serves */
  if (save_names(s)) knobs_clear_error();
  return KNOBS_OK;
}

static void set_model_facts(kn_slot *s) {
  s->step = knobs_model_step(s->m);
  const knobs_config *c = knobs_model_config(s->m);
  const char *mn = knobs_config_string(c, "model");
  snprintf(s->model_name, sizeof s->model_name, "%s", mn ? mn : "?");
}

knobs_status kn_slot_open(kn_slot *s, const char *path, int model_threads, int n_kl, int n_mi) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->lock, NULL);
  s->n_kl = n_kl, s->n_mi = n_mi, s->model_threads = model_threads;
  if (strlen(path) >= sizeof s->run - 32) return kn_err(KNOBS_ERR_ARG, "run path too long: %s", path);
  if (ends_with(path, ".safetensors")) {
    snprintf(s->ckpt, sizeof s->ckpt, "%s", path);
    const char *sl = strrchr(path, '/');
    if (sl) snprintf(s->run, sizeof s->run, "%.*s", (int)(sl - path), path);
    else snprintf(s->run, sizeof s->run, ".");
  } else {
    snprintf(s->run, sizeof s->run, "%s", path);
    snprintf(s->ckpt, sizeof s->ckpt, "%s/model.safetensors", path);
  }
  if (ck_stat(s->ckpt, &s->ck_mtime, &s->ck_ino, &s->ck_size))
    return kn_err(KNOBS_ERR_IO, "%s: no checkpoint (%s)", path, strerror(errno));
  knobs_status st = knobs_model_load(s->ckpt, model_threads, &s->m);
  if (st) return kn_err_prefix(st, "%s", path);
  const knobs_config *c = knobs_model_config(s->m);
  if ((st = knobs_model_open_data(s->m, NULL, &s->d))) return kn_err_prefix(st, "%s: the model's data", path);
  const knobs_data_info *in = knobs_data_info_get(s->d);
  s->C = (int)knobs_config_number(c, "C"), s->H = (int)knobs_config_number(c, "H"), s->W = (int)knobs_config_number(c, "W");
  if (!in->is_image || s->C > 3 || s->C == 2)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "%s: the panel shows image models (1 or 3 channels); %s is not one", path, in->name);
  snprintf(s->data_name, sizeof s->data_name, "%s", in->name);
  s->Z = knobs_model_code_dim(s->m);
  s->K = in->K;
  for (int k = 0; k < s->K; k++) snprintf(s->factor_names[k], sizeof s->factor_names[k], "%s", in->factor_names[k]);
  s->kl = calloc((size_t)s->Z, sizeof(double));
  s->scale = calloc((size_t)s->Z, sizeof(double));
  s->order = calloc((size_t)s->Z, sizeof(int));
  s->names = calloc((size_t)s->Z, sizeof *s->names);
  s->mi = s->K ? calloc((size_t)s->Z * s->K, sizeof(double)) : NULL;
  if (!s->kl || !s->scale || !s->order || !s->names || (s->K && !s->mi)) return kn_err(KNOBS_ERR_NOMEM, "out of memory");
  set_model_facts(s);
  if (s->K == 0) load_names(s);
  if ((st = compute_all(s))) return kn_err_prefix(st, "%s: statistics", path);
  s->last_check = kn_now();
  return KNOBS_OK;
}

void kn_slot_close(kn_slot *s) {
  knobs_model_free(s->m);
  knobs_data_free(s->d);
  free(s->kl), free(s->scale), free(s->order), free(s->names), free(s->mi);
  pthread_mutex_destroy(&s->lock);
  memset(s, 0, sizeof *s);
}

knobs_status kn_slot_refresh(kn_slot *s, double min_interval) {
  double now = kn_now();
  if (now - s->last_check < min_interval) return KNOBS_OK;
  s->last_check = now;
  double mt;
  ino_t ino;
  off_t size;
  if (ck_stat(s->ckpt, &mt, &ino, &size)) return KNOBS_OK; /* between unlink and rename: later */
  if (mt == s->ck_mtime && ino == s->ck_ino && size == s->ck_size) return KNOBS_OK;
  /* The trainer replaces the checkpoint by rename, so the file opened here is whole. */
  knobs_model *m;
  knobs_status st = knobs_model_load(s->ckpt, s->model_threads, &m);
  if (st) return kn_err_prefix(st, "%s: reload", s->ckpt);
  int z = knobs_model_code_dim(m);
  if (z != s->Z) {
    knobs_model_free(m);
    return kn_err(KNOBS_ERR_DATA, "%s: the new checkpoint has %d latents, not %d", s->ckpt, z, s->Z);
  }
  knobs_model_free(s->m);
  s->m = m;
  s->ck_mtime = mt, s->ck_ino = ino, s->ck_size = size;
  set_model_facts(s);
  s->reloads++;
  return compute_all(s);
}

knobs_status kn_slot_rename(kn_slot *s, int j, const char *name) {
  if (j < 0 || j >= s->Z) return kn_err(KNOBS_ERR_ARG, "latent %d out of range (the model has %d)", j, s->Z);
  size_t n = strlen(name);
  if (n >= sizeof s->names[0]) return kn_err(KNOBS_ERR_ARG, "name longer than %zu bytes", sizeof s->names[0] - 1);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return kn_err(KNOBS_ERR_ARG, "name has a control character");
  char old[64];
  memcpy(old, s->names[j], sizeof old);
  snprintf(s->names[j], sizeof s->names[j], "%s", name);
  knobs_status st = save_names(s);
  if (st) memcpy(s->names[j], old, sizeof old);
  return st;
}
