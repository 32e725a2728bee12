/* counts.c: `counts`, a simulated single-cell RNA-seq experiment in the spirit of Splatter
 * (Zappia, Phipson & Oshlack 2017, Genome Biology 18:174): gene base means from a gamma
 * distribution, cell types that change a subset of genes by log-normal fold changes, a
 * perturbation (condition ctrl / stim) whose response is partly shared by all cell types and
 * partly type-specific, log-normal library sizes and negative-binomial (gamma-Poisson) counts
 * with gene-wise dispersion. The generator, its parameters and defaults are in docs/formats.md
 * ("Built in: counts"); the code follows it step by step.
 *
 * A fixed population of `cells` cells: cell i is a pure function of (opts->seed, i), generated
 * on demand by get() (no memory beyond the gene tables), on the dataset's pool for batches.
 * Ground-truth factors: celltype (types classes) and condition (0 ctrl, 1 stim). Observations
 * are the raw counts (vector data, C = genes, H = W = 1), what a count likelihood needs; the
 * model's input transform log1p is the model's business, as in scVI (log_variational). The
 * variant `counts:log1p` gives log1p(counts) instead, for models with a Gaussian likelihood.
 * `counts:holdout=TYPE` leaves the stim cells of one cell type out of the population (their
 * indices are skipped, info.n shrinks; every other cell is the same cell): the training set of
 * a perturbation model that must never see them (`knobs perturb`, docs/apps.md).
 * It does not simulate batches, outlier genes, paths or doublets (Splatter does). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

#define STREAM_GENES 0x67656e65ull     /* the gene tables */
#define STREAM_CELL (6ull << 40)       /* + cell index: the cell's type, condition and counts */
#define MAX_TYPES 64

typedef struct {
  int G, N, T;          /* genes, cells, cell types */
  int log1p;            /* observations log1p(counts) instead of counts */
  int dropout;          /* Splatter's logistic dropout on */
  double drop_mid;      /* its midpoint (log mean) */
  uint64_t seed;
  double lib_loc, lib_scale;
  float *prop;          /* (T,2,G) expected proportions of each gene in a cell of type t, condition c */
  float *theta;         /* (G) inverse dispersion */
  int holdout;          /* cell type whose stim cells are left out, or -1 */
  int64_t *keep;        /* with holdout: the population's index of each kept cell (info.n) */
} counts;

/* ---- samplers ------------------------------------------------------------------------------ */
static double unif_open(kn_rng *r) { return ((double)(kn_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53; }

/* Gamma(shape a, scale 1): Marsaglia & Tsang (2000); a < 1 through Gamma(a + 1) U^(1/a). */
static double rgamma(kn_rng *r, double a) {
  if (a < 1) {
    double u = unif_open(r);
    return rgamma(r, a + 1) * pow(u, 1 / a);
  }
  double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = kn_rng_normal(r);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    double u = unif_open(r);
    if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
  }
}

/* Poisson(lam): multiplication of uniforms below 12, Hormann's PTRS (1993) above (as NumPy). */
static double rpois(kn_rng *r, double lam) {
  if (lam <= 0) return 0;
  if (lam < 12) {
    double L = exp(-lam), p = 1;
    int k = -1;
    do {
      k++;
      p *= unif_open(r);
    } while (p > L);
    return k;
  }
  double slam = sqrt(lam), loglam = log(lam);
  double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    double U = kn_rng_uniform(r) - 0.5, V = kn_rng_uniform(r), us = 0.5 - fabs(U);
    double k = floor((2 * a / us + b) * U + lam + 0.43);
    if (us >= 0.07 && V <= vr) return k;
    if (k < 0 || (us < 0.013 && V > us)) continue;
    int sg;
    if (log(V) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma_r(k + 1, &sg)) return k;
  }
}

/* A Splatter fold change: exp(N(loc, scale)), inverted with probability 1/2 (down-regulation). */
static double fold(kn_rng *r, double loc, double scale) {
  double f = exp(loc + scale * kn_rng_normal(r));
  return kn_rng_uniform(r) < 0.5 ? 1 / f : f;
}

