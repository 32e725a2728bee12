/* args.c: the flag parser and message helpers every command uses. Numbers are parsed with
 * strtod/strtoll and an end pointer, checked against the option's range; an unknown flag, a
 * missing value or trailing junk is a usage error that names the flag. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "knobs: %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see 'knobs %s --help')\n", cmd);
  va_end(ap);
  return 1;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "knobs: %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 2;
}

int cli_lib_fail(const char *cmd, const char *what) {
  knobs_status s = knobs_last_status();
  fprintf(stderr, "knobs: %s: %s: %s\n", cmd, what, knobs_last_error());
  return s == KNOBS_OK ? 2 : cli_exit_code(s);
}

const cli_opt *cli_find(const cli_opt *opts, int nopts, const char *name) {
  for (int i = 0; i < nopts; i++)
    if (!strcmp(opts[i].name, name)) return &opts[i];
  return NULL;
}

static const char *kind_meta(const cli_opt *o) {
  if (o->meta) return o->meta;
  switch (o->kind) {
  case OPT_INT: case OPT_LONG: case OPT_U64: return "N";
  case OPT_DOUBLE: return "X";
  case OPT_STR: return "S";
  case OPT_FLAG: return "";
  case OPT_MULTI: return "S";
  }
  return "";
}

void cli_usage(FILE *f, const char *cmd, const char *synopsis, const cli_opt *opts, int nopts) {
  fprintf(f, "usage: knobs %s %s\n", cmd, synopsis ? synopsis : "[options]");
  if (nopts) fprintf(f, "\noptions:\n");
  for (int i = 0; i < nopts; i++) {
    char left[64];
    snprintf(left, sizeof left, "%s %s", opts[i].name, kind_meta(&opts[i]));
    fprintf(f, "  %-24s %s", left, opts[i].help ? opts[i].help : "");
    /* show the default from the bound variable */
    switch (opts[i].kind) {
    case OPT_INT: fprintf(f, " [%d]", *(int *)opts[i].ptr); break;
    case OPT_LONG: fprintf(f, " [%ld]", *(long *)opts[i].ptr); break;
    case OPT_U64: fprintf(f, " [%llu]", (unsigned long long)*(uint64_t *)opts[i].ptr); break;
    case OPT_DOUBLE: fprintf(f, " [%g]", *(double *)opts[i].ptr); break;
    case OPT_STR:
      if (*(const char **)opts[i].ptr) fprintf(f, " [%s]", *(const char **)opts[i].ptr);
      break;
    case OPT_FLAG: break;
    case OPT_MULTI: fprintf(f, " (repeatable)"); break;
    }
    fputc('\n', f);
  }
  fprintf(f, "  %-24s %s\n", "-h, --help", "show this help");
}

static int set_value(const char *cmd, cli_opt *o, const char *v) {
  char *end;
  errno = 0;
  switch (o->kind) {
  case OPT_INT:
  case OPT_LONG: {
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno)
      return cli_usage_error(cmd, "%s: '%s' is not a whole number", o->name, v);
    if ((double)x < o->min || (double)x > o->max)
      return cli_usage_error(cmd, "%s: %lld is out of range [%.15g, %.15g]", o->name, x, o->min, o->max);
    if (o->kind == OPT_INT) *(int *)o->ptr = (int)x;
    else *(long *)o->ptr = (long)x;
    return 0;
  }
  case OPT_U64: {
    if (*v == '-') return cli_usage_error(cmd, "%s: '%s' must not be negative", o->name, v);
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno)
      return cli_usage_error(cmd, "%s: '%s' is not a whole number", o->name, v);
    *(uint64_t *)o->ptr = (uint64_t)x;
    return 0;
  }
  case OPT_DOUBLE: {
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x))
      return cli_usage_error(cmd, "%s: '%s' is not a finite number", o->name, v);
    if (x < o->min || x > o->max)
      return cli_usage_error(cmd, "%s: %g is out of range [%g, %g]", o->name, x, o->min, o->max);
    *(double *)o->ptr = x;
    return 0;
  }
  case OPT_STR:
    if (!*v) return cli_usage_error(cmd, "%s: empty value", o->name);
    *(const char **)o->ptr = v;
    return 0;
  case OPT_FLAG: *(int *)o->ptr = 1; return 0;
  case OPT_MULTI: {
    cli_multi *m = o->ptr;
    if (!*v) return cli_usage_error(cmd, "%s: empty value", o->name);
    if (m->n >= CLI_MAX_MULTI) return cli_usage_error(cmd, "%s given more than %d times", o->name, CLI_MAX_MULTI);
    m->v[m->n++] = v;
    return 0;
  }
  }
  return 1;
}

