/* cmd_select.c: `knobs select SWEEP [--method udr]`: rank a sweep's runs without labels.
 *
 * UDR (Duan et al. 2020; knobs_udr_models, docs/metrics.md "UDR") compares runs of one
 * setting: for each group of finished runs that differ only by seed (src/cli/results.c: the
 * model and the other grid settings), at least two, the models are loaded, encode the same
 * draw of their own dataset, and each run gets the median of its pairwise similarities. The
 * ranking is printed within each group and over all scored runs, and written to select.json
 * with every group's pairwise matrix. When the runs have eval.json numbers, the Spearman rank
 * correlation between the UDR scores and each supervised metric's headline across the scored
 * runs (the figure Duan et al. report) is printed and stored, with the numbers of the run UDR
 * puts first. A group of one run, or of models without a posterior (InfoGAN), is skipped with
 * a note. It trains and evaluates nothing: it reads what `knobs sweep` left. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/results.h"

int cmd_select(int argc, char **argv); /* listed in main.c */

typedef struct {
  int nrun;
  int *run;         /* (nrun) indices into the sweep's runs */
  double *pairwise; /* (nrun, nrun) or NULL when not scored */
  int *n_active;    /* (nrun) */
  char note[600];   /* why not scored ("" when scored) */
} sel_group;

/* The metrics that use no labels: not "supervised" (their headlines are left out of the
 * correlation with UDR, which uses none either). */
static int supervised(const char *metric) { return strcmp(metric, "unsupervised") && strcmp(metric, "elbo"); }

/* UDR of group g's runs into sg (scores into udr[run]); 0, or an exit code after a failure that
 * is not the group's own (a model that will not load, a failed encode). */
