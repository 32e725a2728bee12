/* quality.c: the quality benchmark's driver (bench/quality/run.sh builds and runs it).
 *
 *   quality speed MODEL BATCH THREADS STEPS [key=value ...]
 *       images/s of MODEL's training step on the built-in dSprites (data drawn each step, as
 *       knobs train does); one line of JSON.
 *   quality run MODEL OUTDIR SECONDS SEED THREADS [key=value ...]
 *       train MODEL on the built-in dSprites for SECONDS of wall time (or to the config's
 *       steps, whichever comes first), checkpoint to OUTDIR/model.safetensors, then score the
 *       representation (posterior means; InfoGAN's Q means) with MIG, DCI disentanglement,
 *       FactorVAE score and BetaVAE score (knobs' metrics library, disentanglement_lib's
 *       protocol; the last two with fewer points, see below) and write OUTDIR/result.json:
 *       the metrics, steps, seconds and the config.
 * key=value pairs are config fields (knobs_config_set), e.g. beta=1 latents=10. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "knobs.h"
#include "models/families.h"

static int fail(const char *what) {
  fprintf(stderr, "quality: %s: %s\n", what, knobs_last_error());
  return 2;
}

static knobs_status encode(void *ctx, const float *x, int n, float *codes) {
  return knobs_model_encode(ctx, x, n, codes, NULL);
}

static int setup(const char *model, int threads, uint64_t seed, int argc, char **argv, knobs_data **d,
                 knobs_model **m) {
  knobs_config c;
  if (!kn_model_ops_find(model)) return fail(model);
  kn_config_default(&c, model);
  c.threads = threads;
  c.seed = seed;
  c.steps = 1000000000L;
  for (int i = 0; i < argc; i++) {
    char key[64];
    const char *eq = strchr(argv[i], '=');
    if (!eq || eq - argv[i] >= (long)sizeof key) {
      fprintf(stderr, "quality: '%s' is not key=value\n", argv[i]);
      return 1;
    }
    memcpy(key, argv[i], (size_t)(eq - argv[i]));
    key[eq - argv[i]] = 0;
    if (knobs_config_set(&c, key, eq + 1)) return fail(argv[i]);
  }
  knobs_data_opts o;
  knobs_config_data_opts(&c, &o);
  if (knobs_data_open(c.data, &o, d)) return fail("data");
  knobs_config_from_data(&c, *d);
  if (knobs_model_create(&c, m)) return fail("model");
  return 0;
}

static int speed(int argc, char **argv) {
  knobs_data *d;
  knobs_model *m;
  char b[32];
  snprintf(b, sizeof b, "batch=%s", argv[1]);
  char *extra[64];
  int ne = 0;
  extra[ne++] = b;
  for (int i = 4; i < argc && ne < 63; i++) extra[ne++] = argv[i];
  int r = setup(argv[0], atoi(argv[2]), 0, ne, extra, &d, &m);
  if (r) return r;
  int steps = atoi(argv[3]);
  for (int i = 0; i < 3; i++)
    if (knobs_model_train_step(m, d, NULL)) return fail("step");
  double t0 = kn_now();
  for (int i = 0; i < steps; i++)
    if (knobs_model_train_step(m, d, NULL)) return fail("step");
  double dt = kn_now() - t0;
  const knobs_config *c = knobs_model_config(m);
  int per_step = c->batch * (!strcmp(c->model, "gvae") || !strcmp(c->model, "mlvae") || !strcmp(c->model, "adagvae") ||
                                     !strcmp(c->model, "adamlvae") ? 2 : 1);
  printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"ms_per_step\": %.2f, \"images_per_s\": %.1f}\n", c->model,
         c->batch, c->threads, dt / steps * 1e3, per_step * steps / dt);
  knobs_model_free(m);
  knobs_data_free(d);
  return 0;
}

static int run(int argc, char **argv) {
  const char *model = argv[0], *dir = argv[1];
  double seconds = atof(argv[2]);
  knobs_data *d;
  knobs_model *m;
  int r = setup(model, atoi(argv[4]), strtoull(argv[3], NULL, 10), argc - 5, argv + 5, &d, &m);
  if (r) return r;
  mkdir(dir, 0755);
  const knobs_config *c = knobs_model_config(m);
  double t0 = kn_now(), last = t0;
  knobs_terms t = {0};
  while (kn_now() - t0 < seconds && knobs_model_step(m) < c->steps) {
    if (knobs_model_train_step(m, d, &t)) return fail("step");
    if (kn_now() - last > 60) {
      last = kn_now();
      fprintf(stderr, "%s: step %ld, %.0f s", model, knobs_model_step(m), last - t0);
      for (int i = 0; i < t.n; i++) fprintf(stderr, " %s %.4g", t.name[i], t.value[i]);
      fputc('\n', stderr);
    }
  }
  double train_s = kn_now() - t0;
  char path[1024];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (knobs_model_save(m, path)) return fail("save");
  /* MIG and DCI with disentanglement_lib's sample sizes (10000 train, 5000 test); the
   * FactorVAE and BetaVAE scores with 1000 training and 500 evaluation points of 64
   * observations each (the reference uses 10000 and 5000: 30x the encoding, about half an
   * hour per model on 2 cores), the rest of their protocol unchanged */
  knobs_metrics_opts o;
  knobs_metrics_opts_default(&o);
  o.seed = c->seed;
  o.threads = c->threads;
  knobs_encoder enc = {.code_dim = knobs_model_code_dim(m), .encode = encode, .ctx = m, .batch = 256};
  knobs_result *res, *res2;
  double e0 = kn_now();
  if (knobs_metrics_dataset(d, &enc, "mig,dci", &o, &res)) return fail("metrics");
  o.num_train = 1000, o.num_eval = 500;
  if (knobs_metrics_dataset(d, &enc, "factor_vae,beta_vae", &o, &res2)) return fail("metrics");
  double eval_s = kn_now() - e0;
  const char *keys[] = {"factor_vae.score", "beta_vae.score"};
  for (int i = 0; i < 2; i++) {
    double v;
    char val[64];
    if (!knobs_result_get(res2, keys[i], &v)) {
      snprintf(val, sizeof val, "%.6f", v);
      knobs_result_set_string(res, keys[i], val);
    }
  }
  knobs_result_free(res2);
  char num[64];
  snprintf(num, sizeof num, "%ld", knobs_model_step(m));
  knobs_result_set_string(res, "steps", num);
  snprintf(num, sizeof num, "%.1f", train_s);
  knobs_result_set_string(res, "train_seconds", num);
  snprintf(num, sizeof num, "%.1f", eval_s);
  knobs_result_set_string(res, "eval_seconds", num);
  knobs_result_set_string(res, "model", model);
  char *cj = knobs_config_to_json(c);
  if (cj) knobs_result_set_string(res, "config", cj);
  free(cj);
  for (int i = 0; i < t.n; i++) {
    char key[64];
    snprintf(key, sizeof key, "final_%s", t.name[i]);
    snprintf(num, sizeof num, "%.6g", t.value[i]);
    knobs_result_set_string(res, key, num);
  }
  if (!strcmp(model, "infogan")) { /* 64 generator samples from the prior, as a PNG grid */
    float *img = malloc(sizeof(float) * 64 * 4096 * (size_t)c->C);
    uint8_t *grid = NULL;
    int gw, gh;
    snprintf(path, sizeof path, "%s/samples.png", dir);
    if (!img || kn_infogan_sample(m, 64, c->seed, img) ||
        knobs_image_grid(img, 64, c->C, c->H, c->W, 8, 2, 0.5f, &grid, &gw, &gh) || knobs_png_write(path, grid, gw, gh, c->C))
      return fail("samples");
    free(img), free(grid);
  }
  snprintf(path, sizeof path, "%s/result.json", dir);
  if (knobs_result_write(res, path)) return fail("write");
  char *tab = knobs_result_table(res);
  if (tab) printf("%s\n", tab);
  free(tab);
  knobs_result_free(res);
  knobs_model_free(m);
  knobs_data_free(d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 6 && !strcmp(argv[1], "speed")) return speed(argc - 2, argv + 2);
  if (argc >= 7 && !strcmp(argv[1], "run")) return run(argc - 2, argv + 2);
  fprintf(stderr, "usage: quality speed MODEL BATCH THREADS STEPS [key=value ...]\n"
                  "       quality run MODEL OUTDIR SECONDS SEED THREADS [key=value ...]\n");
  return 1;
}
