/* cmd_report.c: `knobs report SWEEP --out DIR`: a sweep's results as tables and plots.
 *
 * One row per run of sweep.json (src/cli/results.c reads it and every done run's eval.json):
 * run, model, each grid setting, seed, state, and every number of its eval.json
 * (DIR/report.csv, DIR/report.json; docs/formats.md "Report"). A run not done is listed with
 * its state and no numbers. Then, for the plotted columns (--plot; each metric's headline by
 * default), over the done runs: a box plot per column of its values per group (the runs that
 * differ only by seed: the model and the other grid settings, as the figures of Locatello et
 * al. 2019 group them), DIR/box-COLUMN.png, and the Spearman rank correlation between the
 * columns across runs as an annotated heat map, DIR/spearman.png, drawn with PLplot
 * (src/cli/plot.c); built without PLplot, the tables are written and the report says that no
 * plots were drawn. Every output is committed together or not at all. stdout: a compact table
 * and each group's mean +- standard deviation (ddof 1) of every plotted column. It computes
 * no metric: it reads the ones `knobs sweep` stored. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/plot.h"
#include "cli/results.h"

int cmd_report(int argc, char **argv); /* listed in main.c */

#define MAX_PLOT (CLI_MAX_OUTPUTS - 3) /* report.csv, report.json, spearman.png */

/* ---- the CSV ----------------------------------------------------------------------------------- */

typedef struct {
  char *s;
  size_t n, cap;
  int fail;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  if (t->fail) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      t->fail = 1;
      return;
    }
    if (t->s && t->n + (size_t)k < t->cap) {
      t->n += (size_t)k;
      return;
    }
    size_t cap = t->cap * 2 + (size_t)k + 4096;
    char *s = realloc(t->s, cap);
    if (!s) {
      t->fail = 1;
      return;
    }
    t->s = s, t->cap = cap;
  }
}

/* a CSV field: quoted when it holds a comma, quote or line break (RFC 4180) */
static void put_field(text *t, const char *v, int first) {
  if (!first) put(t, ",");
  if (!strpbrk(v, ",\"\r\n")) {
    put(t, "%s", v);
    return;
  }
  put(t, "\"");
  for (const char *c = v; *c; c++) put(t, *c == '"' ? "\"\"" : "%c", *c);
  put(t, "\"");
}

static char *make_csv(const rs_table *t) {
  text c = {0};
  put_field(&c, "run", 1);
  put_field(&c, "model", 0);
  for (int k = 0; k < t->nset; k++) put_field(&c, t->set[k], 0);
  put_field(&c, "seed", 0);
  put_field(&c, "state", 0);
  for (int k = 0; k < t->ncols; k++) put_field(&c, t->col[k].name, 0);
  put(&c, "\n");
  for (int i = 0; i < t->sw.nruns; i++) {
    const sw_run *r = &t->sw.runs[i];
    put_field(&c, r->name, 1);
    put_field(&c, sw_get(r, "model"), 0);
    for (int k = 0; k < t->nset; k++) put_field(&c, sw_get(r, t->set[k]), 0);
    put_field(&c, sw_get(r, "seed"), 0);
    put_field(&c, sw_state_name(r->state), 0);
    for (int k = 0; k < t->ncols; k++) {
      double v = t->val[(size_t)i * (size_t)t->ncols + (size_t)k];
      if (isnan(v)) put(&c, ",");
      else put(&c, ",%.17g", v);
    }
    put(&c, "\n");
  }
  if (c.fail) {
    free(c.s);
    return NULL;
  }
  return c.s;
}

/* ---- statistics -------------------------------------------------------------------------------- */

typedef struct {
  int n;
  double mean, std, median; /* std: ddof 1, NaN for n < 2 */
} stats;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* column c over the scored runs of group g (every group for g < 0); values into v (nruns) */
static int column_values(const rs_table *t, int c, int g, double *v) {
  int k = 0;
  for (int i = 0; i < t->sw.nruns; i++) {
    if ((g >= 0 && t->group[i] != g) || !rs_scored(t, i)) continue;
    double x = t->val[(size_t)i * (size_t)t->ncols + (size_t)c];
    if (!isnan(x)) v[k++] = x;
  }
  return k;
}