static int score_group(const char *cmd, const rs_table *t, sel_group *sg, const knobs_udr_opts *uo, int threads,
                       double *udr) {
  knobs_model **m = calloc((size_t)sg->nrun, sizeof *m);
  knobs_data *d = NULL;
  knobs_udr_result *res = NULL;
  int rc = 0;
  if (!m) return cli_fail(cmd, "out of memory");
  for (int k = 0; k < sg->nrun && !rc; k++) {
    char dir[1200], path[1300];
    sw_run_dir(&t->sw, sg->run[k], dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (knobs_model_load(path, threads, &m[k])) rc = cli_lib_fail(cmd, "cannot load a run's model");
  }
  if (!rc && knobs_model_open_data(m[0], NULL, &d)) rc = cli_lib_fail(cmd, "cannot open the runs' data");
  if (!rc) {
    knobs_status s = knobs_udr_models(m, sg->nrun, d, uo, &res);
    if (s == KNOBS_ERR_UNSUPPORTED) snprintf(sg->note, sizeof sg->note, "not scored: %s", knobs_last_error());
    else if (s) rc = cli_lib_fail(cmd, "UDR failed");
  }
  if (res) {
    sg->pairwise = malloc(sizeof *sg->pairwise * (size_t)sg->nrun * (size_t)sg->nrun);
    sg->n_active = malloc(sizeof *sg->n_active * (size_t)sg->nrun);
    if (!sg->pairwise || !sg->n_active) rc = cli_fail(cmd, "out of memory");
    else {
      memcpy(sg->pairwise, res->pairwise, sizeof *sg->pairwise * (size_t)sg->nrun * (size_t)sg->nrun);
      memcpy(sg->n_active, res->n_active, sizeof *sg->n_active * (size_t)sg->nrun);
      for (int k = 0; k < sg->nrun; k++) udr[sg->run[k]] = res->scores[k];
    }
  }
  knobs_udr_result_free(res);
  knobs_data_free(d);
  for (int k = 0; k < sg->nrun; k++) knobs_model_free(m[k]);
  free(m);
  return rc;
}

/* runs ordered by UDR, best first (NaN: not scored, last), ties in sweep order */
static const double *sort_key;
static int by_udr(const void *a, const void *b) {
  int i = *(const int *)a, j = *(const int *)b;
  double x = sort_key[i], y = sort_key[j];
  if (isnan(x) != isnan(y)) return isnan(x) ? 1 : -1;
  if (!isnan(x) && x != y) return x > y ? -1 : 1;
  return (i > j) - (i < j);
}

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

typedef struct {
  const char *method, *variant;
  int n, threads;
  long seed;
} sel_flags;

int cmd_select(int argc, char **argv) {
  const char *cmd = "select", *out = NULL, *pos[1];
  sel_flags f = {.method = "udr", .variant = "lasso", .n = 1000, .threads = 1, .seed = 0};
  int npos = 0;
  cli_opt o[] = {
      {"--method", OPT_STR, &f.method, 0, 0, "udr", "the selection method (udr: Duan et al.'s UDR; the only one)", 0},
      {"--variant", OPT_STR, &f.variant, 0, 0, "lasso|spearman", "UDR's similarity of two runs' latents", 0},
      {"--n", OPT_INT, &f.n, 2, 1e7, "N", "observations every run encodes", 0},
      {"--seed", OPT_LONG, &f.seed, 0, 9e15, "S", "the draw of the observations", 0},
      {"--threads", OPT_INT, &f.threads, 1, 1024, "N", "threads of each model and of the UDR pairs", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "the ranking as JSON (default: SWEEP/select.json)", 0},
  };
  int rc = cli_parse(cmd, "SWEEP [--method udr] [--variant lasso|spearman] [--n N] [--out select.json]", argc, argv,
                     o, 6, pos, 1, &npos);
  if (rc) return rc < 0 ? 0 : rc;
  if (npos != 1) return cli_usage_error(cmd, "give the sweep folder: knobs select SWEEP");
  if (strcmp(f.method, "udr")) return cli_usage_error(cmd, "--method %s: unknown (the one method is udr)", f.method);
  knobs_udr_opts uo;
  knobs_udr_opts_default(&uo);
  if (!strcmp(f.variant, "lasso")) uo.variant = KNOBS_UDR_LASSO;
  else if (!strcmp(f.variant, "spearman")) uo.variant = KNOBS_UDR_SPEARMAN;
  else return cli_usage_error(cmd, "--variant %s: use lasso or spearman", f.variant);
  uo.n = f.n, uo.seed = (uint64_t)f.seed, uo.threads = f.threads, uo.raw_correlations = 0;
  static const char *const json_ext[] = {".json", NULL};
  char defout[1100];
  if (!out) {
    snprintf(defout, sizeof defout, "%s/select.json", pos[0]);
    out = defout;
  } else if (cli_check_ext(cmd, "--out", out, json_ext)) return 1;

  rs_table t;
  char err[2048];
  if (rs_load(pos[0], &t, err, sizeof err)) return cli_fail(cmd, "%s", err);
  int R = t.sw.nruns, G = t.ngroups;
  sel_group *sg = calloc((size_t)G, sizeof *sg);
  double *udr = malloc(sizeof *udr * (size_t)R);
  int *order = malloc(sizeof *order * (size_t)R), *gorder = malloc(sizeof *gorder * (size_t)R);
  char *json = NULL;
  cJSON *root = NULL;
  if (!sg || !udr || !order || !gorder) {
    rc = cli_fail(cmd, "out of memory");
    goto done;
  }
  for (int i = 0; i < R; i++) udr[i] = NAN;
  printf("UDR (%s, %d observations, seed %ld) of each group of finished runs that differ only by seed\n", f.variant,
         f.n, f.seed);
  int nscored = 0;
  for (int g = 0; g < G && !rc; g++) {
    sel_group *s = &sg[g];
    if (!(s->run = malloc(sizeof *s->run * (size_t)R))) {
      rc = cli_fail(cmd, "out of memory");
      break;
    }
    for (int i = 0; i < R; i++)
      if (t.group[i] == g && t.sw.runs[i].state == SW_DONE) s->run[s->nrun++] = i;
    if (s->nrun < 2)
      snprintf(s->note, sizeof s->note, "not scored: %d finished run%s; UDR compares the runs of one setting, 2 or more",
               s->nrun, s->nrun == 1 ? "" : "s");
    else rc = score_group(cmd, &t, s, &uo, f.threads, udr);
    if (rc) break;
    if (s->note[0]) {
      printf("\n%s: %s\n", t.gname[g], s->note);
      continue;
    }
    nscored += s->nrun;
    memcpy(gorder, s->run, sizeof *gorder * (size_t)s->nrun);
    sort_key = udr;
    qsort(gorder, (size_t)s->nrun, sizeof *gorder, by_udr);
    printf("\n%s: %d runs\n  %4s  %-40s %8s %7s\n", t.gname[g], s->nrun, "rank", "run", "udr", "active");
    for (int k = 0; k < s->nrun; k++) {
      int kk = 0;
      while (s->run[kk] != gorder[k]) kk++;
      printf("  %4d  %-40s %8.4f %7d\n", k + 1, t.sw.runs[gorder[k]].name, udr[gorder[k]], s->n_active[kk]);
    }
  }
  if (rc) goto done;
  if (!nscored) {
    rc = cli_fail(cmd, "no group of 2 or more finished runs could be scored: nothing ranked (%s not written)", out);
    goto done;
  }
  for (int i = 0; i < R; i++) order[i] = i;
  sort_key = udr;
  qsort(order, (size_t)R, sizeof *order, by_udr);
  printf("\noverall (%d runs scored):\n  %4s  %-40s %8s  %s\n", nscored, "rank", "run", "udr", "group");
  for (int k = 0; k < nscored; k++)
    printf("  %4d  %-40s %8.4f  %s\n", k + 1, t.sw.runs[order[k]].name, udr[order[k]], t.gname[t.group[order[k]]]);

  /* select.json */
  root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "format", "knobs-select-1");
  cJSON_AddStringToObject(root, "sweep", t.sw.dir);
  cJSON_AddStringToObject(root, "method", "udr");
  cJSON_AddStringToObject(root, "variant", f.variant);
  cJSON_AddNumberToObject(root, "n", f.n);
  cJSON_AddNumberToObject(root, "seed", (double)f.seed);
  cJSON *jg = cJSON_AddArrayToObject(root, "groups");
  for (int g = 0; g < G; g++) {
    sel_group *s = &sg[g];
    cJSON *e = cJSON_CreateObject(), *names = cJSON_AddArrayToObject(e, "runs");
    cJSON_AddItemToArray(jg, e);
    cJSON_AddStringToObject(e, "name", t.gname[g]);
    for (int k = 0; k < s->nrun; k++) cJSON_AddItemToArray(names, cJSON_CreateString(t.sw.runs[s->run[k]].name));
    if (s->note[0]) {
      cJSON_AddStringToObject(e, "note", s->note);
      continue;
    }
    cJSON *sc = cJSON_AddArrayToObject(e, "udr"), *na = cJSON_AddArrayToObject(e, "n_active");
    cJSON *pw = cJSON_AddArrayToObject(e, "pairwise");
    for (int a = 0; a < s->nrun; a++) {
      cJSON_AddItemToArray(sc, num_or_null(udr[s->run[a]]));
      cJSON_AddItemToArray(na, cJSON_CreateNumber(s->n_active[a]));
      cJSON *row = cJSON_CreateArray();
      for (int b = 0; b < s->nrun; b++) cJSON_AddItemToArray(row, num_or_null(s->pairwise[a * s->nrun + b]));
      cJSON_AddItemToArray(pw, row);
    }
  }
  cJSON *jr = cJSON_AddArrayToObject(root, "ranking");
  for (int k = 0; k < nscored; k++) {
    int i = order[k], in_group = 1;
    for (int q = 0; q < k; q++) in_group += t.group[order[q]] == t.group[i];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "run", t.sw.runs[i].name);
    cJSON_AddStringToObject(e, "group", t.gname[t.group[i]]);
    cJSON_AddNumberToObject(e, "udr", udr[i]);
    cJSON_AddNumberToObject(e, "rank", k + 1);
    cJSON_AddNumberToObject(e, "rank_in_group", in_group);
    cJSON_AddItemToArray(jr, e);
  }
  /* UDR against the supervised metrics, over the scored runs that have them */
  cJSON *jsp = cJSON_AddObjectToObject(root, "spearman");
  double *col = malloc(sizeof *col * (size_t)R);
  int header = 0;
  for (int c = 0; col && c < t.ncols; c++) {
    if (!t.col[c].headline || !supervised(t.col[c].metric)) continue;
    for (int i = 0; i < R; i++) col[i] = rs_scored(&t, i) ? t.val[(size_t)i * (size_t)t.ncols + (size_t)c] : NAN;
    int used;
    double rho = rs_spearman(udr, col, R, &used);
    if (!used) continue;
    if (!header++) printf("\nSpearman rank correlation of UDR with each supervised metric (across the scored runs):\n");
    printf("  %-28s %7.3f  (%d runs)\n", t.col[c].name, rho, used);
    cJSON *e = cJSON_AddObjectToObject(jsp, t.col[c].name);
    cJSON_AddItemToObject(e, "rho", num_or_null(rho));
    cJSON_AddNumberToObject(e, "runs", used);
  }
  free(col);
  int top = order[0];
  cJSON *sel = cJSON_AddObjectToObject(root, "selected");
  cJSON_AddStringToObject(sel, "run", t.sw.runs[top].name);
  cJSON_AddStringToObject(sel, "group", t.gname[t.group[top]]);
  cJSON_AddNumberToObject(sel, "udr", udr[top]);
  printf("\nselected (best UDR): %s (%s), udr %.4f\n", t.sw.runs[top].name, t.gname[t.group[top]], udr[top]);
  if (rs_scored(&t, top)) {
    cJSON *m = cJSON_AddObjectToObject(sel, "metrics");
    for (int c = 0; c < t.ncols; c++) {
      double v = t.val[(size_t)top * (size_t)t.ncols + (size_t)c];
      if (isnan(v)) continue;
      cJSON_AddNumberToObject(m, t.col[c].name, v);
      if (t.col[c].headline && supervised(t.col[c].metric)) printf("  %-28s %9.4f\n", t.col[c].name, v);
    }
  }
  if (!(json = cJSON_Print(root))) rc = cli_fail(cmd, "out of memory");
  else if ((rc = cli_write_text(cmd, out, json)) == 0) printf("\nwritten: %s\n", out);
done:
  cJSON_Delete(root);
  free(json);
  for (int g = 0; sg && g < G; g++) free(sg[g].run), free(sg[g].pairwise), free(sg[g].n_active);
  free(sg);
  free(udr);
  free(order);
  free(gorder);
  rs_free(&t);
  return rc;
}
