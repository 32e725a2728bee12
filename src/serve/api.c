/* api.c: the JSON API of the panel (docs/api.md): routing by method and path, argument checks,
 * and the handlers. Every error is a JSON object {"error": "..."} with a 4xx/5xx status; no
 * request ever names a file (models are addressed by their index, data by observation index).
 *
 * Each handler takes its slot's mutex around every use of the model or data (not thread-safe),
 * and allocates its own buffers per request (the server is not the training step). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/core.h"
#include "serve/serve.h"

#define LOG_MAX_BYTES (16u << 20) /* log.csv read for the loss curves */
#define LOG_MAX_ROWS 2000         /* rows returned (evenly thinned, last row kept) */

static void reply_error(kn_reply *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply_error(kn_reply *r, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "error", msg);
  char *t = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  free(r->body);
  r->status = status, r->mime = "application/json", r->body = t, r->len = t ? strlen(t) : 0;
  r->disposition = NULL;
}

/* A library failure: 400 for what the request got wrong, 500 otherwise. */
static void reply_lib(kn_reply *r, knobs_status st, const char *what) {
  int code = st == KNOBS_ERR_ARG || st == KNOBS_ERR_FORMAT || st == KNOBS_ERR_DATA ? 400 : 500;
  reply_error(r, code, "%s: %s", what, knobs_last_error());
}

static void reply_json(kn_reply *r, cJSON *j) {
  char *t = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!t) {
    reply_error(r, 500, "out of memory");
    return;
  }
  r->status = 200, r->mime = "application/json", r->body = t, r->len = strlen(t);
}

static void reply_bytes(kn_reply *r, const char *mime, void *b, size_t n) {
  r->status = 200, r->mime = mime, r->body = b, r->len = n;
}

/* Query integer with full checks; `def` when absent. Returns 0, or -1 after a 400 reply. */
static int q_long(const char *(*query)(void *, const char *), void *qc, const char *key, long lo, long hi, long def,
                  long *out, kn_reply *r) {
  const char *v = query(qc, key);
  *out = def;
  if (!v) return 0;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!v[0] || *end || errno || x < lo || x > hi) {
    reply_error(r, 400, "query '%s': '%.40s' is not an integer in [%ld, %ld]", key, v, lo, hi);
    return -1;
  }
  *out = x;
  return 0;
}

/* The body as a JSON object, or NULL after a 400 reply. */
static cJSON *body_json(const char *body, size_t n, kn_reply *r) {
  if (!n) {
    reply_error(r, 400, "the request needs a JSON body");
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(body, n);
  if (!j || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    reply_error(r, 400, "the body is not a JSON object");
    return NULL;
  }
  return j;
}

/* Member `key` as exactly Z finite numbers into z. Returns 0, or -1 after a 400 reply. */
static int json_code(const cJSON *j, const char *key, int Z, float *z, kn_reply *r) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!cJSON_IsArray(a)) {
    reply_error(r, 400, "'%s' must be an array of %d numbers", key, Z);
    return -1;
  }
  int n = cJSON_GetArraySize(a);
  if (n != Z) {
    reply_error(r, 400, "'%s' has %d values; the model has %d latents", key, n, Z);
    return -1;
  }
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, a) {
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > 1e6) {
      reply_error(r, 400, "'%s'[%d] is not a finite number of magnitude at most 1e6", key, i);
      return -1;
    }
    z[i++] = (float)e->valuedouble;
  }
  return 0;
}

/* Optional number member in [lo, hi]; `def` if absent. */
static int json_num(const cJSON *j, const char *key, double lo, double hi, double def, double *out, kn_reply *r) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  *out = def;
  if (!v) return 0;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi) {
    reply_error(r, 400, "'%s' must be a number in [%g, %g]", key, lo, hi);
    return -1;
  }
  *out = v->valuedouble;
  return 0;
}

static cJSON *num_array(const double *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(isfinite(v[i]) ? round(v[i] * 1e6) / 1e6 : 0));
  return a;
}

static cJSON *float_array(const float *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(isfinite(v[i]) ? (double)v[i] : 0));
  return a;
}

