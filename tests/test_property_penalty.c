/* test_property_penalty.c: the training-time property penalty (src/models/prop_penalty.c,
 * docs/models.md "Property penalty") on toy models: a central finite-difference check of the
 * penalty's gradient with respect to decoder parameters (mlp and conv, Bernoulli and Gaussian,
 * betavae and factorvae), and that it leaves the encoder's parameter gradients exactly as
 * without it; the "property" term and its share of "loss"; determinism; weight 0 is bit-identical
 * to no penalty; every family that goes through kn_vae_forward trains with it; the settings'
 * defaults, range and JSON; and the refusals (a missing file, a head of another width, a weight
 * without a head, the families with their own forward), each naming the problem. */
#include <unistd.h>

#include "t.h"
#include "models_t.h"

#define HW 8
#define W_PEN 2.5

static char dir[] = "/tmp/knobs-test-penalty-XXXXXX";
static char head3[300];

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* A head on 3 latents fitted to y = 3 z0 - 2 z1 + z2^2, saved to head3. */
static int make_head(void) {
  int n = 800, Z = 3;
  float *z = malloc(sizeof(float) * (size_t)n * Z);
  double *y = malloc(sizeof(double) * n);
  kn_rng r;
  kn_rng_seed(&r, 1, 2);
  kn_rng_normal_fill(&r, z, (size_t)n * Z);
  for (int i = 0; i < n; i++) y[i] = 3.0 * z[i * Z] - 2.0 * z[i * Z + 1] + z[i * Z + 2] * z[i * Z + 2];
  knobs_head_opts o;
  knobs_head_opts_default(&o);
  o.hidden = 16, o.steps = 300;
  knobs_head *h = NULL;
  knobs_status s = knobs_head_fit(z, y, n, Z, &o, &h, NULL);
  snprintf(head3, sizeof head3, "%s/head3.safetensors", dir);
  if (!s) s = knobs_head_save(h, head3);
  knobs_head_free(h);
  free(z), free(y);
  return s == KNOBS_OK;
}

static knobs_config pen_config(const char *model, const char *arch, int hw, const char *path, double w) {
  knobs_config c = mt_config(model, arch, hw);
  char buf[64];
  if (path && knobs_config_set(&c, "property_penalty", path)) fprintf(stderr, "set: %s\n", knobs_last_error());
  snprintf(buf, sizeof buf, "%.17g", w);
  if (knobs_config_set(&c, "property_weight", buf)) fprintf(stderr, "set: %s\n", knobs_last_error());
  return c;
}

static int term(const knobs_terms *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->name[i], name)) return i;
  return -1;
}

/* One step at step 5 with every learning rate 0 (see mt_fd): the losses, and the gradients in
 * net->g, as functions of the parameters alone. */
static knobs_status frozen_step(knobs_model *m, knobs_data *d, knobs_terms *t) {
  m->step = 5;
  return knobs_model_train_step(m, d, t);
}

/* ---- finite differences -------------------------------------------------------------------- */
/* The penalty's gradient is the difference of the gradients with and without it (the main
 * pass is the same computation in both models); against it, W * the central difference of the
 * "property" term (the mean head prediction), for 6 entries of every decoder tensor: the 3 of
 * the largest penalty gradient and 3 spread ones; the relative error is
 * |fd - an| / max(|fd| + |an|, 1e-3). The signal is small: the penalty reaches a decoder
 * parameter through the decoder, the encoder and the head, all float32, so the property's
 * rounding (~1e-7 of the head's outputs) over 2h is ~4e-5 at h = 1e-2, and h cannot be smaller.
 * The mlp decoders are smooth (tanh): 90% within 3e-2 and the median within 3e-3. The conv
 * decoder and encoder are ReLU throughout, thousands of units of which some cross a kink within
 * +-h: 90% within 1e-1 and the median within 3e-2 there (a wrong layout or a missing factor is
 * off by O(1)). The encoder's gradients must be exactly those without the penalty. */
