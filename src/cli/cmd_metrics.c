/* cmd_metrics.c: `knobs metrics`: every disentanglement metric on plain arrays, codes (N,D)
 * and factors (N,K) as .npy (from knobs encode, NumPy or any framework). Writes the result as
 * JSON (--out, atomically); on a terminal prints a table, otherwise the JSON to stdout when no
 * --out is given. Also the pieces `knobs eval` shares: the metric options and the output. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

/* shared with cmd_eval.c (declared in both files: cli.h belongs to the CLI's owner) */
int cli_metrics_options(knobs_metrics_opts *o, cli_opt *opts, int dataset);
int cli_metrics_output(const char *cmd, knobs_result *r, const char *out, int json, int quiet);
int cli_metrics_progress(void *ctx, const char *metric, double done, double total);
void cli_metrics_list(FILE *f);
extern volatile int cli_metrics_stop;

volatile int cli_metrics_stop;

/* The options both commands take, bound to the fields of `o`; returns how many. */
int cli_metrics_options(knobs_metrics_opts *o, cli_opt *opts, int dataset) {
  int n = 0;
#define OPT(name, kind, field, lo, hi, meta, help) opts[n++] = (cli_opt){name, kind, &o->field, lo, hi, meta, help, 0}
  OPT("--seed", OPT_U64, seed, 0, 0, "S", "seed of every random draw");
  OPT("--threads", OPT_INT, threads, 1, 1024, "N", "threads");
  if (!dataset) OPT("--train-frac", OPT_DOUBLE, train_frac, 1e-9, 1 - 1e-9, "F", "first fraction of the rows trains the classifiers, the rest tests");
  if (dataset) {
    OPT("--num-train", OPT_INT, num_train, 1, 1e8, "N", "points drawn to train; beta_vae, factor_vae: training points");
    OPT("--num-test", OPT_INT, num_test, 1, 1e8, "N", "points drawn to test");
  } else {
    OPT("--num-train", OPT_INT, num_train, 1, 1e8, "N", "beta_vae, factor_vae: training points");
  }
  OPT("--num-bins", OPT_INT, num_bins, 1, 4096, "N", "histogram bins of the discretised codes");
  OPT("--batch-size", OPT_INT, batch_size, 2, 1e6, "N", "beta_vae, factor_vae: observations per point");
  OPT("--num-eval", OPT_INT, num_eval, 1, 1e8, "N", "beta_vae, factor_vae: evaluation points");
  if (dataset) OPT("--num-variance", OPT_INT, num_variance, 2, 1e8, "N", "factor_vae: points of the global variance");
  OPT("--prune-threshold", OPT_DOUBLE, prune_threshold, 0, 1e300, "X", "factor_vae: inactive below this std");
  OPT("--gbt-stages", OPT_INT, gbt_stages, 1, 8192, "N", "dci: boosting stages");
  OPT("--gbt-depth", OPT_INT, gbt_depth, 1, 7, "N", "dci: tree depth");
  OPT("--gbt-learning-rate", OPT_DOUBLE, gbt_learning_rate, 1e-12, 1e6, "X", "dci: learning rate");
  OPT("--sap-c", OPT_DOUBLE, sap_C, 1e-300, 1e300, "X", "sap: the SVM's C");
  OPT("--sap-continuous", OPT_FLAG, sap_continuous, 0, 0, NULL, "sap: factors are continuous (R^2 scores)");
  OPT("--logreg-c", OPT_DOUBLE, logreg_C, 1e-300, 1e300, "X", "beta_vae, explicitness: inverse L2 strength");
  OPT("--irs-quantile", OPT_DOUBLE, irs_quantile, 0, 1, "Q", "irs: diff quantile");
  OPT("--mig-sampled-samples", OPT_INT, mig_sampled_samples, 1, 1e8, "N", "mig_sampled: samples per entropy");
  OPT("--mig-sampled-factors", OPT_STR, mig_sampled_factors, 0, 0, "LIST", "mig_sampled: factors scored (names or indices)");
  if (dataset) {
    OPT("--mig-sampled-points", OPT_INT, mig_sampled_points, 0, 4e6, "N", "mig_sampled: posteriors encoded (0: whole dataset)");
    OPT("--intervention-n", OPT_INT, intervention_n, 1, 1e8, "N", "intervention: interventions");
    OPT("--intervention-scale-n", OPT_INT, intervention_scale_n, 2, 1e8, "N", "intervention: observations for the code scales");
    OPT("--intervention-active", OPT_DOUBLE, intervention_active, 0, 1, "X", "intervention: active if std >= X max std");
    OPT("--intervention-cyclic", OPT_STR, intervention_cyclic, 0, 0, "LIST", "intervention: auto | none | factor names that wrap");
    OPT("--elbo-points", OPT_INT, elbo_points, 1, 1e8, "N", "elbo: held-out observations");
  }
#undef OPT
  return n;
}

void cli_metrics_list(FILE *f) {
  fprintf(f, "\nmetrics (--metrics all, or a comma list):\n");
  for (const char *const *m = knobs_metric_names(); *m; m++) fprintf(f, "  %-14s %s\n", *m, knobs_metric_describe(*m));
  fprintf(f, "\ndefinitions, defaults and sources: docs/metrics.md\n");
}

typedef struct {
  int tty;
  double last;
} prog_state;

