/* checkpoint.c: saving and loading models as safetensors (docs/formats.md).
 *
 * A checkpoint is two files. The model file holds every parameter and buffer under its PyTorch
 * state_dict name (num_batches_tracked as I64, the rest F32) and nothing else, so that
 * `module.load_state_dict(load_file(path))` loads it strictly. The optimizer file holds per
 * optimizer "optim.<name>.exp_avg", ".exp_avg_sq" (flat F32 over the optimizer's parameters in
 * file order) and ".step" (I64 scalar). Metadata of both (all strings, as the format
 * requires): format "pt", knobs_version, model, step; the model file adds config (the JSON of
 * the config), the optimizer file whatever the caller adds (a run adds its seconds).
 * Checkpoints written before the split hold the optim.* tensors in the model file; they still
 * load, and knobs_model_load_optimizer reads their optimizer state.
 * Loading is strict: every tensor the model needs must be present with its exact dtype and
 * shape, no unknown tensor may be left over, and tensors holding NaN or Inf are refused unless
 * the caller asks for them (knobs_load_opts.allow_nonfinite).
 * Also here: knobs_model_set, the settings of a built model that may change when it resumes. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "models/model.h"

/* ---- saving ------------------------------------------------------------------------------- */


/* The metadata both checkpoint files start with (all strings, as safetensors requires):
 * format, knobs_version, model, step. NULL if out of memory (cJSON then adds nothing). */
static cJSON *base_meta(const knobs_model *m) {
  cJSON *meta = cJSON_CreateObject();
  char step[32];
  snprintf(step, sizeof step, "%ld", m->step);
  cJSON_AddStringToObject(meta, "format", "pt");
  cJSON_AddStringToObject(meta, "knobs_version", KNOBS_VERSION);
  cJSON_AddStringToObject(meta, "model", knobs_config_string(&m->cfg, "model"));
  cJSON_AddStringToObject(meta, "step", step);
  return meta;
}

static knobs_status save_model_to(const knobs_model *m, const char *path) {
  const kn_net *net = &m->net;
  kn_st_entry *e = calloc((size_t)net->np + 1, sizeof *e);
  int64_t *nbt = calloc((size_t)net->np + 1, sizeof *nbt);
  if (!e || !nbt) {
    free(e), free(nbt);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  }
  for (int i = 0; i < net->np; i++) {
    const kn_param *q = &net->P[i];
    const float *data = (q->buffer ? net->buf : net->p) + q->off;
    e[i].name = q->name;
    e[i].ndim = q->ndim;
    for (int d = 0; d < q->ndim; d++) e[i].shape[d] = q->shape[d];
    if (q->buffer && strstr(q->name, "num_batches_tracked")) {
      nbt[i] = (int64_t)data[0];
      e[i].dtype = KNOBS_I64;
      e[i].data = &nbt[i];
    } else {
      e[i].dtype = KNOBS_F32;
      e[i].data = data;
    }
  }
  char *cfg = knobs_config_to_json(&m->cfg);
  cJSON *meta = base_meta(m);
  if (cfg) cJSON_AddStringToObject(meta, "config", cfg);
  char *mj = cJSON_PrintUnformatted(meta);
  knobs_status s = (!cfg || !mj) ? kn_err(KNOBS_ERR_NOMEM, "%s: cannot build the header", path)
                                 : kn_st_write(path, e, net->np, mj);
  cJSON_Delete(meta);
  free(mj), free(cfg), free(e), free(nbt);
  return s;
}

