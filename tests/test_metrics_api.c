/* test_metrics_api.c: the metrics API a library user builds on: the option table and
 * knobs_metrics_opts_set (full checks, messages naming the option and value), the per-metric
 * completion callback, stopping with a partial result (from progress, from on_metric, in the
 * middle of DCI's boosting), and knobs_model_encoder (means, reproducible samples, the
 * posterior only for models that have one). The metric values are tested in test_metrics.c. */
#include <float.h>

#include "t.h"
#include "models_t.h"

/* ---- the option table ------------------------------------------------------------------- */
static void test_options(void) {
  T_CASE("option table");
  int n = 0, has_sap = 0, has_cyclic = 0;
  for (const knobs_metrics_field *f; (f = knobs_metrics_opt_field(n)); n++) {
    CHECK(f->name && f->help && f->metrics && f->inputs, "field %d incomplete", n);
    CHECK(f->offset < sizeof(knobs_metrics_opts), "%s: offset %zu", f->name, f->offset);
    CHECK(!strchr(f->name, '-') && !strchr(f->name, ' '), "%s: not a snake_case name", f->name);
    for (int q = 0; q < n; q++) CHECK(strcmp(knobs_metrics_opt_field(q)->name, f->name), "%s twice", f->name);
    has_sap |= !strcmp(f->name, "sap_c") && f->offset == offsetof(knobs_metrics_opts, sap_C);
    has_cyclic |= !strcmp(f->name, "intervention_cyclic") && f->kind == KNOBS_MOPT_STR;
  }
  CHECK(n >= 25, "%d options", n);
  CHECK(knobs_metrics_opt_field(-1) == NULL && knobs_metrics_opt_field(n) == NULL, "past the end");
  CHECK(has_sap && has_cyclic, "sap_c / intervention_cyclic");

  T_CASE("knobs_metrics_opts_set");
  knobs_metrics_opts o, d;
  knobs_metrics_opts_default(&o);
  knobs_metrics_opts_default(&d);
  CHECK(knobs_metrics_opts_set(&o, "gbt_stages", "17") == KNOBS_OK && o.gbt_stages == 17, "%s", knobs_last_error());
  CHECK(knobs_metrics_opts_set(&o, "sap_c", "0.5") == KNOBS_OK && o.sap_C == 0.5, "%s", knobs_last_error());
  CHECK(knobs_metrics_opts_set(&o, "seed", "18446744073709551615") == KNOBS_OK && o.seed == UINT64_MAX, "%s",
        knobs_last_error());
  CHECK(knobs_metrics_opts_set(&o, "sap_continuous", "true") == KNOBS_OK && o.sap_continuous == 1, "%s",
        knobs_last_error());
  const char *cyc = "orientation";
  CHECK(knobs_metrics_opts_set(&o, "intervention_cyclic", cyc) == KNOBS_OK && o.intervention_cyclic == cyc, "%s",
        knobs_last_error());
  struct { const char *name, *value, *want; } bad[] = {
      {"gbt_stages", "3x", "'3x'"},         {"gbt_stages", "0", "out of range"},
      {"gbt_depth", "8", "out of range"},   {"train_frac", "1", "out of range"},
      {"irs_quantile", "nan", "'nan'"},     {"logreg_c", "inf", "'inf'"},
      {"num_bins", "", "empty"},            {"seed", "-1", "'-1'"},
      {"threads", "99999999999", "99999999999"}, {"sap_continuous", "yes", "'yes'"},
      {"no_such_option", "1", "unknown option 'no_such_option'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    knobs_metrics_opts before = o;
    knobs_status s = knobs_metrics_opts_set(&o, bad[i].name, bad[i].value);
    CHECK(s == KNOBS_ERR_ARG && strstr(knobs_last_error(), bad[i].want) &&
              (!strcmp(bad[i].name, "no_such_option") || strstr(knobs_last_error(), bad[i].name)),
          "%s = '%s': %d %s", bad[i].name, bad[i].value, s, knobs_last_error());
    CHECK(!memcmp(&before, &o, sizeof o), "%s changed on failure", bad[i].name);
  }

  T_CASE("entry points check the table's ranges");
  double z[8] = {0, 1, 1, 0, 2, 2, 3, 1};
  int64_t y[4] = {0, 1, 0, 1};
  knobs_array za = {KNOBS_F64, 2, {4, 2}, z}, ya = {KNOBS_I64, 1, {4}, y};
  knobs_result *r = NULL;
  d.gbt_depth = 8;
  CHECK(knobs_metrics_arrays(&za, &ya, NULL, "mig", &d, &r) == KNOBS_ERR_ARG && !r &&
            strstr(knobs_last_error(), "gbt_depth"), "%s", knobs_last_error());
  d.gbt_depth = 3, d.irs_quantile = NAN;
  CHECK(knobs_metrics_arrays(&za, &ya, NULL, "mig", &d, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "irs_quantile"),
        "%s", knobs_last_error());
}

/* ---- callbacks and stopping ------------------------------------------------------------- */
enum { N = 600, D = 3, K = 2 };
static double codes[N * D];
static int64_t facs[N * K];

static void make_arrays(knobs_array *z, knobs_array *f) {
  kn_rng r;
  kn_rng_seed(&r, 5, 0);
  for (int i = 0; i < N; i++) {
    facs[i * K] = kn_rng_below(&r, 4), facs[i * K + 1] = kn_rng_below(&r, 3);
    codes[i * D] = (double)facs[i * K] + 0.2 * kn_rng_normal(&r);
    codes[i * D + 1] = (double)facs[i * K + 1] + 0.2 * kn_rng_normal(&r);
    codes[i * D + 2] = kn_rng_normal(&r);
  }
  *z = (knobs_array){KNOBS_F64, 2, {N, D}, codes};
  *f = (knobs_array){KNOBS_I64, 2, {N, K}, facs};
}

typedef struct {
  int calls;
  char names[8][32];
  int scored;          /* so_far held the metric just finished, with its score */
  int prior_ok;        /* ... and the earlier ones */
  knobs_status ret_at2; /* returned on the second call */
} done_log;

static knobs_status on_done(void *ctx, const char *name, knobs_result *so_far) {
  done_log *l = ctx;
  char path[64];
  double v;
  snprintf(path, sizeof path, "%s.score", name);
  l->scored += knobs_result_get(so_far, path, &v) == KNOBS_OK;
  for (int q = 0; q < l->calls; q++) {
    snprintf(path, sizeof path, "%s.seconds", l->names[q]);
    l->prior_ok += knobs_result_get(so_far, path, &v) == KNOBS_OK;
  }
  snprintf(l->names[l->calls], sizeof l->names[0], "%s", name);
  knobs_result_set_string(so_far, "caller", "test");
  l->calls++;
  if (l->calls == 2 && l->ret_at2) return l->ret_at2 == KNOBS_ERR_IO ? kn_err(KNOBS_ERR_IO, "disk full") : l->ret_at2;
  return KNOBS_OK;
}

typedef struct {
  const char *stop_metric; /* stop when this metric reports */
  int after_start;         /* ... only once done > 0 (inside it) */
  int calls, starts;
} stopper;

static int stop_at(void *ctx, const char *metric, double done, double total) {
  stopper *s = ctx;
  s->calls++;
  s->starts += done == 0;
  return !strcmp(metric, s->stop_metric) && (!s->after_start || done > 0);
}

static int has_interrupted(const knobs_result *r) {
  char *j = knobs_result_json(r);
  int yes = j && strstr(j, "\"interrupted\":\ttrue");
  free(j);
  return yes;
}

static void test_callbacks(void) {
  knobs_array z, f;
  make_arrays(&z, &f);
  knobs_metrics_opts o;
  knobs_metrics_opts_default(&o);
  o.gbt_stages = 5;
  double v;

  T_CASE("on_metric: once per finished metric, with every metric so far");
  done_log l = {0};
  o.on_metric = on_done, o.on_metric_ctx = &l;
  knobs_result *r = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "mig,irs,dci", &o, &r) == KNOBS_OK && r, "%s", knobs_last_error());
  CHECK(l.calls == 3 && !strcmp(l.names[0], "mig") && !strcmp(l.names[1], "irs") && !strcmp(l.names[2], "dci"),
        "%d calls: %s %s %s", l.calls, l.names[0], l.names[1], l.names[2]);
  CHECK(l.scored == 3 && l.prior_ok == 0 + 1 + 2, "scored %d, prior %d", l.scored, l.prior_ok);
  char *j = r ? knobs_result_json(r) : NULL;
  CHECK(j && strstr(j, "\"caller\":\t\"test\"") && !strstr(j, "interrupted"), "%.300s", j ? j : "");
  free(j);
  knobs_result_free(r);

  T_CASE("on_metric: a failure stops the run, no result");
  l = (done_log){.ret_at2 = KNOBS_ERR_IO};
  r = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "mig,irs,dci", &o, &r) == KNOBS_ERR_IO && !r && l.calls == 2 &&
            strstr(knobs_last_error(), "disk full"), "%d calls: %s", l.calls, knobs_last_error());

  T_CASE("on_metric: KNOBS_ERR_INTERRUPTED keeps the finished metrics");
  l = (done_log){.ret_at2 = KNOBS_ERR_INTERRUPTED};
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "mig,irs,dci", &o, &r) == KNOBS_ERR_INTERRUPTED && r && l.calls == 2,
        "%d calls: %s", l.calls, knobs_last_error());
  CHECK(r && knobs_result_get(r, "mig.score", &v) == KNOBS_OK && knobs_result_get(r, "irs.score", &v) == KNOBS_OK &&
            knobs_result_get(r, "dci.score", &v) != KNOBS_OK && has_interrupted(r), "partial result");
  knobs_result_free(r);
  o.on_metric = NULL;

  T_CASE("progress: stop at the start of a metric");
  stopper st = {.stop_metric = "irs"};
  o.progress = stop_at, o.progress_ctx = &st;
  r = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "mig,irs,dci", &o, &r) == KNOBS_ERR_INTERRUPTED && r, "%s",
        knobs_last_error());
  CHECK(r && knobs_result_get(r, "mig.discrete_mig", &v) == KNOBS_OK && knobs_result_get(r, "irs.score", &v) != KNOBS_OK &&
            has_interrupted(r), "partial result");
  CHECK(st.starts == 2, "%d metric starts", st.starts);
  knobs_result_free(r);

  T_CASE("progress: stop inside DCI's boosting");
  st = (stopper){.stop_metric = "dci", .after_start = 1};
  o.gbt_stages = 50;
  r = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "mig,dci,irs", &o, &r) == KNOBS_ERR_INTERRUPTED && r, "%s",
        knobs_last_error());
  CHECK(r && knobs_result_get(r, "mig.score", &v) == KNOBS_OK && knobs_result_get(r, "dci.score", &v) != KNOBS_OK &&
            knobs_result_get(r, "irs.score", &v) != KNOBS_OK && has_interrupted(r), "partial result");
  CHECK(st.calls == 3, "%d progress calls (mig start, dci start, dci stage 1)", st.calls);
  knobs_result_free(r);

  T_CASE("progress: the same numbers with a callback that never stops");
  st = (stopper){.stop_metric = "none"};
  knobs_result *a = NULL, *b = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "dci", &o, &a) == KNOBS_OK, "%s", knobs_last_error());
  o.progress = NULL;
  CHECK(knobs_metrics_arrays(&z, &f, NULL, "dci", &o, &b) == KNOBS_OK, "%s", knobs_last_error());
  double va = -1, vb = -2;
  if (a && b) knobs_result_get(a, "dci.disentanglement", &va), knobs_result_get(b, "dci.disentanglement", &vb);
  CHECK(va == vb && st.calls == 1 + 50, "%.17g vs %.17g, %d calls", va, vb, st.calls);
  knobs_result_free(a), knobs_result_free(b);
}