static stats summarise(double *v, int k) {
  stats s = {k, NAN, NAN, NAN};
  if (!k) return s;
  double sum = 0;
  for (int i = 0; i < k; i++) sum += v[i];
  s.mean = sum / k;
  if (k > 1) {
    double ss = 0;
    for (int i = 0; i < k; i++) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(ss / (k - 1));
  }
  qsort(v, (size_t)k, sizeof *v, cmp_double);
  s.median = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
  return s;
}

/* Spearman matrix (np x np) of the plotted columns across the scored runs; *nused: runs used */
static void spearman_matrix(const rs_table *t, const int *cols, int np, double *mat, int *nused) {
  int R = t->sw.nruns;
  double *x = malloc(sizeof *x * (size_t)R * 2);
  *nused = 0;
  if (!x) {
    for (int i = 0; i < np * np; i++) mat[i] = NAN;
    return;
  }
  double *y = x + R;
  for (int i = 0; i < R; i++) *nused += rs_scored(t, i);
  for (int a = 0; a < np; a++)
    for (int b = 0; b < np; b++) {
      for (int i = 0; i < R; i++) {
        int s = rs_scored(t, i);
        x[i] = s ? t->val[(size_t)i * (size_t)t->ncols + (size_t)cols[a]] : NAN;
        y[i] = s ? t->val[(size_t)i * (size_t)t->ncols + (size_t)cols[b]] : NAN;
      }
      mat[a * np + b] = rs_spearman(x, y, R, NULL);
    }
  free(x);
}

/* ---- report.json ------------------------------------------------------------------------------- */

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static char *make_json(const rs_table *t, const int *cols, int np, const double *mat, int nused, cJSON *plots,
                       const char *plot_note) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "format", "knobs-report-1");
  cJSON_AddStringToObject(o, "sweep", t->sw.dir);
  cJSON_AddStringToObject(o, "grid", t->sw.grid);
  cJSON *set = cJSON_AddArrayToObject(o, "settings");
  for (int k = 0; k < t->nset; k++) cJSON_AddItemToArray(set, cJSON_CreateString(t->set[k]));
  cJSON *jc = cJSON_AddArrayToObject(o, "columns");
  for (int c = 0; c < t->ncols; c++) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", t->col[c].name);
    cJSON_AddStringToObject(e, "metric", t->col[c].metric);
    cJSON_AddBoolToObject(e, "headline", t->col[c].headline);
    cJSON_AddItemToArray(jc, e);
  }
  cJSON *runs = cJSON_AddArrayToObject(o, "runs");
  for (int i = 0; i < t->sw.nruns; i++) {
    const sw_run *r = &t->sw.runs[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", r->name);
    cJSON_AddStringToObject(e, "model", sw_get(r, "model"));
    cJSON *s = cJSON_AddObjectToObject(e, "settings");
    for (int k = 0; k < t->nset; k++)
      if (sw_get(r, t->set[k])[0]) cJSON_AddStringToObject(s, t->set[k], sw_get(r, t->set[k]));
    cJSON_AddStringToObject(e, "seed", sw_get(r, "seed"));
    cJSON_AddStringToObject(e, "state", sw_state_name(r->state));
    if (r->state == SW_FAILED) cJSON_AddNumberToObject(e, "exit", r->exit);
    cJSON_AddStringToObject(e, "group", t->gname[t->group[i]]);
    if (t->evaluated[i]) {
      if (t->eval_state[i][0]) cJSON_AddStringToObject(e, "eval_state", t->eval_state[i]);
      cJSON *m = cJSON_AddObjectToObject(e, "metrics");
      for (int c = 0; c < t->ncols; c++) {
        double v = t->val[(size_t)i * (size_t)t->ncols + (size_t)c];
        if (!isnan(v)) cJSON_AddNumberToObject(m, t->col[c].name, v);
      }
    }
    cJSON_AddItemToArray(runs, e);
  }
  cJSON *groups = cJSON_AddArrayToObject(o, "groups");
  double *v = malloc(sizeof *v * (size_t)(t->sw.nruns + 1));
  for (int g = 0; g < t->ngroups && v; g++) {
    cJSON *e = cJSON_CreateObject(), *names = cJSON_CreateArray();
    cJSON_AddStringToObject(e, "name", t->gname[g]);
    for (int i = 0; i < t->sw.nruns; i++)
      if (t->group[i] == g) cJSON_AddItemToArray(names, cJSON_CreateString(t->sw.runs[i].name));
    cJSON_AddItemToObject(e, "runs", names);
    cJSON *sm = cJSON_AddObjectToObject(e, "summary");
    for (int c = 0; c < t->ncols; c++) {
      stats st = summarise(v, column_values(t, c, g, v));
      if (!st.n) continue;
      cJSON *x = cJSON_CreateObject();
      cJSON_AddNumberToObject(x, "n", st.n);
      cJSON_AddItemToObject(x, "mean", num_or_null(st.mean));
      cJSON_AddItemToObject(x, "std", num_or_null(st.std));
      cJSON_AddItemToObject(x, "median", num_or_null(st.median));
      cJSON_AddItemToObject(sm, t->col[c].name, x);
    }
    cJSON_AddItemToArray(groups, e);
  }
  free(v);
  cJSON *sp = cJSON_AddObjectToObject(o, "spearman");
  cJSON *sc = cJSON_AddArrayToObject(sp, "columns"), *sm = cJSON_AddArrayToObject(sp, "matrix");
  for (int a = 0; a < np; a++) {
    cJSON_AddItemToArray(sc, cJSON_CreateString(t->col[cols[a]].name));
    cJSON *row = cJSON_CreateArray();
    for (int b = 0; b < np; b++) cJSON_AddItemToArray(row, num_or_null(mat[a * np + b]));
    cJSON_AddItemToArray(sm, row);
  }
  cJSON_AddNumberToObject(sp, "runs", nused);
  cJSON_AddItemToObject(o, "plots", plots);
  if (plot_note) cJSON_AddStringToObject(o, "plots_note", plot_note);
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}