static knobs_status save_optimizer_to(const knobs_model *m, const char *path, const char *extra) {
  kn_st_entry e[3 * KN_MAX_OPT];
  int64_t steps[KN_MAX_OPT];
  char names[3 * KN_MAX_OPT][64];
  int k = 0;
  for (int o = 0; o < m->nopt; o++) {
    const kn_adam *a = &m->opt[o];
    kn_strfmt(names[k], 64, "optim.%s.exp_avg", m->opt_name[o]);
    kn_strfmt(names[k + 1], 64, "optim.%s.exp_avg_sq", m->opt_name[o]);
    kn_strfmt(names[k + 2], 64, "optim.%s.step", m->opt_name[o]);
    e[k] = (kn_st_entry){.name = names[k], .dtype = KNOBS_F32, .ndim = 1, .shape = {(int64_t)a->n}, .data = a->m};
    e[k + 1] = (kn_st_entry){.name = names[k + 1], .dtype = KNOBS_F32, .ndim = 1, .shape = {(int64_t)a->n}, .data = a->v};
    steps[o] = a->t;
    e[k + 2] = (kn_st_entry){.name = names[k + 2], .dtype = KNOBS_I64, .ndim = 0, .data = &steps[o]};
    k += 3;
  }
  cJSON *meta = base_meta(m);
  knobs_status s = KNOBS_OK;
  if (extra) {
    cJSON *x = cJSON_Parse(extra);
    if (!x || !cJSON_IsObject(x)) s = kn_err(KNOBS_ERR_ARG, "%s: extra metadata is not a JSON object", path);
    for (cJSON *it = x ? x->child : NULL; it && !s; it = it->next) {
      if (!cJSON_IsString(it))
        s = kn_err(KNOBS_ERR_ARG, "%s: extra metadata '%s' is not a string", path, it->string);
      else if (cJSON_GetObjectItemCaseSensitive(meta, it->string))
        s = kn_err(KNOBS_ERR_ARG, "%s: extra metadata '%s' is a reserved key", path, it->string);
      else
        cJSON_AddStringToObject(meta, it->string, it->valuestring);
    }
    cJSON_Delete(x);
  }
  char *mj = s ? NULL : cJSON_PrintUnformatted(meta);
  if (!s) s = mj ? kn_st_write(path, e, k, mj) : kn_err(KNOBS_ERR_NOMEM, "%s: cannot build the header", path);
  cJSON_Delete(meta);
  free(mj);
  return s;
}

knobs_status knobs_model_save(const knobs_model *m, const char *path) { return save_model_to(m, path); }

knobs_status knobs_model_save_optimizer(const knobs_model *m, const char *path, const char *meta_json) {
  return save_optimizer_to(m, path, meta_json);
}

knobs_status knobs_model_save_checkpoint(const knobs_model *m, const char *model_path,
                                         const char *optimizer_path, const char *meta_json) {
  char mt[1100], ot[1100];
  if (snprintf(mt, sizeof mt, "%s.new", model_path) >= (int)sizeof mt ||
      snprintf(ot, sizeof ot, "%s.new", optimizer_path) >= (int)sizeof ot)
    return kn_err(KNOBS_ERR_ARG, "%s: path too long", model_path);
  knobs_status s = save_optimizer_to(m, ot, meta_json);
  if (!s) s = save_model_to(m, mt);
  if (s) {
    remove(ot), remove(mt);
    return s;
  }
  /* the optimizer first: a stop between the two renames leaves a newer optimizer beside an
   * older model, which knobs_model_load_optimizer refuses by step (never a silent mix) */
  if (rename(ot, optimizer_path) != 0) {
    int e = errno;
    remove(ot), remove(mt);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", optimizer_path, strerror(e));
  }
  if (rename(mt, model_path) != 0) {
    int e = errno;
    remove(mt);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", model_path, strerror(e));
  }
  return KNOBS_OK;
}

/* ---- loading ------------------------------------------------------------------------------ */

static const char *meta_str(cJSON *meta, const char *key) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A step from metadata text: digits only, 0 ..= 1e15 (far beyond any run, far inside long). */
static knobs_status parse_step(const char *path, const char *sj, long *step) {
  errno = 0;
  char *end;
  long long v = strtoll(sj, &end, 10);
  if (end == sj || *end || errno == ERANGE || v < 0 || v > 1000000000000000LL || sj[0] == '-' || sj[0] == '+' ||
      sj[0] == ' ')
    return kn_err(KNOBS_ERR_FORMAT, "%s: bad step '%s' in metadata (a whole number from 0 to 1e15)", path, sj);
  *step = (long)v;
  return KNOBS_OK;
}

/* KNOBS_ERR_DATA naming the tensor if any of its n values is NaN or Inf. */
static knobs_status check_finite(const char *path, const char *name, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      return kn_err(KNOBS_ERR_DATA, "%s: tensor '%s' holds %s at element %zu (a diverged run?); non-finite "
                    "checkpoints are refused unless loaded to inspect them", path, name,
                    isnan(x[i]) ? "NaN" : "Inf", i);
  return KNOBS_OK;
}

static knobs_status get_i64_scalar(const kn_safetensors *st, const char *name, int64_t *v) {
  const kn_st_tensor *t = kn_st_find(st, name);
  if (!t || t->dtype != KNOBS_I64 || t->ndim != 0)
    return kn_err(KNOBS_ERR_FORMAT, "%s: missing or malformed I64 scalar '%s'", st->path, name);
  memcpy(v, st->data + t->begin, 8);
  return KNOBS_OK;
}

