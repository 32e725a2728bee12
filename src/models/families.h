/* families.h: internals shared by the issue-4 model families (tcvae.c, factorvae.c, dipvae.c,
 * infogan.c, weak.c) and ivae.c and their tests: the minibatch total-correlation estimators, the standard
 * VAE forward, and test seams for randomness a family draws beyond the batch and the noise.
 * Nothing here is public API. */
#ifndef KN_FAMILIES_H
#define KN_FAMILIES_H
#include "models/model.h"

/* ---- tcvae.c: minibatch estimators of log q(z) (Chen et al. 2018, appendix C) ------------- */
/* Batch means (nats) of the decomposition of E[log q(z|x) - log p(z)]:
 *   mi = E[log q(z|x) - log q(z)]        index-code mutual information
 *   tc = E[log q(z) - sum_d log q(z_d)]   total correlation
 *   dw = E[sum_d log q(z_d) - log p(z)]   dimension-wise KL */
typedef struct {
  double logqzx, logqz, logprod, logpz; /* batch means of the log-densities */
  double mi, tc, dw;
} kn_tc_terms;

/* Doubles of scratch kn_tc_estimate needs for M samples of Z dimensions. */
size_t kn_tc_scratch(int M, int Z);
/* The estimate for M samples z (M,Z) of posteriors N(mu, exp(lv)) (M,Z) from a dataset of N
 * observations, with log q(z_i) = logsumexp_j (w_ij + log q(z_i|x_j)) and log q(z_id) likewise
 * per dimension, where w is
 *   mws (mss = 0): w_ij = -log(N M) for all j (minibatch weighted sampling, as Chen et al.'s
 *       code: biased upward by about (Z-1) log M to (Z-1) log N, see docs/models.md);
 *   mss (mss = 1): w_ii = -log N, w_{i,i+1 mod M} = log((N-M+1) / (N (M-1))), otherwise
 *       -log(M-1) (minibatch stratified sampling: each row sums to 1; needs M >= 2, N >= M).
 * Log-densities and sums are in double. If dz/dmu/dlv are non-NULL, the gradient of
 * scale * (a mi + b tc + g dw) is ADDED to them (z taken as an independent input: the caller
 * chains dz through the reparameterization). */
void kn_tc_estimate(const float *z, const float *mu, const float *lv, int M, int Z, double N, int mss,
                    double a, double b, double g, float scale, float *dz, float *dmu, float *dlv,
                    double *scratch, kn_tc_terms *out);

/* ---- infogan.c --------------------------------------------------------------------------- */
/* n generator samples (n,C,H,W) with every code drawn from its prior (noise and continuous
 * codes U(-1,1), a uniform category) with the rng of (seed, KN_STREAM_EVAL), batch norm in
 * eval mode: what the GAN generates, unlike knobs_model_decode's fixed noise and category.
 * KNOBS_ERR_ARG if m is not an InfoGAN. */
knobs_status kn_infogan_sample(knobs_model *m, int n, uint64_t seed, float *x);

/* ---- ivae.c: the KL to a learned Gaussian prior ------------------------------------------- */
/* Posteriors N(mu, exp(lv)) and priors N(pm, exp(plv)), each (B,Z); pm NULL is a zero mean.
 * Gradient outputs may be NULL (dpm must be NULL when pm is). */
typedef struct {
  const float *mu, *lv, *pm, *plv;
  float *dmu, *dlv, *dpm, *dplv;
} kn_kl_pair;
/* KL(N(mu, exp(lv)) || N(pm, exp(plv))) per example
 *   = 0.5 sum_d (plv - lv + (exp(lv) + (mu - pm)^2) exp(-plv) - 1),
 * its batch mean returned (sums in double), per-dimension batch means to kl_dim (Z) if non-NULL;
 * the gradient of scale * that mean is ADDED to the non-NULL outputs:
 *   dmu += s (mu - pm) e^-plv,  dpm -= s (mu - pm) e^-plv,  dlv += s (e^(lv - plv) - 1) / 2,
 *   dplv += s (1 - (e^lv + (mu - pm)^2) e^-plv) / 2,   s = scale / B. */
double kn_gauss_kl_prior(const kn_kl_pair *k, double *kl_dim, int B, int Z, float scale);

/* ---- test seams (tests/test_models_*.c) -------------------------------------------------- */
/* factorvae: while m->test_x is set, the second batch of step t is test batch (t+1) % test_nx
 * and its noise test noise (t+1) % test_neps. With perm set, the dimension-wise permutation
 * of step t is perm + (t % n) Z B: column d of the permuted codes is row perm[d B + b] of the
 * second batch's codes (instead of permutations from the rng). */
void kn_factorvae_test_perm(knobs_model *m, const int32_t *perm, int n);
/* gvae, mlvae, adagvae, adamlvae: while m->test_x is set, the pairs of step t are test batch
 * t % test_nx of 2B observations (the B first of each pair, then the B second ones) and the
 * noise is 2B Z floats per step. gvae, mlvae then need a mask: the latent dimensions that
 * differ within pair p of step t are those with mask[(t % n) B Z + p Z + d] != 0 (instead of
 * the factors changed by the pair draw). */
void kn_weak_test_mask(knobs_model *m, const uint8_t *mask, int n);
/* ivae: while set, the classes u of step t are u + (t % n) B (instead of the data's aux factor). */
void kn_ivae_test_aux(knobs_model *m, const int32_t *u, int n);

#endif
