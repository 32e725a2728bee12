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

#define F(name, kind, field, lo, hi, models, help) \
  {name, kind, offsetof(knobs_config, field), sizeof(((knobs_config *)0)->field), lo, hi, models, help, \
   0, !(models)[0]}
/* a setting that may change when a run resumes */
#define FR(name, kind, field, lo, hi, models, help) \
  {name, kind, offsetof(knobs_config, field), sizeof(((knobs_config *)0)->field), lo, hi, models, help, 1, 0}

const knobs_field knobs_config_fields[] = {
    F("model", KNOBS_FIELD_STR, model, 0, 0, "*", "model to train (see 'knobs help train')"),
    F("data", KNOBS_FIELD_STR, data, 0, 0, "*", "dataset name or file"),
    F("arch", KNOBS_FIELD_STR, arch, 0, 0, "*", "architecture: conv | mlp (default: conv for images, mlp for vectors)"),
    F("likelihood", KNOBS_FIELD_STR, likelihood, 0, 0, "*", "bernoulli | gaussian (default: bernoulli for images, gaussian for vectors)"),
    F("latents", KNOBS_FIELD_INT, z_dim, 1, 1024, "*", "latent dimensions Z"),
    F("hidden", KNOBS_FIELD_INT, hidden, 1, 65536, "*", "mlp architecture: hidden width"),
    F("batch", KNOBS_FIELD_INT, batch, 1, 65536, "*", "batch size"),
    FR("steps", KNOBS_FIELD_LONG, steps, 1, 1e12, "*", "total training steps"),
    F("seed", KNOBS_FIELD_U64, seed, 0, 0, "*", "random seed (data, noise, initialisation)"),
    FR("threads", KNOBS_FIELD_INT, threads, 1, 1024, "*", "worker threads"),
    F("lr", KNOBS_FIELD_DOUBLE, lr, 1e-12, 10, "*", "Adam learning rate"),
    F("adam_beta1", KNOBS_FIELD_DOUBLE, adam_beta1, 0, 0.999999, "*", "Adam beta1"),
    F("adam_beta2", KNOBS_FIELD_DOUBLE, adam_beta2, 0, 0.99999999, "*", "Adam beta2"),
    F("adam_eps", KNOBS_FIELD_DOUBLE, adam_eps, 1e-30, 1, "*", "Adam epsilon"),
    F("beta", KNOBS_FIELD_DOUBLE, beta, 0, 1e6, "betavae,gvae,mlvae,adagvae,adamlvae", "weight of the KL term (1 = plain VAE)"),
    F("gamma", KNOBS_FIELD_DOUBLE, gamma, 0, 1e9, "annealedvae", "weight of |KL - C|"),
    F("capacity", KNOBS_FIELD_DOUBLE, capacity, 0, 1e6, "annealedvae", "final capacity C in nats"),
    F("capacity_steps", KNOBS_FIELD_LONG, capacity_steps, 1, 1e12, "annealedvae", "steps over which C rises linearly from 0"),
    F("tcvae_alpha", KNOBS_FIELD_DOUBLE, tcvae_alpha, 0, 1e6, "tcvae", "alpha: weight of the index-code mutual information"),
    F("tcvae_beta", KNOBS_FIELD_DOUBLE, tcvae_beta, 0, 1e6, "tcvae", "beta: weight of the total correlation"),
    F("tcvae_gamma", KNOBS_FIELD_DOUBLE, tcvae_gamma, 0, 1e6, "tcvae", "gamma: weight of the dimension-wise KL"),
    F("estimator", KNOBS_FIELD_STR, estimator, 0, 0, "tcvae", "log q(z) estimator: mws (weighted) | mss (stratified)"),
    F("factorvae_gamma", KNOBS_FIELD_DOUBLE, factorvae_gamma, 0, 1e6, "factorvae", "gamma: weight of the discriminator's total correlation"),
    F("disc_lr", KNOBS_FIELD_DOUBLE, disc_lr, 1e-12, 10, "factorvae", "discriminator Adam learning rate"),
    F("disc_beta1", KNOBS_FIELD_DOUBLE, disc_beta1, 0, 0.999999, "factorvae", "discriminator Adam beta1"),
    F("disc_beta2", KNOBS_FIELD_DOUBLE, disc_beta2, 0, 0.99999999, "factorvae", "discriminator Adam beta2"),
    F("disc_hidden", KNOBS_FIELD_INT, disc_hidden, 1, 65536, "factorvae", "discriminator hidden width"),
    F("disc_layers", KNOBS_FIELD_INT, disc_layers, 1, 30, "factorvae", "discriminator hidden layers"),
    F("lambda_od", KNOBS_FIELD_DOUBLE, lambda_od, 0, 1e6, "dipvae1,dipvae2", "weight of the off-diagonal covariance penalty"),
    F("lambda_d", KNOBS_FIELD_DOUBLE, lambda_d, -1, 1e6, "dipvae1,dipvae2", "weight of the diagonal penalty (-1: 10 lambda_od for dipvae1, lambda_od for dipvae2)"),
    F("cat", KNOBS_FIELD_INT, cat, 0, 1024, "infogan", "classes of the categorical code (0: none)"),
    F("cont", KNOBS_FIELD_INT, cont, 1, 1024, "infogan", "continuous codes (the representation)"),
    F("noise_dim", KNOBS_FIELD_INT, noise_dim, 0, 65536, "infogan", "incompressible noise dimensions"),
    F("info_lambda", KNOBS_FIELD_DOUBLE, info_lambda, 0, 1e6, "infogan", "weight of the mutual-information term"),
    F("gan_g_lr", KNOBS_FIELD_DOUBLE, gan_g_lr, 1e-12, 10, "infogan", "generator Adam learning rate"),
    F("gan_d_lr", KNOBS_FIELD_DOUBLE, gan_d_lr, 1e-12, 10, "infogan", "discriminator (and Q head) Adam learning rate"),
    F("gan_beta1", KNOBS_FIELD_DOUBLE, gan_beta1, 0, 0.999999, "infogan", "Adam beta1 of both players"),
    F("gan_beta2", KNOBS_FIELD_DOUBLE, gan_beta2, 0, 0.99999999, "infogan", "Adam beta2 of both players"),
    F("k", KNOBS_FIELD_INT, k, 0, KNOBS_MAX_FACTORS - 1, "gvae,mlvae,adagvae,adamlvae", "factors that differ within a pair (0: random in 1..K-1 per pair)"),
    FR("ckpt_every", KNOBS_FIELD_LONG, ckpt_every, 0, 1e12, "*", "steps between checkpoints (0: only at the end)"),
    FR("log_every", KNOBS_FIELD_LONG, log_every, 1, 1e12, "*", "steps between log lines"),
    F("data_factors", KNOBS_FIELD_STR, data_factors, 0, 0, "*", "labels file (.npy/.csv) for user data"),
    F("obs_dim", KNOBS_FIELD_INT, obs_dim, 0, 100000, "*", "physics data: observed channels (0: default)"),
    F("noise", KNOBS_FIELD_DOUBLE, noise, -1, 1e6, "*", "physics data: observation noise (-1: default)"),
    F("factor_dist", KNOBS_FIELD_STR, factor_dist, 0, 0, "*", "physics data: uniform | laplace | gauss"),
    F("C", KNOBS_FIELD_INT, C, 0, 65536, "", "input channels (from the data)"),
    F("H", KNOBS_FIELD_INT, H, 0, 65536, "", "input height (from the data)"),
    F("W", KNOBS_FIELD_INT, W, 0, 65536, "", "input width (from the data)"),
};
const int knobs_config_nfields = (int)(sizeof knobs_config_fields / sizeof knobs_config_fields[0]);

