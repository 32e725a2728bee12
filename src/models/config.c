/* config.c: the model configuration: defaults, the one descriptor table of fields (which the
 * CLI turns into flags, and which is serialised to the run's config.json and the checkpoint
 * metadata), checked setters, validation, and the choice of architecture from the data. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "models/model.h"

#define F(name, kind, field, lo, hi, help) \
  {{name, kind, lo, hi, help, NULL, 0, 0}, offsetof(knobs_config, field), sizeof(((knobs_config *)0)->field)}
/* a setting that may change when a run resumes */
#define FR(name, kind, field, lo, hi, help) \
  {{name, kind, lo, hi, help, NULL, 1, 0}, offsetof(knobs_config, field), sizeof(((knobs_config *)0)->field)}
/* a setting taken from the data */
#define FD(name, field, help) \
  {{name, KNOBS_FIELD_INT, 0, 65536, help, NULL, 0, 1}, offsetof(knobs_config, field), sizeof(int)}

/* The settings every model shares; each family's own are in its file (kn_settings). */
static const kn_field common[] = {
    F("model", KNOBS_FIELD_STR, model, 0, 0, "model to train (see 'knobs help models')"),
    F("data", KNOBS_FIELD_STR, data, 0, 0, "dataset name or file"),
    F("arch", KNOBS_FIELD_STR, arch, 0, 0, "architecture: conv | mlp (default: conv for images, mlp for vectors)"),
    F("likelihood", KNOBS_FIELD_STR, likelihood, 0, 0, "bernoulli | gaussian | nb | zinb (default: bernoulli for images, gaussian for vectors; nb, zinb: raw counts)"),
    F("latents", KNOBS_FIELD_INT, z_dim, 1, 1024, "latent dimensions Z"),
    F("hidden", KNOBS_FIELD_INT, hidden, 1, 65536, "mlp architecture: hidden width"),
    F("batch", KNOBS_FIELD_INT, batch, 1, 65536, "batch size"),
    FR("steps", KNOBS_FIELD_LONG, steps, 1, 1e12, "total training steps"),
    F("seed", KNOBS_FIELD_U64, seed, 0, 0, "random seed (data, noise, initialisation)"),
    FR("threads", KNOBS_FIELD_INT, threads, 1, 1024, "worker threads"),
    F("lr", KNOBS_FIELD_DOUBLE, lr, 1e-12, 10, "Adam learning rate"),
    F("adam_beta1", KNOBS_FIELD_DOUBLE, adam_beta1, 0, 0.999999, "Adam beta1"),
    F("adam_beta2", KNOBS_FIELD_DOUBLE, adam_beta2, 0, 0.99999999, "Adam beta2"),
    F("adam_eps", KNOBS_FIELD_DOUBLE, adam_eps, 1e-30, 1, "Adam epsilon"),
    FR("ckpt_every", KNOBS_FIELD_LONG, ckpt_every, 0, 1e12, "steps between checkpoints (0: only at the end)"),
    FR("log_every", KNOBS_FIELD_LONG, log_every, 1, 1e12, "steps between log lines"),
    F("data_factors", KNOBS_FIELD_STR, data_factors, 0, 0, "labels file (.npy/.csv) for user data"),
    F("obs_dim", KNOBS_FIELD_INT, obs_dim, 0, 100000, "physics data: observed channels (0: default)"),
    F("noise", KNOBS_FIELD_DOUBLE, noise, -1, 1e6, "physics data: observation noise (-1: default)"),
    F("factor_dist", KNOBS_FIELD_STR, factor_dist, 0, 0, "physics data: uniform | laplace | gauss"),
    F("property_penalty", KNOBS_FIELD_STR, property_penalty, 0, 0,
      "property head (.safetensors) whose prediction on decoded prior samples is penalised in training"),
    F("property_weight", KNOBS_FIELD_DOUBLE, property_weight, -1e6, 1e6,
      "weight W of the property penalty: W > 0 pushes the decoder away from high predictions"),
    F("init", KNOBS_FIELD_STR, init, 0, 0,
      "checkpoint or run folder whose weights start the run (same sizes; fresh optimizer): fine-tuning"),
    FD("C", C, "input channels (from the data)"),
    FD("H", H, "input height (from the data)"),
    FD("W", W, "input width (from the data)"),
    FD("T", T, "frames per observation (from the data; 1: not a sequence)"),
};
#define NCOMMON (int)(sizeof common / sizeof common[0])