/* Model info (lock held). */
static cJSON *slot_info(kn_slot *s, int id) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", id);
  cJSON_AddStringToObject(j, "run", s->run);
  cJSON_AddStringToObject(j, "model", s->model_name);
  cJSON_AddStringToObject(j, "data", s->data_name);
  cJSON_AddNumberToObject(j, "step", (double)s->step);
  cJSON_AddNumberToObject(j, "reloads", s->reloads);
  cJSON_AddNumberToObject(j, "Z", s->Z);
  cJSON_AddNumberToObject(j, "C", s->C);
  cJSON_AddNumberToObject(j, "H", s->H);
  cJSON_AddNumberToObject(j, "W", s->W);
  cJSON_AddNumberToObject(j, "n", (double)knobs_data_info_get(s->d)->n);
  cJSON_AddNumberToObject(j, "inactive_kl", KN_SERVE_INACTIVE_KL);
  cJSON *f = cJSON_AddArrayToObject(j, "factors");
  for (int k = 0; k < s->K; k++) cJSON_AddItemToArray(f, cJSON_CreateString(s->factor_names[k]));
  cJSON *lat = cJSON_AddArrayToObject(j, "latents");
  for (int i = 0; i < s->Z; i++) {
    int z = s->order[i];
    cJSON *e = cJSON_CreateObject();
    char nm[64], fac[32];
    kn_slot_label(s, z, nm, sizeof nm, fac, sizeof fac);
    cJSON_AddNumberToObject(e, "index", z);
    cJSON_AddNumberToObject(e, "kl", round(s->kl[z] * 1e6) / 1e6);
    cJSON_AddNumberToObject(e, "scale", round(s->scale[z] * 1e6) / 1e6);
    cJSON_AddBoolToObject(e, "active", s->kl[z] >= KN_SERVE_INACTIVE_KL);
    cJSON_AddStringToObject(e, "name", nm);
    cJSON_AddBoolToObject(e, "named", s->names[z][0] != 0);
    if (fac[0]) cJSON_AddStringToObject(e, "factor", fac);
    else cJSON_AddNullToObject(e, "factor");
    cJSON_AddItemToObject(e, "mi", s->K ? num_array(s->mi + (size_t)z * s->K, s->K) : cJSON_CreateArray());
    const knobs_knob *kb = s->kk ? &s->kk->knobs[z] : NULL;
    if (kb && kb->n_knots >= 2 && fac[0]) { /* the monotone map code -> factor value of knobs.json */
      cJSON *cal = cJSON_AddObjectToObject(e, "calibration");
      cJSON_AddItemToObject(cal, "code", num_array(kb->knot_code, kb->n_knots));
      cJSON_AddItemToObject(cal, "value", num_array(kb->knot_value, kb->n_knots));
      cJSON_AddNumberToObject(e, "direction", kb->direction);
    }
    cJSON_AddItemToArray(lat, e);
  }
  return j;
}

static void h_models(kn_api *api, kn_reply *r) {
  cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "models");
  cJSON_AddStringToObject(j, "version", knobs_version());
  for (int i = 0; i < api->n_slots; i++) {
    kn_slot *s = &api->slots[i];
    pthread_mutex_lock(&s->lock);
    if (kn_slot_refresh(s, 1.0)) knobs_clear_error(); /* keep serving the old model */
    cJSON_AddItemToArray(a, slot_info(s, i));
    pthread_mutex_unlock(&s->lock);
  }
  reply_json(r, j);
}

static void h_decode(kn_slot *s, const char *(*query)(void *, const char *), void *qc, const char *body, size_t n, kn_reply *r) {
  const char *fmt = query(qc, "format");
  if (fmt && strcmp(fmt, "png") && strcmp(fmt, "raw")) {
    reply_error(r, 400, "query 'format': '%.20s' is not png or raw", fmt);
    return;
  }
  cJSON *j = body_json(body, n, r);
  if (!j) return;
  size_t px = (size_t)s->C * s->H * s->W;
  float *z = malloc(sizeof(float) * (size_t)s->Z), *x = malloc(sizeof(float) * px);
  if (!z || !x) reply_error(r, 500, "out of memory");
  else if (!json_code(j, "code", s->Z, z, r)) {
    pthread_mutex_lock(&s->lock);
    knobs_status st = knobs_model_decode(s->m, z, 1, x);
    pthread_mutex_unlock(&s->lock);
    if (st) reply_lib(r, st, "decode");
    else if (fmt && !strcmp(fmt, "raw")) {
      reply_bytes(r, "application/octet-stream", x, px * sizeof(float));
      x = NULL;
    } else {
      uint8_t *png;
      size_t len;
      if ((st = kn_png_row(x, 1, s->C, s->H, s->W, &png, &len))) reply_lib(r, st, "png");
      else reply_bytes(r, "image/png", png, len);
    }
  }
  free(z), free(x);
  cJSON_Delete(j);
}

