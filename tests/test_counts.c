/* test_counts.c: the NB and ZINB likelihoods of src/nn/counts.c.
 * - digamma against known values and against central differences of lgamma;
 * - the elementwise log p and its partials in mu, theta, pi against central differences (double);
 * - the batch loss's gradients w.r.t. logits (through the softmax), px_r and pi against central
 *   differences of the loss (the loss is computed in double, so differences of float inputs
 *   are accurate to ~1e-6 relative);
 * - PyTorch (tests/ref/make_counts_ref.py, torch 1.13 autograd in float64 through scVI's
 *   formulas): loss and per-cell values to 1e-9 relative (both in double; lgamma
 *   implementations differ in the last bits), gradients (stored as float32) to 1e-5 relative +
 *   1e-6 absolute of the largest gradient of that tensor;
 * - the results do not depend on the thread count nor on the work buffer (bit for bit), and a
 *   given library size equal to the row sums changes nothing. */
#include <float.h>

#include "io/io.h"
#include "nn/nn.h"
#include "t.h"

static kn_rng R;

static void test_digamma(void) {
  T_CASE("digamma");
  const double g = 0.57721566490153286061;
  CHECK_NEAR(kn_digamma(1), -g, 1e-14);
  CHECK_NEAR(kn_digamma(0.5), -g - 2 * log(2.0), 1e-14);
  CHECK_NEAR(kn_digamma(10), 2.2517525890667211076, 1e-14);
  CHECK_NEAR(kn_digamma(1e-3), -1000.5755719318103, 1e-10);
  double worst = 0;
  for (double x = 0.01; x < 1e5; x *= 1.7) {
    double h = 1e-4 * x, fd = (lgamma(x + h) - lgamma(x - h)) / (2 * h);
    worst = fmax(worst, fabs(fd - kn_digamma(x)) / fmax(1, fabs(fd)));
  }
  CHECK(worst < 1e-6, "digamma vs lgamma differences: rel err %g", worst);
}

static void test_elementwise(void) {
  T_CASE("log p partials");
  const double xs[] = {0, 1, 3, 17, 250};
  const double mus[] = {1e-3, 0.4, 5, 300};
  const double ths[] = {0.05, 1.3, 40, 3e4};
  const double pis[] = {NAN, -3, 0.2, 4};
  double worst = 0;
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++)
        for (int d = 0; d < 4; d++) {
          double x = xs[a], mu = mus[b], th = ths[c], pi = pis[d], dmu, dth, dpi;
          kn_counts_logp(x, mu, th, pi, &dmu, &dth, &dpi);
          double hm = 1e-5 * mu, ht = 1e-5 * th, hp = 1e-5;
          double fm = (kn_counts_logp(x, mu + hm, th, pi, 0, 0, 0) - kn_counts_logp(x, mu - hm, th, pi, 0, 0, 0)) / (2 * hm);
          double ft = (kn_counts_logp(x, mu, th + ht, pi, 0, 0, 0) - kn_counts_logp(x, mu, th - ht, pi, 0, 0, 0)) / (2 * ht);
          /* in the log-scale partials (d/dlog mu, d/dlog theta: px_r is log theta), relative
           * above 1 and absolute below (differences of lgamma(x + 3e4) lose ~1e-10) */
          double em = fabs(fm - dmu) * mu / fmax(1, fabs(dmu) * mu);
          double et = fabs(ft - dth) * th / fmax(1, fabs(dth) * th);
          worst = fmax(worst, fmax(em, et));
          if (!isnan(pi)) {
            double fp = (kn_counts_logp(x, mu, th, pi + hp, 0, 0, 0) - kn_counts_logp(x, mu, th, pi - hp, 0, 0, 0)) / (2 * hp);
            worst = fmax(worst, fabs(fp - dpi) / fmax(1, fabs(dpi)));
          } else {
            CHECK(dpi == 0, "NB has no pi gradient: %g", dpi);
          }
        }
  CHECK(worst < 1e-5, "elementwise partials vs central differences: rel err %g", worst);

  T_CASE("log p values");
  /* NB(x=0 | mu, theta) = (theta / (theta + mu))^theta; Poisson limit for theta -> inf */
  CHECK_NEAR(kn_counts_logp(0, 2, 3, NAN, 0, 0, 0), 3 * log(3.0 / 5.0), 1e-8);
  CHECK_NEAR(kn_counts_logp(4, 2, 1e9, NAN, 0, 0, 0), 4 * log(2.0) - 2 - lgamma(5), 1e-6);
  /* geometric: theta = 1, p(x) = (1/(1+mu)) (mu/(1+mu))^x */
  CHECK_NEAR(kn_counts_logp(3, 2, 1, NAN, 0, 0, 0), log(1.0 / 3) + 3 * log(2.0 / 3), 1e-7);
  /* ZINB: pi = logit of dropout d; p(0) = d + (1 - d) NB(0), p(x>0) = (1 - d) NB(x) */
  double dr = 1 / (1 + exp(-0.7)), nb0 = pow(3.0 / 5.0, 3);
  CHECK_NEAR(kn_counts_logp(0, 2, 3, 0.7, 0, 0, 0), log(dr + (1 - dr) * nb0), 1e-8);
  CHECK_NEAR(kn_counts_logp(3, 2, 1, 0.7, 0, 0, 0), log(1 - dr) + log(1.0 / 3) + 3 * log(2.0 / 3), 1e-7);
}

