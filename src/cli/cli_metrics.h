/* cli_metrics.h: what `knobs metrics` and `knobs eval` share (defined in cmd_metrics.c): the
 * metric flags built from the library's option table, the state of a run (progress lines on
 * stderr, the JSON written after every finished metric, Ctrl-C), the output, and the exit code
 * of a library status. A header of its own so cli.h (the CLI owner's) needs no edit. */
#ifndef KN_CLI_METRICS_H
#define KN_CLI_METRICS_H
#include "cli/cli.h"

/* Flags for the options of knobs_metrics_opt_field that `dataset` (eval) or the arrays entry
 * point read, bound to the fields of `o`: --name with '_' as '-', the table's kind, range,
 * placeholder and help. At most max; returns how many. */
int cli_metrics_options(knobs_metrics_opts *o, cli_opt *opts, int max, int dataset);
/* The metric names and descriptions, for --help. */
void cli_metrics_list(FILE *f);

/* The exit code of a library status: 0 OK, 1 KNOBS_ERR_ARG (the request: an unknown metric,
 * an option out of range, a metric the inputs do not allow), 130 KNOBS_ERR_INTERRUPTED, else 2. */
int cli_metrics_exit(knobs_status s);
/* Report a failure with status s (a usage error for KNOBS_ERR_ARG, else "what: detail") and
 * return its exit code. */
int cli_metrics_fail(const char *cmd, knobs_status s, const char *what);

typedef struct {
  const char *cmd, *out;     /* out: the JSON path or NULL */
  int quiet, finished;       /* finished: metrics done so far */
  cli_progress pr;           /* progress lines on stderr: in place on a terminal, else plain
                                lines at most every 10 s */
  double start, metric_start;
  const char *tags[8][2];    /* top-level strings put into every JSON written */
  int ntags;
} cli_metrics_run;
/* Set up a run and hook its callbacks into mo (progress, on_metric). */
void cli_metrics_run_init(cli_metrics_run *r, const char *cmd, const char *out, int quiet, knobs_metrics_opts *mo);
/* A top-level string of the result ("command": "eval", ...); value must outlive the run. */
void cli_metrics_run_tag(cli_metrics_run *r, const char *key, const char *value);
/* SIGINT/SIGTERM stop the run at the next progress report or finished metric. */
void cli_metrics_catch_signals(void);
/* The callbacks (installed by cli_metrics_run_init). */
int cli_metrics_progress(void *ctx, const char *metric, double done, double total);
knobs_status cli_metrics_on_metric(void *ctx, const char *name, knobs_result *so_far);
/* The end of a run with status s and result res (NULL unless s is OK or INTERRUPTED): the
 * tags and "state" (done | interrupted) added, the JSON written to out, the table (or the JSON
 * with `json`) on stdout. Returns the exit code: 0, 130 after a stop (the finished metrics
 * kept), or that of the failure. */
int cli_metrics_finish(cli_metrics_run *r, knobs_status s, knobs_result *res, int json);

#endif
