/* test_lstm.c: the recurrent layers of src/nn/lstm.c (LSTM and GRU, uni- and bidirectional).
 * - vmath: the vectorisable sigmoid and tanh against double precision.
 * - finite differences: every gradient (input, h0, c0, every weight and bias of both
 *   directions) of L = sum(wy * y) + sum(whn * hn) + sum(wcn * cn) with fixed random w, by
 *   fourth-order central differences on the float kernel, with and without initial states,
 *   T = 1 and 5, inline (B = 3, H = 5), and split over 2 threads (B = 4-6, H = 24-32, every
 *   9th entry). Error measure as tests/test_nn.c (ggml's): |analytic - numeric| /
 *   max(|a|, |n|, 1e-2), the worst over each tensor: measured <= 1.8e-3, tolerance 4e-3.
 * - PyTorch tolerance: 1e-5 relative + 1e-5 absolute; measured worst |knobs - torch| /
 *   (1 + |torch|) 2.6e-7.
 * - PyTorch: torch.nn.LSTM / torch.nn.GRU forward and every gradient of the same loss, from
 *   tests/ref/lstm_ref.safetensors (tests/ref/make_lstm_ref.py), parameters loaded by their
 *   torch names, which checks kn_rnn_declare's names and shapes too.
 * - semantics: backward adds, NULL gradients are skipped, NULL initial states are zeros.
 * - determinism: the same bytes twice on 2 threads; 1, 2 and 3 threads within float rounding.
 * - sizes refused, torch's initialisation bounds. */
#include <float.h>

#include "io/io.h"
#include "nn/nn.h"
#include "nn/vmath.h"
#include "t.h"

static kn_rng R;

static void fill(float *x, size_t n, float lo, float hi) { kn_rng_uniform_fill(&R, x, n, lo, hi); }
static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* ---- vmath ------------------------------------------------------------------------------- */
static void test_vmath(void) {
  T_CASE("vmath");
  enum { N = 200001 };
  double ws = 0, wt = 0, wta = 0, tiny = 0;
  for (int i = 0; i < N; i++) {
    double u = (i - N / 2) / (double)(N / 2);
    float x = (float)(u * u * u * 100.0);
    double s = 1.0 / (1.0 + exp(-(double)x)), t = tanh((double)x);
    /* below -87 exp is clamped (vmath.h): sigmoid is then < 2e-38 instead of subnormal */
    if (x > -87.0f) ws = fmax(ws, fabs(kn_sigmoidf(x) - s) / (s * FLT_EPSILON));
    else tiny = fmax(tiny, kn_sigmoidf(x));
    if (t != 0) wt = fmax(wt, fabs(kn_tanhf(x) - t) / (fabs(t) * FLT_EPSILON));
    wta = fmax(wta, fabs(kn_tanhf(x) - t));
  }
  if (getenv("KNOBS_TEST_VERBOSE"))
    printf("vmath: sigmoid %.3g eps, tanh %.3g eps (relative), tanh %.3g absolute\n", ws, wt, wta);
  /* relative error in float32 epsilons: a few roundings of the parts (exp to 1 ulp) */
  CHECK(ws < 3, "sigmoid: relative error %g float32 epsilons against double", ws);
  CHECK(wt < 3, "tanh: relative error %g float32 epsilons against double", wt);
  CHECK(wta < 2 * FLT_EPSILON, "tanh: absolute error %g", wta);
  CHECK(tiny < 2e-38, "sigmoid below -87: %g", tiny);
  CHECK(kn_sigmoidf(-1000.0f) >= 0 && kn_sigmoidf(-1000.0f) < 1e-30f && kn_sigmoidf(1000.0f) == 1.0f &&
            kn_tanhf(1000.0f) == 1.0f && kn_tanhf(-1000.0f) == -1.0f && kn_tanhf(0.0f) == 0.0f,
        "extremes: sigmoid(-1000) %g, sigmoid(1000) %g, tanh(+-1000) %g %g", kn_sigmoidf(-1000.0f),
        kn_sigmoidf(1000.0f), kn_tanhf(1000.0f), kn_tanhf(-1000.0f));
}

