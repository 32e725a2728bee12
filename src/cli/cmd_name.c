/* cmd_name.c: `knobs name RUN`: name a model's knobs. Encodes dataset samples with their
 * ground-truth factors, computes every latent's normalised MI with every factor, its KL, the
 * direction and calibration against its factor (knobs_name), and writes knobs.json in the run
 * folder (atomically), keeping the names users gave. `--set 3=size` names a knob by hand
 * (`--set 3=` clears it); with only --set and an existing knobs.json nothing is recomputed. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void print_table(const knobs_knobs *k) {
  printf("latent  %-16s %-12s %6s %7s %4s  %-22s  MI per factor (", "name", "factor", "MI", "KL", "dir", "calibrated range");
  for (int q = 0; q < k->K; q++) printf("%s%s", q ? " " : "", k->factors[q]);
  printf(")\n");
  for (int z = 0; z < k->Z; z++) {
    const knobs_knob *kb = &k->knobs[z];
    char lab[64], range[64] = "-";
    knobs_knobs_label(k, z, lab, sizeof lab);
    if (kb->n_knots >= 2)
      snprintf(range, sizeof range, "%.3g..%.3g at %.2f..%.2f", kb->knot_value[0], kb->knot_value[kb->n_knots - 1],
               kb->knot_code[0], kb->knot_code[kb->n_knots - 1]);
    printf("z%-6d %-16s %-12s %6.3f %7.3f %4s  %-22s ", z, lab, kb->factor[0] ? kb->factor : "-",
           kb->factor_index >= 0 ? kb->mi[kb->factor_index] : 0.0, kb->kl,
           kb->direction > 0 ? "+" : kb->direction < 0 ? "-" : "", range);
    for (int q = 0; q < k->K; q++) printf(" %.2f", kb->mi[q]);
    printf("\n");
  }
}

int cmd_name(int argc, char **argv) {
  const char *cmd = "name", *data = NULL;
  cli_multi sets = {0};
  int n = 10000, threads = 0, show = 0, recompute = 0;
  uint64_t seed = 0x6b6e6f6273ULL;
  cli_opt o[] = {
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset with ground-truth factors (default: the model's)", 0},
      {"--n", OPT_INT, &n, 100, 10000000, "N", "samples for the MI and the calibration", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "seed of the draws", 0},
      {"--set", OPT_MULTI, &sets, 0, 0, "Z=NAME", "name latent Z by hand (Z=: clear it)", 0},
      {"--recompute", OPT_FLAG, &recompute, 0, 0, NULL, "recompute the statistics even when only --set is given", 0},
      {"--show", OPT_FLAG, &show, 0, 0, NULL, "print knobs.json's table and change nothing", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  const char *pos[1];
  int np = 0;
  int r = cli_parse(cmd, "RUN [--data D] [--set Z=NAME ...]", argc, argv, o, no, pos, 1, &np);
  if (r) return r < 0 ? 0 : r;
  if (np != 1) return cli_usage_error(cmd, "give the run folder or checkpoint: knobs name RUN");
  const char *run = pos[0];
  knobs_model *m;
  if ((r = cli_open_model(cmd, run, threads, &m))) return r;
  int Z = knobs_model_code_dim(m);
  knobs_knobs *old = NULL, *k = NULL;
  knobs_data *d = NULL;
  if (knobs_knobs_read(run, Z, &old)) {
    if (show || !recompute) {
      r = cli_lib_fail(cmd, "cannot read the knob names (--recompute replaces the file)");
      goto out;
    }
    knobs_clear_error();
    old = NULL;
  }
  if (show) {
    if (!old) r = cli_fail(cmd, "%s has no knobs.json yet (run 'knobs name %s')", run, run);
    else print_table(old);
    goto out;
  }
  /* the hand-given names, checked before anything is computed */
  int set_z[CLI_MAX_MULTI];
  const char *set_v[CLI_MAX_MULTI];
  for (int i = 0; i < sets.n; i++) {
    const char *eq = strchr(sets.v[i], '=');
    if (!eq || eq == sets.v[i]) {
      r = cli_usage_error(cmd, "--set '%s': expected Z=NAME (a latent number or name, '=', the new name)", sets.v[i]);
      goto out;
    }
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - sets.v[i]), sets.v[i]);
    if ((set_z[i] = knobs_knobs_find(old, Z, key)) < 0) {
      r = cli_usage_error(cmd, "--set '%s': %s", sets.v[i], knobs_last_error());
      goto out;
    }
    set_v[i] = eq + 1;
  }
  if (sets.n && old && !recompute) {
    k = old, old = NULL; /* rename only */
  } else {
    if ((r = cli_open_data(cmd, m, data, &d))) goto out;
    const knobs_data_info *in = knobs_data_info_get(d);
    if (in->K == 0 && !sets.n) {
      r = cli_fail(cmd, "%s has no ground-truth factors to name knobs by: give a dataset with factors "
                   "(--data, or a factors file) or name them by hand with --set Z=NAME", in->name);
      goto out;
    }
    if (in->K == 0) {
      /* names only */
      if (knobs_knobs_create(Z, 0, &k)) {
        r = cli_lib_fail(cmd, "cannot make the table");
        goto out;
      }
      k->step = knobs_model_step(m);
      snprintf(k->data, sizeof k->data, "%s", in->name);
    } else {
      knobs_name_opts no2;
      knobs_name_opts_default(&no2);
      no2.n = n, no2.seed = seed;
      fprintf(stderr, "knobs %s: encoding %d samples of %s ...\n", cmd, n, in->name);
      if (knobs_name(m, d, &no2, &k)) {
        r = cli_lib_fail(cmd, "naming failed");
        goto out;
      }
    }
    knobs_knobs_merge_names(k, old);
  }
  for (int i = 0; i < sets.n; i++)
    if (knobs_knobs_rename(k, set_z[i], set_v[i])) {
      r = cli_usage_error(cmd, "--set '%s': %s", sets.v[i], knobs_last_error());
      goto out;
    }
  if (knobs_knobs_write(k, run)) {
    r = cli_lib_fail(cmd, "cannot write knobs.json");
    goto out;
  }
  print_table(k);
  fprintf(stderr, "wrote knobs.json beside %s (step %ld, %d samples of %s)\n", run, k->step, k->n, k->data);
out:
  knobs_knobs_free(old);
  knobs_knobs_free(k);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
