/* models_t.h: what the tests of the issue-4 models share (tests/test_models_*.c): a toy
 * ground-truth dataset, toy configs, the finite-difference check of a whole training loss with
 * one loss term per optimizer group, determinism and resume, and the PyTorch reference check
 * against tests/ref/models_*.safetensors (written by tests/ref/make_models_ref.py).
 * Include after t.h. */
#ifndef KNOBS_MODELS_T_H
#define KNOBS_MODELS_T_H
#include <cjson/cJSON.h>
#include <unistd.h>

#include "io/io.h"
#include "models/families.h"

#include "toy_t.h"

static inline knobs_config mt_config(const char *model, const char *arch, int HW) {
  knobs_config c;
  kn_config_default(&c, model);
  strcpy(c.arch, arch), strcpy(c.likelihood, "bernoulli");
  snprintf(c.data, sizeof c.data, "toy%d", HW);
  c.C = 1, c.H = HW, c.W = HW;
  c.batch = 3, c.z_dim = 3, c.hidden = 16, c.threads = 2, c.seed = 7;
  mt_set(&c, "noise_dim", 4), mt_set(&c, "cat", 2), mt_set(&c, "cont", 2); /* infogan at toy size */
  /* factorvae at toy size (the references use 6 x 1000) */
  mt_set(&c, "disc_hidden", 40), mt_set(&c, "disc_layers", 3);
  mt_set(&c, "factorvae_gamma", 5), mt_set(&c, "tcvae_beta", 4), mt_set(&c, "lambda_od", 3);
  mt_set(&c, "beta", 2), mt_set(&c, "info_lambda", 1.5);
  mt_set_str(&c, "aux_factor", "x"), mt_set(&c, "aux_classes", 4); /* ivae: u is the toy's x */
  return c;
}

static inline int mt_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- finite differences of the whole loss ----------------------------------------------- */
/* With every learning rate 0 a training step computes its losses and leaves the gradients in
 * net->g without moving a parameter; resetting m->step before each step replays the same
 * randomness (batch, noise, pairs, permutations, codes: all derive from (seed, step)), so
 * each loss is a function of the parameters alone. Entries are sampled from every tensor; the
 * gradient of a parameter of optimizer group g is checked against the term named terms[g]
 * (a two-player model has one loss per player). Kinks (ReLU, LeakyReLU, the weak models'
 * choice of shared dimensions) can fall within +-h for a few entries: 90% of the entries must
 * agree within 1e-2 relative and the median within 1e-3, as test_models.c asks. h is 2e-3 as
 * there, except where a caller says why. */
static inline void mt_fd(knobs_config c, const char *const *terms, int per_tensor, double h, knobs_data *d) {
  static char name[128];
  snprintf(name, sizeof name, "fd %s %s %dx%d", c.model, c.arch, c.H, c.W);
  T_CASE(name);
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  for (int k = 0; k < m->nopt; k++) m->opt[k].lr = 0, m->opt[k].n = 0; /* Adam: no update, no work */
  knobs_terms t;
  int idx[KN_MAX_OPT];
  m->step = 5;
  knobs_status s = knobs_model_train_step(m, d, &t);
  CHECK(!s, "step: %s", knobs_last_error());
  for (int k = 0; k < m->nopt; k++) {
    idx[k] = -1;
    for (int i = 0; i < t.n; i++)
      if (!strcmp(t.name[i], terms[k])) idx[k] = i;
    CHECK(idx[k] >= 0, "no term %s", terms[k]);
    if (idx[k] < 0) goto out;
  }
  float *g = malloc(sizeof(float) * m->net.n_p);
  memcpy(g, m->net.g, sizeof(float) * m->net.n_p);
  double *errs = malloc(sizeof(double) * (size_t)(m->net.np * per_tensor + 1));
  int ne = 0;
  for (int k = 0; k < m->net.np; k++) {
    kn_param *q = &m->net.P[k];
    if (q->buffer) continue;
    float *p = kn_param_ptr(&m->net, k);
    int ti = idx[q->group];
    for (int e = 0; e < per_tensor; e++) {
      size_t i = ((size_t)e * 2654435761u + (size_t)k) % q->n;
      float o = p[i];
      p[i] = o + (float)h;
      double hp = (double)p[i] - o; /* the step float can represent */
      m->step = 5;
      knobs_model_train_step(m, d, &t);
      double lp = t.value[ti];
      p[i] = o - (float)h;
      double hm = o - (double)p[i];
      m->step = 5;
      knobs_model_train_step(m, d, &t);
      double lm = t.value[ti];
      p[i] = o;
      double num = (lp - lm) / (hp + hm), an = g[q->off + i];
      errs[ne++] = fabs(num - an) / fmax(fmax(fabs(num), fabs(an)), 1e-1);
      if (getenv("KNOBS_TEST_VERBOSE") && errs[ne - 1] > 1e-2)
        fprintf(stderr, "%s: %s[%zu] numeric %.6g analytic %.6g\n", name, q->name, i, num, an);
    }
  }
  qsort(errs, (size_t)ne, sizeof(double), mt_cmp_double);
  if (getenv("KNOBS_TEST_VERBOSE"))
    fprintf(stderr, "%s: %d entries, median %.3g, p90 %.3g, max %.3g\n", name, ne, errs[ne / 2], errs[(int)(ne * 0.9)], errs[ne - 1]);
  CHECK(errs[ne / 2] < 1e-3, "median FD rel err %.3g", errs[ne / 2]);
  CHECK(errs[(int)(ne * 0.9)] < 1e-2, "90th percentile FD rel err %.3g (worst %.3g)", errs[(int)(ne * 0.9)], errs[ne - 1]);
  free(g), free(errs);
out:
  knobs_model_free(m);
}

