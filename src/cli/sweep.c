/* sweep.c: a sweep folder: the grid's expansion into runs, and sweep.json (read and written
 * here only). See sweep.h. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/sweep.h"

static const char *const state_names[] = {"pending", "training", "evaluating", "done", "failed"};

const char *sw_state_name(sw_state st) { return state_names[st]; }

void sw_run_dir(const sw_sweep *s, int i, char *buf, size_t n) { snprintf(buf, n, "%s/%s", s->dir, s->runs[i].name); }

const char *sw_get(const sw_run *r, const char *key) {
  for (int i = 0; i < r->nset; i++)
    if (!strcmp(r->set[i].key, key)) return r->set[i].val;
  return "";
}

void sw_free(sw_sweep *s) {
  free(s->runs);
  s->runs = NULL;
  s->nruns = 0;
}


static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
  return s;
}

/* ---- the grid --------------------------------------------------------------------------------- */
#define MAX_AXES 16
#define MAX_VALS 256

typedef struct {
  char key[48];
  int nval;
  char val[MAX_VALS][64];
  int used; /* applied to at least one combination */
} axis;

/* "1,4,8" or "0..4" or "betavae,tcvae": the values of one axis */
static int parse_values(axis *a, char *list, char *err, size_t n) {
  a->nval = 0;
  for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    tok = trim(tok);
    if (!*tok) return cli_errf(err, n, "--grid: an empty value in '%s'", a->key);
    char *dots = strstr(tok, "..");
    if (dots) {
      char *e1, *e2;
      *dots = 0;
      long lo = strtol(tok, &e1, 10), hi = strtol(dots + 2, &e2, 10);
      if (*e1 || *e2 || !*tok || !dots[2] || lo > hi)
        return cli_errf(err, n, "--grid: '%s..%s' in '%s' is not a range of whole numbers lo..hi", tok, dots + 2, a->key);
      for (long v = lo; v <= hi; v++) {
        if (a->nval == MAX_VALS) return cli_errf(err, n, "--grid: '%s' has more than %d values", a->key, MAX_VALS);
        snprintf(a->val[a->nval++], sizeof a->val[0], "%ld", v);
      }
      continue;
    }
    if (a->nval == MAX_VALS) return cli_errf(err, n, "--grid: '%s' has more than %d values", a->key, MAX_VALS);
    if (strlen(tok) >= sizeof a->val[0]) return cli_errf(err, n, "--grid: value '%s' is too long", tok);
    snprintf(a->val[a->nval++], sizeof a->val[0], "%s", tok);
  }
  if (!a->nval) return cli_errf(err, n, "--grid: '%s' has no values", a->key);
  return 0;
}

/* 1 if `key` is a setting of `model` (its config's fields) */
static int has_setting(const char *model, const char *key) {
  knobs_config *c;
  if (knobs_config_create(model, &c)) return 0;
  const knobs_field *f;
  int has = 0;
  for (int i = 0; !has && (f = knobs_config_field(c, i)); i++) has = !strcmp(f->name, key);
  knobs_config_free(c);
  return has;
}

/* The run's name: the model, then key+value of each other grid setting ("beta4-seed0"); only
 * letters, digits, '.', '_' and '-' */
static void run_name(sw_run *r) {
  size_t u = 0;
  for (int i = 0; i < r->ngrid && u < sizeof r->name - 1; i++) {
    char part[240];
    if (!strcmp(r->set[i].key, "model")) snprintf(part, sizeof part, "%s", r->set[i].val);
    else snprintf(part, sizeof part, "%s%s%s", u ? "-" : "", r->set[i].key, r->set[i].val);
    if (i > 0 && !strcmp(r->set[i].key, "model")) continue;
    for (char *c = part; *c && u < sizeof r->name - 1; c++) {
      char ch = *c;
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
            ch == '-' || ch == '_'))
        ch = '_';
      r->name[u++] = ch;
    }
  }
  r->name[u] = 0;
}

