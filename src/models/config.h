/* config.h: the inside of knobs_config (opaque in knobs.h) and the descriptor tables of
 * settings. The settings every model shares are fields of the struct (config.c's table); a
 * model family keeps its own settings in a struct of its own, declared in its file with a table
 * of kn_field rows (kn_settings), and stored in the config's `family` block. Adding a family
 * touches its own file and one line of the registry; nothing here. */
#ifndef KN_CONFIG_H
#define KN_CONFIG_H
#include <stddef.h>

#include "core/core.h"

#define KN_FAMILY_BYTES 256 /* the largest family settings struct (asserted at registration) */

struct knobs_config {
  char model[32];         /* betavae, annealedvae, ... (knobs_model_names) */
  char arch[16];          /* conv | mlp */
  char data[512];         /* dataset spec the model was trained on */
  char likelihood[16];    /* bernoulli | gaussian */
  int z_dim;              /* latent dimensions ("latents" in JSON and flags) */
  int hidden;             /* mlp: hidden width */
  int C, H, W;            /* input shape (from the data) */
  int T;                  /* frames per observation (from the data): C / T channels a frame;
                           * 1 for data that is not a sequence */
  int batch;              /* training batch size */
  long steps;             /* total training steps */
  uint64_t seed;          /* every random draw derives from it */
  int threads;            /* worker threads */
  double lr, adam_beta1, adam_beta2, adam_eps; /* Adam of the model's main optimizer */
  long ckpt_every;        /* steps between checkpoints (0: only at the end) */
  long log_every;         /* steps between log lines */
  /* dataset options, kept so a run reopens the same data (see knobs_data_opts) */
  char data_factors[512]; /* labels file for user data, or "" */
  int obs_dim;            /* physics: observed channels (0 = dataset default) */
  double noise;           /* physics: observation noise (< 0 = dataset default) */
  char factor_dist[16];   /* physics: uniform | laplace | gauss ("" = default) */
  /* the training-time property penalty (docs/models.md "Property penalty") */
  char property_penalty[512]; /* property head file (.safetensors), or "" for none */
  double property_weight;     /* its weight W (0: off) */
  char init[512];             /* checkpoint whose weights start a new run, or "" (knobs_model_init_weights) */
  /* the family's settings struct (kn_settings.size bytes of it are used) */
  _Alignas(16) unsigned char family[KN_FAMILY_BYTES];
};

/* One setting: the public descriptor and where its value lives (in knobs_config for a shared
 * setting, in the family's struct for a family setting). */
typedef struct {
  knobs_field pub;
  size_t offset, size;
} kn_field;

/* A family setting `field` of struct `type`, JSON key `name`, owned by the models `owner`. */
#define KN_FIELD(type, name, kind, field, lo, hi, owner, help)                                  \
  {{name, kind, lo, hi, help, owner, 0, 0}, offsetof(type, field), sizeof(((type *)0)->field)}

/* What a family declares about its settings. */
typedef struct {
  const kn_field *fields; /* its rows */
  int n;
  size_t size;            /* sizeof its settings struct (<= KN_FAMILY_BYTES) */
  /* Fill the struct with the defaults of `model` (the block is zeroed first). */
  void (*defaults)(void *settings, const char *model);
  /* Check the family's rules on a whole config (may be NULL). */
  knobs_status (*validate)(const knobs_config *c, const void *settings);
} kn_settings;

/* The family settings block of c, as the family's struct type. */
#define KN_SETTINGS(c, type) ((type *)(void *)(c)->family)
#define KN_CSETTINGS(c, type) ((const type *)(const void *)(c)->family)

/* Reset c to every default of `model` (which must be a registered model). */
void kn_config_default(knobs_config *c, const char *model);

#endif
