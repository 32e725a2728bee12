/* model.h: what a model family implements, and the VAE core the families share.
 *
 * A model is a kn_net (one parameter block, one gradient block, buffers), its stacks, its
 * optimizers, and buffers for one training batch, all allocated in knobs_model_create. A
 * family (one file per family) fills a kn_model_ops: `build` declares its stacks and extra
 * state, `step` does one optimisation step, and optional hooks override the defaults (the VAE
 * encoder's mean as representation, the decoder for decode). The registry (registry.c) maps
 * names to ops. */
#ifndef KN_MODEL_H
#define KN_MODEL_H
#include "data/data.h"
#include "models/config.h"
#include "nn/nn.h"

#define KN_MAX_STACKS 6
#define KN_MAX_OPT 3
/* the library size at which knobs_model_decode gives a count model's mean: per 10,000 counts */
#define KN_COUNTS_DECODE_LIB 1e4f

typedef struct kn_model_ops kn_model_ops;

/* The training-time property penalty (prop_penalty.c, docs/models.md "Property penalty"): a
 * property head (cfg.property_penalty) whose mean prediction on the codes of decoded prior
 * samples is added to the loss with weight cfg.property_weight. Buffers for B draws. */
typedef struct {
  knobs_head *head;   /* loaded at model creation if cfg.property_penalty is set, else NULL */
  int on;             /* head loaded and cfg.property_weight != 0: the pass runs each step */
  float *z;           /* (B,Z) prior draws */
  float *x;           /* (B,D) their decodes after the sigmoid (Bernoulli models), decoder layout */
  float *mu, *dmu;    /* (B,Z) posterior means of the decodes, and d head / d mu */
  double *y;          /* (B) head predictions */
  double value;       /* mean prediction of the last pass */
} kn_prop_penalty;

struct knobs_model {
  knobs_config cfg;
  const kn_model_ops *ops;
  kn_pool *pool;
  kn_net net;
  kn_stack *stacks[KN_MAX_STACKS]; /* all stacks, in declaration (= init) order */
  int want_dx[KN_MAX_STACKS];
  int nstacks;
  kn_stack enc, dec;               /* the VAE parts (unused by models without them) */
  int has_vae;
  kn_adam opt[KN_MAX_OPT];         /* optimizer k updates parameter group k */
  char opt_name[KN_MAX_OPT][16];
  int nopt;
  long step;                       /* optimisation steps taken */
  int B;                           /* batch size (cfg.batch) */
  int cap;                         /* examples the stacks and batch buffers hold: B unless the
                                      family's build() raises it (pairs need 2B) */
  int Z;                           /* latent dimensions */
  size_t D;                        /* C*H*W */
  int image;                       /* H > 1 || W > 1 */
  /* one training batch (cap examples): */
  float *x;                        /* (cap,C,H,W) observations */
  float *xt;                       /* (C,cap,H,W) transpose of a target, for conv with C > 1 */
  int32_t *fac;                    /* (cap,K) factors drawn with the batch */
  float *mu, *lv, *z, *eps;        /* (cap,Z) posterior and sample */
  float *dmu, *dlv;                /* (cap,Z) gradients */
  double *per;                     /* (cap) per-example scratch */
  double *kl_dim;                  /* (Z) per-dimension KL of the last forward */
  void *impl;                      /* family-specific state */
  kn_prop_penalty prop;            /* the property penalty (prop.on == 0: none) */
  /* count likelihoods (cfg.likelihood nb or zinb; docs/models.md "Count likelihoods"): */
  int counts;                      /* 0: none, 1: NB, 2: ZINB */
  int px_r;                        /* index of the parameter decoder.px_r (G), log theta */
  float *xl;                       /* (cap,D) log1p of the input: what the encoder reads */
  double *cwork;                   /* kn_counts_work_size(cap, D) doubles for the loss */
  float *clog, *cpi;               /* ZINB: (cap,D) each, the fused head split into logits, pi */
  float *cdl, *cdpi;               /* ZINB: (cap,D) each, their gradients */
  /* Test seam (tests/test_ref.c, test_models.c): when set, the batch of step t is
   * test_x + (t % test_nx) B D and the noise of step t is test_eps + (t % test_neps) B Z,
   * instead of draws from the rng. */
  const float *test_x, *test_eps;
  int test_nx, test_neps;
  /* data-parallel training (knobs_model_set_parallel): size 0 or 1 is one process; else B is
   * this process's shard of cfg.batch */
  knobs_parallel par;
  int par_failed; /* a sum failed during the step */
};