/* Check one run's settings on a config of its model; 0 or -1 with err (the first bad one). */
static int check_run(const sw_run *r, char *err, size_t n) {
  knobs_config *c;
  if (knobs_config_create(sw_get(r, "model"), &c)) return cli_errf(err, n, "%s", knobs_last_error());
  int rc = 0;
  for (int i = 0; i < r->nset && !rc; i++) {
    if (!strcmp(r->set[i].key, "model")) continue;
    if (knobs_config_set(c, r->set[i].key, r->set[i].val))
      rc = cli_errf(err, n, "run %s: %s=%s: %s", r->name, r->set[i].key, r->set[i].val, knobs_last_error());
  }
  knobs_config_free(c);
  return rc;
}

static int add_run(sw_sweep *s, const sw_run *r, char *err, size_t n) {
  for (int i = 0; i < s->nruns; i++)
    if (!strcmp(s->runs[i].name, r->name)) return 0; /* the same run from another combination */
  if (s->nruns == SW_MAX_RUNS) return cli_errf(err, n, "--grid: more than %d runs", SW_MAX_RUNS);
  if (check_run(r, err, n)) return -1;
  sw_run *nr = realloc(s->runs, sizeof *nr * (size_t)(s->nruns + 1));
  if (!nr) return cli_errf(err, n, "out of memory");
  s->runs = nr;
  s->runs[s->nruns++] = *r;
  return 0;
}

static int expand_one(sw_sweep *s, char *alt, char *err, size_t n) {
  static axis ax[MAX_AXES];
  int na = 0, model_axis = -1;
  for (char *save = NULL, *part = strtok_r(alt, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
    part = trim(part);
    if (!*part) continue;
    char *eq = strchr(part, '=');
    if (!eq) return cli_errf(err, n, "--grid: '%s' is not key=values", part);
    *eq = 0;
    char *key = trim(part);
    if (na == MAX_AXES) return cli_errf(err, n, "--grid: more than %d settings", MAX_AXES);
    axis *a = &ax[na];
    memset(a, 0, sizeof *a);
    if (!*key || strlen(key) >= sizeof a->key) return cli_errf(err, n, "--grid: a bad setting name '%s'", key);
    snprintf(a->key, sizeof a->key, "%s", key);
    for (char *c = a->key; *c; c++)
      if (*c == '-') *c = '_';
    for (int j = 0; j < na; j++)
      if (!strcmp(ax[j].key, a->key)) return cli_errf(err, n, "--grid: '%s' is given twice", a->key);
    for (int j = 0; j < s->nshared; j++)
      if (!strcmp(s->shared[j].key, a->key))
        return cli_errf(err, n, "--grid: '%s' is both in the grid and a shared flag", a->key);
    if (!strcmp(a->key, "out") || !strcmp(a->key, "threads"))
      return cli_errf(err, n, "--grid: '%s' is set by the sweep, not the grid", a->key);
    if (parse_values(a, eq + 1, err, n)) return -1;
    if (!strcmp(a->key, "model")) {
      model_axis = na;
      for (int v = 0; v < a->nval; v++)
        if (!knobs_model_describe(a->val[v])) return cli_errf(err, n, "--grid: unknown model '%s' (see 'knobs help models')", a->val[v]);
    }
    na++;
  }
  if (model_axis < 0) { /* the default model */
    if (na == MAX_AXES) return cli_errf(err, n, "--grid: more than %d settings", MAX_AXES);
    memmove(&ax[1], &ax[0], sizeof ax[0] * (size_t)na);
    memset(&ax[0], 0, sizeof ax[0]);
    snprintf(ax[0].key, sizeof ax[0].key, "model");
    ax[0].nval = 1;
    for (int j = 0; j < s->nshared; j++)
      if (!strcmp(s->shared[j].key, "model")) snprintf(ax[0].val[0], sizeof ax[0].val[0], "%s", s->shared[j].val);
    if (!ax[0].val[0][0]) snprintf(ax[0].val[0], sizeof ax[0].val[0], "betavae");
    na++;
  } else if (model_axis > 0) { /* model first */
    axis t = ax[model_axis];
    memmove(&ax[1], &ax[0], sizeof ax[0] * (size_t)model_axis);
    ax[0] = t;
  }
  /* every combination: an odometer over the axes */
  int idx[MAX_AXES] = {0};
  for (;;) {
    sw_run r;
    memset(&r, 0, sizeof r);
    const char *model = ax[0].val[idx[0]];
    for (int j = 0; j < na; j++) {
      if (j > 0 && !has_setting(model, ax[j].key)) continue;
      ax[j].used = 1;
      memcpy(r.set[r.nset].key, ax[j].key, sizeof r.set[0].key); /* both 48 bytes, terminated */
      snprintf(r.set[r.nset].val, sizeof r.set[0].val, "%s", ax[j].val[idx[j]]);
      r.nset++;
    }
    r.ngrid = r.nset;
    for (int j = 0; j < s->nshared; j++) {
      if (!strcmp(s->shared[j].key, "model")) continue;
      if (r.nset == SW_MAX_SET) return cli_errf(err, n, "too many settings for one run");
      r.set[r.nset++] = s->shared[j];
    }
    run_name(&r);
    if (add_run(s, &r, err, n)) return -1;
    int j = na - 1;
    while (j >= 0 && ++idx[j] == ax[j].nval) idx[j--] = 0;
    if (j < 0) break;
  }
  for (int j = 1; j < na; j++)
    if (!ax[j].used) return cli_errf(err, n, "--grid: '%s' is not a setting of any model of its grid (see 'knobs help models')", ax[j].key);
  return 0;
}

int sw_expand(sw_sweep *s, char *err, size_t n) {
  s->nruns = 0;
  char *copy = strdup(s->grid);
  if (!copy) return cli_errf(err, n, "out of memory");
  int rc = 0;
  for (char *save = NULL, *alt = strtok_r(copy, "|", &save); alt && !rc; alt = strtok_r(NULL, "|", &save))
    rc = expand_one(s, alt, err, n);
  free(copy);
  if (!rc && !s->nruns) rc = cli_errf(err, n, "--grid '%s' has no runs", s->grid);
  return rc;
}

/* ---- sweep.json ------------------------------------------------------------------------------ */

static cJSON *settings_json(const sw_setting *set, int n) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; i < n; i++) cJSON_AddStringToObject(o, set[i].key, set[i].val);
  return o;
}