typedef struct {
  kn_counts_batch in;
  float *logits, *px_r, *pi;
} batch;

static double loss_of(batch *b, int zinb) {
  kn_counts_batch in = b->in;
  if (!zinb) in.pi = NULL;
  return kn_counts_loss(NULL, &in, NULL, 1.0f);
}

/* worst relative error of g against central differences of the loss in the n floats of v */
static double fd_check(batch *b, int zinb, float *v, const float *g, size_t n, float h) {
  double worst = 0, gmax = 0;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
  for (size_t i = 0; i < n; i++) {
    float o = v[i];
    v[i] = o + h;
    double lp = loss_of(b, zinb);
    v[i] = o - h;
    double lm = loss_of(b, zinb);
    v[i] = o;
    double fd = (lp - lm) / (2 * (double)h);
    worst = fmax(worst, fabs(fd - g[i]) / fmax(fabs(g[i]), 1e-2 * gmax + 1e-6));
  }
  return worst;
}

static void test_fd(void) {
  enum { B = 5, G = 8 };
  float x[B * G], logits[B * G], px_r[G], pi[B * G];
  for (int i = 0; i < B * G; i++) {
    uint32_t u = kn_rng_below(&R, 10);
    x[i] = u < 4 ? 0 : (float)kn_rng_below(&R, u < 8 ? 6 : 60);
  }
  kn_rng_uniform_fill(&R, logits, B * G, -2, 2);
  kn_rng_uniform_fill(&R, px_r, G, -2, 3);
  kn_rng_uniform_fill(&R, pi, B * G, -3, 3);
  batch b = {{.x = x, .logits = logits, .px_r = px_r, .pi = pi, .B = B, .G = G}, logits, px_r, pi};
  for (int zinb = 0; zinb < 2; zinb++) {
    T_CASE(zinb ? "zinb gradients" : "nb gradients");
    float dl[B * G] = {0}, dr[G] = {0}, dp[B * G] = {0};
    double per[B];
    kn_counts_batch in = b.in;
    if (!zinb) in.pi = NULL;
    kn_counts_grad g = {dl, dr, dp, per};
    double L = kn_counts_loss(NULL, &in, &g, 1.0f);
    double s = 0;
    for (int i = 0; i < B; i++) s += per[i];
    CHECK_NEAR(L, s / B, 1e-12 * fabs(L));
    double e1 = fd_check(&b, zinb, logits, dl, B * G, 1e-2f);
    double e2 = fd_check(&b, zinb, px_r, dr, G, 1e-2f);
    CHECK(e1 < 1e-3, "dlogits vs central differences: rel err %g", e1);
    CHECK(e2 < 1e-3, "dpx_r vs central differences: rel err %g", e2);
    if (zinb) {
      double e3 = fd_check(&b, zinb, pi, dp, B * G, 1e-2f);
      CHECK(e3 < 1e-3, "dpi vs central differences: rel err %g", e3);
    } else {
      double z = 0;
      for (int i = 0; i < B * G; i++) z = fmax(z, fabs(dp[i]));
      CHECK(z == 0, "NB wrote a pi gradient: %g", z);
    }
    /* the softmax is shift invariant: the logit gradients of a cell sum to 0 */
    double worst = 0;
    for (int r = 0; r < B; r++) {
      double t = 0;
      for (int k = 0; k < G; k++) t += dl[r * G + k];
      worst = fmax(worst, fabs(t));
    }
    CHECK(worst < 1e-5, "logit gradients of a cell sum to %g", worst);
    /* scale and accumulation: a second call with scale 2 adds twice the first */
    float dl2[B * G];
    memcpy(dl2, dl, sizeof dl);
    kn_counts_grad g2 = {dl2, NULL, NULL, NULL};
    kn_counts_loss(NULL, &in, &g2, 2.0f);
    for (int i = 0; i < B * G; i++) worst = fmax(worst, fabs(dl2[i] - 3 * dl[i]) / (fabs(dl[i]) + 1e-6));
    CHECK(worst < 1e-5, "gradients add and scale: worst %g", worst);
  }
}