/* ---- a layer with its tensors ----------------------------------------------------------- */
typedef struct {
  kn_rnn r;
  kn_net net;
  int T, B, state;
  kn_rnn_seq s;
  float *x, *h0, *c0, *y, *hn, *cn, *ws, *wy, *whn, *wcn, *dx, *dh0, *dc0;
} rig;

static size_t n_y(const rig *g) { return (size_t)g->T * g->B * g->r.D * g->r.H; }
static size_t n_st(const rig *g) { return (size_t)g->r.D * g->B * g->r.H; }

/* A layer declared in its own net under `prefix`; parameters U(-0.8, 0.8) (wider than torch's
 * init so that gates saturate more), inputs and states U(-1, 1). */
static void rig_make(rig *g, const char *prefix, kn_rnn_cell cell, int T, int B, int I, int H, int D,
                     int state) {
  memset(g, 0, sizeof *g);
  g->T = T, g->B = B, g->state = state;
  if (kn_rnn_setup(&g->r, cell, I, H, D)) abort();
  kn_rnn_declare(&g->r, &g->net, prefix, 0);
  if (kn_net_alloc(&g->net, NULL, NULL, 0, 1)) abort();
  kn_rnn_bind(&g->r, &g->net);
  fill(g->net.p, g->net.n_p, -0.8f, 0.8f);
  size_t nx = (size_t)T * B * I;
  g->x = falloc(nx), g->dx = falloc(nx);
  g->y = falloc(n_y(g)), g->wy = falloc(n_y(g));
  g->h0 = falloc(n_st(g)), g->c0 = falloc(n_st(g)), g->hn = falloc(n_st(g)), g->cn = falloc(n_st(g));
  g->whn = falloc(n_st(g)), g->wcn = falloc(n_st(g)), g->dh0 = falloc(n_st(g)), g->dc0 = falloc(n_st(g));
  g->ws = falloc(kn_rnn_workspace_size(&g->r, T, B));
  fill(g->x, nx, -1, 1), fill(g->wy, n_y(g), -1, 1);
  fill(g->h0, n_st(g), -1, 1), fill(g->c0, n_st(g), -1, 1);
  fill(g->whn, n_st(g), -1, 1), fill(g->wcn, n_st(g), -1, 1);
  int lstm = cell == KN_RNN_LSTM;
  g->s = (kn_rnn_seq){T, B, g->x, state ? g->h0 : NULL, state && lstm ? g->c0 : NULL, g->y, g->hn,
                      lstm ? g->cn : NULL, g->ws};
}

static void rig_free(rig *g) {
  kn_net_free(&g->net);
  float *a[] = {g->x, g->h0, g->c0, g->y, g->hn, g->cn, g->ws, g->wy, g->whn, g->wcn, g->dx, g->dh0, g->dc0};
  for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
}

static double rig_loss(rig *g, kn_pool *p) {
  if (kn_rnn_forward(p, &g->r, &g->s)) abort();
  double L = 0;
  for (size_t i = 0; i < n_y(g); i++) L += (double)g->wy[i] * g->y[i];
  for (size_t i = 0; i < n_st(g); i++) {
    L += (double)g->whn[i] * g->hn[i];
    if (g->s.cn) L += (double)g->wcn[i] * g->cn[i];
  }
  return L;
}

/* Zero every gradient, then forward and backward with dy = wy, dhn = whn, dcn = wcn. */
static void rig_grads(rig *g, kn_pool *p) {
  memset(g->net.g, 0, sizeof(float) * g->net.n_p);
  memset(g->dx, 0, sizeof(float) * (size_t)g->T * g->B * g->r.I);
  memset(g->dh0, 0, sizeof(float) * n_st(g));
  memset(g->dc0, 0, sizeof(float) * n_st(g));
  rig_loss(g, p);
  kn_rnn_grad d = {g->wy, g->whn, g->s.cn ? g->wcn : NULL, g->dx, g->s.h0 ? g->dh0 : NULL,
                   g->s.c0 ? g->dc0 : NULL};
  if (kn_rnn_backward(p, &g->r, &g->s, &d)) abort();
}

