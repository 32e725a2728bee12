/* cmd_encode.c: `knobs encode`: encode observations of a dataset and write the codes (N,Z)
 * float32 .npy (posterior means, or samples with --sampled; of a dsvae model its static code f,
 * and with --dynamic its dynamic codes (N,T,Z) as a second array), optionally the posterior
 * log-variances, the ground-truth factors (N,K) int64 .npy and their values (N,K) float64
 * (the exact draws of continuous factors, e.g. physics: what `knobs metrics --metrics mcc`
 * compares codes with), for `knobs metrics` or NumPy.
 * Which observations: a user's file gives every row, in order (row i of the file is row i of
 * the codes); a built-in dataset, or a file with --n given, gives N drawn with --seed.
 * Observations stream in chunks: memory grows with N only by the output arrays. The outputs
 * are written together or not at all. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *const npy_ext[] = {".npy", NULL};

int cmd_encode(int argc, char **argv) {
  const char *cmd = "encode", *model = NULL, *data = NULL, *out = NULL, *factors = NULL, *logvar = NULL, *values = NULL,
             *dynamic = NULL;
  int n_draw = 10000, threads = 0, sampled = 0;
  uint64_t seed = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset (default: the model's); a file is encoded whole, in order", 0},
      {"--n", OPT_INT, &n_draw, 1, 100000000, "N", "observations to draw (a file: all rows unless given)", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "seed of the draw (and of --sampled noise)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "codes .npy (N,Z) float32 (dsvae: the static code f, (N,f_dim))", 0},
      {"--dynamic", OPT_STR, &dynamic, 0, 0, "PATH", "dsvae: also write the dynamic codes z_1:T .npy (N,T,Z) float32 (means)", 0},
      {"--factors", OPT_STR, &factors, 0, 0, "PATH", "also write the factors .npy (N,K) int64", 0},
      {"--logvar", OPT_STR, &logvar, 0, 0, "PATH", "also write the posterior log-variances .npy", 0},
      {"--values", OPT_STR, &values, 0, 0, "PATH", "also write the factors' values .npy (N,K) float64 (continuous factors exactly)", 0},
      {"--sampled", OPT_FLAG, &sampled, 0, 0, NULL, "codes are posterior samples, not means", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  const int no = (int)(sizeof o / sizeof o[0]);
  int r = cli_parse(cmd, "--model RUN --out codes.npy [options]", argc, argv, o, no, NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  if ((r = cli_check_ext(cmd, "--out", out, npy_ext)) || (factors && (r = cli_check_ext(cmd, "--factors", factors, npy_ext))) ||
      (logvar && (r = cli_check_ext(cmd, "--logvar", logvar, npy_ext))) || (values && (r = cli_check_ext(cmd, "--values", values, npy_ext))) ||
      (dynamic && (r = cli_check_ext(cmd, "--dynamic", dynamic, npy_ext))))
    return r;
  const char *paths[5] = {out, factors, logvar, values, dynamic};
  for (int a = 0; a < 5; a++)
    for (int b2 = a + 1; b2 < 5; b2++)
      if (paths[a] && paths[b2] && !strcmp(paths[a], paths[b2]))
        return cli_usage_error(cmd, "--out, --factors, --logvar, --values and --dynamic must name different files");
  if (dynamic && sampled) return cli_usage_error(cmd, "--dynamic writes posterior means: it does not go with --sampled");
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  const char *spec = data ? data : knobs_config_string(knobs_model_config(m), "data");
  int whole = cli_data_is_file(spec) && !cli_find(o, no, "--n")->seen;
  int Z = knobs_model_code_dim(m), K = in->K, T = 0, Zd = 0;
  int seq = knobs_dsvae_dims(m, &T, NULL, &Zd) == KNOBS_OK; /* a dsvae: --out gets f, --dynamic z_1:T */
  knobs_clear_error();
  int64_t n = whole ? in->n : n_draw;
  size_t D = (size_t)in->C * in->H * in->W;
  enum { CHUNK = 2048 };
  knobs_array codes = {0}, lv = {0}, fac = {0}, val = {0}, dyn = {0};
  float *x = NULL, *lvt = NULL;
  int32_t *f = NULL;
  int64_t *idx = NULL;
  cli_outputs outs = {0};
  if ((factors || values) && K == 0) {
    r = cli_fail(cmd, "%s has no ground-truth factors to write", in->name);
    goto out;
  }
  if (dynamic && !seq) {
    r = cli_usage_error(cmd, "--dynamic: the model (%s) has no dynamic code; only a dsvae model has",
                        knobs_config_string(knobs_model_config(m), "model"));
    goto out;
  }
  if (values && whole) {
    r = cli_usage_error(cmd, "--values: a file encoded whole has its labels as factors (use --factors, or --n to draw)");
    goto out;
  }
  int64_t cs[2] = {n, Z}, fs[2] = {n, K}, ds[3] = {n, T, Zd};
  x = malloc(sizeof(float) * D * CHUNK);
  f = malloc(sizeof(int32_t) * (size_t)CHUNK * (K ? K : 1));
  lvt = malloc(sizeof(float) * (size_t)CHUNK * Z);
  idx = malloc(sizeof(int64_t) * CHUNK);
  if (!x || !f || !lvt || !idx || knobs_array_alloc(&codes, KNOBS_F32, 2, cs) ||
      (logvar && knobs_array_alloc(&lv, KNOBS_F32, 2, cs)) || (factors && knobs_array_alloc(&fac, KNOBS_I64, 2, fs)) ||
      (values && knobs_array_alloc(&val, KNOBS_F64, 2, fs)) || (dynamic && knobs_array_alloc(&dyn, KNOBS_F32, 3, ds))) {
    r = cli_fail(cmd, "cannot allocate %lld codes", (long long)n);
    goto out;
  }
  for (int64_t i = 0; i < n; i += CHUNK) {
    int b = (int)(n - i < CHUNK ? n - i : CHUNK);
    float *cz = (float *)codes.data + (size_t)i * Z;
    knobs_status s;
    if (whole) {
      for (int j = 0; j < b; j++) idx[j] = i + j;
      s = knobs_data_get(d, idx, b, x, K ? f : NULL);
    } else {
      s = knobs_data_draw_values(d, b, seed, (uint64_t)i, x, K ? f : NULL, values ? (double *)val.data + (size_t)i * K : NULL);
    }
    if (!s) s = sampled ? knobs_model_encode_sampled(m, x, b, seed, (uint64_t)i, cz, lvt)
                        : knobs_model_encode(m, x, b, cz, lvt);
    if (!s && dynamic) s = knobs_dsvae_encode(m, x, b, NULL, (float *)dyn.data + (size_t)i * T * Zd);
    if (s) {
      r = cli_lib_fail(cmd, "encoding failed");
      goto out;
    }
    if (logvar) memcpy((float *)lv.data + (size_t)i * Z, lvt, sizeof(float) * (size_t)b * Z);
    if (factors)
      for (int j = 0; j < b * K; j++) ((int64_t *)fac.data)[(size_t)i * K + j] = f[j];
  }
  const char *t_out = cli_out_add(&outs, out), *t_lv = logvar ? cli_out_add(&outs, logvar) : NULL,
             *t_fac = factors ? cli_out_add(&outs, factors) : NULL, *t_val = values ? cli_out_add(&outs, values) : NULL,
             *t_dyn = dynamic ? cli_out_add(&outs, dynamic) : NULL;
  if (!t_out || (logvar && !t_lv) || (factors && !t_fac) || (values && !t_val) || (dynamic && !t_dyn)) {
    cli_out_abort(&outs);
    r = cli_usage_error(cmd, "an output path is too long");
    goto out;
  }
  if (knobs_npy_write(t_out, &codes) || (logvar && knobs_npy_write(t_lv, &lv)) || (factors && knobs_npy_write(t_fac, &fac)) ||
      (values && knobs_npy_write(t_val, &val)) || (dynamic && knobs_npy_write(t_dyn, &dyn))) {
    cli_out_abort(&outs);
    r = cli_lib_fail(cmd, "cannot write the output (nothing written)");
    goto out;
  }
  if ((r = cli_out_commit(cmd, &outs))) goto out;
  fprintf(stderr, "wrote %s (%lld x %d%s, %s; %s)%s%s%s%s%s%s", out, (long long)n, Z, seq ? ", the static code f" : "",
          sampled ? "sampled" : "means", whole ? "every row of the file, in order" : "drawn with the seed", logvar ? ", " : "",
          logvar ? logvar : "", factors ? ", " : "", factors ? factors : "", values ? ", " : "", values ? values : "");
  if (dynamic) fprintf(stderr, ", %s (%lld x %d x %d, the dynamic codes z_1:T)", dynamic, (long long)n, T, Zd);
  fprintf(stderr, "\n");
out:
  free(x), free(f), free(lvt), free(idx);
  knobs_array_free(&codes), knobs_array_free(&lv), knobs_array_free(&fac), knobs_array_free(&val), knobs_array_free(&dyn);
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
