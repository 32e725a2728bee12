/* test_ref.c: knobs against PyTorch. tests/ref/make_nn_ref.py (torch 1.13) wrote the expected
 * values; this test needs no Python.
 * - layers: forward outputs and the gradients of L = sum(w * y) for linear, conv2d and
 *   transposed conv2d (three geometries each), the activations, batch norm (1d and 2d, training
 *   and eval, running statistics), the Bernoulli loss, the Gaussian KL, and 10 Adam steps.
 * - models: betavae and annealedvae on the conv and mlp (hidden 64) architectures, batch 4:
 *   posterior and logits of the first step, every parameter gradient of the first step (whole
 *   or sampled), the loss terms of 10 Adam steps, and sampled parameters after them.
 * Tolerances: layer outputs and gradients 1e-5 relative + 1e-5 absolute (float32 with a
 * different summation order); model gradients 2e-4 relative + 1e-6 absolute (a long chain of
 * float32 GEMMs); the first step's loss terms 1e-5 relative each, those of 10 steps 1e-4 of the
 * loss (rounding differences grow through Adam, see below); parameters after 10 steps:
 * median error < 1e-6 and max < 20 lr (see the comment there). */
#include <cjson/cJSON.h>
#include <math.h>

#include "io/io.h"
#include "models/model.h"
#include "t.h"

static kn_safetensors ST;
static void *copies[256];
static int ncopies;

/* A reference tensor as an aligned copy: safetensors packs tensors without padding, so an F64
 * or I64 tensor after a U8 one may sit at an odd address in the file. Freed by st_close. */
static const float *tensor(const char *name, size_t *n) {
  const kn_st_tensor *t = kn_st_find(&ST, name);
  if (!t || ncopies == (int)(sizeof copies / sizeof copies[0])) {
    fprintf(stderr, "missing reference tensor %s (or too many)\n", name);
    exit(2);
  }
  if (n) *n = (t->end - t->begin) / knobs_dtype_size(t->dtype);
  void *c = malloc(t->end - t->begin + 8);
  if (!c) exit(2);
  memcpy(c, ST.data + t->begin, t->end - t->begin);
  return copies[ncopies++] = c;
}

static void st_close(void) {
  while (ncopies) free(copies[--ncopies]);
  kn_st_free(&ST);
}

static float *copy(const char *name, size_t *n) {
  size_t k;
  const float *p = tensor(name, &k);
  float *c = malloc(k * sizeof(float) + 4);
  memcpy(c, p, k * sizeof(float));
  if (n) *n = k;
  return c;
}

/* (B,C,S) <-> (C,B,S) */
static float *to_cbs(const float *x, int B, int C, int S) {
  float *y = malloc(sizeof(float) * (size_t)B * C * S);
  kn_bcs_to_cbs(NULL, y, x, B, C, S, 0);
  return y;
}

