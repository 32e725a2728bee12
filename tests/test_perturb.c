/* test_perturb.c: knobs_perturb (src/apps/perturb.c) on a small built-in population
 * (counts:genes=200,cells=2000) with a betavae nb model trained briefly (300 steps, mlp, hidden
 * 64) on the same population with type1's stim cells held out (counts:holdout=type1):
 * - the held-out training set lacks exactly type1's stim cells, every other cell unchanged;
 * - delta and the prediction equal a direct computation from knobs_model_encode/decode;
 * - truth, the no-change and mean-shift baselines, the top DE genes and every score equal their
 *   formulas computed here from the cells;
 * - the scores are finite and in range; a Gaussian model (log1p input) runs too;
 * - refusals: unknown factor or class, a held-out type without stim cells (the training set),
 *   data that are not raw counts. */
#include "t.h"
#include "models/model.h"

enum { G = 200, N = 2000, Z = 6 };

static knobs_data *open_counts(const char *spec, uint64_t seed) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.seed = seed, o.threads = 1;
  knobs_data *d = NULL;
  if (knobs_data_open(spec, &o, &d)) fprintf(stderr, "open %s: %s\n", spec, knobs_last_error());
  return d;
}

static knobs_model *train_model(const char *lik, const char *spec, int steps) {
  knobs_config c;
  kn_config_default(&c, "betavae");
  strcpy(c.arch, "mlp"), strcpy(c.likelihood, lik);
  snprintf(c.data, sizeof c.data, "%s", spec);
  c.C = G, c.H = 1, c.W = 1, c.z_dim = Z, c.hidden = 64, c.batch = 64, c.threads = 1, c.seed = 3, c.lr = 1e-3;
  knobs_config_set(&c, "beta", "1");
  knobs_model *m = NULL;
  if (knobs_model_create(&c, &m)) {
    fprintf(stderr, "create: %s\n", knobs_last_error());
    return NULL;
  }
  knobs_data *d = open_counts(spec, c.seed);
  for (int i = 0; i < steps && d; i++)
    if (knobs_model_train_step(m, d, NULL)) fprintf(stderr, "step: %s\n", knobs_last_error());
  knobs_data_free(d);
  return m;
}

static void test_holdout_data(void) {
  T_CASE("counts:holdout leaves out exactly one type's stim cells");
  knobs_data *a = open_counts("counts:genes=200,cells=2000", 3), *b = open_counts("counts:genes=200,cells=2000,holdout=type1", 3);
  if (!a || !b) {
    CHECK(0, "open");
    goto out;
  }
  int64_t na = knobs_data_info_get(a)->n, nb = knobs_data_info_get(b)->n, j = 0, held = 0;
  float *xa = malloc(sizeof(float) * G), *xb = malloc(sizeof(float) * G);
  int32_t fa[2], fb[2];
  int same = 1;
  for (int64_t i = 0; i < na; i++) {
    knobs_data_get(a, &i, 1, xa, fa);
    if (fa[0] == 1 && fa[1] == 1) {
      held++;
      continue;
    }
    if (j >= nb) {
      same = 0;
      break;
    }
    knobs_data_get(b, &j, 1, xb, fb);
    same &= fb[0] == fa[0] && fb[1] == fa[1] && !memcmp(xa, xb, sizeof(float) * G);
    j++;
  }
  CHECK(same && j == nb && nb + held == na && held > 100, "kept %lld of %lld, held %lld, same cells %d", (long long)nb,
        (long long)na, (long long)held, same);
  free(xa), free(xb);
  knobs_data *bad = NULL;
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  CHECK(knobs_data_open("counts:holdout=type9", &o, &bad) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "type0 .. type3"),
        "holdout=type9: %s", knobs_last_error());
out:
  knobs_data_free(a), knobs_data_free(b);
}

static double r2_of(const double *p, const double *t, const int32_t *idx, int n) {
  double mp = 0, mt = 0, spp = 0, stt = 0, spt = 0;
  for (int i = 0; i < n; i++) mp += p[idx ? idx[i] : i], mt += t[idx ? idx[i] : i];
  mp /= n, mt /= n;
  for (int i = 0; i < n; i++) {
    double a = p[idx ? idx[i] : i] - mp, b = t[idx ? idx[i] : i] - mt;
    spp += a * a, stt += b * b, spt += a * b;
  }
  return spt * spt / (spp * stt);
}

