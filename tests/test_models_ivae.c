/* test_models_ivae.c: iVAE (src/models/ivae.c).
 * - The KL to a learned Gaussian prior: its value at known points (0 for equal Gaussians; the
 *   standard-normal KL of kn_gauss_kl when the prior is N(0, I); a hand-computed case), and its
 *   gradient with respect to the posterior and the prior (mean and log-variance) against
 *   central differences in double, with and without the prior mean.
 * - The aux factor: taken from the data (its classes), refused naming the data's factors when
 *   the data has no such factor, or when its classes differ from aux_classes.
 * - The whole model: finite differences of the loss (mlp, conv 28x28; with and without the
 *   prior mean), determinism and resume, encode/decode, and the PyTorch references
 *   (tests/ref/models_ivae_*.safetensors, written by tests/ref/make_models_ref.py ivae). */
#include "t.h"
#include "models_t.h"

static double kl_value(const float *mu, const float *lv, const float *pm, const float *plv, int B, int Z) {
  kn_kl_pair k = {mu, lv, pm, plv, NULL, NULL, NULL, NULL};
  return kn_gauss_kl_prior(&k, NULL, B, Z, 1.0f);
}

static void test_kl_values(void) {
  T_CASE("kl prior values");
  enum { B = 4, Z = 3 };
  float mu[B * Z], lv[B * Z], zero[B * Z] = {0}, dmu[B * Z] = {0}, dlv[B * Z] = {0}, dmu2[B * Z] = {0}, dlv2[B * Z] = {0};
  kn_rng r;
  kn_rng_seed(&r, 9, 9);
  kn_rng_uniform_fill(&r, mu, B * Z, -1, 1);
  kn_rng_uniform_fill(&r, lv, B * Z, -1, 1);
  CHECK(fabs(kl_value(mu, lv, mu, lv, B, Z)) < 1e-12, "KL(q || q) = %g", kl_value(mu, lv, mu, lv, B, Z));
  /* prior N(0, I): the standard KL, values and gradients */
  double kd1[Z], kd2[Z];
  kn_kl_pair k = {mu, lv, NULL, zero, dmu, dlv, NULL, NULL};
  double a = kn_gauss_kl_prior(&k, kd1, B, Z, 0.7f), b = kn_gauss_kl(dmu2, dlv2, kd2, mu, lv, B, Z, 0.7f);
  CHECK_NEAR(a, b, 1e-6 * fabs(b));
  for (int d = 0; d < Z; d++) CHECK_NEAR(kd1[d], kd2[d], 1e-6 * fabs(kd2[d]) + 1e-9);
  CHECK_CLOSE(dmu, dmu2, (size_t)B * Z, 1e-5, 1e-7);
  CHECK_CLOSE(dlv, dlv2, (size_t)B * Z, 1e-5, 1e-7);
  /* one dimension by hand: KL(N(1, e^0) || N(-1, e^1)) = 0.5 (1 - 0 + (1 + 4) e^-1 - 1) */
  float m1 = 1, l1 = 0, p1 = -1, q1 = 1;
  CHECK_NEAR(kl_value(&m1, &l1, &p1, &q1, 1, 1), 0.5 * 5 * exp(-1.0), 1e-7);
}

static double kl_objective(const float *mu, const float *lv, const float *pm, const float *plv, int B, int Z) {
  return 1.3 * kl_value(mu, lv, pm, plv, B, Z);
}

static void test_kl_gradient(int with_mean) {
  T_CASE(with_mean ? "kl prior gradient (mean and variance)" : "kl prior gradient (variance only)");
  enum { B = 5, Z = 3 };
  float mu[B * Z], lv[B * Z], pm[B * Z], plv[B * Z];
  float dmu[B * Z] = {0}, dlv[B * Z] = {0}, dpm[B * Z] = {0}, dplv[B * Z] = {0};
  kn_rng r;
  kn_rng_seed(&r, 6, 6);
  kn_rng_uniform_fill(&r, mu, B * Z, -1, 1);
  kn_rng_uniform_fill(&r, lv, B * Z, -1.5f, 0.5f);
  kn_rng_uniform_fill(&r, pm, B * Z, -1, 1);
  kn_rng_uniform_fill(&r, plv, B * Z, -1, 1);
  const float *pmp = with_mean ? pm : NULL;
  kn_kl_pair k = {mu, lv, pmp, plv, dmu, dlv, with_mean ? dpm : NULL, dplv};
  kn_gauss_kl_prior(&k, NULL, B, Z, 1.3f);
  float *in[4] = {mu, lv, pm, plv}, *g[4] = {dmu, dlv, dpm, dplv};
  double worst = 0;
  for (int a = 0; a < 4; a++) {
    if (a == 2 && !with_mean) continue;
    for (int i = 0; i < B * Z; i++) {
      float o = in[a][i];
      const double h = 1e-3;
      in[a][i] = o + (float)h;
      double hp = (double)in[a][i] - o, lp = kl_objective(mu, lv, pmp, plv, B, Z);
      in[a][i] = o - (float)h;
      double hm = o - (double)in[a][i], lm = kl_objective(mu, lv, pmp, plv, B, Z);
      in[a][i] = o;
      double num = (lp - lm) / (hp + hm);
      worst = fmax(worst, fabs(num - g[a][i]) / fmax(fabs(num), 1e-2));
    }
  }
  /* central differences of a double function of float inputs at h = 1e-3: O(h^2) ~ 1e-6 and
   * the float rounding of the gradient (1e-7); 1e-4 catches a wrong term by far */
  CHECK(worst < 1e-4, "worst relative gradient error %.3g", worst);
  if (!with_mean) {
    float none[B * Z] = {0};
    CHECK(!memcmp(dpm, none, sizeof none), "no prior mean, yet a gradient to it");
  }
}

