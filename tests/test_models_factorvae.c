/* test_models_factorvae.c: FactorVAE.
 * - Finite differences of both losses: the VAE's parameters against "loss" (recon + KL +
 *   gamma TC, with TC through the discriminator's input gradient) and the discriminator's
 *   against "disc_loss" (conv 28x28, mlp; a 3 x 40 discriminator: the published 6 x 1000 one
 *   is in the references).
 * - The discriminator's loss never reaches the encoder: with gamma = 0 the VAE's gradients are
 *   those of a beta-VAE with beta = 1 on the same batch and noise (same seed: same batch,
 *   noise and encoder/decoder initialisation), to float rounding (1e-5 relative); and the
 *   discriminator's gradients do not depend on gamma (bit for bit).
 * - The discriminator has the published shape (Z -> 6 x 1000 -> 2, PyTorch names).
 * - Determinism and resume with both optimizers, encode, the PyTorch references
 *   (tests/ref/models_factorvae_*.safetensors: both updates, the permutations through the
 *   test seam). */
#include "t.h"
#include "models_t.h"

static void test_isolation(knobs_data *d) {
  T_CASE("factorvae: discriminator loss stays out of the encoder");
  knobs_config c = mt_config("factorvae", "mlp", 8), cb;
  mt_set(&c, "disc_hidden", 1000), mt_set(&c, "disc_layers", 6); /* the published discriminator */
  cb = c;
  mt_set(&c, "factorvae_gamma", 0);
  knobs_config_set(&cb, "model", "betavae");
  mt_set(&cb, "beta", 1);
  knobs_model *f, *b, *f2;
  if (knobs_model_create(&c, &f) || knobs_model_create(&cb, &b)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  mt_set(&c, "factorvae_gamma", 7);
  CHECK(!knobs_model_create(&c, &f2), "create");
  f->opt[0].lr = f->opt[1].lr = b->opt[0].lr = f2->opt[0].lr = f2->opt[1].lr = 0;
  knobs_terms t;
  CHECK(!knobs_model_train_step(f, d, &t) && !knobs_model_train_step(b, d, NULL) && !knobs_model_train_step(f2, d, NULL),
        "step: %s", knobs_last_error());
  size_t off0, n0, off1, n1;
  kn_net_group_range(&f->net, 0, &off0, &n0);
  kn_net_group_range(&f->net, 1, &off1, &n1);
  CHECK(n0 == b->net.n_p && off0 == 0, "VAE group has %zu parameters, the beta-VAE %zu", n0, b->net.n_p);
  CHECK(!memcmp(f->net.p, b->net.p, sizeof(float) * n0), "VAE parameters initialised differently");
  CHECK_CLOSE(f->net.g, b->net.g, n0, 1e-5, 1e-7);
  CHECK(!memcmp(f->net.g + off1, f2->net.g + off1, sizeof(float) * n1), "discriminator gradient depends on gamma");
  double mag = 0;
  for (size_t i = 0; i < n1; i++) mag += fabs(f->net.g[off1 + i]);
  CHECK(mag > 0, "the discriminator has no gradient");
  /* the published discriminator */
  int k = kn_net_find(&f->net, "discriminator.fc1.weight"), k7 = kn_net_find(&f->net, "discriminator.fc7.weight");
  CHECK(k >= 0 && f->net.P[k].shape[0] == 1000 && f->net.P[k].shape[1] == c.z_dim, "discriminator.fc1");
  CHECK(k7 >= 0 && f->net.P[k7].shape[0] == 2 && f->net.P[k7].shape[1] == 1000, "discriminator.fc7");
  CHECK(kn_net_find(&f->net, "discriminator.fc8.weight") < 0, "more than 7 layers");
  CHECK(f->nopt == 2 && !strcmp(f->opt_name[1], "discriminator") && f->opt[1].beta1 == 0.5 && f->opt[1].beta2 == 0.9,
        "discriminator optimizer");
  knobs_model_free(f), knobs_model_free(b), knobs_model_free(f2);
}

int main(void) {
  char dir[] = "/tmp/knobs-test-factorvae-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  static const char *const terms[] = {"loss", "disc_loss"};
  knobs_data *d28 = mt_toy_open(28, 4), *d8 = mt_toy_open(8, 4);
  test_isolation(d8);
  mt_fd(mt_config("factorvae", "conv", 28), terms, 10, 2e-3, d28);
  mt_fd(mt_config("factorvae", "mlp", 8), terms, 10, 2e-3, d8);
  mt_determinism(mt_config("factorvae", "conv", 28), d28, dir);
  mt_determinism(mt_config("factorvae", "mlp", 8), d8, dir);
  mt_inference(mt_config("factorvae", "conv", 28), d28);
  mt_tol tol = {2e-4, 1e-6, 1e-5, 1e-4, 1e-6, 20};
  const char *files[] = {"models_factorvae_conv.safetensors", "models_factorvae_mlp.safetensors"};
  mt_references(files, 2, tol);
  knobs_data_free(d28), knobs_data_free(d8);
  return mt_finish(dir);
}
