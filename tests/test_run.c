/* test_run.c: the run API (src/run) and the checkpoint rules it relies on (src/models/checkpoint.c).
 * - a run killed with SIGKILL right after a log row past its last checkpoint, then resumed,
 *   has the log rows (step and loss columns) and the final checkpoint bytes of a run that never
 *   stopped, and its seconds never go backwards;
 * - one writer per folder (the second is told the first one's pid); a folder that holds a run is
 *   refused unless overwritten; knobs_train (the embedder's entry) follows the same rules;
 * - resume: resumable settings take effect, others and fewer steps are KNOBS_ERR_ARG naming
 *   the setting; an optimizer file of another step than the model is refused naming both;
 *   a checkpoint from before the split (optim.* in model.safetensors) still loads and resumes;
 * - loading refuses NaN/Inf (naming the tensor) unless allow_nonfinite, and a step that does
 *   not fit (99999999999999999999) instead of saturating;
 * - model.safetensors holds no optim.* tensor.
 * Data: the built-in `physics` vectors with a small MLP, so every run takes milliseconds. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"
#include "io/io.h"
#include "knobs.h"

static char root[256];

static knobs_config *small_config(const char *steps) {
  knobs_config *c;
  knobs_config_create("betavae", &c);
  const char *kv[][2] = {{"data", "physics"}, {"arch", "mlp"}, {"hidden", "16"}, {"latents", "3"},
                         {"batch", "8"}, {"threads", "1"}, {"seed", "7"}, {"steps", steps},
                         {"log_every", "5"}, {"ckpt_every", "10"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    CHECK(!knobs_config_set(c, kv[i][0], kv[i][1]), "set %s: %s", kv[i][0], knobs_last_error());
  return c;
}

static void dir_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", root, name);
}

static char *slurp(const char *dir, const char *file, size_t *n) {
  char p[600], *b = NULL;
  snprintf(p, sizeof p, "%s/%s", dir, file);
  size_t k = 0;
  if (kn_read_file(p, 1 << 28, &b, &k)) return NULL;
  if (n) *n = k;
  return b;
}

/* log.csv without its seconds and images/s columns (which depend on the clock) */
static char *log_rows(const char *dir) {
  char *b = slurp(dir, "log.csv", NULL);
  if (!b) return NULL;
  char *out = malloc(strlen(b) + 1), *o = out;
  for (char *line = b; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    int col = 0;
    for (size_t i = 0; i < len; i++) { /* keep field 0 and fields 3.. with their commas */
      if (line[i] == ',') col++;
      if (col == 0 || col >= 3) *o++ = line[i];
    }
    *o++ = '\n';
    line += len + (nl != NULL);
  }
  *o = 0;
  free(b);
  return out;
}

/* the seconds column never decreases, and is > 0 after the first row */
static int seconds_monotone(const char *dir) {
  char *b = slurp(dir, "log.csv", NULL);
  if (!b) return 0;
  double prev = 0;
  int ok = 1;
  char *line = strchr(b, '\n');
  while (line && line[1]) {
    line++;
    char *c = strchr(line, ',');
    double s = c ? strtod(c + 1, NULL) : -1;
    if (s < prev) ok = 0;
    prev = s;
    line = strchr(line, '\n');
  }
  free(b);
  return ok;
}

static int same_file(const char *a, const char *b, const char *file) {
  size_t na, nb;
  char *x = slurp(a, file, &na), *y = slurp(b, file, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x), free(y);
  return same;
}

static knobs_status full_run(const char *dir, const char *steps) {
  knobs_config *c = small_config(steps);
  knobs_run *r = NULL;
  knobs_status s = knobs_run_create(dir, c, NULL, 0, &r);
  if (!s) s = knobs_run_train(r, NULL);
  knobs_run_free(r);
  knobs_config_free(c);
  return s;
}

static int kill_at_35(void *ctx, long step, long total, double ips, const knobs_terms *t) {
  (void)ctx, (void)total, (void)ips, (void)t;
  if (step == 35) raise(SIGKILL); /* the row of step 35 is in the log, the checkpoint at 30 */
  return 0;
}

