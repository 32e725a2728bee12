/* perturb.c: in-silico perturbation of cells by latent arithmetic, as scGen (Lotfollahi, Wolf &
 * Theis 2019, Nature Methods 16:715): delta = mean code of the stim cells - mean code of the
 * control cells over the cell types other than the held-out one (codes: posterior means);
 * the held-out type's stim cells are predicted as decode(code of its control cells + delta).
 * The prediction is scored against the truth on mean expression, over all genes and over the
 * top differentially expressed ones, beside two baselines: "no change" (the held-out type's
 * control mean) and "mean shift in gene space" (that mean plus the other types' stim - control
 * shift). Expression is log1p(counts / library * target_sum) per cell, averaged over cells; a
 * predicted cell of a count model contributes the expectation of that under its NB/ZINB at the
 * control cell's library (expected_log1p), so prediction and truth measure the same thing.
 * Contract and errors in include/knobs.h (knobs_perturb).
 *
 * It uses only the public model and data API. It does not balance the cell types when averaging
 * codes (scGen's training balances them by upsampling; its delta is a plain mean as here), does
 * not sample codes (posterior means only), and does not test differential expression (the top
 * genes are ranked by |log fold change| of the true means, as the score needs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define CHUNK 512 /* cells read, encoded or decoded at a time */

enum { HC, HS, OC, OS, NGROUP }; /* held-out control, held-out stim, other control, other stim */

void knobs_perturb_opts_default(knobs_perturb_opts *o) {
  memset(o, 0, sizeof *o);
  o->label = "condition", o->control = "ctrl", o->stim = "stim", o->celltype = "celltype";
  o->top_de = 100, o->target_sum = 1e4, o->amount = 1;
}

void knobs_perturb_result_free(knobs_perturb_result *r) {
  if (!r) return;
  free(r->pred), free(r->truth), free(r->ctrl), free(r->shift), free(r->delta), free(r->top);
  memset(r, 0, sizeof *r);
}

/* factor named s (or its number); -1 after recording the error */
static int find_factor(const knobs_data_info *in, const char *s, const char *what) {
  for (int k = 0; k < in->K; k++)
    if (!strcmp(in->factor_names[k], s)) return k;
  char *end;
  long k = strtol(s, &end, 10);
  if (end != s && !*end && k >= 0 && k < in->K) return (int)k;
  char list[KNOBS_MAX_FACTORS * 34] = "";
  size_t u = 0;
  for (int q = 0; q < in->K && u < sizeof list; q++)
    u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", q ? ", " : "", in->factor_names[q]);
  kn_err(KNOBS_ERR_ARG, "perturb: %s has no %s factor '%s' (%s%s)", in->name, what, s, in->K ? "its factors: " : "it has none", list);
  return -1;
}

/* class named s of factor k (or its number when the dataset names no class); -1 after the error */
static int find_class(const knobs_data *d, int k, const char *s) {
  int c = knobs_data_class_find(d, k, s);
  if (c >= 0) return c;
  const knobs_data_info *in = knobs_data_info_get(d);
  char *end;
  long v = strtol(s, &end, 10);
  if (!knobs_data_class_name(d, k, 0) && end != s && !*end && v >= 0 && v < in->factor_sizes[k]) return (int)v;
  char list[512] = "";
  size_t u = 0;
  for (int q = 0; q < in->factor_sizes[k] && q < 16 && u < sizeof list; q++) {
    const char *n = knobs_data_class_name(d, k, q);
    u += (size_t)snprintf(list + u, sizeof list - u, "%s%s", q ? ", " : "", n ? n : "?");
  }
  kn_err(KNOBS_ERR_ARG, "perturb: factor %s has no class '%s' (its classes: %s%s)", in->factor_names[k], s,
         knobs_data_class_name(d, k, 0) ? list : "unnamed, give a number", in->factor_sizes[k] > 16 ? ", ..." : "");
  return -1;
}

/* log1p(x / sum(x) * target) of one cell's G counts, added into acc (double); a cell with no
 * counts adds zeros */
static void add_normalised(double *acc, const float *x, int G, double target) {
  double lib = 0;
  for (int g = 0; g < G; g++) lib += x[g];
  if (lib <= 0) return;
  for (int g = 0; g < G; g++) acc[g] += log1p((double)x[g] / lib * target);
}