/* ---- the plots --------------------------------------------------------------------------------- */

/* box-COLUMN.png for each plotted column and spearman.png into o; names added to `plots`.
 * 0, or an exit code (reported). */
static int draw_plots(const char *cmd, const char *dir, const rs_table *t, const int *cols, int np, const double *mat,
                      int nused, cli_outputs *o, cJSON *plots) {
  int G = t->ngroups, R = t->sw.nruns;
  const double **gv = malloc(sizeof *gv * (size_t)G);
  int *cnt = malloc(sizeof *cnt * (size_t)G);
  char(*lab)[300] = malloc(sizeof *lab * (size_t)G);
  const char **labp = malloc(sizeof *labp * (size_t)G);
  int rc = 0;
  if (!gv || !cnt || !lab || !labp) rc = cli_fail(cmd, "out of memory");
  char path[1200], err[1400], title[300];
  for (int p = 0; p < np && !rc; p++) {
    int c = cols[p], k = 0;
    double *vals = malloc(sizeof *vals * (size_t)(R + 1));
    if (!vals) {
      rc = cli_fail(cmd, "out of memory");
      break;
    }
    for (int g = 0; g < G; g++) {
      int m = column_values(t, c, g, vals + k);
      gv[g] = vals + k, cnt[g] = m, k += m;
      snprintf(lab[g], sizeof lab[0], "%s (%d)", t->gname[g], m);
      labp[g] = lab[g];
    }
    snprintf(path, sizeof path, "%s/box-%s.png", dir, t->col[c].name);
    snprintf(title, sizeof title, "%s per group (runs per group in brackets)", t->col[c].name);
    cli_boxplot b = {.title = title, .ylabel = t->col[c].name, .ngroups = G, .group = labp, .count = cnt, .values = gv};
    const char *tmp = cli_out_add(o, path);
    if (!tmp) rc = cli_usage_error(cmd, "--out %s: the path is too long", dir);
    else if (cli_plot_box(tmp, 800, 560, &b, err, sizeof err)) rc = cli_fail(cmd, "cannot draw %s: %s (nothing written)", path, err);
    else cJSON_AddItemToArray(plots, cJSON_CreateString(path + strlen(dir) + 1));
    free(vals);
  }
  if (!rc && np >= 2) {
    const char **names = malloc(sizeof *names * (size_t)np);
    if (!names) rc = cli_fail(cmd, "out of memory");
    for (int p = 0; !rc && p < np; p++) names[p] = t->col[cols[p]].name;
    snprintf(path, sizeof path, "%s/spearman.png", dir);
    const char *tmp = rc ? NULL : cli_out_add(o, path);
    snprintf(title, sizeof title, "Spearman rank correlation of the metrics across %d runs", nused);
    if (!rc && !tmp) rc = cli_usage_error(cmd, "--out %s: the path is too long", dir);
    else if (!rc && cli_plot_heat(tmp, title, np, names, mat, err, sizeof err))
      rc = cli_fail(cmd, "cannot draw %s: %s (nothing written)", path, err);
    else if (!rc) cJSON_AddItemToArray(plots, cJSON_CreateString("spearman.png"));
    free(names);
  }
  free(gv);
  free(cnt);
  free(lab);
  free(labp);
  return rc;
}

