/* test_grid_codes.c: the grid code table (src/metrics/grid.c) on a small file dataset whose
 * factors form a 4 x 5 x 6 grid: every row is the encoder's code of its grid point; the
 * metrics read from the table give the same scores as encoding on the fly (to the rounding of
 * batch composition); save/load round trips exactly; refusals: a non-grid dataset, a table of
 * another dataset or code size, a truncated file, NaN in a file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "knobs.h"

#define NA 4
#define NB 5
#define NC 6
#define N (NA * NB * NC)
#define HW 8

static char dir[128], xpath[200], fpath[200];

/* Images whose pixels depend on each factor in a different way (a bar's row, its length, a
 * brightness), in row-major grid order, and the factors. */
static void write_dataset(void) {
  knobs_array x, f;
  CHECK(!knobs_array_alloc(&x, KNOBS_F32, 4, (int64_t[]){N, 1, HW, HW}), "alloc");
  CHECK(!knobs_array_alloc(&f, KNOBS_I32, 2, (int64_t[]){N, 3}), "alloc");
  float *px = x.data;
  int32_t *fv = f.data;
  for (int i = 0; i < N; i++) {
    int a = i / (NB * NC), b = (i / NC) % NB, c = i % NC;
    fv[i * 3] = a, fv[i * 3 + 1] = b, fv[i * 3 + 2] = c;
    for (int p = 0; p < HW * HW; p++) {
      int r = p / HW, q = p % HW;
      px[i * HW * HW + p] = (r == 1 + a && q <= b + 2) ? 0.3f + 0.12f * c : 0.05f * (float)((r + q) % 3);
    }
  }
  CHECK(!knobs_npy_write(xpath, &x) && !knobs_npy_write(fpath, &f), "write: %s", knobs_last_error());
  knobs_array_free(&x);
  knobs_array_free(&f);
}