typedef struct { /* growing arrays of codes */
  float *z;
  int32_t *lab;
  float *lib;    /* the cells' library sizes */
  int64_t n, cap;
} codes_buf;

static knobs_status codes_push(codes_buf *b, const float *z, int Z, int32_t lab, float lib) {
  if (b->n == b->cap) {
    int64_t cap = b->cap ? 2 * b->cap : 1024;
    float *nz = realloc(b->z, sizeof(float) * (size_t)(cap * Z));
    if (!nz) return kn_err(KNOBS_ERR_NOMEM, "perturb: cannot hold %lld codes", (long long)cap);
    b->z = nz;
    int32_t *nl = realloc(b->lab, sizeof(int32_t) * (size_t)cap);
    if (!nl) return kn_err(KNOBS_ERR_NOMEM, "perturb: cannot hold %lld codes", (long long)cap);
    b->lab = nl;
    float *nb = realloc(b->lib, sizeof(float) * (size_t)cap);
    if (!nb) return kn_err(KNOBS_ERR_NOMEM, "perturb: cannot hold %lld codes", (long long)cap);
    b->lib = nb, b->cap = cap;
  }
  memcpy(b->z + b->n * Z, z, sizeof(float) * (size_t)Z);
  b->lib[b->n] = lib;
  b->lab[b->n++] = lab;
  return KNOBS_OK;
}

/* squared Pearson and coefficient of determination of p against t over the genes idx (or all) */
static void score_of(const float *p, const float *t, const int32_t *idx, int n, double *r2, double *cod) {
  double mp = 0, mt = 0;
  for (int i = 0; i < n; i++) {
    int g = idx ? idx[i] : i;
    mp += p[g], mt += t[g];
  }
  mp /= n, mt /= n;
  double spp = 0, stt = 0, spt = 0, res = 0;
  for (int i = 0; i < n; i++) {
    int g = idx ? idx[i] : i;
    double a = p[g] - mp, b = t[g] - mt;
    spp += a * a, stt += b * b, spt += a * b, res += ((double)p[g] - t[g]) * ((double)p[g] - t[g]);
  }
  *r2 = spp > 0 && stt > 0 ? spt * spt / (spp * stt) : 0;
  *cod = stt > 0 ? 1 - res / stt : 0;
}

static void score(const float *p, const knobs_perturb_result *r, knobs_perturb_score *s) {
  score_of(p, r->truth, NULL, r->G, &s->r2_all, &s->cod_all);
  score_of(p, r->truth, r->top, r->n_top, &s->r2_top, &s->cod_top);
}

typedef struct {
  double key;
  int32_t g;
} ranked;

static int by_key_desc(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? 1 : -1;
  return x->g - y->g;
}

typedef struct { /* the state of one call */
  knobs_model *m;
  knobs_data *d;
  const knobs_perturb_opts *o;
  int G, Z, K, counts_model, kt, kl, hold, ctrl, stim;
  float *x, *xin, *mu;     /* (CHUNK,G), (CHUNK,G), (CHUNK,Z) */
  int32_t *fac;            /* (CHUNK,K) */
  double *sum[NGROUP];     /* (G) each: sums of normalised expression */
  int64_t n[NGROUP];
  codes_buf other, held;   /* codes of the other types' ctrl (0) and stim (1) cells; held-out ctrl */
} job;

/* One pass over the cells: check they are counts, sum normalised expression per group, encode
 * the cells delta and the prediction need. */
