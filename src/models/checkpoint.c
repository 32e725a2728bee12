/* checkpoint.c: saving and loading models as safetensors (docs/formats.md).
 * Tensors: every parameter and buffer under its PyTorch state_dict name (num_batches_tracked
 * as I64, the rest F32), then per optimizer "optim.<name>.exp_avg", ".exp_avg_sq" (flat F32
 * over the optimizer's parameters in file order) and ".step" (I64 scalar). Metadata (all
 * strings, as the format requires): format "pt", knobs_version, model, step, config (the
 * JSON of knobs_config). Loading is strict: every tensor the model needs must be present with
 * its exact dtype and shape, and no unknown tensor may be left over. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "models/model.h"

knobs_status knobs_model_save(const knobs_model *m, const char *path) {
  const kn_net *net = &m->net;
  int n = net->np + 3 * m->nopt;
  kn_st_entry *e = calloc((size_t)n, sizeof *e);
  int64_t *nbt = calloc((size_t)net->np + 1, sizeof *nbt);
  int64_t *steps = calloc((size_t)m->nopt + 1, sizeof *steps);
  char (*names)[64] = calloc((size_t)m->nopt * 3 + 1, sizeof *names);
  if (!e || !nbt || !steps || !names) {
    free(e), free(nbt), free(steps), free(names);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
  }
  int k = 0;
  for (int i = 0; i < net->np; i++) {
    const kn_param *q = &net->P[i];
    const float *data = (q->buffer ? net->buf : net->p) + q->off;
    e[k].name = q->name;
    e[k].ndim = q->ndim;
    for (int d = 0; d < q->ndim; d++) e[k].shape[d] = q->shape[d];
    if (q->buffer && strstr(q->name, "num_batches_tracked")) {
      nbt[i] = (int64_t)data[0];
      e[k].dtype = KNOBS_I64;
      e[k].data = &nbt[i];
    } else {
      e[k].dtype = KNOBS_F32;
      e[k].data = data;
    }
    k++;
  }
  for (int o = 0; o < m->nopt; o++) {
    const kn_adam *a = &m->opt[o];
    kn_strfmt(names[3 * o], 64, "optim.%s.exp_avg", m->opt_name[o]);
    kn_strfmt(names[3 * o + 1], 64, "optim.%s.exp_avg_sq", m->opt_name[o]);
    kn_strfmt(names[3 * o + 2], 64, "optim.%s.step", m->opt_name[o]);
    e[k] = (kn_st_entry){names[3 * o], KNOBS_F32, 1, {(int64_t)a->n}, a->m};
    e[k + 1] = (kn_st_entry){names[3 * o + 1], KNOBS_F32, 1, {(int64_t)a->n}, a->v};
    steps[o] = a->t;
    e[k + 2] = (kn_st_entry){names[3 * o + 2], KNOBS_I64, 0, {0}, &steps[o]};
    k += 3;
  }
  char *cfg = knobs_config_to_json(&m->cfg);
  cJSON *meta = cJSON_CreateObject();
  char step[32];
  snprintf(step, sizeof step, "%ld", m->step);
  cJSON_AddStringToObject(meta, "format", "pt");
  cJSON_AddStringToObject(meta, "knobs_version", KNOBS_VERSION);
  cJSON_AddStringToObject(meta, "model", m->cfg.model);
  cJSON_AddStringToObject(meta, "step", step);
  if (cfg) cJSON_AddStringToObject(meta, "config", cfg);
  char *mj = cJSON_PrintUnformatted(meta);
  knobs_status s = (!cfg || !mj) ? kn_err(KNOBS_ERR_NOMEM, "%s: cannot build the header", path)
                                 : kn_st_write(path, e, k, mj);
  cJSON_Delete(meta);
  free(mj), free(cfg), free(e), free(nbt), free(steps), free(names);
  return s;
}

static const char *meta_str(cJSON *meta, const char *key) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

knobs_status knobs_model_load(const char *path, int threads, knobs_model **out) {
  *out = NULL;
  char buf[1100];
  if (kn_is_dir(path)) {
    snprintf(buf, sizeof buf, "%s/model.safetensors", path);
    if (!kn_file_exists(buf)) return kn_err(KNOBS_ERR_IO, "%s: no model.safetensors in this run folder", path);
    path = buf;
  }
  kn_safetensors st;
  knobs_status s = kn_st_read(path, &st);
  if (s) return s;
  cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
  const char *cj = meta ? meta_str(meta, "config") : NULL, *sj = meta ? meta_str(meta, "step") : NULL;
  knobs_model *m = NULL;
  if (!cj || !sj) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs checkpoint (no config/step in __metadata__)", path);
    goto out;
  }
  knobs_config c;
  kn_config_default(&c, "betavae");
  s = knobs_config_from_json(&c, cj);
  if (s) {
    s = kn_err_prefix(s, "%s", path);
    goto out;
  }
  if (threads > 0) c.threads = threads;
  char *end;
  long step = strtol(sj, &end, 10);
  if (*end || step < 0) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: bad step '%s' in metadata", path, sj);
    goto out;
  }
  s = knobs_model_create(&c, &m);
  if (s) {
    s = kn_err_prefix(s, "%s", path);
    goto out;
  }
  int used = 0;
  for (int i = 0; i < m->net.np && !s; i++) {
    const kn_param *q = &m->net.P[i];
    float *dst = kn_param_ptr(&m->net, i);
    if (q->buffer && strstr(q->name, "num_batches_tracked")) {
      const kn_st_tensor *t = kn_st_find(&st, q->name);
      if (!t || t->dtype != KNOBS_I64 || t->ndim != 0)
        s = kn_err(KNOBS_ERR_FORMAT, "%s: missing or malformed I64 scalar '%s'", path, q->name);
      else {
        int64_t v;
        memcpy(&v, st.data + t->begin, 8);
        dst[0] = (float)v;
      }
    } else {
      s = kn_st_get_f32(&st, q->name, q->ndim, q->shape, dst);
    }
    used++;
  }
  for (int o = 0; o < m->nopt && !s; o++) {
    kn_adam *a = &m->opt[o];
    char nm[64];
    int64_t shape[1] = {(int64_t)a->n};
    kn_strfmt(nm, sizeof nm, "optim.%s.exp_avg", m->opt_name[o]);
    s = kn_st_get_f32(&st, nm, 1, shape, a->m);
    kn_strfmt(nm, sizeof nm, "optim.%s.exp_avg_sq", m->opt_name[o]);
    if (!s) s = kn_st_get_f32(&st, nm, 1, shape, a->v);
    kn_strfmt(nm, sizeof nm, "optim.%s.step", m->opt_name[o]);
    const kn_st_tensor *t = s ? NULL : kn_st_find(&st, nm);
    if (!s && (!t || t->dtype != KNOBS_I64 || t->ndim != 0))
      s = kn_err(KNOBS_ERR_FORMAT, "%s: missing or malformed I64 scalar '%s'", path, nm);
    if (!s) {
      int64_t v;
      memcpy(&v, st.data + t->begin, 8);
      a->t = (long)v;
    }
    used += 3;
  }
  if (!s && used != st.n) {
    for (int i = 0; i < st.n; i++) {
      const char *nm = st.t[i].name;
      int known = kn_net_find(&m->net, nm) >= 0;
      for (int o = 0; o < m->nopt && !known; o++) known = !strncmp(nm, "optim.", 6) && strstr(nm, m->opt_name[o]) != NULL;
      if (!known) {
        s = kn_err(KNOBS_ERR_FORMAT, "%s: unexpected tensor '%s' for model %s", path, nm, c.model);
        break;
      }
    }
    if (!s) s = kn_err(KNOBS_ERR_FORMAT, "%s: %d tensors, the model has %d", path, st.n, used);
  }
  if (!s) m->step = step;
out:
  cJSON_Delete(meta);
  kn_st_free(&st);
  if (s) {
    knobs_model_free(m);
    return s;
  }
  *out = m;
  return KNOBS_OK;
}
