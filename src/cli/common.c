/* common.c: what several commands do the same way: the exit code of a status, opening a model
 * (file or run folder) and the data it was trained on (or another), checking output names, and
 * committing a command's output files together. Messages in the CLI's format. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_exit_code(knobs_status s) {
  switch (s) {
  case KNOBS_OK: return 0;
  case KNOBS_ERR_ARG: return 1;
  case KNOBS_ERR_INTERRUPTED: return 130;
  default: return 2;
  }
}

int cli_open_model(const char *cmd, const char *path, int threads, knobs_model **m) {
  if (!path) return cli_usage_error(cmd, "--model RUN is required");
  if (knobs_model_load(path, threads, m)) return cli_lib_fail(cmd, "cannot load the model");
  return 0;
}

int cli_open_data(const char *cmd, const knobs_model *m, const char *spec, knobs_data **d) {
  if (knobs_model_open_data(m, spec, d)) return cli_lib_fail(cmd, "cannot open the data");
  const knobs_data_info *in = knobs_data_info_get(*d);
  if (in->note[0]) fprintf(stderr, "knobs %s: note: %s\n", cmd, in->note);
  return 0;
}

int cli_open_model_data(const char *cmd, const char *path, int threads, const char *spec, knobs_model **m,
                        knobs_data **d) {
  int r = cli_open_model(cmd, path, threads, m);
  if (r) return r;
  if ((r = cli_open_data(cmd, *m, spec, d))) {
    knobs_model_free(*m);
    *m = NULL;
  }
  return r;
}

int cli_data_is_file(const char *spec) {
  size_t len = strcspn(spec, ":");
  for (const char *const *n = knobs_data_names(); *n; n++)
    if (strlen(*n) == len && !strncmp(*n, spec, len)) return 0;
  return 1;
}

static const char *extension(const char *path) {
  const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
  return dot && (!slash || dot > slash) && dot[1] ? dot : NULL;
}

int cli_check_ext(const char *cmd, const char *flag, const char *path, const char *const *exts) {
  const char *e = extension(path);
  for (int i = 0; exts[i]; i++)
    if (e && !strcasecmp(e, exts[i])) return 0;
  char list[128] = "";
  size_t n = 0;
  for (int i = 0; exts[i]; i++)
    n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? (exts[i + 1] ? ", " : " or ") : "", exts[i]);
  return cli_usage_error(cmd, "%s %s: %s; the name must end in %s", flag, path,
                         e ? "this file type is not written" : "no file extension", list);
}

const char *cli_out_add(cli_outputs *o, const char *path) {
  if (o->n >= CLI_MAX_OUTPUTS) return NULL;
  char *fin = o->final[o->n], *tmp = o->tmp[o->n];
  if (snprintf(fin, sizeof o->final[0], "%s", path) >= (int)sizeof o->final[0]) return NULL;
  /* "dir/codes.npy" -> "dir/codes.tmp-<pid>.npy": same folder (rename stays atomic), same type */
  const char *e = extension(path);
  int stem = e ? (int)(e - path) : (int)strlen(path);
  if (snprintf(tmp, sizeof o->tmp[0], "%.*s.tmp-%ld%s", stem, path, (long)getpid(), e ? e : "") >=
      (int)sizeof o->tmp[0])
    return NULL;
  o->n++;
  return tmp;
}

void cli_out_abort(cli_outputs *o) {
  for (int i = 0; i < o->n; i++) unlink(o->tmp[i]);
  o->n = 0;
}

int cli_out_commit(const char *cmd, cli_outputs *o) {
  /* refuse before renaming anything when a final name cannot take a file */
  struct stat st;
  for (int i = 0; i < o->n; i++)
    if (stat(o->final[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      cli_out_abort(o);
      return cli_fail(cmd, "cannot write %s: it is a folder (nothing written)", o->final[i]);
    }
  for (int i = 0; i < o->n; i++)
    if (rename(o->tmp[i], o->final[i]) != 0) {
      int e = errno;
      for (int j = i; j < o->n; j++) unlink(o->tmp[j]);
      o->n = 0;
      return cli_fail(cmd, "cannot write %s: %s%s", o->final[i], strerror(e),
                      i ? " (the outputs before it were written)" : " (nothing written)");
    }
  o->n = 0;
  return 0;
}

knobs_knobs *cli_read_knobs(const char *cmd, const char *path, int Z) {
  knobs_knobs *k = NULL;
  if (path && knobs_knobs_read(path, Z, &k)) {
    fprintf(stderr, "knobs: %s: note: knob names not read: %s\n", cmd, knobs_last_error());
    k = NULL;
  }
  return k;
}

int cli_errf(char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
  return -1;
}

const char *cli_json_str(char *out, size_t n, const char *s) {
  size_t u = 0;
  if (n < 3) return n ? (*out = 0, out) : out;
  out[u++] = '"';
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    int k;
    if (c == '"' || c == '\\') k = snprintf(esc, sizeof esc, "\\%c", c);
    else if (c < 0x20) k = snprintf(esc, sizeof esc, "\\u%04x", c);
    else esc[0] = (char)c, esc[1] = 0, k = 1;
    if (u + (size_t)k + 2 > n) break;
    memcpy(out + u, esc, (size_t)k);
    u += (size_t)k;
  }
  out[u++] = '"';
  out[u] = 0;
  return out;
}

int cli_out_text(const char *cmd, cli_outputs *o, const char *path, const char *text) {
  const char *tmp = cli_out_add(o, path);
  if (!tmp) return cli_usage_error(cmd, "output path too long: %s", path);
  FILE *f = fopen(tmp, "wb");
  int bad = !f || fputs(text, f) < 0;
  if (f && fclose(f)) bad = 1;
  if (bad) return cli_fail(cmd, "cannot write %s: %s (nothing written)", path, strerror(errno));
  return 0;
}

int cli_write_text(const char *cmd, const char *path, const char *text) {
  cli_outputs outs = {0};
  int r = cli_out_text(cmd, &outs, path, text);
  if (r) {
    cli_out_abort(&outs);
    return r;
  }
  return cli_out_commit(cmd, &outs);
}

int cli_out_dir(const char *cmd, const char *dir, int *made) {
  *made = 0;
  if (mkdir(dir, 0777) == 0) *made = 1;
  else if (errno != EEXIST) return cli_fail(cmd, "cannot create %s: %s (nothing written)", dir, strerror(errno));
  return 0;
}