static void test_sigkill_resume(void) {
  T_CASE("SIGKILL and resume read as if never stopped");
  char full[300], killed[300];
  dir_of(full, sizeof full, "full");
  dir_of(killed, sizeof killed, "killed");
  CHECK(!full_run(full, "60"), "uninterrupted run: %s", knobs_last_error());
  pid_t pid = fork();
  if (pid == 0) {
    knobs_config *c = small_config("60");
    knobs_run *r;
    if (knobs_run_create(killed, c, NULL, 0, &r)) _exit(3);
    knobs_train_opts o = {.progress = kill_at_35};
    knobs_run_train(r, &o);
    _exit(4); /* not reached */
  }
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child was not killed (status %d)", st);
  knobs_run *r = NULL;
  knobs_status s = knobs_run_resume(killed, NULL, 0, &r);
  CHECK(!s, "resume after SIGKILL (the lock must be gone): %s", knobs_last_error());
  if (s) return;
  CHECK(knobs_model_step(knobs_run_model(r)) == 30, "resumed at step %ld, want 30", knobs_model_step(knobs_run_model(r)));
  CHECK(!knobs_run_train(r, NULL), "resumed training: %s", knobs_last_error());
  knobs_run_free(r);
  char *a = log_rows(full), *b = log_rows(killed);
  CHECK(a && b && !strcmp(a, b), "log rows differ:\n--- uninterrupted\n%s--- killed and resumed\n%s", a ? a : "", b ? b : "");
  free(a), free(b);
  CHECK(same_file(full, killed, "model.safetensors"), "final model.safetensors bytes differ");
  CHECK(seconds_monotone(killed), "seconds go backwards in the resumed log");
  size_t n;
  char *m = slurp(killed, "model.safetensors", &n);
  CHECK(m && !memmem(m, n, "optim.", 6), "model.safetensors holds optimizer tensors");
  free(m);
  char *o = slurp(killed, "optimizer.safetensors", &n);
  CHECK(o && memmem(o, n, "optim.vae.exp_avg_sq", 20) && memmem(o, n, "\"seconds\"", 9), "optimizer.safetensors lacks its parts");
  free(o);
}

static void test_lock_and_refusal(void) {
  T_CASE("one writer; a folder with a run is refused");
  char dir[300], pid[32];
  dir_of(dir, sizeof dir, "lock");
  snprintf(pid, sizeof pid, "process %ld", (long)getpid());
  knobs_config *c = small_config("20");
  knobs_run *a = NULL, *b = NULL;
  CHECK(!knobs_run_create(dir, c, NULL, 0, &a), "create: %s", knobs_last_error());
  CHECK(knobs_run_create(dir, c, NULL, 1, &b) == KNOBS_ERR_IO && !b, "a second writer was let in");
  CHECK(strstr(knobs_last_error(), pid) != NULL, "the refusal does not name the holder: %s", knobs_last_error());
  CHECK(knobs_run_resume(dir, NULL, 0, &b) == KNOBS_ERR_IO && strstr(knobs_last_error(), pid), "resume while locked: %s",
        knobs_last_error());
  CHECK(!knobs_run_train(a, NULL), "train: %s", knobs_last_error());
  knobs_run_free(a);
  CHECK(knobs_run_exists(dir), "knobs_run_exists is 0 for a run");
  size_t n0, n1;
  char *before = slurp(dir, "model.safetensors", &n0);
  CHECK(knobs_run_create(dir, c, NULL, 0, &b) == KNOBS_ERR_IO && !b, "a folder with a run was accepted");
  CHECK(strstr(knobs_last_error(), "holds a run"), "message: %s", knobs_last_error());
  char *after = slurp(dir, "model.safetensors", &n1);
  CHECK(before && after && n0 == n1 && !memcmp(before, after, n0), "a refused create touched the checkpoint");
  free(before), free(after);
  CHECK(!knobs_run_create(dir, c, NULL, 1, &b), "overwrite: %s", knobs_last_error());
  CHECK(!knobs_run_exists(dir) || !slurp(dir, "model.safetensors", NULL), "overwrite left the old checkpoint");
  knobs_run_free(b);
  knobs_config_free(c);
}

