/* cmd_sweep.c: `knobs sweep`: train (and evaluate) every run of a grid of settings, on --jobs
 * local workers, or on the ranks of an MPI launch.
 *
 * Every run is an ordinary run folder under the sweep's folder, trained by a child process
 * `knobs train` and then scored by `knobs eval` (its JSON kept as RUN/eval.json; the children's
 * output goes to RUN/sweep.log). sweep.json (src/cli/sweep.c) holds the grid, the shared
 * settings and each run's state; it is written by one process only (the sweep, or rank 0),
 * atomically, after every change, and the folder is locked (sweep.lock) while a sweep runs
 * in it. Re-running the same command, or `knobs sweep --resume DIR`, skips the finished runs
 * and continues the others exactly (each run's own resume); a larger --steps continues every
 * run to the new total. Ctrl-C stops the children at a checkpoint and leaves all resumable.
 *
 * Under mpirun, rank 0 owns sweep.json and hands out runs one at a time, on request, to every
 * other rank, while it trains runs of its own on --jobs local workers; a run is given to one
 * rank only, so no two ranks ever write one run, and a rank that dies leaves its run as a
 * resumable folder marked "training" (pending on the next start). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sweep.h"

extern char **environ;

static volatile sig_atomic_t stop_sweep;
static void on_signal(int sig) {
  (void)sig;
  stop_sweep = 1;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* ---- the children -------------------------------------------------------------------------- */

typedef struct {
  char exe[1024];   /* this knobs */
  int threads;
  int quiet;
} runner;

#define MAX_ARGS (2 * SW_MAX_SET + 24)
typedef struct {
  char buf[MAX_ARGS][1400];
  char *argv[MAX_ARGS + 1];
  int n;
} argvec;

static void arg(argvec *a, const char *s) {
  if (a->n == MAX_ARGS) return;
  snprintf(a->buf[a->n], sizeof a->buf[0], "%s", s);
  a->argv[a->n] = a->buf[a->n];
  a->argv[++a->n] = NULL;
}

static void flag_of(char *out, size_t n, const char *key) {
  snprintf(out, n, "--%s", key);
  for (char *c = out; *c; c++)
    if (*c == '_') *c = '-';
}

