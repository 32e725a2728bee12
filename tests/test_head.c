/* test_head.c: the property heads (src/models/head.c): the defaults; the PyTorch reference (the
 * heads of tests/ref/head_{reg,log}.safetensors, made by tests/ref/make_head_ref.py as
 * torch.nn.Sequential modules: predictions and input gradients of fixed codes); a central
 * finite-difference check of knobs_head_eval's input gradient; fits on problems whose answer is
 * known (y = 2 z0 - z1 + noise: held-out RMSE near the noise; a logistic one: a low error
 * rate); determinism; the save/load round trip (bit-exact predictions); and the refusals (NaN,
 * constant or non-0/1 labels, too few rows, bad options, NaN at eval, truncated, foreign and
 * malformed files, each naming the problem). */
#include <unistd.h>

#include "t.h"
#include "io/io.h"
#include "knobs.h"

static char dir[] = "/tmp/knobs-test-head-XXXXXX";

static const char *path_in(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* Codes (n,Z) ~ N(0,1) from a fixed rng. */
static float *normal_codes(int n, int Z, uint64_t seed) {
  float *z = malloc(sizeof(float) * (size_t)n * Z);
  kn_rng r;
  kn_rng_seed(&r, seed, 77);
  kn_rng_normal_fill(&r, z, (size_t)n * Z);
  return z;
}

static void test_defaults(void) {
  T_CASE("defaults");
  knobs_head_opts o;
  memset(&o, 0xff, sizeof o);
  knobs_head_opts_default(&o);
  CHECK(o.hidden == 64 && o.layers == 2 && o.steps == 2000 && o.batch == 256 && o.lr == 1e-3 && o.logistic == 0 &&
            o.val_frac == 0.1 && o.seed == 0,
        "hidden %d layers %d steps %d batch %d lr %g logistic %d val_frac %g", o.hidden, o.layers, o.steps, o.batch,
        o.lr, o.logistic, o.val_frac);
  CHECK(knobs_head_dim(NULL) == 0, "dim of NULL");
  knobs_head_free(NULL);
}

/* ---- the PyTorch reference --------------------------------------------------------------- */

static void test_reference(const char *tag, int Z) {
  static char name[64];
  snprintf(name, sizeof name, "torch reference %s", tag);
  T_CASE(name);
  char hp[128], nm[64];
  snprintf(hp, sizeof hp, "tests/ref/head_%s.safetensors", tag);
  knobs_head *h = NULL;
  kn_safetensors st;
  if (knobs_head_load(hp, &h) || kn_st_read("tests/ref/head_ref.safetensors", &st)) {
    CHECK(0, "load: %s", knobs_last_error());
    knobs_head_free(h);
    return;
  }
  CHECK(knobs_head_dim(h) == Z, "dim %d, want %d", knobs_head_dim(h), Z);
  enum { N = 7 };
  float codes[N * 8], dyf[N], yref[N], dzref[N * 8], dz[N * 8], y32[N];
  double y[N], dy[N];
  int64_t sc[2] = {N, Z}, s1[1] = {N};
  snprintf(nm, sizeof nm, "%s.codes", tag);
  knobs_status s = kn_st_get_f32(&st, nm, 2, sc, codes);
  snprintf(nm, sizeof nm, "%s.dy", tag);
  if (!s) s = kn_st_get_f32(&st, nm, 1, s1, dyf);
  snprintf(nm, sizeof nm, "%s.y", tag);
  if (!s) s = kn_st_get_f32(&st, nm, 1, s1, yref);
  snprintf(nm, sizeof nm, "%s.dz", tag);
  if (!s) s = kn_st_get_f32(&st, nm, 2, sc, dzref);
  CHECK(!s, "reference tensors: %s", knobs_last_error());
  if (!s) {
    for (int i = 0; i < N; i++) dy[i] = dyf[i];
    /* dz accumulates: start from 1 and compare dz - 1 */
    for (int i = 0; i < N * Z; i++) dz[i] = 1.0f;
    s = knobs_head_eval(h, codes, N, y, dy, dz);
    CHECK(!s, "eval: %s", knobs_last_error());
    for (int i = 0; i < N; i++) y32[i] = (float)y[i];
    for (int i = 0; i < N * Z; i++) dz[i] -= 1.0f;
    CHECK_CLOSE(y32, yref, N, 1e-5, 1e-6);
    CHECK_CLOSE(dz, dzref, (size_t)N * Z, 1e-4, 1e-6);
    /* dy NULL means ones; dz NULL is only the predictions */
    float dz1[N * 8] = {0}, dz2[N * 8] = {0};
    double ones[N], y2[N];
    for (int i = 0; i < N; i++) ones[i] = 1;
    knobs_head_eval(h, codes, N, y2, NULL, dz1);
    knobs_head_eval(h, codes, N, y2, ones, dz2);
    CHECK(!memcmp(dz1, dz2, sizeof dz1), "dy NULL differs from dy = 1");
    s = knobs_head_eval(h, codes, N, y2, dy, NULL);
    CHECK(!s && !memcmp(y, y2, sizeof y), "predictions without gradients differ");
  }
  kn_st_free(&st);
  knobs_head_free(h);
}

/* ---- finite differences of the input gradient ------------------------------------------------ */
/* L(z) = sum_i dy_i head(z_i); dL/dz_ij against (L(z + h e_ij) - L(z - h e_ij)) / 2h in double
 * from float evaluations, h = 1e-2 (the head is piecewise linear in z between ReLU kinks; a
 * kink within +-h of a test point breaks that entry, so 90% must agree within 1e-2 relative
 * and the median within 1e-3). */
static void fd_head(knobs_head *h, const char *name, int n) {
  T_CASE(name);
  int Z = knobs_head_dim(h);
  float *z = normal_codes(n, Z, 5), *dz = calloc((size_t)n * Z, sizeof(float));
  double *dy = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), *errs = malloc(sizeof(double) * n * Z);
  for (int i = 0; i < n; i++) dy[i] = 0.5 + 0.25 * (i % 5);
  knobs_head_eval(h, z, n, y, dy, dz);
  int ne = 0, bad = 0;
  const double step = 1e-2;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < Z; j++) {
      float *zi = z + (size_t)i * Z, o = zi[j];
      double yp, ym;
      zi[j] = o + (float)step;
      knobs_head_eval(h, zi, 1, &yp, NULL, NULL);
      zi[j] = o - (float)step;
      knobs_head_eval(h, zi, 1, &ym, NULL, NULL);
      zi[j] = o;
      double fd = dy[i] * (yp - ym) / ((double)(o + (float)step) - (double)(o - (float)step));
      double an = dz[(size_t)i * Z + j];
      double e = fabs(fd - an) / fmax(fabs(fd) + fabs(an), 1e-4);
      errs[ne++] = e;
      if (e > 1e-2) bad++;
    }
  for (int a = 1; a < ne; a++) /* insertion sort for the median */
    for (int b = a; b > 0 && errs[b] < errs[b - 1]; b--) {
      double t = errs[b];
      errs[b] = errs[b - 1], errs[b - 1] = t;
    }
  CHECK(bad <= ne / 10, "%d of %d entries disagree by more than 1e-2", bad, ne);
  CHECK(errs[ne / 2] < 1e-3, "median relative error %g", errs[ne / 2]);
  free(z), free(dz), free(dy), free(y), free(errs);
}