int sw_write(const sw_sweep *s, char *err, size_t n) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "format", "knobs-sweep-1");
  cJSON_AddStringToObject(o, "grid", s->grid);
  cJSON_AddItemToObject(o, "shared", settings_json(s->shared, s->nshared));
  cJSON_AddBoolToObject(o, "eval", s->eval);
  cJSON_AddStringToObject(o, "eval_args", s->eval_args);
  cJSON *runs = cJSON_AddArrayToObject(o, "runs");
  for (int i = 0; i < s->nruns; i++) {
    const sw_run *r = &s->runs[i];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", r->name);
    cJSON_AddItemToObject(j, "grid", settings_json(r->set, r->ngrid));
    cJSON_AddStringToObject(j, "state", sw_state_name(r->state));
    if (r->state == SW_FAILED) cJSON_AddNumberToObject(j, "exit", r->exit);
    cJSON_AddNumberToObject(j, "seconds", (double)(long)(r->seconds * 10 + 0.5) / 10);
    cJSON_AddItemToArray(runs, j);
  }
  char *text = cJSON_Print(o);
  cJSON_Delete(o);
  if (!text) return cli_errf(err, n, "out of memory");
  char path[1000];
  snprintf(path, sizeof path, "%s/sweep.json", s->dir);
  size_t len = strlen(text);
  text[len] = 0;
  int rc = cli_write_text("sweep", path, text) ? -1 : 0;
  free(text);
  if (rc) cli_errf(err, n, "cannot write %s", path);
  return rc;
}