/* The aux factor from the data, and the refusals. */
static void test_aux_factor(knobs_data *d8) {
  T_CASE("aux factor from the data");
  knobs_config c = mt_config("ivae", "mlp", 8);
  mt_set(&c, "aux_classes", 0);
  knobs_model *m;
  CHECK(!knobs_config_validate(&c), "the default aux_classes 0 (from the data) refused: %s", knobs_last_error());
  CHECK(knobs_model_create(&c, &m) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "aux_classes"),
        "a model built before the data said how many classes u has: %s", knobs_last_error());
  CHECK(!knobs_config_from_data(&c, d8), "from data: %s", knobs_last_error());
  CHECK(knobs_config_number(&c, "aux_classes") == 4, "aux_classes %g, want the toy's 4", knobs_config_number(&c, "aux_classes"));
  CHECK(!knobs_config_validate(&c), "validate: %s", knobs_last_error());
  mt_set(&c, "aux_classes", 5);
  CHECK(knobs_config_from_data(&c, d8) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "4 classes") &&
            strstr(knobs_last_error(), "aux_classes 5"),
        "a size mismatch: %s", knobs_last_error());
  mt_set_str(&c, "aux_factor", "segment");
  CHECK(knobs_config_from_data(&c, d8) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "no factor 'segment'") &&
            strstr(knobs_last_error(), "x, y"),
        "a missing factor: %s", knobs_last_error());
  /* at training time too, with data other than the config saw */
  knobs_config c2 = mt_config("ivae", "mlp", 8);
  mt_set_str(&c2, "aux_factor", "y"), mt_set(&c2, "aux_classes", 3);
  CHECK(!knobs_model_create(&c2, &m), "create: %s", knobs_last_error());
  if (m) {
    CHECK(knobs_model_train_step(m, d8, NULL) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "aux_classes 3"),
          "a step on data whose u has 4 classes: %s", knobs_last_error());
    knobs_model_free(m);
  }
  /* the knobs_data of physics:nonlinear serves it with its 40 segments */
  knobs_data *p;
  CHECK(!knobs_data_open("physics:nonlinear", NULL, &p), "open: %s", knobs_last_error());
  if (p) {
    knobs_config *pc;
    knobs_config_create("ivae", &pc);
    CHECK(!knobs_config_from_data(pc, p) && knobs_config_number(pc, "aux_classes") == 40, "physics:nonlinear: %s",
          knobs_last_error());
    knobs_config_free(pc);
    knobs_data_free(p);
  }
}

int main(void) {
  char dir[] = "/tmp/knobs-test-ivae-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  test_kl_values();
  test_kl_gradient(1);
  test_kl_gradient(0);
  static const char *const terms[] = {"loss"};
  knobs_data *d28 = mt_toy_open(28, 4), *d8 = mt_toy_open(8, 4);
  test_aux_factor(d8);
  mt_fd(mt_config("ivae", "conv", 28), terms, 10, 2e-3, d28);
  knobs_config c = mt_config("ivae", "mlp", 8);
  for (int pm = 1; pm >= 0; pm--) {
    mt_set(&c, "prior_mean", pm);
    mt_fd(c, terms, 10, 2e-3, d8);
  }
  mt_determinism(mt_config("ivae", "conv", 28), d28, dir);
  mt_determinism(mt_config("ivae", "mlp", 8), d8, dir);
  mt_inference(mt_config("ivae", "conv", 28), d28);
  mt_tol tol = {2e-4, 1e-6, 1e-5, 1e-4, 1e-6, 20};
  const char *files[] = {"models_ivae_mlp.safetensors", "models_ivae_conv.safetensors"};
  mt_references(files, 2, tol);
  knobs_data_free(d28), knobs_data_free(d8);
  return mt_finish(dir);
}
