/* counts.c: the negative binomial (NB) and zero-inflated NB (ZINB) likelihoods of count data,
 * as scVI defines them (scvi-tools, scvi/distributions/_negative_binomial.py: log_nb_positive,
 * log_zinb_positive, eps = 1e-8), with scVI's VAE parameterisation (scvi/module/_vae.py): the
 * decoder's logits go through a softmax over genes (px_scale), the mean is the cell's library
 * size times px_scale, theta = exp(px_r) is one learned inverse dispersion per gene, and ZINB
 * adds a dropout logit per cell and gene. Formulas in nn.h.
 *
 * Everything is computed in double. Two rewrites that change no value mathematically, only
 * rounding: log(theta+eps) - log(theta+mu+eps) = -log1p(mu / (theta+eps)) (the difference of two
 * close logs loses digits when theta >> mu, the Poisson limit), and the terms of a zero count
 * that cancel exactly (lgamma(0+theta) - lgamma(theta) - lgamma(1), digamma(theta) -
 * digamma(theta)) are left out; for small whole counts the lgamma and digamma differences are
 * a product and a sum (lg_terms, dg_terms). It does not learn anything: the caller owns px_r and the
 * optimizer; and it does not compute the library size's gradient (scVI observes it). */
#include <math.h>

#include "nn/nn.h"

#define EPS 1e-8            /* scVI's eps */
#define PAR_MIN 16384       /* elements below which the loss stays on one thread */
#define CHUNK 256           /* cells per chunk: the row statistics live on the stack */

static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }
static double sigmoid(double z) {
  double e = exp(-fabs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

double kn_digamma(double x) {
  /* psi(x) = psi(x + n) - sum_{k<n} 1/(x+k); for x >= 10 the asymptotic series
   * log x - 1/(2x) - sum B_2k / (2k x^2k) to k = 6 has error < 1e-15 (Abramowitz & Stegun 6.3.18) */
  double r = 0;
  while (x < 10) r -= 1 / x, x += 1;
  double f = 1 / (x * x);
  double t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760))))));
  return r + log(x) - 0.5 / x + t;
}

static double lgam(double x) {
  int sign;
  return lgamma_r(x, &sign); /* reentrant: lgamma() writes the global signgam */
}

/* log(x!) for x = 0..SMALL */
#define SMALL 16
static const double log_fact[SMALL + 1] = {
    0.0, 0.0, 0.693147180559945, 1.7917594692280554,
    3.178053830347945, 4.787491742782047, 6.579251212010102, 8.525161361065415,
    10.604602902745249, 12.801827480081467, 15.104412573075514, 17.502307845873887,
    19.987214495661885, 22.55216385312342, 25.191221182738683, 27.89927138384089,
    30.671860106080672};

/* A whole count x in 1..SMALL with theta < 1e6 (most counts of single-cell data): lgamma(x+theta)
 * - lgamma(theta) = log prod_{k<x} (theta+k) and digamma(x+theta) - digamma(theta) =
 * sum_{k<x} 1/(theta+k), exactly (the product stays below 1e97); both far cheaper than lgamma. */
static int small_count(double x, double th) { return x <= SMALL && th < 1e6 && x == (double)(int)x; }

/* lgamma(x+theta) - lgamma(theta) - lgamma(x+1) for x > 0 */
static double lg_terms(double x, double th) {
  if (small_count(x, th)) {
    double p = th;
    for (int k = 1; k < (int)x; k++) p *= th + k;
    return log(p) - log_fact[(int)x];
  }
  return lgam(x + th) - lgam(th) - lgam(x + 1);
}

/* digamma(x+theta) - digamma(theta) for x > 0; psi_th = digamma(theta) */
static double dg_terms(double x, double th, double psi_th) {
  if (small_count(x, th)) {
    double s = 0;
    for (int k = 0; k < (int)x; k++) s += 1 / (th + k);
    return s;
  }
  return kn_digamma(x + th) - psi_th;
}

/* One element: the value (if ll), dmu always, dtheta if dth (then psi_th, digamma of theta, is
 * set: per gene, computed once by the caller), dpi if dpi; zinb selects the model. Only what is
 * asked for is computed (the softmax backward's second pass wants dmu alone). */
typedef struct {
  double theta, psi_th;
} gene_c;