static void check_layers(kn_pool *pool) {
  size_t n;
  T_CASE("ref linear");
  {
    float *x = copy("linear.x", NULL), *W = copy("linear.W", NULL), *b = copy("linear.b", NULL), *w = copy("linear.w", NULL);
    float y[20], dx[35] = {0}, dW[28] = {0}, db[4] = {0};
    kn_linear_forward(pool, y, x, W, b, 5, 7, 4);
    CHECK_CLOSE(y, tensor("linear.y", NULL), 20, 1e-5, 1e-5);
    kn_linear_backward(pool, dx, dW, db, w, x, W, 5, 7, 4);
    CHECK_CLOSE(dx, tensor("linear.dx", NULL), 35, 1e-5, 1e-5);
    CHECK_CLOSE(dW, tensor("linear.dW", NULL), 28, 1e-5, 1e-5);
    CHECK_CLOSE(db, tensor("linear.db", NULL), 4, 1e-5, 1e-5);
    free(x), free(W), free(b), free(w);
  }
  const char *convs[] = {"conv_a", "conv_b", "conv_c", "convt_a", "convt_b", "convt_c"};
  for (int i = 0; i < 6; i++) {
    char nm[64];
    T_CASE(convs[i]);
    snprintf(nm, sizeof nm, "%s.geom", convs[i]);
    const int64_t *g = (const int64_t *)tensor(nm, NULL);
    int tr = (int)g[0], B = (int)g[1], C = (int)g[2], H = (int)g[3], Wd = (int)g[4], K = (int)g[5], k = (int)g[6], s = (int)g[7], p = (int)g[8];
    kn_conv geo;
    if (tr) kn_convt_geom(&geo, B, C, H, Wd, K, k, k, s, p);
    else kn_conv_geom(&geo, B, C, H, Wd, K, k, k, s, p);
    int OS = geo.OH * geo.OW;
#define T(suffix) (snprintf(nm, sizeof nm, "%s." suffix, convs[i]), nm)
    float *x = to_cbs(tensor(T("x"), NULL), B, C, H * Wd);
    float *w = to_cbs(tensor(T("w"), NULL), B, K, OS);
    float *Wt = copy(T("W"), NULL), *bias = copy(T("b"), NULL);
    float *y = malloc(sizeof(float) * (size_t)B * K * OS), *dx = calloc((size_t)B * C * H * Wd, 4);
    float *dW = calloc((size_t)K * C * k * k, 4), *db = calloc((size_t)K, 4);
    float *sc = malloc(kn_conv_scratch(&geo, kn_pool_size(pool)) * 4);
    if (tr) kn_convt2d_forward(pool, y, x, Wt, bias, &geo, sc);
    else kn_conv2d_forward(pool, y, x, Wt, bias, &geo, sc);
    float *yr = to_cbs(tensor(T("y"), NULL), B, K, OS);
    CHECK_CLOSE(y, yr, (size_t)B * K * OS, 1e-5, 1e-5);
    if (tr) kn_convt2d_backward(pool, dx, dW, db, w, x, Wt, &geo, sc);
    else kn_conv2d_backward(pool, dx, dW, db, w, x, Wt, &geo, sc);
    float *dxr = to_cbs(tensor(T("dx"), NULL), B, C, H * Wd);
    CHECK_CLOSE(dx, dxr, (size_t)B * C * H * Wd, 1e-5, 1e-5);
    CHECK_CLOSE(dW, tensor(T("dW"), NULL), (size_t)K * C * k * k, 1e-5, 1e-5);
    CHECK_CLOSE(db, tensor(T("db"), NULL), (size_t)K, 1e-5, 1e-5);
#undef T
    free(x), free(w), free(Wt), free(bias), free(y), free(dx), free(dW), free(db), free(sc), free(yr), free(dxr);
  }
  const char *acts[] = {"relu", "lrelu", "tanh", "sigmoid"};
  for (int i = 0; i < 4; i++) {
    char nm[64];
    T_CASE(acts[i]);
    snprintf(nm, sizeof nm, "%s.x", acts[i]);
    const float *x = tensor(nm, &n);
    float y[54], dx[54] = {0};
    snprintf(nm, sizeof nm, "%s.w", acts[i]);
    const float *w = tensor(nm, NULL);
    switch (i) {
    case 0: kn_relu_forward(pool, y, x, n), kn_relu_backward(pool, dx, w, y, n); break;
    case 1: kn_lrelu_forward(pool, y, x, 0.2f, n), kn_lrelu_backward(pool, dx, w, y, 0.2f, n); break;
    case 2: kn_tanh_forward(pool, y, x, n), kn_tanh_backward(pool, dx, w, y, n); break;
    case 3: kn_sigmoid_forward(pool, y, x, n), kn_sigmoid_backward(pool, dx, w, y, n); break;
    }
    snprintf(nm, sizeof nm, "%s.y", acts[i]);
    CHECK_CLOSE(y, tensor(nm, NULL), n, 1e-6, 1e-6);
    snprintf(nm, sizeof nm, "%s.dx", acts[i]);
    CHECK_CLOSE(dx, tensor(nm, NULL), n, 1e-5, 1e-6);
  }
  for (int i = 0; i < 2; i++) {
    T_CASE(i ? "bn1d" : "bn2d");
    const char *p = i ? "bn1d" : "bn2d";
    char nm[64];
    int B = i ? 6 : 4, C = i ? 5 : 3, S = i ? 1 : 25;
    snprintf(nm, sizeof nm, "%s.x", p);
    float *x = i ? copy(nm, &n) : to_cbs(tensor(nm, &n), B, C, S);
    snprintf(nm, sizeof nm, "%s.w", p);
    float *w = i ? copy(nm, NULL) : to_cbs(tensor(nm, NULL), B, C, S);
    snprintf(nm, sizeof nm, "%s.gamma", p);
    float *g = copy(nm, NULL);
    snprintf(nm, sizeof nm, "%s.beta", p);
    float *bt = copy(nm, NULL);
    float y[300], dx[300] = {0}, dg[5] = {0}, db[5] = {0}, mean[5], inv[5], rm[5] = {0}, rv[5] = {1, 1, 1, 1, 1};
    long M = (long)B * S, cs = i ? 1 : M, ms = i ? C : 1;
    kn_bn_forward(pool, y, x, g, bt, mean, inv, rm, rv, 1, 0.1f, 1e-5f, C, M, cs, ms);
    snprintf(nm, sizeof nm, "%s.y", p);
    float *yr = i ? copy(nm, NULL) : to_cbs(tensor(nm, NULL), B, C, S);
    CHECK_CLOSE(y, yr, n, 1e-5, 1e-5);
    kn_bn_backward(pool, dx, dg, db, w, x, g, mean, inv, C, M, cs, ms);
    snprintf(nm, sizeof nm, "%s.dx", p);
    float *dxr = i ? copy(nm, NULL) : to_cbs(tensor(nm, NULL), B, C, S);
    CHECK_CLOSE(dx, dxr, n, 1e-4, 1e-5);
    snprintf(nm, sizeof nm, "%s.dgamma", p);
    CHECK_CLOSE(dg, tensor(nm, NULL), (size_t)C, 1e-5, 1e-5);
    snprintf(nm, sizeof nm, "%s.dbeta", p);
    CHECK_CLOSE(db, tensor(nm, NULL), (size_t)C, 1e-5, 1e-5);
    snprintf(nm, sizeof nm, "%s.running_mean", p);
    CHECK_CLOSE(rm, tensor(nm, NULL), (size_t)C, 1e-5, 1e-6);
    snprintf(nm, sizeof nm, "%s.running_var", p);
    CHECK_CLOSE(rv, tensor(nm, NULL), (size_t)C, 1e-5, 1e-6);
    kn_bn_forward(pool, y, x, g, bt, mean, inv, rm, rv, 0, 0.1f, 1e-5f, C, M, cs, ms);
    snprintf(nm, sizeof nm, "%s.y_eval", p);
    float *ye = i ? copy(nm, NULL) : to_cbs(tensor(nm, NULL), B, C, S);
    CHECK_CLOSE(y, ye, n, 1e-5, 1e-5);
    free(x), free(w), free(g), free(bt), free(yr), free(dxr), free(ye);
  }
  T_CASE("bernoulli loss");
  {
    float d[120] = {0};
    double L = kn_bernoulli_loss(pool, d, NULL, tensor("bce.logits", NULL), tensor("bce.x", NULL), 4, 30, 1.0f);
    CHECK_NEAR(L, tensor("bce.loss", NULL)[0], 1e-4);
    CHECK_CLOSE(d, tensor("bce.dlogits", NULL), 120, 1e-5, 1e-6);
  }
  T_CASE("kl");
  {
    float dmu[24] = {0}, dlv[24] = {0};
    double L = kn_gauss_kl(dmu, dlv, NULL, tensor("kl.mu", NULL), tensor("kl.lv", NULL), 4, 6, 1.0f);
    CHECK_NEAR(L, tensor("kl.loss", NULL)[0], 1e-5);
    CHECK_CLOSE(dmu, tensor("kl.dmu", NULL), 24, 1e-5, 1e-6);
    CHECK_CLOSE(dlv, tensor("kl.dlv", NULL), 24, 1e-5, 1e-6);
  }
  T_CASE("adam");
  {
    float *p = copy("adam.p0", &n), m[257] = {0}, v[257] = {0};
    const float *g = tensor("adam.grads", NULL);
    kn_adam a = {1e-2, 0.9, 0.999, 1e-8, 0, 0, n, m, v};
    for (int t = 0; t < 10; t++) kn_adam_step(pool, &a, p, g + (size_t)t * n);
    CHECK_CLOSE(p, tensor("adam.p10", NULL), n, 1e-6, 1e-7);
    free(p);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* the hash of make_nn_ref.py's param_formula */
static void param_formula(float *p, size_t n, uint64_t seed, double bound) {
  for (size_t i = 0; i < n; i++) {
    uint64_t h = ((uint64_t)i * 2654435761ull + seed * 40503ull + 12345ull) % (1ull << 32);
    h = (h ^ (h >> 15)) * 2246822519ull % (1ull << 32);
    h = h ^ (h >> 13);
    p[i] = (float)(((double)h / 4294967296.0 * 2.0 - 1.0) * bound);
  }
}

/* A gradient against PyTorch's: 2e-4 relative, and an absolute tolerance of 1e-4 of the
 * tensor's largest element. A reduction's rounding error scales with the sum of its terms'
 * magnitudes, not with its result: an element that cancels to near zero (a bias gradient summed
 * over the batch of a 4096-wide product) differs between summation orders (PyTorch's, OpenBLAS's
 * Haswell or SkylakeX kernels) by ~1e-6 of the tensor's scale. */
static void grad_close(const float *got, const float *want, size_t n) {
  double big = 0;
  for (size_t i = 0; i < n; i++) big = fmax(big, fabs((double)want[i]));
  CHECK_CLOSE(got, want, n, 2e-4, fmax(1e-6, 1e-4 * big));
}

static void check_model(const char *model, const char *arch, int threads) {
  char path[256], cname[96];
  snprintf(path, sizeof path, "tests/ref/vae_%s_%s.safetensors", model, arch);
  snprintf(cname, sizeof cname, "%s %s threads %d", model, arch, threads);
  T_CASE(cname);
  st_close();
  if (kn_st_read(path, &ST)) {
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  cJSON *meta = cJSON_Parse(ST.metadata_json);
  cJSON *cfgj = cJSON_Parse(cJSON_GetObjectItem(meta, "config")->valuestring);
  cJSON *order = cJSON_Parse(cJSON_GetObjectItem(meta, "param_order")->valuestring);
  knobs_config c;
  kn_config_default(&c, model);
  strcpy(c.arch, arch), strcpy(c.likelihood, "bernoulli");
  c.C = 1, c.H = 64, c.W = 64, c.threads = threads;
  static const char *const family[] = {"beta", "gamma", "capacity", "capacity_steps"};
  for (int i = 0; i < 4; i++) {
    char v[64];
    snprintf(v, sizeof v, "%.17g", cJSON_GetObjectItem(cfgj, family[i])->valuedouble);
    if (!isnan(knobs_config_number(&c, family[i]))) CHECK(!knobs_config_set(&c, family[i], v), "%s", knobs_last_error());
  }
  c.lr = cJSON_GetObjectItem(cfgj, "lr")->valuedouble;
  c.batch = (int)cJSON_GetObjectItem(cfgj, "batch")->valuedouble;
  c.z_dim = (int)cJSON_GetObjectItem(cfgj, "latents")->valuedouble;
  c.hidden = (int)cJSON_GetObjectItem(cfgj, "hidden")->valuedouble;
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    goto out;
  }
  /* parameters by the formula, seeded by the PyTorch state_dict position */
  int idx = 0;
  for (cJSON *it = order->child; it; it = it->next, idx++) {
    int k = kn_net_find(&m->net, it->valuestring);
    CHECK(k >= 0, "model has no tensor %s", it->valuestring);
    if (k < 0) continue;
    char wname[80];
    snprintf(wname, sizeof wname, "%s", it->valuestring);
    char *dot = strrchr(wname, '.');
    strcpy(dot, ".weight");
    const kn_param *W = &m->net.P[kn_net_find(&m->net, wname)];
    double fan_in = (double)W->shape[1];
    for (int d = 2; d < W->ndim; d++) fan_in *= (double)W->shape[d];
    param_formula(kn_param_ptr(&m->net, k), m->net.P[k].n, (uint64_t)idx, 1.0 / sqrt(fan_in));
  }
  CHECK(idx == m->net.np, "PyTorch has %d tensors, knobs %d", idx, m->net.np);
  size_t nx;
  const uint8_t *xb = (const uint8_t *)(ST.data + kn_st_find(&ST, "x")->begin);
  nx = kn_st_find(&ST, "x")->end - kn_st_find(&ST, "x")->begin;
  float *x = malloc(sizeof(float) * nx);
  for (size_t i = 0; i < nx; i++) x[i] = xb[i];
  m->test_x = x, m->test_nx = 2, m->test_eps = tensor("eps", NULL), m->test_neps = 10;
  const double *losses = (const double *)tensor("losses", NULL);
  knobs_terms t;
  double worst_loss = 0;
  for (int step = 0; step < 10; step++) {
    knobs_status s = knobs_model_train_step(m, NULL, &t);
    CHECK(!s, "step %d: %s", step, knobs_last_error());
    if (s) break;
    for (int k = 0; k < 3; k++) {
      /* relative to the loss scale (terms[0]): small terms (the KL starts at 0.01 against a
       * loss of 2900) inherit absolute rounding of the loss's size */
      double want = losses[step * 3 + k], got = t.value[k];
      if (step == 0) /* the first step's terms each to 1e-5 of themselves */
        CHECK(fabs(got - want) <= 1e-5 * fabs(want), "first step term %d: %.9g vs torch %.9g", k, got, want);
      worst_loss = fmax(worst_loss, fabs(got - want) / fmax(fabs(losses[step * 3]), 1e-3));
      if (getenv("KNOBS_TEST_VERBOSE")) fprintf(stderr, "%s step %d term %d: %.9g vs %.9g\n", cname, step, k, got, want);
    }
    if (step == 0) {
      CHECK_CLOSE(m->mu, tensor("mu0", NULL), (size_t)c.batch * c.z_dim, 1e-4, 1e-6);
      CHECK_CLOSE(m->lv, tensor("lv0", NULL), (size_t)c.batch * c.z_dim, 1e-4, 1e-6);
      CHECK_CLOSE(kn_stack_out(&m->dec), tensor("logits0", NULL), (size_t)c.batch * 4096, 1e-4, 1e-5);
      for (int k = 0; k < m->net.np; k++) {
        const kn_param *q = &m->net.P[k];
        if (q->buffer) continue;
        char nm[96];
        const float *g = kn_grad_ptr(&m->net, k);
        snprintf(nm, sizeof nm, "grad.%s", q->name);
        const kn_st_tensor *full = kn_st_find(&ST, nm);
        if (full) {
          t_case = q->name;
          grad_close(g, tensor(nm, NULL), q->n);
        } else {
          size_t ns;
          snprintf(nm, sizeof nm, "grad.%s.idx", q->name);
          const int64_t *pick = (const int64_t *)tensor(nm, &ns);
          snprintf(nm, sizeof nm, "grad.%s.val", q->name);
          const float *val = tensor(nm, NULL);
          float *got = malloc(sizeof(float) * ns);
          for (size_t i = 0; i < ns; i++) got[i] = g[pick[i]];
          t_case = q->name;
          grad_close(got, val, ns);
          free(got);
        }
        t_case = cname;
      }
    }
  }
  CHECK(worst_loss < 1e-4, "loss terms over 10 steps differ by %.3g of the loss", worst_loss);
  /* parameters after 10 steps: Adam turns float rounding on near-zero gradients into whole
   * +-lr steps, so single entries may differ by up to 2 lr per step; a systematic error (a
   * wrong bias correction, eps placement, learning rate) moves most entries, which the median
   * catches. */
  double errs[4096];
  int ne = 0;
  for (int k = 0; k < m->net.np; k++) {
    const kn_param *q = &m->net.P[k];
    char nm[96];
    size_t ns;
    snprintf(nm, sizeof nm, "after.%s.idx", q->name);
    const int64_t *pick = (const int64_t *)tensor(nm, &ns);
    snprintf(nm, sizeof nm, "after.%s.val", q->name);
    const float *val = tensor(nm, NULL);
    const float *p = kn_param_ptr(&m->net, k);
    for (size_t i = 0; i < ns && ne < 4096; i++) errs[ne++] = fabs((double)p[pick[i]] - val[i]);
  }
  qsort(errs, (size_t)ne, sizeof(double), cmp_double);
  CHECK(errs[ne / 2] < 1e-6, "median |param - torch| after 10 steps %.3g", errs[ne / 2]);
  CHECK(errs[ne - 1] < 20 * c.lr, "max |param - torch| after 10 steps %.3g > 20 lr", errs[ne - 1]);
  t_case = cname;
  free(x);
  knobs_model_free(m);
out:
  cJSON_Delete(meta), cJSON_Delete(cfgj), cJSON_Delete(order);
}

int main(void) {
  if (kn_st_read("tests/ref/nn_layers.safetensors", &ST)) {
    fprintf(stderr, "%s\n", knobs_last_error());
    return 1;
  }
  kn_pool *p1 = kn_pool_create(1), *p2 = kn_pool_create(2);
  check_layers(p1);
  check_layers(p2);
  kn_pool_free(p1);
  kn_pool_free(p2);
  const char *models[] = {"betavae", "annealedvae"}, *archs[] = {"conv", "mlp"};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      for (int th = 1; th <= 2; th++) check_model(models[i], archs[j], th);
  st_close();
  return t_done();
}
