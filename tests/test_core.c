/* test_core.c: src/core on its own (the other tests use it only through layers and models).
 * - rng: xoshiro256** against the published algorithm (first outputs of the state {1,2,3,4})
 *   and the seeding formula (splitmix64 over (seed, stream)), so a change that would alter
 *   every run's numbers fails here first; same (seed, stream) = same numbers, other streams
 *   and seeds differ; a copied state forks; uniform in [0,1), below(n) in range and unbiased
 *   to a chi-square bound, normal's moments, permutations are permutations.
 * - errors: the detail is per thread (a thread's error leaves the caller's alone), the prefix
 *   chains, an over-long detail is cut and stays terminated, the status follows.
 * - kn_split: disjoint contiguous slices covering [0, n) whose sizes differ by at most one.
 * - the pool: every task runs once per thread with the right (tid, nt), over 300 runs; a NULL
 *   pool and a run from inside a task run inline with nt = 1; kn_sgemm split by rows and by
 *   columns equals the single-threaded product bitwise (each slice is its own GEMM of the same
 *   shape in the reduced dimension).
 * - kn_alloc: 64-byte aligned and zeroed; kn_strfmt formats. */
#include <pthread.h>
#include <stdatomic.h>

#include "t.h"
#include "core/core.h"

/* ---- rng -------------------------------------------------------------------------------- */
static uint64_t ref_splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t ref_xoshiro(uint64_t *s) {
  uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
  return out;
}

