/* test_models.c: whole models. Finite-difference checks of the whole training loss of each
 * model on both architectures at toy sizes; the same seed gives the same bytes; a resumed run
 * equals an uninterrupted one; checkpoints round-trip and bad ones are refused; encode, decode,
 * evaluate and the config table behave.
 * The data is a tiny ground-truth dataset defined here (a bright square on a dark field, its
 * position the two factors), so the test depends on no other dataset. */
#include <unistd.h>

#include "io/io.h"
#include "models/model.h"
#include "t.h"
#include "toy_t.h"

static knobs_config toy_config(const char *model, const char *arch, int HW) {
  knobs_config c;
  kn_config_default(&c, model);
  strcpy(c.arch, arch), strcpy(c.likelihood, "bernoulli");
  snprintf(c.data, sizeof c.data, "toy%d", HW);
  c.C = 1, c.H = HW, c.W = HW;
  c.batch = 3, c.z_dim = 3, c.hidden = 16, c.threads = 2, c.seed = 7;
  mt_set(&c, "beta", 3), mt_set(&c, "gamma", 20), mt_set(&c, "capacity", 2), mt_set(&c, "capacity_steps", 1);
  return c;
}

/* ---- finite differences of the whole loss ------------------------------------------------- */
/* With lr = 0 a training step computes the loss and leaves the gradients in net->g without
 * moving the parameters; x and eps are fixed through the test seam, so the loss is a function
 * of the parameters alone. Entries are sampled from every tensor. Kinks (ReLU, |KL - C|) can
 * fall inside +-h for a few entries: the check asks 90% of the entries within 1e-2 relative
 * and the median within 1e-3 (measured: p90 5e-4 mlp, 3.5e-3 conv). A 5% error in the KL's
 * gradient alone breaks it for 3 of the 4 model/arch pairs. */
static void fd_model(const char *model, const char *arch, int HW) {
  char name[96];
  snprintf(name, sizeof name, "fd %s %s %dx%d", model, arch, HW, HW);
  T_CASE(name);
  knobs_config c = toy_config(model, arch, HW);
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  m->opt[0].lr = 0; /* Adam then leaves every parameter exactly where it is */
  knobs_data *d = mt_toy_open(HW, 4);
  size_t D = (size_t)HW * HW;
  float *x = malloc(sizeof(float) * D * c.batch), eps[64];
  int32_t f[6] = {0, 3, 2, 1, 3, 0};
  mt_toy_render(d, f, c.batch, x);
  kn_rng r;
  kn_rng_seed(&r, 3, 3);
  kn_rng_normal_fill(&r, eps, (size_t)c.batch * c.z_dim);
  m->test_x = x, m->test_nx = 1, m->test_eps = eps, m->test_neps = 1;
  m->step = 1; /* annealed: C(1) = capacity with capacity_steps = 1, constant from here on */
  knobs_terms t;
  knobs_model_train_step(m, d, &t);
  float *g = malloc(sizeof(float) * m->net.n_p);
  memcpy(g, m->net.g, sizeof(float) * m->net.n_p);
  double *errs = malloc(sizeof(double) * 4096);
  int ne = 0;
  const double h = 2e-3;
  for (int k = 0; k < m->net.np; k++) {
    kn_param *q = &m->net.P[k];
    if (q->buffer) continue;
    float *p = kn_param_ptr(&m->net, k);
    for (int s = 0; s < 10; s++) {
      size_t i = ((size_t)s * 2654435761u + (size_t)k) % q->n;
      float o = p[i];
      p[i] = o + (float)h;
      knobs_model_train_step(m, d, &t);
      double lp = t.value[0];
      p[i] = o - (float)h;
      knobs_model_train_step(m, d, &t);
      double lm = t.value[0];
      p[i] = o;
      double num = (lp - lm) / (2 * h), an = g[q->off + i];
      errs[ne++] = fabs(num - an) / fmax(fmax(fabs(num), fabs(an)), 1e-1);
    }
  }
  double sorted[4096];
  memcpy(sorted, errs, sizeof(double) * (size_t)ne);
  for (int i = 1; i < ne; i++) /* insertion sort: ne is small */
    for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
      double tmp = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = tmp;
    }
  if (getenv("KNOBS_TEST_VERBOSE")) fprintf(stderr, "%s: %d entries, median %.3g, p90 %.3g, p95 %.3g, max %.3g\n", name, ne, sorted[ne / 2], sorted[(int)(ne * 0.9)], sorted[(int)(ne * 0.95)], sorted[ne - 1]);
  CHECK(sorted[ne / 2] < 1e-3, "median FD rel err %.3g", sorted[ne / 2]);
  CHECK(sorted[(int)(ne * 0.9)] < 1e-2, "90th percentile FD rel err %.3g (worst %.3g)", sorted[(int)(ne * 0.9)], sorted[ne - 1]);
  free(x), free(g), free(errs);
  knobs_model_free(m);
  knobs_data_free(d);
}

