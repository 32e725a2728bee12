/* test_edit.c: naming knobs and editing with them (src/apps/names.c, edit.c, design.c's
 * decoder gradient): knobs_name_codes on synthetic codes whose answer is known (which factor,
 * which direction, a monotone calibration that inverts), knobs.json round trips and version 1
 * files, knobs_knobs_find/rename, knobs_edit_codes and the attribute vector, knobs_name on a
 * trained toy model, and knobs_model_decode_vjp against PyTorch (tests/ref/vjp_*.safetensors,
 * tests/ref/make_vjp_ref.py) and against central finite differences. */
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "models_t.h"

static char dir[] = "/tmp/knobs-test-edit-XXXXXX";

static double urand(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) / 9007199254740992.0;
}

/* codes of 3 latents over factors (a: 8 classes, b: 5 classes): z0 = 0.3 + 2 a/7 + noise,
 * z1 = -b + noise, z2 = noise only. */
static void synthetic(int n, float *z, int32_t *f, double *v) {
  uint64_t s = 42;
  for (int i = 0; i < n; i++) {
    int a = (int)(urand(&s) * 8), b = (int)(urand(&s) * 5);
    f[2 * i] = a, f[2 * i + 1] = b;
    v[2 * i] = a / 7.0, v[2 * i + 1] = 10 + b;
    z[3 * i] = (float)(0.3 + 2 * a / 7.0 + 0.05 * (urand(&s) - 0.5));
    z[3 * i + 1] = (float)(-b + 0.05 * (urand(&s) - 0.5));
    z[3 * i + 2] = (float)(urand(&s) - 0.5);
  }
}

static void test_name_codes(void) {
  T_CASE("name_codes");
  enum { N = 4000 };
  static float z[N * 3];
  static int32_t f[N * 2];
  static double v[N * 2];
  synthetic(N, z, f, v);
  const char names[2][32] = {"alpha", "beta"};
  double kl[3] = {1.0, 2.0, 0.01};
  knobs_knobs *k = NULL;
  CHECK(!knobs_name_codes(z, f, v, N, 3, 2, names, kl, &k), "%s", knobs_last_error());
  if (!k) return;
  CHECK(k->Z == 3 && k->K == 2 && k->n == N, "sizes %d %d %d", k->Z, k->K, k->n);
  CHECK(!strcmp(k->knobs[0].factor, "alpha") && k->knobs[0].factor_index == 0, "z0 tracks %s", k->knobs[0].factor);
  CHECK(!strcmp(k->knobs[1].factor, "beta") && k->knobs[1].factor_index == 1, "z1 tracks %s", k->knobs[1].factor);
  CHECK(k->knobs[2].factor[0] == 0 && k->knobs[2].factor_index == -1, "z2 (inactive) tracks %s", k->knobs[2].factor);
  CHECK(k->knobs[0].direction == 1 && k->knobs[1].direction == -1, "directions %d %d", k->knobs[0].direction,
        k->knobs[1].direction);
  CHECK(k->knobs[0].corr > 0.95 && k->knobs[1].corr < -0.95, "spearman %g %g", k->knobs[0].corr, k->knobs[1].corr);
  CHECK(k->knobs[0].mi[0] > 0.9 && k->knobs[0].mi[1] < 0.05, "mi row of z0: %g %g", k->knobs[0].mi[0], k->knobs[0].mi[1]);
  CHECK_NEAR(k->knobs[1].kl, 2.0, 0);
  /* calibration: monotone, spans the factor's values, and inverts */
  for (int j = 0; j < 2; j++) {
    const knobs_knob *kb = &k->knobs[j];
    CHECK(kb->n_knots >= 5, "z%d has %d knots", j, kb->n_knots);
    int mono = 1;
    for (int q = 1; q < kb->n_knots; q++) {
      if (kb->knot_code[q] <= kb->knot_code[q - 1]) mono = 0;
      if ((kb->knot_value[q] - kb->knot_value[q - 1]) * kb->direction < 0) mono = 0;
    }
    CHECK(mono, "z%d: knots not monotone", j);
  }
  const knobs_knob *k0 = &k->knobs[0], *k1 = &k->knobs[1];
  CHECK_NEAR(k0->knot_value[0], 0.0, 1e-9);
  CHECK_NEAR(k0->knot_value[k0->n_knots - 1], 1.0, 1e-9);
  CHECK_NEAR(k1->knot_value[0], 14.0, 1e-9); /* decreasing: the smallest code has the largest b */
  CHECK_NEAR(knobs_knob_value(k0, 0.3 + 2 * 3 / 7.0), 3 / 7.0, 0.05);
  double c;
  CHECK(!knobs_knob_code(k0, 5 / 7.0, &c), "%s", knobs_last_error());
  CHECK_NEAR(c, 0.3 + 2 * 5 / 7.0, 0.06);
  CHECK(!knobs_knob_code(k1, 12, &c), "%s", knobs_last_error());
  CHECK_NEAR(c, -2, 0.06);
  CHECK_NEAR(knobs_knob_value(k0, c = 100), 1.0, 1e-9); /* clamped */
  CHECK(knobs_knob_code(k0, 1.5, &c) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "outside"), "%s", knobs_last_error());
  CHECK(knobs_knob_code(&k->knobs[2], 0.5, &c) == KNOBS_ERR_ARG, "an uncalibrated knob inverts");
  /* round trip through any value: value(code(v)) == v */
  double worst = 0;
  for (int i = 0; i <= 20; i++) {
    double t = k0->knot_value[0] + i / 20.0 * (k0->knot_value[k0->n_knots - 1] - k0->knot_value[0]);
    if (!knobs_knob_code(k0, t, &c)) worst = fmax(worst, fabs(knobs_knob_value(k0, c) - t));
  }
  CHECK(worst < 1e-9, "value(code(v)) off by %g", worst);
  knobs_knobs_free(k);

  T_CASE("name_codes refusals");
  z[5] = NAN;
  CHECK(knobs_name_codes(z, f, v, N, 3, 2, names, NULL, &k) == KNOBS_ERR_DATA && !k, "NaN code accepted");
  z[5] = 0;
  f[3] = -1;
  CHECK(knobs_name_codes(z, f, v, N, 3, 2, names, NULL, &k) == KNOBS_ERR_DATA && !k, "negative class accepted");
  f[3] = 0;
  CHECK(knobs_name_codes(z, f, v, 1, 3, 2, names, NULL, &k) == KNOBS_ERR_ARG, "one sample accepted");
}

