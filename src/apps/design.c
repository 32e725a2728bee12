/* design.c: property-guided design in latent space. Gradient ascent (Adam) on codes through the
 * decoder (knobs_model_decode_vjp) of  s * property(z) - lambda * penalty(z)  (or
 * -(property - target)^2 - lambda * penalty), from encoded dataset observations, with every
 * result checked: its property's percentile among the dataset's, its distance to the nearest
 * real image (the oracle's nearest rendering on built-in data), its re-encode error, and
 * whether that distance is within what the model's own reconstructions of real data reach.
 * Uses only the public model, data, oracle, penalty and head calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/density.h"
#include "core/core.h"

void knobs_design_opts_default(knobs_design_opts *o) {
  memset(o, 0, sizeof *o);
  o->image_property = KNOBS_PROP_AREA;
  o->channel = 0;
  o->latent = -1;
  o->head = NULL;
  o->goal = KNOBS_DESIGN_MAX;
  o->target = 0;
  o->penalty = KNOBS_PENALTY_PRIOR;
  o->lambda = 1;
  knobs_penalty_opts_default(&o->penalty_opts);
  o->n = 16;
  o->restarts = 64;
  o->steps = 200;
  o->lr = 0.05;
  o->n_fit = 5000;
  o->seed = 0;
}

void knobs_design_result_free(knobs_design_result *r) {
  if (!r) return;
  free(r->codes), free(r->images), free(r->items);
  free(r);
}

typedef struct {
  knobs_model *m;
  const knobs_design_opts *o;
  const knobs_knob *knob; /* a knob's calibrated value, or NULL */
  int Z, C, H, W;
  size_t D;
  float *x, *gx;          /* (B,D) decoded images and the property's image gradient */
  double *v;              /* (B) */
} prop_ctx;

/* The property of B codes z to v (B), and its gradient to dz (B,Z) if non-NULL. */
static knobs_status property(prop_ctx *p, const float *z, int B, double *v, float *dz) {
  const knobs_design_opts *o = p->o;
  int Z = p->Z;
  if (dz) memset(dz, 0, sizeof(float) * (size_t)B * Z);
  if (o->head) return knobs_head_eval(o->head, z, B, v, NULL, dz);
  if (p->knob) {
    const knobs_knob *kb = p->knob;
    for (int i = 0; i < B; i++) {
      double c = z[(size_t)i * Z + o->latent];
      v[i] = knobs_knob_value(kb, c);
      if (!dz) continue;
      double g = 0; /* the slope of the segment holding c (0 beyond the knots) */
      for (int q = 1; q < kb->n_knots; q++)
        if (c >= kb->knot_code[q - 1] && c < kb->knot_code[q]) {
          g = (kb->knot_value[q] - kb->knot_value[q - 1]) / (kb->knot_code[q] - kb->knot_code[q - 1]);
          break;
        }
      dz[(size_t)i * Z + o->latent] = (float)g;
    }
    return KNOBS_OK;
  }
  knobs_status s = knobs_model_decode(p->m, z, B, p->x);
  if (!s) s = knobs_image_property_eval(o->image_property, o->channel, p->x, B, p->C, p->H, p->W, v, dz ? p->gx : NULL);
  if (!s && dz) s = knobs_model_decode_vjp(p->m, z, B, p->gx, dz);
  return s;
}

/* The objective of one code from its property value v (gradient factor to *dfac), with the
 * property in standard deviations sd of the dataset's property around its mean mu, so that one
 * lambda means the same for every property: (v - mu) / sd, or -((v - target) / sd)^2. */
static double objective(const knobs_design_opts *o, double v, double mu, double sd, double *dfac) {
  if (o->goal == KNOBS_DESIGN_MAX) return *dfac = 1 / sd, (v - mu) / sd;
  if (o->goal == KNOBS_DESIGN_MIN) return *dfac = -1 / sd, -(v - mu) / sd;
  *dfac = -2 * (v - o->target) / (sd * sd);
  return -(v - o->target) * (v - o->target) / (sd * sd);
}