/* ---- the cells ----------------------------------------------------------------------------- */
/* The type and condition of cell i: the first two draws of its rng, as cell() draws them. */
static void cell_class(const counts *c, int64_t i, int *t, int *cond) {
  kn_rng r;
  kn_rng_seed(&r, c->seed, STREAM_CELL + (uint64_t)i);
  *t = (int)kn_rng_below(&r, (uint32_t)c->T), *cond = (int)kn_rng_below(&r, 2);
}

static void cell(const counts *c, int64_t i, float *x, int32_t *f) {
  kn_rng r;
  kn_rng_seed(&r, c->seed, STREAM_CELL + (uint64_t)i);
  int t = (int)kn_rng_below(&r, (uint32_t)c->T), cond = (int)kn_rng_below(&r, 2);
  double L = exp(c->lib_loc + c->lib_scale * kn_rng_normal(&r));
  const float *p = c->prop + ((size_t)t * 2 + cond) * c->G;
  for (int g = 0; g < c->G; g++) {
    double mu = L * p[g], th = c->theta[g];
    double y = mu > 0 ? rpois(&r, rgamma(&r, th) * mu / th) : 0;
    if (c->dropout && y > 0) { /* Splatter: dropped with probability 1 / (1 + exp(log mu - mid)) */
      double pd = 1 / (1 + exp(log(mu) - c->drop_mid));
      if (kn_rng_uniform(&r) < pd) y = 0;
    }
    x[g] = (float)(c->log1p ? log1p(y) : y);
  }
  if (f) f[0] = t, f[1] = cond;
}

typedef struct {
  const counts *c;
  const int64_t *idx;
  int n;
  float *obs;
  int32_t *f;
} get_job;

static void get_task(void *ctx, int tid, int nt) {
  get_job *j = ctx;
  long lo, hi;
  kn_split(j->n, tid, nt, &lo, &hi);
  for (long k = lo; k < hi; k++)
    cell(j->c, j->c->keep ? j->c->keep[j->idx[k]] : j->idx[k], j->obs + (size_t)k * j->c->G, j->f ? j->f + 2 * k : NULL);
}

static knobs_status ct_get(knobs_data *d, const int64_t *idx, int n, float *obs, int32_t *factors) {
  get_job j = {d->impl, idx, n, obs, factors};
  kn_pool_run(n > 1 ? d->pool : NULL, get_task, &j);
  return KNOBS_OK;
}

static void ct_free(void *impl) {
  counts *c = impl;
  if (!c) return;
  free(c->prop);
  free(c->theta);
  free(c->keep);
  free(c);
}

static const char *ct_class_name(const knobs_data *d, int k, int c) {
  static const char *const cond[2] = {"ctrl", "stim"};
  static const char *const types[MAX_TYPES] = {
      "type0",  "type1",  "type2",  "type3",  "type4",  "type5",  "type6",  "type7",  "type8",  "type9",
      "type10", "type11", "type12", "type13", "type14", "type15", "type16", "type17", "type18", "type19",
      "type20", "type21", "type22", "type23", "type24", "type25", "type26", "type27", "type28", "type29",
      "type30", "type31", "type32", "type33", "type34", "type35", "type36", "type37", "type38", "type39",
      "type40", "type41", "type42", "type43", "type44", "type45", "type46", "type47", "type48", "type49",
      "type50", "type51", "type52", "type53", "type54", "type55", "type56", "type57", "type58", "type59",
      "type60", "type61", "type62", "type63"};
  return k == 0 ? types[c] : cond[c];
}

static const kn_data_ops ops = {.get = ct_get, .free_impl = ct_free, .class_name = ct_class_name};

/* The gene tables, in this order from the rng (seed, STREAM_GENES): base means, cell-type
 * effects type by type, the shared perturbation response, its type-specific part, dispersions. */
