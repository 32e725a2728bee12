/* test_models_weak.c: the weakly supervised models gvae, mlvae, adagvae, adamlvae.
 * - Pairs: on a toy dataset with factors x (4), y (4), size (2) and a constant one (1), the
 *   two observations of every pair differ in exactly k factors (k = 1, 2, and random in 1..2
 *   with --k 0, both values seen), never in the constant factor, and the images rendered are
 *   those of the factors; a k beyond the varying factors and too few latents for the label
 *   variants are refused with a message.
 * - The label variants average all latents but the k of the changed factors ("shared" term
 *   = Z - k exactly); the adaptive ones choose per pair (0 <= shared <= Z).
 * - Finite differences of the whole loss (mlp for all four, conv 28x28 for gvae and adamlvae),
 *   determinism and resume, encode, and the PyTorch references (tests/ref/models_{gvae,...}_*.safetensors:
 *   aggregation, the adaptive threshold, losses and 10 Adam steps). */
#include "t.h"
#include "models_t.h"

/* ---- a toy with four factors, one constant ----------------------------------------------- */
static knobs_status toy4_render(knobs_data *d, const int32_t *f, int n, float *obs) {
  int H = d->info.H, W = d->info.W;
  for (int i = 0; i < n; i++) {
    const int32_t *g = f + (size_t)i * 4;
    int side = (H / 7) * (1 + g[2]);
    float *o = obs + (size_t)i * H * W;
    memset(o, 0, sizeof(float) * (size_t)H * W);
    int x0 = g[0] * (W - side) / 3, y0 = g[1] * (H - side) / 3;
    for (int y = 0; y < side; y++)
      for (int x = 0; x < side; x++) o[(y0 + y) * W + x0 + x] = 1.0f;
  }
  return KNOBS_OK;
}
static const kn_data_ops toy4_ops = {.render = toy4_render};

static knobs_data *toy4_open(int HW) {
  knobs_data *d = calloc(1, sizeof *d);
  snprintf(d->info.name, sizeof d->info.name, "toy4-%d", HW);
  d->info.C = 1, d->info.H = HW, d->info.W = HW, d->info.is_image = 1, d->info.binary = 1, d->info.has_render = 1;
  const char *names[4] = {"x", "y", "size", "color"};
  int sizes[4] = {4, 4, 2, 1};
  kn_data_set_factors(&d->info, 4, names, sizes);
  d->info.n = 32;
  d->grid = 1;
  d->ops = &toy4_ops;
  return d;
}

static void test_pairs(const char *model, int k) {
  char name[96];
  snprintf(name, sizeof name, "pairs %s k=%d", model, k);
  T_CASE(name);
  knobs_data *d = toy4_open(28);
  knobs_config c = mt_config(model, "conv", 28);
  c.batch = 16, c.z_dim = 4;
  mt_set(&c, "k", k);
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    knobs_data_free(d);
    return;
  }
  int seen[4] = {0}, bad = 0, constant = 0, shared_ok = 1;
  float *img = malloc(sizeof(float) * 784);
  for (int s = 0; s < 4; s++) {
    knobs_terms t;
    CHECK(!knobs_model_train_step(m, d, &t), "step: %s", knobs_last_error());
    for (int b = 0; b < c.batch; b++) {
      const int32_t *f1 = m->fac + b * 4, *f2 = m->fac + (c.batch + b) * 4;
      int diff = 0;
      for (int j = 0; j < 4; j++) diff += f1[j] != f2[j];
      constant |= f1[3] != 0 || f2[3] != 0;
      if (k) bad += diff != k;
      else bad += diff < 1 || diff > 2;
      if (diff < 4) seen[diff]++;
      toy4_render(d, f2, 1, img);
      bad += memcmp(img, m->x + (size_t)(c.batch + b) * 784, sizeof(float) * 784) != 0;
    }
    if (!strcmp(model, "gvae") || !strcmp(model, "mlvae")) shared_ok &= t.value[3] == c.z_dim - k;
    else shared_ok &= t.value[3] >= 0 && t.value[3] <= c.z_dim;
  }
  CHECK(!bad, "%d pairs differ in the wrong number of factors or do not render their factors", bad);
  CHECK(!constant, "the constant factor moved");
  if (!k) CHECK(seen[1] > 0 && seen[2] > 0, "random k: %d pairs with 1, %d with 2 changes", seen[1], seen[2]);
  CHECK(shared_ok, "shared latents per pair wrong");
  free(img);
  knobs_model_free(m);
  /* refusals */
  mt_set(&c, "k", 3);
  CHECK(!knobs_model_create(&c, &m), "create");
  CHECK(knobs_model_train_step(m, d, NULL) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "k = 3"), "k = 3 of 3 varying: %s", knobs_last_error());
  knobs_model_free(m);
  if (!strcmp(model, "gvae")) {
    mt_set(&c, "k", 1), c.z_dim = 2;
    CHECK(!knobs_model_create(&c, &m), "create");
    CHECK(knobs_model_train_step(m, d, NULL) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "latents"), "2 latents for 3 factors: %s", knobs_last_error());
    knobs_model_free(m);
  }
  knobs_data_free(d);
}

int main(void) {
  char dir[] = "/tmp/knobs-test-weak-XXXXXX";
  if (!mkdtemp(dir)) return 2;
  static const char *const terms[] = {"loss"};
  const char *models[] = {"gvae", "mlvae", "adagvae", "adamlvae"};
  test_pairs("gvae", 1);
  test_pairs("mlvae", 2);
  test_pairs("adagvae", 0);
  test_pairs("adamlvae", 1);
  knobs_data *d28 = mt_toy_open(28, 4), *d8 = mt_toy_open(8, 4);
  for (int i = 0; i < 4; i++) { /* conv for one averaging of each kind: the conv core is shared */
    if (i == 0 || i == 3) mt_fd(mt_config(models[i], "conv", 28), terms, 10, 2e-3, d28);
    mt_fd(mt_config(models[i], "mlp", 8), terms, 10, 2e-3, d8);
    mt_determinism(mt_config(models[i], i % 2 ? "mlp" : "conv", i % 2 ? 8 : 28), i % 2 ? d8 : d28, dir);
  }
  mt_inference(mt_config("adagvae", "conv", 28), d28);
  mt_tol tol = {2e-4, 1e-6, 1e-5, 1e-4, 1e-6, 20};
  const char *files[] = {"models_gvae_conv.safetensors", "models_mlvae_mlp.safetensors", "models_adagvae_conv.safetensors",
                         "models_adamlvae_mlp.safetensors"};
  mt_references(files, 4, tol);
  knobs_data_free(d28), knobs_data_free(d8);
  return mt_finish(dir);
}
