/* run.c: training runs, the orchestration above models and apps: the run folder (config.json,
 * log.csv, the checkpoint pair, the pictures), its lock, and the rules of resuming.
 *
 * It reaches a model only through the public API (knobs_model_*, knobs_config_*) and the
 * pictures through the apps' public functions, never through fields. What it guarantees:
 * - one writer per folder: an advisory flock on run.lock (which holds the writer's pid) from
 *   create/resume to free; the kernel drops it when the process dies, even by SIGKILL;
 * - a folder that holds a run is never silently replaced (knobs_run_create's `overwrite`);
 * - after any interruption and a resume the folder reads as if the run had never stopped:
 *   the log is cut back to the checkpoint's step (rows past it, and a half-written last line,
 *   go), the seconds trained are carried in the optimizer file's metadata, and every step's
 *   randomness derives from (seed, step), so the rows and the final checkpoint bytes equal an
 *   uninterrupted run's.
 * What it does not do: keep older checkpoints, or decide anything about a model's settings
 * beyond the resumable ones. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "io/io.h"

struct knobs_run {
  char dir[900];
  knobs_model *m;
  knobs_data *d;
  int own;          /* 1: m and d are the run's to free (0: lent by knobs_train's caller) */
  int lock_fd;      /* run.lock, flock'ed; -1 if not held */
  double seconds;   /* seconds trained before this process's current knobs_run_train call */
};

/* The files a run writes (what knobs_run_exists looks for are the first four). */
static const char *const run_files[] = {"config.json", "log.csv", "model.safetensors", "optimizer.safetensors",
                                        "reconstructions.png", "samples.png", "traversal.png"};
#define N_RUN_FILES (int)(sizeof run_files / sizeof run_files[0])

static void path_in(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

int knobs_run_exists(const char *dir) {
  char p[1100];
  for (int i = 0; i < 4; i++) {
    path_in(p, sizeof p, dir, run_files[i]);
    if (kn_file_exists(p)) return 1;
  }
  return 0;
}

/* ---- the lock ----------------------------------------------------------------------------- */

/* Take the folder's lock or say who holds it. The pid is written after the lock is taken, so
 * a reader that finds the lock held but the file empty reports an unknown pid. */
static knobs_status lock_dir(knobs_run *r) {
  char p[1100];
  path_in(p, sizeof p, r->dir, "run.lock");
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return kn_err(KNOBS_ERR_IO, "%s: cannot open the lock: %s", p, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t k = pread(fd, pid, sizeof pid - 1, 0);
    pid[k > 0 ? k : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    if (e == EWOULDBLOCK)
      return kn_err(KNOBS_ERR_IO, "%s: the run folder is in use by process %s (it holds %s); wait for it to "
                    "finish or stop it", r->dir, pid[0] ? pid : "(unknown pid)", p);
    return kn_err(KNOBS_ERR_IO, "%s: cannot lock: %s", p, strerror(e));
  }
  char pid[32];
  int k = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)k, 0) != k) {
    int e = errno;
    close(fd);
    return kn_err(KNOBS_ERR_IO, "%s: cannot write the lock: %s", p, strerror(e));
  }
  r->lock_fd = fd;
  return KNOBS_OK;
}

/* Remove what an interrupted writer left: "<run file>.new", "<run file>.new.tmp-<pid>" and
 * "<run file>.tmp-<pid>". Only
 * called under the lock, so no live writer owns them. */
static void remove_leftovers(const char *dir) {
  DIR *dd = opendir(dir);
  if (!dd) return;
  struct dirent *e;
  char p[1100];
  while ((e = readdir(dd))) {
    for (int i = 0; i < N_RUN_FILES; i++) {
      size_t n = strlen(run_files[i]);
      const char *rest = e->d_name + n;
      if (strncmp(e->d_name, run_files[i], n) || (strncmp(rest, ".new", 4) && strncmp(rest, ".tmp-", 5))) continue;
      path_in(p, sizeof p, dir, e->d_name);
      remove(p);
    }
  }
  closedir(dd);
}

/* Finish a checkpoint whose save stopped between its two renames. knobs_model_save_checkpoint
 * writes both files in full as "<file>.new" (each atomically), then renames the optimizer's,
 * then the model's. So a model.safetensors.new beside no optimizer.safetensors.new is a complete
 * model of the step the optimizer file already holds: rename it into place (roll forward).
 * Both .new files present means no rename happened: the old pair stands (remove_leftovers drops
 * them). Only called under the lock. */