/* ---- determinism, resume, checkpoints ----------------------------------------------------- */
static int same_state(knobs_model *a, knobs_model *b) {
  if (a->net.n_p != b->net.n_p || a->step != b->step) return 0;
  if (memcmp(a->net.p, b->net.p, sizeof(float) * a->net.n_p)) return 0;
  if (memcmp(a->net.buf, b->net.buf, sizeof(float) * a->net.n_buf)) return 0;
  for (int k = 0; k < a->nopt; k++)
    if (a->opt[k].t != b->opt[k].t || memcmp(a->opt[k].m, b->opt[k].m, sizeof(float) * a->opt[k].n) ||
        memcmp(a->opt[k].v, b->opt[k].v, sizeof(float) * a->opt[k].n))
      return 0;
  return 1;
}

static void test_determinism_and_resume(const char *model, const char *arch, int HW, const char *dir) {
  char name[96], p1[256], p2[256];
  snprintf(name, sizeof name, "determinism %s %s", model, arch);
  T_CASE(name);
  knobs_config c = toy_config(model, arch, HW);
  knobs_data *d = mt_toy_open(HW, 4);
  knobs_model *a, *b, *r;
  knobs_model_create(&c, &a);
  knobs_model_create(&c, &b);
  CHECK(same_state(a, b), "two models from one seed differ");
  for (int i = 0; i < 6; i++) knobs_model_train_step(a, d, NULL), knobs_model_train_step(b, d, NULL);
  CHECK(same_state(a, b), "six steps from one seed differ");
  snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
  snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
  knobs_model_save(a, p1);
  knobs_model_save(b, p2);
  char *ba, *bb;
  size_t na, nb;
  kn_read_file(p1, 1 << 28, &ba, &na);
  kn_read_file(p2, 1 << 28, &bb, &nb);
  CHECK(na == nb && !memcmp(ba, bb, na), "checkpoints of identical runs differ in bytes");
  free(ba), free(bb);
  /* resume: 3 steps, save, load, 3 more == 6 steps */
  knobs_model *h;
  knobs_model_create(&c, &h);
  for (int i = 0; i < 3; i++) knobs_model_train_step(h, d, NULL);
  char o2[300];
  snprintf(o2, sizeof o2, "%s.optim", p2);
  knobs_model_save_checkpoint(h, p2, o2, NULL);
  knobs_model_free(h);
  CHECK(!knobs_model_load(p2, 0, &r), "load: %s", knobs_last_error());
  CHECK(!knobs_model_load_optimizer(r, o2, NULL), "load optimizer: %s", knobs_last_error());
  CHECK(r->step == 3, "loaded step %ld", r->step);
  for (int i = 0; i < 3; i++) knobs_model_train_step(r, d, NULL);
  CHECK(same_state(a, r), "resumed run differs from the uninterrupted one");
  char *ja = knobs_config_to_json(&a->cfg), *jr = knobs_config_to_json(&r->cfg);
  CHECK(!strcmp(ja, jr), "config changed through a checkpoint");
  free(ja), free(jr);
  knobs_model_free(r);
  /* another seed gives other parameters */
  c.seed = 8;
  knobs_model_create(&c, &r);
  CHECK(memcmp(r->net.p, b->net.p, sizeof(float) * r->net.n_p) != 0, "seed does not matter");
  knobs_model_free(r);
  knobs_model_free(a);
  knobs_model_free(b);
  knobs_data_free(d);
}