/* phase 0: `knobs train` (a new run, or the resume of one with a checkpoint); 1: `knobs eval` */
static void child_args(const sw_sweep *s, int i, int phase, const runner *rn, argvec *a) {
  char dir[1200], p[1300], v[64];
  sw_run_dir(s, i, dir, sizeof dir);
  a->n = 0;
  arg(a, rn->exe);
  snprintf(v, sizeof v, "%d", rn->threads);
  if (phase == 1) {
    snprintf(p, sizeof p, "%s/eval.json", dir);
    arg(a, "eval"), arg(a, "--model"), arg(a, dir), arg(a, "--out"), arg(a, p), arg(a, "--quiet");
    arg(a, "--threads"), arg(a, v);
    char ev[sizeof s->eval_args];
    snprintf(ev, sizeof ev, "%s", s->eval_args);
    for (char *save = NULL, *t = strtok_r(ev, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) arg(a, t);
    return;
  }
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  arg(a, "train");
  if (file_exists(p)) {
    arg(a, "--resume"), arg(a, dir);
    const char *steps = sw_get(&s->runs[i], "steps");
    if (steps[0]) arg(a, "--steps"), arg(a, steps);
  } else {
    arg(a, "--out"), arg(a, dir), arg(a, "--overwrite"); /* a folder without a checkpoint: never trained */
    for (int k = 0; k < s->runs[i].nset; k++) {
      char f[64];
      flag_of(f, sizeof f, s->runs[i].set[k].key);
      arg(a, f), arg(a, s->runs[i].set[k].val);
    }
  }
  arg(a, "--threads"), arg(a, v), arg(a, "--quiet");
}

/* Start one child with its output appended to RUN/sweep.log and KNOBS_MPI=0 (an ordinary
 * process, even under mpirun); its pid, or -1 (reported). */
static pid_t spawn(const sw_sweep *s, int i, int phase, const runner *rn) {
  char dir[1200], log[1300];
  sw_run_dir(s, i, dir, sizeof dir);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "knobs: sweep: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
  }
  snprintf(log, sizeof log, "%s/sweep.log", dir);
  argvec a;
  child_args(s, i, phase, rn, &a);
  FILE *lf = fopen(log, "a");
  if (lf) {
    fprintf(lf, "$");
    for (int k = 1; k < a.n; k++) fprintf(lf, " %s", a.argv[k]);
    fprintf(lf, "\n");
    fclose(lf);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  setenv("KNOBS_MPI", "0", 1);
  pid_t pid;
  int e = posix_spawn(&pid, rn->exe, &fa, NULL, a.argv, environ);
  unsetenv("KNOBS_MPI");
  posix_spawn_file_actions_destroy(&fa);
  if (e) {
    fprintf(stderr, "knobs: sweep: cannot start %s: %s\n", rn->exe, strerror(e));
    return -1;
  }
  return pid;
}

/* The exit status of a child: its code; 130 when a signal ended it (interrupted). */
static int child_code(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 130;
}

/* Run i from start to end in this process (an MPI worker rank): train, then eval. Returns the
 * state it ends in (*code: the failing exit status). */
static sw_state run_blocking(const sw_sweep *s, int i, const runner *rn, int *code) {
  *code = 0;
  for (int phase = 0; phase < 1 + s->eval; phase++) {
    if (stop_sweep) return SW_PENDING;
    pid_t pid = spawn(s, i, phase, rn);
    if (pid < 0) return *code = 2, SW_FAILED;
    int st;
    while (waitpid(pid, &st, 0) < 0)
      if (errno != EINTR) return *code = 2, SW_FAILED;
    int c = child_code(st);
    if (c == 130) return SW_PENDING;
    if (c) return *code = c, SW_FAILED;
  }
  return SW_DONE;
}

/* ---- the schedule ---------------------------------------------------------------------------- */

typedef struct {
  pid_t pid;       /* 0: free */
  int run, phase;
  double t0;
} slot;

typedef struct {
  sw_sweep *s;
  runner rn;
  int done, failed, total;
  int quiet;
  char err[600];
} sched;

static void save(sched *sc) {
  if (sw_write(sc->s, sc->err, sizeof sc->err)) fprintf(stderr, "knobs: sweep: %s\n", sc->err);
}

static void report(sched *sc, int i, const char *what, double secs, int rank) {
  if (sc->quiet) return;
  char who[32] = "";
  if (rank >= 0) snprintf(who, sizeof who, " (rank %d)", rank);
  printf("[%d/%d] %s: %s%s", sc->done + sc->failed, sc->total, sc->s->runs[i].name, what, who);
  if (secs >= 0) printf(" in %.0f s", secs);
  if (sc->s->runs[i].state == SW_FAILED) {
    char dir[1200];
    sw_run_dir(sc->s, i, dir, sizeof dir);
    printf(" (exit %d; see %s/sweep.log)", sc->s->runs[i].exit, dir);
  }
  printf("\n");
  fflush(stdout);
}

/* The end of run i (from a local slot or a worker rank). */
static void finish(sched *sc, int i, sw_state st, int code, double secs, int rank) {
  sw_run *r = &sc->s->runs[i];
  r->state = st, r->exit = code, r->seconds = secs;
  if (st == SW_DONE) sc->done++, report(sc, i, sc->s->eval ? "trained and evaluated" : "trained", secs, rank);
  else if (st == SW_FAILED) sc->failed++, report(sc, i, "failed", secs, rank);
  else if (!sc->quiet) printf("%s: interrupted (resumable)\n", r->name);
  save(sc);
}

static int next_pending(const sw_sweep *s) {
  for (int i = 0; i < s->nruns; i++)
    if (s->runs[i].state == SW_PENDING) return i;
  return -1;
}

static int start(sched *sc, slot *sl, int i, int phase) {
  pid_t pid = spawn(sc->s, i, phase, &sc->rn);
  if (pid < 0) {
    finish(sc, i, SW_FAILED, 2, 0, -1);
    return -1;
  }
  if (phase == 0) sl->t0 = now_s();
  sl->pid = pid, sl->run = i, sl->phase = phase;
  sc->s->runs[i].state = phase ? SW_EVALUATING : SW_TRAINING;
  save(sc);
  return 0;
}

/* A local child ended: the next phase, or the run's end. */
static void reap(sched *sc, slot *sl, int st) {
  int i = sl->run, code = child_code(st);
  double secs = now_s() - sl->t0;
  sl->pid = 0;
  if (code == 0 && sl->phase == 0 && sc->s->eval && !stop_sweep) {
    start(sc, sl, i, 1);
    return;
  }
  if (code == 0 && (sl->phase == 1 || !sc->s->eval)) finish(sc, i, SW_DONE, 0, secs, -1);
  else if (code == 0 || code == 130) finish(sc, i, SW_PENDING, 0, secs, -1);
  else finish(sc, i, SW_FAILED, code, secs, -1);
}

/* Messages of a sweep under MPI (ints): a worker's request, carrying the end of its last run,
 * and rank 0's answer. */
enum { MSG_READY = 1, MSG_RUN = 2, MSG_STOP = 3 };

/* Rank 0 (or the only process): local slots, and the other ranks when there are any. */
static int schedule(sched *sc, int jobs) {
  slot sl[64] = {{0}};
  int workers = cli_mpi_size() - 1;
  for (;;) {
    for (int k = 0; k < jobs && !stop_sweep; k++) {
      int i;
      if (!sl[k].pid && (i = next_pending(sc->s)) >= 0) start(sc, &sl[k], i, 0);
    }
    int busy = 0;
    for (int k = 0; k < jobs; k++) busy += sl[k].pid != 0;
    if (!busy && !workers) break;
    if (workers) { /* poll: the ranks' messages and the local children */
      int src, msg[5];
      while (cli_mpi_poll(&src, msg, 5)) {
        if (msg[1] >= 0) {
          finish(sc, msg[1], (sw_state)msg[2], msg[3], msg[4] / 10.0, src);
        }
        int i = stop_sweep ? -1 : next_pending(sc->s);
        int ans[2] = {i >= 0 ? MSG_RUN : MSG_STOP, i};
        if (i >= 0) {
          sc->s->runs[i].state = SW_TRAINING;
          save(sc);
        } else {
          workers--;
        }
        if (cli_mpi_send(src, ans, 2)) {
          fprintf(stderr, "knobs: sweep: cannot reach rank %d\n", src);
          cli_mpi_abort(2);
        }
      }
      int st;
      pid_t pid;
      while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        for (int k = 0; k < jobs; k++)
          if (sl[k].pid == pid) reap(sc, &sl[k], st);
      if (stop_sweep)
        for (int k = 0; k < jobs; k++)
          if (sl[k].pid) kill(sl[k].pid, SIGINT);
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    int st;
    pid_t pid = waitpid(-1, &st, 0);
    if (pid < 0) {
      if (errno == EINTR) { /* a signal: pass it to the children (a terminal's Ctrl-C reached them already) */
        for (int k = 0; k < jobs; k++)
          if (sl[k].pid) kill(sl[k].pid, SIGINT);
        continue;
      }
      break;
    }
    for (int k = 0; k < jobs; k++)
      if (sl[k].pid == pid) reap(sc, &sl[k], st);
  }
  return 0;
}

/* A worker rank: ask rank 0 for runs until it says stop. */
static void work(const sw_sweep *s, const runner *rn) {
  int msg[5] = {MSG_READY, -1, 0, 0, 0};
  for (;;) {
    int ans[2];
    if (cli_mpi_send(0, msg, 5) || cli_mpi_recv(0, ans, 2)) cli_mpi_abort(2);
    if (ans[0] != MSG_RUN || ans[1] < 0 || ans[1] >= s->nruns) return;
    double t0 = now_s();
    int code;
    sw_state st = run_blocking(s, ans[1], rn, &code);
    msg[1] = ans[1], msg[2] = (int)st, msg[3] = code, msg[4] = (int)((now_s() - t0) * 10);
  }
}

/* ---- the command ----------------------------------------------------------------------------- */

/* The train flags after "--" as shared settings ("--lr 1e-4", "--arch=mlp"); 0 or 1 (reported). */
static int extra_settings(int argc, char **argv, sw_sweep *s) {
  static const char *const managed[] = {"out", "resume", "overwrite", "quiet", "threads", "init_from_sweep", NULL};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) || !a[2]) return cli_usage_error("sweep", "after --: '%s' is not a --flag of knobs train", a);
    char key[48], val[160];
    const char *eq = strchr(a, '=');
    size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (kl >= sizeof key) return cli_usage_error("sweep", "after --: flag '%s' is too long", a);
    memcpy(key, a + 2, kl);
    key[kl] = 0;
    for (char *c = key; *c; c++)
      if (*c == '-') *c = '_';
    if (eq) snprintf(val, sizeof val, "%s", eq + 1);
    else if (i + 1 < argc) snprintf(val, sizeof val, "%s", argv[++i]);
    else return cli_usage_error("sweep", "after --: %s needs a value", a);
    for (int k = 0; managed[k]; k++)
      if (!strcmp(key, managed[k])) return cli_usage_error("sweep", "after --: %s is set by the sweep itself", a);
    for (int k = 0; k < s->nshared; k++)
      if (!strcmp(s->shared[k].key, key)) return cli_usage_error("sweep", "--%s is given twice", a + 2);
    if (s->nshared == SW_MAX_SET) return cli_usage_error("sweep", "too many train flags");
    snprintf(s->shared[s->nshared].key, sizeof s->shared[0].key, "%s", key);
    snprintf(s->shared[s->nshared].val, sizeof s->shared[0].val, "%s", val);
    s->nshared++;
  }
  return 0;
}