typedef struct {
  double h, tol, share, median; /* step; an entry agrees within tol; share of entries that must;
                                   the median's bound */
} fd_rule;

static void pen_fd(const char *model, const char *arch, int hw, const char *likelihood, fd_rule rule, knobs_data *d) {
  static char name[128];
  snprintf(name, sizeof name, "fd penalty %s %s %dx%d %s", model, arch, hw, hw, likelihood);
  T_CASE(name);
  knobs_config ca = pen_config(model, arch, hw, head3, W_PEN), cb = pen_config(model, arch, hw, NULL, 0);
  strcpy(ca.likelihood, likelihood), strcpy(cb.likelihood, likelihood);
  knobs_model *a = NULL, *b = NULL;
  if (knobs_model_create(&ca, &a) || knobs_model_create(&cb, &b)) {
    CHECK(0, "create: %s", knobs_last_error());
    goto out;
  }
  for (int k = 0; k < a->nopt; k++) a->opt[k].lr = 0, a->opt[k].n = 0, b->opt[k].lr = 0, b->opt[k].n = 0;
  CHECK(a->prop.on && !b->prop.on, "penalty on %d / off %d", a->prop.on, b->prop.on);
  knobs_terms ta, tb;
  knobs_status s = frozen_step(a, d, &ta);
  if (!s) s = frozen_step(b, d, &tb);
  CHECK(!s, "step: %s", knobs_last_error());
  int ip = term(&ta, "property");
  CHECK(ip >= 0 && term(&tb, "property") < 0, "the property term: with %d, without %d", ip, term(&tb, "property"));
  if (s || ip < 0) goto out;
  size_t np = a->net.n_p;
  float *gpen = malloc(sizeof(float) * np);
  for (size_t i = 0; i < np; i++) gpen[i] = a->net.g[i] - b->net.g[i];
  int enc_same = 1, ne = 0, bad = 0, nonzero = 0, per_tensor = 6;
  double *errs = malloc(sizeof(double) * (size_t)(a->net.np * per_tensor + 1));
  const double h = rule.h;
  for (int k = 0; k < a->net.np; k++) {
    kn_param *q = &a->net.P[k];
    if (q->buffer) continue;
    if (strncmp(q->name, "decoder.", 8)) {
      if (memcmp(a->net.g + q->off, b->net.g + q->off, sizeof(float) * q->n)) {
        enc_same = 0;
        fprintf(stderr, "  %s: the penalty changed its gradient\n", q->name);
      }
      continue;
    }
    float *p = kn_param_ptr(&a->net, k);
    size_t top[3] = {0, 0, 0}; /* the entries of the largest penalty gradient, then spread ones */
    for (size_t i = 0; i < q->n; i++) {
      float v = fabsf(gpen[q->off + i]);
      if (v > fabsf(gpen[q->off + top[0]])) top[2] = top[1], top[1] = top[0], top[0] = i;
      else if (v > fabsf(gpen[q->off + top[1]])) top[2] = top[1], top[1] = i;
      else if (v > fabsf(gpen[q->off + top[2]])) top[2] = i;
    }
    for (int e = 0; e < per_tensor; e++) {
      size_t i = e < 3 ? top[e] : ((size_t)e * 2654435761u + (size_t)k * 7) % q->n;
      float o = p[i];
      knobs_terms t;
      p[i] = o + (float)h;
      frozen_step(a, d, &t);
      double vp = t.value[ip];
      p[i] = o - (float)h;
      frozen_step(a, d, &t);
      double vm = t.value[ip];
      p[i] = o;
      double fd = W_PEN * (vp - vm) / ((double)(o + (float)h) - (double)(o - (float)h));
      double an = gpen[q->off + i];
      double err = fabs(fd - an) / fmax(fabs(fd) + fabs(an), 1e-3);
      nonzero += fabs(an) > 1e-4;
      if (err > rule.tol) {
        bad++;
        fprintf(stderr, "  %s[%zu]: analytic %.6g, finite difference %.6g\n", q->name, i, an, fd);
      }
      errs[ne++] = err;
    }
  }
  qsort(errs, (size_t)ne, sizeof(double), mt_cmp_double);
  CHECK(enc_same, "the penalty reached the encoder's parameter gradients");
  CHECK(ne > 0 && bad <= (1 - rule.share) * ne, "%d of %d decoder entries disagree", bad, ne);
  CHECK(ne > 0 && errs[ne / 2] < rule.median, "median relative error %g", ne ? errs[ne / 2] : 0.0);
  printf("%s: median relative error %.3g, worst %.3g, %d of %d over %g\n", name, ne ? errs[ne / 2] : 0.0,
         ne ? errs[ne - 1] : 0.0, bad, ne, rule.tol);
  CHECK(nonzero >= ne / 2, "only %d of %d checked gradients are non-zero: the check checks little", nonzero, ne);
  free(gpen), free(errs);
out:
  knobs_model_free(a), knobs_model_free(b);
}