/* ---- knobs_model_encoder ---------------------------------------------------------------- */
static void test_encoder(void) {
  T_CASE("knobs_model_encoder: a VAE");
  knobs_config c = mt_config("betavae", "mlp", 8);
  knobs_model *m = NULL;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  enum { B = 5 };
  float x[B * 64], want[B * 3], lv[B * 3], got[B * 3], s1[B * 3], s2[B * 3], t1[B * 3];
  for (int i = 0; i < B * 64; i++) x[i] = (float)((i * 7) % 11) / 10.0f;
  knobs_encoder e;
  CHECK(knobs_model_encoder(m, 0, 9, &e) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(e.code_dim == 3 && e.posterior && e.evaluate && e.ctx && e.release, "fields");
  knobs_model_encode(m, x, B, want, lv);
  CHECK(e.encode(e.ctx, x, B, got) == KNOBS_OK && !memcmp(got, want, sizeof got), "means");
  float pm[B * 3], pl[B * 3];
  CHECK(e.posterior(e.ctx, x, B, pm, pl) == KNOBS_OK && !memcmp(pm, want, sizeof pm) && !memcmp(pl, lv, sizeof pl),
        "posterior");
  knobs_encoder_release(&e);
  CHECK(e.ctx == NULL && e.encode == NULL, "released");
  knobs_encoder_release(&e); /* twice: a no-op */

  T_CASE("knobs_model_encoder: samples, reproducible, a new stream per call");
  CHECK(knobs_model_encoder(m, 1, 9, &e) == KNOBS_OK, "%s", knobs_last_error());
  e.encode(e.ctx, x, B, s1);
  e.encode(e.ctx, x, B, s2);
  knobs_encoder_release(&e);
  CHECK(memcmp(s1, s2, sizeof s1) && memcmp(s1, want, sizeof s1), "samples repeat or equal the means");
  CHECK(knobs_model_encoder(m, 1, 9, &e) == KNOBS_OK, "%s", knobs_last_error());
  e.encode(e.ctx, x, B, t1);
  knobs_encoder_release(&e);
  CHECK(!memcmp(s1, t1, sizeof s1), "the same seed gives other samples");
  CHECK(knobs_model_encoder(m, 1, 10, &e) == KNOBS_OK, "%s", knobs_last_error());
  e.encode(e.ctx, x, B, t1);
  knobs_encoder_release(&e);
  CHECK(memcmp(s1, t1, sizeof s1), "another seed gives the same samples");
  knobs_model_free(m);

  T_CASE("knobs_model_encoder: a model without a posterior");
  c = mt_config("infogan", "mlp", 8);
  m = NULL;
  if (knobs_model_create(&c, &m)) {
    CHECK(0, "create: %s", knobs_last_error());
    return;
  }
  CHECK(knobs_model_encoder(m, 0, 1, &e) == KNOBS_OK, "%s", knobs_last_error());
  CHECK(e.encode && !e.posterior && !e.evaluate && e.code_dim == knobs_model_code_dim(m), "fields");
  knobs_encoder_release(&e);
  knobs_model_free(m);
  CHECK(knobs_model_encoder(NULL, 0, 1, &e) == KNOBS_ERR_ARG && !e.encode, "no model");
}

int main(void) {
  test_options();
  test_callbacks();
  test_encoder();
  return t_done();
}
