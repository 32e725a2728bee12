/* common.c: what several commands do the same way: open a model (file or run folder) and the
 * data it was trained on (or another), with messages in the CLI's format. */
#include <string.h>

#include "cli/cli.h"

int cli_open_model(const char *cmd, const char *path, int threads, knobs_model **m) {
  if (!path) return cli_usage_error(cmd, "--model RUN is required");
  if (knobs_model_load(path, threads, m)) return cli_lib_fail(cmd, "cannot load the model");
  return 0;
}

int cli_open_data(const char *cmd, const knobs_model *m, const char *spec, knobs_data **d) {
  const knobs_config *c = knobs_model_config(m);
  knobs_data_opts o;
  knobs_config_data_opts(c, &o);
  if (knobs_data_open(spec ? spec : knobs_config_string(c, "data"), &o, d)) return cli_lib_fail(cmd, "cannot open the data");
  const knobs_data_info *in = knobs_data_info_get(*d);
  int C = (int)knobs_config_number(c, "C"), H = (int)knobs_config_number(c, "H"), W = (int)knobs_config_number(c, "W");
  if (in->C != C || in->H != H || in->W != W) {
    knobs_data_free(*d);
    *d = NULL;
    return cli_fail(cmd, "%s has observations %dx%dx%d but the model takes %dx%dx%d", in->name, in->C,
                    in->H, in->W, C, H, W);
  }
  if (in->note[0]) fprintf(stderr, "knobs %s: note: %s\n", cmd, in->note);
  return 0;
}

int cli_open_model_data(const char *cmd, const char *path, int threads, const char *spec, knobs_model **m,
                        knobs_data **d) {
  int r = cli_open_model(cmd, path, threads, m);
  if (r) return r;
  if ((r = cli_open_data(cmd, *m, spec, d))) {
    knobs_model_free(*m);
    *m = NULL;
  }
  return r;
}