/* ---- fitting ------------------------------------------------------------------------------- */

static knobs_head *fit_linear(uint64_t seed, double *val, float **codes_out, double **y_out, int n) {
  int Z = 4;
  float *z = normal_codes(n, Z, 11);
  double *y = malloc(sizeof(double) * n);
  kn_rng r;
  kn_rng_seed(&r, 3, 3);
  for (int i = 0; i < n; i++) y[i] = 2.0 * z[i * Z] - z[i * Z + 1] + 0.1 * kn_rng_normal(&r);
  knobs_head_opts o;
  knobs_head_opts_default(&o);
  o.hidden = 32, o.steps = 1500, o.seed = seed;
  knobs_head *h = NULL;
  if (knobs_head_fit(z, y, n, Z, &o, &h, val)) CHECK(0, "fit: %s", knobs_last_error());
  if (codes_out) *codes_out = z;
  else free(z);
  if (y_out) *y_out = y;
  else free(y);
  return h;
}

static void test_fit_regression(void) {
  T_CASE("fit y = 2 z0 - z1 + 0.1 noise");
  double val = -1;
  knobs_head *h = fit_linear(0, &val, NULL, NULL, 3000);
  if (!h) return;
  CHECK(val > 0.05 && val < 0.2, "held-out RMSE %g, the noise is 0.1", val);
  float q[3 * 4] = {1, 0.5f, 0, 0, -1, 1, 0.3f, -0.2f, 0, 0, 0, 0};
  double y[3], want[3] = {1.5, -3, 0};
  knobs_head_eval(h, q, 3, y, NULL, NULL);
  for (int i = 0; i < 3; i++) CHECK_NEAR(y[i], want[i], 0.25);
  /* the gradient of a near-linear function: about (2, -1, 0, 0) */
  float dz[4] = {0};
  knobs_head_eval(h, q + 8, 1, y, NULL, dz);
  CHECK(fabs(dz[0] - 2) < 0.3 && fabs(dz[1] + 1) < 0.3 && fabs(dz[2]) < 0.3 && fabs(dz[3]) < 0.3,
        "gradient at 0: %g %g %g %g", dz[0], dz[1], dz[2], dz[3]);
  fd_head(h, "fd fitted regression head", 20);
  knobs_head_free(h);
}