/* ---- determinism, resume, checkpoints --------------------------------------------------- */
static inline int mt_same_state(knobs_model *a, knobs_model *b) {
  if (a->net.n_p != b->net.n_p || a->step != b->step || a->nopt != b->nopt) return 0;
  if (memcmp(a->net.p, b->net.p, sizeof(float) * a->net.n_p)) return 0;
  if (memcmp(a->net.buf, b->net.buf, sizeof(float) * a->net.n_buf)) return 0;
  for (int k = 0; k < a->nopt; k++)
    if (a->opt[k].t != b->opt[k].t || memcmp(a->opt[k].m, b->opt[k].m, sizeof(float) * a->opt[k].n) ||
        memcmp(a->opt[k].v, b->opt[k].v, sizeof(float) * a->opt[k].n))
      return 0;
  return 1;
}

/* Two runs from one seed give the same bytes; 3 steps + save + load + 3 steps equal 6 steps
 * (every optimizer included); the checkpoint holds every optimizer under its name; another
 * seed gives other parameters. */
static inline void mt_determinism(knobs_config c, knobs_data *d, const char *dir) {
  static char name[128];
  char p1[512], p2[512];
  snprintf(name, sizeof name, "determinism %s %s %dx%d", c.model, c.arch, c.H, c.W);
  T_CASE(name);
  knobs_model *a, *b, *r = NULL, *h;
  if (knobs_model_create(&c, &a) || knobs_model_create(&c, &b)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  CHECK(mt_same_state(a, b), "two models from one seed differ");
  knobs_terms t;
  for (int i = 0; i < 6; i++) {
    knobs_status s = knobs_model_train_step(a, d, &t);
    CHECK(!s, "step %d: %s", i, knobs_last_error());
    knobs_model_train_step(b, d, NULL);
    for (int k = 0; k < t.n; k++) CHECK(isfinite(t.value[k]), "%s is %g", t.name[k], t.value[k]);
  }
  CHECK(mt_same_state(a, b), "six steps from one seed differ");
  CHECK(a->opt[0].t == 6 && (a->nopt < 2 || a->opt[1].t == 6), "optimizer steps %ld", a->opt[0].t);
  snprintf(p1, sizeof p1, "%s/%s-a.safetensors", dir, c.model);
  snprintf(p2, sizeof p2, "%s/%s-b.safetensors", dir, c.model);
  CHECK(!knobs_model_save(a, p1) && !knobs_model_save(b, p2), "save: %s", knobs_last_error());
  char *ba = NULL, *bb = NULL;
  size_t na = 0, nb = 0;
  kn_read_file(p1, 1 << 28, &ba, &na);
  kn_read_file(p2, 1 << 28, &bb, &nb);
  CHECK(na == nb && na > 0 && !memcmp(ba, bb, na), "checkpoints of identical runs differ in bytes");
  free(ba), free(bb);
  /* the optimizer state has its own file (model.safetensors is the plain state_dict) */
  char o2[600];
  snprintf(o2, sizeof o2, "%s.optim", p2);
  CHECK(!knobs_model_save_optimizer(a, o2, NULL), "save optimizer: %s", knobs_last_error());
  kn_read_file(o2, 1 << 28, &ba, &na);
  for (int k = 0; k < a->nopt; k++) {
    char want[64];
    snprintf(want, sizeof want, "optim.%s.exp_avg_sq", a->opt_name[k]);
    CHECK(ba && memmem(ba, na, want, strlen(want)), "optimizer file lacks %s", want);
  }
  free(ba);
  CHECK(!knobs_model_create(&c, &h), "create: %s", knobs_last_error());
  for (int i = 0; i < 3; i++) knobs_model_train_step(h, d, NULL);
  knobs_model_save_checkpoint(h, p2, o2, NULL);
  knobs_model_free(h);
  CHECK(!knobs_model_load(p2, 0, &r), "load: %s", knobs_last_error());
  if (r) CHECK(!knobs_model_load_optimizer(r, o2, NULL), "load optimizer: %s", knobs_last_error());
  if (r) {
    CHECK(r->step == 3, "loaded step %ld", r->step);
    for (int i = 0; i < 3; i++) knobs_model_train_step(r, d, NULL);
    CHECK(mt_same_state(a, r), "resumed run differs from the uninterrupted one");
    char *ja = knobs_config_to_json(&a->cfg), *jr = knobs_config_to_json(&r->cfg);
    CHECK(!strcmp(ja, jr), "config changed through a checkpoint");
    free(ja), free(jr);
    knobs_model_free(r);
  }
  c.seed = 8;
  CHECK(!knobs_model_create(&c, &r), "create: %s", knobs_last_error());
  CHECK(memcmp(r->net.p, b->net.p, sizeof(float) * r->net.n_p) != 0, "seed does not matter");
  knobs_model_free(r);
  knobs_model_free(a);
  knobs_model_free(b);
}

/* Encode and decode work in chunks and give finite values of the right count. */
static inline void mt_inference(knobs_config c, knobs_data *d) {
  static char name[128];
  snprintf(name, sizeof name, "encode/decode %s %s", c.model, c.arch);
  T_CASE(name);
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  for (int i = 0; i < 2; i++) knobs_model_train_step(m, d, NULL);
  int n = 7, Z = knobs_model_code_dim(m);
  size_t D = m->D;
  float *x = malloc(sizeof(float) * D * n), *mu = malloc(sizeof(float) * Z * n), *mu1 = malloc(sizeof(float) * Z);
  float *y = malloc(sizeof(float) * D * n);
  CHECK(!knobs_data_draw(d, n, 1, 0, x, NULL), "draw: %s", knobs_last_error());
  CHECK(!knobs_model_encode(m, x, n, mu, NULL), "encode: %s", knobs_last_error());
  CHECK(!knobs_model_encode(m, x + D * 5, 1, mu1, NULL), "encode one");
  CHECK_CLOSE(mu1, mu + 5 * Z, (size_t)Z, 1e-4, 1e-5);
  CHECK(!knobs_model_decode(m, mu, n, y), "decode: %s", knobs_last_error());
  int ok = 1;
  for (size_t i = 0; i < D * n; i++) ok &= y[i] >= 0 && y[i] <= 1;
  CHECK(ok, "decoded images outside [0,1]");
  free(x), free(mu), free(mu1), free(y);
  knobs_model_free(m);
}

/* ---- the PyTorch reference --------------------------------------------------------------- */
static kn_safetensors MT_ST;
static void *mt_copies[8192];
static int mt_ncopies;

/* A tensor of the reference file: an aligned copy (tensors follow each other unpadded, so an
 * F64 or I64 tensor after a U8 one may be misaligned in the file), freed by mt_free_copies. */
static inline const void *mt_tensor(const char *name, size_t *n, knobs_dtype *dt) {
  const kn_st_tensor *t = kn_st_find(&MT_ST, name);
  if (!t || mt_ncopies == (int)(sizeof mt_copies / sizeof mt_copies[0])) return NULL;
  if (n) *n = (t->end - t->begin) / knobs_dtype_size(t->dtype);
  if (dt) *dt = t->dtype;
  void *c = malloc(t->end - t->begin + 8);
  memcpy(c, MT_ST.data + t->begin, t->end - t->begin);
  return mt_copies[mt_ncopies++] = c;
}

static inline void mt_free_copies(void) {
  while (mt_ncopies) free(mt_copies[--mt_ncopies]);
}

/* make_models_ref.py's param_formula: u = hash(i, seed) in [-1, 1) */
static inline double mt_hash_u(uint64_t i, uint64_t seed) {
  uint64_t h = (i * 2654435761ull + seed * 40503ull + 12345ull) % (1ull << 32);
  h = (h ^ (h >> 15)) * 2246822519ull % (1ull << 32);
  h = h ^ (h >> 13);
  return (double)h / 4294967296.0 * 2.0 - 1.0;
}

/* Parameters as the script sets them, by state_dict position idx: weights and biases of
 * linear and conv layers u / sqrt(fan_in of the layer's weight); batch norm weight 1 + u / 10,
 * bias u / 10, running_mean 0, running_var 1, num_batches_tracked 0. */
static inline int mt_set_params(knobs_model *m, cJSON *order) {
  int idx = 0;
  for (cJSON *it = order->child; it; it = it->next, idx++) {
    int k = kn_net_find(&m->net, it->valuestring);
    CHECK(k >= 0, "model has no tensor %s", it->valuestring);
    if (k < 0) return -1;
    const kn_param *q = &m->net.P[k];
    float *p = kn_param_ptr(&m->net, k);
    char wname[80];
    snprintf(wname, sizeof wname, "%s", it->valuestring);
    strcpy(strrchr(wname, '.'), ".weight");
    int wi = kn_net_find(&m->net, wname); /* -1 for a free parameter (decoder.px_r) */
    const kn_param *W = wi >= 0 ? &m->net.P[wi] : NULL;
    if (W && W->ndim >= 2) {
      double fan_in = (double)W->shape[1];
      for (int d = 2; d < W->ndim; d++) fan_in *= (double)W->shape[d];
      double bound = 1.0 / sqrt(fan_in);
      for (size_t i = 0; i < q->n; i++) p[i] = (float)(mt_hash_u(i, (uint64_t)idx) * bound);
    } else if (strstr(q->name, "running_var")) {
      for (size_t i = 0; i < q->n; i++) p[i] = 1;
    } else if (q->buffer) {
      for (size_t i = 0; i < q->n; i++) p[i] = 0;
    } else {
      int is_w = strstr(q->name, ".weight") != NULL;
      for (size_t i = 0; i < q->n; i++) p[i] = (float)((is_w ? 1.0 : 0.0) + mt_hash_u(i, (uint64_t)idx) / 10);
    }
  }
  CHECK(idx == m->net.np, "PyTorch has %d tensors, knobs %d", idx, m->net.np);
  return 0;
}

/* Run the reference case `file` with `threads` threads: the config of the file's metadata,
 * parameters by formula, inputs and noise (and the FactorVAE permutations, the label mask or
 * iVAE's classes u)
 * through the test seams, 10 steps. The file holds a float64 PyTorch run (the reference) and
 * the same run in float32, whose distance from the float64 one is the envelope of float32
 * rounding (see make_models_ref.py). Checks:
 *   - every parameter gradient of the first step (sampled) against float64: each entry within
 *     grad_rtol of itself plus an absolute grad_atol or 3x the largest distance of float32
 *     PyTorch's entries of that tensor (gradients through batch norm or with cancellation
 *     have entries far below their tensor's scale that no float32 code gets to 2e-4), in this
 *     run or, where an activation input sits within rounding of its kink, in the same step
 *     with that input pushed to the other side (mt_find_kinks);
 *   - the first step's terms: within term_rtol0 of float64, or 3x float32's own distance;
 *   - the terms of 10 steps, relative to the step's largest term: within term_rtol or 3x the
 *     float32 run's largest distance;
 *   - sampled parameters and buffers after 10 steps: median distance within after_median or
 *     3x float32's, largest within after_max_lr lr or 3x float32's. */
typedef struct {
  double grad_rtol, grad_atol; /* first-step gradients */
  double term_rtol0;           /* first step's terms, relative to each */
  double term_rtol;            /* terms of 10 steps, relative to the largest |term| of the step */
  double after_median, after_max_lr; /* parameters after 10 steps: median |err|, max |err| / lr */
} mt_tol;

/* A ReLU or LeakyReLU whose input is within 1e-6 of its layer's rms of zero: float32 rounding,
 * not the model, decides which side it falls on, and the side decides the gradient of every
 * tensor upstream (the forward is continuous there, the gradient is not). Measured on the
 * 28x28 InfoGAN reference: one input of the generator's last ReLU (after bn3) is 1.5e-8, knobs
 * on OpenBLAS's Haswell/Zen kernels puts it on the other side than float64 PyTorch (on the
 * SandyBridge kernels, on the same side), and every generator tensor upstream moves by up to
 * 5e-3 of its scale (bn2.weight; bn3.bias[45] 0.00744 vs 0.00794); with that one mask flipped
 * knobs is within 6e-5 of scale of float64 PyTorch on all of them. The next smallest input of
 * the three InfoGAN references is 7e-6 of rms. Found from the activations of each stack's last
 * forward, with the layer before the activation carrying a per-channel bias. */
typedef struct {
  int stack, layer;
  size_t k;       /* index in the bias layer's output block */
  int c;          /* its channel (bias entry) */
  float v;
} mt_kink;

static inline int mt_find_kinks(knobs_model *m, mt_kink *out, int max) {
  int n = 0;
  for (int s = 0; s < m->nstacks; s++) {
    kn_stack *S = m->stacks[s];
    for (int i = 1; i < S->n; i++) {
      const kn_layer *L = &S->L[i], *P = &S->L[i - 1];
      if ((L->kind != KN_RELU && L->kind != KN_LRELU) || P->b < 0 || P->heads > 1) continue;
      if (P->kind != KN_BN && P->kind != KN_LINEAR && P->kind != KN_CONV && P->kind != KN_CONVT) continue;
      size_t plane = (size_t)P->out_h * P->out_w, cnt = (size_t)m->B * P->out_c * plane;
      const float *v = S->act + P->out_off;
      double ss = 0;
      for (size_t k = 0; k < cnt; k++) ss += (double)v[k] * v[k];
      double tol = 1e-6 * sqrt(ss / (double)cnt);
      for (size_t k = 0; k < cnt; k++)
        if (fabs(v[k]) < tol && n < max)
          out[n++] = (mt_kink){s, i, k, P->spatial_out ? (int)(k / ((size_t)m->B * plane)) : (int)(k % (size_t)P->out_c), v[k]};
    }
  }
  return n;
}

/* The inputs of a reference case, shared by the models built from it. */
typedef struct {
  cJSON *meta, *cfgj, *order, *tnames;
  knobs_data *d;
  float *x, *eps;
  int32_t *perm, *aux;
  int nx, neps, nperm, nmask, naux;
  const uint8_t *mask;
} mt_ref_in;

/* A model of the case at `threads` threads with the script's parameters and the seams set;
 * NULL (after a failed check) on error. */
static inline knobs_model *mt_ref_model(mt_ref_in *in, int threads) {
  knobs_config c;
  const cJSON *mj = cJSON_GetObjectItem(in->cfgj, "model");
  CHECK(mj && cJSON_IsString(mj) && kn_model_ops_find(mj->valuestring), "no known model in the reference config");
  if (!mj || !cJSON_IsString(mj) || !kn_model_ops_find(mj->valuestring)) return NULL;
  kn_config_default(&c, mj->valuestring); /* the model first: it decides which settings exist */
  strcpy(c.likelihood, "bernoulli");
  for (cJSON *it = in->cfgj->child; it; it = it->next) {
    char v[64];
    if (cJSON_IsString(it)) snprintf(v, sizeof v, "%s", it->valuestring);
    else snprintf(v, sizeof v, "%.17g", it->valuedouble);
    CHECK(!knobs_config_set(&c, it->string, v), "config %s: %s", it->string, knobs_last_error());
  }
  c.threads = threads;
  knobs_model *m = NULL;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return NULL;
  }
  if (mt_set_params(m, in->order)) {
    knobs_model_free(m);
    return NULL;
  }
  m->test_x = in->x, m->test_nx = in->nx, m->test_eps = in->eps, m->test_neps = in->neps;
  if (in->perm) kn_factorvae_test_perm(m, in->perm, in->nperm / (c.batch * c.z_dim));
  if (in->mask) kn_weak_test_mask(m, in->mask, in->nmask / (c.batch * c.z_dim));
  if (in->aux) kn_ivae_test_aux(m, in->aux, in->naux / c.batch);
  return m;
}

