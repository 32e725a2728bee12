/* mpi.c: knobs under an MPI launcher (mpirun, srun). The command is built with Open MPI when
 * mpicc exists at build time (KNOBS_HAVE_MPI; `knobs --version` says which); the library never
 * links MPI: data-parallel training reaches it through knobs_parallel's two sums, given here.
 *
 * MPI starts only when a launcher started this process (its environment says so) and
 * KNOBS_MPI is not 0, so a plain `knobs train` pays nothing, and a child that a sweep's rank
 * starts (with KNOBS_MPI=0) is an ordinary process. Two commands use the ranks: train (one
 * run, data-parallel) and sweep (the runs spread over the ranks); any other command under more
 * than one rank is refused, since every rank would do the same work into the same files.
 *
 * The sums give every rank the same bytes: a float sum is not associative, so the reduction is
 * an MPI operation declared non-commutative, which MPI applies in rank order, and every run
 * ends by checking that all ranks hold the same model digest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifdef KNOBS_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_on = 0;

/* Launched by an MPI launcher: Open MPI's mpirun, PMIx or PMI (Slurm's srun). */
static int launched(void) {
  const char *k = getenv("KNOBS_MPI");
  if (k && !strcmp(k, "0")) return 0;
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

#ifdef KNOBS_HAVE_MPI
static MPI_Op op_f32, op_f64;

/* inout = in + inout, element by element; declared non-commutative, so MPI combines the ranks'
 * buffers in rank order and the sum has one rounding on every rank */
static void sum_f32_op(void *in, void *inout, int *len, MPI_Datatype *t) {
  (void)t;
  const float *a = in;
  float *b = inout;
  for (int i = 0; i < *len; i++) b[i] = a[i] + b[i];
}
static void sum_f64_op(void *in, void *inout, int *len, MPI_Datatype *t) {
  (void)t;
  const double *a = in;
  double *b = inout;
  for (int i = 0; i < *len; i++) b[i] = a[i] + b[i];
}
#endif

int cli_mpi_start(int *argc, char ***argv) {
  if (!launched()) return 0;
#ifdef KNOBS_HAVE_MPI
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    fprintf(stderr, "knobs: MPI_Init failed\n");
    return 2;
  }
  g_on = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Op_create(sum_f32_op, 0, &op_f32);
  MPI_Op_create(sum_f64_op, 0, &op_f64);
  return 0;
#else
  const char *n = getenv("OMPI_COMM_WORLD_SIZE");
  if (!n) n = getenv("PMI_SIZE");
  if (n && atoi(n) > 1) {
    fprintf(stderr, "knobs: started by an MPI launcher with %s processes, but this knobs was built without MPI "
            "(no mpicc when it was built; install libopenmpi-dev and rebuild): every process would do the same "
            "work into the same files\n", n);
    return 2;
  }
  return 0;
#endif
}

void cli_mpi_end(void) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) {
    MPI_Op_free(&op_f32);
    MPI_Op_free(&op_f64);
    MPI_Finalize();
  }
#endif
  g_on = 0;
}

int cli_mpi_rank(void) { return g_rank; }
int cli_mpi_size(void) { return g_size; }

void cli_mpi_abort(int code) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
#endif
  exit(code);
}

const char *cli_mpi_info(void) {
#ifdef KNOBS_HAVE_MPI
  static char buf[MPI_MAX_LIBRARY_VERSION_STRING + 64];
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(v, &n);
  v[strcspn(v, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." */
  snprintf(buf, sizeof buf, "%s (mpirun -np N knobs train|sweep)", v);
  return buf;
#else
  return "none (built without mpicc: knobs runs as one process)";
#endif
}

#ifdef KNOBS_HAVE_MPI
typedef struct {
  volatile int *stop;
} par_ctx;
static par_ctx g_par;

/* MPI counts are ints: long blocks go in pieces */
static int sum_any(void *buf, size_t n, MPI_Datatype t, MPI_Op op, size_t size) {
  char *p = buf;
  while (n > 0) {
    int k = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
    if (MPI_Allreduce(MPI_IN_PLACE, p, k, t, op, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
    p += (size_t)k * size, n -= (size_t)k;
  }
  return 0;
}
static int par_sum_f32(void *ctx, float *buf, size_t n) { return sum_any(buf, n, MPI_FLOAT, op_f32, sizeof *buf); }
/* The loss terms, once per step; with them the ranks agree on stopping: a stop asked on any
 * rank (a signal) stops every rank after the same step. */
static int par_sum_f64(void *ctx, double *buf, size_t n) {
  par_ctx *c = ctx;
  if (sum_any(buf, n, MPI_DOUBLE, op_f64, sizeof *buf)) return 1;
  int mine = c->stop && *c->stop, any = 0;
  if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
  if (any && c->stop) *c->stop = 1;
  return 0;
}
#endif

knobs_parallel cli_mpi_parallel(volatile int *stop) {
  knobs_parallel p = {.rank = g_rank, .size = g_size};
#ifdef KNOBS_HAVE_MPI
  g_par.stop = stop;
  p.sum_f32 = par_sum_f32, p.sum_f64 = par_sum_f64, p.ctx = &g_par;
#else
  (void)stop;
#endif
  return p;
}

int cli_mpi_bcast(void *buf, int bytes) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) return MPI_Bcast(buf, bytes, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS;
#endif
  (void)buf, (void)bytes;
  return 0;
}

int cli_mpi_same_u64(uint64_t v) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) {
    unsigned long long lo = v, hi = v, mn = 0, mx = 0;
    MPI_Allreduce(&lo, &mn, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&hi, &mx, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return mn == mx;
  }
#endif
  (void)v;
  return 1;
}

/* ---- messages between a sweep's ranks: small int arrays on one tag ------------------------ */
#define TAG_SWEEP 7

int cli_mpi_send(int dest, const int *msg, int n) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) return MPI_Send(msg, n, MPI_INT, dest, TAG_SWEEP, MPI_COMM_WORLD) != MPI_SUCCESS;
#endif
  (void)dest, (void)msg, (void)n;
  return 1;
}

int cli_mpi_poll(int *src, int *msg, int n) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_SWEEP, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return 0;
    MPI_Recv(msg, n, MPI_INT, st.MPI_SOURCE, TAG_SWEEP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    *src = st.MPI_SOURCE;
    return 1;
  }
#endif
  (void)src, (void)msg, (void)n;
  return 0;
}

int cli_mpi_recv(int src, int *msg, int n) {
#ifdef KNOBS_HAVE_MPI
  if (g_on) return MPI_Recv(msg, n, MPI_INT, src, TAG_SWEEP, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS;
#endif
  (void)src, (void)msg, (void)n;
  return 1;
}