static int add_shared(sw_sweep *s, const char *key, const char *val) {
  if (!val) return 0;
  for (int k = 0; k < s->nshared; k++)
    if (!strcmp(s->shared[k].key, key)) return cli_usage_error("sweep", "--%s is given twice (before and after --)", key);
  if (s->nshared == SW_MAX_SET) return cli_usage_error("sweep", "too many train flags");
  snprintf(s->shared[s->nshared].key, sizeof s->shared[0].key, "%s", key);
  snprintf(s->shared[s->nshared].val, sizeof s->shared[0].val, "%s", val);
  s->nshared++;
  return 0;
}

/* The sweep as given against the one in its folder: the same grid, shared settings (but
 * steps) and evaluation, else a usage error; a changed steps makes every run pending. */
static int match_existing(sw_sweep *given, const sw_sweep *old) {
  int same = !strcmp(given->grid, old->grid) && given->eval == old->eval && !strcmp(given->eval_args, old->eval_args);
  int steps_changed = 0;
  for (int pass = 0; pass < 2 && same; pass++) {
    const sw_sweep *a = pass ? old : given, *b = pass ? given : old;
    for (int k = 0; k < a->nshared && same; k++) {
      int found = 0;
      for (int j = 0; j < b->nshared && !found; j++)
        if (!strcmp(a->shared[k].key, b->shared[j].key)) {
          found = 1;
          if (strcmp(a->shared[k].val, b->shared[j].val)) {
            if (!strcmp(a->shared[k].key, "steps")) steps_changed = 1;
            else same = 0;
          }
        }
      if (!found) same = 0;
    }
  }
  if (!same)
    return cli_usage_error("sweep", "%s holds another sweep (grid '%s'); continue it with --resume %s, or choose "
                           "another --out", old->dir, old->grid, old->dir);
  for (int i = 0; i < given->nruns; i++) {
    given->runs[i].state = old->runs[i].state, given->runs[i].exit = old->runs[i].exit;
    given->runs[i].seconds = old->runs[i].seconds;
    if (steps_changed) given->runs[i].state = SW_PENDING;
  }
  return 0;
}