static knobs_knobs *example(void) {
  knobs_knobs *k = NULL;
  if (knobs_knobs_create(3, 2, &k)) return NULL;
  snprintf(k->factors[0], 32, "alpha"), snprintf(k->factors[1], 32, "beta");
  k->n = 1000, k->step = 77;
  snprintf(k->data, sizeof k->data, "toy");
  snprintf(k->knobs[0].factor, 32, "alpha"), k->knobs[0].factor_index = 0;
  snprintf(k->knobs[1].factor, 32, "beta"), k->knobs[1].factor_index = 1;
  snprintf(k->knobs[2].factor, 32, "beta"), k->knobs[2].factor_index = 1;
  k->knobs[1].mi[1] = 0.8, k->knobs[2].mi[1] = 0.3;
  k->knobs[0].n_knots = 3, k->knobs[0].direction = -1;
  double kc[3] = {-1, 0.1234567890123, 2}, kv[3] = {5, 3, 1};
  memcpy(k->knobs[0].knot_code, kc, sizeof kc), memcpy(k->knobs[0].knot_value, kv, sizeof kv);
  k->knobs[0].kl = 1.5, k->knobs[0].scale = 0.25;
  return k;
}

static void test_json(void) {
  T_CASE("knobs.json round trip");
  knobs_knobs *k = example(), *r = NULL;
  if (!k) return;
  CHECK(!knobs_knobs_rename(k, 2, "wobble"), "%s", knobs_last_error());
  /* one ulp above a short decimal: 15 digits would read back as its neighbour */
  k->knobs[0].knot_value[1] = nextafter(k->knobs[0].knot_value[1], INFINITY);
  k->knobs[0].knot_code[1] = nextafter(k->knobs[0].knot_code[1], INFINITY);
  CHECK(!knobs_knobs_write(k, dir), "%s", knobs_last_error());
  CHECK(!knobs_knobs_read(dir, 3, &r) && r, "%s", knobs_last_error());
  if (r) {
    CHECK(r->step == 77 && r->n == 1000 && r->K == 2 && !strcmp(r->data, "toy"), "header %ld %d %d %s", r->step, r->n, r->K, r->data);
    CHECK(!strcmp(r->knobs[2].name, "wobble") && !r->knobs[0].name[0], "names");
    CHECK(r->knobs[0].n_knots == 3 && !memcmp(r->knobs[0].knot_code, k->knobs[0].knot_code, 3 * sizeof(double)) &&
          !memcmp(r->knobs[0].knot_value, k->knobs[0].knot_value, 3 * sizeof(double)), "knots not exact: %.17g read as %.17g",
          k->knobs[0].knot_value[1], r->knobs[0].knot_value[1]);
    CHECK(r->knobs[0].direction == -1 && r->knobs[0].factor_index == 0 && r->knobs[2].factor_index == 1, "factors");
    CHECK_NEAR(r->knobs[0].kl, 1.5, 1e-6);
    char names[3][64];
    CHECK(!knobs_knob_names(dir, 3, names), "%s", knobs_last_error());
    CHECK(!strcmp(names[0], "alpha") && !strcmp(names[2], "wobble"), "knob_names %s %s", names[0], names[2]);
    knobs_knobs_free(r);
  }
  r = NULL;
  CHECK(knobs_knobs_read(dir, 4, &r) == KNOBS_ERR_FORMAT && !r && strstr(knobs_last_error(), "knobs.json"),
        "another Z accepted: %s", knobs_last_error());

  T_CASE("find and rename");
  CHECK(knobs_knobs_find(k, 3, "1") == 1 && knobs_knobs_find(k, 3, "z2") == 2, "numbers");
  CHECK(knobs_knobs_find(k, 3, "wobble") == 2, "user name");
  CHECK(knobs_knobs_find(k, 3, "alpha") == 0, "factor name");
  CHECK(knobs_knobs_find(k, 3, "beta") == 1, "a factor of two latents: the one of largest MI");
  CHECK(knobs_knobs_find(k, 3, "gamma") == -1 && strstr(knobs_last_error(), "gamma") && strstr(knobs_last_error(), "wobble"),
        "unknown: %s", knobs_last_error());
  CHECK(knobs_knobs_find(k, 3, "3") == -1 && strstr(knobs_last_error(), "out of range"), "%s", knobs_last_error());
  CHECK(knobs_knobs_find(NULL, 3, "1") == 1 && knobs_knobs_find(NULL, 3, "alpha") == -1, "no table");
  CHECK(knobs_knobs_rename(k, 0, "12") == KNOBS_ERR_ARG, "a numeric name accepted");
  CHECK(knobs_knobs_rename(k, 0, "a\tb") == KNOBS_ERR_ARG, "a control character accepted");
  CHECK(knobs_knobs_rename(k, 5, "x") == KNOBS_ERR_ARG, "latent out of range accepted");
  char lab[64];
  CHECK(!strcmp(knobs_knobs_label(k, 0, lab, sizeof lab), "alpha") && !strcmp(knobs_knobs_label(NULL, 1, lab, sizeof lab), "z1"),
        "labels");
  knobs_knobs_free(k);

  T_CASE("knobs.json version 1 and malformed files");
  char p[300];
  snprintf(p, sizeof p, "%s/knobs.json", dir);
  FILE *fp = fopen(p, "w");
  fputs("{\"version\":1,\"step\":5,\"n_mi\":2000,\"factors\":[\"a\",\"b\"],\"latents\":[{\"name\":\"x\",\"factor\":\"a\","
        "\"mi\":[0.5,0.1]},{\"name\":null,\"factor\":null,\"mi\":[0.01,0.02]}]}", fp);
  fclose(fp);
  r = NULL;
  CHECK(!knobs_knobs_read(dir, 2, &r) && r, "%s", knobs_last_error());
  if (r) {
    CHECK(r->n == 2000 && r->step == 5 && !strcmp(r->knobs[0].name, "x") && r->knobs[0].factor_index == 0 &&
          r->knobs[0].n_knots == 0 && r->knobs[0].mi[0] == 0.5, "v1 fields");
    knobs_knobs_free(r);
  }
  fp = fopen(p, "w");
  fputs("{\"version\":2,\"factors\":[\"a\"],\"latents\":[{\"mi\":[0.5],\"calibration\":{\"code\":[1,0],\"value\":[0,1]}}]}", fp);
  fclose(fp);
  r = NULL;
  CHECK(knobs_knobs_read(dir, 1, &r) == KNOBS_ERR_FORMAT && !r && strstr(knobs_last_error(), "calibration"),
        "decreasing knot codes accepted: %s", knobs_last_error());
  fp = fopen(p, "w");
  fputs("{\"latents\": 3}", fp);
  fclose(fp);
  CHECK(knobs_knobs_read(dir, 1, &r) == KNOBS_ERR_FORMAT && !r, "no latents array accepted");
  unlink(p);
  CHECK(!knobs_knobs_read(dir, 1, &r) && !r, "a missing file is not an error");
}