/* Read every optimizer's moments and step from st into m (all required). */
static knobs_status read_optim(knobs_model *m, const kn_safetensors *st, int allow_nonfinite) {
  knobs_status s = KNOBS_OK;
  for (int o = 0; o < m->nopt && !s; o++) {
    kn_adam *a = &m->opt[o];
    char nm[64];
    int64_t shape[1] = {(int64_t)a->n};
    kn_strfmt(nm, sizeof nm, "optim.%s.exp_avg", m->opt_name[o]);
    s = kn_st_get_f32(st, nm, 1, shape, a->m);
    if (!s && !allow_nonfinite) s = check_finite(st->path, nm, a->m, a->n);
    kn_strfmt(nm, sizeof nm, "optim.%s.exp_avg_sq", m->opt_name[o]);
    if (!s) s = kn_st_get_f32(st, nm, 1, shape, a->v);
    if (!s && !allow_nonfinite) s = check_finite(st->path, nm, a->v, a->n);
    kn_strfmt(nm, sizeof nm, "optim.%s.step", m->opt_name[o]);
    int64_t v = 0;
    if (!s) s = get_i64_scalar(st, nm, &v);
    if (!s && (v < 0 || v > 1000000000000000LL))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: '%s' is %lld, not a step count", st->path, nm, (long long)v);
    if (!s) a->t = (long)v;
  }
  return s;
}

/* Is `nm` one of the optimizer tensors of m? */
static int is_optim_tensor(const knobs_model *m, const char *nm) {
  static const char *const suffix[] = {"exp_avg", "exp_avg_sq", "step"};
  for (int o = 0; o < m->nopt; o++)
    for (int j = 0; j < 3; j++) {
      char want[64];
      kn_strfmt(want, sizeof want, "optim.%s.%s", m->opt_name[o], suffix[j]);
      if (!strcmp(nm, want)) return 1;
    }
  return 0;
}

/* Read the checkpoint at `path` (a run folder means its model.safetensors); *used_path names
 * the file read (in buf). */
static knobs_status read_checkpoint(const char *path, char *buf, size_t n, kn_safetensors *st, const char **used_path) {
  if (kn_is_dir(path)) {
    snprintf(buf, n, "%s/model.safetensors", path);
    if (!kn_file_exists(buf)) return kn_err(KNOBS_ERR_IO, "%s: no model.safetensors in this run folder", path);
    path = buf;
  }
  *used_path = path;
  return kn_st_read(path, st);
}

/* Parameter or buffer i of m from its tensor in st (num_batches_tracked as an int64 scalar). */
static knobs_status read_param(knobs_model *m, int i, const kn_safetensors *st, const char *path, int allow_nonfinite) {
  const kn_param *q = &m->net.P[i];
  float *dst = kn_param_ptr(&m->net, i);
  knobs_status s;
  if (q->buffer && strstr(q->name, "num_batches_tracked")) {
    int64_t v = 0;
    s = get_i64_scalar(st, q->name, &v);
    if (!s) dst[0] = (float)v;
    return s;
  }
  s = kn_st_get_f32(st, q->name, q->ndim, q->shape, dst);
  if (!s && !allow_nonfinite) s = check_finite(path, q->name, dst, q->n);
  return s;
}

knobs_status knobs_model_load_with(const char *path, const knobs_load_opts *lo, knobs_model **out) {
  *out = NULL;
  knobs_load_opts none = {0};
  if (!lo) lo = &none;
  char buf[1100];
  kn_safetensors st;
  knobs_status s = read_checkpoint(path, buf, sizeof buf, &st, &path);
  if (s) return s;
  cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
  const char *cj = meta ? meta_str(meta, "config") : NULL, *sj = meta ? meta_str(meta, "step") : NULL;
  knobs_model *m = NULL;
  knobs_config *c = NULL;
  long step = 0;
  if (!cj || !sj) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs checkpoint (no config/step in __metadata__)", path);
    goto out;
  }
  if ((s = parse_step(path, sj, &step))) goto out;
  if ((s = knobs_config_create(NULL, &c))) goto out;
  if ((s = knobs_config_from_json(c, cj))) {
    s = kn_err_prefix(s, "%s", path);
    goto out;
  }
  if (lo->threads > 0) {
    char t[32];
    snprintf(t, sizeof t, "%d", lo->threads);
    if ((s = knobs_config_set(c, "threads", t))) goto out;
  }
  if ((s = knobs_model_create(c, &m))) {
    s = kn_err_prefix(s, "%s", path);
    goto out;
  }
  int used = 0;
  for (int i = 0; i < m->net.np && !s; i++) {
    s = read_param(m, i, &st, path, lo->allow_nonfinite);
    used++;
  }
  /* a checkpoint from before the split carries the optimizer state too: all of it, or none */
  int optim = 0;
  for (int i = 0; i < st.n; i++) optim += is_optim_tensor(m, st.t[i].name);
  if (!s && optim) {
    s = read_optim(m, &st, lo->allow_nonfinite);
    used += 3 * m->nopt;
  }
  if (!s && used != st.n) {
    for (int i = 0; i < st.n && !s; i++) {
      const char *nm = st.t[i].name;
      if (kn_net_find(&m->net, nm) < 0 && !is_optim_tensor(m, nm))
        s = kn_err(KNOBS_ERR_FORMAT, "%s: unexpected tensor '%s' for model %s", path, nm, knobs_config_string(&m->cfg, "model"));
    }
    if (!s) s = kn_err(KNOBS_ERR_FORMAT, "%s: %d tensors, the model has %d", path, st.n, used);
  }
  if (!s) m->step = step;