/* ---- terms, determinism, weight 0 ---------------------------------------------------------- */

static int same_params(const knobs_model *x, const knobs_model *y, const char *prefix) {
  for (int k = 0; k < x->net.np; k++) {
    const kn_param *q = &x->net.P[k];
    if (q->buffer || strncmp(q->name, prefix, strlen(prefix))) continue;
    if (memcmp(x->net.p + q->off, y->net.p + q->off, sizeof(float) * q->n)) return 0;
  }
  return 1;
}

static void test_training(knobs_data *d) {
  T_CASE("terms, determinism, weight 0");
  knobs_config cp = pen_config("betavae", "mlp", HW, head3, W_PEN), c0 = pen_config("betavae", "mlp", HW, head3, 0),
               cn = pen_config("betavae", "mlp", HW, NULL, 0);
  knobs_model *a1 = NULL, *a2 = NULL, *z = NULL, *n = NULL;
  if (knobs_model_create(&cp, &a1) || knobs_model_create(&cp, &a2) || knobs_model_create(&c0, &z) ||
      knobs_model_create(&cn, &n)) {
    CHECK(0, "create: %s", knobs_last_error());
    goto out;
  }
  CHECK(!z->prop.on && z->prop.head, "weight 0: head loaded %p, pass on %d", (void *)z->prop.head, z->prop.on);
  knobs_terms t1, t2, tz, tn;
  knobs_status s = knobs_model_train_step(a1, d, &t1);
  s = s ? s : knobs_model_train_step(a2, d, &t2);
  s = s ? s : knobs_model_train_step(z, d, &tz);
  s = s ? s : knobs_model_train_step(n, d, &tn);
  CHECK(!s, "step: %s", knobs_last_error());
  if (s) goto out;
  /* one step: the encoders moved alike (the penalty does not reach them), the decoders did not */
  CHECK(same_params(a1, n, "encoder."), "the penalty moved the encoder");
  CHECK(!same_params(a1, n, "decoder."), "the penalty did not move the decoder");
  int ip = term(&t1, "property"), il = term(&t1, "loss"), ir = term(&t1, "recon"), ik = term(&t1, "kl");
  CHECK(ip == t1.n - 1 && il >= 0 && ir >= 0 && ik >= 0, "terms: property at %d of %d", ip, t1.n);
  if (ip >= 0 && il >= 0 && ir >= 0 && ik >= 0) {
    double want = t1.value[ir] + 2.0 * t1.value[ik] + W_PEN * t1.value[ip]; /* mt_config's beta is 2 */
    CHECK_NEAR(t1.value[il], want, 1e-9 * fabs(want) + 1e-12);
    CHECK(isfinite(t1.value[ip]) && t1.value[ip] != 0, "property %g", t1.value[ip]);
  }
  CHECK(tz.n == tn.n && term(&tz, "property") < 0, "weight 0 has other terms (%d vs %d)", tz.n, tn.n);
  for (int i = 1; i < 4 && !s; i++) {
    s = knobs_model_train_step(a1, d, &t1);
    s = s ? s : knobs_model_train_step(a2, d, &t2);
    s = s ? s : knobs_model_train_step(z, d, &tz);
    s = s ? s : knobs_model_train_step(n, d, &tn);
  }
  CHECK(!s, "steps: %s", knobs_last_error());
  CHECK(!memcmp(a1->net.p, a2->net.p, sizeof(float) * a1->net.n_p) && t1.value[term(&t1, "property")] ==
        t2.value[term(&t2, "property")], "same seed, different models");
  CHECK(!memcmp(z->net.p, n->net.p, sizeof(float) * z->net.n_p), "weight 0 is not bit-identical to no penalty");
  for (int i = 0; i < tz.n && i < tn.n; i++) CHECK(tz.value[i] == tn.value[i], "weight 0: term %s differs", tz.name[i]);
  /* a checkpoint of a penalised model records the settings and loads again (with its head) */
  char ck[400];
  snprintf(ck, sizeof ck, "%s/pen.safetensors", dir);
  knobs_model *l = NULL;
  s = knobs_model_save(a1, ck);
  if (!s) s = knobs_model_load(ck, 2, &l);
  CHECK(!s && l && l->prop.on && !strcmp(knobs_config_string(knobs_model_config(l), "property_penalty"), head3) &&
            knobs_config_number(knobs_model_config(l), "property_weight") == W_PEN,
        "checkpoint round trip: %s", knobs_last_error());
  knobs_model_free(l);
out:
  knobs_model_free(a1), knobs_model_free(a2), knobs_model_free(z), knobs_model_free(n);
}