/* ---- finite differences ----------------------------------------------------------------- */
/* Fourth-order central differences of the float kernel, (L(-2h) - 8 L(-h) + 8 L(h) - L(2h)) /
 * 12h, the loss summed in double. Returns the worst error over the tensor; one CHECK each. */
static double fd_tensor(rig *g, kn_pool *p, float *v, const float *an, size_t n, size_t stride, double h,
                        double tol, const char *what) {
  double wk = 0, wa = 0, wn = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i += stride) {
    float o = v[i];
    double l[4];
    for (int k = 0; k < 4; k++) {
      v[i] = o + (float)((k < 2 ? k - 2 : k - 1) * h); /* o - 2h, o - h, o + h, o + 2h */
      l[k] = rig_loss(g, p);
    }
    v[i] = o;
    double num = (l[0] - 8 * l[1] + 8 * l[2] - l[3]) / (12 * h), a = an[i];
    double e = fabs(a - num) / fmax(fmax(fabs(a), fabs(num)), 1e-2);
    if (e > wk) wk = e, wi = i, wa = a, wn = num;
  }
  CHECK(wk <= tol, "%s: d%s[%zu] analytic %.6g numeric %.6g rel err %.3g > %.3g", t_case, what, wi, wa,
        wn, wk, tol);
  return wk;
}

static double fd_worst; /* the worst error of all finite-difference checks, reported at the end */

/* Every gradient of a layer of T steps, B sequences, I inputs, H units (every `stride`-th
 * entry of each tensor). */
static void fd_layer(kn_pool *p, kn_rnn_cell cell, int T, int B, int I, int H, int D, int state, size_t stride) {
  char name[96];
  snprintf(name, sizeof name, "fd %s D%d T%d B%d H%d %s threads %d", cell == KN_RNN_LSTM ? "lstm" : "gru", D, T,
           B, H, state ? "h0" : "no-h0", kn_pool_size(p));
  T_CASE(name);
  rig g;
  rig_make(&g, "rnn", cell, T, B, I, H, D, state);
  /* weights scaled as 1/sqrt(H) (to U(-0.8, 0.8) at H = 5): pre-activations of the same size
   * whatever H, gates neither all saturated nor all linear */
  for (size_t i = 0; i < g.net.n_p; i++) g.net.p[i] *= (float)sqrt(5.0 / H);
  rig_grads(&g, p);
  /* the analytic gradients, copied: the FD forwards leave the workspace changed, not them */
  size_t nx = (size_t)T * B * I;
  float *an = falloc(g.net.n_p), *adx = falloc(nx), *adh = falloc(n_st(&g)), *adc = falloc(n_st(&g));
  memcpy(an, g.net.g, sizeof(float) * g.net.n_p);
  memcpy(adx, g.dx, sizeof(float) * nx);
  memcpy(adh, g.dh0, sizeof(float) * n_st(&g)), memcpy(adc, g.dc0, sizeof(float) * n_st(&g));
  /* fourth-order differences (error O(h^4)) allow a wide step, which divides the float32
   * rounding noise of the loss (~1e-7 of it) by more: measured worst 1.2e-3 at h = 5e-2 (B3
   * H5), against 3.4e-3 for central differences at their best step (1e-2) */
  const double h = 5e-2, tol = 4e-3;
  double w = fd_tensor(&g, p, g.x, adx, nx, stride, h, tol, "x");
  if (state) w = fmax(w, fd_tensor(&g, p, g.h0, adh, n_st(&g), stride, h, tol, "h0"));
  if (state && cell == KN_RNN_LSTM) w = fmax(w, fd_tensor(&g, p, g.c0, adc, n_st(&g), stride, h, tol, "c0"));
  for (int k = 0; k < g.net.np; k++) {
    const kn_param *q = &g.net.P[k];
    w = fmax(w, fd_tensor(&g, p, g.net.p + q->off, an + q->off, q->n, stride, h, tol, q->name));
  }
  fd_worst = fmax(fd_worst, w);
  if (getenv("KNOBS_TEST_VERBOSE")) printf("%s: worst rel err %.3g\n", name, w);
  free(an), free(adx), free(adh), free(adc);
  rig_free(&g);
}

