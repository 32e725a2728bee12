/* cmd_train.c: `knobs train`, a thin parser over the run API (knobs_run_*). Its flags are the
 * model settings (--name with '_' as '-', built by config_flags), plus --out, --resume,
 * --overwrite and --quiet. With no flags it trains the default model (beta-VAE, beta 4) on the
 * built-in dSprites into a new folder under runs/. A folder that holds a run is refused unless
 * --resume continues it or --overwrite replaces it. On a terminal it keeps one live progress
 * line; to a file it prints a plain line every 10 seconds. Ctrl-C saves a checkpoint and exits
 * with status 130; `--resume RUN` continues exactly, and only the settings that may change on
 * resume (steps, threads, log_every, ckpt_every) may be given with it. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static volatile int stop_flag;
static void on_sigint(int sig) {
  (void)sig;
  stop_flag = 1;
}

static void catch_signals(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

typedef struct {
  cli_progress pr;
  int quiet, batch;
} prog_ctx;

static int progress(void *ctx, long step, long total, double ips, const knobs_terms *t) {
  prog_ctx *p = ctx;
  if (p->quiet) return 0;
  char eta[32], terms[512];
  cli_fmt_duration(ips > 0 ? (double)(total - step) * p->batch / ips : -1, eta, sizeof eta);
  size_t n = 0;
  terms[0] = 0;
  for (int i = 0; i < t->n && n < sizeof terms - 48; i++)
    n += (size_t)snprintf(terms + n, sizeof terms - n, "  %s %.4g", t->name[i], t->value[i]);
  cli_progress_line(&p->pr, stdout, step == total, "step %ld/%ld  %.0f img/s  ETA %s%s", step, total,
                    ips, eta, terms);
  return 0;
}

/* ---- the setting flags -----------------------------------------------------------------------
 * One flag per model setting (values kept as text, applied with knobs_config_set). Built by
 * config_flags and applied by apply_flags / resume_changes: the only three functions that know
 * how settings become flags. */
#define MAXF 96
typedef struct {
  char flag[48];      /* "--capacity-steps" */
  char name[48];      /* "capacity_steps" */
  char deflt[64];     /* the default as text, shown in --help */
  char help[160];
  const char *val;    /* the value given (or the default) */
  int resumable;      /* may be given with --resume */
} setting_flag;
static setting_flag sflags[MAXF];

/* Fill opts[0..n) with one flag per setting of any model (the union over knobs_model_names,
 * first model's default shown) and return n, or -1 if they do not fit in `max`. */
static int config_flags(cli_opt *opts, int max) {
  int n = 0;
  for (const char *const *mn = knobs_model_names(); *mn; mn++) {
    knobs_config *c;
    if (knobs_config_create(*mn, &c)) return -1;
    const knobs_field *f;
    for (int i = 0; (f = knobs_config_field(c, i)); i++) {
      if (f->derived) continue; /* set from the data, not by flags */
      int dup = 0;
      for (int j = 0; j < n && !dup; j++) dup = !strcmp(sflags[j].name, f->name);
      if (dup) continue;
      if (n == max || n == MAXF) {
        knobs_config_free(c);
        return -1;
      }
      setting_flag *s = &sflags[n];
      snprintf(s->name, sizeof s->name, "%s", f->name);
      snprintf(s->flag, sizeof s->flag, "--%s", f->name);
      for (char *q = s->flag; *q; q++)
        if (*q == '_') *q = '-';
      if (f->kind == KNOBS_FIELD_DOUBLE) snprintf(s->deflt, sizeof s->deflt, "%g", knobs_config_number(c, f->name));
      else if (knobs_config_get(c, f->name, s->deflt, sizeof s->deflt)) s->deflt[0] = 0;
      if (f->owner) snprintf(s->help, sizeof s->help, "(%s) %s", f->owner, f->help);
      else snprintf(s->help, sizeof s->help, "%s", f->help);
      s->val = s->deflt[0] ? s->deflt : NULL;
      s->resumable = f->resumable;
      opts[n] = (cli_opt){.name = s->flag, .kind = OPT_STR, .ptr = &s->val,
                          .meta = f->kind == KNOBS_FIELD_STR ? "S" : "X", .help = s->help};
      n++;
    }
    knobs_config_free(c);
  }
  return n;
}