static knobs_model *small_model(knobs_data *d) {
  knobs_config *c;
  knobs_model *m = NULL;
  CHECK(!knobs_config_create("betavae", &c), "config");
  const char *kv[][2] = {{"data", xpath}, {"data_factors", fpath}, {"arch", "mlp"}, {"hidden", "24"},
                         {"latents", "4"}, {"threads", "2"}, {"seed", "3"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK(!knobs_config_set(c, kv[i][0], kv[i][1]), "set %s", kv[i][0]);
  CHECK(!knobs_config_from_data(c, d) && !knobs_model_create(c, &m), "model: %s", knobs_last_error());
  knobs_config_free(c);
  return m;
}

static void small_opts(knobs_metrics_opts *o) {
  knobs_metrics_opts_default(o);
  o->num_train = 200, o->num_test = 100, o->num_eval = 50, o->batch_size = 8, o->num_variance = 200;
  o->intervention_n = 200, o->intervention_scale_n = 200, o->mig_sampled_samples = 500, o->elbo_points = 50;
  o->gbt_stages = 5;
  o->threads = 2;
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/knobs-test-grid-%ld", (long)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
  if (system(cmd)) return 1;
  snprintf(xpath, sizeof xpath, "%s/x.npy", dir);
  snprintf(fpath, sizeof fpath, "%s/f.npy", dir);
  write_dataset();
  knobs_data_opts dop = {.threads = 1, .factors = fpath, .noise = -1};
  knobs_data *d = NULL;
  CHECK(!knobs_data_open(xpath, &dop, &d), "open: %s", knobs_last_error());
  if (!d) return t_done();
  CHECK(knobs_data_is_fixed_grid(d), "a complete row-major factor table is not a grid");
  knobs_model *m = small_model(d);
  knobs_encoder enc;
  CHECK(!knobs_model_encoder(m, 0, 1, &enc), "encoder: %s", knobs_last_error());
  enc.batch = 16; /* several batches, one partial */

  T_CASE("build: each row is its grid point's code");
  knobs_grid_codes g;
  CHECK(!knobs_grid_codes_build(d, &enc, NULL, NULL, &g), "build: %s", knobs_last_error());
  CHECK(g.n == N && g.D == 4 && g.mean && g.logvar, "n %lld D %d", (long long)g.n, g.D);
  float x[N * HW * HW], z[N * 4], lv[N * 4];
  int64_t idx[N];
  int32_t fac[N * 3];
  for (int i = 0; i < N; i++) idx[N - 1 - i] = i; /* reversed: another batch composition */
  CHECK(!knobs_data_get(d, idx, N, x, fac), "get");
  CHECK(!knobs_model_encode(m, x, N, z, lv), "encode");
  float want[N * 4], wlv[N * 4];
  for (int i = 0; i < N; i++) {
    memcpy(want + i * 4, g.mean + knobs_data_index(d, fac + i * 3) * 4, sizeof(float) * 4);
    memcpy(wlv + i * 4, g.logvar + knobs_data_index(d, fac + i * 3) * 4, sizeof(float) * 4);
  }
  CHECK_CLOSE(z, want, N * 4, 1e-5, 1e-6);
  CHECK_CLOSE(lv, wlv, N * 4, 1e-5, 1e-6);
  double spread = 0;
  for (int i = 1; i < N; i++) spread += fabs(g.mean[i * 4] - g.mean[0]);
  CHECK(spread > 1e-3, "every grid point has the same code: the test cannot tell rows apart");

  T_CASE("metrics: the table gives the on-the-fly scores");
  knobs_metrics_opts o;
  small_opts(&o);
  knobs_result *r1 = NULL, *r2 = NULL;
  const char *list = "beta_vae,factor_vae,mig,sap,dci,irs,intervention,mig_sampled,modularity";
  CHECK(!knobs_metrics_dataset(d, &enc, list, &o, &r1), "metrics: %s", knobs_last_error());
  o.grid_codes = &g;
  CHECK(!knobs_metrics_dataset(d, &enc, list, &o, &r2), "metrics with the table: %s", knobs_last_error());
  const char *keys[] = {"beta_vae.score", "factor_vae.score", "mig.score", "sap.score", "dci.score", "irs.score",
                        "intervention.score", "mig_sampled.score", "modularity.score"};
  for (size_t k = 0; r1 && r2 && k < sizeof keys / sizeof keys[0]; k++) {
    double a = NAN, b = NAN;
    CHECK(!knobs_result_get(r1, keys[k], &a) && !knobs_result_get(r2, keys[k], &b), "%s: %s", keys[k], knobs_last_error());
    CHECK(fabs(a - b) <= 1e-4 * fmax(1, fabs(a)), "%s: %.9g on the fly, %.9g from the table", keys[k], a, b);
  }
  /* the table is what the metrics read: a table of other codes changes the scores */
  for (int i = 0; i < N * 4; i++) g.mean[i] = -g.mean[i] + (float)(i % 7);
  knobs_result *r3 = NULL;
  CHECK(!knobs_metrics_dataset(d, &enc, "mig", &o, &r3), "metrics: %s", knobs_last_error());
  double a = NAN, b = NAN;
  if (r1 && r3) knobs_result_get(r1, "mig.score", &a), knobs_result_get(r3, "mig.score", &b);
  CHECK(a != b, "mig did not change with the table's codes (%g): the table is not read", a);
  for (int i = 0; i < N * 4; i++) g.mean[i] = -(g.mean[i] - (float)(i % 7));
  knobs_result_free(r1), knobs_result_free(r2), knobs_result_free(r3);

  T_CASE("save and load");
  char path[300];
  snprintf(path, sizeof path, "%s/grid.npy", dir);
  CHECK(!knobs_grid_codes_save(&g, path), "save: %s", knobs_last_error());
  knobs_grid_codes h;
  CHECK(!knobs_grid_codes_load(path, d, 4, 1, &h), "load: %s", knobs_last_error());
  CHECK(h.n == N && !memcmp(h.mean, g.mean, sizeof(float) * N * 4) && !memcmp(h.logvar, g.logvar, sizeof(float) * N * 4),
        "the loaded table differs");
  knobs_grid_codes_free(&h);
  CHECK(knobs_grid_codes_load(path, d, 5, 1, &h) == KNOBS_ERR_FORMAT && !h.mean, "a table of 4 dimensions loaded as 5");
  CHECK(strstr(knobs_last_error(), path) != NULL, "message names no file: %s", knobs_last_error());
  CHECK(knobs_grid_codes_load(path, d, 4, 0, &h) == KNOBS_ERR_FORMAT, "a table with log-variances loaded as means only");
  FILE *fp = fopen(path, "r+b");
  if (fp) { /* a NaN in the last value */
    float nan = NAN;
    fseek(fp, -4, SEEK_END);
    fwrite(&nan, 4, 1, fp);
    fclose(fp);
  }
  CHECK(knobs_grid_codes_load(path, d, 4, 1, &h) == KNOBS_ERR_DATA && !h.mean, "a NaN in the file was accepted");
  CHECK(!truncate(path, 100), "truncate");
  CHECK(knobs_grid_codes_load(path, d, 4, 1, &h) != KNOBS_OK && !h.mean, "a truncated file loaded");

  T_CASE("refusals");
  knobs_grid_codes bad = g;
  bad.D = 3;
  o.grid_codes = &bad;
  knobs_result *r4 = NULL;
  CHECK(knobs_metrics_dataset(d, &enc, "mig", &o, &r4) == KNOBS_ERR_ARG && !r4, "a table of 3 dimensions was used");
  knobs_data *phys = NULL;
  knobs_data_opts po = {.threads = 1, .noise = -1};
  CHECK(!knobs_data_open("physics", &po, &phys), "physics");
  knobs_grid_codes pg;
  CHECK(knobs_grid_codes_build(phys, &enc, NULL, NULL, &pg) == KNOBS_ERR_UNSUPPORTED && !pg.mean,
        "a grid table of physics (continuous draws) was built");
  CHECK(!knobs_data_is_fixed_grid(phys), "physics counted as a fixed grid");
  knobs_data_free(phys);
  knobs_grid_codes_free(NULL);

  knobs_grid_codes_free(&g);
  knobs_encoder_release(&enc);
  knobs_model_free(m);
  knobs_data_free(d);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (!t_failed && system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