static knobs_status read_cells(job *j) {
  const knobs_data_info *in = knobs_data_info_get(j->d);
  int G = j->G, Z = j->Z;
  int64_t idx[CHUNK];
  float lib[CHUNK];
  for (int64_t i0 = 0; i0 < in->n; i0 += CHUNK) {
    int b = in->n - i0 < CHUNK ? (int)(in->n - i0) : CHUNK, ne = 0, grp[CHUNK];
    for (int i = 0; i < b; i++) idx[i] = i0 + i;
    knobs_status s = knobs_data_get(j->d, idx, b, j->x, j->fac);
    if (s) return s;
    for (int i = 0; i < b; i++) {
      const float *x = j->x + (size_t)i * G;
      const int32_t *f = j->fac + (size_t)i * j->K;
      int t = f[j->kt], c = f[j->kl];
      grp[i] = c == j->ctrl ? (t == j->hold ? HC : OC) : c == j->stim ? (t == j->hold ? HS : OS) : -1;
      if (grp[i] < 0) continue;
      for (int g = 0; g < G; g++)
        if (!(x[g] >= 0) || x[g] != floorf(x[g]) || !isfinite(x[g]))
          return kn_err(KNOBS_ERR_DATA, "perturb: %s is not raw counts: cell %lld, gene %d is %g (knobs perturb "
                        "needs whole non-negative counts; give the counts, not log1p or normalised values)",
                        in->name, (long long)(i0 + i), g, x[g]);
      add_normalised(j->sum[grp[i]], x, G, j->o->target_sum);
      double l = 0;
      for (int g = 0; g < G; g++) l += x[g];
      lib[i] = (float)l;
      j->n[grp[i]]++;
      if (grp[i] == HS) continue;
      float *xi = j->xin + (size_t)ne++ * G; /* the model's input: counts, or log1p for a Gaussian model */
      for (int g = 0; g < G; g++) xi[g] = j->counts_model ? x[g] : log1pf(x[g]);
    }
    if (!ne) continue;
    s = knobs_model_encode(j->m, j->xin, ne, j->mu, NULL);
    if (s) return s;
    for (int i = 0, e = 0; i < b && !s; i++) {
      if (grp[i] < 0 || grp[i] == HS) continue;
      const float *z = j->mu + (size_t)e++ * Z;
      s = grp[i] == HC ? codes_push(&j->held, z, Z, 0, lib[i]) : codes_push(&j->other, z, Z, grp[i] == OS, lib[i]);
    }
    if (s) return s;
  }
  return KNOBS_OK;
}

/* E[log1p(c x)] for x ~ (1 - w) NB(mu, theta) + w delta_0 (w the dropout probability): the sum
 * over x of the pmf, by its recurrence p(x+1) = p(x) (x + theta) / (x + 1) * mu / (mu + theta)
 * from p(0) = (theta / (theta + mu))^theta, to 12 standard deviations past the mean or a tail
 * below 1e-10. When p(0) underflows (a mean of thousands), the second-order delta method:
 * log1p(c mu) - c^2 var / (2 (1 + c mu)^2), whose error there is far below float precision. */
static double expected_log1p(double mu, double th, double w, double c) {
  if (!(mu > 0)) return 0;
  double q = mu / (mu + th), lp0 = th * log1p(-q), var = mu + mu * mu / th;
  if (lp0 < -700) {
    double a = 1 + c * mu;
    return (1 - w) * (log1p(c * mu) - c * c * var / (2 * a * a));
  }
  double p = exp(lp0), cum = p, e = 0;
  long xmax = (long)(mu + 12 * sqrt(var) + 20);
  for (long x = 0; x < xmax && cum < 1 - 1e-10; x++) {
    p *= (x + th) / (x + 1) * q;
    e += p * log1p(c * (double)(x + 1));
    cum += p;
  }
  return (1 - w) * e;
}

/* pred: the mean expression of the cells decoded from the held-out control codes + amount *
 * delta: for a count model the expectation of each gene's log1p(x / L * target) under its
 * likelihood at the cell's library L; for a Gaussian model its decode as counts, normalised */