static void test_rng(void) {
  T_CASE("rng known answers");
  kn_rng r = {{1, 2, 3, 4}};
  const uint64_t want[4] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull};
  for (int i = 0; i < 4; i++) {
    uint64_t v = kn_rng_u64(&r);
    CHECK(v == want[i], "xoshiro256** output %d of {1,2,3,4}: %llu, want %llu", i, (unsigned long long)v,
          (unsigned long long)want[i]);
  }
  uint64_t seed = 12345, stream = KN_STREAM_DATA + 7, x = seed, s[4];
  x = ref_splitmix(&x) ^ (stream * 0xD1B54A32D192ED03ull);
  for (int i = 0; i < 4; i++) s[i] = ref_splitmix(&x);
  kn_rng_seed(&r, seed, stream);
  CHECK(!memcmp(r.s, s, sizeof s), "seeding differs from splitmix64 over (seed, stream)");
  int same = 1;
  for (int i = 0; i < 100; i++) same &= kn_rng_u64(&r) == ref_xoshiro(s);
  CHECK(same, "stream differs from xoshiro256**");

  T_CASE("rng streams and seeds");
  kn_rng a, b, c, d;
  kn_rng_seed(&a, 7, KN_STREAM_NOISE + 3), kn_rng_seed(&b, 7, KN_STREAM_NOISE + 3);
  kn_rng_seed(&c, 7, KN_STREAM_NOISE + 4), kn_rng_seed(&d, 8, KN_STREAM_NOISE + 3);
  int eq_ab = 1, eq_ac = 0, eq_ad = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t va = kn_rng_u64(&a), vb = kn_rng_u64(&b), vc = kn_rng_u64(&c), vd = kn_rng_u64(&d);
    eq_ab &= va == vb, eq_ac += va == vc, eq_ad += va == vd;
  }
  CHECK(eq_ab, "same seed and stream gave other numbers");
  CHECK(eq_ac == 0 && eq_ad == 0, "other stream / seed repeated %d / %d of 1000 draws", eq_ac, eq_ad);
  /* streams that differ in one high bit (the KN_STREAM_* bases) are as different */
  kn_rng_seed(&a, 7, KN_STREAM_DATA), kn_rng_seed(&b, 7, KN_STREAM_NOISE);
  CHECK(kn_rng_u64(&a) != kn_rng_u64(&b), "data and noise streams start alike");
  kn_rng_seed(&a, 0, 0);
  CHECK(a.s[0] | a.s[1] | a.s[2] | a.s[3], "seed 0 stream 0 gave the absorbing all-zero state");
  /* a copy forks: both continue identically */
  kn_rng_seed(&a, 99, 1);
  for (int i = 0; i < 5; i++) kn_rng_u64(&a);
  b = a;
  CHECK(kn_rng_u64(&a) == kn_rng_u64(&b) && kn_rng_uniform(&a) == kn_rng_uniform(&b), "a copied state diverged");

  T_CASE("rng distributions");
  kn_rng_seed(&a, 1, 2);
  double lo = 1, hi = 0;
  for (int i = 0; i < 100000; i++) {
    double u = kn_rng_uniform(&a);
    lo = fmin(lo, u), hi = fmax(hi, u);
  }
  CHECK(lo >= 0 && hi < 1 && lo < 1e-3 && hi > 1 - 1e-3, "uniform range [%g, %g]", lo, hi);
  /* below(n): in range, and for n = 7 (not a power of two) a chi-square of 60000 draws under
   * the 0.1% point of 6 degrees of freedom (22.46) */
  long cnt[7] = {0};
  int bad = 0;
  for (int i = 0; i < 70000; i++) {
    uint32_t v = kn_rng_below(&a, 7);
    if (v >= 7) bad++;
    else cnt[v]++;
  }
  double chi = 0;
  for (int k = 0; k < 7; k++) chi += (cnt[k] - 10000.0) * (cnt[k] - 10000.0) / 10000.0;
  CHECK(!bad && chi < 22.46, "below(7): %d out of range, chi-square %.2f", bad, chi);
  CHECK(kn_rng_below(&a, 1) == 0, "below(1)");
  int big_hi = 0;
  for (int i = 0; i < 1000; i++) big_hi |= kn_rng_below(&a, 0xFFFFFFFFu) > 0xF0000000u;
  CHECK(big_hi, "below(2^32 - 1) never reaches its top sixteenth");
  float z[20001];
  kn_rng_normal_fill(&a, z, 20001); /* odd: the last one from kn_rng_normal */
  double m = 0, v2 = 0;
  for (int i = 0; i < 20001; i++) m += z[i];
  m /= 20001;
  for (int i = 0; i < 20001; i++) v2 += (z[i] - m) * (z[i] - m);
  v2 /= 20000;
  CHECK(fabs(m) < 0.03 && fabs(v2 - 1) < 0.04 && isfinite(z[20000]), "normal mean %g var %g", m, v2);
  float uf[1000];
  kn_rng_uniform_fill(&a, uf, 1000, -2, 3);
  int in = 1;
  for (int i = 0; i < 1000; i++) in &= uf[i] >= -2 && uf[i] <= 3;
  CHECK(in, "uniform_fill outside [lo, hi]");
  int perm[257], seen[257] = {0}, moved = 0;
  kn_rng_permutation(&a, perm, 257);
  int okp = 1;
  for (int i = 0; i < 257; i++) {
    okp &= perm[i] >= 0 && perm[i] < 257 && !seen[perm[i]];
    if (perm[i] >= 0 && perm[i] < 257) seen[perm[i]] = 1;
    moved += perm[i] != i;
  }
  CHECK(okp && moved > 200, "permutation: valid %d, %d of 257 moved", okp, moved);
  kn_rng_permutation(&a, perm, 1);
  CHECK(perm[0] == 0, "permutation of 1");
}

/* ---- errors ----------------------------------------------------------------------------- */
static void *err_thread(void *arg) {
  char *out = arg;
  snprintf(out, 256, "%s", knobs_last_error()); /* a new thread starts without detail */
  kn_err(KNOBS_ERR_DATA, "thread detail %d", 42);
  size_t n = strlen(out);
  snprintf(out + n, 256 - n, "|%s|%d", knobs_last_error(), (int)knobs_last_status());
  return NULL;
}