static void test_fit_logistic(void) {
  T_CASE("fit logistic: y = [z0 + z1 > 0]");
  int n = 3000, Z = 3;
  float *z = normal_codes(n, Z, 21);
  double *y = malloc(sizeof(double) * n);
  for (int i = 0; i < n; i++) y[i] = z[i * Z] + z[i * Z + 1] > 0;
  knobs_head_opts o;
  knobs_head_opts_default(&o);
  o.logistic = 1, o.hidden = 16, o.steps = 1500, o.lr = 3e-3;
  knobs_head *h = NULL;
  double val = -1;
  knobs_status s = knobs_head_fit(z, y, n, Z, &o, &h, &val);
  CHECK(!s, "fit: %s", knobs_last_error());
  if (!s) {
    CHECK(val >= 0 && val < 0.04, "held-out error rate %g", val);
    float q[2 * 3] = {2, 1, 0, -1, -2, 0.5f};
    double p[2];
    knobs_head_eval(h, q, 2, p, NULL, NULL);
    CHECK(p[0] > 0.9 && p[0] <= 1 && p[1] < 0.1 && p[1] >= 0, "probabilities %g %g", p[0], p[1]);
    fd_head(h, "fd fitted logistic head", 20);
  }
  knobs_head_free(h);
  free(z), free(y);
}