static knobs_status predict(job *j, knobs_perturb_result *r, double *acc) {
  int G = j->G, Z = j->Z;
  for (int64_t i0 = 0; i0 < j->held.n; i0 += CHUNK) {
    int b = j->held.n - i0 < CHUNK ? (int)(j->held.n - i0) : CHUNK;
    for (int i = 0; i < b; i++)
      for (int k = 0; k < Z; k++)
        j->mu[(size_t)i * Z + k] = j->held.z[(size_t)(i0 + i) * Z + k] + (float)(j->o->amount * r->delta[k]);
    if (j->counts_model) {
      float *theta = j->xin, *pi = j->xin + G; /* xin holds (CHUNK + 1) G floats */
      knobs_status s = knobs_model_decode_counts(j->m, j->mu, b, j->held.lib + i0, j->x, theta, pi);
      if (s) return s;
      for (int i = 0; i < b; i++) {
        double c = j->held.lib[i0 + i] > 0 ? j->o->target_sum / j->held.lib[i0 + i] : 0;
        for (int g = 0; g < G; g++) {
          double pz = pi[(size_t)i * G + g], w = pz >= 0 ? 1 / (1 + exp(-pz)) : exp(pz) / (1 + exp(pz));
          acc[g] += expected_log1p(j->x[(size_t)i * G + g], theta[g], w, c);
        }
      }
      continue;
    }
    knobs_status s = knobs_model_decode(j->m, j->mu, b, j->x);
    if (s) return s;
    for (int i = 0; i < b; i++) {
      float *y = j->x + (size_t)i * G;
      if (!j->counts_model) /* a Gaussian model's decode is log1p(counts) */
        for (int g = 0; g < G; g++) y[g] = y[g] > 0 ? expm1f(y[g]) : 0.0f;
      add_normalised(acc, y, G, j->o->target_sum);
    }
  }
  for (int g = 0; g < G; g++) r->pred[g] = (float)(acc[g] / (double)j->held.n);
  return KNOBS_OK;
}

static knobs_status setup(job *j) {
  const knobs_data_info *in = knobs_data_info_get(j->d);
  const knobs_config *c = knobs_model_config(j->m);
  const knobs_perturb_opts *o = j->o;
  const char *lik = knobs_config_string(c, "likelihood");
  if (!knobs_model_has_posterior(j->m))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "perturb: model %s has no Gaussian posterior to take codes from",
                  knobs_config_string(c, "model"));
  if (!strcmp(lik, "bernoulli"))
    return kn_err(KNOBS_ERR_UNSUPPORTED, "perturb: the model has a Bernoulli likelihood (images); perturbation "
                  "needs a model of counts (nb, zinb, or gaussian on log1p counts)");
  j->counts_model = !strcmp(lik, "nb") || !strcmp(lik, "zinb");
  if (in->H != 1 || in->W != 1 || in->C != (int)knobs_config_number(c, "C") || knobs_config_number(c, "H") != 1)
    return kn_err(KNOBS_ERR_ARG, "perturb: %s has observations %dx%dx%d; the model takes %gx%gx%g (cells of as many "
                  "genes)", in->name, in->C, in->H, in->W, knobs_config_number(c, "C"), knobs_config_number(c, "H"),
                  knobs_config_number(c, "W"));
  if (!o->label || !o->control || !o->stim || !o->celltype || !o->hold_out)
    return kn_err(KNOBS_ERR_ARG, "perturb: the label, control, stim, cell-type and held-out names are all required");
  if (!(o->target_sum > 0) || !isfinite(o->target_sum) || o->top_de < 1 || !isfinite(o->amount))
    return kn_err(KNOBS_ERR_ARG, "perturb: target_sum %g (> 0), top_de %d (>= 1), amount %g (finite)", o->target_sum,
                  o->top_de, o->amount);
  if ((j->kl = find_factor(in, o->label, "label")) < 0 || (j->kt = find_factor(in, o->celltype, "cell-type")) < 0)
    return KNOBS_ERR_ARG;
  if (j->kl == j->kt) return kn_err(KNOBS_ERR_ARG, "perturb: the label and the cell type are the same factor (%s)", o->label);
  if ((j->ctrl = find_class(j->d, j->kl, o->control)) < 0 || (j->stim = find_class(j->d, j->kl, o->stim)) < 0 ||
      (j->hold = find_class(j->d, j->kt, o->hold_out)) < 0)
    return KNOBS_ERR_ARG;
  if (j->ctrl == j->stim) return kn_err(KNOBS_ERR_ARG, "perturb: control and stim are the same class (%s)", o->control);
  j->G = in->C, j->Z = knobs_model_code_dim(j->m), j->K = in->K;
  size_t G = (size_t)j->G;
  j->x = malloc(sizeof(float) * CHUNK * G), j->xin = malloc(sizeof(float) * (CHUNK + 1) * G);
  j->mu = malloc(sizeof(float) * CHUNK * (size_t)j->Z), j->fac = malloc(sizeof(int32_t) * CHUNK * (size_t)j->K);
  j->sum[0] = calloc(G * (NGROUP + 1), sizeof(double));
  if (!j->x || !j->xin || !j->mu || !j->fac || !j->sum[0]) return kn_err(KNOBS_ERR_NOMEM, "perturb: out of memory");
  for (int k = 1; k < NGROUP; k++) j->sum[k] = j->sum[0] + k * G;
  return KNOBS_OK;
}