static void test_errors(void) {
  T_CASE("error detail per thread");
  CHECK(kn_err(KNOBS_ERR_IO, "%s: cannot open", "a.npy") == KNOBS_ERR_IO, "kn_err returns its status");
  pthread_t th;
  char got[256] = "";
  CHECK(!pthread_create(&th, NULL, err_thread, got) && !pthread_join(th, NULL), "pthread");
  char want[256];
  snprintf(want, sizeof want, "no error detail|thread detail 42|%d", (int)KNOBS_ERR_DATA);
  CHECK(!strcmp(got, want), "in the thread: '%s', want '%s'", got, want);
  CHECK(!strcmp(knobs_last_error(), "a.npy: cannot open") && knobs_last_status() == KNOBS_ERR_IO,
        "the caller's detail became '%s' (%d)", knobs_last_error(), (int)knobs_last_status());

  T_CASE("error prefix and truncation");
  CHECK(kn_err_prefix(KNOBS_ERR_FORMAT, "loading %s", "run/") == KNOBS_ERR_FORMAT, "prefix returns its status");
  CHECK(!strcmp(knobs_last_error(), "loading run/: a.npy: cannot open") && knobs_last_status() == KNOBS_ERR_FORMAT,
        "prefixed: '%s'", knobs_last_error());
  char longs[3000];
  memset(longs, 'x', sizeof longs - 1);
  longs[sizeof longs - 1] = 0;
  kn_err(KNOBS_ERR_ARG, "%s", longs);
  size_t n1 = strlen(knobs_last_error());
  kn_err_prefix(KNOBS_ERR_ARG, "%.400s", longs);
  size_t n2 = strlen(knobs_last_error());
  CHECK(n1 > 1000 && n1 < 3000 && n2 >= n1 - 10 && n2 < 3000 && knobs_last_error()[400] == ':',
        "long details: %zu then %zu bytes", n1, n2);
  knobs_clear_error();
  CHECK(!strcmp(knobs_last_error(), "no error detail") && knobs_last_status() == KNOBS_OK, "clear: '%s'",
        knobs_last_error());
  CHECK(!strcmp(knobs_status_name(KNOBS_ERR_NOMEM), "out of memory"), "status name");
}

/* ---- kn_split --------------------------------------------------------------------------- */
static void test_split(void) {
  T_CASE("kn_split");
  int bad = 0;
  for (long n = 0; n <= 70; n++)
    for (int nt = 1; nt <= 9; nt++) {
      long next = 0, mn = n + 1, mx = -1;
      for (int t = 0; t < nt; t++) {
        long lo, hi;
        kn_split(n, t, nt, &lo, &hi);
        if (lo != next || hi < lo) bad++; /* contiguous, in order, disjoint */
        next = hi;
        mn = hi - lo < mn ? hi - lo : mn, mx = hi - lo > mx ? hi - lo : mx;
      }
      if (next != n || mx - mn > 1) bad++; /* covers [0, n), balanced */
    }
  CHECK(!bad, "%d bad splits", bad);
  long lo, hi;
  kn_split(1L << 40, 2, 3, &lo, &hi);
  CHECK(hi == 1L << 40 && hi - lo == (1L << 40) / 3, "large n: [%ld, %ld)", lo, hi);
}

/* ---- the pool --------------------------------------------------------------------------- */
typedef struct {
  atomic_int runs[8];
  atomic_int bad_nt, total;
  int want_nt;
  kn_pool *pool;
  atomic_int inner_nt;
} pool_ctx;

static void count_task(void *ctx, int tid, int nt) {
  pool_ctx *c = ctx;
  if (nt != c->want_nt || tid < 0 || tid >= nt) atomic_fetch_add(&c->bad_nt, 1);
  else atomic_fetch_add(&c->runs[tid], 1);
  atomic_fetch_add(&c->total, 1);
}

static void inner_task(void *ctx, int tid, int nt) {
  pool_ctx *c = ctx;
  if (tid != 0 || nt != 1) atomic_fetch_add(&c->bad_nt, 1);
  atomic_fetch_add(&c->total, 1);
}

static void outer_task(void *ctx, int tid, int nt) {
  pool_ctx *c = ctx;
  kn_pool_run(c->pool, inner_task, c); /* from inside a task: inline, nt = 1 */
  atomic_fetch_add(&c->inner_nt, nt);
  (void)tid;
}

