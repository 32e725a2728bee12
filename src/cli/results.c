/* results.c: a sweep's results as one table (see results.h): sweep.json through sweep.c, each
 * done run's eval.json read here (read only: nothing is written), the groups of runs that
 * differ only by seed, and Spearman's rank correlation. It does not print or plot. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/results.h"


void rs_free(rs_table *t) {
  sw_free(&t->sw);
  free(t->col);
  free(t->val);
  free(t->evaluated);
  free(t->eval_state);
  free(t->group);
  free(t->gname);
  memset(t, 0, sizeof *t);
}

int rs_col(const rs_table *t, const char *name) {
  for (int c = 0; c < t->ncols; c++)
    if (!strcmp(t->col[c].name, name)) return c;
  return -1;
}

int rs_scored(const rs_table *t, int i) { return t->sw.runs[i].state == SW_DONE && t->evaluated[i]; }

/* The file's text (NUL-terminated, caller frees) or NULL. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *s = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long len = ftell(f);
    if (len >= 0 && len < (1L << 28) && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)len + 1))) {
      if (fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
      } else s[len] = 0;
    }
  }
  fclose(f);
  return s;
}

/* The numbers of one metric object that become columns: numbers but "score" and "seconds". */
static int is_value(const cJSON *e) {
  return cJSON_IsNumber(e) && e->string && strcmp(e->string, "score") && strcmp(e->string, "seconds");
}

/* Metric m's columns: "m.key" (or "m" when the union over the runs has one key), added once. */
static int add_columns(rs_table *t, cJSON *const *ev, int nruns, const char *m, char *err, size_t n) {
  char keys[64][64];
  int nk = 0, head = -1;
  for (int i = 0; i < nruns; i++) {
    cJSON *o = ev[i] ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev[i], "metrics"), m) : NULL;
    if (!cJSON_IsObject(o)) continue;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(o, "score"), *e;
    cJSON_ArrayForEach(e, o) {
      if (!is_value(e) || strlen(e->string) >= sizeof keys[0]) continue;
      int k = 0;
      while (k < nk && strcmp(keys[k], e->string)) k++;
      if (k == nk) {
        if (nk == 64) return cli_errf(err, n, "metric %s has more than 64 numbers", m);
        snprintf(keys[nk++], sizeof keys[0], "%s", e->string);
      }
      if (head < 0 && cJSON_IsNumber(score) && score->valuedouble == e->valuedouble) head = k;
    }
  }
  rs_column *nc = realloc(t->col, sizeof *nc * (size_t)(t->ncols + nk));
  if (!nc && nk) return cli_errf(err, n, "out of memory");
  if (nc) t->col = nc;
  for (int k = 0; k < nk; k++) {
    rs_column *c = &t->col[t->ncols++];
    memset(c, 0, sizeof *c);
    snprintf(c->metric, sizeof c->metric, "%.47s", m);
    if (nk == 1) snprintf(c->name, sizeof c->name, "%.47s", m);
    else snprintf(c->name, sizeof c->name, "%.47s.%.63s", m, keys[k]);
    c->headline = k == head;
  }
  return 0;
}

/* Read run i's eval.json into *out (NULL when the run has none to read). */
static int read_eval(rs_table *t, int i, cJSON **out, char *err, size_t n) {
  *out = NULL;
  const sw_run *r = &t->sw.runs[i];
  if (r->state != SW_DONE) return 0;
  char dir[1200], path[1300];
  sw_run_dir(&t->sw, i, dir, sizeof dir);
  snprintf(path, sizeof path, "%s/eval.json", dir);
  char *text = slurp(path);
  if (!text) {
    if (!t->sw.eval) return 0; /* a sweep without evaluation: no numbers, no error */
    return cli_errf(err, n, "%s: cannot read: run %s is done but has no evaluation (re-run 'knobs eval --model %s "
                "--out %s')", path, r->name, dir, path);
  }
  cJSON *o = cJSON_Parse(text);
  free(text);
  cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "metrics");
  if (!o || !cJSON_IsObject(ms)) {
    cJSON_Delete(o);
    return cli_errf(err, n, "%s: %s", path, o ? "no \"metrics\" object: not a knobs eval result" : "not JSON");
  }
  const cJSON *m;
  cJSON_ArrayForEach(m, ms) {
    if (!cJSON_IsObject(m) || strlen(m->string) >= sizeof t->col[0].metric) {
      cJSON_Delete(o);
      return cli_errf(err, n, "%s: metric \"%s\" is not an object", path, m->string);
    }
  }
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
  if (cJSON_IsString(st)) snprintf(t->eval_state[i], sizeof t->eval_state[0], "%s", st->valuestring);
  *out = o;
  return 0;
}