static void test_edit_codes(void) {
  T_CASE("edit_codes");
  knobs_knobs *k = example();
  if (!k) return;
  float z[6] = {0.5f, 1, 2, -0.5f, 3, 4};
  knobs_edit_op ops[3] = {{1, KNOBS_EDIT_SET, 7}, {2, KNOBS_EDIT_ADD, -1}, {0, KNOBS_EDIT_FACTOR, 4}};
  CHECK(!knobs_edit_codes(k, ops, 3, z, 2, 3), "%s", knobs_last_error());
  CHECK(z[1] == 7 && z[4] == 7 && z[2] == 1 && z[5] == 3, "set/add: %g %g %g %g", z[1], z[4], z[2], z[5]);
  /* value 4 lies between knots (-1, 5) and (0.123.., 3): code = -1 + 0.5 * 1.123.. */
  CHECK_NEAR(z[0], -1 + 0.5 * (0.1234567890123 + 1), 1e-6);
  CHECK_NEAR(z[3], z[0], 0);
  knobs_edit_op bad[1] = {{2, KNOBS_EDIT_FACTOR, 1}};
  float keep[6];
  memcpy(keep, z, sizeof z);
  CHECK(knobs_edit_codes(k, bad, 1, z, 2, 3) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "calibration"),
        "an uncalibrated knob moved: %s", knobs_last_error());
  knobs_edit_op far[2] = {{1, KNOBS_EDIT_SET, 1}, {0, KNOBS_EDIT_FACTOR, 9}};
  CHECK(knobs_edit_codes(k, far, 2, z, 2, 3) == KNOBS_ERR_ARG && !memcmp(keep, z, sizeof z),
        "a value out of reach accepted, or codes changed before the refusal");
  knobs_edit_op oob[1] = {{3, KNOBS_EDIT_SET, 1}};
  CHECK(knobs_edit_codes(k, oob, 1, z, 2, 3) == KNOBS_ERR_ARG, "latent out of range accepted");
  knobs_edit_op nan[1] = {{0, KNOBS_EDIT_SET, NAN}};
  CHECK(knobs_edit_codes(k, nan, 1, z, 2, 3) == KNOBS_ERR_ARG, "NaN value accepted");
  knobs_knobs_free(k);

  T_CASE("attribute vector");
  float c[8] = {1, 2, 3, 4, 5, 6, 0, 0};
  int32_t lab[4] = {1, 0, 1, 0};
  float v[2];
  CHECK(!knobs_attribute_vector(c, lab, 4, 2, v), "%s", knobs_last_error());
  CHECK(v[0] == 3 - 1.5f && v[1] == 4 - 2.0f, "vector %g %g", v[0], v[1]); /* (1+5)/2-(3+0)/2, (2+6)/2-(4+0)/2 */
  int32_t all[4] = {1, 1, 1, 1};
  CHECK(knobs_attribute_vector(c, all, 4, 2, v) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "negative"), "%s",
        knobs_last_error());
}