static void reply_code(kn_reply *r, const float *mu, const float *lv, int Z, long index, const char *note) {
  cJSON *j = cJSON_CreateObject();
  if (index >= 0) cJSON_AddNumberToObject(j, "index", (double)index);
  cJSON_AddItemToObject(j, "code", float_array(mu, Z));
  cJSON_AddItemToObject(j, "logvar", float_array(lv, Z));
  if (note) cJSON_AddStringToObject(j, "note", note);
  reply_json(r, j);
}

static void h_encode(kn_slot *s, int post, const char *(*query)(void *, const char *), void *qc, const char *body, size_t n,
                     kn_reply *r) {
  size_t px = (size_t)s->C * s->H * s->W;
  float *x = malloc(sizeof(float) * px), *mu = malloc(sizeof(float) * (size_t)s->Z), *lv = malloc(sizeof(float) * (size_t)s->Z);
  long index = -1;
  char note[128] = "";
  knobs_status st = KNOBS_OK;
  if (!x || !mu || !lv) {
    reply_error(r, 500, "out of memory");
    goto done;
  }
  if (post) {
    if (!n) {
      reply_error(r, 400, "the request needs a PNG body");
      goto done;
    }
    if ((st = kn_png_to_input((const uint8_t *)body, n, s->C, s->H, s->W, x, note, sizeof note))) {
      reply_lib(r, st, "upload");
      goto done;
    }
    pthread_mutex_lock(&s->lock);
    st = knobs_model_encode(s->m, x, 1, mu, lv);
    pthread_mutex_unlock(&s->lock);
  } else {
    if (!query(qc, "index")) {
      reply_error(r, 400, "query 'index' is required (or POST a PNG)");
      goto done;
    }
    if (q_long(query, qc, "index", 0, (long)(knobs_data_info_get(s->d)->n - 1), 0, &index, r)) goto done;
    int64_t i64 = index;
    pthread_mutex_lock(&s->lock);
    st = knobs_data_get(s->d, &i64, 1, x, NULL);
    if (!st) st = knobs_model_encode(s->m, x, 1, mu, lv);
    pthread_mutex_unlock(&s->lock);
  }
  if (st) reply_lib(r, st, "encode");
  else reply_code(r, mu, lv, s->Z, index, note[0] ? note : NULL);
done:
  free(x), free(mu), free(lv);
}

static void h_traverse(kn_slot *s, const char *body, size_t n, kn_reply *r) {
  cJSON *j = body_json(body, n, r);
  if (!j) return;
  size_t px = (size_t)s->C * s->H * s->W;
  float *z = malloc(sizeof(float) * (size_t)s->Z * KN_SERVE_MAX_FRAMES), *x = malloc(sizeof(float) * px * KN_SERVE_MAX_FRAMES);
  double lat, lo, hi, steps, delay;
  const cJSON *fj = cJSON_GetObjectItemCaseSensitive(j, "format");
  const char *fmt = cJSON_IsString(fj) ? fj->valuestring : "png";
  if (!z || !x) reply_error(r, 500, "out of memory");
  else if (fj && (!cJSON_IsString(fj) || (strcmp(fmt, "png") && strcmp(fmt, "gif"))))
    reply_error(r, 400, "'format' must be \"png\" or \"gif\"");
  else if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "latent")))
    reply_error(r, 400, "'latent' (the latent dimension to vary) is required");
  else if (!json_code(j, "code", s->Z, z, r) && !json_num(j, "latent", 0, s->Z - 1, 0, &lat, r) &&
           !json_num(j, "lo", -1e3, 1e3, -2, &lo, r) && !json_num(j, "hi", -1e3, 1e3, 2, &hi, r) &&
           !json_num(j, "steps", 2, KN_SERVE_MAX_FRAMES, 9, &steps, r) && !json_num(j, "delay_cs", 2, 500, 10, &delay, r)) {
    int L = (int)lat, T = (int)steps;
    if (L != lat || T != steps) {
      reply_error(r, 400, "'latent' and 'steps' must be integers");
    } else {
      for (int t = 1; t < T; t++) memcpy(z + (size_t)t * s->Z, z, sizeof(float) * (size_t)s->Z);
      for (int t = 0; t < T; t++) z[(size_t)t * s->Z + L] = (float)(lo + (hi - lo) * t / (T - 1));
      pthread_mutex_lock(&s->lock);
      knobs_status st = knobs_model_decode(s->m, z, T, x);
      pthread_mutex_unlock(&s->lock);
      uint8_t *b = NULL;
      size_t len = 0;
      if (!st) st = !strcmp(fmt, "gif") ? kn_gif_bytes(x, T, s->C, s->H, s->W, (int)delay, &b, &len)
                                       : kn_png_row(x, T, s->C, s->H, s->W, &b, &len);
      if (st) reply_lib(r, st, "traverse");
      else {
        reply_bytes(r, !strcmp(fmt, "gif") ? "image/gif" : "image/png", b, len);
        r->disposition = !strcmp(fmt, "gif") ? "inline; filename=\"traversal.gif\"" : "inline; filename=\"traversal.png\"";
      }
    }
  }
  free(z), free(x);
  cJSON_Delete(j);
}

