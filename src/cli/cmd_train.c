/* cmd_train.c: `knobs train`. Its flags are the config table (knobs_config_fields: --name with
 * '_' as '-'), plus --out, --resume and --quiet. With no flags it trains the default model
 * (beta-VAE, beta 4) on the built-in dSprites into a new folder under runs/. On a terminal it
 * keeps one live progress line; to a file it prints a plain line every 10 seconds. Ctrl-C
 * saves a checkpoint and exits with status 130; `--resume RUN` continues exactly. */
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

/* Flags: one per setting of any model (the shared settings, then each family's, each name
 * once), values kept as text and applied with knobs_config_set once the model is known. */
#define MAXF 128
static char flag_names[MAXF][48];
static char flag_help[MAXF][256];
static const char *vals[MAXF];
static const char *field_of[MAXF]; /* the setting each flag sets */

static int add_flag(cli_opt *opts, int n, const knobs_field *f, const knobs_config *dflt) {
  for (int i = 0; i < n; i++)
    if (!strcmp(field_of[i], f->name)) return n; /* a name several families share (beta) */
  if (n >= MAXF) return n;
  snprintf(flag_names[n], sizeof flag_names[n], "--%s", f->name);
  for (char *q = flag_names[n]; *q; q++)
    if (*q == '_') *q = '-';
  char def[64] = "";
  knobs_config_get(dflt, f->name, def, sizeof def);
  if (f->kind == KNOBS_FIELD_DOUBLE) snprintf(def, sizeof def, "%g", knobs_config_number(dflt, f->name));
  snprintf(flag_help[n], sizeof flag_help[n], "%s%s%s%s%s%s", f->owner ? "(" : "", f->owner ? f->owner : "",
           f->owner ? ") " : "", f->help, def[0] ? " [" : "", def[0] ? def : "");
  if (def[0]) strcat(flag_help[n], "]");
  field_of[n] = f->name;
  vals[n] = NULL;
  opts[n] = (cli_opt){flag_names[n], OPT_STR, &vals[n], 0, 0, f->kind == KNOBS_FIELD_STR ? "S" : "X", flag_help[n], 0};
  return n + 1;
}

/* The flags of every setting into opts; returns their count. */
static int config_flags(cli_opt *opts) {
  int n = 0;
  knobs_config *c;
  if (knobs_config_create(NULL, &c)) return 0;
  for (int i = 0; knobs_config_field(c, i); i++) {
    const knobs_field *f = knobs_config_field(c, i);
    if (!f->owner && !f->derived) n = add_flag(opts, n, f, c);
  }
  for (const char *const *m = knobs_model_names(); *m; m++) {
    if (knobs_config_set(c, "model", *m)) continue;
    for (int i = 0; knobs_model_field(*m, i); i++) n = add_flag(opts, n, knobs_model_field(*m, i), c);
  }
  knobs_config_free(c);
  return n;
}

/* The value given for setting `name`, or NULL. */
static const char *flag_value(const cli_opt *opts, int nfield, const char *name) {
  for (int i = 0; i < nfield; i++)
    if (opts[i].seen && !strcmp(field_of[i], name)) return vals[i];
  return NULL;
}

/* Apply every seen flag to c ("model" first: it decides which settings exist); a refused value
 * is a usage error naming the flag. Returns 0 or the exit status. */
static int apply_flags(const char *cmd, const cli_opt *opts, int nfield, knobs_config *c) {
  const char *model = flag_value(opts, nfield, "model");
  if (model && knobs_config_set(c, "model", model))
    return cli_usage_error(cmd, "--model: %s", knobs_last_error());
  for (int i = 0; i < nfield; i++) {
    if (!opts[i].seen || !strcmp(field_of[i], "model")) continue;
    if (knobs_config_set(c, field_of[i], vals[i]))
      return cli_usage_error(cmd, "%s: %s", opts[i].name, knobs_last_error());
  }
  return 0;
}

static int unique_dir(char *out, size_t n, const knobs_config *c) {
  char data[96], seed[32];
  const char *spec = knobs_config_string(c, "data"), *model = knobs_config_string(c, "model");
  knobs_config_get(c, "seed", seed, sizeof seed);
  const char *base = strrchr(spec, '/');
  base = base ? base + 1 : spec;
  size_t k = strlen(base) < sizeof data - 1 ? strlen(base) : sizeof data - 1; /* a name: cut is fine */
  memcpy(data, base, k);
  data[k] = 0;
  for (char *q = data; *q; q++)
    if (*q == ':' || *q == '.' || *q == ' ') *q = '-';
  struct stat st;
  for (int i = 1; i < 10000; i++) {
    if (i == 1) snprintf(out, n, "runs/%s-%s-s%s", model, data, seed);
    else snprintf(out, n, "runs/%s-%s-s%s-%d", model, data, seed, i);
    if (stat(out, &st) != 0) return 0;
  }
  return -1;
}

