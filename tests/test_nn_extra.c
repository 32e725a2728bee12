/* test_nn_extra.c: the engine pieces added for the issue-4 models (src/nn/extra.c).
 * - kn_softmax_xent: value against a direct double computation, gradient against central
 *   differences of the value (double sums: 1e-6 relative), for classes that are a slice of a
 *   wider row (ld > K), with a scale, and accumulation into a non-zero gradient buffer.
 * - kn_stack_backward_input: on stacks with every layer kind, the input gradient equals the
 *   one kn_stack_backward computes (bit for bit: the same kernels in the same order) for
 *   (B,C,H,W) and channel-major inputs with C > 1, and no parameter gradient is touched. */
#include "nn/nn.h"
#include "t.h"

static void test_xent(void) {
  T_CASE("softmax xent");
  enum { B = 4, K = 5, LD = 7 };
  float l[B * LD], d[B * LD];
  int32_t tgt[B] = {0, 4, 2, 2};
  kn_rng r;
  kn_rng_seed(&r, 1, 2);
  kn_rng_uniform_fill(&r, l, B * LD, -4, 4);
  l[LD + 1] = 60; /* a large logit: the max shift keeps exp finite */
  for (int i = 0; i < B * LD; i++) d[i] = 0.25f;
  double per[B];
  double L = kn_softmax_xent(d, per, l, tgt, B, K, LD, 0.7f);
  double want = 0;
  for (int b = 0; b < B; b++) {
    double mx = -1e300, s = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, l[b * LD + k]);
    for (int k = 0; k < K; k++) s += exp((double)l[b * LD + k] - mx);
    double pb = mx + log(s) - l[b * LD + tgt[b]];
    CHECK_NEAR(per[b], pb, 1e-9 * fmax(1, fabs(pb)));
    want += pb / B;
  }
  CHECK_NEAR(L, want, 1e-9);
  int ok = 1;
  for (int b = 0; b < B; b++)
    for (int k = K; k < LD; k++) ok &= d[b * LD + k] == 0.25f;
  CHECK(ok, "entries outside the class slice were written");
  double worst = 0;
  for (int i = 0; i < B * LD; i++) {
    if (i % LD >= K) continue;
    float o = l[i];
    const double h = 1e-2;
    l[i] = o + (float)h;
    double lp = kn_softmax_xent(NULL, NULL, l, tgt, B, K, LD, 1);
    l[i] = o - (float)h;
    double lm = kn_softmax_xent(NULL, NULL, l, tgt, B, K, LD, 1);
    l[i] = o;
    double num = 0.7 * (lp - lm) / (2 * h), an = d[i] - 0.25;
    worst = fmax(worst, fabs(num - an) / fmax(fabs(num), 1e-3));
  }
  CHECK(worst < 1e-3, "gradient vs central differences: worst relative error %.3g", worst); /* h^2 term */
}

/* a stack with every layer kind the models use */
static void build(kn_stack *s, kn_net *net, int C) {
  kn_stack_begin(s, net, "s", C, 8, 8, 1);
  kn_stack_conv(s, 4, 4, 2, 1, NULL, 0), kn_stack_act(s, KN_LRELU, 0.1f); /* 4x4 */
  kn_stack_conv(s, 6, 3, 1, 1, NULL, 0), kn_stack_bn(s, NULL, 0), kn_stack_act(s, KN_RELU, 0);
  kn_stack_flatten(s);
  kn_stack_linear(s, 12, NULL, 0), kn_stack_bn(s, NULL, 0), kn_stack_act(s, KN_TANH, 0);
  kn_stack_linear(s, 32, NULL, 0), kn_stack_unflatten(s, 2, 4, 4);
  kn_stack_convt(s, 3, 4, 2, 1, NULL, 0), kn_stack_act(s, KN_SIGMOID, 0);
}

static void test_backward_input(int C, int cm) {
  char name[64];
  snprintf(name, sizeof name, "backward_input C=%d channel-major=%d", C, cm);
  T_CASE(name);
  enum { B = 3 };
  kn_net net;
  memset(&net, 0, sizeof net);
  net.pool = kn_pool_create(2);
  kn_stack s;
  build(&s, &net, C);
  kn_stack *st[1] = {&s};
  int want[1] = {1};
  CHECK(!kn_net_alloc(&net, st, want, 1, B), "alloc");
  kn_rng r;
  kn_rng_seed(&r, 3, 4);
  kn_net_init(&net, st, 1, &r);
  size_t nin = (size_t)B * C * 64, nout = (size_t)kn_stack_out_size(&s) * B;
  float *x = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout), *dx1 = malloc(sizeof(float) * nin);
  kn_rng_uniform_fill(&r, x, nin, -1, 1);
  kn_rng_uniform_fill(&r, dy, nout, -1, 1);
  /* full backward */
  kn_stack_forward(&s, x, B, cm);
  kn_stack_zero_grad(&s);
  memcpy(kn_stack_dout(&s), dy, sizeof(float) * nout);
  memset(net.g, 0, sizeof(float) * net.n_p);
  kn_stack_backward(&s, B);
  memcpy(dx1, s.dx_in, sizeof(float) * nin);
  /* input only: parameter gradients keep a sentinel */
  kn_stack_forward(&s, x, B, cm);
  kn_stack_zero_grad(&s);
  memcpy(kn_stack_dout(&s), dy, sizeof(float) * nout);
  for (size_t i = 0; i < net.n_p; i++) net.g[i] = 7.0f;
  kn_stack_backward_input(&s, B);
  CHECK(!memcmp(dx1, s.dx_in, sizeof(float) * nin), "input gradients differ");
  int untouched = 1;
  for (size_t i = 0; i < net.n_p; i++) untouched &= net.g[i] == 7.0f;
  CHECK(untouched, "a parameter gradient was written");
  double mag = 0;
  for (size_t i = 0; i < nin; i++) mag += fabs(dx1[i]);
  CHECK(mag > 0, "the input gradient is zero (nothing tested)");
  free(x), free(dy), free(dx1);
  kn_free(s.act), kn_free(s.dact), kn_free(s.aux), kn_free(s.dx_in), kn_free(s.xcb), kn_free(s.dxcb);
  kn_pool_free(net.pool);
  kn_net_free(&net);
}

int main(void) {
  test_xent();
  test_backward_input(1, 0);
  test_backward_input(3, 0);
  test_backward_input(3, 1);
  return t_done();
}