/* max_i |a_i - b_i| / (atol + rtol |b_i|) (infinite on a NaN), its index to *at. */
static inline double mt_close_ratio(const float *a, const float *b, size_t n, double rtol, double atol, size_t *at) {
  double wr = 0;
  *at = 0;
  for (size_t i = 0; i < n; i++) {
    double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
    if (isnan(a[i]) != isnan(b[i]) || isnan(r)) r = INFINITY;
    if (r > wr) wr = r, *at = i;
  }
  return wr;
}

/* First-step gradients of m (and of alt, the same step with the kinks pushed across, if not
 * NULL): a tensor passes if either run matches (see mt_find_kinks). */
static inline void mt_check_grads(knobs_model *m, knobs_model *alt, mt_tol tol, const char *cname) {
  static char tname[300];
  for (int k = 0; k < m->net.np; k++) {
    const kn_param *q = &m->net.P[k];
    if (q->buffer) continue;
    char nm_[128];
    size_t ns = 0;
    snprintf(nm_, sizeof nm_, "grad.%s.idx", q->name);
    const int64_t *pick = mt_tensor(nm_, &ns, NULL);
    snprintf(nm_, sizeof nm_, "grad.%s.val", q->name);
    const float *val = mt_tensor(nm_, NULL, NULL);
    snprintf(nm_, sizeof nm_, "grad32.%s.val", q->name);
    const float *v32 = mt_tensor(nm_, NULL, NULL);
    CHECK(pick && val && v32, "no reference gradient for %s", q->name);
    if (!pick || !val || !v32) continue;
    float *got = malloc(sizeof(float) * ns * 2), *got2 = got + ns;
    const float *g = kn_grad_ptr(&m->net, k), *g2 = alt ? kn_grad_ptr(&alt->net, k) : g;
    double e32 = 0;
    for (size_t i = 0; i < ns; i++) got[i] = g[pick[i]], got2[i] = g2[pick[i]], e32 = fmax(e32, fabs((double)v32[i] - val[i]));
    double atol = fmax(tol.grad_atol, 3 * e32);
    size_t at, at2;
    double r = mt_close_ratio(got, val, ns, tol.grad_rtol, atol, &at), r2 = mt_close_ratio(got2, val, ns, tol.grad_rtol, atol, &at2);
    snprintf(tname, sizeof tname, "%s: %s", cname, q->name);
    t_case = tname;
    CHECK(r <= 1 || r2 <= 1, "gradient at [%zu] %.9g, torch %.9g (rtol %.2g atol %.2g)%s", at, got[at], val[at],
          tol.grad_rtol, atol, alt ? ", nor with the kinks pushed across" : "");
    if (getenv("KNOBS_TEST_VERBOSE") && alt && (r > 1) != (r2 > 1))
      fprintf(stderr, "%s: matches torch %s the kinks pushed across (ratio %.3g vs %.3g)\n", tname,
              r2 <= 1 ? "with" : "without", r2, r);
    t_case = cname;
    free(got);
  }
}