void knobs_config_default(knobs_config *c) {
  memset(c, 0, sizeof *c);
  strcpy(c->model, "betavae");
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
  c->beta = 4;
  c->gamma = 1000;
  c->capacity = 25;
  c->capacity_steps = 100000;
  c->ckpt_every = 5000;
  c->log_every = 100;
  c->noise = -1;
  kn_models_config_default(c);
}

static const knobs_field *find_field(const char *name) {
  for (int i = 0; i < knobs_config_nfields; i++)
    if (!strcmp(knobs_config_fields[i].name, name)) return &knobs_config_fields[i];
  return NULL;
}

knobs_status knobs_config_set(knobs_config *c, const char *name, const char *v) {
  const knobs_field *f = find_field(name);
  if (!f) return kn_err(KNOBS_ERR_ARG, "unknown config field '%s'", name);
  void *p = (char *)c + f->offset;
  char *end;
  errno = 0;
  switch (f->kind) {
  case KNOBS_FIELD_STR:
    if (strlen(v) >= f->size) return kn_err(KNOBS_ERR_ARG, "%s: value longer than %zu characters", name, f->size - 1);
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

knobs_status knobs_config_validate(const knobs_config *c) {
  if (!kn_model_ops_find(c->model)) {
    char names[512] = "";
    size_t n = 0;
    for (const char *const *m = knobs_model_names(); *m; m++) n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", *m);
    return kn_err(KNOBS_ERR_ARG, "unknown model '%s' (known: %s)", c->model, names);
  }
  if (strcmp(c->arch, "conv") && strcmp(c->arch, "mlp"))
    return kn_err(KNOBS_ERR_ARG, "unknown architecture '%s' (conv or mlp)", c->arch);
  if (strcmp(c->likelihood, "bernoulli") && strcmp(c->likelihood, "gaussian"))
    return kn_err(KNOBS_ERR_ARG, "unknown likelihood '%s' (bernoulli or gaussian)", c->likelihood);
  if (c->factor_dist[0] && strcmp(c->factor_dist, "uniform") && strcmp(c->factor_dist, "laplace") && strcmp(c->factor_dist, "gauss"))
    return kn_err(KNOBS_ERR_ARG, "unknown factor distribution '%s' (uniform, laplace or gauss)", c->factor_dist);
  for (int i = 0; i < knobs_config_nfields; i++) { /* ranges, for configs read from JSON */
    const knobs_field *f = &knobs_config_fields[i];
    const void *p = (const char *)c + f->offset;
    double v;
    if (f->kind == KNOBS_FIELD_INT) v = *(const int *)p;
    else if (f->kind == KNOBS_FIELD_LONG) v = (double)*(const long *)p;
    else if (f->kind == KNOBS_FIELD_DOUBLE) v = *(const double *)p;
    else continue;
    if (!(v >= f->min && v <= f->max))
      return kn_err(KNOBS_ERR_ARG, "%s: %g out of range [%g, %g]", f->name, v, f->min, f->max);
  }
  if (c->C <= 0 || c->H <= 0 || c->W <= 0)
    return kn_err(KNOBS_ERR_ARG, "input shape %dx%dx%d is not set (open the data first)", c->C, c->H, c->W);
  if (!strcmp(c->arch, "conv") && !((c->H == 64 && c->W == 64) || (c->H == 28 && c->W == 28)))
    return kn_err(KNOBS_ERR_ARG, "the conv architecture takes 64x64 or 28x28 inputs, the data is %dx%d "
                  "(use --arch mlp)", c->H, c->W);
  if (!strcmp(c->likelihood, "bernoulli") && c->H == 1 && c->W == 1)
    return kn_err(KNOBS_ERR_ARG, "a Bernoulli likelihood needs data in [0,1]; use --likelihood gaussian for vector data");
  return kn_models_config_validate(c);
}

knobs_status knobs_config_from_data(knobs_config *c, const knobs_data *d) {
  const knobs_data_info *in = knobs_data_info_get(d);
  c->C = in->C;
  c->H = in->H;
  c->W = in->W;
  if (!c->arch[0]) strcpy(c->arch, in->is_image && ((in->H == 64 && in->W == 64) || (in->H == 28 && in->W == 28)) ? "conv" : "mlp");
  if (!c->likelihood[0]) strcpy(c->likelihood, in->is_image ? "bernoulli" : "gaussian");
  return KNOBS_OK;
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
  for (int i = 0; i < knobs_config_nfields; i++) {
    const knobs_field *f = &knobs_config_fields[i];
    const void *p = (const char *)c + f->offset;
    switch (f->kind) {
    case KNOBS_FIELD_STR: cJSON_AddStringToObject(o, f->name, (const char *)p); break;
    case KNOBS_FIELD_INT: cJSON_AddNumberToObject(o, f->name, *(const int *)p); break;
    case KNOBS_FIELD_LONG: cJSON_AddNumberToObject(o, f->name, (double)*(const long *)p); break;
    case KNOBS_FIELD_DOUBLE: cJSON_AddNumberToObject(o, f->name, *(const double *)p); break;
    case KNOBS_FIELD_U64: { /* as a string: a double cannot hold every 64-bit seed */
      char buf[32];
      snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)p);
      cJSON_AddStringToObject(o, f->name, buf);
      break;
    }
    }
  }
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}