static knobs_status finish_commit(const char *dir) {
  char mn[1100], on[1100], m[1100];
  path_in(mn, sizeof mn, dir, "model.safetensors.new");
  path_in(on, sizeof on, dir, "optimizer.safetensors.new");
  path_in(m, sizeof m, dir, "model.safetensors");
  if (!kn_file_exists(mn) || kn_file_exists(on)) return KNOBS_OK;
  /* only a .new that loads and is of the optimizer file's step (anything else is a leftover
   * that remove_leftovers drops; a mismatch of the pair is then reported by the load) */
  char op[1100];
  path_in(op, sizeof op, dir, "optimizer.safetensors");
  knobs_model *cand = NULL;
  int ok = !knobs_model_load(mn, 1, &cand) && !knobs_model_load_optimizer(cand, op, NULL);
  knobs_model_free(cand);
  knobs_clear_error();
  if (!ok) return KNOBS_OK;
  if (rename(mn, m) != 0) return kn_err(KNOBS_ERR_IO, "%s: cannot finish the interrupted checkpoint: %s", mn, strerror(errno));
  return KNOBS_OK;
}

/* ---- config.json and log.csv -------------------------------------------------------------- */

static knobs_status write_config(const knobs_run *r) {
  char *cj = knobs_config_to_json(knobs_model_config(r->m));
  if (!cj) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot serialise the config", r->dir);
  char p[1100];
  path_in(p, sizeof p, r->dir, "config.json");
  size_t cl = strlen(cj);
  char *buf = realloc(cj, cl + 2);
  if (!buf) {
    free(cj);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot serialise the config", r->dir);
  }
  buf[cl] = '\n';
  knobs_status s = kn_write_file(p, buf, cl + 1);
  free(buf);
  return s;
}

/* Cut log.csv back to its header and the rows of steps <= `step`; a last line without its
 * newline (a write cut short) goes too. Rewritten atomically; a missing log is fine. */
static knobs_status truncate_log(const char *dir, long step) {
  char p[1100];
  path_in(p, sizeof p, dir, "log.csv");
  if (!kn_file_exists(p)) return KNOBS_OK;
  char *buf;
  size_t n;
  knobs_status s = kn_read_file(p, (size_t)1 << 31, &buf, &n);
  if (s) return s;
  size_t keep = 0;
  for (size_t i = 0; i < n;) {
    char *nl = memchr(buf + i, '\n', n - i);
    if (!nl) break;
    if (i == 0) {
      if (strncmp(buf, "step,", 5)) {
        free(buf);
        return kn_err(KNOBS_ERR_FORMAT, "%s: the first line is not the header (step,...)", p);
      }
    } else {
      char *end;
      errno = 0;
      long v = strtol(buf + i, &end, 10);
      if (end == buf + i || *end != ',' || errno) {
        free(buf);
        return kn_err(KNOBS_ERR_FORMAT, "%s: line at byte %zu does not start with a step", p, i);
      }
      if (v > step) break;
    }
    i = (size_t)(nl - buf) + 1;
    keep = i;
  }
  s = keep == n ? KNOBS_OK : kn_write_file(p, buf, keep);
  free(buf);
  return s;
}

/* ---- create / resume / free --------------------------------------------------------------- */

static knobs_status new_run(const char *dir, knobs_run **out) {
  *out = NULL;
  if (!dir || !*dir) return kn_err(KNOBS_ERR_ARG, "run: no run folder given");
  if (strlen(dir) >= sizeof((knobs_run *)0)->dir) return kn_err(KNOBS_ERR_ARG, "%s: path too long", dir);
  knobs_run *r = calloc(1, sizeof *r);
  if (!r) return kn_err(KNOBS_ERR_NOMEM, "run: cannot allocate");
  strcpy(r->dir, dir);
  r->lock_fd = -1;
  r->own = 1;
  *out = r;
  return KNOBS_OK;
}

void knobs_run_free(knobs_run *r) {
  if (!r) return;
  if (r->own) {
    knobs_model_free(r->m);
    knobs_data_free(r->d);
  }
  if (r->lock_fd >= 0) close(r->lock_fd); /* releases the flock */
  free(r);
}