/* The intervention concentration of a move from code a to code b (shared reference
 * intervention-score.md, applied to the panel): decode both, encode both, Δ_j = change of the
 * posterior mean / s_j over the active dimensions (s_j >= 0.05 max s), p = |Δ| / Σ|Δ|. */
static void h_score(kn_slot *s, const char *body, size_t n, kn_reply *r) {
  cJSON *j = body_json(body, n, r);
  if (!j) return;
  size_t px = (size_t)s->C * s->H * s->W;
  int Z = s->Z;
  float *z = malloc(sizeof(float) * 2 * (size_t)Z), *x = malloc(sizeof(float) * 2 * px), *mu = malloc(sizeof(float) * 2 * (size_t)Z);
  if (!z || !x || !mu) reply_error(r, 500, "out of memory");
  else if (!json_code(j, "from", Z, z, r) && !json_code(j, "to", Z, z + Z, r)) {
    pthread_mutex_lock(&s->lock);
    knobs_status st = knobs_model_decode(s->m, z, 2, x);
    if (!st) st = knobs_model_encode(s->m, x, 2, mu, NULL);
    double smax = 0;
    for (int i = 0; i < Z; i++) smax = fmax(smax, s->scale[i]);
    double sum = 0, best = 0, pix = 0;
    int nA = 0, arg = -1;
    for (int i = 0; !st && i < Z; i++)
      if (s->scale[i] >= 0.05 * smax && s->scale[i] > 0) {
        double d = fabs((double)mu[Z + i] - mu[i]) / s->scale[i];
        nA++, sum += d;
        if (d > best) best = d, arg = i;
      }
    double H = 0;
    for (int i = 0; !st && i < Z; i++)
      if (s->scale[i] >= 0.05 * smax && s->scale[i] > 0 && sum > 0) {
        double p = fabs((double)mu[Z + i] - mu[i]) / s->scale[i] / sum;
        if (p > 0) H -= p * log(p);
      }
    for (size_t i = 0; !st && i < px; i++) pix = fmax(pix, fabs((double)x[px + i] - x[i]));
    pthread_mutex_unlock(&s->lock);
    if (st) reply_lib(r, st, "score");
    else {
      cJSON *o = cJSON_CreateObject();
      int skipped = pix < 1.0 / 255 || sum <= 0 || nA < 2;
      cJSON_AddBoolToObject(o, "skipped", skipped);
      cJSON_AddNumberToObject(o, "active", nA);
      if (!skipped) {
        cJSON_AddNumberToObject(o, "max_form", (nA * (best / sum) - 1) / (nA - 1));
        cJSON_AddNumberToObject(o, "entropy_form", 1 - H / log(nA));
        cJSON_AddNumberToObject(o, "dim", arg);
      }
      reply_json(r, o);
    }
  }
  free(z), free(x), free(mu);
  cJSON_Delete(j);
}

/* Property-guided design (knobs_design) at panel sizes: at most 16 designs from at most 64
 * starts and 500 steps, the penalty fitted on 1000 observations. Holds the model's lock for the
 * whole search (seconds): the page says so while it waits. */