void kn_config_default(knobs_config *c, const char *model) {
  memset(c, 0, sizeof *c);
  snprintf(c->model, sizeof c->model, "%s", model);
  strcpy(c->data, "dsprites");
  c->z_dim = 10;
  c->hidden = 1200;
  c->batch = 64;
  c->steps = 30000;
  c->seed = 0;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  c->threads = n > 0 ? (int)(n < 64 ? n : 64) : 1;
  c->lr = 1e-4;
  c->adam_beta1 = 0.9;
  c->adam_beta2 = 0.999;
  c->adam_eps = 1e-8;
  c->ckpt_every = 5000;
  c->log_every = 100;
  c->noise = -1;
  c->T = 1;
  const kn_model_ops *o = kn_model_ops_find(model);
  KN_ASSERT(o && o->settings && o->settings->size <= KN_FAMILY_BYTES);
  o->settings->defaults(c->family, model);
}

static const kn_settings *family_of(const char *model) {
  const kn_model_ops *o = kn_model_ops_find(model);
  return o ? o->settings : NULL;
}

/* The setting `name` of c's model and the address of its value (NULL if it has none). */
static const kn_field *find(const knobs_config *c, const char *name, const void **where) {
  for (int i = 0; i < NCOMMON; i++)
    if (!strcmp(common[i].pub.name, name)) {
      *where = (const char *)c + common[i].offset;
      return &common[i];
    }
  const kn_settings *f = family_of(c->model);
  for (int i = 0; f && i < f->n; i++)
    if (!strcmp(f->fields[i].pub.name, name)) {
      *where = c->family + f->fields[i].offset;
      return &f->fields[i];
    }
  return NULL;
}

/* The family (its owner list) that has a setting `name`, if any. */
static const char *owner_elsewhere(const char *name) {
  for (const char *const *m = knobs_model_names(); *m; m++) {
    const kn_settings *f = family_of(*m);
    for (int i = 0; f && i < f->n; i++)
      if (!strcmp(f->fields[i].pub.name, name)) return f->fields[i].pub.owner;
  }
  return NULL;
}

static knobs_status set_model(knobs_config *c, const char *v) {
  if (!strcmp(v, c->model)) return KNOBS_OK;
  if (!kn_model_ops_find(v)) {
    char names[512] = "";
    size_t n = 0;
    for (const char *const *m = knobs_model_names(); *m && n < sizeof names; m++)
      n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", *m);
    return kn_err(KNOBS_ERR_ARG, "unknown model '%s' (known: %s)", v, names);
  }
  snprintf(c->model, sizeof c->model, "%s", v);
  const kn_settings *f = family_of(v);
  memset(c->family, 0, sizeof c->family);
  f->defaults(c->family, v);
  return KNOBS_OK;
}

