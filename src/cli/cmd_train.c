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

/* flags: one per config field (values kept as text, applied with knobs_config_set) + extras */
#define MAXF 96
static char flag_names[MAXF][48];
static char defaults[MAXF][64];
static const char *vals[MAXF];

static void default_text(const knobs_config *c, const knobs_field *f, char *buf, size_t n) {
  const void *p = (const char *)c + f->offset;
  switch (f->kind) {
  case KNOBS_FIELD_STR: snprintf(buf, n, "%s", (const char *)p); break;
  case KNOBS_FIELD_INT: snprintf(buf, n, "%d", *(const int *)p); break;
  case KNOBS_FIELD_LONG: snprintf(buf, n, "%ld", *(const long *)p); break;
  case KNOBS_FIELD_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p); break;
  case KNOBS_FIELD_DOUBLE: snprintf(buf, n, "%g", *(const double *)p); break;
  }
}

static int unique_dir(char *out, size_t n, const knobs_config *c) {
  char data[96];
  const char *base = strrchr(c->data, '/');
  base = base ? base + 1 : c->data;
  size_t k = strlen(base) < sizeof data - 1 ? strlen(base) : sizeof data - 1; /* a name: cut is fine */
  memcpy(data, base, k);
  data[k] = 0;
  for (char *q = data; *q; q++)
    if (*q == ':' || *q == '.' || *q == ' ') *q = '-';
  struct stat st;
  for (int i = 1; i < 10000; i++) {
    if (i == 1) snprintf(out, n, "runs/%s-%s-s%llu", c->model, data, (unsigned long long)c->seed);
    else snprintf(out, n, "runs/%s-%s-s%llu-%d", c->model, data, (unsigned long long)c->seed, i);
    if (stat(out, &st) != 0) return 0;
  }
  return -1;
}

int cmd_train(int argc, char **argv) {
  const char *cmd = "train";
  knobs_config c;
  knobs_config_default(&c);
  cli_opt opts[MAXF];
  int n = 0;
  for (int i = 0; i < knobs_config_nfields; i++) {
    const knobs_field *f = &knobs_config_fields[i];
    if (!f->models[0]) continue; /* set from the data, not by flags */
    snprintf(flag_names[n], sizeof flag_names[n], "--%s", f->name);
    for (char *q = flag_names[n]; *q; q++)
      if (*q == '_') *q = '-';
    default_text(&c, f, defaults[n], sizeof defaults[n]);
    vals[n] = defaults[n][0] ? defaults[n] : NULL;
    const char *help = f->help;
    static char helpbuf[MAXF][160];
    if (strcmp(f->models, "*")) {
      snprintf(helpbuf[n], sizeof helpbuf[n], "(%s) %s", f->models, f->help);
      help = helpbuf[n];
    }
    opts[n] = (cli_opt){flag_names[n], OPT_STR, &vals[n], 0, 0, f->kind == KNOBS_FIELD_STR ? "S" : "X", help, 0};
    n++;
  }
  const char *out = NULL, *resume = NULL;
  int quiet = 0;
  int nfield = n;
  opts[n++] = (cli_opt){"--out", OPT_STR, &out, 0, 0, "DIR", "run folder (default: a new folder under runs/)", 0};
  opts[n++] = (cli_opt){"--resume", OPT_STR, &resume, 0, 0, "DIR", "continue the run in DIR (with --steps: the new total)", 0};
  opts[n++] = (cli_opt){"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "no progress output", 0};
  int r = cli_parse(cmd, "[options]   (models: see 'knobs help models')", argc, argv, opts, n, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;

  knobs_model *m = NULL;
  knobs_data *d = NULL;
  int rc = 0;
  char dir[600];
  if (resume) {
    for (int i = 0; i < nfield; i++)
      if (opts[i].seen && strcmp(opts[i].name, "--steps") && strcmp(opts[i].name, "--threads") &&
          strcmp(opts[i].name, "--ckpt-every") && strcmp(opts[i].name, "--log-every"))
        return cli_usage_error(cmd, "%s cannot change when resuming (only --steps, --threads, --ckpt-every, --log-every)", opts[i].name);
    if (out) return cli_usage_error(cmd, "--out and --resume exclude each other (a resumed run stays in its folder)");
    int threads = 0;
    for (int i = 0; i < nfield; i++)
      if (opts[i].seen && !strcmp(opts[i].name, "--threads")) threads = atoi(vals[i]);
    if ((rc = cli_open_model(cmd, resume, threads, &m))) return rc;
    c = *knobs_model_config(m);
    snprintf(dir, sizeof dir, "%s", resume);
  }
  for (int i = 0; i < nfield; i++) {
    if (!opts[i].seen) continue;
    char name[48];
    snprintf(name, sizeof name, "%s", opts[i].name + 2);
    for (char *q = name; *q; q++)
      if (*q == '-') *q = '_';
    if (knobs_config_set(&c, name, vals[i])) {
      knobs_model_free(m);
      fprintf(stderr, "knobs: train: %s (see 'knobs train --help')\n", knobs_last_error());
      return 1;
    }
  }
  knobs_data_opts dopt;
  knobs_config_data_opts(&c, &dopt);
  if (knobs_data_open(c.data, &dopt, &d)) {
    rc = cli_lib_fail(cmd, "cannot open the data");
    goto done;
  }
  if (!resume) {
    knobs_config_from_data(&c, d);
    if (knobs_config_validate(&c)) {
      fprintf(stderr, "knobs: train: %s (see 'knobs train --help')\n", knobs_last_error());
      rc = 1;
      goto done;
    }
    if (knobs_model_create(&c, &m)) {
      rc = cli_lib_fail(cmd, "cannot create the model");
      goto done;
    }
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else if (unique_dir(dir, sizeof dir, &c)) {
      rc = cli_fail(cmd, "cannot find a free run folder name under runs/");
      goto done;
    }
  } else {
    const knobs_data_info *in = knobs_data_info_get(d);
    if (in->C != c.C || in->H != c.H || in->W != c.W) {
      rc = cli_fail(cmd, "%s has observations %dx%dx%d, the run was trained on %dx%dx%d", c.data, in->C, in->H, in->W, c.C, c.H, c.W);
      goto done;
    }
  }
  {
    prog_ctx pc = {.quiet = quiet, .batch = c.batch};
    cli_progress_init(&pc.pr, stdout);
    if (!quiet && knobs_data_info_get(d)->note[0]) printf("note: %s\n", knobs_data_info_get(d)->note);
    if (!quiet)
      printf("knobs train: %s (%s, %s, Z=%d) on %s, %ld steps, batch %d, %d threads -> %s\n", c.model, c.arch,
             c.likelihood, c.z_dim, c.data, c.steps, c.batch, c.threads, dir);
    fflush(stdout);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    knobs_train_opts to = {dir, c.steps, progress, &pc, &stop_flag};
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
  knobs_model_free(m);
  knobs_data_free(d);
  return rc;
}