static void h_design(kn_slot *s, const char *body, size_t n, kn_reply *r) {
  cJSON *j = body_json(body, n, r);
  if (!j) return;
  knobs_design_opts o;
  knobs_design_opts_default(&o);
  o.n = 8, o.restarts = 32, o.steps = 100, o.n_fit = 1000;
  const cJSON *pj = cJSON_GetObjectItemCaseSensitive(j, "property"), *gj = cJSON_GetObjectItemCaseSensitive(j, "goal"),
              *pen = cJSON_GetObjectItemCaseSensitive(j, "penalty");
  double nn = 8, rs = 32, st = 100, tg = 0, lam = 1;
  int ch = 0, ip = cJSON_IsString(pj) ? knobs_image_property_parse(pj->valuestring, &ch) : -1;
  int lat = -1;
  if (cJSON_IsString(pj) && !strncmp(pj->valuestring, "knob:", 5)) {
    char *e;
    long v = strtol(pj->valuestring + 5, &e, 10);
    lat = e != pj->valuestring + 5 && !*e && v >= 0 && v < s->Z ? (int)v : -2;
  }
  int pk = cJSON_IsString(pen) ? knobs_penalty_parse(pen->valuestring) : pen ? -1 : KNOBS_PENALTY_PRIOR;
  const char *goal = cJSON_IsString(gj) ? gj->valuestring : gj ? "" : "max";
  if (ip < 0 && lat < 0) reply_error(r, 400, "'property' must be area, cx, cy, brightness, red, green, blue or knob:J");
  else if (ip >= 0 && (ip == KNOBS_PROP_CHANNEL ? ch >= s->C : 0)) reply_error(r, 400, "the model's images have %d channel(s)", s->C);
  else if (strcmp(goal, "max") && strcmp(goal, "min") && strcmp(goal, "target"))
    reply_error(r, 400, "'goal' must be max, min or target");
  else if (pk < 0) reply_error(r, 400, "'penalty' must be none, prior, gmm or box");
  else if (!json_num(j, "n", 1, 16, 8, &nn, r) && !json_num(j, "restarts", 1, 64, 32, &rs, r) &&
           !json_num(j, "steps", 0, 500, 100, &st, r) && !json_num(j, "target", -1e6, 1e6, 0, &tg, r) &&
           !json_num(j, "lambda", 0, 1e6, 1, &lam, r)) {
    if (nn != floor(nn) || rs != floor(rs) || st != floor(st) || rs < nn) {
      reply_error(r, 400, "'n', 'restarts' and 'steps' must be integers with restarts >= n");
    } else {
      o.n = (int)nn, o.restarts = (int)rs, o.steps = (int)st, o.target = tg, o.lambda = lam;
      o.penalty = (knobs_penalty_kind)pk;
      o.goal = !strcmp(goal, "max") ? KNOBS_DESIGN_MAX : !strcmp(goal, "min") ? KNOBS_DESIGN_MIN : KNOBS_DESIGN_TARGET;
      if (ip >= 0) o.image_property = (knobs_image_property)ip, o.channel = ch;
      else o.latent = lat;
      knobs_design_result *res = NULL;
      pthread_mutex_lock(&s->lock);
      knobs_status stt = knobs_design(s->m, s->d, s->kk, &o, &res);
      pthread_mutex_unlock(&s->lock);
      if (stt) reply_lib(r, stt, "design");
      else {
        cJSON *out = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(out, "designs");
        for (int i = 0; i < res->n; i++) {
          const knobs_design_item *it = &res->items[i];
          cJSON *e = cJSON_CreateObject();
          cJSON_AddItemToObject(e, "code", float_array(res->codes + (size_t)i * res->Z, res->Z));
          cJSON_AddNumberToObject(e, "property", it->property);
          cJSON_AddNumberToObject(e, "percentile", it->percentile);
          cJSON_AddNumberToObject(e, "penalty", it->penalty);
          cJSON_AddNumberToObject(e, "nearest", it->nearest);
          cJSON_AddNumberToObject(e, "recon", it->recon);
          cJSON_AddBoolToObject(e, "valid", it->valid);
          cJSON_AddItemToArray(a, e);
        }
        cJSON_AddNumberToObject(out, "threshold", res->threshold);
        cJSON_AddNumberToObject(out, "data_p50", res->data_p50);
        cJSON_AddNumberToObject(out, "data_p90", res->data_p90);
        cJSON_AddNumberToObject(out, "data_max", res->data_max);
        cJSON_AddNumberToObject(out, "valid", res->valid);
        cJSON_AddStringToObject(out, "method", res->method);
        knobs_design_result_free(res);
        reply_json(r, out);
      }
    }
  }
  cJSON_Delete(j);
}

