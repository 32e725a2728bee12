/* cmd_encode.c: `knobs encode`: draw N observations from a dataset with a seed, encode them, and
 * write the codes (N,Z) float32 .npy (posterior means, or samples with --sampled) and
 * optionally the ground-truth factors (N,K) int64 .npy, for `knobs metrics` or NumPy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cmd_encode(int argc, char **argv) {
  const char *cmd = "encode", *model = NULL, *data = NULL, *out = NULL, *factors = NULL, *logvar = NULL;
  int n = 10000, threads = 0, sampled = 0;
  uint64_t seed = 0;
  cli_opt o[] = {
      {"--model", OPT_STR, &model, 0, 0, "RUN", "checkpoint or run folder", 0},
      {"--data", OPT_STR, &data, 0, 0, "D", "dataset (default: the model's)", 0},
      {"--n", OPT_INT, &n, 1, 100000000, "N", "observations to draw", 0},
      {"--seed", OPT_U64, &seed, 0, 0, "S", "seed of the draw (and of --sampled noise)", 0},
      {"--out", OPT_STR, &out, 0, 0, "PATH", "codes .npy (N,Z) float32", 0},
      {"--factors", OPT_STR, &factors, 0, 0, "PATH", "also write the factors .npy (N,K) int64", 0},
      {"--logvar", OPT_STR, &logvar, 0, 0, "PATH", "also write the posterior log-variances .npy", 0},
      {"--sampled", OPT_FLAG, &sampled, 0, 0, NULL, "codes are posterior samples, not means", 0},
      {"--threads", OPT_INT, &threads, 0, 1024, "N", "threads (0: as trained)", 0},
  };
  int r = cli_parse(cmd, "--model RUN --out codes.npy [options]", argc, argv, o, (int)(sizeof o / sizeof o[0]), NULL, 0, NULL);
  if (r) return r < 0 ? 0 : r;
  if (!out) return cli_usage_error(cmd, "--out PATH is required");
  knobs_model *m;
  knobs_data *d;
  if ((r = cli_open_model_data(cmd, model, threads, data, &m, &d))) return r;
  const knobs_data_info *in = knobs_data_info_get(d);
  int Z = knobs_model_code_dim(m), K = in->K;
  if (factors && K == 0) {
    r = cli_fail(cmd, "%s has no ground-truth factors to write", in->name);
    goto out;
  }
  size_t D = (size_t)in->C * in->H * in->W;
  int chunk = 2048;
  knobs_array codes = {0}, lv = {0}, fac = {0};
  int64_t cs[2] = {n, Z}, fs[2] = {n, K};
  float *x = malloc(sizeof(float) * D * chunk);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)chunk * (K ? K : 1));
  float *lvt = malloc(sizeof(float) * (size_t)chunk * Z);
  if (!x || !f || !lvt || knobs_array_alloc(&codes, KNOBS_F32, 2, cs) || (logvar && knobs_array_alloc(&lv, KNOBS_F32, 2, cs)) ||
      (factors && knobs_array_alloc(&fac, KNOBS_I64, 2, fs))) {
    r = cli_fail(cmd, "cannot allocate %d codes", n);
    goto free_all;
  }
  for (int i = 0; i < n; i += chunk) {
    int b = n - i < chunk ? n - i : chunk;
    float *cz = (float *)codes.data + (size_t)i * Z;
    knobs_status s = knobs_data_draw(d, b, seed, (uint64_t)i, x, K ? f : NULL);
    if (!s) s = sampled ? knobs_model_encode_sampled(m, x, b, seed, (uint64_t)i, cz, lvt)
                        : knobs_model_encode(m, x, b, cz, lvt);
    if (s) {
      r = cli_lib_fail(cmd, "encoding failed");
      goto free_all;
    }
    if (logvar) memcpy((float *)lv.data + (size_t)i * Z, lvt, sizeof(float) * (size_t)b * Z);
    if (factors)
      for (int j = 0; j < b * K; j++) ((int64_t *)fac.data)[(size_t)i * K + j] = f[j];
  }
  if (knobs_npy_write(out, &codes) || (logvar && knobs_npy_write(logvar, &lv)) || (factors && knobs_npy_write(factors, &fac)))
    r = cli_lib_fail(cmd, "cannot write the output");
  else
    fprintf(stderr, "wrote %s (%d x %d%s)%s%s\n", out, n, Z, sampled ? ", sampled" : ", means",
            factors ? " and " : "", factors ? factors : "");
free_all:
  free(x), free(f), free(lvt);
  knobs_array_free(&codes), knobs_array_free(&lv), knobs_array_free(&fac);
out:
  knobs_data_free(d);
  knobs_model_free(m);
  return r;
}
