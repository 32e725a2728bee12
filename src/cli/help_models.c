/* help_models.c: `knobs help models`: every model with its loss in one line and the settings
 * (flags of `knobs train`) its family adds to the shared ones, from the library's tables. */
#include <string.h>

#include "cli/cli.h"

static void print_field(FILE *f, const knobs_field *d, const knobs_config *c) {
  char flag[64], def[64] = "";
  snprintf(flag, sizeof flag, "--%s", d->name);
  for (char *q = flag; *q; q++)
    if (*q == '_') *q = '-';
  if (d->kind == KNOBS_FIELD_DOUBLE) snprintf(def, sizeof def, "%g", knobs_config_number(c, d->name));
  else knobs_config_get(c, d->name, def, sizeof def);
  fprintf(f, "    %-20s %s [%s]\n", flag, d->help, def);
}

int cli_help_models(FILE *f) {
  knobs_config *c;
  if (knobs_config_create(NULL, &c)) return cli_lib_fail("help", "cannot create a config");
  fprintf(f, "models (knobs train --model NAME); settings every model shares: knobs train --help\n");
  for (const char *const *m = knobs_model_names(); *m; m++) {
    if (knobs_config_set(c, "model", *m)) continue;
    fprintf(f, "\n  %s: %s\n    loss: %s\n", *m, knobs_model_describe(*m), knobs_model_loss(*m));
    for (int i = 0; knobs_model_field(*m, i); i++) print_field(f, knobs_model_field(*m, i), c);
  }
  fprintf(f, "\ndocs/models.md gives each loss, its defaults and sources, and where knobs differs.\n");
  knobs_config_free(c);
  return 0;
}