static void test_resume_settings(void) {
  T_CASE("resume: resumable settings take effect, the others are refused");
  char dir[300];
  dir_of(dir, sizeof dir, "settings");
  CHECK(!full_run(dir, "20"), "run: %s", knobs_last_error());
  knobs_run *r = NULL;
  knobs_setting bad[] = {{"beta", "2"}};
  CHECK(knobs_run_resume(dir, bad, 1, &r) == KNOBS_ERR_ARG && !r, "beta changed on resume");
  CHECK(strstr(knobs_last_error(), "'beta'") && !strstr(knobs_last_error(), "--"), "message: %s", knobs_last_error());
  knobs_setting fewer[] = {{"steps", "10"}};
  CHECK(knobs_run_resume(dir, fewer, 1, &r) == KNOBS_ERR_ARG && !r, "fewer steps accepted");
  CHECK(strstr(knobs_last_error(), "'steps'"), "message: %s", knobs_last_error());
  knobs_setting junk[] = {{"log_every", "3x"}};
  CHECK(knobs_run_resume(dir, junk, 1, &r) == KNOBS_ERR_ARG && !r, "a bad value accepted");
  /* what an interrupted save leaves goes on resume; other files stay */
  const char *left[] = {"model.safetensors.new", "model.safetensors.new.tmp-99999", "log.csv.tmp-99999", "mine.txt.tmp-1"};
  char lp[4][600];
  for (int i = 0; i < 4; i++) {
    snprintf(lp[i], sizeof lp[i], "%s/%s", dir, left[i]);
    kn_write_file(lp[i], "x", 1);
  }
  knobs_setting ch[] = {{"steps", "30"}, {"log_every", "2"}, {"ckpt_every", "4"}, {"threads", "2"}};
  CHECK(!knobs_run_resume(dir, ch, 4, &r), "resume: %s", knobs_last_error());
  if (!r) return;
  for (int i = 0; i < 3; i++) CHECK(!kn_file_exists(lp[i]), "%s left after resume", left[i]);
  CHECK(kn_file_exists(lp[3]), "resume removed a file not its own");
  const knobs_config *c = knobs_model_config(knobs_run_model(r));
  CHECK(knobs_config_number(c, "log_every") == 2 && knobs_config_number(c, "ckpt_every") == 4 &&
            knobs_config_number(c, "threads") == 2 && knobs_config_number(c, "steps") == 30,
        "settings not applied");
  CHECK(!knobs_run_train(r, NULL), "train: %s", knobs_last_error());
  knobs_run_free(r);
  char *rows = log_rows(dir);
  CHECK(rows && strstr(rows, "\n20,") && strstr(rows, "\n22,") && strstr(rows, "\n30,") && !strstr(rows, "\n21,"),
        "log_every 2 not used after the resume:\n%s", rows ? rows : "");
  free(rows);
  char *cj = slurp(dir, "config.json", NULL);
  CHECK(cj && strstr(cj, "\"log_every\":\t2"), "config.json: %s", cj ? cj : "");
  free(cj);
}

/* model.safetensors and optimizer.safetensors of `dir` merged into one file as knobs 0.1.0
 * wrote it (parameters, then optim.*; the model file's metadata) */
static void make_old_format(const char *dir) {
  char mp[600], op[600];
  snprintf(mp, sizeof mp, "%s/model.safetensors", dir);
  snprintf(op, sizeof op, "%s/optimizer.safetensors", dir);
  kn_safetensors a, b;
  CHECK(!kn_st_read(mp, &a) && !kn_st_read(op, &b), "read: %s", knobs_last_error());
  kn_st_entry *e = calloc((size_t)(a.n + b.n), sizeof *e);
  for (int i = 0; i < a.n + b.n; i++) {
    const kn_safetensors *s = i < a.n ? &a : &b;
    const kn_st_tensor *t = &s->t[i < a.n ? i : i - a.n];
    e[i] = (kn_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = s->data + t->begin};
    memcpy(e[i].shape, t->shape, sizeof t->shape);
  }
  CHECK(!kn_st_write(mp, e, a.n + b.n, a.metadata_json), "write: %s", knobs_last_error());
  remove(op);
  free(e);
  kn_st_free(&a), kn_st_free(&b);
}