static void elem(double x, double mu, const gene_c *gc, int zinb, double pi, double *ll,
                 double *dmu, double *dth, double *dpi) {
  double th = gc->theta, tme = th + mu + EPS;
  double dL_dmu = -1 / tme;                   /* d L / d mu */
  int zero = x < EPS;
  if (zinb && zero) {
    double L = -log1p(mu / (th + EPS));       /* log(theta+eps) - log(theta+mu+eps) */
    double s = -pi + th * L, es = exp(-fabs(s)), sg = s >= 0 ? 1 / (1 + es) : es / (1 + es);
    if (ll || dpi) { /* softplus and sigmoid of -pi share exp(-|pi|) */
      double ep = exp(-fabs(pi));
      if (ll) *ll = (s > 0 ? s : 0) + log1p(es) - ((pi < 0 ? -pi : 0) + log1p(ep));
      if (dpi) *dpi = -sg + (pi <= 0 ? 1 / (1 + ep) : ep / (1 + ep));
    }
    *dmu = sg * th * dL_dmu;
    if (dth) *dth = sg * (L + th * mu / ((th + EPS) * tme));
    return;
  }
  /* NB, or the non-zero case of ZINB (which adds -softplus(-pi) - pi = -softplus(pi)) */
  *dmu = th * dL_dmu + x * (1 / (mu + EPS) - 1 / tme);
  if (dpi) *dpi = zinb ? -sigmoid(pi) : 0;
  if (!ll && !dth) return;
  double L = -log1p(mu / (th + EPS));
  double dL_dth = mu / ((th + EPS) * tme);    /* d L / d theta = 1/(th+eps) - 1/tme */
  if (ll) {
    double v = th * L + (zero ? 0 : x * (log(mu + EPS) - log(tme)));
    if (!zero) v += lg_terms(x, th);
    if (zinb) v -= softplus(pi);
    *ll = v;
  }
  if (dth) *dth = L + th * dL_dth - x / tme + (zero ? 0 : dg_terms(x, th, gc->psi_th));
}

double kn_counts_logp(double x, double mu, double theta, double pi, double *dmu, double *dtheta,
                      double *dpi) {
  gene_c gc = {theta, kn_digamma(theta)};
  double ll, a, b, c;
  elem(x, mu, &gc, !isnan(pi), pi, &ll, &a, &b, &c);
  if (dmu) *dmu = a;
  if (dtheta) *dtheta = b;
  if (dpi) *dpi = c;
  return ll;
}

typedef struct {
  const kn_counts_batch *in;
  const kn_counts_grad *g;
  int zinb;
  double coef;               /* scale / B */
  int b0, nb;                /* the chunk's cells */
  int want_dth;              /* dpx_r is wanted */
  double mx[CHUNK], sum[CHUNK], lib[CHUNK], per[CHUNK]; /* max logit, sum exp(l - max) */
  double *th, *psi;          /* with in->work: theta and digamma(theta) per gene (G each), */
  double *mu, *dth;          /* and each chunk's means and theta partials (CHUNK, G) */
} job;

/* px_scale and mu of cell b (chunk row r), gene k */
static inline double mu_of(const job *j, int r, const float *l, int k) {
  return j->lib[r] * (exp((double)l[k] - j->mx[r]) / j->sum[r]);
}

static void stats_task(void *ctx, int tid, int nt) { /* per cell: max, sum of exp, library; means */
  job *j = ctx;
  const kn_counts_batch *in = j->in;
  long lo, hi;
  kn_split(j->nb, tid, nt, &lo, &hi);
  for (long r = lo; r < hi; r++) {
    size_t o = (size_t)(j->b0 + r) * in->G;
    const float *l = in->logits + o;
    double m = l[0], s = 0, t = 0, *cmu = j->mu ? j->mu + (size_t)r * in->G : NULL;
    for (int k = 1; k < in->G; k++) m = l[k] > m ? l[k] : m;
    for (int k = 0; k < in->G; k++) {
      double e = exp((double)l[k] - m);
      s += e;
      if (cmu) cmu[k] = e;
    }
    if (in->lib) t = in->lib[j->b0 + r];
    else for (int k = 0; k < in->G; k++) t += in->x[o + k];
    KN_ASSERT(t >= 0);
    j->mx[r] = m, j->sum[r] = s, j->lib[r] = t;
    if (cmu) /* the same value as mu_of */
      for (int k = 0; k < in->G; k++) cmu[k] = t * (cmu[k] / s);
  }
}

static void gene_consts(const kn_counts_batch *in, int k, gene_c *gc, int want_psi) {
  gc->theta = exp((double)in->px_r[k]);
  gc->psi_th = want_psi ? kn_digamma(gc->theta) : 0;
}

static void theta_task(void *ctx, int tid, int nt) { /* with work: the gene constants, once */
  job *j = ctx;
  long lo, hi;
  kn_split(j->in->G, tid, nt, &lo, &hi);
  for (long k = lo; k < hi; k++) {
    gene_c gc;
    gene_consts(j->in, (int)k, &gc, j->want_dth);
    j->th[k] = gc.theta, j->psi[k] = gc.psi_th;
  }
}

/* the constants of gene k: cached, or computed */
static inline void consts_of(const job *j, int k, gene_c *gc, int want_psi) {
  if (j->th) gc->theta = j->th[k], gc->psi_th = j->psi[k];
  else gene_consts(j->in, k, gc, want_psi);
}

