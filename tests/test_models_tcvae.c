/* test_models_tcvae.c: beta-TCVAE and its total-correlation estimators.
 * - Known total correlation: posteriors N(mu_n, s^2 I) with mu_n ~ N(0, R - s^2 I) over a
 *   dataset of N = 1e6 points make the aggregate posterior q(z) = N(0, R), whose total
 *   correlation is -1/2 log det R (R a correlation matrix). The stratified estimator (mss)
 *   converges to it as the batch grows (batch sizes 32 ... 2048, the error of the mean over
 *   repeated batches must shrink and end within 0.03 nats); for R = I it converges to 0, from
 *   below (log of an unbiased density estimate is biased low, more so in more dimensions: the
 *   honest negative values of a small batch). The weighted estimator (mws, Chen et al.'s code)
 *   carries its documented offset: mws - mss = (Z-1) log N within 0.05 nats at batch 2048.
 * - The estimator's gradient (both estimators, unequal alpha, beta, gamma) against central
 *   differences in double.
 * - The whole model: finite differences of the loss (mlp with both estimators, conv 28x28),
 *   determinism and resume, and the PyTorch references (tests/ref/models_tcvae_*.safetensors). */
#include "t.h"
#include "models_t.h"

/* mean over `reps` batches of M samples of the TC estimate; z ~ N(0, R) with R having
 * correlation rho between dimensions 0 and 1 (Z = 3) */
static double tc_mean(int M, int reps, double rho, int mss, double N, uint64_t seed) {
  const int Z = 3;
  const double s2 = 0.15;
  float *z = malloc(sizeof(float) * M * Z), *mu = malloc(sizeof(float) * M * Z), *lv = malloc(sizeof(float) * M * Z);
  double *scratch = malloc(sizeof(double) * kn_tc_scratch(M, Z)), sum = 0;
  kn_rng r;
  kn_rng_seed(&r, seed, (uint64_t)M);
  /* mu = A u with A A^T = R - s2 I (2x2 block: Cholesky), u ~ N(0, I) */
  double a = 1 - s2, c = rho, l11 = sqrt(a), l21 = c / l11, l22 = sqrt(a - l21 * l21);
  for (int rep = 0; rep < reps; rep++) {
    for (int i = 0; i < M; i++) {
      double u0 = kn_rng_normal(&r), u1 = kn_rng_normal(&r), u2 = kn_rng_normal(&r);
      double m[3] = {l11 * u0, l21 * u0 + l22 * u1, sqrt(a) * u2};
      for (int d = 0; d < Z; d++) {
        mu[i * Z + d] = (float)m[d];
        lv[i * Z + d] = (float)log(s2);
        z[i * Z + d] = (float)(m[d] + sqrt(s2) * kn_rng_normal(&r));
      }
    }
    kn_tc_terms t;
    kn_tc_estimate(z, mu, lv, M, Z, N, mss, 1, 1, 1, 1.0f, NULL, NULL, NULL, scratch, &t);
    sum += t.tc;
  }
  free(z), free(mu), free(lv), free(scratch);
  return sum / reps;
}

static void test_known_tc(void) {
  const double N = 1e6;
  const int Ms[] = {32, 128, 512, 2048}, reps[] = {256, 64, 16, 4};
  for (int c = 0; c < 2; c++) {
    double rho = c ? 0.8 : 0.0, truth = -0.5 * log(1 - rho * rho), err[4];
    T_CASE(c ? "known TC: correlated Gaussian" : "known TC: independent latents");
    for (int i = 0; i < 4; i++) {
      double e = tc_mean(Ms[i], reps[i], rho, 1, N, 11);
      err[i] = e - truth;
      if (getenv("KNOBS_TEST_VERBOSE")) fprintf(stderr, "rho %.1f batch %4d: mss TC %.4f (truth %.4f)\n", rho, Ms[i], e, truth);
    }
    CHECK(fabs(err[3]) < 0.03, "mss at batch 2048: error %.4f nats", err[3]);
    CHECK(fabs(err[3]) < fabs(err[1]) && fabs(err[1]) < fabs(err[0]), "no convergence: errors %.4f %.4f %.4f %.4f",
          err[0], err[1], err[2], err[3]);
    if (!c) CHECK(err[0] < 0, "independent latents, batch 32: expected the estimator's negative bias, got %.4f", err[0]);
    double mws = tc_mean(2048, 2, rho, 0, N, 11), mss = tc_mean(2048, 2, rho, 1, N, 11);
    if (getenv("KNOBS_TEST_VERBOSE")) fprintf(stderr, "mws - mss - 2 log N = %.4f\n", mws - mss - 2 * log(N));
    CHECK(fabs(mws - mss - 2 * log(N)) < 0.1, "mws - mss = %.4f, want (Z-1) log N = %.4f", mws - mss, 2 * log(N));
  }
}