static void h_names(kn_slot *s, int id, const char *body, size_t n, kn_reply *r) {
  cJSON *j = body_json(body, n, r);
  if (!j) return;
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "latent"), *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
  if (!cJSON_IsNumber(l) || l->valuedouble != floor(l->valuedouble) || l->valuedouble < 0 || l->valuedouble >= s->Z)
    reply_error(r, 400, "'latent' must be an integer in [0, %d)", s->Z);
  else if (!cJSON_IsString(nm) && !cJSON_IsNull(nm))
    reply_error(r, 400, "'name' must be a string (\"\" or null clears it)");
  else {
    pthread_mutex_lock(&s->lock);
    knobs_status st = kn_slot_rename(s, (int)l->valuedouble, cJSON_IsString(nm) ? nm->valuestring : "");
    cJSON *info = st ? NULL : slot_info(s, id);
    pthread_mutex_unlock(&s->lock);
    if (st) reply_lib(r, st, "rename");
    else reply_json(r, info);
  }
  cJSON_Delete(j);
}

/* log.csv as {"columns": [...], "rows": [[...], ...]}, thinned to LOG_MAX_ROWS. */
static void h_log(kn_slot *s, int id, kn_reply *r) {
  pthread_mutex_lock(&s->lock);
  if (kn_slot_refresh(s, 1.0)) knobs_clear_error();
  long step = s->step;
  int reloads = s->reloads;
  pthread_mutex_unlock(&s->lock);
  cJSON *j = cJSON_CreateObject(), *cols = cJSON_AddArrayToObject(j, "columns"), *rows = cJSON_AddArrayToObject(j, "rows");
  cJSON_AddNumberToObject(j, "id", id);
  cJSON_AddNumberToObject(j, "step", (double)step);
  cJSON_AddNumberToObject(j, "reloads", reloads);
  char path[1100];
  snprintf(path, sizeof path, "%s/log.csv", s->run);
  FILE *fp = fopen(path, "rb");
  char *txt = fp ? malloc(LOG_MAX_BYTES + 1) : NULL;
  size_t len = txt ? fread(txt, 1, LOG_MAX_BYTES, fp) : 0;
  if (fp) fclose(fp);
  if (txt) {
    txt[len] = 0;
    char *nl = strrchr(txt, '\n'); /* a line being written has no newline yet: drop it */
    if (nl) nl[1] = 0;
    else txt[0] = 0;
    int nc = 0, nlines = 0;
    for (char *p = txt; *p; p++) nlines += *p == '\n';
    char *save, *line = strtok_r(txt, "\n", &save);
    if (line) {
      char *s2, *tok = strtok_r(line, ",", &s2);
      for (; tok; tok = strtok_r(NULL, ",", &s2), nc++) cJSON_AddItemToArray(cols, cJSON_CreateString(tok));
    }
    int every = nlines - 1 > LOG_MAX_ROWS ? (nlines - 1 + LOG_MAX_ROWS - 1) / LOG_MAX_ROWS : 1;
    int row = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
      int last = save == NULL || *save == 0;
      if (row++ % every && !last) continue;
      cJSON *a = cJSON_CreateArray();
      char *s2, *tok = strtok_r(line, ",", &s2);
      int c = 0;
      for (; tok && c < nc; tok = strtok_r(NULL, ",", &s2), c++) {
        char *end;
        double v = strtod(tok, &end);
        cJSON_AddItemToArray(a, isfinite(v) && end != tok ? cJSON_CreateNumber(v) : cJSON_CreateNull());
      }
      if (c == nc) cJSON_AddItemToArray(rows, a);
      else cJSON_Delete(a);
    }
  }
  free(txt);
  reply_json(r, j);
}

static void h_data_sample(kn_slot *s, const char *(*query)(void *, const char *), void *qc, kn_reply *r) {
  long n, seed;
  if (q_long(query, qc, "n", 1, 256, 16, &n, r) || q_long(query, qc, "seed", 0, 0x7fffffffL, 0, &seed, r)) return;
  int64_t N = knobs_data_info_get(s->d)->n;
  kn_rng g;
  kn_rng_seed(&g, (uint64_t)seed, 0x73616d70ULL);
  cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "indices");
  for (long i = 0; i < n; i++) {
    uint64_t v = kn_rng_u64(&g) % (uint64_t)N;
    cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v));
  }
  reply_json(r, j);
}

