/* cmd_eval.c: `knobs eval --model RUN [--data D]`: every disentanglement metric of a trained
 * model on a ground-truth dataset (its own by default): the array metrics on points drawn
 * with the seed, the intervention metrics (beta_vae, factor_vae, intervention) through the
 * dataset's renderer and the model's encoder, mig_sampled on the posteriors, and the ELBO.
 * The model becomes the metrics' encoder through knobs_model_encoder. The result goes to
 * --out, or to RUN/metrics-<step>.json for a run folder, rewritten (atomically) after every
 * finished metric; Ctrl-C keeps the finished ones ("state": "interrupted", exit 130). A table
 * is printed (the JSON with --json); progress goes to stderr, in place on a terminal, as a
 * plain line at most every 10 s otherwise.
 *
 * The grid code table (knobs_grid_codes, --grid-cache): on a grid dataset with posterior-mean
 * codes, when the metrics asked for would encode at least as many observations as the grid
 * has points (the reference defaults on dSprites: ~2.9 million draws of 737,280 points), every
 * point is encoded once and the metrics read the table; the table is saved beside the
 * checkpoint, named by the checkpoint's content hash and the dataset, so a later eval of the
 * same weights skips encoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"

int cmd_eval(int argc, char **argv); /* listed in main.c */

/* FNV-1a 64 of a file's bytes (the checkpoint's identity for the table's name); 0 on error. */
static unsigned long long file_hash(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  unsigned long long h = 1469598103934665603ull;
  unsigned char buf[1 << 16];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 1099511628211ull;
  int bad = ferror(f);
  fclose(f);
  return bad ? 0 : h;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int listed(const char *list, const char *name) {
  if (!strcmp(list, "all")) return 1;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)); p += n)
    if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
  return 0;
}

/* Observations the metrics in `list` would encode (the reference protocol's counts). */
static double encodings(const char *list, const knobs_metrics_opts *mo, const knobs_data_info *in) {
  double n = (double)mo->num_train + mo->num_test; /* the shared draw (an over-estimate if unused) */
  if (listed(list, "beta_vae")) n += 2.0 * mo->batch_size * ((double)mo->num_train + mo->num_eval);
  if (listed(list, "factor_vae")) n += mo->num_variance + (double)mo->batch_size * ((double)mo->num_train + mo->num_eval);
  if (listed(list, "intervention")) n += mo->intervention_scale_n + 2.0 * mo->intervention_n;
  if (listed(list, "mig_sampled")) n += mo->mig_sampled_points > 0 ? mo->mig_sampled_points : (double)in->n;
  return n;
}

/* The table for (model, d): read from its file beside the checkpoint, or built and saved there.
 * 0 with *g filled (or left empty when the table does not apply), else an exit status. */