static double tc_objective(const float *z, const float *mu, const float *lv, int M, int Z, double N, int mss,
                           double *scratch) {
  kn_tc_terms t;
  kn_tc_estimate(z, mu, lv, M, Z, N, mss, 0.7, 3.0, 1.3, 1.0f, NULL, NULL, NULL, scratch, &t);
  return 0.7 * t.mi + 3.0 * t.tc + 1.3 * t.dw;
}

static void test_estimator_gradient(int mss) {
  T_CASE(mss ? "tc estimator gradient mss" : "tc estimator gradient mws");
  enum { M = 5, Z = 3 };
  float z[M * Z], mu[M * Z], lv[M * Z], dz[M * Z] = {0}, dmu[M * Z] = {0}, dlv[M * Z] = {0};
  double scratch[1024];
  kn_rng r;
  kn_rng_seed(&r, 5, 5);
  kn_rng_uniform_fill(&r, mu, M * Z, -1, 1);
  kn_rng_uniform_fill(&r, lv, M * Z, -1.5f, 0.5f);
  for (int i = 0; i < M * Z; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * (float)kn_rng_normal(&r);
  kn_tc_terms t;
  kn_tc_estimate(z, mu, lv, M, Z, 1000, mss, 0.7, 3.0, 1.3, 1.0f, dz, dmu, dlv, scratch, &t);
  CHECK(fabs(t.mi + t.tc + t.dw - (t.logqzx - t.logpz)) < 1e-9, "mi + tc + dw != E[log q(z|x) - log p(z)]");
  float *in[3] = {z, mu, lv}, *g[3] = {dz, dmu, dlv};
  double worst = 0;
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < M * Z; i++) {
      float o = in[a][i];
      const double h = 1e-3;
      in[a][i] = o + (float)h;
      double lp = tc_objective(z, mu, lv, M, Z, 1000, mss, scratch);
      in[a][i] = o - (float)h;
      double lm = tc_objective(z, mu, lv, M, Z, 1000, mss, scratch);
      in[a][i] = o;
      double num = (lp - lm) / (2 * h);
      worst = fmax(worst, fabs(num - g[a][i]) / fmax(fabs(num), 1e-2));
    }
  /* h = 1e-3 central differences of a double function of float inputs: O(h^2) ~ 1e-6 plus
   * float rounding of the gradient (1e-7): 1e-4 leaves room and still catches a wrong term */
  CHECK(worst < 1e-4, "worst relative gradient error %.3g", worst);
}

int main(void) {
  char dir[] = "/tmp/knobs-test-tcvae-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  test_known_tc();
  test_estimator_gradient(1);
  test_estimator_gradient(0);
  static const char *const terms[] = {"loss"};
  knobs_data *d28 = mt_toy_open(28, 4), *d8 = mt_toy_open(8, 4);
  for (int e = 0; e < 2; e++) {
    knobs_config c = mt_config("tcvae", "conv", 28);
    if (!e) mt_fd(c, terms, 10, 2e-3, d28); /* mss; the estimators differ only in their weights */
    c = mt_config("tcvae", "mlp", 8);
    mt_set_str(&c, "estimator", e ? "mws" : "mss");
    mt_fd(c, terms, 10, 2e-3, d8);
  }
  mt_determinism(mt_config("tcvae", "conv", 28), d28, dir);
  mt_determinism(mt_config("tcvae", "mlp", 8), d8, dir);
  mt_inference(mt_config("tcvae", "conv", 28), d28);
  mt_tol tol = {2e-4, 1e-6, 1e-5, 1e-4, 1e-6, 20};
  const char *files[] = {"models_tcvae_conv.safetensors", "models_tcvae_mlp.safetensors"};
  mt_references(files, 2, tol);
  knobs_data_free(d28), knobs_data_free(d8);
  return mt_finish(dir);
}