static double mse(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return s / (double)n;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Distances to the nearest real image of n images: the oracle's nearest rendering when it knows
 * the data, else the nearest of the `ref` observations (nref of them). */
static knobs_status nearest(knobs_oracle *orc, const float *x, int n, const float *ref, int nref, size_t D,
                            double *dist) {
  if (orc) {
    int32_t *f = malloc(sizeof(int32_t) * KNOBS_MAX_FACTORS * (size_t)(n > 0 ? n : 1));
    if (!f) return kn_err(KNOBS_ERR_NOMEM, "design: out of memory");
    knobs_status s = knobs_oracle_factors(orc, x, n, f, dist);
    free(f);
    return s;
  }
  for (int i = 0; i < n; i++) {
    double best = INFINITY;
    for (int j = 0; j < nref; j++) {
      double s = 0;
      const float *a = x + (size_t)i * D, *b = ref + (size_t)j * D;
      for (size_t q = 0; q < D && s < best * (double)D; q++) s += ((double)a[q] - b[q]) * ((double)a[q] - b[q]);
      best = fmin(best, s / (double)D);
    }
    dist[i] = best;
  }
  return KNOBS_OK;
}

static knobs_status check_opts(const knobs_model *m, const knobs_knobs *k, const knobs_design_opts *o, int Z) {
  if (o->n < 1 || o->n > 4096) return kn_err(KNOBS_ERR_ARG, "design: n = %d out of range 1..4096", o->n);
  if (o->restarts < o->n || o->restarts > 65536)
    return kn_err(KNOBS_ERR_ARG, "design: restarts = %d must be at least n = %d (and at most 65536)", o->restarts, o->n);
  if (o->steps < 0 || o->steps > 100000) return kn_err(KNOBS_ERR_ARG, "design: steps = %d out of range 0..100000", o->steps);
  if (!isfinite(o->lr) || o->lr <= 0 || o->lr > 10) return kn_err(KNOBS_ERR_ARG, "design: lr %g out of range (0, 10]", o->lr);
  if (!isfinite(o->lambda) || o->lambda < 0 || o->lambda > 1e6)
    return kn_err(KNOBS_ERR_ARG, "design: lambda %g out of range [0, 1e6]", o->lambda);
  if (!isfinite(o->target)) return kn_err(KNOBS_ERR_ARG, "design: target is not a number");
  if (o->n_fit < 100 || o->n_fit > 1000000) return kn_err(KNOBS_ERR_ARG, "design: n_fit = %d out of range 100..1000000", o->n_fit);
  if (o->goal != KNOBS_DESIGN_MAX && o->goal != KNOBS_DESIGN_MIN && o->goal != KNOBS_DESIGN_TARGET)
    return kn_err(KNOBS_ERR_ARG, "design: unknown goal %d", (int)o->goal);
  if (o->head && knobs_head_dim(o->head) != Z)
    return kn_err(KNOBS_ERR_ARG, "design: the property head takes codes of %d, the model's are %d", knobs_head_dim(o->head), Z);
  if (!o->head && o->latent >= 0) {
    if (o->latent >= Z) return kn_err(KNOBS_ERR_ARG, "design: latent %d out of range (the model has %d)", o->latent, Z);
    if (!k || k->Z != Z || k->knobs[o->latent].n_knots < 2)
      return kn_err(KNOBS_ERR_ARG, "design: latent %d has no calibration to a factor (run 'knobs name')", o->latent);
  }
  if (!o->head && o->latent < 0 && (o->image_property < KNOBS_PROP_AREA || o->image_property > KNOBS_PROP_CHANNEL))
    return kn_err(KNOBS_ERR_ARG, "design: unknown image property %d", (int)o->image_property);
  (void)m;
  return KNOBS_OK;
}

knobs_status knobs_design(knobs_model *m, knobs_data *d, const knobs_knobs *k, const knobs_design_opts *o,
                          knobs_design_result **out) {
  *out = NULL;
  knobs_design_opts def;
  if (!o) knobs_design_opts_default(&def), o = &def;
  int Z = knobs_model_code_dim(m);
  knobs_status s = check_opts(m, k, o, Z);
  if (s) return s;
  if ((s = knobs_model_decode_vjp(m, NULL, 0, NULL, NULL))) return kn_err_prefix(s, "design");
  const knobs_config *cfg = knobs_model_config(m);
  prop_ctx p = {.m = m, .o = o, .Z = Z, .C = (int)knobs_config_number(cfg, "C"), .H = (int)knobs_config_number(cfg, "H"),
                .W = (int)knobs_config_number(cfg, "W")};
  p.D = (size_t)p.C * p.H * p.W;
  p.knob = !o->head && o->latent >= 0 ? &k->knobs[o->latent] : NULL;
  const knobs_data_info *in = knobs_data_info_get(d);
  if ((size_t)in->C * in->H * in->W != p.D)
    return kn_err(KNOBS_ERR_ARG, "design: %s has observations of %dx%dx%d, the model takes %dx%dx%d", in->name, in->C,
                  in->H, in->W, p.C, p.H, p.W);
  int R = o->restarts, N = o->n_fit, nthr = (int)fmax(1, knobs_config_number(cfg, "threads"));
  knobs_oracle *orc = NULL;
  if (knobs_oracle_create(d, nthr, &orc)) {
    knobs_clear_error();
    orc = NULL;
  }
  int chunk = R > N ? R : N;
  chunk = chunk < 256 ? chunk : 256;
  float *xd = malloc(sizeof(float) * p.D * (size_t)N);       /* the n_fit observations */
  float *cd = malloc(sizeof(float) * (size_t)N * Z);         /* their codes */
  double *pd = malloc(sizeof(double) * (size_t)N);           /* their property */
  float *z = malloc(sizeof(float) * (size_t)R * Z), *g = malloc(sizeof(float) * (size_t)R * Z);
  double *am = calloc((size_t)R * Z, sizeof(double)), *av = calloc((size_t)R * Z, sizeof(double));
  double *v = malloc(sizeof(double) * (size_t)R), *obj = malloc(sizeof(double) * (size_t)R);
  double *pen = malloc(sizeof(double) * (size_t)R), *pg = malloc(sizeof(double) * (size_t)Z);
  int *order = malloc(sizeof(int) * (size_t)R);
  p.x = malloc(sizeof(float) * p.D * (size_t)(R > chunk ? R : chunk));
  p.gx = malloc(sizeof(float) * p.D * (size_t)R);
  knobs_design_result *r = calloc(1, sizeof *r);
  knobs_penalty *pn = NULL;
  if (!xd || !cd || !pd || !z || !g || !am || !av || !v || !obj || !pen || !pg || !order || !p.x || !p.gx || !r)
    s = kn_err(KNOBS_ERR_NOMEM, "design: out of memory (%d observations, %d starts)", N, R);
  /* the data: observations, codes, property, the penalty's fit */
  for (int i = 0; !s && i < N; i += chunk) {
    int b = N - i < chunk ? N - i : chunk;
    s = knobs_data_draw(d, b, o->seed, (uint64_t)(i / chunk), xd + (size_t)i * p.D, NULL);
  }
  if (!s) s = knobs_model_encode(m, xd, N, cd, NULL);
  for (size_t i = 0; !s && i < (size_t)N * Z; i++)
    if (!isfinite(cd[i])) s = kn_err(KNOBS_ERR_DATA, "design: the code of observation %zu is not finite", i / Z);
  if (!s) {
    if (o->head) s = knobs_head_eval(o->head, cd, N, pd, NULL, NULL);
    else if (p.knob) for (int i = 0; i < N; i++) pd[i] = knobs_knob_value(p.knob, cd[(size_t)i * Z + o->latent]);
    else s = knobs_image_property_eval(o->image_property, o->channel, xd, N, p.C, p.H, p.W, pd, NULL);
  }
  if (!s) s = knobs_penalty_fit(o->penalty, cd, N, Z, &o->penalty_opts, &pn);
  double pmu = 0, psd = 0;
  for (int i = 0; !s && i < N; i++) pmu += pd[i] / N;
  for (int i = 0; !s && i < N; i++) psd += (pd[i] - pmu) * (pd[i] - pmu) / N;
  psd = psd > 0 ? sqrt(psd) : 1;
  /* the ascent, from the first R codes (random draws of the data) */
  if (!s) memcpy(z, cd, sizeof(float) * (size_t)R * Z);
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int t = 0; !s && t <= o->steps; t++) {
    s = property(&p, z, R, v, t < o->steps ? g : NULL);
    for (int i = 0; !s && i < R; i++) {
      double fac;
      obj[i] = objective(o, v[i], pmu, psd, &fac);
      for (int j = 0; j < Z; j++) pg[j] = 0;
      pen[i] = o->penalty == KNOBS_PENALTY_NONE ? 0 : knobs_penalty_eval(pn, z + (size_t)i * Z, pg);
      obj[i] -= o->lambda * pen[i];
      if (t == o->steps) continue;
      for (int j = 0; j < Z; j++) {
        size_t q = (size_t)i * Z + j;
        double gr = fac * g[q] - o->lambda * pg[j]; /* ascent direction */
        am[q] = b1 * am[q] + (1 - b1) * gr;
        av[q] = b2 * av[q] + (1 - b2) * gr * gr;
        double mh = am[q] / (1 - pow(b1, t + 1)), vh = av[q] / (1 - pow(b2, t + 1));
        z[q] = (float)(z[q] + o->lr * mh / (sqrt(vh) + eps));
      }
    }
    for (size_t q = 0; !s && q < (size_t)R * Z; q++)
      if (!isfinite(z[q])) s = kn_err(KNOBS_ERR_DATA, "design: the ascent diverged at step %d (lower --lr)", t);
  }
  /* the best n, by objective (ties: the earlier start) */
  if (!s) {
    for (int i = 0; i < R; i++) order[i] = i;
    for (int a = 1; a < R; a++)
      for (int b = a; b > 0 && obj[order[b]] > obj[order[b - 1]]; b--) {
        int tt = order[b];
        order[b] = order[b - 1], order[b - 1] = tt;
      }
    int n = o->n;
    r->n = n, r->Z = Z, r->C = p.C, r->H = p.H, r->W = p.W;
    r->codes = malloc(sizeof(float) * (size_t)n * Z);
    r->images = malloc(sizeof(float) * p.D * (size_t)n);
    r->items = calloc((size_t)n, sizeof *r->items);
    if (!r->codes || !r->images || !r->items) s = kn_err(KNOBS_ERR_NOMEM, "design: out of memory");
    for (int i = 0; !s && i < n; i++) {
      memcpy(r->codes + (size_t)i * Z, z + (size_t)order[i] * Z, sizeof(float) * (size_t)Z);
      r->items[i].objective = obj[order[i]];
      r->items[i].penalty = pen[order[i]];
    }
    if (!s) s = knobs_model_decode(m, r->codes, n, r->images);
    if (!s) s = property(&p, r->codes, n, v, NULL);
    /* the property of the decoded design (for heads and knobs: of its code) */
    for (int i = 0; !s && i < n; i++) r->items[i].property = v[i];
  }
  /* percentiles, distances, validity */
  double *dd = NULL, *rd = NULL;
  int nt = N < 1000 ? N : 1000;
  if (!s) {
    dd = malloc(sizeof(double) * (size_t)(nt > o->n ? nt : o->n));
    rd = malloc(sizeof(double) * (size_t)(nt > o->n ? nt : o->n));
    if (!dd || !rd) s = kn_err(KNOBS_ERR_NOMEM, "design: out of memory");
  }
  if (!s) {
    qsort(pd, (size_t)N, sizeof(double), cmp_double);
    r->data_p50 = kn_quantile_sorted(pd, N, 0.5), r->data_p90 = kn_quantile_sorted(pd, N, 0.9), r->data_max = pd[N - 1];
    for (int i = 0; i < o->n; i++) {
      int below = 0;
      while (below < N && pd[below] < r->items[i].property) below++;
      r->items[i].percentile = 100.0 * below / N;
    }
    /* the threshold: the model's reconstructions of nt real observations */
    float *rec = p.x; /* room for max(R, chunk) images: the chunks below and the n designs fit */
    for (int i = 0; !s && i < nt; i += chunk) {
      int b = nt - i < chunk ? nt - i : chunk;
      s = knobs_model_decode(m, cd + (size_t)i * Z, b, rec);
      if (!s) s = nearest(orc, rec, b, xd, N, p.D, dd + i);
    }
    if (!s) {
      qsort(dd, (size_t)nt, sizeof(double), cmp_double);
      r->threshold = kn_quantile_sorted(dd, nt, 0.95);
      s = nearest(orc, r->images, o->n, xd, N, p.D, dd);
    }
    /* the re-encode error */
    float *zc = g; /* R >= n rows */
    if (!s) s = knobs_model_encode(m, r->images, o->n, zc, NULL);
    if (!s) s = knobs_model_decode(m, zc, o->n, rec);
    for (int i = 0; !s && i < o->n; i++) {
      r->items[i].nearest = dd[i];
      r->items[i].recon = mse(r->images + (size_t)i * p.D, rec + (size_t)i * p.D, p.D);
      r->items[i].valid = dd[i] <= r->threshold;
      r->valid += r->items[i].valid;
    }
    snprintf(r->method, sizeof r->method, "%s",
             orc ? knobs_oracle_method(orc) : "nearest of the n_fit dataset observations (exhaustive, mean squared pixel distance)");
  }
  free(dd), free(rd);
  free(xd), free(cd), free(pd), free(z), free(g), free(am), free(av), free(v), free(obj), free(pen), free(pg), free(order);
  free(p.x), free(p.gx);
  knobs_penalty_free(pn);
  knobs_oracle_free(orc);
  if (s) knobs_design_result_free(r);
  else *out = r;
  return s;
}
