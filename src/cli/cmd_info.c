/* cmd_info.c: `knobs info RUN|CKPT`: the config, the step, the tensors and parameter count,
 * the last logged loss terms and any metrics JSON files in the run folder. A checkpoint whose
 * tensors hold NaN or Inf is refused, as everywhere, unless --allow-nonfinite. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static void last_log_line(const char *dir) {
  char path[1100], line[2048], header[2048] = "", last[2048] = "";
  snprintf(path, sizeof path, "%s/log.csv", dir);
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(header, sizeof header, f))
    while (fgets(line, sizeof line, f)) strcpy(last, line);
  fclose(f);
  if (!last[0]) return;
  printf("last log:\n");
  char *hs, *ls, *h = strtok_r(header, ",\n", &hs), *v = strtok_r(last, ",\n", &ls);
  while (h && v) {
    printf("  %-14s %s\n", h, v);
    h = strtok_r(NULL, ",\n", &hs);
    v = strtok_r(NULL, ",\n", &ls);
  }
}

int cmd_info(int argc, char **argv) {
  const char *cmd = "info", *pos[1];
  int np = 0, allow_nonfinite = 0;
  cli_opt o[] = {
      {"--allow-nonfinite", OPT_FLAG, &allow_nonfinite, 0, 0, NULL,
       "load a checkpoint whose tensors hold NaN or Inf (to inspect a diverged run)", 0},
  };
  int r = cli_parse(cmd, "RUN|CHECKPOINT [--allow-nonfinite]", argc, argv, o, (int)(sizeof o / sizeof o[0]), pos, 1, &np);
  if (r) return r < 0 ? 0 : r;
  if (np != 1) return cli_usage_error(cmd, "give one run folder or checkpoint");
  knobs_model *m;
  knobs_load_opts lo = {.threads = 1, .allow_nonfinite = allow_nonfinite};
  if (knobs_model_load_with(pos[0], &lo, &m)) return cli_lib_fail(cmd, "cannot load");
  const knobs_config *c = knobs_model_config(m);
  const char *model = knobs_config_string(c, "model");
  printf("%s: %s, %ld of %.0f steps (%s)\n", pos[0], model, knobs_model_step(m), knobs_config_number(c, "steps"),
         knobs_model_describe(model) ? knobs_model_describe(model) : "");
  char *j = knobs_config_to_json(c);
  if (j) printf("config: %s\n", j);
  knobs_free(j);
  const char *name;
  int nd, nt = knobs_model_tensor(m, -1, &name, &nd, NULL);
  long total = 0;
  printf("tensors:\n");
  for (int i = 0; i < nt; i++) {
    int64_t sh[4], n = 1;
    knobs_model_tensor(m, i, &name, &nd, sh);
    printf("  %-36s (", name);
    for (int d = 0; d < nd; d++) printf("%s%lld", d ? ", " : "", (long long)sh[d]), n *= sh[d];
    printf(")\n");
    if (!strstr(name, "running_") && !strstr(name, "num_batches")) total += n;
  }
  printf("parameters: %ld\n", total);
  int Z = knobs_model_code_dim(m);
  knobs_knobs *k = cli_read_knobs(cmd, pos[0], Z);
  if (k) {
    printf("knobs (knobs.json: step %ld, %d samples of %s):\n", k->step, k->n, k->data[0] ? k->data : "?");
    for (int z = 0; z < Z; z++) {
      char lab[64];
      const knobs_knob *kb = &k->knobs[z];
      printf("  z%-3d %-16s", z, knobs_knobs_label(k, z, lab, sizeof lab));
      if (kb->factor_index >= 0) printf(" %s MI %.2f, KL %.2f%s", kb->factor, kb->mi[kb->factor_index], kb->kl,
                                         kb->n_knots >= 2 ? ", calibrated" : "");
      else if (k->n > 0) printf(" KL %.2f", kb->kl);
      printf("\n");
    }
    knobs_knobs_free(k);
  }
  struct stat st;
  if (stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode)) {
    last_log_line(pos[0]);
    DIR *dd = opendir(pos[0]);
    struct dirent *e;
    while (dd && (e = readdir(dd)))
      if (!strncmp(e->d_name, "metrics", 7) && strstr(e->d_name, ".json")) printf("metrics: %s/%s\n", pos[0], e->d_name);
    if (dd) closedir(dd);
  }
  knobs_model_free(m);
  return 0;
}