/* Every family that goes through kn_vae_forward trains with the penalty. */
static void test_families(knobs_data *d) {
  static const char *const models[] = {"betavae", "annealedvae", "tcvae", "dipvae1", "dipvae2", "factorvae"};
  for (int i = 0; i < 6; i++) {
    static char name[64];
    snprintf(name, sizeof name, "family %s", models[i]);
    T_CASE(name);
    knobs_config c = pen_config(models[i], "mlp", HW, head3, -1.0);
    knobs_model *m = NULL;
    knobs_status s = knobs_model_create(&c, &m);
    knobs_terms t = {0};
    for (int k = 0; k < 3 && !s; k++) s = knobs_model_train_step(m, d, &t);
    int ip = term(&t, "property");
    CHECK(!s && ip >= 0 && isfinite(t.value[ip]), "%s: %s", models[i], s ? knobs_last_error() : "no property term");
    knobs_model_free(m);
  }
}

/* ---- settings and refusals ------------------------------------------------------------------- */

static void test_settings(void) {
  T_CASE("settings");
  knobs_config *c = NULL;
  if (knobs_config_create("betavae", &c)) {
    CHECK(0, "config: %s", knobs_last_error());
    return;
  }
  CHECK(!strcmp(knobs_config_string(c, "property_penalty"), "") && knobs_config_number(c, "property_weight") == 0,
        "defaults");
  CHECK(knobs_config_set(c, "property_weight", "2e6") == KNOBS_ERR_ARG, "weight 2e6 accepted");
  CHECK(knobs_config_set(c, "property_weight", "-1e6") == KNOBS_OK, "weight -1e6 refused");
  const knobs_field *f;
  int found = 0;
  for (int i = 0; (f = knobs_config_field(c, i)); i++)
    if (!strcmp(f->name, "property_penalty") || !strcmp(f->name, "property_weight"))
      found += !f->resumable && !f->owner && !f->derived;
  CHECK(found == 2, "the two settings: shared, not resumable (%d)", found);
  knobs_config_set(c, "property_penalty", "x/h.safetensors");
  knobs_config_set(c, "property_weight", "0.25");
  char *j = knobs_config_to_json(c);
  knobs_config *r = NULL;
  knobs_config_create("betavae", &r);
  CHECK(j && r && !knobs_config_from_json(r, j) && !strcmp(knobs_config_string(r, "property_penalty"), "x/h.safetensors") &&
            knobs_config_number(r, "property_weight") == 0.25,
        "JSON round trip: %s", knobs_last_error());
  free(j);
  knobs_config_free(r);
  knobs_config_free(c);
}

