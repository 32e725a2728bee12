/* results.h: a sweep's results as one table (src/cli/results.c), shared by `knobs report` and
 * `knobs select`: every run of sweep.json, its group (the model and the grid's settings but the
 * seed: the runs that differ only by seed), and the numbers of its eval.json.
 *
 * The columns of a metric M of eval.json are its numbers (not "seconds", not "score", nothing
 * inside "params", no vectors): "M.key" for each, or "M" when M has one number only; the column
 * whose value is M's "score" (the metric's headline) is marked. A column's set is the union
 * over the runs, in the order first seen. */
#ifndef KN_CLI_RESULTS_H
#define KN_CLI_RESULTS_H
#include <stddef.h>

#include "cli/sweep.h"

typedef struct {
  char name[112];   /* "dci.disentanglement", "mig" */
  char metric[48];  /* "dci" */
  int headline;     /* 1: the metric's headline (its "score") */
} rs_column;

typedef struct {
  sw_sweep sw;                  /* sweep.json */
  int nset;                     /* grid settings other than model and seed */
  char set[SW_MAX_SET][48];
  int ncols;
  rs_column *col;               /* (ncols) */
  double *val;                  /* (nruns, ncols): NaN where a run has no such number */
  int *evaluated;               /* (nruns) 1 if its eval.json was read */
  char (*eval_state)[16];       /* (nruns) eval.json's "state" ("done", "interrupted") or "" */
  int *group;                   /* (nruns) its group */
  int ngroups;
  char (*gname)[256];           /* (ngroups) "betavae beta=4" (model, then key=value) */
} rs_table;

/* Read DIR/sweep.json and the eval.json of every run whose state is done (other runs have no
 * numbers). A done run of an evaluated sweep without eval.json, an eval.json that is not JSON
 * or has no "metrics" object, is an error naming the file. 0, or -1 with err filled. */
int rs_load(const char *dir, rs_table *t, char *err, size_t n);
void rs_free(rs_table *t);
/* The index of column `name`, or -1. */
int rs_col(const rs_table *t, const char *name);
/* 1 if run i is done and has its eval.json numbers */
int rs_scored(const rs_table *t, int i);
/* Spearman's rank correlation of x and y over the k < n pairs where neither is NaN (average
 * ranks for ties, as scipy.stats.spearmanr); NaN when fewer than 2 pairs or a side is constant.
 * *used (may be NULL) gets the number of pairs. */
double rs_spearman(const double *x, const double *y, int n, int *used);

#endif