/* a float tensor of ndim dimensions (shape to sh) as a malloc'd copy; aborts the test if missing */
static float *getf(const kn_safetensors *st, const char *name, int ndim, int64_t *sh) {
  const kn_st_tensor *t = kn_st_find(st, name);
  if (!t || t->ndim != ndim || t->dtype != KNOBS_F32) {
    fprintf(stderr, "reference tensor %s missing or not F32 of %d dimensions\n", name, ndim);
    exit(2);
  }
  for (int i = 0; i < ndim; i++) sh[i] = t->shape[i];
  float *c = malloc(t->end - t->begin);
  if (!c) exit(2);
  memcpy(c, st->data + t->begin, t->end - t->begin);
  return c;
}

static void test_ref(void) {
  kn_safetensors st;
  if (kn_st_read("tests/ref/counts_ref.safetensors", &st)) {
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  const char *cases[] = {"small", "wide"};
  for (int c = 0; c < 2; c++) {
    char nm[128];
    int64_t sh[2];
#define GET(suffix, ndim) (snprintf(nm, sizeof nm, "%s." suffix, cases[c]), getf(&st, nm, ndim, sh))
    T_CASE(cases[c]);
    float *x = GET("x", 2);
    int B = (int)sh[0], G = (int)sh[1];
    float *logits = GET("logits", 2), *px_r = GET("px_r", 1), *pi = GET("pi", 2);
    for (int zinb = 0; zinb < 2; zinb++) {
      const char *m = zinb ? "zinb" : "nb";
      float *dl = calloc((size_t)B * G, 4), *dr = calloc((size_t)G, 4), *dp = calloc((size_t)B * G, 4);
      double *per = malloc(sizeof(double) * B);
      kn_counts_batch in = {.x = x, .logits = logits, .px_r = px_r, .pi = zinb ? pi : NULL, .B = B, .G = G};
      kn_counts_grad g = {dl, dr, dp, per};
      double L = zinb ? kn_zinb_loss(NULL, &in, &g, 1.0f) : kn_nb_loss(NULL, &in, &g, 1.0f);
      const kn_st_tensor *t;
      snprintf(nm, sizeof nm, "%s.%s.loss", cases[c], m);
      t = kn_st_find(&st, nm);
      double want;
      memcpy(&want, st.data + t->begin, 8);
      CHECK(fabs(L - want) <= 1e-9 * fabs(want), "%s %s loss %.12g, torch %.12g", cases[c], m, L, want);
      snprintf(nm, sizeof nm, "%s.%s.per", cases[c], m);
      t = kn_st_find(&st, nm);
      double worst = 0;
      for (int i = 0; i < B; i++) {
        double w;
        memcpy(&w, st.data + t->begin + 8 * (size_t)i, 8);
        worst = fmax(worst, fabs(per[i] - w) / fmax(1, fabs(w)));
      }
      CHECK(worst <= 1e-9, "%s %s per-cell values: rel err %g", cases[c], m, worst);
      const char *gn[3] = {"dlogits", "dpx_r", "dpi"};
      float *gv[3] = {dl, dr, dp};
      for (int q = 0; q < 2 + zinb; q++) {
        char full[40];
        snprintf(full, sizeof full, "%s.%s", m, gn[q]);
        snprintf(nm, sizeof nm, "%s.%s", cases[c], full);
        float *want_g = getf(&st, nm, q == 1 ? 1 : 2, sh);
        size_t n = q == 1 ? (size_t)G : (size_t)B * G;
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(want_g[i]));
        T_CASE(full);
        CHECK_CLOSE(gv[q], want_g, n, 1e-5, 1e-6 * gmax + 1e-30);
        free(want_g);
      }
      free(dl), free(dr), free(dp), free(per);
    }
    free(x), free(logits), free(px_r), free(pi);
#undef GET
  }
  kn_st_free(&st);
}