/* ---- the decoder's vector-Jacobian product ---------------------------------------------- */
static void test_vjp_ref(const char *file) {
  T_CASE(file);
  if (kn_st_read(file, &MT_ST)) {
    CHECK(0, "%s: %s", file, knobs_last_error());
    return;
  }
  cJSON *meta = cJSON_Parse(MT_ST.metadata_json);
  const cJSON *cj = cJSON_GetObjectItem(meta, "config"), *oj = cJSON_GetObjectItem(meta, "param_order");
  cJSON *cfgj = cJSON_IsString(cj) ? cJSON_Parse(cj->valuestring) : NULL;
  cJSON *order = cJSON_IsString(oj) ? cJSON_Parse(oj->valuestring) : NULL;
  size_t nz, ng, nd;
  knobs_dtype t;
  const float *z = mt_tensor("z", &nz, &t), *g = mt_tensor("g", &ng, &t);
  const double *dz = mt_tensor("dz", &nd, &t), *dza = mt_tensor("dz_area", &nd, &t);
  knobs_config c;
  kn_config_default(&c, "betavae");
  for (cJSON *it = cfgj ? cfgj->child : NULL; it; it = it->next) {
    char v[64];
    if (cJSON_IsString(it)) snprintf(v, sizeof v, "%s", it->valuestring);
    else snprintf(v, sizeof v, "%.17g", it->valuedouble);
    CHECK(!knobs_config_set(&c, it->string, v), "config %s: %s", it->string, knobs_last_error());
  }
  c.threads = 2;
  knobs_model *m = NULL;
  if (!cfgj || !order || !z || !g || !dz || knobs_model_create(&c, &m) || mt_set_params(m, order)) {
    CHECK(0, "setup: %s", knobs_last_error());
  } else {
    int Z = c.z_dim, n = (int)(nz / (size_t)Z);
    size_t D = (size_t)c.C * c.H * c.W;
    float *out = malloc(sizeof(float) * nz), *ref = malloc(sizeof(float) * nz), *ga = malloc(sizeof(float) * D * n);
    CHECK(!knobs_model_decode_vjp(m, z, n, g, out), "%s", knobs_last_error());
    for (size_t i = 0; i < nz; i++) ref[i] = (float)dz[i];
    CHECK_CLOSE(out, ref, nz, 1e-3, 1e-4);
    /* the area property's image gradient is 1/D everywhere */
    for (size_t i = 0; i < D * n; i++) ga[i] = 1.0f / (float)D;
    CHECK(!knobs_model_decode_vjp(m, z, n, ga, out), "%s", knobs_last_error());
    for (size_t i = 0; i < nz; i++) ref[i] = (float)dza[i];
    CHECK_CLOSE(out, ref, nz, 1e-3, 1e-6);
    free(out), free(ref), free(ga);
  }
  knobs_model_free(m);
  cJSON_Delete(cfgj), cJSON_Delete(order), cJSON_Delete(meta);
  mt_free_copies();
  kn_st_free(&MT_ST);
}