knobs_model *knobs_run_model(const knobs_run *r) { return r->m; }
knobs_data *knobs_run_data(const knobs_run *r) { return r->d; }
const char *knobs_run_dir(const knobs_run *r) { return r->dir; }

/* mkdir -p, lock, and refuse (or clear, with `overwrite`) a run already there. */
static knobs_status claim_fresh(knobs_run *r, int overwrite) {
  knobs_status s = kn_mkdirs(r->dir);
  if (!s) s = lock_dir(r);
  if (s) return s;
  if (knobs_run_exists(r->dir)) {
    if (!overwrite)
      return kn_err(KNOBS_ERR_IO, "%s holds a run already (its config.json, log.csv or checkpoint); resume it, "
                    "or allow overwriting it", r->dir);
    char p[1100];
    for (int i = 0; i < N_RUN_FILES; i++) {
      path_in(p, sizeof p, r->dir, run_files[i]);
      if (remove(p) != 0 && errno != ENOENT) return kn_err(KNOBS_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
    }
  }
  remove_leftovers(r->dir);
  return KNOBS_OK;
}

knobs_status knobs_run_create(const char *dir, const knobs_config *cfg, knobs_data *data, int overwrite,
                              knobs_run **out) {
  *out = NULL;
  knobs_run *r;
  knobs_status s = new_run(dir, &r);
  if (s) {
    knobs_data_free(data);
    return s;
  }
  r->d = data;
  knobs_config *c = NULL;
  if (!cfg) s = kn_err(KNOBS_ERR_ARG, "run: no config given");
  if (!s) s = knobs_config_copy(cfg, &c);
  if (!s && !r->d) {
    knobs_data_opts o;
    knobs_config_data_opts(c, &o);
    s = knobs_data_open(knobs_config_string(c, "data"), &o, &r->d);
  }
  if (!s) s = knobs_config_from_data(c, r->d);
  if (!s) s = knobs_model_create(c, &r->m);
  const char *init = c ? knobs_config_string(c, "init") : NULL;
  if (!s && init && init[0] && (s = knobs_model_init_weights(r->m, init))) s = kn_err_prefix(s, "init");
  knobs_config_free(c);
  if (!s) s = claim_fresh(r, overwrite);
  if (!s) s = write_config(r);
  if (s) {
    knobs_run_free(r);
    return s;
  }
  *out = r;
  return KNOBS_OK;
}

/* Check `changes` before anything is loaded: each a resumable setting with a valid value.
 * *threads gets the thread count asked for (0 if none). */
static knobs_status check_changes(const knobs_setting *ch, int n, int *threads) {
  *threads = 0;
  knobs_config *c;
  knobs_status s = knobs_config_create(NULL, &c);
  for (int i = 0; i < n && !s; i++) {
    const knobs_field *f = NULL;
    for (int j = 0; (f = knobs_config_field(c, j)); j++)
      if (!strcmp(f->name, ch[i].name)) break;
    if (!f || !f->resumable)
      s = kn_err(KNOBS_ERR_ARG, "setting '%s' cannot change when a run resumes (only steps, threads, log_every "
                 "and ckpt_every can)", ch[i].name);
    else s = knobs_config_set(c, ch[i].name, ch[i].value);
    if (!s && !strcmp(ch[i].name, "threads")) *threads = (int)knobs_config_number(c, "threads");
  }
  knobs_config_free(c);
  return s;
}

/* The seconds trained recorded in an optimizer file's metadata, if it is of step `step`; else 0. */
static double meta_seconds(const char *meta_json, long step) {
  cJSON *o = meta_json ? cJSON_Parse(meta_json) : NULL;
  cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds"), *st = cJSON_GetObjectItemCaseSensitive(o, "step");
  double v = 0;
  if (cJSON_IsString(sec) && cJSON_IsString(st) && strtol(st->valuestring, NULL, 10) == step)
    v = strtod(sec->valuestring, NULL);
  cJSON_Delete(o);
  return v >= 0 && v < 1e12 ? v : 0; /* NaN too */
}

/* Load the model and its optimizer state (optimizer.safetensors, or the optim.* tensors of a
 * checkpoint from before the split) and the seconds trained. */
static knobs_status load_checkpoint(knobs_run *r, int threads) {
  char mp[1100], op[1100];
  path_in(mp, sizeof mp, r->dir, "model.safetensors");
  path_in(op, sizeof op, r->dir, "optimizer.safetensors");
  if (!kn_file_exists(mp))
    return kn_err(KNOBS_ERR_IO, "%s: no checkpoint (model.safetensors) to resume from%s", r->dir,
                  knobs_run_exists(r->dir) ? ": the run stopped before its first checkpoint; start it again" : "");
  knobs_load_opts lo = {.threads = threads};
  knobs_status s = knobs_model_load_with(mp, &lo, &r->m);
  if (s) return s;
  char *meta = NULL;
  s = knobs_model_load_optimizer(r->m, kn_file_exists(op) ? op : mp, &meta);
  if (s && !kn_file_exists(op))
    s = kn_err(KNOBS_ERR_FORMAT, "%s: no optimizer.safetensors beside model.safetensors: the run cannot "
               "continue exactly", r->dir);
  if (s) return s;
  r->seconds = meta_seconds(meta, knobs_model_step(r->m));
  free(meta);
  return KNOBS_OK;
}

/* The data of the run, opened as it was trained, with the model's input shape. */
static knobs_status open_data(knobs_run *r) {
  return knobs_model_open_data(r->m, NULL, &r->d);
}

knobs_status knobs_run_resume(const char *dir, const knobs_setting *changes, int n, knobs_run **out) {
  *out = NULL;
  knobs_run *r;
  knobs_status s = new_run(dir, &r);
  if (s) return s;
  int threads = 0;
  s = check_changes(changes, n, &threads);
  if (!s && !kn_is_dir(dir)) s = kn_err(KNOBS_ERR_IO, "%s: no such run folder", dir);
  if (!s) s = lock_dir(r);
  if (!s) s = finish_commit(r->dir);
  if (!s) s = load_checkpoint(r, threads);
  for (int i = 0; i < n && !s; i++)
    if (strcmp(changes[i].name, "threads")) s = knobs_model_set(r->m, changes[i].name, changes[i].value);
  if (!s) {
    long steps = (long)knobs_config_number(knobs_model_config(r->m), "steps"), done = knobs_model_step(r->m);
    if (steps < done)
      s = kn_err(KNOBS_ERR_ARG, "setting 'steps' is %ld, fewer than the %ld steps the run has taken", steps, done);
  }
  if (!s) s = open_data(r);
  if (!s) {
    remove_leftovers(r->dir);
    s = truncate_log(r->dir, knobs_model_step(r->m));
  }
  if (!s) s = write_config(r);
  if (s) {
    knobs_run_free(r);
    return s;
  }
  *out = r;
  return KNOBS_OK;
}

/* ---- a data-parallel worker's replica ------------------------------------------------------- */

knobs_status knobs_run_replica(const char *dir, int threads, knobs_model **m, knobs_data **d) {
  *m = NULL, *d = NULL;
  char cp[1100], mp[1100], op[1100];
  path_in(cp, sizeof cp, dir, "config.json");
  path_in(mp, sizeof mp, dir, "model.safetensors");
  path_in(op, sizeof op, dir, "optimizer.safetensors");
  char *json = NULL;
  size_t n;
  knobs_config *c = NULL;
  knobs_status s = kn_read_file(cp, (size_t)1 << 24, &json, &n);
  if (!s) s = knobs_config_create(NULL, &c);
  if (!s) s = knobs_config_from_json(c, json);
  if (!s && threads > 0) {
    char v[16];
    snprintf(v, sizeof v, "%d", threads);
    s = knobs_config_set(c, "threads", v);
  }
  free(json);
  knobs_run r = {.lock_fd = -1};
  if (!s && !kn_file_exists(mp)) { /* a new run: built as knobs_run_create built it */
    s = knobs_model_create(c, &r.m);
    const char *init = knobs_config_string(c, "init");
    if (!s && init && init[0] && (s = knobs_model_init_weights(r.m, init))) s = kn_err_prefix(s, "init");
  } else if (!s) {
    snprintf(r.dir, sizeof r.dir, "%s", dir);
    s = load_checkpoint(&r, (int)knobs_config_number(c, "threads"));
    char v[32];
    snprintf(v, sizeof v, "%.0f", knobs_config_number(c, "steps")); /* as the writer's resume set it */
    if (!s) s = knobs_model_set(r.m, "steps", v);
  }
  if (!s) s = open_data(&r);
  knobs_config_free(c);
  if (s) {
    knobs_model_free(r.m);
    return kn_err_prefix(s, dir);
  }
  *m = r.m, *d = r.d;
  return KNOBS_OK;
}

/* ---- training ----------------------------------------------------------------------------- */

static uint64_t config_seed(const knobs_config *c) {
  char buf[32];
  if (knobs_config_get(c, "seed", buf, sizeof buf)) return 0;
  return strtoull(buf, NULL, 10);
}

static knobs_status save(knobs_run *r, double seconds) {
  char mp[1100], op[1100], meta[64];
  path_in(mp, sizeof mp, r->dir, "model.safetensors");
  path_in(op, sizeof op, r->dir, "optimizer.safetensors");
  snprintf(meta, sizeof meta, "{\"seconds\":\"%.3f\"}", seconds);
  return knobs_model_save_checkpoint(r->m, mp, op, meta);
}

/* Reconstructions, samples and a traversal for image data with 1 or 3 channels; a model that
 * cannot draw them (KNOBS_ERR_UNSUPPORTED) gets none. Sequences (info.T > 1) get the traversal
 * alone, of a dsvae's static code (knobs_traverse_seq), when their frames have 1 or 3 channels:
 * their T*c channels are not an image to reconstruct or sample. */
static knobs_status pictures(knobs_run *r) {
  const knobs_data_info *in = knobs_data_info_get(r->d);
  int seq = in->T > 1;
  if (!in->is_image || (!seq && in->C != 1 && in->C != 3)) return KNOBS_OK;
  if (seq && knobs_dsvae_dims(r->m, NULL, NULL, NULL) != KNOBS_OK) { /* a per-frame model: no picture */
    knobs_clear_error();
    return KNOBS_OK;
  }
  uint64_t seed = config_seed(knobs_model_config(r->m));
  char p[1100];
  knobs_status s = KNOBS_OK;
  if (!seq) {
    path_in(p, sizeof p, r->dir, "reconstructions.png");
    s = knobs_reconstruct(r->m, r->d, 16, seed, p);
    if (s == KNOBS_ERR_UNSUPPORTED) {
      knobs_clear_error();
      return KNOBS_OK;
    }
    path_in(p, sizeof p, r->dir, "samples.png");
    if (!s) s = knobs_sample(r->m, 64, seed, p);
  }
  /* traverse from the middle of the factor grid (on dSprites: a large heart in the centre, so
   * moves in x and y show both ways); index 0 for data without a grid */
  int64_t mid = 0;
  if (in->K > 0 && in->has_render) {
    int32_t f[KNOBS_MAX_FACTORS];
    for (int k = 0; k < in->K; k++) f[k] = in->factor_sizes[k] - 1 - (in->factor_sizes[k] - 1) / 2;
    mid = knobs_data_index(r->d, f);
  }
  path_in(p, sizeof p, r->dir, "traversal.png");
  if (!s) s = knobs_traverse(r->m, r->d, mid, -2, 2, 11, p, NULL, NULL);
  if (seq && s == KNOBS_ERR_UNSUPPORTED) { /* frames that are not pictures */
    knobs_clear_error();
    s = KNOBS_OK;
  }
  return s;
}

typedef struct {
  FILE *f;
  char path[1100];
  int header;       /* the file has its header line */
} run_log;

static knobs_status log_open(const knobs_run *r, run_log *lg) {
  path_in(lg->path, sizeof lg->path, r->dir, "log.csv");
  lg->f = fopen(lg->path, "a+");
  if (!lg->f) return kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", lg->path, strerror(errno));
  fseek(lg->f, 0, SEEK_END);
  lg->header = ftell(lg->f) > 0;
  return KNOBS_OK;
}

/* The header once the terms' names are known (after the first step), so a run stopped before
 * its first row still has it; then rows. */
static void log_header(run_log *lg, const knobs_terms *t) {
  if (lg->header) return;
  fprintf(lg->f, "step,seconds,images_per_s");
  for (int i = 0; i < t->n; i++) fprintf(lg->f, ",%s", t->name[i]);
  fputc('\n', lg->f);
  fflush(lg->f);
  lg->header = 1;
}

static void log_row(run_log *lg, long step, double seconds, double ips, const knobs_terms *t) {
  fprintf(lg->f, "%ld,%.3f,%.1f", step, seconds, ips);
  for (int i = 0; i < t->n; i++) fprintf(lg->f, ",%.9g", t->value[i]);
  fputc('\n', lg->f);
  fflush(lg->f);
}

static knobs_status log_close(run_log *lg, knobs_status s) {
  int bad = ferror(lg->f);
  if ((fclose(lg->f) != 0 || bad) && !s) s = kn_err(KNOBS_ERR_IO, "%s: write failed", lg->path);
  return s;
}

knobs_status knobs_run_train(knobs_run *r, const knobs_train_opts *o) {
  knobs_train_opts none = {0};
  if (!o) o = &none;
  knobs_model *m = r->m;
  const knobs_config *c = knobs_model_config(m);
  if (o->steps > 0) {
    if (o->steps < knobs_model_step(m))
      return kn_err(KNOBS_ERR_ARG, "train: the model has taken %ld steps already, more than the %ld asked",
                    knobs_model_step(m), o->steps);
    char v[32];
    snprintf(v, sizeof v, "%ld", o->steps);
    knobs_status s = knobs_model_set(m, "steps", v);
    if (!s) s = write_config(r);
    if (s) return s;
  }
  long steps = (long)knobs_config_number(c, "steps"), log_every = (long)knobs_config_number(c, "log_every");
  long ckpt_every = (long)knobs_config_number(c, "ckpt_every");
  double batch = knobs_config_number(c, "batch");
  run_log lg;
  knobs_status s = log_open(r, &lg);
  if (s) return s;
  knobs_terms t = {0};
  double t0 = kn_now(), last_t = t0;
  long last_step = knobs_model_step(m);
  int stopped = 0;
  while (knobs_model_step(m) < steps) {
    s = knobs_model_train_step(m, r->d, &t);
    if (s) break;
    log_header(&lg, &t);
    long step = knobs_model_step(m);
    if (step % log_every == 0 || step == steps) {
      double now = kn_now(), ips = (double)(step - last_step) * batch / (now - last_t + 1e-12);
      log_row(&lg, step, r->seconds + (now - t0), ips, &t);
      if (o->progress && o->progress(o->ctx, step, steps, ips, &t)) stopped = 1;
      last_t = now;
      last_step = step;
    }
    if (o->stop && *o->stop) stopped = 1;
    if (stopped) break;
    if (ckpt_every > 0 && step % ckpt_every == 0 && step < steps && (s = save(r, r->seconds + (kn_now() - t0))))
      break;
  }
  s = log_close(&lg, s);
  if (s) return s;
  double seconds = r->seconds + (kn_now() - t0);
  if ((s = save(r, seconds))) return s;
  r->seconds = seconds;
  if (stopped)
    return kn_err(KNOBS_ERR_INTERRUPTED, "stopped at step %ld of %ld; checkpoint saved in %s", knobs_model_step(m),
                  steps, r->dir);
  return pictures(r);
}

/* ---- the embedder's entry ------------------------------------------------------------------ */

knobs_status knobs_train(knobs_model *m, knobs_data *d, const knobs_train_opts *o) {
  if (!o || !o->out_dir) return kn_err(KNOBS_ERR_ARG, "train: no run folder given");
  if (o->steps < knobs_model_step(m))
    return kn_err(KNOBS_ERR_ARG, "train: the model has taken %ld steps already, more than the %ld asked",
                  knobs_model_step(m), o->steps);
  knobs_run *r;
  knobs_status s = new_run(o->out_dir, &r);
  if (s) return s;
  r->own = 0;
  r->m = m;
  r->d = d;
  long step = knobs_model_step(m);
  if (step == 0) s = claim_fresh(r, o->overwrite);
  else {
    s = kn_mkdirs(r->dir);
    if (!s) s = lock_dir(r);
    if (!s) {
      remove_leftovers(r->dir);
      s = truncate_log(r->dir, step);
    }
    /* the seconds of the folder's checkpoint, when it is this model's step */
    char op[1100];
    path_in(op, sizeof op, r->dir, "optimizer.safetensors");
    kn_safetensors st;
    if (!s && kn_file_exists(op)) {
      if (!kn_st_read(op, &st)) {
        r->seconds = meta_seconds(st.metadata_json, step);
        kn_st_free(&st);
      }
      knobs_clear_error(); /* an unreadable old file only loses the seconds */
    }
  }
  if (!s) s = write_config(r);
  if (!s) s = knobs_run_train(r, o);
  knobs_run_free(r);
  return s;
}