/* Load the run in dir, take one more step and write the model (model = 1) or its optimizer
 * state to `path`: one half of a checkpoint one step ahead of the folder's. */
static void one_step_ahead(const char *dir, const char *path, int model) {
  knobs_model *m = NULL;
  knobs_data *d = NULL;
  CHECK(!knobs_model_load(dir, 1, &m) && !knobs_model_open_data(m, NULL, &d), "load: %s", knobs_last_error());
  if (!m || !d) {
    knobs_model_free(m);
    return;
  }
  CHECK(!knobs_model_train_step(m, d, NULL), "step: %s", knobs_last_error());
  CHECK(!(model ? knobs_model_save(m, path) : knobs_model_save_optimizer(m, path, NULL)), "save %s: %s", path,
        knobs_last_error());
  knobs_model_free(m);
  knobs_data_free(d);
}

static void test_old_format_and_mismatch(void) {
  T_CASE("a checkpoint with optim.* in model.safetensors loads and resumes; mismatched steps are refused");
  char full[300], old[300];
  dir_of(full, sizeof full, "full40");
  dir_of(old, sizeof old, "old");
  CHECK(!full_run(full, "40"), "run: %s", knobs_last_error());
  CHECK(!full_run(old, "20"), "run: %s", knobs_last_error());
  make_old_format(old);
  knobs_model *m = NULL;
  CHECK(!knobs_model_load(old, 1, &m), "old format load: %s", knobs_last_error());
  knobs_model_free(m);
  knobs_run *r = NULL;
  knobs_setting ch[] = {{"steps", "40"}};
  CHECK(!knobs_run_resume(old, ch, 1, &r), "old format resume: %s", knobs_last_error());
  if (r) {
    CHECK(!knobs_run_train(r, NULL), "train: %s", knobs_last_error());
    knobs_run_free(r);
    CHECK(same_file(full, old, "model.safetensors"), "resumed from the old format, the weights differ");
  }
  /* an optimizer file one checkpoint ahead of the model (a save cut between the renames) */
  char mis[300];
  dir_of(mis, sizeof mis, "mismatch");
  CHECK(!full_run(mis, "20"), "run: %s", knobs_last_error());
  char op[600];
  snprintf(op, sizeof op, "%s/optimizer.safetensors", mis);
  one_step_ahead(mis, op, 0);
  knobs_status ms = knobs_run_resume(mis, NULL, 0, &r);
  CHECK(ms == KNOBS_ERR_FORMAT && !r, "mismatched steps: status %d: %s", ms, knobs_last_error());
  CHECK(strstr(knobs_last_error(), "step 21") && strstr(knobs_last_error(), "step 20"), "message: %s", knobs_last_error());
  /* the same cut with the complete model.safetensors.new of step 21 still beside them (what
   * knobs_model_save_checkpoint leaves when stopped between its renames): resume finishes the
   * checkpoint (rolls forward) and continues from step 21 */
  char mp[600];
  snprintf(mp, sizeof mp, "%s/model.safetensors.new", mis);
  one_step_ahead(mis, mp, 1);
  knobs_setting more[] = {{"steps", "30"}};
  ms = knobs_run_resume(mis, more, 1, &r);
  CHECK(!ms && r && knobs_model_step(knobs_run_model(r)) == 21, "roll forward: status %d: %s", ms, knobs_last_error());
  knobs_run_free(r);
  CHECK(access(mp, F_OK) != 0, "model.safetensors.new left behind");
}

