/* registry.c: model names to families, and the families' config defaults and checks. */
#include <string.h>

#include "models/model.h"

static const kn_model_ops *const models[] = {
    &kn_model_betavae,
    &kn_model_annealedvae,
    &kn_model_tcvae,
    &kn_model_factorvae,
    &kn_model_dipvae1,
    &kn_model_dipvae2,
    &kn_model_infogan,
    &kn_model_gvae,
    &kn_model_mlvae,
    &kn_model_adagvae,
    &kn_model_adamlvae,
};
#define NMODELS (int)(sizeof models / sizeof models[0])

const kn_model_ops *kn_model_ops_find(const char *name) {
  for (int i = 0; i < NMODELS; i++)
    if (!strcmp(models[i]->name, name)) return models[i];
  return NULL;
}

const char *const *knobs_model_names(void) {
  static const char *names[NMODELS + 1];
  for (int i = 0; i < NMODELS; i++) names[i] = models[i]->name;
  names[NMODELS] = NULL;
  return names;
}

const char *knobs_model_describe(const char *name) {
  const kn_model_ops *o = kn_model_ops_find(name);
  return o ? o->describe : NULL;
}

/* The defaults of the issue-4 families and their sources (docs/models.md has the details). */
void kn_models_config_default(knobs_config *c) {
  c->tcvae_alpha = 1;    /* Chen et al. 2018: alpha = gamma = 1, beta the TC weight */
  c->tcvae_beta = 6;
  c->tcvae_gamma = 1;
  strcpy(c->estimator, "mws"); /* Chen et al.'s code default; mss is exploited at small batches (docs/models.md) */
  c->factorvae_gamma = 35;     /* Kim & Mnih 2018: the best-scoring 2D Shapes model */
  c->disc_lr = 1e-4;           /* Kim & Mnih 2018, disentanglement_lib's shared.gin */
  c->disc_beta1 = 0.5;
  c->disc_beta2 = 0.9;
  c->disc_hidden = 1000;        /* Kim & Mnih 2018: 6 hidden layers of 1000 */
  c->disc_layers = 6;
  c->lambda_od = 10;           /* disentanglement_lib's sweep: 1, 2, 5, 10, 20, 50 */
  c->lambda_d = -1;            /* lambda_d_factor 10 (DIP-VAE-I), 1 (DIP-VAE-II) */
  c->cat = 3;                  /* dSprites' three shapes */
  c->cont = 5;
  c->noise_dim = 62;           /* Chen et al. 2016 (MNIST) */
  c->info_lambda = 1;
  c->gan_g_lr = 1e-3;          /* Chen et al. 2016: generator 1e-3, discriminator 2e-4, */
  c->gan_d_lr = 2e-4;          /* Adam beta1 0.5 */
  c->gan_beta1 = 0.5;
  c->gan_beta2 = 0.999;
  c->k = 1;                    /* Locatello et al. 2020: k = 1 */
}

static int is(const knobs_config *c, const char *list) {
  size_t n = strlen(c->model);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, c->model, n)) return 1;
    p += len + (e != NULL);
  }
  return 0;
}

knobs_status kn_models_config_validate(const knobs_config *c) {
  if (strcmp(c->estimator, "mss") && strcmp(c->estimator, "mws"))
    return kn_err(KNOBS_ERR_ARG, "unknown estimator '%s' (mss or mws)", c->estimator);
  if (is(c, "tcvae,factorvae,dipvae1,dipvae2,infogan") && c->batch < 2)
    return kn_err(KNOBS_ERR_ARG, "%s needs a batch of at least 2 (it estimates batch statistics)", c->model);
  if (is(c, "infogan") && c->cat == 1)
    return kn_err(KNOBS_ERR_ARG, "a categorical code of 1 class carries nothing: use --cat 0 or >= 2");
  return KNOBS_OK;
}
