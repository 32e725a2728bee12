/* test_models_dipvae.c: DIP-VAE I and II.
 * - The regulariser's value: after a step, the "dip" term equals lambda_od sum_{i!=j} C_ij^2 +
 *   lambda_d sum_i (C_ii - 1)^2 recomputed here in double from the step's posteriors (C the
 *   biased batch covariance of the means, plus the mean posterior variance for II), with
 *   lambda_d resolved to 10 lambda_od (I) or lambda_od (II) when not given; 1e-6 relative.
 * - Finite differences of the whole loss (conv 28x28, mlp), determinism and resume, encode,
 *   and the PyTorch references (tests/ref/models_dipvae{1,2}_*.safetensors). */
#include "t.h"
#include "models_t.h"

static void test_value(int type, const char *arch, int HW, knobs_data *d) {
  T_CASE(type == 1 ? "dip value I" : "dip value II");
  knobs_config c = mt_config(type == 1 ? "dipvae1" : "dipvae2", arch, HW);
  c.batch = 5, c.z_dim = 4;
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  double lod = knobs_config_number(&c, "lambda_od"), ld = (type == 1 ? 10 : 1) * lod;
  CHECK(knobs_config_number(&m->cfg, "lambda_d") == ld, "lambda_d resolved to %g, want %g", knobs_config_number(&m->cfg, "lambda_d"), ld);
  m->opt[0].lr = 0;
  knobs_terms t;
  CHECK(!knobs_model_train_step(m, d, &t), "step: %s", knobs_last_error());
  int B = c.batch, Z = c.z_dim;
  double mean[4] = {0}, C[16] = {0}, reg = 0;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Z; k++) mean[k] += m->mu[b * Z + k] / (double)B;
  for (int i = 0; i < Z; i++)
    for (int j = 0; j < Z; j++) {
      for (int b = 0; b < B; b++) C[i * Z + j] += (double)m->mu[b * Z + i] * m->mu[b * Z + j] / B;
      C[i * Z + j] -= mean[i] * mean[j];
    }
  if (type == 2)
    for (int k = 0; k < Z; k++)
      for (int b = 0; b < B; b++) C[k * Z + k] += exp((double)m->lv[b * Z + k]) / B;
  for (int i = 0; i < Z; i++)
    for (int j = 0; j < Z; j++) reg += i == j ? ld * (C[i * Z + j] - 1) * (C[i * Z + j] - 1) : lod * C[i * Z + j] * C[i * Z + j];
  CHECK(t.n >= 4 && !strcmp(t.name[3], "dip"), "term 3 is %s", t.n >= 4 ? t.name[3] : "missing");
  CHECK_NEAR(t.value[3], reg, 1e-6 * fabs(reg));
  CHECK(fabs(t.value[0] - (t.value[1] + t.value[2] + t.value[3])) < 1e-9 * fabs(t.value[0]), "loss != recon + kl + dip");
  knobs_model_free(m);
  /* an explicit lambda_d is kept */
  mt_set(&c, "lambda_d", 2.5);
  CHECK(!knobs_model_create(&c, &m) && knobs_config_number(&m->cfg, "lambda_d") == 2.5, "explicit lambda_d changed");
  knobs_model_free(m);
}

int main(void) {
  char dir[] = "/tmp/knobs-test-dipvae-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  static const char *const terms[] = {"loss"};
  knobs_data *d28 = mt_toy_open(28, 4), *d8 = mt_toy_open(8, 4);
  const char *models[] = {"dipvae1", "dipvae2"};
  for (int i = 0; i < 2; i++) {
    test_value(i + 1, "mlp", 8, d8);
    mt_fd(mt_config(models[i], "conv", 28), terms, 10, 2e-3, d28);
    mt_fd(mt_config(models[i], "mlp", 8), terms, 10, 2e-3, d8);
    mt_determinism(mt_config(models[i], i ? "mlp" : "conv", i ? 8 : 28), i ? d8 : d28, dir);
  }
  mt_inference(mt_config("dipvae2", "conv", 28), d28);
  mt_tol tol = {2e-4, 1e-6, 1e-5, 1e-4, 1e-6, 20};
  const char *files[] = {"models_dipvae1_conv.safetensors", "models_dipvae2_mlp.safetensors"};
  mt_references(files, 2, tol);
  knobs_data_free(d28), knobs_data_free(d8);
  return mt_finish(dir);
}