knobs_status knobs_config_from_json(knobs_config *c, const char *json) {
  cJSON *o = cJSON_Parse(json);
  if (!o || !cJSON_IsObject(o)) {
    cJSON_Delete(o);
    return kn_err(KNOBS_ERR_FORMAT, "config is not a JSON object");
  }
  knobs_status s = KNOBS_OK;
  for (cJSON *it = o->child; it && !s; it = it->next) {
    const knobs_field *f = find_field(it->string);
    if (!f) {
      s = kn_err(KNOBS_ERR_FORMAT, "config has an unknown field '%s' (written by a newer knobs?)", it->string);
      break;
    }
    char buf[64];
    const char *v;
    if (f->kind == KNOBS_FIELD_STR || f->kind == KNOBS_FIELD_U64) {
      if (!cJSON_IsString(it)) { s = kn_err(KNOBS_ERR_FORMAT, "config field '%s' is not a string", f->name); break; }
      v = it->valuestring;
    } else {
      if (!cJSON_IsNumber(it)) { s = kn_err(KNOBS_ERR_FORMAT, "config field '%s' is not a number", f->name); break; }
      if (f->kind == KNOBS_FIELD_DOUBLE) snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
      else snprintf(buf, sizeof buf, "%.0f", it->valuedouble);
      v = buf;
    }
    s = knobs_config_set(c, f->name, v);
  }
  cJSON_Delete(o);
  return s;
}