static int grid_table(const char *cmd, const char *model, const char *mode, knobs_data *d, const knobs_encoder *enc,
                      const char *list, const knobs_metrics_opts *mo, int quiet, knobs_grid_codes *g) {
  const knobs_data_info *in = knobs_data_info_get(d);
  if (!strcmp(mode, "off") || !knobs_data_is_fixed_grid(d)) return 0;
  double need = encodings(list, mo, in);
  if (!strcmp(mode, "auto") && need < (double)in->n) return 0;
  char ckpt[1100], path[1400], dname[64];
  struct stat st;
  if (stat(model, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", model);
  else snprintf(ckpt, sizeof ckpt, "%s", model);
  snprintf(dname, sizeof dname, "%s", in->name);
  for (char *q = dname; *q; q++)
    if (*q == '/' || *q == ':' || *q == ' ') *q = '-';
  unsigned long long h = file_hash(ckpt);
  if (!h) return cli_fail(cmd, "cannot read %s to name its grid code table", ckpt);
  const char *slash = strrchr(ckpt, '/');
  int dirlen = slash ? (int)(slash - ckpt) : 1;
  snprintf(path, sizeof path, "%.*s/grid_codes-%s-%016llx.npy", dirlen, slash ? ckpt : ".", dname, h);
  int want_lv = enc->posterior != NULL;
  if (stat(path, &st) == 0) {
    if (knobs_grid_codes_load(path, d, enc->code_dim, want_lv, g)) return cli_lib_fail(cmd, "cannot read the grid code table");
    if (!quiet) fprintf(stderr, "grid codes: %s (%lld points, read)\n", path, (long long)g->n);
    return 0;
  }
  double t0 = now();
  knobs_status s = knobs_grid_codes_build(d, enc, mo->progress, mo->progress_ctx, g);
  if (s == KNOBS_ERR_INTERRUPTED) {
    fprintf(stderr, "knobs: %s: stopped while encoding the grid, before any metric (nothing written)\n", cmd);
    return 130;
  }
  if (s) return cli_lib_fail(cmd, "cannot encode the grid");
  double secs = now() - t0;
  if (knobs_grid_codes_save(g, path)) return cli_lib_fail(cmd, "cannot save the grid code table");
  if (!quiet)
    fprintf(stderr, "grid codes: %lld points encoded in %.1f s (%.0f img/s; %.2g encodings of the metrics replaced), saved "
            "to %s\n", (long long)g->n, secs, secs > 0 ? (double)g->n / secs : 0, need, path);
  return 0;
}
int cmd_eval(int argc, char **argv) {
  const char *cmd = "eval", *model = NULL, *data = NULL, *out = NULL, *list = "all", *rep = "mean", *gc = "auto";
  int json = 0, quiet = 0, batch = 256;
  knobs_metrics_opts mo;
  knobs_metrics_opts_default(&mo);
  mo.threads = 0;
  cli_opt o[64] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "ground-truth dataset (default: the model's)", 0},
      {"--metrics", OPT_STR, &list, 0, 0, "LIST", "all, or a comma list (below)", 0},
      {"--representation", OPT_STR, &rep, 0, 0, "mean|sampled", "codes scored: posterior means or samples", 0},
      {"--batch", OPT_INT, &batch, 1, 65536, "N", "observations per encoder call", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "result JSON (default for a run folder: RUN/metrics-STEP.json)", 0},
      {"--json", OPT_FLAG, &json, 0, 0, NULL, "print the JSON instead of the table", 0},
      {"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "print nothing but errors", 0},
      {"--grid-cache", OPT_STR, &gc, 0, 0, "auto|on|off",
       "encode each grid point once, kept beside the checkpoint (auto: when the metrics would encode more)", 0},
  };
  int n = 9;
  n += cli_metrics_options(&mo, o + n, 64 - n, 1);
  for (int i = 0; i < n; i++) /* --threads 0: the model's own thread count */
    if (!strcmp(o[i].name, "--threads")) o[i].min = 0, o[i].help = "threads (0: as trained)";
  int r = cli_parse(cmd, "--model RUN [--data D] [options]", argc, argv, o, n, NULL, 0, NULL);
  if (r < 0) {
    cli_metrics_list(stdout);
    return 0;
  }
  if (r) return r;
  int sampled = !strcmp(rep, "sampled");
  if (!sampled && strcmp(rep, "mean")) return cli_usage_error(cmd, "--representation: '%s' is not mean or sampled", rep);
  if (strcmp(gc, "auto") && strcmp(gc, "on") && strcmp(gc, "off"))
    return cli_usage_error(cmd, "--grid-cache: '%s' is not auto, on or off", gc);
  if (sampled && !strcmp(gc, "on")) return cli_usage_error(cmd, "--grid-cache on needs --representation mean (samples differ per draw)");
  if (!model) return cli_usage_error(cmd, "--model RUN is required");
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  knobs_encoder enc = {0};
  knobs_grid_codes grid = {0};
  if ((r = cli_open_model_data(cmd, model, mo.threads, data, &m, &d))) return r;
  const knobs_config *cfg = knobs_model_config(m);
  if (mo.threads <= 0) mo.threads = (int)knobs_config_number(cfg, "threads");
  knobs_status s = knobs_model_encoder(m, sampled, mo.seed, &enc);
  if (s) {
    r = cli_metrics_fail(cmd, s, "cannot use the model as an encoder");
    goto done;
  }
  enc.batch = batch;
  char defout[1200], step[32];
  struct stat st;
  if (!out && stat(model, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(defout, sizeof defout, "%s/metrics-%ld.json", model, knobs_model_step(m));
    out = defout;
  }
  snprintf(step, sizeof step, "%ld", knobs_model_step(m));
  cli_metrics_run run;
  cli_metrics_run_init(&run, cmd, out, quiet, &mo);
  cli_metrics_run_tag(&run, "command", "eval");
  cli_metrics_run_tag(&run, "model", model);
  cli_metrics_run_tag(&run, "model_type", knobs_config_string(cfg, "model"));
  cli_metrics_run_tag(&run, "representation", sampled ? "sampled" : "mean");
  cli_metrics_run_tag(&run, "model_step", step);
  cli_metrics_catch_signals();
  knobs_result *res = NULL;
  if (!sampled && (r = grid_table(cmd, model, gc, d, &enc, list, &mo, quiet, &grid))) goto done;
  if (grid.mean) {
    mo.grid_codes = &grid;
    cli_metrics_run_tag(&run, "grid_codes", "every grid point encoded once (knobs_grid_codes)");
  }
  s = knobs_metrics_dataset(d, &enc, list, &mo, &res);
  r = cli_metrics_finish(&run, s, res, json);
  knobs_result_free(res);
done:
  knobs_grid_codes_free(&grid);
  knobs_encoder_release(&enc);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