static void h_data_image(kn_slot *s, const char *(*query)(void *, const char *), void *qc, kn_reply *r) {
  long index;
  if (!query(qc, "index")) {
    reply_error(r, 400, "query 'index' is required");
    return;
  }
  if (q_long(query, qc, "index", 0, (long)(knobs_data_info_get(s->d)->n - 1), 0, &index, r)) return;
  size_t px = (size_t)s->C * s->H * s->W;
  float *x = malloc(sizeof(float) * px);
  if (!x) {
    reply_error(r, 500, "out of memory");
    return;
  }
  int64_t i64 = index;
  pthread_mutex_lock(&s->lock);
  knobs_status st = knobs_data_get(s->d, &i64, 1, x, NULL);
  pthread_mutex_unlock(&s->lock);
  uint8_t *png;
  size_t len;
  if (!st) st = kn_png_row(x, 1, s->C, s->H, s->W, &png, &len);
  free(x);
  if (st) reply_lib(r, st, "image");
  else reply_bytes(r, "image/png", png, len);
}

void kn_api_handle(kn_api *api, const char *method, const char *path, const char *(*query)(void *, const char *), void *qc,
                   const char *body, size_t body_len, kn_reply *r) {
  memset(r, 0, sizeof *r);
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
  if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
    if (!get) return reply_error(r, 405, "%s: use GET", path);
    char *b = malloc(kn_panel_html_len);
    if (!b) return reply_error(r, 500, "out of memory");
    memcpy(b, kn_panel_html, kn_panel_html_len);
    return reply_bytes(r, "text/html; charset=utf-8", b, kn_panel_html_len);
  }
  if (!strcmp(path, "/api/models")) {
    if (!get) return reply_error(r, 405, "%s: use GET", path);
    return h_models(api, r);
  }
  if (!strncmp(path, "/api/data/", 10)) {
    /* the images of the first model's dataset (both models of a comparison share it) */
    const char *what = path + 10;
    if (strcmp(what, "sample") && strcmp(what, "image")) return reply_error(r, 404, "no such endpoint: %.200s", path);
    if (!get) return reply_error(r, 405, "%s: use GET", path);
    return !strcmp(what, "sample") ? h_data_sample(&api->slots[0], query, qc, r) : h_data_image(&api->slots[0], query, qc, r);
  }
  if (!strncmp(path, "/api/models/", 12)) {
    const char *p = path + 12;
    char *end;
    if (*p < '0' || *p > '9') return reply_error(r, 404, "no such endpoint: %.200s", path);
    long id = strtol(p, &end, 10);
    if (id < 0 || id >= api->n_slots || end - p > 2) return reply_error(r, 404, "no model %.20s (there are %d)", p, api->n_slots);
    kn_slot *s = &api->slots[id];
    if (!*end) {
      if (!get) return reply_error(r, 405, "%s: use GET", path);
      pthread_mutex_lock(&s->lock);
      if (kn_slot_refresh(s, 1.0)) knobs_clear_error();
      cJSON *j = slot_info(s, (int)id);
      pthread_mutex_unlock(&s->lock);
      return reply_json(r, j);
    }
    if (*end != '/') return reply_error(r, 404, "no such endpoint: %.200s", path);
    const char *op = end + 1;
    struct { const char *name; int get, post; } ops[] = {
        {"decode", 0, 1}, {"encode", 1, 1}, {"traverse", 0, 1}, {"score", 0, 1}, {"names", 0, 1}, {"log", 1, 0}, {"design", 0, 1}};
    int k = -1;
    for (int i = 0; i < (int)(sizeof ops / sizeof ops[0]); i++) if (!strcmp(op, ops[i].name)) k = i;
    if (k < 0) return reply_error(r, 404, "no such endpoint: %.200s", path);
    if ((get && !ops[k].get) || (post && !ops[k].post) || (!get && !post))
      return reply_error(r, 405, "%s: use %s", path, ops[k].post ? (ops[k].get ? "GET or POST" : "POST") : "GET");
    switch (k) {
    case 0: return h_decode(s, query, qc, body, body_len, r);
    case 1: return h_encode(s, post, query, qc, body, body_len, r);
    case 2: return h_traverse(s, body, body_len, r);
    case 3: return h_score(s, body, body_len, r);
    case 4: return h_names(s, (int)id, body, body_len, r);
    case 5: return h_log(s, (int)id, r);
    default: return h_design(s, body, body_len, r);
    }
  }
  reply_error(r, 404, "no such endpoint: %.200s", path);
}