struct kn_model_ops {
  const char *name;
  const char *describe;
  const char *loss;       /* the loss in one line ("recon + beta * KL") */
  /* The family's own settings: their table, struct size, defaults and rules. */
  const kn_settings *settings;
  /* 1 if step() draws its own observations (pairs); otherwise knobs_model_train_step draws the
   * step's batch into m->x before calling it. */
  int own_batch;
  /* 1 if step() goes through kn_vae_forward, which applies the property penalty; config
   * validation refuses a property penalty for the other families. */
  int property_penalty;
  /* 1 if the loss is a batch mean of per-example terms, so that shards of a batch on several
   * processes, their gradients summed, give the gradient of the whole batch
   * (knobs_model_set_parallel) */
  int batch_separable;
  /* Settings the family takes from the data, as C, H, W are (knobs_config_from_data calls it
   * last); an error if the data cannot serve the family (ivae: no factor to condition on). May
   * be NULL. */
  knobs_status (*config_from_data)(knobs_config *c, const knobs_data_info *in);
  /* Declare stacks and parameters (before allocation); may set m->impl. The default VAE is
   * declared by kn_vae_declare, which most families call first. */
  knobs_status (*build)(knobs_model *m);
  /* Called after allocation and initialisation (e.g. to allocate family buffers). May be NULL. */
  knobs_status (*ready)(knobs_model *m);
  /* One optimisation step: knobs_model_train_step has zeroed every gradient and drawn the batch
   * (unless own_batch), and counts the step afterwards; the rng streams are those of
   * (seed, m->step). */
  knobs_status (*step)(knobs_model *m, knobs_data *d, knobs_terms *t);
  /* Optional overrides; NULL means the VAE default. */
  knobs_status (*encode)(knobs_model *m, const float *x, int n, float *mean, float *logvar);
  knobs_status (*decode)(knobs_model *m, const float *z, int n, float *x);
  int (*code_dim)(const knobs_model *m);
  void (*free_impl)(knobs_model *m);
};

/* registry.c */
const kn_model_ops *kn_model_ops_find(const char *name);

/* model.c: the VAE core */
/* Declare encoder and decoder for cfg.arch (conv or mlp) with the PyTorch names of
 * docs/formats.md, optimizer group `group`. */
void kn_vae_declare(knobs_model *m, int group);
/* Add a stack to the model (declaration order is initialisation order). */
void kn_model_add_stack(knobs_model *m, kn_stack *s, int want_dx);
/* Zero all parameter gradients and the VAE stacks' activation gradients. */
void kn_model_zero_grad(knobs_model *m);
/* Draw the batch of the current step into m->x (and m->fac). */
knobs_status kn_model_batch(knobs_model *m, knobs_data *d);
/* KNOBS_ERR_ARG (naming both shapes) unless d's observations have the model's input shape. */
knobs_status kn_model_check_shape(const knobs_model *m, const knobs_data *d);
/* The standard VAE forward on the step's batch m->x: encode, sample with the step's noise,
 * decode, and return the reconstruction loss (its gradient in the decoder's output gradient). */
knobs_status kn_vae_forward(knobs_model *m, double *recon);
/* Encoder forward on m->x (B examples): m->mu, m->lv. */
void kn_vae_encode_batch(knobs_model *m, const float *x, int B);
/* The rng of stream `stream` (KN_STREAM_*) at the current step; `salt` separates several
 * draws of one step. */
void kn_model_rng(const knobs_model *m, uint64_t stream, uint64_t salt, kn_rng *r);
/* z = mu + exp(lv/2) eps, eps ~ N(0, I) from r, for B examples. */
void kn_vae_sample(knobs_model *m, int B, kn_rng *r);
/* Decoder forward on m->z and the reconstruction loss against x (B examples); adds the
 * gradient (times `scale`) into the decoder's output gradient. Per-example terms to m->per. */
double kn_vae_decode_loss(knobs_model *m, const float *x, int B, float scale, int with_grad);
/* The standard VAE tail: decoder backward, reparameterization backward into m->dmu/m->dlv
 * (which already hold the regulariser's gradients), encoder backward. */
void kn_vae_backward(knobs_model *m, int B);
/* prop_penalty.c: open loads the head of cfg.property_penalty (if set), checks its width and
 * marks the encoder want_dx when the penalty is on (after build, before kn_net_alloc); alloc
 * sizes the pass's buffers (after kn_net_alloc); free releases both; pass is the penalty of
 * one step (kn_vae_forward calls it before the main forward). */
knobs_status kn_prop_penalty_open(knobs_model *m);
knobs_status kn_prop_penalty_alloc(knobs_model *m);
void kn_prop_penalty_free(knobs_model *m);
knobs_status kn_prop_penalty_pass(knobs_model *m);
/* The input the encoder reads: x itself, or log1p(x) in m->xl for a count likelihood (scVI's
 * log_variational); B <= cap. */
const float *kn_vae_input(knobs_model *m, const float *x, int B);
/* Adam step of optimizer k. */
void kn_model_opt_step(knobs_model *m, int k);
/* Append a loss term to t (no-op if t is NULL). */
void kn_terms_add(knobs_terms *t, const char *name, double v);

/* betavae.c: the annealed VAE's capacity C(t) after `step` steps (c an annealedvae config). */
double kn_annealed_capacity(const knobs_config *c, long step);

/* The families (one file each). */
extern const kn_model_ops kn_model_betavae, kn_model_annealedvae;
/* issue 4 (one file each: tcvae.c, factorvae.c, dipvae.c, infogan.c, weak.c) */
extern const kn_model_ops kn_model_tcvae, kn_model_factorvae, kn_model_dipvae1, kn_model_dipvae2,
    kn_model_infogan, kn_model_gvae, kn_model_mlvae, kn_model_adagvae, kn_model_adamlvae;
extern const kn_model_ops kn_model_ivae; /* issue 13: ivae.c */
/* issue 14: dsvae.c */
extern const kn_model_ops kn_model_dsvae;

#endif
