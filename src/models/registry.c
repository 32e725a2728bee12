/* registry.c: model names to families. Adding a family is one line here (and its own file). */
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
    &kn_model_ivae,
    &kn_model_dsvae,
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


const char *knobs_model_loss(const char *name) {
  const kn_model_ops *o = kn_model_ops_find(name);
  return o ? o->loss : NULL;
}