static void test_threads(void) {
  T_CASE("threads, work buffer and library sizes");
  enum { B = 300, G = 120 }; /* past one 256-cell chunk and the parallel threshold */
  size_t n = (size_t)B * G;
  float *x = malloc(4 * n), *l = malloc(4 * n), *pi = malloc(4 * n), r[G], lib[B];
  for (size_t i = 0; i < n; i++) x[i] = kn_rng_below(&R, 3) ? 0 : (float)kn_rng_below(&R, 30);
  kn_rng_uniform_fill(&R, l, n, -3, 3);
  kn_rng_uniform_fill(&R, pi, n, -3, 3);
  kn_rng_uniform_fill(&R, r, G, -1, 2);
  for (int b = 0; b < B; b++) {
    double s = 0;
    for (int k = 0; k < G; k++) s += x[(size_t)b * G + k];
    lib[b] = (float)s;
  }
  double *work = malloc(sizeof(double) * kn_counts_work_size(B, G));
  kn_pool *pool = kn_pool_create(2);
  for (int zinb = 0; zinb < 2; zinb++) {
    /* one thread, no work buffer, observed sizes; then two threads, the work buffer, given sizes */
    float *d1 = calloc(n, 4), *d2 = calloc(n, 4), *p1 = calloc(n, 4), *p2 = calloc(n, 4);
    float r1[G] = {0}, r2[G] = {0};
    double e1[B], e2[B];
    kn_counts_batch in = {.x = x, .logits = l, .px_r = r, .pi = zinb ? pi : NULL, .B = B, .G = G};
    kn_counts_grad g1 = {d1, r1, p1, e1}, g2 = {d2, r2, p2, e2};
    double L1 = kn_counts_loss(NULL, &in, &g1, 1.0f);
    in.lib = lib, in.work = work;
    double L2 = kn_counts_loss(pool, &in, &g2, 1.0f);
    CHECK(L1 == L2, "%s: loss %.17g, %.17g with two threads, the work buffer and given library sizes",
          zinb ? "zinb" : "nb", L1, L2);
    CHECK(!memcmp(d1, d2, 4 * n) && !memcmp(r1, r2, sizeof r1) && !memcmp(p1, p2, 4 * n) && !memcmp(e1, e2, sizeof e1),
          "%s: gradients differ", zinb ? "zinb" : "nb");
    free(d1), free(d2), free(p1), free(p2);
  }
  kn_pool_free(pool);
  free(x), free(l), free(pi), free(work);
}

/* The public knobs_counts_logp: the closed forms of the NB and ZINB log-probabilities. */
static void test_public(void) {
  T_CASE("knobs_counts_logp");
  double x = 3, mu = 2, th = 5;
  double nb = lgamma(x + th) - lgamma(th) - lgamma(x + 1) + th * log(th / (th + mu)) + x * log(mu / (th + mu));
  CHECK_NEAR(knobs_counts_logp(x, mu, th, NAN, NULL, NULL, NULL), nb, 1e-7);
  double pi = 0.3, p = 1 / (1 + exp(-pi)); /* ZINB: x > 0 takes (1 - p) NB(x) */
  CHECK_NEAR(knobs_counts_logp(x, mu, th, pi, NULL, NULL, NULL), log(1 - p) + nb, 1e-7);
  double nb0 = th * log(th / (th + mu)); /* x = 0: p + (1 - p) NB(0) */
  CHECK_NEAR(knobs_counts_logp(0, mu, th, pi, NULL, NULL, NULL), log(p + (1 - p) * exp(nb0)), 1e-7);
  double d1, d2;
  knobs_counts_logp(x, mu, th, NAN, &d1, NULL, NULL);
  kn_counts_logp(x, mu, th, NAN, &d2, NULL, NULL);
  CHECK(d1 == d2, "the derivative w.r.t. mu: %g vs %g", d1, d2);
}

int main(void) {
  kn_rng_seed(&R, 13, 0);
  test_public();
  test_digamma();
  test_elementwise();
  test_fd();
  test_ref();
  test_threads();
  return t_done();
}