static int read_settings(cJSON *o, sw_setting *set, int max, int *count) {
  int k = 0;
  cJSON *it;
  cJSON_ArrayForEach(it, o) {
    if (!cJSON_IsString(it) || k == max || strlen(it->string) >= sizeof set[0].key ||
        strlen(it->valuestring) >= sizeof set[0].val)
      return -1;
    snprintf(set[k].key, sizeof set[0].key, "%s", it->string);
    snprintf(set[k].val, sizeof set[0].val, "%s", it->valuestring);
    k++;
  }
  *count = k;
  return 0;
}

int sw_read(const char *dir, sw_sweep *s, char *err, size_t n) {
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  char path[1000];
  snprintf(path, sizeof path, "%s/sweep.json", dir);
  FILE *f = fopen(path, "rb");
  if (!f) return cli_errf(err, n, "%s: cannot open: no sweep in %s", path, dir);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = len > 0 && len < (1L << 26) ? malloc((size_t)len + 1) : NULL;
  int ok = text && fread(text, 1, (size_t)len, f) == (size_t)len;
  fclose(f);
  if (!ok) {
    free(text);
    return cli_errf(err, n, "%s: cannot read", path);
  }
  text[len] = 0;
  cJSON *o = cJSON_Parse(text);
  free(text);
  cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format"), *grid = cJSON_GetObjectItemCaseSensitive(o, "grid");
  cJSON *shared = cJSON_GetObjectItemCaseSensitive(o, "shared"), *runs = cJSON_GetObjectItemCaseSensitive(o, "runs");
  cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "eval"), *me = cJSON_GetObjectItemCaseSensitive(o, "eval_args");
  int rc = 0;
  if (!o) rc = cli_errf(err, n, "%s: not JSON", path);
  else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "knobs-sweep-1"))
    rc = cli_errf(err, n, "%s: not a knobs sweep (format 'knobs-sweep-1' expected)", path);
  else if (!cJSON_IsString(grid) || strlen(grid->valuestring) >= sizeof s->grid || !cJSON_IsObject(shared) ||
           !cJSON_IsArray(runs) || !cJSON_IsBool(ev) || !cJSON_IsString(me) || strlen(me->valuestring) >= sizeof s->eval_args ||
           read_settings(shared, s->shared, SW_MAX_SET, &s->nshared))
    rc = cli_errf(err, n, "%s: a missing or malformed field (grid, shared, eval, eval_args, runs)", path);
  if (!rc) {
    snprintf(s->grid, sizeof s->grid, "%s", grid->valuestring);
    snprintf(s->eval_args, sizeof s->eval_args, "%s", me->valuestring);
    s->eval = cJSON_IsTrue(ev);
    /* the runs are the grid's expansion; the file gives their states */
    rc = sw_expand(s, err, n);
    if (rc) {
      char e2[1700];
      snprintf(e2, sizeof e2, "%s: %s", path, err);
      snprintf(err, n, "%s", e2);
    }
  }
  cJSON *it;
  if (!rc) cJSON_ArrayForEach(it, runs) {
      cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name"), *st = cJSON_GetObjectItemCaseSensitive(it, "state");
      cJSON *ex = cJSON_GetObjectItemCaseSensitive(it, "exit"), *sec = cJSON_GetObjectItemCaseSensitive(it, "seconds");
      if (!cJSON_IsString(nm) || !cJSON_IsString(st)) {
        rc = cli_errf(err, n, "%s: a run without name or state", path);
        break;
      }
      int i = 0;
      while (i < s->nruns && strcmp(s->runs[i].name, nm->valuestring)) i++;
      if (i == s->nruns) {
        rc = cli_errf(err, n, "%s: run '%s' is not in the grid '%s'", path, nm->valuestring, s->grid);
        break;
      }
      int k = 0;
      while (k < 5 && strcmp(state_names[k], st->valuestring)) k++;
      if (k == 5) {
        rc = cli_errf(err, n, "%s: run '%s' has an unknown state '%s'", path, nm->valuestring, st->valuestring);
        break;
      }
      s->runs[i].state = (sw_state)k;
      s->runs[i].exit = cJSON_IsNumber(ex) ? ex->valueint : 0;
      s->runs[i].seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
    }
  cJSON_Delete(o);
  if (rc) sw_free(s);
  return rc;
}