static void test_bad_checkpoints(const char *dir) {
  T_CASE("bad checkpoints");
  knobs_config c = toy_config("betavae", "mlp", 8);
  knobs_model *m, *r = NULL;
  knobs_model_create(&c, &m);
  char p[256], q[256];
  snprintf(p, sizeof p, "%s/good.safetensors", dir);
  snprintf(q, sizeof q, "%s/bad.safetensors", dir);
  CHECK(!knobs_model_save(m, p), "save: %s", knobs_last_error());
  char *buf;
  size_t n;
  kn_read_file(p, 1 << 28, &buf, &n);
  /* truncated at several places */
  size_t cuts[] = {0, 4, 8, 100, n / 2, n - 1};
  for (int i = 0; i < 6; i++) {
    kn_write_file(q, buf, cuts[i]);
    knobs_status s = knobs_model_load(q, 1, &r);
    CHECK(s == KNOBS_ERR_FORMAT && r == NULL, "truncated at %zu: status %d", cuts[i], s);
    CHECK(strstr(knobs_last_error(), q) != NULL, "message does not name the file: %s", knobs_last_error());
  }
  /* a header length beyond the file */
  char *b2 = malloc(n);
  memcpy(b2, buf, n);
  b2[5] = 0x7f;
  kn_write_file(q, b2, n);
  CHECK(knobs_model_load(q, 1, &r) == KNOBS_ERR_FORMAT, "oversized header accepted");
  /* a tensor with another dtype: F32 -> I32 in the header (same size, wrong type) */
  memcpy(b2, buf, n);
  char *f32 = strstr(b2 + 8, "\"F32\"");
  if (f32) memcpy(f32, "\"I32\"", 5);
  kn_write_file(q, b2, n);
  CHECK(knobs_model_load(q, 1, &r) == KNOBS_ERR_FORMAT, "wrong dtype accepted: %s", knobs_last_error());
  free(b2);
  CHECK(knobs_model_load("/nonexistent/x.safetensors", 1, &r) == KNOBS_ERR_IO, "missing file");
  CHECK(knobs_model_load(dir, 1, &r) == KNOBS_ERR_IO, "folder without model accepted");
  free(buf);
  knobs_model_free(m);
}