static void test_fd(kn_pool *p, kn_rnn_cell cell, int T, int D, int state) {
  fd_layer(p, cell, T, 3, 4, 5, D, state, 1);
}

/* A layer just large enough to be split over threads (lstm.c: 2e5 flops; bidirectional LSTM
 * by direction, GRU by rows), every 9th entry. */
static void test_fd_big(kn_pool *p, kn_rnn_cell cell) {
  if (cell == KN_RNN_LSTM) fd_layer(p, cell, 5, 4, 8, 24, 2, 1, 9);
  else fd_layer(p, cell, 5, 6, 8, 32, 1, 1, 9);
}

/* ---- semantics: accumulation, NULL skips, NULL states ------------------------------------ */
static void test_semantics(kn_pool *p, kn_rnn_cell cell) {
  T_CASE(cell == KN_RNN_LSTM ? "semantics lstm" : "semantics gru");
  rig g;
  rig_make(&g, "rnn", cell, 4, 5, 3, 7, 2, 1);
  rig_grads(&g, p);
  size_t nx = (size_t)4 * 5 * 3, np = g.net.n_p, ns = n_st(&g);
  float *g1 = falloc(np), *dx1 = falloc(nx), *dh1 = falloc(ns), *dc1 = falloc(ns);
  memcpy(g1, g.net.g, sizeof(float) * np), memcpy(dx1, g.dx, sizeof(float) * nx);
  memcpy(dh1, g.dh0, sizeof(float) * ns), memcpy(dc1, g.dc0, sizeof(float) * ns);
  /* a second backward of the same forward adds the same values again: twice, up to the
   * rounding of the GEMMs' accumulation into a non-zero C */
  kn_rnn_grad d = {g.wy, g.whn, g.s.cn ? g.wcn : NULL, g.dx, g.dh0, g.s.c0 ? g.dc0 : NULL};
  CHECK(!kn_rnn_backward(p, &g.r, &g.s, &d), "%s", knobs_last_error());
  for (size_t i = 0; i < np; i++) g1[i] *= 2;
  for (size_t i = 0; i < nx; i++) dx1[i] *= 2;
  for (size_t i = 0; i < ns; i++) dh1[i] *= 2, dc1[i] *= 2;
  CHECK_CLOSE(g.net.g, g1, np, 1e-6, 1e-7);
  CHECK_CLOSE(g.dx, dx1, nx, 1e-6, 1e-7);
  CHECK_CLOSE(g.dh0, dh1, ns, 1e-6, 1e-7);
  if (g.s.c0) CHECK_CLOSE(g.dc0, dc1, ns, 1e-6, 1e-7);
  for (size_t i = 0; i < np; i++) g1[i] /= 2;
  for (size_t i = 0; i < nx; i++) dx1[i] /= 2;
  int ok;
  /* NULL gradients skipped, the others unchanged: only dx and the reverse direction's w_hh */
  kn_rnn only = g.r;
  for (int dd = 0; dd < 2; dd++) only.dw_ih[dd] = only.db_ih[dd] = only.db_hh[dd] = NULL;
  only.dw_hh[0] = NULL;
  memset(g.net.g, 0, sizeof(float) * np), memset(g.dx, 0, sizeof(float) * nx);
  kn_rnn_grad dxo = {g.wy, g.whn, g.s.cn ? g.wcn : NULL, g.dx, NULL, NULL};
  CHECK(!kn_rnn_backward(p, &only, &g.s, &dxo), "%s", knobs_last_error());
  CHECK(!memcmp(g.dx, dx1, sizeof(float) * nx), "dx alone differs from dx with every gradient");
  const kn_param *whr = &g.net.P[g.r.idx[1][1]];
  ok = !memcmp(g.net.g + whr->off, g1 + whr->off, sizeof(float) * whr->n);
  for (size_t i = 0; i < np; i++)
    if (i < whr->off || i >= whr->off + whr->n) ok &= g.net.g[i] == 0;
  CHECK(ok, "NULL weight gradients written, or weight_hh_l0_reverse's changed");
  /* NULL initial states are zeros */
  memset(g.h0, 0, sizeof(float) * ns), memset(g.c0, 0, sizeof(float) * ns);
  rig_loss(&g, p);
  float *y1 = falloc(n_y(&g)), *hn1 = falloc(ns);
  memcpy(y1, g.y, sizeof(float) * n_y(&g)), memcpy(hn1, g.hn, sizeof(float) * ns);
  g.s.h0 = g.s.c0 = NULL;
  rig_loss(&g, p);
  CHECK_CLOSE(g.y, y1, n_y(&g), 0, 1e-7);
  CHECK_CLOSE(g.hn, hn1, ns, 0, 1e-7);
  /* y's last step of the forward direction and first of the reverse are hn */
  int H = g.r.H, B = g.B, T = g.T;
  ok = 1;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < H; k++)
      ok &= g.hn[(size_t)b * H + k] == g.y[((size_t)(T - 1) * B + b) * 2 * H + k] &&
            g.hn[((size_t)B + b) * H + k] == g.y[(size_t)b * 2 * H + H + k];
  CHECK(ok, "hn is not y at the directions' last steps");
  free(g1), free(dx1), free(dh1), free(dc1), free(y1), free(hn1);
  rig_free(&g);
}