static void test_vjp_fd(void) {
  T_CASE("decode_vjp finite differences");
  /* the conv decoder is checked against PyTorch above; mlp at odd sizes here */
  knobs_config cm = mt_config("betavae", "mlp", 7);
  cm.C = 3, cm.H = 5, cm.W = 7, cm.z_dim = 3;
  knobs_model *m = NULL;
  if (knobs_model_create(&cm, &m)) {
    CHECK(0, "%s", knobs_last_error());
    return;
  }
  int n = 2, Z = 3;
  size_t D = 3 * 5 * 7;
  float z[6] = {0.3f, -0.7f, 1.1f, -0.2f, 0.5f, 0.9f}, dz[6];
  float *g = malloc(sizeof(float) * D * n), *x = malloc(sizeof(float) * D * n);
  uint64_t s = 9;
  for (size_t i = 0; i < D * n; i++) g[i] = (float)(urand(&s) * 2 - 1);
  CHECK(!knobs_model_decode_vjp(m, z, n, g, dz), "%s", knobs_last_error());
  double worst = 0;
  for (int i = 0; i < n * Z; i++) {
    double h = 1e-2, f[2];
    for (int sgn = 0; sgn < 2; sgn++) {
      float zz[6];
      memcpy(zz, z, sizeof z);
      zz[i] += (float)(sgn ? -h : h);
      knobs_model_decode(m, zz, n, x);
      double a = 0;
      for (size_t q = 0; q < D * n; q++) a += (double)g[q] * x[q];
      f[sgn] = a;
    }
    double num = (f[0] - f[1]) / (2 * h);
    worst = fmax(worst, fabs(num - dz[i]) / (1e-3 + fabs(num)));
  }
  CHECK(worst < 2e-2, "decode_vjp vs central differences: worst relative error %g", worst);
  /* parameters and their gradients untouched: training steps after it give what they give without */
  knobs_model *m2 = NULL;
  knobs_data *d = mt_toy_open(7, 3);
  d->info.C = 3, d->info.H = 5, d->info.W = 7;
  if (!knobs_model_create(&cm, &m2)) {
    knobs_model_train_step(m, d, NULL), knobs_model_train_step(m2, d, NULL);
    knobs_model_decode_vjp(m, z, n, g, dz);
    knobs_model_train_step(m, d, NULL), knobs_model_train_step(m2, d, NULL);
    CHECK(mt_same_state(m, m2), "a decode_vjp between training steps changed the training");
    knobs_model_free(m2);
  }
  knobs_data_free(d);
  /* InfoGAN has no VAE decoder to differentiate */
  knobs_model *gm = NULL;
  knobs_config ci = mt_config("infogan", "mlp", 7);
  ci.H = 7, ci.W = 7;
  if (!knobs_model_create(&ci, &gm)) {
    CHECK(knobs_model_decode_vjp(gm, z, 1, g, dz) == KNOBS_ERR_UNSUPPORTED, "infogan differentiated");
    knobs_model_free(gm);
  }
  free(g), free(x);
  knobs_model_free(m);
}