/* ---- stdout ------------------------------------------------------------------------------------ */

#define NAME_MAX_W 24 /* a column of the stdout table is as wide as its name, up to this */

static int col_width(const char *name) {
  int n = (int)strlen(name);
  return n < 9 ? 9 : n > NAME_MAX_W ? NAME_MAX_W : n;
}

static void print_fmt(double v, int w) {
  if (isnan(v)) printf(" %*s", w, "-");
  else printf(" %*.4f", w, v);
}

static void print_report(const rs_table *t, const int *cols, int np, const char *dir, int nplots, const char *note) {
  int wn = 3;
  for (int i = 0; i < t->sw.nruns; i++)
    if ((int)strlen(t->sw.runs[i].name) > wn) wn = (int)strlen(t->sw.runs[i].name);
  printf("%-*s %-10s", wn, "run", "state");
  for (int p = 0; p < np; p++) printf(" %*.*s", col_width(t->col[cols[p]].name), NAME_MAX_W, t->col[cols[p]].name);
  printf("\n");
  for (int i = 0; i < t->sw.nruns; i++) {
    printf("%-*s %-10s", wn, t->sw.runs[i].name, sw_state_name(t->sw.runs[i].state));
    for (int p = 0; p < np; p++)
      print_fmt(rs_scored(t, i) ? t->val[(size_t)i * (size_t)t->ncols + (size_t)cols[p]] : NAN,
                col_width(t->col[cols[p]].name));
    printf("\n");
  }
  int cut = 0;
  for (int p = 0; p < np; p++) cut |= strlen(t->col[cols[p]].name) > NAME_MAX_W;
  if (cut) {
    printf("(names cut to %d characters: %s", NAME_MAX_W, t->col[cols[0]].name);
    for (int p = 1; p < np; p++) printf(", %s", t->col[cols[p]].name);
    printf(")\n");
  }
  printf("\nmean ± std (over seeds) per group:\n");
  double *v = malloc(sizeof *v * (size_t)(t->sw.nruns + 1));
  for (int g = 0; g < t->ngroups && v; g++) {
    int n = 0;
    for (int i = 0; i < t->sw.nruns; i++) n += t->group[i] == g && rs_scored(t, i);
    printf("  %s (%d scored):", t->gname[g], n);
    for (int p = 0; p < np; p++) {
      stats s = summarise(v, column_values(t, cols[p], g, v));
      if (!s.n) printf("%s %s -", p ? " |" : "", t->col[cols[p]].name);
      else if (s.n < 2) printf("%s %s %.4f", p ? " |" : "", t->col[cols[p]].name, s.mean);
      else printf("%s %s %.4f ± %.4f", p ? " |" : "", t->col[cols[p]].name, s.mean, s.std);
    }
    printf("\n");
  }
  free(v);
  printf("\nwritten: %s/report.csv, %s/report.json (every number)", dir, dir);
  if (nplots) printf(", %d plots (%s/box-*.png%s)\n", nplots, dir, np >= 2 ? ", spearman.png" : "");
  else printf("\nplots: none: %s\n", note);
}

/* ---- the command ------------------------------------------------------------------------------- */