/* ---- PyTorch ------------------------------------------------------------------------------ */
static kn_safetensors ST;

/* A reference tensor as a fresh aligned copy (safetensors packs without padding), or NULL. */
static float *ref(const char *cname, const char *what) {
  char nm[128];
  snprintf(nm, sizeof nm, "%s.%s", cname, what);
  const kn_st_tensor *t = kn_st_find(&ST, nm);
  if (!t) return NULL;
  float *c = malloc(t->end - t->begin + 8);
  memcpy(c, ST.data + t->begin, t->end - t->begin);
  return c;
}

static double ref_worst; /* the worst |got - torch| / (1 + |torch|) of all reference checks */

static void ref_close(const float *got, const float *want, size_t n, double rtol, double atol) {
  CHECK(want != NULL, "missing reference tensor");
  if (!want) return;
  CHECK_CLOSE(got, want, n, rtol, atol);
  for (size_t i = 0; i < n; i++) ref_worst = fmax(ref_worst, fabs((double)got[i] - want[i]) / (1 + fabs((double)want[i])));
}

static void test_torch_case(const char *cname, kn_pool *p) {
  char name[96];
  snprintf(name, sizeof name, "torch %s threads %d", cname, kn_pool_size(p));
  T_CASE(name);
  float *dims_raw = ref(cname, "dims");
  if (!dims_raw) {
    CHECK(0, "no case %s in the reference file", cname);
    return;
  }
  int64_t dims[7];
  memcpy(dims, dims_raw, sizeof dims);
  free(dims_raw);
  int cell = (int)dims[0], T = (int)dims[1], B = (int)dims[2], I = (int)dims[3], H = (int)dims[4],
      D = (int)dims[5], state = (int)dims[6];
  rig g;
  rig_make(&g, cname, cell ? KN_RNN_GRU : KN_RNN_LSTM, T, B, I, H, D, state);
  /* parameters by their torch names: every tensor of the net must be in the file */
  for (int k = 0; k < g.net.np; k++) {
    const kn_param *q = &g.net.P[k];
    const kn_st_tensor *t = kn_st_find(&ST, q->name);
    int shape_ok = t && t->ndim == q->ndim;
    for (int i = 0; shape_ok && i < q->ndim; i++) shape_ok = t->shape[i] == q->shape[i];
    CHECK(shape_ok, "torch has no tensor %s of knobs' shape", q->name);
    if (shape_ok) memcpy(g.net.p + q->off, ST.data + t->begin, sizeof(float) * q->n);
  }
  float *x = ref(cname, "x"), *wy = ref(cname, "wy"), *whn = ref(cname, "whn"), *wcn = ref(cname, "wcn");
  float *h0 = ref(cname, "h0"), *c0 = ref(cname, "c0");
  size_t nx = (size_t)T * B * I, ns = n_st(&g);
  memcpy(g.x, x, sizeof(float) * nx), memcpy(g.wy, wy, sizeof(float) * n_y(&g));
  memcpy(g.whn, whn, sizeof(float) * ns);
  if (wcn) memcpy(g.wcn, wcn, sizeof(float) * ns);
  if (h0) memcpy(g.h0, h0, sizeof(float) * ns);
  if (c0) memcpy(g.c0, c0, sizeof(float) * ns);
  rig_grads(&g, p);
  /* forward values: float32 with another summation order; gradients: a chain of T steps */
  const double rtol = 1e-5, atol = 1e-5;
  float *w;
  ref_close(g.y, w = ref(cname, "y"), n_y(&g), rtol, atol), free(w);
  ref_close(g.hn, w = ref(cname, "hn"), ns, rtol, atol), free(w);
  if (!cell) ref_close(g.cn, w = ref(cname, "cn"), ns, rtol, atol), free(w);
  ref_close(g.dx, w = ref(cname, "dx"), nx, rtol, atol), free(w);
  if (state) ref_close(g.dh0, w = ref(cname, "dh0"), ns, rtol, atol), free(w);
  if (state && !cell) ref_close(g.dc0, w = ref(cname, "dc0"), ns, rtol, atol), free(w);
  for (int k = 0; k < g.net.np; k++) {
    const kn_param *q = &g.net.P[k];
    char gn[96];
    snprintf(gn, sizeof gn, "grad.%s", q->name + strlen(cname) + 1);
    t_case = q->name;
    ref_close(g.net.g + q->off, w = ref(cname, gn), q->n, rtol, atol), free(w);
    t_case = name;
  }
  free(x), free(wy), free(whn), free(wcn), free(h0), free(c0);
  rig_free(&g);
}

