/* cmd_eval.c: `knobs eval --model RUN [--data D]`: every disentanglement metric of a trained
 * model on a ground-truth dataset (its own by default): the array metrics on points drawn
 * with the seed, the intervention metrics (beta_vae, factor_vae, intervention) through the
 * dataset's renderer and the model's encoder, mig_sampled on the posteriors, and the ELBO.
 * The model becomes the metrics' encoder through knobs_model_encoder. The result goes to
 * --out, or to RUN/metrics-<step>.json for a run folder, rewritten (atomically) after every
 * finished metric; Ctrl-C keeps the finished ones ("state": "interrupted", exit 130). A table
 * is printed (the JSON with --json); progress goes to stderr, in place on a terminal, as a
 * plain line at most every 10 s otherwise. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"

int cmd_eval(int argc, char **argv); /* listed in main.c */
int cmd_eval(int argc, char **argv) {
  const char *cmd = "eval", *model = NULL, *data = NULL, *out = NULL, *list = "all", *rep = "mean";
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
  };
  int n = 8;
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
  if (!model) return cli_usage_error(cmd, "--model RUN is required");
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  knobs_encoder enc = {0};
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
  s = knobs_metrics_dataset(d, &enc, list, &mo, &res);
  r = cli_metrics_finish(&run, s, res, json);
  knobs_result_free(res);
done:
  knobs_encoder_release(&enc);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