static void test_load_refusals(void) {
  T_CASE("NaN/Inf and an overflowing step are refused at load");
  char dir[300], p[600], q[600];
  dir_of(dir, sizeof dir, "nan");
  CHECK(!full_run(dir, "10"), "run: %s", knobs_last_error());
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  snprintf(q, sizeof q, "%s/edited.safetensors", root);
  kn_safetensors st;
  CHECK(!kn_st_read(p, &st), "read: %s", knobs_last_error());
  kn_st_entry *e = calloc((size_t)st.n, sizeof *e);
  int victim = -1;
  for (int i = 0; i < st.n; i++) {
    const kn_st_tensor *t = &st.t[i];
    e[i] = (kn_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = st.data + t->begin};
    memcpy(e[i].shape, t->shape, sizeof t->shape);
    if (!strcmp(t->name, "decoder.fc1.bias")) victim = i;
  }
  CHECK(victim >= 0, "no decoder.fc1.bias");
  float *v = (float *)(st.data + st.t[victim].begin);
  const float bad[] = {NAN, INFINITY, -INFINITY};
  for (int k = 0; k < 3 && victim >= 0; k++) {
    float keep = v[1];
    v[1] = bad[k];
    kn_st_write(q, e, st.n, st.metadata_json);
    v[1] = keep;
    knobs_model *m = NULL;
    knobs_status s = knobs_model_load(q, 1, &m);
    CHECK(s == KNOBS_ERR_DATA && !m, "non-finite value %g accepted (status %d)", bad[k], s);
    CHECK(strstr(knobs_last_error(), "decoder.fc1.bias") && strstr(knobs_last_error(), "element 1"), "message: %s",
          knobs_last_error());
    knobs_load_opts lo = {.threads = 1, .allow_nonfinite = 1};
    CHECK(!knobs_model_load_with(q, &lo, &m), "allow_nonfinite: %s", knobs_last_error());
    knobs_model_free(m);
  }
  /* the step of the metadata */
  const char *steps[] = {"99999999999999999999", "-1", "12x", "", "9223372036854775807"};
  for (int k = 0; k < 5; k++) {
    char *meta = strdup(st.metadata_json);
    char *at = strstr(meta, "\"step\":\"10\"");
    CHECK(at != NULL, "no step in %s", meta);
    if (!at) {
      free(meta);
      break;
    }
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s\"step\":\"%s\"%s", (int)(at - meta), meta, steps[k], at + 11);
    kn_st_write(q, e, st.n, edited);
    free(meta);
    knobs_model *m = NULL;
    knobs_status s = knobs_model_load(q, 1, &m);
    CHECK(s == KNOBS_ERR_FORMAT && !m, "step '%s' accepted (status %d, step %ld)", steps[k], s, m ? knobs_model_step(m) : -1);
    CHECK(strstr(knobs_last_error(), "bad step"), "message: %s", knobs_last_error());
    knobs_model_free(m);
  }
  free(e);
  kn_st_free(&st);
}

static void test_knobs_train(void) {
  T_CASE("knobs_train: the embedder's entry follows the folder rules");
  char dir[300];
  dir_of(dir, sizeof dir, "embed");
  knobs_config *c = small_config("20");
  knobs_data *d = NULL;
  knobs_data_opts o;
  knobs_config_data_opts(c, &o);
  CHECK(!knobs_data_open("physics", &o, &d), "data: %s", knobs_last_error());
  knobs_config_from_data(c, d);
  knobs_model *m = NULL, *m2 = NULL;
  CHECK(!knobs_model_create(c, &m) && !knobs_model_create(c, &m2), "create: %s", knobs_last_error());
  knobs_train_opts to = {.out_dir = dir, .steps = 20};
  CHECK(!knobs_train(m, d, &to), "knobs_train: %s", knobs_last_error());
  CHECK(knobs_train(m2, d, &to) == KNOBS_ERR_IO, "a fresh model replaced a run");
  to.overwrite = 1;
  CHECK(!knobs_train(m2, d, &to), "knobs_train with overwrite: %s", knobs_last_error());
  to.overwrite = 0;
  to.steps = 30; /* the same model, further: the log continues */
  CHECK(!knobs_train(m2, d, &to), "knobs_train continued: %s", knobs_last_error());
  char *rows = log_rows(dir);
  int n = 0;
  for (char *q = rows; q && (q = strchr(q, '\n')); q++) n++;
  CHECK(n == 7, "log has %d lines, want header + 6 rows:\n%s", n, rows ? rows : "");
  free(rows);
  CHECK(knobs_config_number(knobs_model_config(m2), "steps") == 30, "steps not recorded");
  knobs_model_free(m), knobs_model_free(m2);
  knobs_data_free(d);
  knobs_config_free(c);
}


