/* slot.c: one model of the panel: loading a run, the per-latent statistics the page shows (KL,
 * code scale, normalised mutual information with each ground-truth factor), the knob names and
 * their file knobs.json, and following a run that is still training (reload when the checkpoint
 * file is replaced). Uses only the public API of models and data.
 *
 * knobs.json (run folder; docs/api.md) is read and written by src/apps/names.c (knobs_name,
 * knobs_knobs_read/write): the statistics are reused when they describe the loaded step and
 * were computed on at least n_mi samples (`knobs name` uses more); names always.
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

/* The knobs (src/apps/names.c): the MI, names and calibrations of knobs.json. The file's
 * statistics are reused when they describe this step and were computed on at least n_mi
 * samples; the names always. Fills s->mi and s->names from s->kk. */
static void take_knobs(kn_slot *s) {
  for (int z = 0; z < s->Z; z++) {
    snprintf(s->names[z], sizeof s->names[z], "%s", s->kk->knobs[z].name);
    for (int k = 0; s->mi && k < s->K; k++) s->mi[(size_t)z * s->K + k] = s->kk->knobs[z].mi[k];
  }
}

/* A names-only table for data without factors (or before the first computation). */
static knobs_status blank_knobs(kn_slot *s) {
  knobs_knobs *k;
  knobs_status st = knobs_knobs_create(s->Z, s->K, &k);
  if (st) return st;
  k->step = s->step;
  snprintf(k->data, sizeof k->data, "%s", s->data_name);
  for (int q = 0; q < s->K; q++) snprintf(k->factors[q], sizeof k->factors[q], "%s", s->factor_names[q]);
  knobs_knobs_free(s->kk);
  s->kk = k;
  return KNOBS_OK;
}

/* knobs.json as it is on disk, or NULL (a missing or unreadable file is not an error here:
 * the panel then computes and writes a new one). */
static knobs_knobs *read_knobs(kn_slot *s) {
  knobs_knobs *k = NULL;
  if (knobs_knobs_read(s->run, s->Z, &k)) knobs_clear_error();
  return k;
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

static knobs_status compute_all(kn_slot *s) {
  knobs_status st = compute_kl(s);
  if (st) return st;
  knobs_knobs *file = read_knobs(s);
  if (s->K == 0) {
    if ((st = blank_knobs(s))) {
      knobs_knobs_free(file);
      return st;
    }
    knobs_knobs_merge_names(s->kk, file);
    knobs_knobs_free(file);
    take_knobs(s);
    return KNOBS_OK;
  }
  if (file && file->step == s->step && file->n >= s->n_mi && file->K == s->K) {
    knobs_knobs_free(s->kk);
    s->kk = file;
    take_knobs(s);
    return KNOBS_OK;
  }
  knobs_name_opts o;
  knobs_name_opts_default(&o);
  o.n = s->n_mi, o.n_kl = s->n_kl, o.seed = STAT_SEED;
  knobs_knobs *k;
  if ((st = knobs_name(s->m, s->d, &o, &k))) {
    knobs_knobs_free(file);
    return st;
  }
  knobs_knobs_merge_names(k, file);
  knobs_knobs_free(file);
  knobs_knobs_free(s->kk);
  s->kk = k;
  take_knobs(s);
  /* the cache is a convenience: a read-only run folder still serves */
  if (knobs_knobs_write(s->kk, s->run)) knobs_clear_error();
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
  if ((st = compute_all(s))) return kn_err_prefix(st, "%s: statistics", path);
  s->last_check = kn_now();
  return KNOBS_OK;
}

void kn_slot_close(kn_slot *s) {
  knobs_model_free(s->m);
  knobs_data_free(s->d);
  free(s->kl), free(s->scale), free(s->order), free(s->names), free(s->mi);
  knobs_knobs_free(s->kk);
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
  char old[64];
  memcpy(old, s->kk->knobs[j].name, sizeof old);
  knobs_status st = knobs_knobs_rename(s->kk, j, name);
  if (!st) {
    /* another writer (knobs name --set) may have renamed other knobs since: keep theirs */
    knobs_knobs *file = read_knobs(s);
    if (file && file->Z == s->Z)
      for (int z = 0; z < s->Z; z++) if (z != j) memcpy(s->kk->knobs[z].name, file->knobs[z].name, sizeof old);
    knobs_knobs_free(file);
    st = knobs_knobs_write(s->kk, s->run);
  }
  if (st) memcpy(s->kk->knobs[j].name, old, sizeof old);
  take_knobs(s);
  return st;
}