/* the direct computation: every cell read, encoded and grouped here */
static void test_against_direct(knobs_model *m, knobs_data *d, int gaussian) {
  T_CASE(gaussian ? "perturb equals the direct computation (gaussian on log1p)" : "perturb equals the direct computation (nb)");
  knobs_perturb_opts o;
  knobs_perturb_opts_default(&o);
  o.hold_out = "type1";
  knobs_perturb_result r;
  if (knobs_perturb(m, d, &o, &r)) {
    CHECK(0, "perturb: %s", knobs_last_error());
    return;
  }
  float *x = malloc(sizeof(float) * N * G), *z = malloc(sizeof(float) * N * Z), *y = malloc(sizeof(float) * N * G);
  int32_t *f = malloc(sizeof(int32_t) * N * 2);
  int64_t *idx = malloc(sizeof(int64_t) * N);
  for (int i = 0; i < N; i++) idx[i] = i;
  knobs_data_get(d, idx, N, x, f);
  float *xin = malloc(sizeof(float) * N * G);
  for (int i = 0; i < N * G; i++) xin[i] = gaussian ? log1pf(x[i]) : x[i];
  knobs_model_encode(m, xin, N, z, NULL);
  double mz[2][Z] = {{0}}, e[4][G] = {{0}}, pred[G] = {0}, dlt[Z];
  int64_t cnt[4] = {0}, nz[2] = {0};
  for (int i = 0; i < N; i++) {
    int held = f[2 * i] == 1, stim = f[2 * i + 1] == 1, grp = held ? stim : 2 + stim;
    double lib = 0;
    for (int g = 0; g < G; g++) lib += x[(size_t)i * G + g];
    for (int g = 0; g < G && lib > 0; g++) e[grp][g] += log1p(x[(size_t)i * G + g] / lib * 1e4);
    cnt[grp]++;
    if (!held)
      for (int k = 0; k < Z; k++) mz[stim][k] += z[(size_t)i * Z + k];
    if (!held) nz[stim]++;
  }
  for (int k = 0; k < Z; k++) dlt[k] = mz[1][k] / nz[1] - mz[0][k] / nz[0];
  double worst = 0;
  for (int k = 0; k < Z; k++) worst = fmax(worst, fabs(dlt[k] - r.delta[k]));
  CHECK(worst < 1e-5, "delta differs by %.3g", worst);
  /* decode(z + delta) of type1's control cells */
  int nh = 0;
  for (int i = 0; i < N; i++)
    if (f[2 * i] == 1 && f[2 * i + 1] == 0) {
      for (int k = 0; k < Z; k++) z[(size_t)nh * Z + k] = z[(size_t)i * Z + k] + r.delta[k];
      nh++;
    }
  if (!gaussian) { /* E[log1p(x / L * 1e4)] under NB(mu, theta) at each cell's library L, by lgamma */
    float *lib = malloc(sizeof(float) * nh), theta[G], *pi = malloc(sizeof(float) * (size_t)nh * G);
    for (int i = 0, h = 0; i < N; i++)
      if (f[2 * i] == 1 && f[2 * i + 1] == 0) {
        double l = 0;
        for (int g = 0; g < G; g++) l += x[(size_t)i * G + g];
        lib[h++] = (float)l;
      }
    CHECK(!knobs_model_decode_counts(m, z, nh, lib, y, theta, pi), "decode_counts: %s", knobs_last_error());
    CHECK(isinf(pi[0]) && pi[0] < 0, "NB dropout logits %g", pi[0]);
    for (int i = 0; i < nh; i++)
      for (int g = 0; g < G; g++) {
        double mu = y[(size_t)i * G + g], th = theta[g], ev = 0, sd = sqrt(mu + mu * mu / th);
        for (int k = 1; k < mu + 40 * sd + 60; k++)
          ev += exp(lgamma(k + th) - lgamma(th) - lgamma(k + 1.0) + th * log(th / (th + mu)) + k * log(mu / (th + mu))) *
                log1p(k / (double)lib[i] * 1e4);
        pred[g] += ev;
      }
    free(lib), free(pi);
  } else {
    knobs_model_decode(m, z, nh, y);
  }
  for (int i = 0; i < nh && gaussian; i++) {
    float *yi = y + (size_t)i * G;
    double lib = 0;
    for (int g = 0; g < G; g++) {
      if (gaussian) yi[g] = yi[g] > 0 ? expm1f(yi[g]) : 0.0f;
      lib += yi[g];
    }
    for (int g = 0; g < G; g++) pred[g] += log1p(yi[g] / lib * 1e4);
  }
  double truth[G], ctrl[G], shift[G], pr[G], wp = 0, wt = 0;
  for (int g = 0; g < G; g++) {
    pr[g] = pred[g] / nh, truth[g] = e[1][g] / cnt[1], ctrl[g] = e[0][g] / cnt[0];
    shift[g] = ctrl[g] + e[3][g] / cnt[3] - e[2][g] / cnt[2];
    wp = fmax(wp, fabs(pr[g] - r.pred[g]));
    wt = fmax(wt, fmax(fabs(truth[g] - r.truth[g]), fmax(fabs(ctrl[g] - r.ctrl[g]), fabs(shift[g] - r.shift[g]))));
  }
  CHECK(r.n_ctrl == cnt[0] && r.n_stim == cnt[1] && r.n_other_ctrl == cnt[2] && r.n_other_stim == cnt[3],
        "cell counts %lld %lld %lld %lld", (long long)r.n_ctrl, (long long)r.n_stim, (long long)r.n_other_ctrl,
        (long long)r.n_other_stim);
  CHECK(wp < 1e-4, "prediction differs by %.3g", wp);
  CHECK(wt < 1e-5, "truth or a baseline differs by %.3g", wt);
  /* top DE: the 100 largest |truth - ctrl|, in decreasing order */
  CHECK(r.n_top == 100, "n_top %d", r.n_top);
  int ok = 1;
  char in_top[G] = {0};
  for (int i = 0; i < r.n_top; i++) in_top[r.top[i]] = 1;
  double lo = INFINITY;
  for (int i = 0; i < r.n_top; i++) {
    double v = fabs((double)r.truth[r.top[i]] - r.ctrl[r.top[i]]);
    ok &= v <= lo;
    lo = v;
  }
  for (int g = 0; g < G; g++) ok &= in_top[g] || fabs((double)r.truth[g] - r.ctrl[g]) <= lo;
  CHECK(ok, "top_de is not the 100 largest |truth - ctrl| in order");
  /* scores */
  CHECK(fabs(r2_of(pr, truth, NULL, G) - r.model.r2_all) < 1e-4, "model r2_all %.6f vs %.6f", r.model.r2_all, r2_of(pr, truth, NULL, G));
  CHECK(fabs(r2_of(ctrl, truth, r.top, r.n_top) - r.no_change.r2_top) < 1e-4, "no-change r2_top %.6f", r.no_change.r2_top);
  CHECK(fabs(r2_of(shift, truth, NULL, G) - r.mean_shift.r2_all) < 1e-4, "shift r2_all %.6f", r.mean_shift.r2_all);
  double res = 0, tot = 0, mt = 0;
  for (int g = 0; g < G; g++) mt += truth[g] / G;
  for (int g = 0; g < G; g++) res += (ctrl[g] - truth[g]) * (ctrl[g] - truth[g]), tot += (truth[g] - mt) * (truth[g] - mt);
  CHECK(fabs(1 - res / tot - r.no_change.cod_all) < 1e-4, "no-change cod_all %.6f vs %.6f", r.no_change.cod_all, 1 - res / tot);
  const knobs_perturb_score *s[3] = {&r.model, &r.no_change, &r.mean_shift};
  for (int i = 0; i < 3; i++) {
    const double v[4] = {s[i]->r2_all, s[i]->r2_top, s[i]->cod_all, s[i]->cod_top};
    for (int k = 0; k < 4; k++) CHECK(isfinite(v[k]) && v[k] <= 1 + 1e-12 && (k >= 2 || v[k] >= 0), "score %d.%d is %g", i, k, v[k]);
  }
  if (getenv("KNOBS_TEST_VERBOSE"))
    fprintf(stderr, "r2 all/top: model %.4f %.4f, no change %.4f %.4f, shift %.4f %.4f\n", r.model.r2_all, r.model.r2_top,
            r.no_change.r2_all, r.no_change.r2_top, r.mean_shift.r2_all, r.mean_shift.r2_top);
  free(x), free(z), free(y), free(f), free(idx), free(xin);
  knobs_perturb_result_free(&r);
}