/* knobs_name on a model of the toy data: shapes, determinism, and the write/read path */
static void test_name_model(void) {
  T_CASE("knobs_name on a toy model");
  knobs_data *d = mt_toy_open(16, 6);
  knobs_config c = mt_config("betavae", "mlp", 16);
  c.z_dim = 4;
  knobs_model *m = NULL;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "%s", knobs_last_error());
    knobs_data_free(d);
    return;
  }
  for (int i = 0; i < 30; i++) knobs_model_train_step(m, d, NULL);
  knobs_name_opts o;
  knobs_name_opts_default(&o);
  o.n = 600, o.n_kl = 100;
  knobs_knobs *a = NULL, *b = NULL;
  CHECK(!knobs_name(m, d, &o, &a) && a, "%s", knobs_last_error());
  CHECK(!knobs_name(m, d, &o, &b) && b, "%s", knobs_last_error());
  if (a && b) {
    CHECK(a->Z == 4 && a->K == 2 && a->step == 30 && !strcmp(a->data, "toy16"), "header");
    int same = 1;
    for (int z = 0; z < 4; z++) same &= !memcmp(&a->knobs[z], &b->knobs[z], sizeof a->knobs[z]);
    CHECK(same, "the same model and seed named differently");
    int kl_pos = 1;
    for (int z = 0; z < 4; z++) kl_pos &= a->knobs[z].kl >= 0 && a->knobs[z].scale >= 0;
    CHECK(kl_pos, "negative KL or scale");
  }
  if (a) { /* the score refuses knobs named for other factors (the same count, other names) */
    knobs_edit_score_opts so;
    knobs_edit_score_opts_default(&so);
    knobs_edit_score_row rows[4];
    int nr = -1;
    char keep[32];
    memcpy(keep, a->factors[1], sizeof keep);
    snprintf(a->factors[1], sizeof a->factors[1], "bogus");
    CHECK(knobs_edit_score(m, d, a, &so, rows, &nr) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "'bogus'"),
          "knobs of another factor list scored: %s", knobs_last_error());
    memcpy(a->factors[1], keep, sizeof keep);
  }
  o.n = 50;
  knobs_knobs *e = NULL;
  CHECK(knobs_name(m, d, &o, &e) == KNOBS_ERR_ARG && !e, "n = 50 accepted");
  knobs_knobs_free(a), knobs_knobs_free(b);
  knobs_model_free(m);
  knobs_data_free(d);
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  test_name_codes();
  test_json();
  test_edit_codes();
  test_vjp_ref("tests/ref/vjp_conv.safetensors");
  test_vjp_ref("tests/ref/vjp_mlp.safetensors");
  test_vjp_fd();
  test_name_model();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
  return t_done();
}