static void test_determinism_and_files(void) {
  T_CASE("determinism, save/load");
  double v1, v2, v3;
  float *codes;
  double *labels;
  int n = 600;
  knobs_head *a = fit_linear(4, &v1, &codes, &labels, n), *b = fit_linear(4, &v2, NULL, NULL, n),
             *c = fit_linear(5, &v3, NULL, NULL, n);
  if (!a || !b || !c) goto out;
  double ya[600], yb[600], yc[600];
  knobs_head_eval(a, codes, n, ya, NULL, NULL);
  knobs_head_eval(b, codes, n, yb, NULL, NULL);
  knobs_head_eval(c, codes, n, yc, NULL, NULL);
  CHECK(v1 == v2 && !memcmp(ya, yb, sizeof ya), "same seed, different heads (%g vs %g)", v1, v2);
  CHECK(memcmp(ya, yc, sizeof ya) != 0, "another seed gave the same head");
  /* round trip: bit-exact predictions and gradients */
  const char *p = path_in("h.safetensors");
  knobs_status s = knobs_head_save(a, p);
  CHECK(!s, "save: %s", knobs_last_error());
  knobs_head *l = NULL;
  s = knobs_head_load(p, &l);
  CHECK(!s, "load: %s", knobs_last_error());
  if (l) {
    double yl[600];
    float *da = calloc((size_t)n * 4, sizeof(float)), *dl = calloc((size_t)n * 4, sizeof(float));
    knobs_head_eval(a, codes, n, ya, labels, da);
    knobs_head_eval(l, codes, n, yl, labels, dl);
    CHECK(knobs_head_dim(l) == 4, "dim %d", knobs_head_dim(l));
    CHECK(!memcmp(ya, yl, sizeof ya), "predictions differ after the round trip");
    CHECK(!memcmp(da, dl, sizeof(float) * (size_t)n * 4), "gradients differ after the round trip");
    free(da), free(dl);
    /* the names and metadata of the file */
    kn_safetensors st;
    if (!kn_st_read(p, &st)) {
      CHECK(st.n == 6 && kn_st_find(&st, "0.weight") && kn_st_find(&st, "2.bias") && kn_st_find(&st, "4.weight") &&
                !kn_st_find(&st, "1.weight"),
            "%d tensors, not those of Sequential(Linear, ReLU, Linear, ReLU, Linear)", st.n);
      CHECK(contains(st.metadata_json, "\"kind\":\"knobs_head\"") && contains(st.metadata_json, "\"Z\":\"4\"") &&
                contains(st.metadata_json, "\"hidden\":\"32\""),
            "metadata %s", st.metadata_json ? st.metadata_json : "(none)");
      kn_st_free(&st);
    }
    /* a truncated copy is refused, naming the file */
    char *bytes = NULL;
    size_t nb = 0;
    if (!kn_read_file(p, 1 << 20, &bytes, &nb)) {
      const char *tp = path_in("trunc.safetensors");
      kn_write_file(tp, bytes, nb - 7);
      knobs_head *t = (knobs_head *)1;
      s = knobs_head_load(tp, &t);
      CHECK(s && !t && contains(knobs_last_error(), tp), "truncated file: status %d: %s", s, knobs_last_error());
      kn_write_file(tp, bytes, 5);
      s = knobs_head_load(tp, &t);
      CHECK(s && contains(knobs_last_error(), tp), "5-byte file: %s", knobs_last_error());
      free(bytes);
    }
  }
  knobs_head_free(l);
out:
  knobs_head_free(a), knobs_head_free(b), knobs_head_free(c);
  free(codes), free(labels);
}

/* ---- refusals -------------------------------------------------------------------------------- */