/* Set the flags given (opts[0..n) as config_flags built them) on c; 0, or 1 after reporting a
 * bad value. */
static int apply_flags(const cli_opt *opts, int n, knobs_config *c) {
  /* the model first: it decides which settings exist (and resets the family's to its defaults) */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      if (!opts[i].seen || (pass == 0) != !strcmp(sflags[i].name, "model")) continue;
      if (knobs_config_set(c, sflags[i].name, sflags[i].val))
        return cli_usage_error("train", "%s: %s", opts[i].name, knobs_last_error());
    }
  return 0;
}

/* The flags given with --resume as settings to change; 0, or 1 after naming a flag that may
 * not change. */
static int resume_changes(const cli_opt *opts, int n, knobs_setting *ch, int *nch) {
  *nch = 0;
  for (int i = 0; i < n; i++) {
    if (!opts[i].seen) continue;
    if (!sflags[i].resumable)
      return cli_usage_error("train", "%s cannot change when resuming (only --steps, --threads, --ckpt-every, "
                             "--log-every)", opts[i].name);
    ch[(*nch)++] = (knobs_setting){.name = sflags[i].name, .value = sflags[i].val};
  }
  return 0;
}

/* ---- the rest ------------------------------------------------------------------------------ */

static int unique_dir(char *out, size_t n, const knobs_config *c) {
  char data[96], seed[32];
  const char *spec = knobs_config_string(c, "data"), *model = knobs_config_string(c, "model");
  const char *base = strrchr(spec, '/');
  base = base ? base + 1 : spec;
  size_t k = strlen(base) < sizeof data - 1 ? strlen(base) : sizeof data - 1; /* a name: cut is fine */
  memcpy(data, base, k);
  data[k] = 0;
  for (char *q = data; *q; q++)
    if (*q == ':' || *q == '.' || *q == ' ') *q = '-';
  if (knobs_config_get(c, "seed", seed, sizeof seed)) return -1;
  struct stat st;
  for (int i = 1; i < 10000; i++) {
    if (i == 1) snprintf(out, n, "runs/%s-%s-s%s", model, data, seed);
    else snprintf(out, n, "runs/%s-%s-s%s-%d", model, data, seed, i);
    if (stat(out, &st) != 0) return 0;
  }
  return -1;
}

/* Under more than one MPI rank: the model must train data-parallel and the batch split into
 * equal shards; 0, or 1 after reporting (before anything is written). */
static int check_parallel(const knobs_config *c) {
  int P = cli_mpi_size(), B = (int)knobs_config_number(c, "batch");
  const char *model = knobs_config_string(c, "model");
  if (P <= 1) return 0;
  if (!knobs_model_data_parallel(model))
    return cli_usage_error("train", "%s cannot train data-parallel on %d ranks: its loss couples the examples of a "
                           "batch, so shards would change it (betavae can; spread runs over ranks with knobs sweep)",
                           model, P);
  if (B % P) return cli_usage_error("train", "batch %d does not split into %d equal shards (one per rank)", B, P);
  return 0;
}

/* A new run from the flags: the data opened (exit 2), the config checked (exit 1), the folder
 * claimed (exit 2). 0 with *run set, else the exit status (reported). */
static int start_run(const cli_opt *opts, int nfield, const char *out, int overwrite, knobs_run **run) {
  const char *cmd = "train";
  knobs_config *c;
  if (knobs_config_create(NULL, &c)) return cli_lib_fail(cmd, "cannot create the config");
  int rc = apply_flags(opts, nfield, c);
  knobs_data *d = NULL;
  knobs_data_opts dopt;
  knobs_config_data_opts(c, &dopt);
  if (!rc && knobs_data_open(knobs_config_string(c, "data"), &dopt, &d)) rc = cli_lib_fail(cmd, "cannot open the data");
  if (!rc && (knobs_config_from_data(c, d) || knobs_config_validate(c))) {
    fprintf(stderr, "knobs: train: %s (see 'knobs train --help')\n", knobs_last_error());
    rc = 1;
  }
  if (!rc) rc = check_parallel(c);
  char dir[600];
  if (out) snprintf(dir, sizeof dir, "%s", out);
  else if (!rc && unique_dir(dir, sizeof dir, c)) rc = cli_fail(cmd, "cannot find a free run folder name under runs/");
  if (rc) {
    knobs_data_free(d);
    knobs_config_free(c);
    return rc;
  }
  knobs_status s = knobs_run_create(dir, c, d, overwrite, run); /* takes d over */
  knobs_config_free(c);
  if (!s) return 0;
  rc = cli_lib_fail(cmd, "cannot start the run");
  if (!overwrite && knobs_run_exists(dir))
    fprintf(stderr, "knobs: train: (continue that run with --resume %s, or replace it with --overwrite)\n", dir);
  return rc;
}