static void test_config(void) {
  T_CASE("config");
  knobs_config *pc = NULL;
  CHECK(knobs_config_create("nosuch", &pc) == KNOBS_ERR_ARG && !pc && strstr(knobs_last_error(), "betavae"),
        "unknown model: %s", knobs_last_error());
  CHECK(!knobs_config_create(NULL, &pc) && !strcmp(knobs_config_string(pc, "model"), "betavae"), "default model");
  knobs_config c = *pc;
  knobs_config_free(pc);
  CHECK(knobs_config_set(&c, "latents", "12") == KNOBS_OK && c.z_dim == 12, "set latents");
  CHECK(knobs_config_set(&c, "latents", "0") == KNOBS_ERR_ARG, "latents 0 accepted");
  CHECK(knobs_config_set(&c, "latents", "4x") == KNOBS_ERR_ARG, "junk accepted");
  CHECK(knobs_config_set(&c, "beta", "nan") == KNOBS_ERR_ARG, "nan accepted");
  CHECK(knobs_config_set(&c, "beta", "1e400") == KNOBS_ERR_ARG, "overflow accepted");
  CHECK(knobs_config_set(&c, "seed", "-1") == KNOBS_ERR_ARG, "negative seed accepted");
  CHECK(knobs_config_set(&c, "nope", "1") == KNOBS_ERR_ARG && strstr(knobs_last_error(), "unknown setting"),
        "unknown field accepted");
  CHECK(knobs_config_set(&c, "seed", "18446744073709551615") == KNOBS_OK && c.seed == UINT64_MAX, "u64 seed");
  /* family settings: the model's own, refused for another model, reset when the model changes */
  CHECK(!knobs_config_set(&c, "beta", "7") && knobs_config_number(&c, "beta") == 7, "betavae beta");
  CHECK(knobs_config_set(&c, "tcvae_beta", "2") == KNOBS_ERR_ARG && strstr(knobs_last_error(), "setting of tcvae"),
        "another family's setting accepted: %s", knobs_last_error());
  CHECK(isnan(knobs_config_number(&c, "tcvae_beta")) && !knobs_config_string(&c, "estimator"), "tcvae settings visible");
  CHECK(!knobs_config_set(&c, "model", "tcvae") && knobs_config_number(&c, "tcvae_beta") == 6 &&
        !strcmp(knobs_config_string(&c, "estimator"), "mws") && isnan(knobs_config_number(&c, "beta")),
        "model change: tcvae defaults");
  CHECK(c.z_dim == 12, "model change kept the shared settings");
  CHECK(knobs_config_set(&c, "model", "nosuch") == KNOBS_ERR_ARG && !strcmp(c.model, "tcvae"), "unknown model set");
  CHECK(!knobs_config_set(&c, "estimator", "mss") && !knobs_config_set(&c, "estimator", "bogus"), "estimator text");
  char buf[64];
  CHECK(!knobs_config_get(&c, "estimator", buf, sizeof buf) && !strcmp(buf, "bogus"), "get string");
  CHECK(!knobs_config_get(&c, "lr", buf, sizeof buf) && strtod(buf, NULL) == c.lr, "get number round trip");
  CHECK(knobs_config_get(&c, "lr", buf, 2) == KNOBS_ERR_ARG, "small buffer accepted");
  strcpy(c.arch, "conv"), strcpy(c.likelihood, "bernoulli");
  c.C = 1, c.H = 64, c.W = 64;
  CHECK(knobs_config_validate(&c) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "bogus"), "bad estimator valid");
  knobs_config_set(&c, "estimator", "mws");
  c.batch = 1;
  CHECK(knobs_config_validate(&c) == KNOBS_ERR_ARG, "tcvae batch 1 valid");
  knobs_config_set(&c, "model", "betavae");
  CHECK(knobs_config_validate(&c) == KNOBS_OK, "betavae batch 1: %s", knobs_last_error());
  c.batch = 64;
  /* the fields of a model: shared ones first, then the family's, each once */
  int n = 0, fam = 0, res = 0;
  for (const knobs_field *f; (f = knobs_config_field(&c, n)); n++) fam += f->owner != NULL, res += f->resumable;
  CHECK(fam == 1 && res == 4 && n > 20, "betavae fields: %d (%d family, %d resumable)", n, fam, res);
  CHECK(knobs_model_field("factorvae", 5) && !knobs_model_field("factorvae", 6) && !knobs_model_field("nosuch", 0),
        "factorvae's own fields");
  c.H = c.W = 32;
  CHECK(knobs_config_validate(&c) == KNOBS_ERR_ARG, "conv on 32x32 accepted");
  c.H = c.W = 64;
  CHECK(knobs_config_validate(&c) == KNOBS_OK, "valid config refused: %s", knobs_last_error());
  strcpy(c.model, "nosuch");
  CHECK(knobs_config_validate(&c) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "betavae"), "unknown model: %s", knobs_last_error());
  strcpy(c.model, "betavae");
  char *j = knobs_config_to_json(&c);
  knobs_config d;
  kn_config_default(&d, "betavae");
  CHECK(!knobs_config_from_json(&d, j) && !memcmp(&c, &d, sizeof c), "JSON round trip");
  free(j);
  /* JSON: model first whatever the order; settings of other families (knobs 0.1) ignored */
  kn_config_default(&d, "betavae");
  CHECK(!knobs_config_from_json(&d, "{\"tcvae_beta\": 3, \"model\": \"tcvae\", \"beta\": 9}") &&
        knobs_config_number(&d, "tcvae_beta") == 3 && !strcmp(d.model, "tcvae"), "JSON order: %s", knobs_last_error());
  CHECK(knobs_config_from_json(&d, "{\"latents\": \"x\"}") == KNOBS_ERR_FORMAT, "string for a number accepted");
  CHECK(knobs_config_from_json(&d, "{\"bogus\": 1}") == KNOBS_ERR_FORMAT, "unknown JSON key accepted");
  CHECK(knobs_config_from_json(&d, "[1]") == KNOBS_ERR_FORMAT, "non-object accepted");
  /* every family's defaults are within its own ranges */
  for (const char *const *mn = knobs_model_names(); *mn; mn++) {
    kn_config_default(&d, *mn);
    d.C = d.T = 2, d.H = d.W = 64; /* two frames: dsvae needs sequences, the others see channels */
    strcpy(d.arch, "conv"), strcpy(d.likelihood, "bernoulli");
    CHECK(knobs_config_validate(&d) == KNOBS_OK, "%s defaults: %s", *mn, knobs_last_error());
  }
}