out:
  knobs_config_free(c);
  cJSON_Delete(meta);
  kn_st_free(&st);
  if (s) {
    knobs_model_free(m);
    return s;
  }
  *out = m;
  return KNOBS_OK;
}

knobs_status knobs_model_init_weights(knobs_model *m, const char *path) {
  if (!m || !path) return kn_err(KNOBS_ERR_ARG, "init weights: no model or no path");
  char buf[1100];
  kn_safetensors st;
  knobs_status s = read_checkpoint(path, buf, sizeof buf, &st, &path);
  if (s) return s;
  for (int i = 0; i < m->net.np && !s; i++) {
    const char *name = m->net.P[i].name;
    if (!kn_st_find(&st, name))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: no tensor '%s' to start model %s from (is it a checkpoint of this model and size?)",
                 path, name, knobs_config_string(&m->cfg, "model"));
    else
      s = read_param(m, i, &st, path, 0);
  }
  kn_st_free(&st);
  return s;
}

knobs_status knobs_model_load(const char *path, int threads, knobs_model **out) {
  knobs_load_opts o = {.threads = threads};
  return knobs_model_load_with(path, &o, out);
}

knobs_status knobs_model_load_optimizer(knobs_model *m, const char *path, char **meta_json) {
  if (meta_json) *meta_json = NULL;
  kn_safetensors st;
  knobs_status s = kn_st_read(path, &st);
  if (s) return s;
  cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
  const char *sj = meta ? meta_str(meta, "step") : NULL, *model = meta ? meta_str(meta, "model") : NULL;
  long step = 0;
  int optim = 0;
  for (int i = 0; i < st.n; i++) optim += !strncmp(st.t[i].name, "optim.", 6);
  if (!sj || !model) s = kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs checkpoint (no model/step in __metadata__)", path);
  else if (!(s = parse_step(path, sj, &step))) {
    if (strcmp(model, knobs_config_string(&m->cfg, "model")))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: optimizer state of a %s, the model is a %s", path, model,
                 knobs_config_string(&m->cfg, "model"));
    else if (!optim)
      s = kn_err(KNOBS_ERR_FORMAT, "%s: holds no optimizer state (optim.* tensors)", path);
    else if (step != m->step)
      s = kn_err(KNOBS_ERR_FORMAT, "%s: optimizer state of step %ld, the model is at step %ld: the two files "
                 "are not from one checkpoint (a save was interrupted?)", path, step, m->step);
  }
  for (int i = 0; i < st.n && !s; i++)
    if (!strncmp(st.t[i].name, "optim.", 6) && !is_optim_tensor(m, st.t[i].name))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: unexpected tensor '%s' for model %s", path, st.t[i].name,
                 knobs_config_string(&m->cfg, "model"));
  if (!s) s = read_optim(m, &st, 0);
  if (!s && meta_json && !(*meta_json = cJSON_PrintUnformatted(meta)))
    s = kn_err(KNOBS_ERR_NOMEM, "%s: cannot copy the metadata", path);
  cJSON_Delete(meta);
  kn_st_free(&st);
  return s;
}

/* ---- settings that may change on resume ----------------------------------------------------- */

knobs_status knobs_model_set(knobs_model *m, const char *name, const char *value) {
  const knobs_field *f = NULL;
  for (int i = 0; (f = knobs_config_field(&m->cfg, i)); i++)
    if (!strcmp(f->name, name)) break;
  if (!f || !f->resumable)
    return kn_err(KNOBS_ERR_ARG, "setting '%s' cannot change once the model is built (only steps, threads, "
                  "log_every and ckpt_every may change when a run resumes)", name);
  if (!strcmp(name, "threads"))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "setting 'threads' takes effect when the model is loaded "
                  "(knobs_load_opts.threads)");
  return knobs_config_set(&m->cfg, name, value);
}