int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, cli_opt *opts,
              int nopts, const char **pos, int max_pos, int *npos) {
  int np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cli_usage(stdout, cmd, synopsis, opts, nopts);
      return -1;
    }
    if (a[0] == '-' && a[1] == '-' && a[2]) {
      char name[64];
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a) : strlen(a);
      if (len >= sizeof name) return cli_usage_error(cmd, "unknown option '%.60s'", a);
      memcpy(name, a, len);
      name[len] = 0;
      cli_opt *o = (cli_opt *)cli_find(opts, nopts, name);
      if (!o) return cli_usage_error(cmd, "unknown option '%s'", name);
      if (o->seen && o->kind != OPT_MULTI) return cli_usage_error(cmd, "%s given twice", name);
      o->seen = 1;
      const char *v;
      if (o->kind == OPT_FLAG) {
        if (eq) return cli_usage_error(cmd, "%s takes no value", name);
        v = "1";
      } else if (eq) {
        v = eq + 1;
      } else {
        if (i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", name);
        v = argv[++i];
      }
      if (set_value(cmd, o, v)) return 1;
      continue;
    }
    if (a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9'))
      return cli_usage_error(cmd, "unknown option '%s'", a);
    if (np >= max_pos) return cli_usage_error(cmd, "unexpected argument '%s'", a);
    pos[np++] = a;
  }
  if (npos) *npos = np;
  else if (np) return cli_usage_error(cmd, "unexpected argument '%s'", pos[0]);
  return 0;
}

int cli_parse_range(const char *s, double *lo, double *hi, int *steps) {
  char *e1, *e2, *e3;
  errno = 0;
  *lo = strtod(s, &e1);
  if (e1 == s || *e1 != ':') return -1;
  *hi = strtod(e1 + 1, &e2);
  if (e2 == e1 + 1 || *e2 != ':') return -1;
  long n = strtol(e2 + 1, &e3, 10);
  if (e3 == e2 + 1 || *e3 || errno || !isfinite(*lo) || !isfinite(*hi) || n < 2 || n > 101) return -1;
  *steps = (int)n;
  return 0;
}

int cli_split_list(const char *s, char *buf, size_t bufsz, const char **out, int max) {
  snprintf(buf, bufsz, "%s", s);
  int n = 0;
  for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
    if (n >= max) return -1;
    out[n++] = t;
  }
  return n;
}

void cli_progress_init(cli_progress *p, FILE *f) {
  p->tty = isatty(fileno(f));
  p->start = p->last_print = 0;
  p->log_seconds = 10;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  p->start = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_line(cli_progress *p, FILE *f, int final, const char *fmt, ...) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  if (!final && now - p->last_print < (p->tty ? 0.2 : p->log_seconds)) return;
  p->last_print = now;
  va_list ap;
  va_start(ap, fmt);
  if (p->tty) fputs("\r\033[K", f);
  vfprintf(f, fmt, ap);
  va_end(ap);
  if (!p->tty || final) fputc('\n', f);
  fflush(f);
}

void cli_fmt_duration(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 1e8) snprintf(buf, n, "?");
  else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
  else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  else snprintf(buf, n, "%ds", (int)s);
}