static void make_groups(rs_table *t) {
  for (int i = 0; i < t->sw.nruns; i++) {
    const sw_run *r = &t->sw.runs[i];
    char key[256];
    size_t u = (size_t)snprintf(key, sizeof key, "%s", sw_get(r, "model"));
    for (int k = 0; k < r->ngrid && u < sizeof key; k++) {
      if (!strcmp(r->set[k].key, "model") || !strcmp(r->set[k].key, "seed")) continue;
      int j = 0;
      while (j < t->nset && strcmp(t->set[j], r->set[k].key)) j++;
      if (j == t->nset && j < SW_MAX_SET) snprintf(t->set[t->nset++], sizeof t->set[0], "%s", r->set[k].key);
      u += (size_t)snprintf(key + u, sizeof key - u, " %s=%s", r->set[k].key, r->set[k].val);
    }
    int g = 0;
    while (g < t->ngroups && strcmp(t->gname[g], key)) g++;
    if (g == t->ngroups) snprintf(t->gname[t->ngroups++], sizeof t->gname[0], "%s", key);
    t->group[i] = g;
  }
}

int rs_load(const char *dir, rs_table *t, char *err, size_t n) {
  memset(t, 0, sizeof *t);
  if (sw_read(dir, &t->sw, err, n)) return -1;
  int R = t->sw.nruns;
  t->evaluated = calloc((size_t)R, sizeof *t->evaluated);
  t->eval_state = calloc((size_t)R, sizeof *t->eval_state);
  t->group = calloc((size_t)R, sizeof *t->group);
  t->gname = calloc((size_t)R, sizeof *t->gname);
  cJSON **ev = calloc((size_t)R, sizeof *ev);
  int rc = 0;
  if (!t->evaluated || !t->eval_state || !t->group || !t->gname || !ev) rc = cli_errf(err, n, "out of memory");
  for (int i = 0; i < R && !rc; i++) rc = read_eval(t, i, &ev[i], err, n);
  if (!rc) make_groups(t);
  /* the metrics in the order first seen, then their columns */
  for (int i = 0; i < R && !rc; i++) {
    if (!ev[i]) continue;
    t->evaluated[i] = 1;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ev[i], "metrics")) {
      int seen = 0;
      for (int c = 0; c < t->ncols && !seen; c++) seen = !strcmp(t->col[c].metric, m->string);
      if (!seen && (rc = add_columns(t, ev, R, m->string, err, n))) break;
    }
  }
  if (!rc && !(t->val = malloc(sizeof *t->val * (size_t)R * (size_t)(t->ncols ? t->ncols : 1))))
    rc = cli_errf(err, n, "out of memory");
  for (int i = 0; i < R && !rc; i++)
    for (int c = 0; c < t->ncols; c++) {
      double v = NAN;
      cJSON *o = ev[i] ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev[i], "metrics"),
                                                          t->col[c].metric) : NULL;
      const char *dot = strchr(t->col[c].name, '.');
      const cJSON *e = NULL;
      if (o && dot) e = cJSON_GetObjectItemCaseSensitive(o, dot + 1);
      else if (o) { /* the metric's one number */
        const cJSON *x;
        cJSON_ArrayForEach(x, o) if (is_value(x)) { e = x; break; }
      }
      if (cJSON_IsNumber(e) && isfinite(e->valuedouble)) v = e->valuedouble;
      t->val[(size_t)i * (size_t)t->ncols + (size_t)c] = v;
    }
  for (int i = 0; ev && i < R; i++) cJSON_Delete(ev[i]);
  free(ev);
  if (rc) rs_free(t);
  return rc;
}

/* average ranks (1-based) of v[0..k), ties sharing their mean rank */
static void ranks(const double *v, int k, double *rk, int *idx) {
  for (int i = 0; i < k; i++) idx[i] = i;
  for (int i = 1; i < k; i++) { /* insertion sort by value: k is a sweep's run count */
    int x = idx[i], j = i - 1;
    while (j >= 0 && v[idx[j]] > v[x]) idx[j + 1] = idx[j], j--;
    idx[j + 1] = x;
  }
  for (int i = 0; i < k;) {
    int j = i;
    while (j + 1 < k && v[idx[j + 1]] == v[idx[i]]) j++;
    for (int q = i; q <= j; q++) rk[idx[q]] = (i + j) / 2.0 + 1;
    i = j + 1;
  }
}

double rs_spearman(const double *x, const double *y, int n, int *used) {
  double *a = malloc(sizeof *a * (size_t)(4 * n + 1));
  int *idx = malloc(sizeof *idx * (size_t)(n + 1));
  double r = NAN;
  int k = 0;
  if (a && idx) {
    double *b = a + n, *ra = a + 2 * n, *rb = a + 3 * n;
    for (int i = 0; i < n; i++)
      if (!isnan(x[i]) && !isnan(y[i])) a[k] = x[i], b[k] = y[i], k++;
    if (k >= 2) {
      ranks(a, k, ra, idx);
      ranks(b, k, rb, idx);
      double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
      for (int i = 0; i < k; i++) ma += ra[i], mb += rb[i];
      ma /= k, mb /= k;
      for (int i = 0; i < k; i++)
        sab += (ra[i] - ma) * (rb[i] - mb), saa += (ra[i] - ma) * (ra[i] - ma), sbb += (rb[i] - mb) * (rb[i] - mb);
      if (saa > 0 && sbb > 0) r = sab / sqrt(saa * sbb);
    }
  }
  free(a);
  free(idx);
  if (used) *used = k;
  return r;
}