knobs_status knobs_config_set(knobs_config *c, const char *name, const char *v) {
  if (!strcmp(name, "model")) return set_model(c, v);
  const void *where;
  const kn_field *kf = find(c, name, &where);
  if (!kf) {
    const char *o = owner_elsewhere(name);
    if (o) return kn_err(KNOBS_ERR_ARG, "'%s' is a setting of %s, not of %s", name, o, c->model);
    return kn_err(KNOBS_ERR_ARG, "unknown setting '%s'", name);
  }
  const knobs_field *f = &kf->pub;
  void *p = (void *)where;
  char *end;
  errno = 0;
  switch (f->kind) {
  case KNOBS_FIELD_STR:
    if (strlen(v) >= kf->size) return kn_err(KNOBS_ERR_ARG, "%s: value longer than %zu characters", name, kf->size - 1);
    strcpy(p, v);
    return KNOBS_OK;
  case KNOBS_FIELD_INT:
  case KNOBS_FIELD_LONG: {
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno) return kn_err(KNOBS_ERR_ARG, "%s: '%s' is not a whole number", name, v);
    if ((double)x < f->min || (double)x > f->max)
      return kn_err(KNOBS_ERR_ARG, "%s: %lld out of range [%.15g, %.15g]", name, x, f->min, f->max);
    if (f->kind == KNOBS_FIELD_INT) *(int *)p = (int)x;
    else *(long *)p = (long)x;
    return KNOBS_OK;
  }
  case KNOBS_FIELD_U64: {
    if (*v == '-') return kn_err(KNOBS_ERR_ARG, "%s: '%s' must not be negative", name, v);
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno) return kn_err(KNOBS_ERR_ARG, "%s: '%s' is not a whole number", name, v);
    *(uint64_t *)p = x;
    return KNOBS_OK;
  }
  case KNOBS_FIELD_DOUBLE: {
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x)) return kn_err(KNOBS_ERR_ARG, "%s: '%s' is not a finite number", name, v);
    if (x < f->min || x > f->max) return kn_err(KNOBS_ERR_ARG, "%s: %g out of range [%g, %g]", name, x, f->min, f->max);
    *(double *)p = x;
    return KNOBS_OK;
  }
  }
  return KNOBS_ERR_ARG;
}

knobs_status knobs_config_create(const char *model, knobs_config **out) {
  *out = NULL;
  if (!model) model = "betavae";
  if (!kn_model_ops_find(model)) return set_model(&(knobs_config){0}, model); /* the error */
  knobs_config *c = kn_alloc(sizeof *c, "config");
  if (!c) return KNOBS_ERR_NOMEM;
  kn_config_default(c, model);
  *out = c;
  return KNOBS_OK;
}

void knobs_config_free(knobs_config *c) { kn_free(c); }

knobs_status knobs_config_copy(const knobs_config *c, knobs_config **out) {
  *out = kn_alloc(sizeof **out, "config");
  if (!*out) return KNOBS_ERR_NOMEM;
  **out = *c;
  return KNOBS_OK;
}

knobs_status knobs_config_get(const knobs_config *c, const char *name, char *buf, size_t n) {
  const void *p;
  const kn_field *kf = find(c, name, &p);
  if (!kf) return kn_err(KNOBS_ERR_ARG, "'%s' is not a setting of %s", name, c->model);
  int k = 0;
  switch (kf->pub.kind) {
  case KNOBS_FIELD_STR: k = snprintf(buf, n, "%s", (const char *)p); break;
  case KNOBS_FIELD_INT: k = snprintf(buf, n, "%d", *(const int *)p); break;
  case KNOBS_FIELD_LONG: k = snprintf(buf, n, "%ld", *(const long *)p); break;
  case KNOBS_FIELD_U64: k = snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
  case KNOBS_FIELD_DOUBLE: k = snprintf(buf, n, "%.17g", *(const double *)p); break;
  }
  if (k < 0 || (size_t)k >= n) return kn_err(KNOBS_ERR_ARG, "setting '%s': a buffer of %zu bytes is too small", name, n);
  return KNOBS_OK;
}

static double number_at(const kn_field *kf, const void *p) {
  switch (kf->pub.kind) {
  case KNOBS_FIELD_INT: return *(const int *)p;
  case KNOBS_FIELD_LONG: return (double)*(const long *)p;
  case KNOBS_FIELD_U64: return (double)*(const uint64_t *)p;
  case KNOBS_FIELD_DOUBLE: return *(const double *)p;
  default: return NAN;
  }
}

double knobs_config_number(const knobs_config *c, const char *name) {
  const void *p;
  const kn_field *kf = find(c, name, &p);
  return kf ? number_at(kf, p) : NAN;
}

const char *knobs_config_string(const knobs_config *c, const char *name) {
  const void *p;
  const kn_field *kf = find(c, name, &p);
  return kf && kf->pub.kind == KNOBS_FIELD_STR ? (const char *)p : NULL;
}

const knobs_field *knobs_config_field(const knobs_config *c, int i) {
  if (i < 0) return NULL;
  if (i < NCOMMON) return &common[i].pub;
  const kn_settings *f = family_of(c->model);
  return f && i - NCOMMON < f->n ? &f->fields[i - NCOMMON].pub : NULL;
}