static void test_refusals(knobs_model *m, knobs_data *d) {
  T_CASE("perturb refusals");
  knobs_perturb_opts o;
  knobs_perturb_result r;
  knobs_perturb_opts_default(&o);
  o.hold_out = "type1";
  o.label = "cond";
  CHECK(knobs_perturb(m, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "no label factor 'cond'"),
        "unknown factor: %s", knobs_last_error());
  o.label = "condition", o.stim = "treated";
  CHECK(knobs_perturb(m, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "no class 'treated'") &&
        strstr(knobs_last_error(), "ctrl, stim"), "unknown class: %s", knobs_last_error());
  o.stim = "stim", o.hold_out = "typeX";
  CHECK(knobs_perturb(m, d, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "'typeX'"), "unknown type: %s",
        knobs_last_error());
  o.hold_out = "type1", o.celltype = "condition";
  CHECK(knobs_perturb(m, d, &o, &r) == KNOBS_ERR_ARG, "label == celltype accepted");
  o.celltype = "celltype";
  knobs_data *tr = open_counts("counts:genes=200,cells=2000,holdout=type1", 3);
  CHECK(knobs_perturb(m, tr, &o, &r) == KNOBS_ERR_ARG && strstr(knobs_last_error(), "no stim cells of the held-out type"),
        "training set: %s", knobs_last_error());
  knobs_data_free(tr);
  knobs_data *lg = open_counts("counts:genes=200,cells=2000,log1p", 3);
  CHECK(knobs_perturb(m, lg, &o, &r) == KNOBS_ERR_DATA && strstr(knobs_last_error(), "not raw counts"), "log1p data: %s",
        knobs_last_error());
  knobs_data_free(lg);
  CHECK(r.pred == NULL && r.delta == NULL, "a failed call left arrays");
}

int main(void) {
  test_holdout_data();
  knobs_model *m = train_model("nb", "counts:genes=200,cells=2000,holdout=type1", 300);
  knobs_data *d = open_counts("counts:genes=200,cells=2000", 3);
  if (!m || !d) return 2;
  test_against_direct(m, d, 0);
  test_refusals(m, d);
  knobs_model_free(m);
  knobs_model *gm = train_model("gaussian", "counts:genes=200,cells=2000,holdout=type1,log1p", 100);
  if (gm) test_against_direct(gm, d, 1);
  knobs_model_free(gm);
  knobs_data_free(d);
  return t_done();
}