static int train(knobs_run *run, int quiet) {
  const char *cmd = "train";
  const knobs_config *c = knobs_model_config(knobs_run_model(run));
  knobs_data *d = knobs_run_data(run);
  const char *dir = knobs_run_dir(run);
  int batch = (int)knobs_config_number(c, "batch"), threads = (int)knobs_config_number(c, "threads");
  prog_ctx pc = {.quiet = quiet, .batch = batch};
  cli_progress_init(&pc.pr, stdout);
  if (!quiet && knobs_data_info_get(d)->note[0]) printf("note: %s\n", knobs_data_info_get(d)->note);
  char ranks[64] = "";
  if (cli_mpi_size() > 1)
    snprintf(ranks, sizeof ranks, " (%d ranks x %d)", cli_mpi_size(), batch / cli_mpi_size());
  if (!quiet)
    printf("knobs train: %s (%s, %s, Z=%.0f) on %s, %.0f steps, batch %d%s, %d thread%s%s -> %s\n",
           knobs_config_string(c, "model"), knobs_config_string(c, "arch"), knobs_config_string(c, "likelihood"),
           knobs_config_number(c, "latents"), knobs_config_string(c, "data"), knobs_config_number(c, "steps"), batch,
           ranks, threads, threads == 1 ? "" : "s", cli_mpi_size() > 1 ? " per rank" : "", dir);
  fflush(stdout);
  catch_signals();
  knobs_train_opts to = {.progress = progress, .ctx = &pc, .stop = &stop_flag};
  knobs_status s = knobs_run_train(run, &to);
  if (s == KNOBS_ERR_INTERRUPTED) {
    fprintf(stderr, "knobs: train: %s; continue with: knobs train --resume %s\n", knobs_last_error(), dir);
    return 130;
  }
  if (s) return cli_lib_fail(cmd, "training failed");
  if (!quiet) {
    printf("done: %s (model.safetensors, optimizer.safetensors, log.csv, config.json", dir);
    /* the pictures the run drew (which depends on the data and the model: src/run/run.c) */
    static const char *const pics[] = {"traversal.png", "reconstructions.png", "samples.png"};
    for (int i = 0; i < 3; i++) {
      char p[1100];
      struct stat st;
      snprintf(p, sizeof p, "%s/%s", dir, pics[i]);
      if (!stat(p, &st)) printf(", %s", pics[i]);
    }
    printf(")\n");
  }
  return 0;
}

static int open_run(const cli_opt *opts, int nfield, const char *out, const char *resume, int overwrite,
                    knobs_run **out_run);

/* ---- data-parallel: one run on every MPI rank ------------------------------------------------
 * Rank 0 creates or resumes the run (rc: its exit status if it could not) and owns the folder:
 * the lock, log.csv, the checkpoints and pictures. The other ranks copy its model
 * (knobs_run_replica) and train their shards in step; every rank ends by checking that all
 * hold the same model. */