int cli_metrics_progress(void *ctx, const char *metric, double done, double total) {
  prog_state *p = ctx;
  if (p && p->tty) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (done >= total) {
      fputs("\r\033[K", stderr);
    } else if (now - p->last >= 0.2) {
      p->last = now;
      fprintf(stderr, "\r\033[K%s %.0f%%", metric, total > 0 ? 100 * done / total : 100);
    }
    fflush(stderr);
  }
  return cli_metrics_stop;
}

int cli_metrics_output(const char *cmd, knobs_result *r, const char *out, int json, int quiet) {
  char *j = knobs_result_json(r);
  if (!j) return cli_lib_fail(cmd, "cannot format the result");
  /* metrics skipped by "all": say so on stderr */
  const char *sk = strstr(j, "\"skipped\":");
  if (sk && !quiet) { /* {"name": "reason", ...}: one line per metric */
    const char *e = strchr(sk, '}'), *q = strchr(sk + 10, '"');
    while (q && e && q < e) {
      const char *q2 = strchr(q + 1, '"'), *q3 = q2 ? strchr(q2 + 1, '"') : NULL, *q4 = q3 ? strchr(q3 + 1, '"') : NULL;
      if (!q4 || q4 > e) break;
      fprintf(stderr, "knobs: %s: skipped %.*s: %.*s\n", cmd, (int)(q2 - q - 1), q + 1, (int)(q4 - q3 - 1), q3 + 1);
      q = strchr(q4 + 1, '"');
    }
  }
  int rc = 0;
  if (out && knobs_result_write(r, out)) rc = cli_lib_fail(cmd, "cannot write the result");
  if (!rc && !quiet) {
    if (json || (!out && !isatty(STDOUT_FILENO))) {
      puts(j);
    } else {
      char *t = knobs_result_table(r);
      if (t) fputs(t, stdout);
      free(t);
    }
    if (out) fprintf(stderr, "wrote %s\n", out);
  }
  free(j);
  return rc;
}

static void on_sigint(int sig) {
  (void)sig;
  cli_metrics_stop = 1;
}

static int read_array(const char *cmd, const char *what, const char *path, knobs_array *a) {
  if (knobs_npy_read(path, a)) return cli_lib_fail(cmd, what);
  return 0;
}

int cmd_metrics(int argc, char **argv); /* listed in main.c */
int cmd_metrics(int argc, char **argv) {
  const char *cmd = "metrics", *codes = NULL, *factors = NULL, *logvar = NULL, *out = NULL, *list = "all";
  int json = 0, quiet = 0;
  knobs_metrics_opts mo;
  knobs_metrics_opts_default(&mo);
  mo.threads = 2;
  cli_opt o[64] = {
      {"--codes", OPT_STR, &codes, 0, 0, "PATH", "codes .npy (N,D), any numeric dtype", 0},
      {"--factors", OPT_STR, &factors, 0, 0, "PATH", "factors .npy (N,K) integer class labels", 0},
      {"--logvar", OPT_STR, &logvar, 0, 0, "PATH", "posterior log-variances .npy (N,D), for mig_sampled", 0},
      {"--metrics", OPT_STR, &list, 0, 0, "LIST", "all, or a comma list (below)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "write the result as JSON", 0},
      {"--json", OPT_FLAG, &json, 0, 0, NULL, "print the JSON instead of the table", 0},
      {"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "print nothing but errors", 0},
  };
  int n = 7;
  n += cli_metrics_options(&mo, o + n, 0);
  int r = cli_parse(cmd, "--codes codes.npy --factors factors.npy [options]", argc, argv, o, n, NULL, 0, NULL);
  if (r < 0) {
    cli_metrics_list(stdout);
    return 0;
  }
  if (r) return r;
  if (!codes) return cli_usage_error(cmd, "--codes PATH is required");
  if (!factors && strcmp(list, "unsupervised"))
    return cli_usage_error(cmd, "--factors PATH is required (only --metrics unsupervised works without)");
  knobs_array z = {0}, f = {0}, lv = {0};
  if ((r = read_array(cmd, "cannot read the codes", codes, &z))) return r;
  if (factors && (r = read_array(cmd, "cannot read the factors", factors, &f))) goto done;
  if (logvar && (r = read_array(cmd, "cannot read the log-variances", logvar, &lv))) goto done;
  mo.codes_name = codes;
  mo.factors_name = factors ? factors : "factors";
  mo.logvar_name = logvar ? logvar : "logvar";
  prog_state ps = {isatty(STDERR_FILENO) && !quiet, 0};
  mo.progress = cli_metrics_progress;
  mo.progress_ctx = &ps;
  signal(SIGINT, on_sigint);
  knobs_result *res = NULL;
  if (knobs_metrics_arrays(&z, factors ? &f : NULL, logvar ? &lv : NULL, list, &mo, &res)) {
    r = knobs_last_status() == KNOBS_ERR_ARG && strstr(knobs_last_error(), "unknown metric")
            ? cli_usage_error(cmd, "%s", knobs_last_error())
            : cli_lib_fail(cmd, "cannot compute the metrics");
    goto done;
  }
  knobs_result_set_string(res, "command", "metrics");
  r = cli_metrics_output(cmd, res, out, json, quiet);
  knobs_result_free(res);
done:
  knobs_array_free(&z), knobs_array_free(&f), knobs_array_free(&lv);
  return r;
}