static int make_genes(counts *c) {
  int G = c->G, T = c->T;
  kn_rng r;
  kn_rng_seed(&r, c->seed, STREAM_GENES);
  double *lam = malloc(sizeof(double) * G), *type = malloc(sizeof(double) * (size_t)T * G);
  double *stim = malloc(sizeof(double) * (size_t)T * G), *shared = malloc(sizeof(double) * G);
  int ok = lam && type && stim && shared;
  if (ok) {
    for (int g = 0; g < G; g++) lam[g] = rgamma(&r, 0.6) / 0.3;              /* Gamma(0.6, rate 0.3) */
    for (int t = 0; t < T; t++)
      for (int g = 0; g < G; g++) type[t * G + g] = kn_rng_uniform(&r) < 0.1 ? fold(&r, 0.5, 0.4) : 1;
    for (int g = 0; g < G; g++) shared[g] = kn_rng_uniform(&r) < 0.1 ? fold(&r, 1.0, 0.4) : 1;
    for (int t = 0; t < T; t++)
      for (int g = 0; g < G; g++) {
        double u = kn_rng_uniform(&r), s = shared[g];
        if (s != 1) stim[t * G + g] = u < 0.3 ? fold(&r, 1.0, 0.4) : s;      /* redrawn for this type */
        else stim[t * G + g] = u < 0.02 ? fold(&r, 1.0, 0.4) : 1;           /* this type's own */
      }
    double sl = 0;
    for (int g = 0; g < G; g++) sl += lam[g];
    double meanlib = exp(c->lib_loc + 0.5 * c->lib_scale * c->lib_scale);
    for (int g = 0; g < G; g++) { /* Splatter's BCV without its chi-square: phi = (0.2 + 1/sqrt(m))^2 */
      double m = meanlib * lam[g] / sl, b = 0.2 + 1 / sqrt(m > 1e-12 ? m : 1e-12);
      c->theta[g] = (float)(1 / (b * b));
    }
    for (int t = 0; t < T; t++)
      for (int k = 0; k < 2; k++) {
        float *p = c->prop + ((size_t)t * 2 + k) * G;
        double s = 0;
        for (int g = 0; g < G; g++) s += lam[g] * type[t * G + g] * (k ? stim[t * G + g] : 1);
        for (int g = 0; g < G; g++) p[g] = (float)(lam[g] * type[t * G + g] * (k ? stim[t * G + g] : 1) / s);
      }
  }
  free(lam), free(type), free(stim), free(shared);
  return ok;
}

/* "counts", or "counts:" followed by comma-separated settings: genes=G, cells=N, types=T,
 * dropout=MID, log1p. */
static int ct_match(const char *spec) { return !strcmp(spec, "counts") || !strncmp(spec, "counts:", 7); }

static knobs_status parse_int(const char *spec, const char *key, const char *v, long lo, long hi, int *out) {
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end || x < lo || x > hi)
    return kn_err(KNOBS_ERR_ARG, "%s: %s must be a whole number from %ld to %ld, not '%s'", spec, key, lo, hi, v);
  *out = (int)x;
  return KNOBS_OK;
}

static knobs_status parse_spec(const char *spec, counts *c, int *genes_set, char *holdout, size_t nh) {
  if (!spec[6]) return KNOBS_OK;
  char buf[256];
  if (snprintf(buf, sizeof buf, "%s", spec + 7) >= (int)sizeof buf) return kn_err(KNOBS_ERR_ARG, "%s: settings too long", spec);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    knobs_status s = KNOBS_OK;
    if (!strcmp(tok, "log1p")) c->log1p = 1;
    else if (!eq) s = kn_err(KNOBS_ERR_ARG, "%s: unknown setting '%s' (genes=, cells=, types=, dropout=, holdout=, log1p)", spec, tok);
    else {
      *eq = 0;
      const char *v = eq + 1;
      if (!strcmp(tok, "genes")) s = parse_int(spec, tok, v, 2, 100000, &c->G), *genes_set = 1;
      else if (!strcmp(tok, "cells")) s = parse_int(spec, tok, v, 1, 100000000, &c->N);
      else if (!strcmp(tok, "types")) s = parse_int(spec, tok, v, 1, MAX_TYPES, &c->T);
      else if (!strcmp(tok, "holdout")) snprintf(holdout, nh, "%s", v);
      else if (!strcmp(tok, "dropout")) {
        char *end;
        c->drop_mid = strtod(v, &end);
        if (end == v || *end || !isfinite(c->drop_mid))
          s = kn_err(KNOBS_ERR_ARG, "%s: dropout must be a number (the midpoint, in log mean counts), not '%s'", spec, v);
        c->dropout = 1;
      } else s = kn_err(KNOBS_ERR_ARG, "%s: unknown setting '%s' (genes=, cells=, types=, dropout=, holdout=, log1p)", spec, tok);
    }
    if (s) return s;
  }
  return KNOBS_OK;
}