knobs_status knobs_config_create(const char *model, knobs_config **out) {
  *out = NULL;
  if (model && !kn_model_ops_find(model)) return kn_err(KNOBS_ERR_ARG, "unknown model '%s'", model);
  knobs_config *c = kn_alloc(sizeof *c, "config");
  if (!c) return KNOBS_ERR_NOMEM;
  knobs_config_default(c);
  if (model) snprintf(c->model, sizeof c->model, "%s", model);
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
  const knobs_field *f = find_field(name);
  if (!f) return kn_err(KNOBS_ERR_ARG, "unknown setting '%s'", name);
  const void *p = (const char *)c + f->offset;
  int k = 0;
  switch (f->kind) {
  case KNOBS_FIELD_STR: k = snprintf(buf, n, "%s", (const char *)p); break;
  case KNOBS_FIELD_INT: k = snprintf(buf, n, "%d", *(const int *)p); break;
  case KNOBS_FIELD_LONG: k = snprintf(buf, n, "%ld", *(const long *)p); break;
  case KNOBS_FIELD_U64: k = snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
  case KNOBS_FIELD_DOUBLE: k = snprintf(buf, n, "%.17g", *(const double *)p); break;
  }
  if (k < 0 || (size_t)k >= n) return kn_err(KNOBS_ERR_ARG, "setting '%s': buffer of %zu bytes too small", name, n);
  return KNOBS_OK;
}

double knobs_config_number(const knobs_config *c, const char *name) {
  const knobs_field *f = find_field(name);
  if (!f) return NAN;
  const void *p = (const char *)c + f->offset;
  switch (f->kind) {
  case KNOBS_FIELD_INT: return *(const int *)p;
  case KNOBS_FIELD_LONG: return (double)*(const long *)p;
  case KNOBS_FIELD_U64: return (double)*(const uint64_t *)p;
  case KNOBS_FIELD_DOUBLE: return *(const double *)p;
  default: return NAN;
  }
}

const char *knobs_config_string(const knobs_config *c, const char *name) {
  const knobs_field *f = find_field(name);
  return f && f->kind == KNOBS_FIELD_STR ? (const char *)c + f->offset : NULL;
}

const knobs_field *knobs_config_field(const knobs_config *c, int i) {
  for (int j = 0; j < knobs_config_nfields; j++) {
    const knobs_field *f = &knobs_config_fields[j];
    int applies = !strcmp(f->models, "*") || !f->models[0];
    for (const char *p = f->models; !applies && *p;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      applies = len == strlen(c->model) && !strncmp(p, c->model, len);
      p += len + (e != NULL);
    }
    if (applies && i-- == 0) return f;
  }
  return NULL;
}