/* --eval's flags: knobs eval's, but not those the sweep sets; 0 or 1 (reported). */
static int check_eval_args(const char *args) {
  static const char *const managed[] = {"--model", "--out", "--quiet", "--threads", "--json", NULL};
  if (strlen(args) >= sizeof ((sw_sweep *)0)->eval_args) return cli_usage_error("sweep", "--eval is too long");
  char buf[512];
  snprintf(buf, sizeof buf, "%s", args);
  for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
    for (int k = 0; managed[k]; k++)
      if (!strncmp(t, managed[k], strlen(managed[k])) && (!t[strlen(managed[k])] || t[strlen(managed[k])] == '='))
        return cli_usage_error("sweep", "--eval: %s is set by the sweep itself", managed[k]);
  return 0;
}

/* Take the sweep folder's lock for this process's life (released at exit); 0 or 2 (reported). */
static int lock_sweep(const char *dir) {
  char p[1000];
  snprintf(p, sizeof p, "%s/sweep.lock", dir);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return cli_fail("sweep", "cannot open %s: %s", p, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0)
    return cli_fail("sweep", "%s is in use by another knobs sweep (it holds %s)", dir, p);
  return 0;
}

int cmd_sweep(int argc, char **argv); /* listed in main.c */

int cmd_sweep(int argc, char **argv) {
  const char *cmd = "sweep";
  int split = argc;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--")) {
      split = i;
      break;
    }
  const char *grid = NULL, *out = NULL, *data = NULL, *eval_args = NULL, *resume = NULL, *steps = NULL;
  int jobs = 1, threads = 0, no_eval = 0, quiet = 0, dry = 0;
  cli_opt o[] = {
      {"--grid", OPT_STR, &grid, 0, 0, "SPEC", "settings to cross: \"model=betavae,tcvae; beta=1,4,8; seed=0..4\" ('|' joins grids)", 0},
      {"--out", OPT_STR, &out, 0, 0, "DIR", "the sweep's folder (re-running the same sweep there continues it)", 0},
      {"--resume", OPT_STR, &resume, 0, 0, "DIR", "continue the sweep in DIR as its sweep.json says", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset of every run (default: the models' default)", 0},
      {"--steps", OPT_STR, &steps, 0, 0, "N", "steps of every run (a larger value continues finished runs)", 0},
      {"--jobs", OPT_INT, &jobs, 1, 64, "J", "runs at once on this machine (per rank under mpirun) [1]", 0},
      {"--threads", OPT_INT, &threads, 0, 256, "T", "threads per run (0: the cores / jobs) [0]", 0},
      {"--eval", OPT_STR, &eval_args, 0, 0, "ARGS", "knobs eval's flags for every run, e.g. \"--metrics dci,mig --num-train 5000\" (default: all metrics)", 0},
      {"--no-eval", OPT_FLAG, &no_eval, 0, 0, NULL, "train only", 0},
      {"--dry-run", OPT_FLAG, &dry, 0, 0, NULL, "list the runs and stop", 0},
      {"--quiet", OPT_FLAG, &quiet, 0, 0, NULL, "print nothing but errors", 0},
  };
  int n = (int)(sizeof o / sizeof o[0]);
  int r = cli_parse(cmd, "--grid SPEC --out DIR [options] [-- knobs train flags]  |  --resume DIR", split, argv, o,
                    n, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  static sw_sweep s, old;
  memset(&s, 0, sizeof s);
  char err[700];
  int rank = cli_mpi_rank();
  if (resume) {
    if (grid || out || data || eval_args || steps || no_eval || split < argc)
      return cli_usage_error(cmd, "--resume takes the sweep as its sweep.json says: give only --jobs, --threads, --quiet");
    if (sw_read(resume, &s, err, sizeof err)) return cli_fail(cmd, "%s", err);
  } else {
    if (!grid) return cli_usage_error(cmd, "--grid SPEC is required (or --resume DIR)");
    if (!out) return cli_usage_error(cmd, "--out DIR is required");
    if (strlen(grid) >= sizeof s.grid) return cli_usage_error(cmd, "--grid is too long");
    snprintf(s.dir, sizeof s.dir, "%s", out);
    snprintf(s.grid, sizeof s.grid, "%s", grid);
    if (eval_args && no_eval) return cli_usage_error(cmd, "--eval and --no-eval exclude each other");
    s.eval = !no_eval;
    if (eval_args && (r = check_eval_args(eval_args))) return r;
    snprintf(s.eval_args, sizeof s.eval_args, "%s", eval_args ? eval_args : "");
    if (add_shared(&s, "data", data) || add_shared(&s, "steps", steps) ||
        extra_settings(argc - split - (split < argc), argv + split + (split < argc), &s))
      return 1;
    if (sw_expand(&s, err, sizeof err)) return cli_usage_error(cmd, "%s", err);
    char sj[1000];
    snprintf(sj, sizeof sj, "%s/sweep.json", s.dir);
    if (file_exists(sj)) {
      if (sw_read(s.dir, &old, err, sizeof err)) return cli_fail(cmd, "%s", err);
      r = match_existing(&s, &old);
      sw_free(&old);
      if (r) return r;
    }
  }
  if (dry) {
    if (rank == 0)
      for (int i = 0; i < s.nruns; i++) {
        printf("%-40s %-10s", s.runs[i].name, sw_state_name(s.runs[i].state));
        for (int k = 0; k < s.runs[i].nset; k++) printf(" %s=%s", s.runs[i].set[k].key, s.runs[i].set[k].val);
        printf("\n");
      }
    sw_free(&s);
    return 0;
  }
  sched sc = {.s = &s, .quiet = quiet, .total = s.nruns};
  ssize_t k = readlink("/proc/self/exe", sc.rn.exe, sizeof sc.rn.exe - 1);
  if (k <= 0) return cli_fail(cmd, "cannot find this program (/proc/self/exe)");
  sc.rn.exe[k] = 0;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  sc.rn.threads = threads ? threads : (int)(cores / jobs > 1 ? cores / jobs : 1);
  if (cli_mpi_size() > 1 && !threads) sc.rn.threads = 1;
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (rank > 0) { /* a worker rank: runs as rank 0 hands them out */
    work(&s, &sc.rn);
    sw_free(&s);
    return 0;
  }
  int made;
  if ((r = cli_out_dir(cmd, s.dir, &made)) || (r = lock_sweep(s.dir))) {
    sw_free(&s);
    return r;
  }
  for (int i = 0; i < s.nruns; i++) { /* a run left training or evaluating was interrupted */
    if (s.runs[i].state == SW_TRAINING || s.runs[i].state == SW_EVALUATING || s.runs[i].state == SW_FAILED)
      s.runs[i].state = SW_PENDING;
    if (s.runs[i].state == SW_DONE) sc.done++;
  }
  save(&sc);
  char ranks[48] = "";
  if (cli_mpi_size() > 1) snprintf(ranks, sizeof ranks, " on rank 0, and %d more ranks", cli_mpi_size() - 1);
  if (!quiet)
    printf("knobs sweep: %d runs (%d done before) in %s, %d job%s x %d thread%s%s\n", s.nruns, sc.done, s.dir, jobs,
           jobs == 1 ? "" : "s", sc.rn.threads, sc.rn.threads == 1 ? "" : "s", ranks);
  fflush(stdout);
  schedule(&sc, jobs);
  int pending = 0;
  for (int i = 0; i < s.nruns; i++) pending += s.runs[i].state != SW_DONE && s.runs[i].state != SW_FAILED;
  if (!quiet) printf("done: %d of %d runs finished, %d failed, %d to do (%s/sweep.json)\n", sc.done, s.nruns,
                     sc.failed, pending, s.dir);
  sw_free(&s);
  if (stop_sweep || pending) {
    fprintf(stderr, "knobs: sweep: interrupted; continue with: knobs sweep --resume %s\n", sc.s->dir);
    return 130;
  }
  return sc.failed ? 2 : 0;
}