const knobs_field *knobs_model_field(const char *model, int i) {
  const kn_settings *f = model ? family_of(model) : NULL;
  return f && i >= 0 && i < f->n ? &f->fields[i].pub : NULL;
}

/* Every numeric setting of c within its range (configs read from JSON went through set, but
 * a family's defaults or a caller's copy did not). */
static knobs_status check_ranges(const knobs_config *c) {
  for (int i = 0;; i++) {
    const knobs_field *f = knobs_config_field(c, i);
    if (!f) return KNOBS_OK;
    if (f->kind == KNOBS_FIELD_STR || f->kind == KNOBS_FIELD_U64 || f->derived) continue;
    double v = knobs_config_number(c, f->name);
    if (!(v >= f->min && v <= f->max))
      return kn_err(KNOBS_ERR_ARG, "%s: %g out of range [%g, %g]", f->name, v, f->min, f->max);
  }
}

/* The property penalty's rules: a weight needs a head file, and the model's step must go
 * through kn_vae_forward (the head file itself is read when the model is created). */
static knobs_status check_property_penalty(const knobs_config *c, const kn_model_ops *o) {
  if (c->property_weight != 0 && !c->property_penalty[0])
    return kn_err(KNOBS_ERR_ARG, "property_weight is %g but property_penalty names no property head file",
                  c->property_weight);
  if (!c->property_penalty[0] || o->property_penalty) return KNOBS_OK;
  char names[256] = "";
  size_t n = 0;
  for (const char *const *m = knobs_model_names(); *m && n < sizeof names; m++)
    if (kn_model_ops_find(*m)->property_penalty)
      n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", *m);
  return kn_err(KNOBS_ERR_ARG, "model %s does not support the property penalty (property_penalty %s); the "
                "models that do: %s", c->model, c->property_penalty, names);
}

knobs_status knobs_config_validate(const knobs_config *c) {
  const kn_model_ops *o = kn_model_ops_find(c->model);
  if (!o) return set_model(&(knobs_config){0}, c->model);
  if (strcmp(c->arch, "conv") && strcmp(c->arch, "mlp"))
    return kn_err(KNOBS_ERR_ARG, "unknown architecture '%s' (conv or mlp)", c->arch);
  int counts = !strcmp(c->likelihood, "nb") || !strcmp(c->likelihood, "zinb");
  if (strcmp(c->likelihood, "bernoulli") && strcmp(c->likelihood, "gaussian") && !counts)
    return kn_err(KNOBS_ERR_ARG, "unknown likelihood '%s' (bernoulli, gaussian, nb or zinb)", c->likelihood);
  if (c->factor_dist[0] && strcmp(c->factor_dist, "uniform") && strcmp(c->factor_dist, "laplace") && strcmp(c->factor_dist, "gauss"))
    return kn_err(KNOBS_ERR_ARG, "unknown factor distribution '%s' (uniform, laplace or gauss)", c->factor_dist);
  knobs_status s = check_ranges(c);
  if (s) return s;
  if (c->C <= 0 || c->H <= 0 || c->W <= 0)
    return kn_err(KNOBS_ERR_ARG, "input shape %dx%dx%d is not set (open the data first)", c->C, c->H, c->W);
  if (!strcmp(c->arch, "conv") && !((c->H == 64 && c->W == 64) || (c->H == 28 && c->W == 28)))
    return kn_err(KNOBS_ERR_ARG, "the conv architecture takes 64x64 or 28x28 inputs, the data is %dx%d "
                  "(use the mlp architecture)", c->H, c->W);
  if (!strcmp(c->likelihood, "bernoulli") && c->H == 1 && c->W == 1)
    return kn_err(KNOBS_ERR_ARG, "a Bernoulli likelihood needs data in [0,1]; use the gaussian likelihood for vector data");
  if (counts && (c->H != 1 || c->W != 1 || strcmp(c->arch, "mlp")))
    return kn_err(KNOBS_ERR_ARG, "the %s likelihood is for count vectors (cells x genes) with the mlp architecture; "
                  "the data is %dx%dx%d with the %s architecture", c->likelihood, c->C, c->H, c->W, c->arch);
  if (counts && c->C < 2)
    return kn_err(KNOBS_ERR_ARG, "the %s likelihood needs at least 2 genes (a softmax over one is constant)", c->likelihood);
  if (counts && c->property_penalty[0])
    return kn_err(KNOBS_ERR_ARG, "the property penalty is not supported with the %s likelihood", c->likelihood);
  if ((s = check_property_penalty(c, o))) return s;
  return o->settings->validate ? o->settings->validate(c, c->family) : KNOBS_OK;
}