static knobs_status check_groups(const job *j) {
  static const char *const what[NGROUP] = {"control cells of the held-out type", "stim cells of the held-out type",
                                           "control cells of the other types", "stim cells of the other types"};
  for (int k = 0; k < NGROUP; k++)
    if (!j->n[k])
      return kn_err(KNOBS_ERR_ARG, "perturb: %s has no %s (%s = %s, %s = %s/%s)%s", knobs_data_info_get(j->d)->name,
                    what[k], j->o->celltype, j->o->hold_out, j->o->label, j->o->control, j->o->stim,
                    k == HS ? ": give the whole data (the truth), not the training set that left them out" : "");
  return KNOBS_OK;
}

knobs_status knobs_perturb(knobs_model *m, knobs_data *d, const knobs_perturb_opts *o, knobs_perturb_result *out) {
  memset(out, 0, sizeof *out);
  job j;
  memset(&j, 0, sizeof j);
  j.m = m, j.d = d, j.o = o;
  knobs_perturb_result r = {0};
  knobs_status s = setup(&j);
  if (!s) s = read_cells(&j);
  if (!s) s = check_groups(&j);
  int G = j.G, Z = j.Z;
  if (!s) {
    r.G = G, r.Z = Z, r.n_top = o->top_de < G ? o->top_de : G;
    r.n_ctrl = j.n[HC], r.n_stim = j.n[HS], r.n_other_ctrl = j.n[OC], r.n_other_stim = j.n[OS];
    r.pred = malloc(sizeof(float) * G), r.truth = malloc(sizeof(float) * G), r.ctrl = malloc(sizeof(float) * G);
    r.shift = malloc(sizeof(float) * G), r.delta = malloc(sizeof(float) * Z), r.top = malloc(sizeof(int32_t) * G);
    if (!r.pred || !r.truth || !r.ctrl || !r.shift || !r.delta || !r.top) s = kn_err(KNOBS_ERR_NOMEM, "perturb: out of memory");
  }
  if (!s) s = knobs_attribute_vector(j.other.z, j.other.lab, (int)j.other.n, Z, r.delta);
  if (!s) s = predict(&j, &r, j.sum[0] + (size_t)NGROUP * G);
  if (!s) {
    ranked *rk = malloc(sizeof(ranked) * G);
    if (!rk) s = kn_err(KNOBS_ERR_NOMEM, "perturb: out of memory");
    for (int g = 0; g < G && rk; g++) {
      r.truth[g] = (float)(j.sum[HS][g] / (double)j.n[HS]);
      r.ctrl[g] = (float)(j.sum[HC][g] / (double)j.n[HC]);
      r.shift[g] = (float)(r.ctrl[g] + j.sum[OS][g] / (double)j.n[OS] - j.sum[OC][g] / (double)j.n[OC]);
    }
    for (int g = 0; g < G && rk; g++) rk[g] = (ranked){fabs((double)r.truth[g] - r.ctrl[g]), g};
    if (rk) qsort(rk, (size_t)G, sizeof *rk, by_key_desc);
    for (int g = 0; g < r.n_top && rk; g++) r.top[g] = rk[g].g;
    free(rk);
  }
  if (!s) {
    score(r.pred, &r, &r.model);
    score(r.ctrl, &r, &r.no_change);
    score(r.shift, &r, &r.mean_shift);
  }
  free(j.x), free(j.xin), free(j.mu), free(j.fac), free(j.sum[0]);
  free(j.other.z), free(j.other.lab), free(j.other.lib), free(j.held.z), free(j.held.lab), free(j.held.lib);
  if (s) {
    knobs_perturb_result_free(&r);
    return s;
  }
  *out = r;
  return KNOBS_OK;
}