static void test_bad_fit_inputs(void) {
  T_CASE("fit refusals");
  int n = 50, Z = 2;
  float *z = normal_codes(n, Z, 9);
  double *y = malloc(sizeof(double) * n);
  for (int i = 0; i < n; i++) y[i] = z[i * Z];
  knobs_head_opts o;
  knobs_head_opts_default(&o);
  o.steps = 5;
  knobs_head *h = (knobs_head *)1;
  knobs_status s;

  z[7] = NAN;
  s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_DATA && !h && contains(knobs_last_error(), "code 3"), "NaN code: %d %s", s, knobs_last_error());
  z[7] = 0.5f;
  y[4] = NAN;
  s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_DATA && contains(knobs_last_error(), "label 4"), "NaN label: %s", knobs_last_error());
  for (int i = 0; i < n; i++) y[i] = 3;
  s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_DATA && contains(knobs_last_error(), "all 3"), "constant labels: %s", knobs_last_error());
  o.logistic = 1;
  for (int i = 0; i < n; i++) y[i] = i % 2;
  y[6] = 2;
  s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_DATA && contains(knobs_last_error(), "label 6"), "label 2 for a logistic head: %s",
        knobs_last_error());
  y[6] = 0;
  s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  CHECK(!s && h, "a good logistic fit: %s", knobs_last_error());
  knobs_head_free(h);
  h = (knobs_head *)1;
  o.logistic = 0;
  s = knobs_head_fit(z, y, 1, Z, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_ARG && !h, "one row: %d", s);
  s = knobs_head_fit(z, y, n, 0, &o, &h, NULL);
  CHECK(s == KNOBS_ERR_ARG, "Z 0: %d", s);
  knobs_head_opts b = o;
  b.val_frac = 1;
  CHECK(knobs_head_fit(z, y, n, Z, &b, &h, NULL) == KNOBS_ERR_ARG, "val_frac 1");
  b = o, b.lr = 0;
  CHECK(knobs_head_fit(z, y, n, Z, &b, &h, NULL) == KNOBS_ERR_ARG, "lr 0");
  b = o, b.layers = -1;
  CHECK(knobs_head_fit(z, y, n, Z, &b, &h, NULL) == KNOBS_ERR_ARG, "layers -1");
  b = o, b.hidden = 0;
  CHECK(knobs_head_fit(z, y, n, Z, &b, &h, NULL) == KNOBS_ERR_ARG, "hidden 0");
  b = o, b.logistic = 2;
  CHECK(knobs_head_fit(z, y, n, Z, &b, &h, NULL) == KNOBS_ERR_ARG, "logistic 2");
  CHECK(knobs_head_fit(NULL, y, n, Z, &o, &h, NULL) == KNOBS_ERR_ARG, "NULL codes");
  /* no hidden layer: a linear head, and val_frac 0 reports the training error */
  for (int i = 0; i < n; i++) y[i] = z[i * Z];
  b = o, b.layers = 0, b.val_frac = 0, b.steps = 800, b.lr = 1e-2;
  double val = -1;
  s = knobs_head_fit(z, y, n, Z, &b, &h, &val);
  CHECK(!s && val >= 0 && val < 0.05, "linear head on y = z0: %s, training RMSE %g", knobs_last_error(), val);
  if (!s) {
    const char *p = path_in("linear.safetensors");
    knobs_head *l = NULL;
    s = knobs_head_save(h, p);
    if (!s) s = knobs_head_load(p, &l);
    CHECK(!s && knobs_head_dim(l) == Z, "linear head round trip: %s", knobs_last_error());
    double y1, y2;
    if (l) knobs_head_eval(h, z, 1, &y1, NULL, NULL), knobs_head_eval(l, z, 1, &y2, NULL, NULL);
    CHECK(l && y1 == y2, "linear head round trip predictions");
    knobs_head_free(l);
    knobs_head_free(h);
  }
  free(z), free(y);
}