static void test_torch(kn_pool *p1, kn_pool *p2) {
  if (kn_st_read("tests/ref/lstm_ref.safetensors", &ST)) {
    T_CASE("torch reference file");
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  const char *cases[] = {"lstm_uni", "lstm_bi", "lstm_bi_zero", "gru_uni", "gru_bi", "gru_bi_zero"};
  for (int i = 0; i < 6; i++) {
    test_torch_case(cases[i], p1);
    test_torch_case(cases[i], p2);
  }
  kn_st_free(&ST);
}

/* ---- determinism ------------------------------------------------------------------------ */
/* Same thread count: the same bytes. Across thread counts only closeness: each thread's GEMMs
 * cover its rows, and OpenBLAS may round a row differently in a GEMM of another height (see
 * tests/test_nn.c "conv threads"). */
static void test_threads(kn_pool *p1, kn_pool *p2, kn_pool *p3, kn_rnn_cell cell, int D) {
  char name[64];
  snprintf(name, sizeof name, "threads %s D%d", cell == KN_RNN_LSTM ? "lstm" : "gru", D);
  T_CASE(name);
  rig g;
  rig_make(&g, "rnn", cell, 8, 37, 40, 48, D, 1);
  fill(g.net.p, g.net.n_p, -0.2f, 0.2f);
  size_t nx = (size_t)8 * 37 * 40, np = g.net.n_p;
  kn_pool *pools[4] = {p2, p2, p1, p3};
  float *y[4], *dx[4], *gw[4];
  for (int i = 0; i < 4; i++) {
    rig_grads(&g, pools[i]);
    y[i] = falloc(n_y(&g)), dx[i] = falloc(nx), gw[i] = falloc(np);
    memcpy(y[i], g.y, sizeof(float) * n_y(&g)), memcpy(dx[i], g.dx, sizeof(float) * nx);
    memcpy(gw[i], g.net.g, sizeof(float) * np);
  }
  CHECK(!memcmp(y[0], y[1], sizeof(float) * n_y(&g)), "y not reproducible on 2 threads");
  CHECK(!memcmp(dx[0], dx[1], sizeof(float) * nx), "dx not reproducible on 2 threads");
  CHECK(!memcmp(gw[0], gw[1], sizeof(float) * np), "weight gradients not reproducible on 2 threads");
  for (int i = 2; i < 4; i++) {
    CHECK_CLOSE(y[i], y[0], n_y(&g), 1e-5, 1e-6);
    CHECK_CLOSE(dx[i], dx[0], nx, 1e-5, 1e-6);
    CHECK_CLOSE(gw[i], gw[0], np, 1e-5, 1e-5);
  }
  for (int i = 0; i < 4; i++) free(y[i]), free(dx[i]), free(gw[i]);
  rig_free(&g);
}

/* ---- sizes, names, init ------------------------------------------------------------------ */
static void test_api(void) {
  T_CASE("sizes refused");
  kn_rnn r;
  CHECK(kn_rnn_setup(&r, KN_RNN_LSTM, 0, 4, 1) == KNOBS_ERR_ARG, "I = 0 accepted");
  CHECK(kn_rnn_setup(&r, KN_RNN_LSTM, 4, 0, 1) == KNOBS_ERR_ARG, "H = 0 accepted");
  CHECK(kn_rnn_setup(&r, KN_RNN_GRU, 4, 4, 3) == KNOBS_ERR_ARG, "D = 3 accepted");
  CHECK(kn_rnn_setup(&r, KN_RNN_GRU, 4, 4, 0) == KNOBS_ERR_ARG, "D = 0 accepted");
  CHECK(strstr(knobs_last_error(), "directions") != NULL, "message: %s", knobs_last_error());
  rig g;
  rig_make(&g, "rnn", KN_RNN_LSTM, 2, 2, 3, 4, 1, 1);
  CHECK(kn_rnn_workspace_size(&g.r, 0, 2) == 0 && kn_rnn_workspace_size(&g.r, 2, 0) == 0,
        "workspace for T = 0 or B = 0");
  kn_rnn_seq bad = g.s;
  bad.T = 0;
  float y0 = g.y[0];
  CHECK(kn_rnn_forward(NULL, &g.r, &bad) == KNOBS_ERR_ARG, "T = 0 accepted");
  CHECK(strstr(knobs_last_error(), "T = 0") != NULL, "message: %s", knobs_last_error());
  bad = g.s, bad.B = -1;
  CHECK(kn_rnn_forward(NULL, &g.r, &bad) == KNOBS_ERR_ARG, "B = -1 accepted");
  bad = g.s, bad.ws = NULL;
  CHECK(kn_rnn_forward(NULL, &g.r, &bad) == KNOBS_ERR_ARG, "no workspace accepted");
  kn_rnn_grad d = {0};
  bad = g.s, bad.T = -3;
  CHECK(kn_rnn_backward(NULL, &g.r, &bad, &d) == KNOBS_ERR_ARG, "backward with T = -3 accepted");
  kn_rnn unbound;
  kn_rnn_setup(&unbound, KN_RNN_LSTM, 3, 4, 1);
  CHECK(kn_rnn_forward(NULL, &unbound, &g.s) == KNOBS_ERR_ARG, "a layer without weights accepted");
  CHECK(g.y[0] == y0, "a refused forward wrote its output");
  rig_free(&g);

  T_CASE("names and init");
  kn_net net = {0};
  kn_rnn a, b;
  kn_rnn_setup(&a, KN_RNN_LSTM, 10, 16, 2);
  kn_rnn_setup(&b, KN_RNN_GRU, 32, 8, 1);
  kn_rnn_declare(&a, &net, "encoder.lstm", 0);
  kn_rnn_declare(&b, &net, "prior", 1);
  const char *want[] = {"encoder.lstm.weight_ih_l0", "encoder.lstm.weight_hh_l0", "encoder.lstm.bias_ih_l0",
                        "encoder.lstm.bias_hh_l0", "encoder.lstm.weight_ih_l0_reverse",
                        "encoder.lstm.weight_hh_l0_reverse", "encoder.lstm.bias_ih_l0_reverse",
                        "encoder.lstm.bias_hh_l0_reverse", "prior.weight_ih_l0", "prior.weight_hh_l0",
                        "prior.bias_ih_l0", "prior.bias_hh_l0"};
  int ok = net.np == 12;
  for (int i = 0; ok && i < 12; i++) ok = !strcmp(net.P[i].name, want[i]);
  CHECK(ok, "parameter names or order differ from torch's (%d params)", net.np);
  const kn_param *w0 = &net.P[kn_net_find(&net, "encoder.lstm.weight_ih_l0_reverse")];
  const kn_param *w1 = &net.P[kn_net_find(&net, "prior.weight_hh_l0")];
  CHECK(w0->ndim == 2 && w0->shape[0] == 64 && w0->shape[1] == 10, "weight_ih_l0_reverse shape");
  CHECK(w1->ndim == 2 && w1->shape[0] == 24 && w1->shape[1] == 8 && w1->group == 1, "GRU weight_hh shape");
  CHECK(net.P[kn_net_find(&net, "prior.bias_ih_l0")].ndim == 1 && net.P[kn_net_find(&net, "prior.bias_ih_l0")].n == 24, "bias shape");
  CHECK(!kn_net_alloc(&net, NULL, NULL, 0, 1), "%s", knobs_last_error());
  kn_rnn_bind(&a, &net), kn_rnn_bind(&b, &net);
  kn_rng r1, r2;
  kn_rng_seed(&r1, 7, KN_STREAM_INIT), kn_rng_seed(&r2, 7, KN_STREAM_INIT);
  kn_rnn_init(&a, &net, &r1);
  kn_rnn_init(&b, &net, &r1);
  /* U(-1/sqrt(H), 1/sqrt(H)): within the bound, reaching near it, drawn in declaration order */
  double ba = 1 / sqrt(16.0), bb = 1 / sqrt(8.0), ma = 0, mb = 0;
  for (int i = 0; i < 8; i++) {
    const float *q = kn_param_ptr(&net, a.idx[i / 4][i % 4]);
    for (size_t k = 0; k < net.P[a.idx[i / 4][i % 4]].n; k++) ma = fmax(ma, fabs(q[k]));
  }
  for (int i = 0; i < 4; i++) {
    const float *q = kn_param_ptr(&net, b.idx[0][i]);
    for (size_t k = 0; k < net.P[b.idx[0][i]].n; k++) mb = fmax(mb, fabs(q[k]));
  }
  CHECK(ma <= ba && ma > 0.99 * ba, "LSTM init max |w| %g, bound %g", ma, ba);
  CHECK(mb <= bb && mb > 0.95 * bb, "GRU init max |w| %g, bound %g", mb, bb);
  float first = (float)((2.0 * kn_rng_uniform(&r2) - 1.0) * ba);
  CHECK(kn_param_ptr(&net, a.idx[0][0])[0] == first, "the first draw is not weight_ih_l0[0]");
  CHECK(a.w_ih[1] == kn_param_ptr(&net, a.idx[1][0]) && a.dw_hh[1] == kn_grad_ptr(&net, a.idx[1][1]),
        "bind points elsewhere");
  kn_net_free(&net);
}

int main(void) {
  kn_rng_seed(&R, 14, 0);
  kn_pool *p1 = kn_pool_create(1), *p2 = kn_pool_create(2), *p3 = kn_pool_create(3);
  test_vmath();
  for (int cell = 0; cell < 2; cell++)
    for (int D = 1; D <= 2; D++) {
      test_fd(p1, cell ? KN_RNN_GRU : KN_RNN_LSTM, 5, D, 1);
      test_fd(p1, cell ? KN_RNN_GRU : KN_RNN_LSTM, 5, D, 0);
      test_fd(p1, cell ? KN_RNN_GRU : KN_RNN_LSTM, 1, D, 1);
    }
  /* layers this small run inline (lstm.c: under 2e5 flops); one threaded case per cell */
  test_fd_big(p2, KN_RNN_LSTM);
  test_fd_big(p2, KN_RNN_GRU);
  for (int pi = 0; pi < 2; pi++) {
    test_semantics(pi ? p2 : p1, KN_RNN_LSTM);
    test_semantics(pi ? p2 : p1, KN_RNN_GRU);
  }
  test_torch(p1, p2);
  for (int cell = 0; cell < 2; cell++)
    for (int D = 1; D <= 2; D++) test_threads(p1, p2, p3, cell ? KN_RNN_GRU : KN_RNN_LSTM, D);
  test_api();
  printf("worst finite-difference error %.3g; worst |knobs - torch| / (1 + |torch|) %.3g\n", fd_worst, ref_worst);
  kn_pool_free(p1), kn_pool_free(p2), kn_pool_free(p3);
  return t_done();
}
