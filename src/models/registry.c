/* registry.c: model names to families, and the families' config defaults and checks. */
#include <string.h>

#include "models/model.h"

static const kn_model_ops *const models[] = {
    &kn_model_betavae,
    &kn_model_annealedvae,
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

void kn_models_config_default(knobs_config *c) { (void)c; }

knobs_status kn_models_config_validate(const knobs_config *c) {
  (void)c;
  return KNOBS_OK;
}