static void test_inference(void) {
  T_CASE("encode/decode/evaluate");
  knobs_config c = toy_config("betavae", "conv", 28);
  c.batch = 4;
  knobs_model *m;
  CHECK(!knobs_model_create(&c, &m), "create: %s", knobs_last_error());
  knobs_data *d = mt_toy_open(28, 5);
  int n = 11; /* not a multiple of the batch */
  float *x = malloc(sizeof(float) * 784 * n), *mu = malloc(sizeof(float) * 3 * n), *lv = malloc(sizeof(float) * 3 * n);
  float *mu1 = malloc(sizeof(float) * 3), *y = malloc(sizeof(float) * 784 * n);
  CHECK(!knobs_data_draw(d, n, 1, 0, x, NULL), "draw: %s", knobs_last_error());
  CHECK(!knobs_model_encode(m, x, n, mu, lv), "encode");
  CHECK(!knobs_model_encode(m, x + 784 * 9, 1, mu1, NULL), "encode one");
  /* alone or in a batch: equal up to GEMM tail-row rounding */
  CHECK_CLOSE(mu1, mu + 27, 3, 1e-5, 1e-6);
  CHECK(!knobs_model_decode(m, mu, n, y), "decode");
  int in01 = 1;
  for (int i = 0; i < 784 * n; i++) in01 &= y[i] > 0 && y[i] < 1;
  CHECK(in01, "Bernoulli decode is not a probability");
  knobs_terms t;
  double kd[3];
  CHECK(!knobs_model_evaluate(m, x, n, 5, &t, kd), "evaluate");
  CHECK(t.n == 3 && fabs(t.value[2] + t.value[0] + t.value[1]) < 1e-6 * fabs(t.value[0]), "elbo != -(recon + kl)");
  CHECK(fabs(kd[0] + kd[1] + kd[2] - t.value[1]) < 1e-6, "per-dimension KL does not sum to the KL");
  float *z = malloc(sizeof(float) * 3 * n);
  CHECK(!knobs_model_encode_sampled(m, x, n, 9, 0, z, NULL), "sampled");
  CHECK(memcmp(z, mu, sizeof(float) * 3 * n) != 0, "sampled codes equal the means");
  free(x), free(mu), free(lv), free(mu1), free(y), free(z);
  knobs_model_free(m);
  knobs_data_free(d);
}

int main(void) {
  char dir[] = "/tmp/knobs-test-models-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  const char *models[] = {"betavae", "annealedvae"};
  for (int i = 0; i < 2; i++) {
    fd_model(models[i], "mlp", 8);
    fd_model(models[i], "conv", 28);
    test_determinism_and_resume(models[i], "conv", 28, dir);
    test_determinism_and_resume(models[i], "mlp", 8, dir);
  }
  test_bad_checkpoints(dir);
  test_config();
  test_inference();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 2;
  return t_done();
}