static void test_refusals(knobs_data *d) {
  T_CASE("refusals");
  char missing[400];
  snprintf(missing, sizeof missing, "%s/nosuch.safetensors", dir);
  knobs_config c = pen_config("betavae", "mlp", HW, missing, 1);
  knobs_model *m = (knobs_model *)1;
  knobs_status s = knobs_model_create(&c, &m);
  CHECK(s && !m && contains(knobs_last_error(), missing) && contains(knobs_last_error(), "property_penalty"),
        "missing head: %d %s", s, knobs_last_error());
  /* tests/ref/head_reg.safetensors takes 5 latents; the toy models have 3 */
  c = pen_config("betavae", "mlp", HW, "tests/ref/head_reg.safetensors", 1);
  s = knobs_model_create(&c, &m);
  CHECK(s == KNOBS_ERR_ARG && contains(knobs_last_error(), "head_reg.safetensors") &&
            contains(knobs_last_error(), "5 latents") && contains(knobs_last_error(), "has 3"),
        "wrong width: %s", knobs_last_error());
  /* a foreign file: a model checkpoint is not a head */
  c = pen_config("betavae", "mlp", HW, "tests/ref/xknob.safetensors", 1);
  s = knobs_model_create(&c, &m);
  CHECK(s == KNOBS_ERR_FORMAT && contains(knobs_last_error(), "not a knobs property head"), "foreign file: %s",
        knobs_last_error());
  c = pen_config("betavae", "mlp", HW, NULL, 3);
  s = knobs_config_validate(&c);
  CHECK(s == KNOBS_ERR_ARG && contains(knobs_last_error(), "property_weight is 3"), "weight without head: %s",
        knobs_last_error());
  static const char *const other[] = {"gvae", "mlvae", "adagvae", "adamlvae", "infogan"};
  for (int i = 0; i < 5; i++) {
    c = pen_config(other[i], "mlp", HW, head3, 1);
    s = knobs_config_validate(&c);
    CHECK(s == KNOBS_ERR_ARG && contains(knobs_last_error(), other[i]) &&
              contains(knobs_last_error(), "does not support the property penalty") &&
              contains(knobs_last_error(), "betavae, annealedvae"),
          "%s: %s", other[i], knobs_last_error());
    s = knobs_model_create(&c, &m);
    CHECK(s == KNOBS_ERR_ARG, "%s created with a property penalty", other[i]);
    c = pen_config(other[i], "mlp", HW, NULL, 0); /* without it, as before */
    CHECK(!knobs_config_validate(&c), "%s: %s", other[i], knobs_last_error());
  }
  (void)d;
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  T_CASE("make head");
  int ok = make_head();
  CHECK(ok, "head: %s", knobs_last_error());
  knobs_data *d8 = mt_toy_open(HW, 4), *d28 = mt_toy_open(28, 4);
  if (ok) {
    fd_rule mlp = {1e-2, 3e-2, 0.9, 3e-3}, conv = {1e-2, 1e-1, 0.9, 3e-2};
    pen_fd("betavae", "mlp", HW, "bernoulli", mlp, d8);
    pen_fd("betavae", "mlp", HW, "gaussian", mlp, d8);
    pen_fd("factorvae", "mlp", HW, "bernoulli", mlp, d8);
    pen_fd("betavae", "conv", 28, "bernoulli", conv, d28);
    test_training(d8);
    test_families(d8);
    test_refusals(d8);
  }
  test_settings();
  knobs_data_free(d8), knobs_data_free(d28);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