/* A first-step term whose value is a constant minus another term carries that term's rounding
 * error at a smaller magnitude: it is held relative to the larger of the two. InfoGAN's mi is
 * H(c) - info: measured on the 64x64 reference, info 2.99950771 vs 2.99950097 (2.2e-6
 * relative) makes mi -0.5146011 vs -0.5145943 (1.3e-5 relative). */
static const char *const mt_derived_terms[][2] = {{"mi", "info"}};

static inline void mt_reference(const char *file, int threads, mt_tol tol) {
  static char cname[160];
  char path[256];
  snprintf(path, sizeof path, "tests/ref/%s", file);
  snprintf(cname, sizeof cname, "ref %s threads %d", file, threads);
  T_CASE(cname);
  kn_st_free(&MT_ST);
  if (access(path, R_OK) != 0) {
    CHECK(0, "%s is missing (run tests/ref/make_models_ref.py)", path);
    return;
  }
  if (kn_st_read(path, &MT_ST)) {
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  mt_ref_in in = {0};
  in.meta = cJSON_Parse(MT_ST.metadata_json);
  in.cfgj = cJSON_Parse(cJSON_GetObjectItem(in.meta, "config")->valuestring);
  in.order = cJSON_Parse(cJSON_GetObjectItem(in.meta, "param_order")->valuestring);
  in.tnames = cJSON_Parse(cJSON_GetObjectItem(in.meta, "term_names")->valuestring);
  knobs_model *m = NULL, *alt = NULL;
  size_t nx = 0, ne = 0, np = 0;
  const uint8_t *xb = mt_tensor("x", &nx, NULL);
  const float *eb = mt_tensor("eps", &ne, NULL);
  CHECK(xb && eb, "no x or eps");
  if (!xb || !eb) goto out;
  in.x = malloc(sizeof(float) * nx);
  for (size_t i = 0; i < nx; i++) in.x[i] = xb[i];
  in.eps = malloc(sizeof(float) * ne);
  memcpy(in.eps, eb, sizeof(float) * ne);
  in.nx = atoi(cJSON_GetObjectItem(in.meta, "n_x")->valuestring);
  in.neps = atoi(cJSON_GetObjectItem(in.meta, "n_eps")->valuestring);
  CHECK(in.nx > 0 && in.neps > 0, "n_x %d n_eps %d", in.nx, in.neps);
  if (in.nx <= 0 || in.neps <= 0) goto out;
  const int64_t *pp = mt_tensor("perm", &np, NULL);
  if (pp) {
    in.perm = malloc(sizeof(int32_t) * np);
    for (size_t i = 0; i < np; i++) in.perm[i] = (int32_t)pp[i];
    in.nperm = (int)np;
  }
  size_t nu = 0;
  const int64_t *au = mt_tensor("aux", &nu, NULL);
  if (au) {
    in.aux = malloc(sizeof(int32_t) * nu);
    for (size_t i = 0; i < nu; i++) in.aux[i] = (int32_t)au[i];
    in.naux = (int)nu;
  }
  size_t nm = 0;
  in.mask = mt_tensor("mask", &nm, NULL);
  in.nmask = (int)nm;
  m = mt_ref_model(&in, threads);
  if (!m) goto out;
  in.d = mt_toy_open(m->cfg.H, 4);
  in.d->info.n = atoll(cJSON_GetObjectItem(in.meta, "data_n")->valuestring); /* metadata values are strings */
  knobs_data *d = in.d;
  cJSON *tnames = in.tnames;
  size_t nterms_all;
  const double *want = mt_tensor("terms", &nterms_all, NULL), *w32 = mt_tensor("terms32", NULL, NULL);
  int nt = cJSON_GetArraySize(tnames);
  knobs_terms t;
  double worst = 0, worst32 = 0;
  for (int step = 0; step < 10; step++) {
    knobs_status s = knobs_model_train_step(m, d, &t);
    CHECK(!s, "step %d: %s", step, knobs_last_error());
    if (s) break;
    double scale = 1e-3;
    for (int k = 0; k < nt; k++) scale = fmax(scale, fabs(want[step * nt + k]));
    for (int k = 0; k < nt; k++) {
      const char *tn = cJSON_GetArrayItem(tnames, k)->valuestring;
      int found = -1;
      for (int i = 0; i < t.n; i++)
        if (!strcmp(t.name[i], tn)) found = i;
      CHECK(found >= 0, "no term %s", tn);
      if (found < 0) continue;
      double w = want[step * nt + k], got = t.value[found], e32 = fabs(w32[step * nt + k] - w);
      if (step == 0) {
        double mag = fmax(fabs(w), 1e-3);
        for (size_t j = 0; j < sizeof mt_derived_terms / sizeof mt_derived_terms[0]; j++)
          if (!strcmp(tn, mt_derived_terms[j][0]))
            for (int k2 = 0; k2 < nt; k2++)
              if (!strcmp(cJSON_GetArrayItem(tnames, k2)->valuestring, mt_derived_terms[j][1]))
                mag = fmax(mag, fabs(want[step * nt + k2]));
        CHECK(fabs(got - w) <= fmax(tol.term_rtol0 * mag, 3 * e32), "first step %s: %.9g vs torch %.9g "
              "(float32 torch %.9g)", tn, got, w, w32[step * nt + k]);
      }
      worst = fmax(worst, fabs(got - w) / scale);
      worst32 = fmax(worst32, e32 / scale);
      if (getenv("KNOBS_TEST_VERBOSE"))
        fprintf(stderr, "%s step %d %s: %.9g vs %.9g (float32 %.9g)\n", cname, step, tn, got, w, w32[step * nt + k]);
    }
    if (step == 0) {
      /* the pre-activations of the first step, from a twin whose activations are not in place */
      mt_kink kinks[8];
      int nk = 8;
      kn_stack_inplace(0);
      knobs_model *probe = mt_ref_model(&in, threads);
      if (probe && !knobs_model_train_step(probe, d, NULL)) nk = mt_find_kinks(probe, kinks, 8);
      knobs_model_free(probe);
      CHECK(nk < 8, "%d activation inputs within float32 rounding of a kink", nk);
      if (nk > 0 && nk < 8 && (alt = mt_ref_model(&in, threads)) != NULL) {
        for (int i = 0; i < nk; i++) {
          const kn_layer *P = &alt->stacks[kinks[i].stack]->L[kinks[i].layer - 1];
          float *bias = kn_param_ptr(&alt->net, P->b) + kinks[i].c;
          float ulp = nextafterf(fabsf(*bias), INFINITY) - fabsf(*bias);
          *bias -= copysignf(fmaxf(3 * fabsf(kinks[i].v), 64 * ulp), kinks[i].v);
          if (getenv("KNOBS_TEST_VERBOSE"))
            fprintf(stderr, "%s: kink in %s layer %d [%zu] input %.3g\n", cname, alt->stacks[kinks[i].stack]->prefix,
                    kinks[i].layer, kinks[i].k, kinks[i].v);
        }
        CHECK(!knobs_model_train_step(alt, d, NULL), "step: %s", knobs_last_error());
        for (int i = 0; i < nk; i++) {
          const kn_stack *S = alt->stacks[kinks[i].stack];
          float v = S->act[S->L[kinks[i].layer - 1].out_off + kinks[i].k];
          CHECK((v > 0) != (kinks[i].v > 0), "pushing the kink at %g across gave %g", kinks[i].v, v);
        }
      }
      kn_stack_inplace(1);
      mt_check_grads(m, alt, tol, cname);
    }
  }
  CHECK(worst <= fmax(tol.term_rtol, 3 * worst32), "loss terms over 10 steps differ by %.3g of the step's largest term "
        "(float32 torch: %.3g)", worst, worst32);
  /* parameters and buffers after 10 steps (see test_ref.c on Adam and near-zero gradients) */
  double *errs = malloc(sizeof(double) * 32 * (size_t)m->net.np), *errs32 = errs + 16 * (size_t)m->net.np;
  int nerr = 0;
  double lr = 0;
  for (int k = 0; k < m->nopt; k++) lr = fmax(lr, m->opt[k].lr);
  for (int k = 0; k < m->net.np; k++) {
    const kn_param *q = &m->net.P[k];
    char nm_[128];
    size_t ns = 0;
    snprintf(nm_, sizeof nm_, "after.%s.idx", q->name);
    const int64_t *pick = mt_tensor(nm_, &ns, NULL);
    snprintf(nm_, sizeof nm_, "after.%s.val", q->name);
    const float *val = mt_tensor(nm_, NULL, NULL);
    snprintf(nm_, sizeof nm_, "after32.%s.val", q->name);
    const float *v32 = mt_tensor(nm_, NULL, NULL);
    CHECK(pick && val && v32, "no reference value for %s", q->name);
    if (!pick || !val || !v32) continue;
    const float *p = kn_param_ptr(&m->net, k);
    for (size_t i = 0; i < ns && i < 16; i++) {
      double e = fabs((double)p[pick[i]] - val[i]), e32 = fabs((double)v32[i] - val[i]);
      if (q->buffer) e /= fmax(1.0, fabs(val[i])), e32 /= fmax(1.0, fabs(val[i])); /* running statistics: relative */
      errs32[nerr] = e32;
      errs[nerr++] = e;
    }
  }
  qsort(errs, (size_t)nerr, sizeof(double), mt_cmp_double);
  qsort(errs32, (size_t)nerr, sizeof(double), mt_cmp_double);
  CHECK(errs[nerr / 2] <= fmax(tol.after_median, 3 * errs32[nerr / 2]), "median |param - torch| after 10 steps %.3g "
        "(float32 torch: %.3g)", errs[nerr / 2], errs32[nerr / 2]);
  CHECK(errs[nerr - 1] <= fmax(tol.after_max_lr * lr, 3 * errs32[nerr - 1]), "max |param - torch| after 10 steps %.3g > "
        "%g lr (float32 torch: %.3g)", errs[nerr - 1], tol.after_max_lr, errs32[nerr - 1]);
  if (getenv("KNOBS_TEST_VERBOSE"))
    fprintf(stderr, "%s: terms %.3g (float32 %.3g), after: median %.3g (%.3g) max %.3g (%.3g)\n", cname, worst, worst32,
            errs[nerr / 2], errs32[nerr / 2], errs[nerr - 1], errs32[nerr - 1]);
  free(errs);
out:
  free(in.x), free(in.eps), free(in.perm), free(in.aux);
  mt_free_copies();
  knobs_model_free(m);
  knobs_model_free(alt);
  if (in.d) knobs_data_free(in.d);
  cJSON_Delete(in.meta), cJSON_Delete(in.cfgj), cJSON_Delete(in.order), cJSON_Delete(in.tnames);
}

/* The reference check of each file at 1 and 2 threads. */
static inline void mt_references(const char *const *files, int n, mt_tol tol) {
  for (int i = 0; i < n; i++)
    for (int th = 1; th <= 2; th++) mt_reference(files[i], th, tol);
}

/* The end of a model test: remove its scratch folder, free the reference file, report. */
static inline int mt_finish(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  kn_st_free(&MT_ST);
  return t_done();
}

#endif