static void rows_task(void *ctx, int tid, int nt) { /* value, dlogits, dpi */
  job *j = ctx;
  const kn_counts_batch *in = j->in;
  float *dl = j->g ? j->g->dlogits : NULL, *dp = j->g && j->zinb ? j->g->dpi : NULL;
  long lo, hi;
  kn_split(j->nb, tid, nt, &lo, &hi);
  for (long r = lo; r < hi; r++) {
    size_t o = (size_t)(j->b0 + r) * in->G;
    const float *l = in->logits + o, *x = in->x + o;
    const float *pi = j->zinb ? in->pi + o : NULL;
    /* pass 1: the value, and a = sum_k p_k dmu_k for the softmax's backward */
    double tot = 0, a = 0;
    double *cmu = j->mu ? j->mu + (size_t)r * in->G : NULL, *cdth = j->dth ? j->dth + (size_t)r * in->G : NULL;
    for (int k = 0; k < in->G; k++) {
      gene_c gc;
      consts_of(j, k, &gc, 0);
      double mu = cmu ? cmu[k] : mu_of(j, (int)r, l, k), ll, dmu, dpi;
      elem(x[k], mu, &gc, j->zinb, pi ? pi[k] : 0, &ll, &dmu, cdth ? cdth + k : NULL, dp ? &dpi : NULL);
      tot -= ll;
      a += mu * dmu;
      if (dp) dp[o + k] += (float)(-j->coef * dpi);
    }
    j->per[r] = tot;
    if (!dl) continue;
    /* pass 2: d(-ll)/d logit_k = -mu_k (dmu_k - a / lib)   (mu_k = lib p_k) */
    double abar = j->lib[r] > 0 ? a / j->lib[r] : 0;
    for (int k = 0; k < in->G; k++) {
      gene_c gc;
      consts_of(j, k, &gc, 0);
      double mu = cmu ? cmu[k] : mu_of(j, (int)r, l, k), dmu;
      elem(x[k], mu, &gc, j->zinb, pi ? pi[k] : 0, NULL, &dmu, NULL, NULL);
      dl[o + k] += (float)(-j->coef * mu * (dmu - abar));
    }
  }
}

static void genes_task(void *ctx, int tid, int nt) { /* dpx_r = sum over cells of dtheta theta */
  job *j = ctx;
  const kn_counts_batch *in = j->in;
  long lo, hi;
  kn_split(in->G, tid, nt, &lo, &hi);
  for (long k = lo; k < hi; k++) {
    gene_c gc;
    consts_of(j, (int)k, &gc, 1);
    double acc = 0;
    for (int r = 0; r < j->nb; r++) {
      if (j->dth) { /* cached by rows_task */
        acc += j->dth[(size_t)r * in->G + k];
        continue;
      }
      size_t o = (size_t)(j->b0 + r) * in->G;
      double mu = mu_of(j, r, in->logits + o, (int)k), dmu, dth;
      elem(in->x[o + k], mu, &gc, j->zinb, j->zinb ? in->pi[o + k] : 0, NULL, &dmu, &dth, NULL);
      acc += dth;
    }
    j->g->dpx_r[k] += (float)(-j->coef * acc * gc.theta);
  }
}

double kn_counts_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale) {
  KN_ASSERT(in && in->B >= 1 && in->G >= 1 && in->x && in->logits && in->px_r);
  job j; /* with 8 KB of row statistics */
  j.in = in, j.g = g, j.zinb = in->pi != NULL, j.coef = (double)scale / in->B;
  j.want_dth = g && g->dpx_r;
  j.th = j.psi = j.mu = j.dth = NULL;
  int par = (long)in->B * in->G >= PAR_MIN && kn_pool_size(p) > 1;
  if (in->work) {
    size_t G = (size_t)in->G, rows = (size_t)(in->B < CHUNK ? in->B : CHUNK);
    j.th = in->work, j.psi = j.th + G, j.mu = j.psi + G, j.dth = j.want_dth ? j.mu + rows * G : NULL;
    if (par) kn_pool_run(p, theta_task, &j);
    else theta_task(&j, 0, 1);
  }
  double total = 0;
  for (int b0 = 0; b0 < in->B; b0 += CHUNK) {
    j.b0 = b0, j.nb = in->B - b0 < CHUNK ? in->B - b0 : CHUNK;
    if (par) kn_pool_run(p, stats_task, &j), kn_pool_run(p, rows_task, &j);
    else stats_task(&j, 0, 1), rows_task(&j, 0, 1);
    if (g && g->dpx_r) {
      if (par) kn_pool_run(p, genes_task, &j);
      else genes_task(&j, 0, 1);
    }
    for (int r = 0; r < j.nb; r++) {
      total += j.per[r];
      if (g && g->per) g->per[b0 + r] = j.per[r];
    }
  }
  return total / in->B;
}

size_t kn_counts_work_size(int B, int G) {
  size_t rows = (size_t)(B < CHUNK ? B : CHUNK);
  return 2 * (size_t)G + 2 * rows * (size_t)G;
}

double kn_nb_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale) {
  kn_counts_batch nb = *in;
  nb.pi = NULL;
  return kn_counts_loss(p, &nb, g, scale);
}

double kn_zinb_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale) {
  KN_ASSERT(in->pi);
  return kn_counts_loss(p, in, g, scale);
}

double knobs_counts_logp(double x, double mu, double theta, double pi_logit, double *dmu, double *dtheta,
                         double *dpi) {
  return kn_counts_logp(x, mu, theta, pi_logit, dmu, dtheta, dpi);
}