static void test_pool(void) {
  T_CASE("pool runs every task");
  for (int nth = 1; nth <= 4; nth++) {
    kn_pool *p = kn_pool_create(nth);
    CHECK(p && kn_pool_size(p) == nth, "create %d: %s", nth, knobs_last_error());
    if (!p) continue;
    pool_ctx c = {.want_nt = nth};
    for (int r = 0; r < 300; r++) kn_pool_run(p, count_task, &c);
    int ok = atomic_load(&c.bad_nt) == 0 && atomic_load(&c.total) == 300 * nth;
    for (int t = 0; t < nth; t++) ok &= atomic_load(&c.runs[t]) == 300;
    CHECK(ok, "%d threads: %d runs, %d with a wrong (tid, nt)", nth, atomic_load(&c.total), atomic_load(&c.bad_nt));
    kn_pool_free(p);
  }
  pool_ctx c = {.want_nt = 1};
  kn_pool_run(NULL, count_task, &c);
  CHECK(kn_pool_size(NULL) == 1 && atomic_load(&c.runs[0]) == 1 && !atomic_load(&c.bad_nt), "NULL pool");
  kn_pool *p = kn_pool_create(3);
  pool_ctx n = {.pool = p};
  if (p) {
    kn_pool_run(p, outer_task, &n);
    CHECK(atomic_load(&n.total) == 3 && !atomic_load(&n.bad_nt) && atomic_load(&n.inner_nt) == 9,
          "nested run: %d inner tasks, %d wrong", atomic_load(&n.total), atomic_load(&n.bad_nt));
  }

  T_CASE("sgemm splits");
  CHECK(kn_blas_init() == KNOBS_OK, "OpenBLAS: %s", knobs_last_error());
  /* the loaded OpenBLAS runs a core no older than the CPU allows (src/core/blas.c) */
  const char *desc = kn_blas_describe();
  __builtin_cpu_init();
  int old_core = strstr(desc, "kernels Prescott") || strstr(desc, "kernels Core2") || strstr(desc, "kernels Nehalem");
  CHECK(getenv("OPENBLAS_CORETYPE") || !__builtin_cpu_supports("avx2") || !old_core, "BLAS: %s", desc);
  /* shapes that take each path: split by columns (N large), by rows (M >= 2N), and inline */
  const int shapes[][3] = {{8, 1000, 48}, {600, 40, 64}, {3, 5, 7}, {64, 64, 64}};
  kn_rng r;
  kn_rng_seed(&r, 5, 6);
  for (int s = 0; s < 4; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        double *Cd = calloc((size_t)M * N, sizeof(double));
        kn_rng_uniform_fill(&r, A, (size_t)M * K, -1, 1), kn_rng_uniform_fill(&r, B, (size_t)K * N, -1, 1);
        kn_rng_uniform_fill(&r, C1, (size_t)M * N, -1, 1);
        memcpy(C2, C1, sizeof(float) * M * N);
        int lda = ta ? M : K, ldb = tb ? K : N;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
              acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            Cd[i * N + j] = 0.5 * acc + 2.0 * C1[i * N + j];
          }
        kn_sgemm(NULL, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C1, N);
        kn_sgemm(p, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C2, N);
        double worst = 0;
        for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C2[i] - Cd[i]));
        /* 3 threads against 1: the same values up to OpenBLAS's own shape-dependent rounding
         * (see test_nn.c "conv threads"); against float64, K roundings of terms <= 1 */
        CHECK(worst < 1e-5 * K, "M%d N%d K%d ta%d tb%d: |threads - float64| %g", M, N, K, ta, tb, worst);
        CHECK_CLOSE(C2, C1, (size_t)M * N, 1e-5, 1e-5);
        free(A), free(B), free(C1), free(C2), free(Cd);
      }
  kn_pool_free(p);
}

/* ---- memory and strings ----------------------------------------------------------------- */
static void test_alloc(void) {
  T_CASE("kn_alloc");
  int ok = 1;
  for (size_t n = 1; n < 5000; n = n * 3 + 1) {
    unsigned char *q = kn_alloc(n, "test block");
    ok &= q && ((uintptr_t)q & 63) == 0;
    for (size_t i = 0; q && i < n; i++) ok &= q[i] == 0;
    if (q) memset(q, 0xAB, n);
    kn_free(q);
  }
  CHECK(ok, "blocks not 64-byte aligned or not zeroed");
  void *z1 = kn_alloc(0, "empty"), *z2 = kn_alloc(0, "empty");
  CHECK(z1 && z2 && z1 != z2, "kn_alloc(0) gave %p and %p", z1, z2);
  kn_free(z1), kn_free(z2), kn_free(NULL);
  char buf[32];
  kn_strfmt(buf, sizeof buf, "%s.%d", "enc", 12);
  CHECK(!strcmp(buf, "enc.12"), "kn_strfmt: '%s'", buf);
  char *d = kn_strdup("abc");
  CHECK(d && !strcmp(d, "abc"), "kn_strdup");
  free(d);
}

int main(void) {
  test_rng();
  test_errors();
  test_split();
  test_pool();
  test_alloc();
  return t_done();
}