static void test_bad_eval_and_files(void) {
  T_CASE("eval and load refusals");
  knobs_head *h = NULL;
  if (knobs_head_load("tests/ref/head_reg.safetensors", &h)) {
    CHECK(0, "load: %s", knobs_last_error());
    return;
  }
  float z[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  double y[2];
  z[6] = NAN;
  knobs_status s = knobs_head_eval(h, z, 2, y, NULL, NULL);
  CHECK(s == KNOBS_ERR_ARG && contains(knobs_last_error(), "code 1, latent 1"), "NaN code: %s", knobs_last_error());
  CHECK(knobs_head_eval(h, z, -1, y, NULL, NULL) == KNOBS_ERR_ARG, "negative n");
  CHECK(knobs_head_eval(NULL, z, 1, y, NULL, NULL) == KNOBS_ERR_ARG, "NULL head");
  CHECK(knobs_head_eval(h, NULL, 0, NULL, NULL, NULL) == KNOBS_OK, "n 0");
  /* the width is what the file says: a caller with other codes checks knobs_head_dim */
  CHECK(knobs_head_dim(h) == 5, "dim %d", knobs_head_dim(h));
  knobs_head_free(h);

  knobs_head *t = (knobs_head *)1;
  s = knobs_head_load(path_in("nosuch.safetensors"), &t);
  CHECK(s == KNOBS_ERR_IO && !t && contains(knobs_last_error(), "nosuch.safetensors"), "missing file: %d %s", s,
        knobs_last_error());
  /* foreign: a safetensors file that is not a head (the reference values) */
  s = knobs_head_load("tests/ref/head_ref.safetensors", &t);
  CHECK(s == KNOBS_ERR_FORMAT && contains(knobs_last_error(), "head_ref.safetensors") &&
            contains(knobs_last_error(), "not a knobs property head"),
        "foreign file: %s", knobs_last_error());
  /* a head file whose tensors do not match its metadata */
  float w[6] = {0}, b[1] = {0};
  kn_st_entry e[2] = {{.name = "0.weight", .dtype = KNOBS_F32, .ndim = 2, .shape = {1, 6}, .data = w},
                      {.name = "0.bias", .dtype = KNOBS_F32, .ndim = 1, .shape = {1}, .data = b}};
  const char *p = path_in("bad.safetensors");
  const char *meta = "{\"kind\":\"knobs_head\",\"Z\":\"5\",\"hidden\":\"0\",\"layers\":\"0\",\"logistic\":\"0\"}";
  kn_st_write(p, e, 2, meta);
  s = knobs_head_load(p, &t);
  CHECK(s == KNOBS_ERR_FORMAT && contains(knobs_last_error(), "0.weight") && contains(knobs_last_error(), p),
        "wrong shape: %s", knobs_last_error());
  kn_st_write(p, e, 1, meta);
  s = knobs_head_load(p, &t);
  CHECK(s == KNOBS_ERR_FORMAT && contains(knobs_last_error(), "1 tensors"), "missing tensor: %s", knobs_last_error());
  kn_st_write(p, e, 2, "{\"kind\":\"knobs_head\",\"Z\":\"6\",\"hidden\":\"0\",\"layers\":\"x\",\"logistic\":\"0\"}");
  s = knobs_head_load(p, &t);
  CHECK(s == KNOBS_ERR_FORMAT && contains(knobs_last_error(), "'layers'"), "bad layers: %s", knobs_last_error());
  w[2] = INFINITY;
  kn_st_write(p, e, 2, "{\"kind\":\"knobs_head\",\"Z\":\"6\",\"hidden\":\"0\",\"layers\":\"0\",\"logistic\":\"0\"}");
  s = knobs_head_load(p, &t);
  CHECK(s == KNOBS_ERR_DATA && contains(knobs_last_error(), "parameter 2"), "Inf weight: %s", knobs_last_error());
  w[2] = 0;
  kn_st_write(p, e, 2, "{\"kind\":\"knobs_head\",\"Z\":\"6\",\"hidden\":\"0\",\"layers\":\"0\",\"logistic\":\"0\"}");
  s = knobs_head_load(p, &t);
  CHECK(!s && knobs_head_dim(t) == 6, "a hand-written linear head loads: %s", knobs_last_error());
  knobs_head_free(t);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  test_defaults();
  test_reference("reg", 5);
  test_reference("log", 3);
  knobs_head *h = NULL;
  if (!knobs_head_load("tests/ref/head_reg.safetensors", &h)) fd_head(h, "fd torch regression head", 30);
  knobs_head_free(h);
  h = NULL;
  if (!knobs_head_load("tests/ref/head_log.safetensors", &h)) fd_head(h, "fd torch logistic head", 30);
  knobs_head_free(h);
  test_fit_regression();
  test_fit_logistic();
  test_determinism_and_files();
  test_bad_fit_inputs();
  test_bad_eval_and_files();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