knobs_status knobs_config_from_data(knobs_config *c, const knobs_data *d) {
  const knobs_data_info *in = knobs_data_info_get(d);
  c->C = in->C;
  c->H = in->H;
  c->W = in->W;
  c->T = in->T > 0 ? in->T : 1;
  if (!c->arch[0]) strcpy(c->arch, in->is_image && ((in->H == 64 && in->W == 64) || (in->H == 28 && in->W == 28)) ? "conv" : "mlp");
  if (!c->likelihood[0]) strcpy(c->likelihood, in->is_image ? "bernoulli" : "gaussian");
  const kn_model_ops *o = kn_model_ops_find(c->model);
  return o && o->config_from_data ? o->config_from_data(c, in) : KNOBS_OK;
}

void knobs_config_data_opts(const knobs_config *c, knobs_data_opts *o) {
  knobs_data_opts_default(o);
  o->threads = c->threads;
  o->seed = c->seed;
  o->factors = c->data_factors[0] ? c->data_factors : NULL;
  o->obs_dim = c->obs_dim;
  o->noise = c->noise;
  o->factor_dist = c->factor_dist[0] ? c->factor_dist : NULL;
}

char *knobs_config_to_json(const knobs_config *c) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  for (int i = 0;; i++) {
    const knobs_field *f = knobs_config_field(c, i);
    if (!f) break;
    if (f->kind == KNOBS_FIELD_STR) {
      cJSON_AddStringToObject(o, f->name, knobs_config_string(c, f->name));
    } else if (f->kind == KNOBS_FIELD_U64) { /* as a string: a double cannot hold every 64-bit seed */
      char buf[32];
      knobs_config_get(c, f->name, buf, sizeof buf);
      cJSON_AddStringToObject(o, f->name, buf);
    } else {
      cJSON_AddNumberToObject(o, f->name, knobs_config_number(c, f->name));
    }
  }
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}

static knobs_status set_json(knobs_config *c, const cJSON *it) {
  const void *where;
  const kn_field *kf = find(c, it->string, &where);
  if (!kf) {
    if (owner_elsewhere(it->string)) return KNOBS_OK; /* another family's (knobs 0.1 wrote them all) */
    return kn_err(KNOBS_ERR_FORMAT, "config has an unknown setting '%s' (written by a newer knobs?)", it->string);
  }
  const knobs_field *f = &kf->pub;
  char buf[64];
  const char *v;
  if (f->kind == KNOBS_FIELD_STR || f->kind == KNOBS_FIELD_U64) {
    if (!cJSON_IsString(it)) return kn_err(KNOBS_ERR_FORMAT, "config setting '%s' is not a string", f->name);
    v = it->valuestring;
  } else {
    if (!cJSON_IsNumber(it)) return kn_err(KNOBS_ERR_FORMAT, "config setting '%s' is not a number", f->name);
    if (f->kind == KNOBS_FIELD_DOUBLE) snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
    else snprintf(buf, sizeof buf, "%.0f", it->valuedouble);
    v = buf;
  }
  return knobs_config_set(c, f->name, v);
}

knobs_status knobs_config_from_json(knobs_config *c, const char *json) {
  cJSON *o = cJSON_Parse(json);
  if (!o || !cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return kn_err(KNOBS_ERR_FORMAT, "config is not a JSON object");
  }
  knobs_status s = KNOBS_OK;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
  if (model) s = set_json(c, model); /* first: it decides which family settings exist */
  for (const cJSON *it = o->child; it && !s; it = it->next)
    if (it != model) s = set_json(c, it);
  cJSON_Delete(o);
  return s;
}