/* init: a new run starts from another run's weights (same codes before any step, a fresh
 * optimizer and step 0); a checkpoint of another size is refused naming the file and the
 * tensor, and nothing is written. */
static void test_init_weights(void) {
  T_CASE("init: a run started from another run's weights");
  char a[300], b[300], bad[300], p[400];
  dir_of(a, sizeof a, "init-from");
  dir_of(b, sizeof b, "init-to");
  dir_of(bad, sizeof bad, "init-bad");
  CHECK(!full_run(a, "20"), "first run: %s", knobs_last_error());
  knobs_config *c = small_config("20");
  CHECK(!knobs_config_set(c, "init", a), "set init: %s", knobs_last_error());
  CHECK(!knobs_config_set(c, "seed", "99"), "seed");
  knobs_run *r = NULL;
  CHECK(!knobs_run_create(b, c, NULL, 0, &r), "create with init: %s", knobs_last_error());
  knobs_model *src = NULL;
  CHECK(!knobs_model_load(a, 1, &src), "load: %s", knobs_last_error());
  if (r && src) {
    knobs_model *m = knobs_run_model(r);
    CHECK(knobs_model_step(m) == 0, "step %ld, want 0", knobs_model_step(m));
    float x[4 * 64], z1[4 * 3], z2[4 * 3];
    knobs_data *d = knobs_run_data(r);
    int64_t idx[4] = {0, 1, 2, 3};
    int D = knobs_data_info_get(d)->C;
    CHECK(D <= 64, "physics dim %d", D);
    CHECK(!knobs_data_get(d, idx, 4, x, NULL), "data");
    CHECK(!knobs_model_encode(m, x, 4, z1, NULL) && !knobs_model_encode(src, x, 4, z2, NULL), "encode");
    CHECK(!memcmp(z1, z2, sizeof z1), "the started model encodes differently from its source");
    knobs_model *fresh = NULL;
    CHECK(!knobs_model_create(knobs_model_config(m), &fresh), "create");
    if (fresh) {
      CHECK(!knobs_model_encode(fresh, x, 4, z1, NULL), "encode");
      CHECK(memcmp(z1, z2, sizeof z1) != 0, "a fresh model (seed 99) encodes as the source: the test cannot fail");
    }
    knobs_model_free(fresh);
    CHECK(!knobs_run_train(r, NULL), "train the started run: %s", knobs_last_error());
  }
  knobs_run_free(r);
  knobs_model_free(src);
  /* another size: refused, naming the file and the tensor; no folder content written */
  CHECK(!knobs_config_set(c, "latents", "4"), "latents");
  r = NULL;
  CHECK(knobs_run_create(bad, c, NULL, 0, &r) == KNOBS_ERR_FORMAT && !r, "a checkpoint of 3 latents started a model of 4");
  CHECK(strstr(knobs_last_error(), "init") && strstr(knobs_last_error(), a) && strstr(knobs_last_error(), "weight"),
        "message: %s", knobs_last_error());
  snprintf(p, sizeof p, "%s/config.json", bad);
  CHECK(access(p, F_OK) != 0, "a refused run wrote %s", p);
  CHECK(!knobs_config_set(c, "latents", "3") && !knobs_config_set(c, "init", "/nonexistent/run"), "set");
  CHECK(knobs_run_create(bad, c, NULL, 0, &r) && !r, "a missing init file was accepted");
  CHECK(strstr(knobs_last_error(), "/nonexistent/run") != NULL, "message: %s", knobs_last_error());
  knobs_config_free(c);
}

int main(void) {
  snprintf(root, sizeof root, "/tmp/knobs-test-run-%ld", (long)getpid());
  kn_mkdirs(root);
  test_sigkill_resume();
  test_lock_and_refusal();
  test_resume_settings();
  test_old_format_and_mismatch();
  test_load_refusals();
  test_knobs_train();
  test_init_weights();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  if (!t_failed && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
  return t_done();
}