static knobs_status ct_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors) return kn_err(KNOBS_ERR_ARG, "counts has its own factors: a factors file (%s) is for your own data", o->factors);
  if (o->noise >= 0) return kn_err(KNOBS_ERR_ARG, "counts: no noise setting (its noise is the negative binomial's)");
  if (o->factor_dist && o->factor_dist[0]) return kn_err(KNOBS_ERR_ARG, "counts: no factor distribution setting");
  counts *c = calloc(1, sizeof *c);
  if (!c) return kn_err(KNOBS_ERR_NOMEM, "counts: cannot allocate");
  d->impl = c;
  d->ops = &ops;
  c->G = 1000, c->N = 10000, c->T = 4, c->seed = o->seed, c->lib_loc = 8.0, c->lib_scale = 0.3;
  int genes_set = 0;
  char holdout[64] = "";
  c->holdout = -1;
  knobs_status s = parse_spec(spec, c, &genes_set, holdout, sizeof holdout);
  if (s) return s;
  if (holdout[0]) { /* a type name (type1) or number (1) */
    int t = -1;
    char *end;
    long v = strtol(holdout, &end, 10);
    if (end != holdout && !*end) t = (int)v;
    else if (!strncmp(holdout, "type", 4) && holdout[4]) {
      v = strtol(holdout + 4, &end, 10);
      if (!*end) t = (int)v;
    }
    if (t < 0 || t >= c->T)
      return kn_err(KNOBS_ERR_ARG, "%s: holdout '%s' is not one of the %d cell types (type0 .. type%d)", spec, holdout,
                    c->T, c->T - 1);
    c->holdout = t;
  }
  if (o->obs_dim > 0) {
    if (genes_set && o->obs_dim != c->G)
      return kn_err(KNOBS_ERR_ARG, "%s: obs_dim %d disagrees with genes=%d", spec, o->obs_dim, c->G);
    if (o->obs_dim < 2) return kn_err(KNOBS_ERR_ARG, "counts: at least 2 genes");
    c->G = o->obs_dim;
  }
  c->prop = malloc(sizeof(float) * (size_t)c->T * 2 * c->G);
  c->theta = malloc(sizeof(float) * (size_t)c->G);
  if (!c->prop || !c->theta || !make_genes(c)) return kn_err(KNOBS_ERR_NOMEM, "counts: cannot allocate the gene tables");
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", spec);
  in->C = c->G, in->H = 1, in->W = 1;
  static const char *const names[2] = {"celltype", "condition"};
  const int sizes[2] = {c->T, 2};
  kn_data_set_factors(in, 2, names, sizes);
  in->n = c->N;
  if (c->holdout >= 0) { /* the kept cells, in population order */
    if (!(c->keep = malloc(sizeof(int64_t) * (size_t)c->N))) return kn_err(KNOBS_ERR_NOMEM, "counts: cannot allocate");
    int64_t n = 0;
    for (int64_t i = 0; i < c->N; i++) {
      int t, cond;
      cell_class(c, i, &t, &cond);
      if (!(t == c->holdout && cond == 1)) c->keep[n++] = i;
    }
    if (n == 0) return kn_err(KNOBS_ERR_ARG, "%s: no cell is left", spec);
    in->n = n;
  }
  in->is_image = 0;
  if (!c->log1p)
    snprintf(in->note, sizeof in->note, "raw counts: for a count likelihood (nb, zinb); for a Gaussian one use counts:log1p");
  return KNOBS_OK;
}

int kn_counts_truth(const knobs_data *d, const float **theta, const float **prop, int *T, int *G) {
  if (d->ops != &ops) return 0;
  const counts *c = d->impl;
  *theta = c->theta, *prop = c->prop, *T = c->T, *G = c->G;
  return 1;
}

const kn_data_entry kn_data_counts = {
    "counts",
    "simulated single-cell counts (Splatter-like): celltype (4) x condition (ctrl, stim), NB "
    "noise; counts:genes=G,cells=N,types=T,dropout=MID,log1p (1000 genes, 10000 cells)",
    ct_match,
    ct_open,
};