static int train_ranks(knobs_run *run, int rc, int quiet) {
  int rank = cli_mpi_rank();
  struct {
    int rc;
    char dir[900];
  } msg = {.rc = rc};
  if (rank == 0 && !rc) snprintf(msg.dir, sizeof msg.dir, "%s", knobs_run_dir(run));
  if (cli_mpi_bcast(&msg, (int)sizeof msg)) cli_mpi_abort(2);
  if (msg.rc) return msg.rc; /* rank 0 said why */
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  if (rank == 0) {
    m = knobs_run_model(run);
  } else if (knobs_run_replica(msg.dir, 0, &m, &d)) {
    fprintf(stderr, "knobs: train: rank %d: cannot copy the run: %s\n", rank, knobs_last_error());
    cli_mpi_abort(2);
  }
  knobs_parallel par = cli_mpi_parallel(&stop_flag);
  if (knobs_model_set_parallel(m, &par)) {
    fprintf(stderr, "knobs: train: rank %d: %s\n", rank, knobs_last_error());
    cli_mpi_abort(1);
  }
  int r = 0;
  if (rank == 0) {
    r = train(run, quiet); /* reports its own failure */
    if (r && r != 130) cli_mpi_abort(r);
  } else {
    catch_signals();
    long steps = (long)knobs_config_number(knobs_model_config(m), "steps");
    while (knobs_model_step(m) < steps && !stop_flag)
      if (knobs_model_train_step(m, d, NULL)) {
        fprintf(stderr, "knobs: train: rank %d: %s\n", rank, knobs_last_error());
        cli_mpi_abort(2);
      }
    if (stop_flag) r = 130;
  }
  long step = knobs_model_step(m);
  if (!cli_mpi_same_u64(knobs_model_digest(m))) {
    if (rank == 0)
      fprintf(stderr, "knobs: train: the ranks' models differ after step %ld: their gradient sums were not the same "
              "bytes on every rank\n", step);
    r = 2;
  }
  if (rank == 0) {
    knobs_run_free(run);
  } else {
    knobs_model_free(m);
    knobs_data_free(d);
  }
  return r;
}

int cmd_train(int argc, char **argv) {
  const char *cmd = "train";
  cli_opt opts[MAXF + 4];
  int nfield = config_flags(opts, MAXF);
  if (nfield < 0) return cli_fail(cmd, "too many settings for the flag table");
  int n = nfield;
  const char *out = NULL, *resume = NULL;
  int quiet = 0, overwrite = 0;
  opts[n++] = (cli_opt){"--out", OPT_STR, &out, 0, 0, "DIR", "run folder (default: a new folder under runs/)", 0};
  opts[n++] = (cli_opt){"--resume", OPT_STR, &resume, 0, 0, "DIR",
                        "continue the run in DIR (with --steps: the new total; also --threads, --log-every, --ckpt-every)", 0};
  opts[n++] = (cli_opt){"--overwrite", OPT_FLAG, &overwrite, 0, 0, NULL, "replace a run already in the --out folder", 0};
  opts[n++] = (cli_opt){"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "no progress output", 0};
  int r = cli_parse(cmd, "[options]   (models: see 'knobs help models')", argc, argv, opts, n, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (cli_mpi_size() > 1) {
    knobs_run *run = NULL;
    if (cli_mpi_rank() == 0) {
      r = open_run(opts, nfield, out, resume, overwrite, &run);
      if (!r && resume) r = check_parallel(knobs_model_config(knobs_run_model(run)));
      if (r && run) knobs_run_free(run), run = NULL;
    }
    return train_ranks(run, r, quiet);
  }
  knobs_run *run = NULL;
  if ((r = open_run(opts, nfield, out, resume, overwrite, &run))) return r;
  r = train(run, quiet);
  knobs_run_free(run);
  return r;
}

/* The run the flags ask for: resumed (--resume) or new; 0 with *run set, else the exit status
 * (reported). */
static int open_run(const cli_opt *opts, int nfield, const char *out, const char *resume, int overwrite,
                    knobs_run **out_run) {
  const char *cmd = "train";
  int r;
  knobs_run *run = NULL;
  if (resume) {
    if (out) return cli_usage_error(cmd, "--out and --resume exclude each other (a resumed run stays in its folder)");
    if (overwrite) return cli_usage_error(cmd, "--overwrite and --resume exclude each other");
    knobs_setting ch[MAXF];
    int nch;
    if ((r = resume_changes(opts, nfield, ch, &nch))) return r;
    knobs_status s = knobs_run_resume(resume, ch, nch, &run);
    if (s == KNOBS_ERR_ARG) { /* a setting given with --resume that cannot be used */
      fprintf(stderr, "knobs: train: cannot resume %s: %s (see 'knobs train --help')\n", resume, knobs_last_error());
      return 1;
    }
    if (s) return cli_lib_fail(cmd, "cannot resume the run");
  } else if ((r = start_run(opts, nfield, out, overwrite, &run))) {
    return r;
  }
  *out_run = run;
  return 0;
}
