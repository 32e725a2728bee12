/* cmd_metrics.c: `knobs metrics`: every disentanglement metric on plain arrays, codes (N,D)
 * and factors (N,K) as .npy (from knobs encode, NumPy or any framework). Prints a table, or
 * the JSON with --json; --out writes the JSON, atomically, after every finished metric (so it
 * always holds the metrics finished so far). Also the pieces `knobs eval` shares: the metric
 * flags (built from the library's option table, knobs_metrics_opt_field), the run state
 * (progress lines, per-metric writes, Ctrl-C) and the output. Exit codes are decided from the
 * library's status (cli_metrics_exit), never from message text. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_metrics.h"

static volatile sig_atomic_t stop_flag;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* First Ctrl-C (or SIGTERM): stop after the current step and keep what is done; a second one
 * kills (the default action), which still leaves a valid JSON (every write is atomic). */
static void on_signal(int sig) {
  stop_flag = 1;
  signal(sig, SIG_DFL);
}

void cli_metrics_catch_signals(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int cli_metrics_exit(knobs_status s) {
  if (s == KNOBS_OK) return 0;
  if (s == KNOBS_ERR_ARG) return 1; /* the request: an unknown metric, an option out of range */
  if (s == KNOBS_ERR_INTERRUPTED) return 130;
  return 2;
}

int cli_metrics_fail(const char *cmd, knobs_status s, const char *what) {
  if (cli_metrics_exit(s) == 1) return cli_usage_error(cmd, "%s", knobs_last_error());
  cli_lib_fail(cmd, what);
  return cli_metrics_exit(s);
}

/* ---- flags from the option table -------------------------------------------------------- */
static char flag_names[64][48]; /* "--gbt-stages": the table's names, '_' as '-' */

int cli_metrics_options(knobs_metrics_opts *o, cli_opt *opts, int max, int dataset) {
  int n = 0, want = dataset ? KNOBS_MOPT_DATASET : KNOBS_MOPT_ARRAYS;
  const knobs_metrics_field *f;
  for (int i = 0; (f = knobs_metrics_opt_field(i)) && n < max && i < 64; i++) {
    if (!(f->inputs & want)) continue;
    char *nm = flag_names[i];
    snprintf(nm, sizeof flag_names[i], "--%s", f->name);
    for (char *p = nm + 2; *p; p++)
      if (*p == '_') *p = '-';
    static const cli_opt_kind kinds[] = {[KNOBS_MOPT_INT] = OPT_INT, [KNOBS_MOPT_U64] = OPT_U64,
                                         [KNOBS_MOPT_DOUBLE] = OPT_DOUBLE, [KNOBS_MOPT_FLAG] = OPT_FLAG,
                                         [KNOBS_MOPT_STR] = OPT_STR};
    opts[n++] = (cli_opt){.name = nm, .kind = kinds[f->kind], .ptr = (char *)o + f->offset, .min = f->min,
                          .max = f->max, .meta = f->meta, .help = f->help};
  }
  return n;
}

void cli_metrics_list(FILE *f) {
  fprintf(f, "\nmetrics (--metrics all, or a comma list):\n");
  for (const char *const *m = knobs_metric_names(); *m; m++) fprintf(f, "  %-14s %s\n", *m, knobs_metric_describe(*m));
  fprintf(f, "\ndefinitions, defaults and sources: docs/metrics.md\n");
}

/* ---- the run: progress, per-metric writes -------------------------------------------------- */
void cli_metrics_run_init(cli_metrics_run *r, const char *cmd, const char *out, int quiet, knobs_metrics_opts *mo) {
  memset(r, 0, sizeof *r);
  r->cmd = cmd, r->out = out, r->quiet = quiet;
  cli_progress_init(&r->pr, stderr);
  r->start = r->pr.start;
  mo->progress = cli_metrics_progress;
  mo->progress_ctx = r;
  mo->on_metric = cli_metrics_on_metric;
  mo->on_metric_ctx = r;
}

void cli_metrics_run_tag(cli_metrics_run *r, const char *key, const char *value) {
  if (r->ntags < (int)(sizeof r->tags / sizeof r->tags[0])) {
    r->tags[r->ntags][0] = key;
    r->tags[r->ntags][1] = value;
    r->ntags++;
  }
}

static void put_tags(const cli_metrics_run *r, knobs_result *res, const char *state) {
  for (int i = 0; i < r->ntags; i++) knobs_result_set_string(res, r->tags[i][0], r->tags[i][1]);
  knobs_result_set_string(res, "state", state);
}

int cli_metrics_progress(void *ctx, const char *metric, double done, double total) {
  cli_metrics_run *r = ctx;
  if (r->quiet) return stop_flag;
  if (done <= 0) r->metric_start = now();
  char el[16];
  cli_fmt_duration(now() - r->start, el, sizeof el);
  if (r->pr.tty && done >= total) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  } else {
    cli_progress_line(&r->pr, stderr, 0, "%s: %s %.0f%% (%s elapsed)", r->cmd, metric,
                      total > 0 ? 100 * done / total : 100, el);
  }
  return stop_flag;
}