/* The plotted columns: --plot's list, or each metric's headline. 0 or an exit code. */
static int plot_columns(const char *cmd, const rs_table *t, const char *list, int *cols, int *np) {
  *np = 0;
  if (!list) {
    for (int c = 0; c < t->ncols && *np < MAX_PLOT; c++)
      if (t->col[c].headline) cols[(*np)++] = c;
    return 0;
  }
  char buf[2048];
  const char *names[MAX_PLOT];
  int k = cli_split_list(list, buf, sizeof buf, names, MAX_PLOT);
  if (k < 0) return cli_usage_error(cmd, "--plot: more than %d columns", MAX_PLOT);
  for (int i = 0; i < k; i++) {
    int c = rs_col(t, names[i]);
    if (c < 0) {
      char have[2048] = "";
      size_t u = 0;
      for (int j = 0; j < t->ncols && u < sizeof have - 120; j++)
        u += (size_t)snprintf(have + u, sizeof have - u, "%s%s", j ? ", " : "", t->col[j].name);
      return cli_usage_error(cmd, "--plot: no column '%s' in this sweep's results (there are: %s)", names[i],
                             t->ncols ? have : "none");
    }
    cols[(*np)++] = c;
  }
  return 0;
}

int cmd_report(int argc, char **argv) {
  const char *cmd = "report", *out = NULL, *plot = NULL, *pos[1];
  int npos = 0, no_plots = 0;
  cli_opt o[] = {
      {"--out", OPT_STR, &out, 0, 0, "DIR", "folder for report.csv, report.json and the plots (default: SWEEP/report)", 0},
      {"--plot", OPT_STR, &plot, 0, 0, "LIST", "columns plotted and summarised (comma list; default: each metric's headline)", 0},
      {"--no-plots", OPT_FLAG, &no_plots, 0, 0, NULL, "write the tables only", 0},
  };
  int rc = cli_parse(cmd, "SWEEP [--out DIR] [--plot LIST] [--no-plots]", argc, argv, o, 3, pos, 1, &npos);
  if (rc) return rc < 0 ? 0 : rc;
  if (npos != 1) return cli_usage_error(cmd, "give the sweep folder: knobs report SWEEP [--out DIR]");
  char defout[1100];
  if (!out) {
    snprintf(defout, sizeof defout, "%s/report", pos[0]);
    out = defout;
  }
  rs_table t;
  char err[2048];
  if (rs_load(pos[0], &t, err, sizeof err)) return cli_fail(cmd, "%s", err);
  int cols[MAX_PLOT], np = 0;
  if ((rc = plot_columns(cmd, &t, plot, cols, &np))) {
    rs_free(&t);
    return rc;
  }
  double *mat = malloc(sizeof *mat * (size_t)(np * np + 1));
  int nused = 0, scored = 0;
  for (int i = 0; i < t.sw.nruns; i++) scored += rs_scored(&t, i);
  cJSON *plots = cJSON_CreateArray();
  const char *note = NULL;
  if (no_plots) note = "--no-plots";
  else if (!cli_plot_available()) note = cli_plot_info();
  else if (!scored) note = "no run is done and evaluated";
  else if (!np) note = "no metric to plot";
  char *csv = make_csv(&t), *json = NULL;
  if (!mat || !plots || !csv) {
    rc = cli_fail(cmd, "out of memory");
    goto done;
  }
  spearman_matrix(&t, cols, np, mat, &nused);
  int made;
  if ((rc = cli_out_dir(cmd, out, &made))) goto done;
  cli_outputs outs = {0};
  char path[1200];
  if (!note) rc = draw_plots(cmd, out, &t, cols, np, mat, nused, &outs, plots);
  int nplots = cJSON_GetArraySize(plots);
  if (!rc) {
    json = make_json(&t, cols, np, mat, nused, plots, note);
    plots = NULL; /* owned by the JSON now */
    if (!json) rc = cli_fail(cmd, "out of memory");
  }
  snprintf(path, sizeof path, "%s/report.csv", out);
  if (!rc) rc = cli_out_text(cmd, &outs, path, csv);
  snprintf(path, sizeof path, "%s/report.json", out);
  if (!rc) rc = cli_out_text(cmd, &outs, path, json);
  if (!rc) rc = cli_out_commit(cmd, &outs);
  else cli_out_abort(&outs);
  if (rc && made) rmdir(out);
  if (!rc) print_report(&t, cols, np, out, nplots, note);
done:
  cJSON_Delete(plots);
  free(json);
  free(csv);
  free(mat);
  rs_free(&t);
  return rc;
}
