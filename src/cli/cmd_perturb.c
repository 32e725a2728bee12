/* cmd_perturb.c: `knobs perturb`: predict how a cell type never seen perturbed responds, by
 * scGen's latent arithmetic (knobs_perturb, src/apps/perturb.c; docs/apps.md "knobs perturb"):
 *   knobs perturb --model RUN --data D --label condition --control ctrl --stim stim
 *                 --celltype-col celltype --hold-out type1 --out pred.npz [--json]
 * writes pred.npz (pred, truth, ctrl, shift: mean log1p-normalised expression (G); delta (Z);
 * top_de: gene indices), the JSON report (--report, default the --out path with .json) and, with
 * --delta, the direction alone as .npy, all or nothing; prints a table (or the JSON with --json).
 * It decides nothing itself: the numbers come from the library. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const npz_ext[] = {".npz", NULL}, *const npy_ext[] = {".npy", NULL},
                         *const json_ext[] = {".json", NULL};

static void json_score(char *buf, size_t n, size_t *u, const char *name, const knobs_perturb_score *s, int last) {
  *u += (size_t)snprintf(buf + *u, n - *u,
                         "    \"%s\": {\"r2_all\": %.6f, \"r2_top\": %.6f, \"cod_all\": %.6f, \"cod_top\": %.6f}%s\n",
                         name, s->r2_all, s->r2_top, s->cod_all, s->cod_top, last ? "" : ",");
}

static char *report_json(const knobs_perturb_opts *o, const char *model, const knobs_data_info *in,
                         const knobs_perturb_result *r) {
  size_t n = 8192 + (size_t)r->Z * 24, u = 0;
  char *b = malloc(n), s1[300], s2[300], s3[300], s4[300], s5[300], s6[300], s7[300];
  if (!b) return NULL;
  u += (size_t)snprintf(b + u, n - u,
                        "{\n  \"model\": %s,\n  \"data\": %s,\n  \"label\": %s,\n  \"control\": %s,\n  \"stim\": %s,\n"
                        "  \"celltype\": %s,\n  \"hold_out\": %s,\n  \"genes\": %d,\n  \"latents\": %d,\n"
                        "  \"cells\": {\"hold_out_ctrl\": %lld, \"hold_out_stim\": %lld, \"other_ctrl\": %lld, "
                        "\"other_stim\": %lld},\n  \"top_de\": %d,\n  \"target_sum\": %g,\n  \"amount\": %g,\n"
                        "  \"expression\": \"mean over cells of log1p(counts / library * target_sum)\",\n"
                        "  \"r2\": \"squared Pearson correlation with the true mean (scGen's); cod: coefficient of "
                        "determination\",\n  \"scores\": {\n",
                        cli_json_str(s1, sizeof s1, model), cli_json_str(s2, sizeof s2, in->name),
                        cli_json_str(s3, sizeof s3, o->label), cli_json_str(s4, sizeof s4, o->control),
                        cli_json_str(s5, sizeof s5, o->stim), cli_json_str(s6, sizeof s6, o->celltype),
                        cli_json_str(s7, sizeof s7, o->hold_out), r->G, r->Z, (long long)r->n_ctrl,
                        (long long)r->n_stim, (long long)r->n_other_ctrl, (long long)r->n_other_stim, r->n_top,
                        o->target_sum, o->amount);
  json_score(b, n, &u, "model", &r->model, 0);
  json_score(b, n, &u, "no_change", &r->no_change, 0);
  json_score(b, n, &u, "mean_shift", &r->mean_shift, 1);
  u += (size_t)snprintf(b + u, n - u, "  },\n  \"delta\": [");
  for (int k = 0; k < r->Z; k++) u += (size_t)snprintf(b + u, n - u, "%s%.7g", k ? ", " : "", r->delta[k]);
  snprintf(b + u, n - u, "]\n}\n");
  return b;
}

static int write_outputs(const char *cmd, const char *out, const char *report, const char *delta, const char *json,
                         const knobs_perturb_result *r) {
  cli_outputs outs = {0};
  int rc = 0;
  int64_t G = r->G, Z = r->Z, T = r->n_top;
  knobs_array a[6] = {
      {KNOBS_F32, 1, {G}, r->pred}, {KNOBS_F32, 1, {G}, r->truth}, {KNOBS_F32, 1, {G}, r->ctrl},
      {KNOBS_F32, 1, {G}, r->shift}, {KNOBS_F32, 1, {Z}, r->delta}, {KNOBS_I32, 1, {T}, r->top},
  };
  static const char *const names[6] = {"pred", "truth", "ctrl", "shift", "delta", "top_de"};
  const char *tmp = cli_out_add(&outs, out);
  if (!tmp) rc = cli_usage_error(cmd, "--out %s: the path is too long", out);
  else if (knobs_npz_write(tmp, names, a, 6, 0)) rc = cli_lib_fail(cmd, "cannot write --out (nothing written)");
  if (!rc && delta) {
    if (!(tmp = cli_out_add(&outs, delta))) rc = cli_usage_error(cmd, "--delta %s: the path is too long", delta);
    else if (knobs_npy_write(tmp, &a[4])) rc = cli_lib_fail(cmd, "cannot write --delta (nothing written)");
  }
  if (!rc) rc = cli_out_text(cmd, &outs, report, json);
  if (!rc) rc = cli_out_commit(cmd, &outs);
  else cli_out_abort(&outs);
  return rc;
}

static void print_table(const knobs_perturb_opts *o, const knobs_data_info *in, const knobs_perturb_result *r) {
  printf("perturbation of %s (%s -> %s) predicted for %s = %s on %s\n", o->label, o->control, o->stim, o->celltype,
         o->hold_out, in->name);
  printf("cells: %lld control and %lld stim of %s (the truth); delta from %lld control and %lld stim of the others\n",
         (long long)r->n_ctrl, (long long)r->n_stim, o->hold_out, (long long)r->n_other_ctrl,
         (long long)r->n_other_stim);
  printf("mean log1p(counts / library * %g) over cells; R^2 = squared Pearson with the true mean, "
         "CoD = 1 - SS_res/SS_tot\n\n", o->target_sum);
  printf("  %-26s %9s %9s %9s %9s\n", "prediction", "R2 all", "R2 top", "CoD all", "CoD top");
  const knobs_perturb_score *s[3] = {&r->model, &r->no_change, &r->mean_shift};
  static const char *const what[3] = {"model (latent arithmetic)", "no change (control mean)", "mean shift in genes"};
  for (int i = 0; i < 3; i++)
    printf("  %-26s %9.4f %9.4f %9.4f %9.4f\n", what[i], s[i]->r2_all, s[i]->r2_top, s[i]->cod_all, s[i]->cod_top);
  printf("\n  (%d genes; top: the %d with the largest |true stim - control| of %s)\n", r->G, r->n_top, o->hold_out);
}

int cmd_perturb(int argc, char **argv) {
  const char *cmd = "perturb", *model = NULL, *data = NULL, *out = NULL, *report = NULL, *delta = NULL;
  knobs_perturb_opts po;
  knobs_perturb_opts_default(&po);
  int threads = 0, json = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder (likelihood nb, zinb, or gaussian on log1p counts)", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "the cells with the truth (raw counts; default: the model's data)", 0},
      {"--label", OPT_STR, &po.label, 0, 0, "F", "the condition's factor", 0},
      {"--control", OPT_STR, &po.control, 0, 0, "C", "its control class", 0},
      {"--stim", OPT_STR, &po.stim, 0, 0, "S", "its perturbed class", 0},
      {"--celltype-col", OPT_STR, &po.celltype, 0, 0, "F", "the cell type's factor", 0},
      {"--hold-out", OPT_STR, &po.hold_out, 0, 0, "T", "the cell type whose stim cells are predicted (required)", 0},
      {"--top", OPT_INT, &po.top_de, 1, 1000000, "N", "top differentially expressed genes scored apart", 0},
      {"--target-sum", OPT_DOUBLE, &po.target_sum, 1e-6, 1e12, "S", "library normalisation: counts / library * S", 0},
      {"--amount", OPT_DOUBLE, &po.amount, -1e6, 1e6, "T", "predict decode(z + T * delta)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH.npz", "predicted and true means, baselines, delta, top gene indices", 0},
      {"--report", OPT_STR, &report, 0, 0, "PATH.json", "the JSON report (default: --out with .json)", 0},
      {"--delta", OPT_STR, &delta, 0, 0, "PATH.npy", "also write delta alone (Z,) float32", 0},
      {"--json", OPT_FLAG, &json, 0, 0, NULL, "print the JSON report instead of the table", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int rc = cli_parse(cmd, "--model RUN --data D --hold-out T --out pred.npz [options]", argc, argv, o, no, NULL, 0, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  if (!model) return cli_usage_error(cmd, "--model RUN is required");
  if (!po.hold_out) return cli_usage_error(cmd, "--hold-out T is required (the cell type to predict)");
  if (!out) return cli_usage_error(cmd, "--out PATH.npz is required");
  if ((rc = cli_check_ext(cmd, "--out", out, npz_ext))) return rc;
  if (delta && (rc = cli_check_ext(cmd, "--delta", delta, npy_ext))) return rc;
  char rpath[1024];
  if (!report) {
    size_t n = strlen(out);
    if (n - 4 + 5 >= sizeof rpath) return cli_usage_error(cmd, "--out %s: the path is too long", out);
    snprintf(rpath, sizeof rpath, "%.*s.json", (int)(n - 4), out);
    report = rpath;
  } else if ((rc = cli_check_ext(cmd, "--report", report, json_ext))) {
    return rc;
  }
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  knobs_perturb_result r = {0};
  char *js = NULL;
  if ((rc = cli_open_model_data(cmd, model, threads, data, &m, &d))) return rc;
  if (knobs_perturb(m, d, &po, &r)) {
    rc = cli_lib_fail(cmd, "cannot predict the perturbation");
    goto done;
  }
  const knobs_data_info *in = knobs_data_info_get(d);
  if (!(js = report_json(&po, model, in, &r))) {
    rc = cli_fail(cmd, "out of memory");
    goto done;
  }
  if ((rc = write_outputs(cmd, out, report, delta, js, &r))) goto done;
  if (json) fputs(js, stdout);
  else print_table(&po, in, &r);
  fprintf(stderr, "wrote %s, %s%s%s\n", out, report, delta ? ", " : "", delta ? delta : "");
done:
  free(js);
  knobs_perturb_result_free(&r);
  knobs_data_free(d);
  knobs_model_free(m);
  return rc;
}