int cmd_train(int argc, char **argv) {
  const char *cmd = "train";
  cli_opt opts[MAXF + 4];
  int n = config_flags(opts);
  int nfield = n;
  const char *out = NULL, *resume = NULL;
  int quiet = 0;
  opts[n++] = (cli_opt){"--out", OPT_STR, &out, 0, 0, "DIR", "run folder (default: a new folder under runs/)", 0};
  opts[n++] = (cli_opt){"--resume", OPT_STR, &resume, 0, 0, "DIR", "continue the run in DIR (with --steps: the new total)", 0};
  opts[n++] = (cli_opt){"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "no progress output", 0};
  int r = cli_parse(cmd, "[options]   (models and their settings: 'knobs help models')", argc, argv, opts, n, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;

  knobs_model *m = NULL;
  knobs_data *d = NULL;
  knobs_config *c = NULL;
  int rc = 0;
  char dir[600];
  if (resume) {
    for (int i = 0; i < nfield; i++)
      if (opts[i].seen && strcmp(opts[i].name, "--steps") && strcmp(opts[i].name, "--threads") &&
          strcmp(opts[i].name, "--ckpt-every") && strcmp(opts[i].name, "--log-every"))
        return cli_usage_error(cmd, "%s cannot change when resuming (only --steps, --threads, --ckpt-every, --log-every)", opts[i].name);
    if (out) return cli_usage_error(cmd, "--out and --resume exclude each other (a resumed run stays in its folder)");
    const char *th = flag_value(opts, nfield, "threads");
    if ((rc = cli_open_model(cmd, resume, th ? atoi(th) : 0, &m))) return rc;
    if (knobs_config_copy(knobs_model_config(m), &c)) {
      rc = cli_lib_fail(cmd, "cannot copy the config");
      goto done;
    }
    snprintf(dir, sizeof dir, "%s", resume);
  } else if (knobs_config_create(NULL, &c)) {
    rc = cli_lib_fail(cmd, "cannot create the config");
    goto done;
  }
  if ((rc = apply_flags(cmd, opts, nfield, c))) goto done;
  knobs_data_opts dopt;
  knobs_config_data_opts(c, &dopt);
  const char *spec = knobs_config_string(c, "data");
  if (knobs_data_open(spec, &dopt, &d)) {
    rc = cli_lib_fail(cmd, "cannot open the data");
    goto done;
  }
  if (!resume) {
    knobs_config_from_data(c, d);
    if (knobs_config_validate(c)) {
      rc = cli_usage_error(cmd, "%s", knobs_last_error());
      goto done;
    }
    if (knobs_model_create(c, &m)) {
      rc = cli_lib_fail(cmd, "cannot create the model");
      goto done;
    }
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else if (unique_dir(dir, sizeof dir, c)) {
      rc = cli_fail(cmd, "cannot find a free run folder name under runs/");
      goto done;
    }
  } else {
    const knobs_data_info *in = knobs_data_info_get(d);
    int C = (int)knobs_config_number(c, "C"), H = (int)knobs_config_number(c, "H"), W = (int)knobs_config_number(c, "W");
    if (in->C != C || in->H != H || in->W != W) {
      rc = cli_fail(cmd, "%s has observations %dx%dx%d, the run was trained on %dx%dx%d", spec, in->C, in->H, in->W, C, H, W);
      goto done;
    }
  }
  {
    long steps = (long)knobs_config_number(c, "steps");
    int threads = (int)knobs_config_number(c, "threads");
    prog_ctx pc = {.quiet = quiet, .batch = (int)knobs_config_number(c, "batch")};
    cli_progress_init(&pc.pr, stdout);
    if (!quiet && knobs_data_info_get(d)->note[0]) printf("note: %s\n", knobs_data_info_get(d)->note);
    if (!quiet)
      printf("knobs train: %s (%s, %s, Z=%d) on %s, %ld steps, batch %d, %d thread%s -> %s\n",
             knobs_config_string(c, "model"), knobs_config_string(c, "arch"), knobs_config_string(c, "likelihood"),
             (int)knobs_config_number(c, "latents"), spec, steps, pc.batch, threads, threads == 1 ? "" : "s", dir);
    fflush(stdout);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    knobs_train_opts to = {dir, steps, progress, &pc, &stop_flag};
    knobs_status s = knobs_train(m, d, &to);
    if (s == KNOBS_ERR_INTERRUPTED) {
      fprintf(stderr, "knobs: train: %s; continue with: knobs train --resume %s\n", knobs_last_error(), dir);
      rc = 130;
    } else if (s) {
      rc = cli_lib_fail(cmd, "training failed");
    } else if (!quiet) {
      printf("done: %s (model.safetensors, log.csv, config.json", dir);
      if (knobs_data_info_get(d)->is_image) printf(", traversal.png, reconstructions.png, samples.png");
      printf(")\n");
    }
  }
done:
  knobs_config_free(c);
  knobs_model_free(m);
  knobs_data_free(d);
  return rc;
}