knobs_status cli_metrics_on_metric(void *ctx, const char *name, knobs_result *so_far) {
  cli_metrics_run *r = ctx;
  r->finished++;
  if (!r->quiet && !r->pr.tty) {
    char el[16];
    cli_fmt_duration(now() - r->metric_start, el, sizeof el);
    fprintf(stderr, "%s: %s done (%s)\n", r->cmd, name, el);
    fflush(stderr);
  }
  if (r->out) {
    put_tags(r, so_far, "running");
    knobs_status s = knobs_result_write(so_far, r->out);
    if (s) return s;
  }
  return stop_flag ? KNOBS_ERR_INTERRUPTED : KNOBS_OK;
}

/* ---- the output ------------------------------------------------------------------------- */
/* Metrics skipped by "all": one line each on stderr. */
static void print_skipped(const char *cmd, const char *j) {
  const char *sk = strstr(j, "\"skipped\":");
  if (!sk) return;
  const char *e = strchr(sk, '}'), *q = strchr(sk + 10, '"');
  while (q && e && q < e) { /* {"name": "reason", ...} */
    const char *q2 = strchr(q + 1, '"'), *q3 = q2 ? strchr(q2 + 1, '"') : NULL, *q4 = q3 ? strchr(q3 + 1, '"') : NULL;
    if (!q4 || q4 > e) break;
    fprintf(stderr, "knobs: %s: skipped %.*s: %.*s\n", cmd, (int)(q2 - q - 1), q + 1, (int)(q4 - q3 - 1), q3 + 1);
    q = strchr(q4 + 1, '"');
  }
}

int cli_metrics_finish(cli_metrics_run *r, knobs_status s, knobs_result *res, int json) {
  const char *cmd = r->cmd;
  if (s && s != KNOBS_ERR_INTERRUPTED) return cli_metrics_fail(cmd, s, "cannot compute the metrics");
  int interrupted = s == KNOBS_ERR_INTERRUPTED;
  put_tags(r, res, interrupted ? "interrupted" : "done");
  char *j = knobs_result_json(res);
  if (!j) return cli_lib_fail(cmd, "cannot format the result");
  if (!r->quiet) print_skipped(cmd, j);
  int rc = 0;
  if (r->out && knobs_result_write(res, r->out)) rc = cli_lib_fail(cmd, "cannot write the result");
  if (!rc && !r->quiet) {
    if (json) {
      puts(j);
    } else {
      char *t = knobs_result_table(res);
      if (t) fputs(t, stdout);
      free(t);
    }
    fflush(stdout);
    if (r->out) fprintf(stderr, "wrote %s\n", r->out);
  }
  if (!rc && interrupted) {
    fprintf(stderr, "knobs: %s: stopped: %d metric%s finished%s%s\n", cmd, r->finished, r->finished == 1 ? "" : "s",
            r->out ? ", kept in " : " (no --out: nothing written)", r->out ? r->out : "");
    rc = 130;
  }
  free(j);
  return rc;
}

static int read_array(const char *cmd, const char *what, const char *path, knobs_array *a) {
  return knobs_npy_read(path, a) ? cli_lib_fail(cmd, what) : 0; /* a file: a runtime failure */
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
      {"--out", OPT_STR, &out, 0, 0, "PATH", "write the result as JSON (after every finished metric)", 0},
      {"--json", OPT_FLAG, &json, 0, 0, NULL, "print the JSON instead of the table", 0},
      {"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "print nothing but errors", 0},
  };
  int n = 7;
  n += cli_metrics_options(&mo, o + n, 64 - n, 0);
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
  cli_metrics_run run;
  cli_metrics_run_init(&run, cmd, out, quiet, &mo);
  cli_metrics_run_tag(&run, "command", "metrics");
  cli_metrics_catch_signals();
  knobs_result *res = NULL;
  knobs_status s = knobs_metrics_arrays(&z, factors ? &f : NULL, logvar ? &lv : NULL, list, &mo, &res);
  r = cli_metrics_finish(&run, s, res, json);
  knobs_result_free(res);
done:
  knobs_array_free(&z), knobs_array_free(&f), knobs_array_free(&lv);
  return r;
}
