/* sweep.h: a sweep folder (src/cli/sweep.c), shared by knobs sweep, report and select.
 *
 * A sweep is a folder of ordinary run folders, one per point of a grid of settings, plus
 * sweep.json: the grid as given, the settings every run shares, whether and how each run is
 * evaluated, and each run's name, settings and state (docs/formats.md, "Sweep folders"). */
#ifndef KNOBS_CLI_SWEEP_H
#define KNOBS_CLI_SWEEP_H

#include <stddef.h>

#define SW_MAX_SET 32   /* settings of one run (grid + shared) */
#define SW_MAX_RUNS 4096

typedef struct {
  char key[48];   /* a setting's name, as knobs_config_set takes it ("beta", "capacity_steps") */
  char val[160];
} sw_setting;

typedef enum { SW_PENDING, SW_TRAINING, SW_EVALUATING, SW_DONE, SW_FAILED } sw_state;

typedef struct {
  char name[240];                 /* its folder under the sweep: "betavae-beta4-seed0" */
  int ngrid;                      /* set[0..ngrid): the grid's settings (model first) */
  int nset;                       /* then the shared ones */
  sw_setting set[SW_MAX_SET];
  sw_state state;
  int exit;                       /* the failing command's exit status (SW_FAILED) */
  double seconds;                 /* wall time of its last train + eval */
} sw_run;

typedef struct {
  char dir[900];
  char grid[4096];                /* as given: "model=betavae,tcvae; beta=1,4; seed=0..2" */
  int nshared;
  sw_setting shared[SW_MAX_SET];  /* data, steps and the train flags after "--" */
  int eval;                       /* 1: knobs eval after each run */
  char eval_args[512];            /* knobs eval's flags, space-separated ("": its defaults) */
  int nruns;
  sw_run *runs;
} sw_sweep;

/* Expand `grid` ("key=v1,v2,a..b; key2=...", alternatives separated by '|') with the shared
 * settings into s->runs: every combination, model first (betavae when the grid names none),
 * each checked with knobs_config_set; a key that is not a setting of a combination's model is
 * left out of that combination (and duplicates merged), but a key that is a setting of no
 * model of its alternative, or a value out of range, is an error. 0, or -1 with err filled. */
int sw_expand(sw_sweep *s, char *err, size_t n);
/* Read DIR/sweep.json into s (dir set); 0, or -1 with err filled (names the file). */
int sw_read(const char *dir, sw_sweep *s, char *err, size_t n);
/* Write s->dir/sweep.json atomically; 0, or -1 with err filled. */
int sw_write(const sw_sweep *s, char *err, size_t n);
void sw_free(sw_sweep *s);
const char *sw_state_name(sw_state st);
/* s->dir/<run name> */
void sw_run_dir(const sw_sweep *s, int i, char *buf, size_t n);
/* The value of setting `key` of run i ("" if it has none). */
const char *sw_get(const sw_run *r, const char *key);

#endif
