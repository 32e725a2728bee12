/* cmd_eval.c: `knobs eval --model RUN [--data D]`: every disentanglement metric of a trained
 * model on a ground-truth dataset (its own by default): the array metrics on points drawn
 * with the seed, the intervention metrics (beta_vae, factor_vae, intervention) through the
 * dataset's renderer and the model's encoder, mig_sampled on the posteriors, and the ELBO.
 * The model is wrapped into the library's knobs_encoder (the metrics know nothing of models).
 * The result goes to --out, or to RUN/metrics-<step>.json for a run folder; on a terminal a
 * table is printed and long metrics show their progress. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* from cmd_metrics.c */
int cli_metrics_options(knobs_metrics_opts *o, cli_opt *opts, int dataset);
int cli_metrics_output(const char *cmd, knobs_result *r, const char *out, int json, int quiet);
int cli_metrics_progress(void *ctx, const char *metric, double done, double total);
void cli_metrics_list(FILE *f);
extern volatile int cli_metrics_stop;

typedef struct {
  knobs_model *m;
  uint64_t seed, calls;
} enc_ctx;

static knobs_status enc_mean(void *ctx, const float *x, int n, float *codes) {
  enc_ctx *e = ctx;
  return knobs_model_encode(e->m, x, n, codes, NULL);
}

static knobs_status enc_sampled(void *ctx, const float *x, int n, float *codes) {
  enc_ctx *e = ctx; /* a new noise stream per call, from the metrics' seed */
  return knobs_model_encode_sampled(e->m, x, n, e->seed, (1ull << 50) + e->calls++, codes, NULL);
}

static knobs_status enc_posterior(void *ctx, const float *x, int n, float *mean, float *logvar) {
  enc_ctx *e = ctx;
  return knobs_model_encode(e->m, x, n, mean, logvar);
}

static knobs_status enc_evaluate(void *ctx, const float *x, int n, uint64_t seed, knobs_terms *t, double *kl) {
  enc_ctx *e = ctx;
  return knobs_model_evaluate(e->m, x, n, seed, t, kl);
}

static void on_sigint(int sig) {
  (void)sig;
  cli_metrics_stop = 1;
}

typedef struct {
  int tty;
  double last;
} prog_state;

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
  n += cli_metrics_options(&mo, o + n, 1);
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
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  if ((r = cli_open_model(cmd, model, mo.threads, &m))) return r;
  if ((r = cli_open_data(cmd, m, data, &d))) goto done;
  if (mo.threads <= 0) mo.threads = (int)knobs_config_number(knobs_model_config(m), "threads");
  const knobs_data_info *in = knobs_data_info_get(d);
  enc_ctx ec = {m, mo.seed, 0};
  knobs_encoder enc = {.code_dim = knobs_model_code_dim(m), .encode = sampled ? enc_sampled : enc_mean,
                       .posterior = enc_posterior, .evaluate = enc_evaluate, .ctx = &ec, .batch = batch};
  { /* does the model have a posterior (a VAE)? ask it about one observation */
    size_t per = (size_t)in->C * in->H * in->W;
    float *x = malloc(sizeof(float) * per);
    double *kl = malloc(sizeof(double) * (size_t)(enc.code_dim > 0 ? enc.code_dim : 1) * 4);
    knobs_terms t;
    knobs_status s = !x || !kl ? KNOBS_ERR_NOMEM : knobs_data_draw(d, 1, mo.seed, 0, x, NULL);
    if (!s) s = knobs_model_evaluate(m, x, 1, mo.seed, &t, kl);
    free(x), free(kl);
    if (s == KNOBS_ERR_UNSUPPORTED) enc.posterior = NULL, enc.evaluate = NULL;
    else if (s) {
      r = cli_lib_fail(cmd, "cannot evaluate the model");
      goto done;
    }
  }
  char defout[1200];
  struct stat st;
  if (!out && stat(model, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(defout, sizeof defout, "%s/metrics-%ld.json", model, knobs_model_step(m));
    out = defout;
  }
  prog_state ps = {isatty(STDERR_FILENO) && !quiet, 0};
  mo.progress = cli_metrics_progress;
  mo.progress_ctx = &ps;
  signal(SIGINT, on_sigint);
  knobs_result *res = NULL;
  if (knobs_metrics_dataset(d, &enc, list, &mo, &res)) {
    if (knobs_last_status() == KNOBS_ERR_INTERRUPTED) {
      fprintf(stderr, "\nknobs: %s: stopped (nothing written)\n", cmd);
      r = 130;
    } else {
      r = knobs_last_status() == KNOBS_ERR_ARG && strstr(knobs_last_error(), "unknown metric")
              ? cli_usage_error(cmd, "%s", knobs_last_error())
              : cli_lib_fail(cmd, "cannot compute the metrics");
    }
    goto done;
  }
  knobs_result_set_string(res, "command", "eval");
  knobs_result_set_string(res, "model", model);
  knobs_result_set_string(res, "model_type", knobs_config_string(knobs_model_config(m), "model"));
  knobs_result_set_string(res, "representation", sampled ? "sampled" : "mean");
  char step[32];
  snprintf(step, sizeof step, "%ld", knobs_model_step(m));
  knobs_result_set_string(res, "model_step", step);
  r = cli_metrics_output(cmd, res, out, json, quiet);
  knobs_result_free(res);
done:
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
