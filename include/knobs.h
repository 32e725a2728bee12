/* knobs.h: the public API of libknobs, disentangled representation learning in C11.
 *
 * Conventions (see docs/architecture.md):
 * - Every fallible call returns a knobs_status; on failure knobs_last_error() holds a detail
 *   naming the file, the offset or value and what was expected. The library never exits.
 * - Objects are opaque handles with _open/_create/_load and _free; _free(NULL) is a no-op.
 *   Whoever creates frees. Buffers passed in are owned by the caller. Every buffer or string
 *   the library returns to the caller is freed with knobs_free().
 * - Only the declarations marked KNOBS_API are exported from libknobs.so (built with
 *   -fvisibility=hidden); every function and data declaration here carries it.
 * - Shapes are written outermost first as in PyTorch/NumPy: images (N,C,H,W) float32 in [0,1].
 * - Randomness comes only from explicit seeds; the same seed and thread count give the same
 *   bytes. Output files are written to a temporary name and renamed.
 * - Each section below is owned by one module; the CLI (src/cli) includes nothing else.
 *
 * Usage: train a few steps on the built-in dSprites, encode, score. A complete program;
 * tests/test_install.sh compiles it from this comment against the installed library
 * (cc example.c $(pkg-config --cflags --libs knobs)).
 *
 *   #include <stdio.h>
 *   #include <stdlib.h>
 *   #include <knobs.h>
 *
 *   int main(void) {
 *     knobs_data *d = NULL; knobs_config *c = NULL; knobs_model *m = NULL; knobs_result *r = NULL;
 *     knobs_array codes = {0}, factors = {0};
 *     knobs_status s = knobs_data_open("dsprites", NULL, &d);
 *     if (!s) s = knobs_config_create("betavae", &c);
 *     if (!s) s = knobs_config_set(c, "arch", "mlp");
 *     if (!s) s = knobs_config_set(c, "latents", "4");
 *     if (!s) s = knobs_config_from_data(c, d);   // input shape from the data
 *     if (!s) s = knobs_config_validate(c);
 *     if (!s) s = knobs_model_create(c, &m);
 *     for (int step = 0; !s && step < 20; step++) s = knobs_model_train_step(m, d, NULL);
 *     const knobs_data_info *in = s ? NULL : knobs_data_info_get(d);
 *     int n = 500;
 *     float *x = in ? malloc(sizeof(float) * n * in->C * in->H * in->W) : NULL;
 *     if (!s) s = x ? KNOBS_OK : KNOBS_ERR_NOMEM;
 *     if (!s) s = knobs_array_alloc(&codes, KNOBS_F32, 2, (int64_t[]){n, knobs_model_code_dim(m)});
 *     if (!s) s = knobs_array_alloc(&factors, KNOBS_I32, 2, (int64_t[]){n, in->K});
 *     if (!s) s = knobs_data_draw(d, n, 1, 0, x, factors.data);   // seed 1, stream 0
 *     if (!s) s = knobs_model_encode(m, x, n, codes.data, NULL);  // posterior means (n,Z)
 *     if (!s) s = knobs_metrics_arrays(&codes, &factors, NULL, "mig,dci", NULL, &r);
 *     char *json = s ? NULL : knobs_result_json(r);
 *     if (json) printf("%s\n", json);
 *     else fprintf(stderr, "knobs: %s\n", s ? knobs_last_error() : "out of memory");
 *     int rc = json ? 0 : 1;
 *     knobs_free(json); free(x); knobs_array_free(&codes); knobs_array_free(&factors);
 *     knobs_result_free(r); knobs_model_free(m); knobs_config_free(c); knobs_data_free(d);
 *     return rc;
 *   }
 *
 * (end of usage example)
 */
#ifndef KNOBS_H
#define KNOBS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported symbols of the shared library; everything else is hidden. */
#ifndef KNOBS_API
#if defined(__GNUC__) || defined(__clang__)
#define KNOBS_API __attribute__((visibility("default")))
#else
#define KNOBS_API
#endif
#endif

#define KNOBS_VERSION "0.2.0" /* knobs_version() returns the library's; compare them */
#define KNOBS_VERSION_MAJOR 0
#define KNOBS_VERSION_MINOR 2
#define KNOBS_VERSION_PATCH 0
/* One number for #if tests: MAJOR * 10000 + MINOR * 100 + PATCH (0.2.0 is 200). */
#define KNOBS_VERSION_NUMBER \
  (KNOBS_VERSION_MAJOR * 10000 + KNOBS_VERSION_MINOR * 100 + KNOBS_VERSION_PATCH)

/* ==== status (src/core) =================================================================== */
typedef enum {
  KNOBS_OK = 0,
  KNOBS_ERR_ARG,         /* a value out of range, an unknown name, inconsistent sizes */
  KNOBS_ERR_IO,          /* a file cannot be opened, read, written or renamed */
  KNOBS_ERR_FORMAT,      /* a file is truncated, corrupt, or not the format it claims */
  KNOBS_ERR_NOMEM,       /* an allocation failed */
  KNOBS_ERR_DATA,        /* data that cannot be used: NaN/Inf, empty, a constant factor */
  KNOBS_ERR_UNSUPPORTED, /* a valid request this build does not handle */
  KNOBS_ERR_INTERRUPTED  /* stopped on request (Ctrl-C); state was saved */
} knobs_status;

/* The detail of the last failure on this thread ("no error detail" if none). */
KNOBS_API const char *knobs_last_error(void);
KNOBS_API knobs_status knobs_last_status(void);
KNOBS_API void knobs_clear_error(void);
KNOBS_API const char *knobs_status_name(knobs_status s);
KNOBS_API const char *knobs_version(void);
/* Free a buffer or string the library returned (knobs_config_to_json, knobs_result_json,
 * knobs_result_table, knobs_png_read's pixels, knobs_image_grid's output). NULL is a no-op.
 * Handles have their own _free functions (knobs_model_free, knobs_data_free, ...), arrays
 * knobs_array_free. Use it rather than free(): the library and the caller may not share one
 * C runtime's heap. */
KNOBS_API void knobs_free(void *p);

/* ==== arrays: .npy / .npz (src/io/npy.c) =================================================== */
typedef enum {
  KNOBS_F32 = 0,
  KNOBS_F64,
  KNOBS_I64,
  KNOBS_I32,
  KNOBS_I16,
  KNOBS_I8,
  KNOBS_U8,
  KNOBS_U16,
  KNOBS_U32,
  KNOBS_U64,
  KNOBS_BOOL
} knobs_dtype;

#define KNOBS_MAX_DIMS 8
typedef struct {
  knobs_dtype dtype;
  int ndim;
  int64_t shape[KNOBS_MAX_DIMS];
  void *data; /* C order, native (little-endian) bytes; owned by the array */
} knobs_array;

KNOBS_API size_t knobs_dtype_size(knobs_dtype t);
KNOBS_API const char *knobs_dtype_name(knobs_dtype t);    /* "float32", "int64", ... */
KNOBS_API int64_t knobs_array_count(const knobs_array *a); /* product of the shape */
/* Allocate a zeroed array; on failure returns KNOBS_ERR_NOMEM and leaves `a` empty. */
KNOBS_API knobs_status knobs_array_alloc(knobs_array *a, knobs_dtype t, int ndim, const int64_t *shape);
KNOBS_API void knobs_array_free(knobs_array *a); /* frees data and zeroes the struct */
/* Element i (flat, C order) as double, whatever the dtype. */
KNOBS_API double knobs_array_get(const knobs_array *a, int64_t i);
/* Convert to a newly allocated array of dtype `t` (values cast as NumPy's astype would). */
KNOBS_API knobs_status knobs_array_convert(const knobs_array *a, knobs_dtype t, knobs_array *out);

/* Read a .npy file (format 1.0-3.0; any byte order; C or Fortran order, returned in C order).
 * Refuses truncated files, headers that lie about the size, object dtypes. */
KNOBS_API knobs_status knobs_npy_read(const char *path, knobs_array *out);
/* Write a .npy file (format 1.0, little-endian, C order) atomically. */
KNOBS_API knobs_status knobs_npy_write(const char *path, const knobs_array *a);
/* Read member `name` (with or without ".npy") of a .npz (zip; stored or deflate). */
KNOBS_API knobs_status knobs_npz_read(const char *path, const char *name, knobs_array *out);
/* List the members of a .npz: *names is an array of *n strings; free with knobs_npz_names_free. */
KNOBS_API knobs_status knobs_npz_list(const char *path, char ***names, int *n);
KNOBS_API void knobs_npz_names_free(char **names, int n);
/* Write n arrays to a .npz atomically; deflate-compressed if `compress`. */
KNOBS_API knobs_status knobs_npz_write(const char *path, const char *const *names, const knobs_array *arrays,
                             int n, int compress);

/* ==== images: PNG, GIF, grids (src/io/image.c) ============================================= */
/* 8-bit PNG of h rows of w pixels with `channels` 1 (gray), 3 (RGB) or 4 (RGBA), written
 * atomically. */
KNOBS_API knobs_status knobs_png_write(const char *path, const uint8_t *pixels, int w, int h, int channels);
/* The same into a caller-supplied sink (for tests that check bytes in memory). */
typedef int (*knobs_write_fn)(void *ctx, const void *data, size_t n); /* returns 0 on success */
KNOBS_API knobs_status knobs_png_write_to(knobs_write_fn fn, void *ctx, const uint8_t *pixels, int w, int h,
                                int channels);
/* Read an 8-bit or 16-bit PNG as 8-bit pixels; *channels is 1, 2, 3 or 4 as stored (palette
 * expanded to RGB(A)). Free *pixels with knobs_free. */
KNOBS_API knobs_status knobs_png_read(const char *path, uint8_t **pixels, int *w, int *h, int *channels);

/* Tile n images (n,C,H,W) float in [0,1] (C = 1 or 3) into a grid of `cols` columns with
 * `pad` pixels of `pad_value` between tiles; *out is (*gh, *gw, C) interleaved uint8, freed
 * with knobs_free. Values outside [0,1] are clamped; NaN becomes 0. */
KNOBS_API knobs_status knobs_image_grid(const float *imgs, int n, int C, int H, int W, int cols, int pad,
                              float pad_value, uint8_t **out, int *gw, int *gh);
/* Animated GIF of `frames` frames, each (C,H,W) float in [0,1], C = 1 or 3, looping forever,
 * `delay_cs` hundredths of a second per frame, written atomically. Colour frames are reduced to
 * a fixed 6x7x6 palette. */
KNOBS_API knobs_status knobs_gif_write(const char *path, const float *frames, int n_frames, int C, int H,
                             int W, int delay_cs);

/* ==== datasets (src/data) ================================================================== */
typedef struct knobs_data knobs_data;

#define KNOBS_MAX_FACTORS 16
typedef struct {
  char name[64];          /* "dsprites", "dsprites:color", a file name ... */
  int C, H, W;            /* observation shape; vector data has H = W = 1 and C = features */
  int64_t n;              /* distinct observations (product of factor sizes for a grid) */
  int K;                  /* ground-truth factors; 0 when the data has none */
  int factor_sizes[KNOBS_MAX_FACTORS];
  char factor_names[KNOBS_MAX_FACTORS][32];
  int is_image;           /* 1 for images in [0,1], 0 for vectors (any real values) */
  int binary;             /* 1 if every observation value is 0 or 1 (Bernoulli is exact) */
  int has_render;         /* render(factors) works for any factor vector */
  char note[256];         /* a caution for the user, "" if none (e.g. Gaussian physics factors:
                           * a linear mixture is not identifiable) */
  uint8_t factor_continuous[KNOBS_MAX_FACTORS]; /* 1 if factor k's classes are bins of a
                           * continuous value (knobs_data_draw_values gives the values) */
} knobs_data_info;

typedef struct {
  int threads;            /* rendering threads (>= 1) */
  uint64_t seed;          /* for datasets with random structure (physics' mixing matrix) */
  const char *factors;    /* optional labels file (.npy or .csv) for user data, or NULL */
  int obs_dim;            /* physics: observed channels (0 = default 10) */
  double noise;           /* physics: relative observation noise (< 0 = default 0.05) */
  const char *factor_dist;/* physics: "uniform" (default), "laplace" or "gauss" */
} knobs_data_opts;
KNOBS_API void knobs_data_opts_default(knobs_data_opts *o);

/* Open a dataset by name ("dsprites", see knobs_data_names) or by path to a supported file.
 * `opts` may be NULL for the defaults. */
KNOBS_API knobs_status knobs_data_open(const char *spec, const knobs_data_opts *opts, knobs_data **out);
KNOBS_API void knobs_data_free(knobs_data *d);
KNOBS_API const knobs_data_info *knobs_data_info_get(const knobs_data *d);
/* The built-in dataset names, NULL-terminated, and a one-line description of each. */
KNOBS_API const char *const *knobs_data_names(void);
KNOBS_API const char *knobs_data_describe(const char *name);
/* The files knobs_data_open reads, NULL-terminated, one line each ("pattern: what it is"). */
KNOBS_API const char *const *knobs_data_file_types(void);
/* n factor vectors (n,K) of class indices drawn as the dataset's generative process does
 * (independent uniform over each factor's classes unless the dataset says otherwise). */
KNOBS_API knobs_status knobs_data_sample_factors(knobs_data *d, int n, uint64_t seed, uint64_t stream,
                                       int32_t *factors);
/* Observations (n,C,H,W) for n factor vectors (n,K). KNOBS_ERR_ARG for a class out of range. */
KNOBS_API knobs_status knobs_data_render(knobs_data *d, const int32_t *factors, int n, float *obs);
/* Observations by index in [0, info.n); factors (n,K) too if non-NULL and K > 0. */
KNOBS_API knobs_status knobs_data_get(knobs_data *d, const int64_t *idx, int n, float *obs,
                            int32_t *factors);
/* n observations drawn as training draws them, with the rng of (seed, stream): factors
 * sampled then rendered for ground-truth data, uniform indices otherwise; their factors
 * (n,K) to `factors` if non-NULL and K > 0. */
KNOBS_API knobs_status knobs_data_draw(knobs_data *d, int n, uint64_t seed, uint64_t stream, float *obs,
                             int32_t *factors);
/* As knobs_data_draw (same observations and factors for the same seed and stream), plus the
 * factor values (n,K) to `values` if non-NULL: the exact continuous draws for datasets with
 * continuous factors (info.factor_continuous), knobs_data_factor_value of the class otherwise. */
KNOBS_API knobs_status knobs_data_draw_values(knobs_data *d, int n, uint64_t seed, uint64_t stream,
                                    float *obs, int32_t *factors, double *values);
/* The mixing matrix A (C,K), row-major, of a dataset generated as x = A f + noise (physics), into
 * a caller buffer of C*K doubles; KNOBS_ERR_UNSUPPORTED for datasets without one. */
KNOBS_API knobs_status knobs_data_mixing(const knobs_data *d, double *A);
/* Write observations to `obs_path` (.npy): every observation in index order if n <= 0, else n
 * drawn as knobs_data_draw(d, n, seed, 0) draws them. Images are (N,C,H,W), vectors (N,F);
 * dtype KNOBS_F32, or KNOBS_U8 for images (round(255 v)). Factors (N,K) int64 to
 * `factors_path` and factor values (N,K) float64 to `values_path` if non-NULL. Streams in
 * chunks (memory does not grow with n); files are written atomically. */
KNOBS_API knobs_status knobs_data_export(knobs_data *d, int64_t n, uint64_t seed, knobs_dtype dtype,
                               const char *obs_path, const char *factors_path,
                               const char *values_path);
/* Flat index of a factor vector in the row-major factor grid, and back. */
KNOBS_API int64_t knobs_data_index(const knobs_data *d, const int32_t *factors);
KNOBS_API void knobs_data_factors_of(const knobs_data *d, int64_t index, int32_t *factors);
/* The continuous value of class c of factor k (e.g. scale 0.5..1); the class index if none. */
KNOBS_API double knobs_data_factor_value(const knobs_data *d, int k, int c);

/* ==== model configuration (src/models/config.c) ============================================ */
/* Every hyperparameter of every model, with one descriptor table (knobs_config_fields) that
 * drives the CLI flags, the JSON config of a run and the checkpoint metadata. */
typedef struct {
  char model[32];         /* betavae, annealedvae, ... (knobs_model_names) */
  char arch[16];          /* conv | mlp */
  char data[512];         /* dataset spec the model was trained on */
  char likelihood[16];    /* bernoulli | gaussian */
  int z_dim;              /* latent dimensions ("latents" in JSON and flags) */
  int hidden;             /* mlp: hidden width */
  int C, H, W;            /* input shape (from the data) */
  int batch;              /* training batch size */
  long steps;             /* total training steps */
  uint64_t seed;          /* every random draw derives from it */
  int threads;            /* worker threads */
  double lr, adam_beta1, adam_beta2, adam_eps; /* Adam for the VAE */
  double beta;            /* betavae: weight of the KL */
  double gamma;           /* annealedvae: weight of |KL - C| */
  double capacity;        /* annealedvae: final capacity C in nats */
  long capacity_steps;    /* annealedvae: steps over which C rises linearly from 0 */
  long ckpt_every;        /* steps between checkpoints (0: only at the end) */
  long log_every;         /* steps between log lines */
  /* dataset options, kept so a run reopens the same data (see knobs_data_opts) */
  char data_factors[512]; /* labels file for user data, or "" */
  int obs_dim;            /* physics: observed channels (0 = dataset default) */
  double noise;           /* physics: observation noise (< 0 = dataset default) */
  char factor_dist[16];   /* physics: uniform | laplace | gauss ("" = default) */
  /* ---- issue 4 models add their fields below this line ---- */
  double tcvae_alpha;      /* tcvae: weight of the index-code mutual information */
  double tcvae_beta;       /* tcvae: weight of the total correlation */
  double tcvae_gamma;      /* tcvae: weight of the dimension-wise KL */
  char estimator[8];       /* tcvae: log q(z) estimator, mss | mws */
  double factorvae_gamma;  /* factorvae: weight of the discriminator's total-correlation estimate */
  double disc_lr, disc_beta1, disc_beta2; /* factorvae: Adam of the discriminator */
  int disc_hidden, disc_layers; /* factorvae: the discriminator's hidden width and depth */
  double lambda_od;        /* dipvae1, dipvae2: weight of the off-diagonal covariance penalty */
  double lambda_d;         /* dipvae1, dipvae2: weight of the diagonal penalty (< 0: the model's
                              default, 10 lambda_od for dipvae1 and lambda_od for dipvae2) */
  int cat;                 /* infogan: classes of the categorical code (0: none) */
  int cont;                /* infogan: continuous codes (the representation) */
  int noise_dim;           /* infogan: incompressible noise dimensions */
  double info_lambda;      /* infogan: weight of the mutual-information term */
  double gan_g_lr, gan_d_lr, gan_beta1, gan_beta2; /* infogan: Adam of generator, discriminator */
  int k;                   /* gvae, mlvae, adagvae, adamlvae: factors that differ within a pair
                              (0: random in 1..K-1 for each pair) */
} knobs_config;

KNOBS_API void knobs_config_default(knobs_config *c);
/* Treat knobs_config as opaque: it is becoming an opaque handle (issue 9). Use these: */
/* A new config with every default of `model` (NULL: "betavae"); free with knobs_config_free.
 * KNOBS_ERR_ARG for an unknown model. */
KNOBS_API knobs_status knobs_config_create(const char *model, knobs_config **out);
KNOBS_API void knobs_config_free(knobs_config *c);
KNOBS_API knobs_status knobs_config_copy(const knobs_config *c, knobs_config **out);
/* A setting as text (numbers as knobs_config_set reads them back exactly); KNOBS_ERR_ARG for
 * an unknown name or a buffer too small. */
KNOBS_API knobs_status knobs_config_get(const knobs_config *c, const char *name, char *buf, size_t n);
/* A numeric setting as double (NAN for an unknown name or a string setting), a string setting
 * (NULL for an unknown name or a number; the pointer lives as long as c). */
KNOBS_API double knobs_config_number(const knobs_config *c, const char *name);
KNOBS_API const char *knobs_config_string(const knobs_config *c, const char *name);
/* The i-th setting that applies to this config's model (0 <= i), NULL past the end. */
KNOBS_API const struct knobs_field_s *knobs_config_field(const knobs_config *c, int i);
typedef enum { KNOBS_FIELD_INT, KNOBS_FIELD_LONG, KNOBS_FIELD_U64, KNOBS_FIELD_DOUBLE,
               KNOBS_FIELD_STR } knobs_field_kind;
typedef struct knobs_field_s {
  const char *name;       /* JSON key; the CLI flag is --name with '_' as '-' */
  knobs_field_kind kind;
  size_t offset;          /* offsetof(knobs_config, field) */
  size_t size;            /* for strings: buffer size */
  double min, max;        /* accepted range for numbers */
  const char *models;     /* comma list of models that use it, "*" for all */
  const char *help;
  int resumable;          /* may change when a run resumes (steps, threads, logging, checkpoints) */
  int derived;            /* set from the data (input shape), not by the user */
} knobs_field;
extern KNOBS_API const knobs_field knobs_config_fields[];
extern KNOBS_API const int knobs_config_nfields;
/* Set a field from text with full checks (numbers by strtod/strtoll with end pointer, range);
 * KNOBS_ERR_ARG naming the field and the value otherwise. */
KNOBS_API knobs_status knobs_config_set(knobs_config *c, const char *name, const char *value);
/* Check a whole config for consistency (known model/arch/likelihood, sizes). */
KNOBS_API knobs_status knobs_config_validate(const knobs_config *c);
/* The config as a JSON object text (free with knobs_free; NULL if out of memory), and back
 * (unknown keys are errors). */
KNOBS_API char *knobs_config_to_json(const knobs_config *c);
KNOBS_API knobs_status knobs_config_from_json(knobs_config *c, const char *json);

/* ==== models (src/models) ================================================================== */
typedef struct knobs_model knobs_model;

/* The model names, NULL-terminated, and a one-line description of each. */
KNOBS_API const char *const *knobs_model_names(void);
KNOBS_API const char *knobs_model_describe(const char *name);

/* Build a model with freshly initialised parameters (PyTorch's default initialisation, drawn
 * from cfg->seed). cfg->C/H/W must be set (knobs_config_from_data). */
KNOBS_API knobs_status knobs_model_create(const knobs_config *cfg, knobs_model **out);
/* Load a checkpoint: a .safetensors file, or a run folder (its latest checkpoint). `threads`
 * overrides the stored thread count when > 0. */
KNOBS_API knobs_status knobs_model_load(const char *path, int threads, knobs_model **out);
/* Save parameters, optimizer state and config as safetensors, atomically. */
KNOBS_API knobs_status knobs_model_save(const knobs_model *m, const char *path);
KNOBS_API void knobs_model_free(knobs_model *m);
KNOBS_API const knobs_config *knobs_model_config(const knobs_model *m);
KNOBS_API long knobs_model_step(const knobs_model *m);       /* optimizer steps taken */
KNOBS_API int knobs_model_code_dim(const knobs_model *m);    /* dimensions of the representation */
/* The model's tensors (parameters and buffers, in checkpoint order): returns their count; when
 * 0 <= i < count, fills the i-th one's name, rank and shape (up to 4 dimensions). */
KNOBS_API int knobs_model_tensor(const knobs_model *m, int i, const char **name, int *ndim, int64_t shape[4]);
/* Set C/H/W from a dataset, and the arch/likelihood when they are empty ("" = choose):
 * images get conv + bernoulli (as the reference study does for every image dataset, values in
 * [0,1] read as probabilities), vectors mlp + gaussian. Fails if an explicitly chosen arch
 * cannot take the data's shape. */
KNOBS_API knobs_status knobs_config_from_data(knobs_config *c, const knobs_data *d);
/* The dataset options stored in a config. */
KNOBS_API void knobs_config_data_opts(const knobs_config *c, knobs_data_opts *o);

#define KNOBS_MAX_TERMS 12
typedef struct {
  int n;
  const char *name[KNOBS_MAX_TERMS]; /* "loss", "recon", "kl", ... (static strings) */
  double value[KNOBS_MAX_TERMS];
} knobs_terms;

/* One optimisation step on a batch the model draws from `d` with the rng of (seed, step).
 * Allocates nothing. Loss terms of the step go to `terms` if non-NULL. */
KNOBS_API knobs_status knobs_model_train_step(knobs_model *m, knobs_data *d, knobs_terms *terms);
/* Posterior of n observations (n,C,H,W): mean (n,Z) and, if non-NULL, log-variance (n,Z).
 * For models without a posterior (InfoGAN) this is the model's representation. */
KNOBS_API knobs_status knobs_model_encode(knobs_model *m, const float *x, int n, float *mean, float *logvar);
/* Posterior samples z = mean + exp(logvar/2) eps of n observations, eps ~ N(0,I) drawn from
 * (seed, stream); logvar (n,Z) also written if non-NULL. For models without a posterior, the
 * representation itself. */
KNOBS_API knobs_status knobs_model_encode_sampled(knobs_model *m, const float *x, int n, uint64_t seed,
                                        uint64_t stream, float *z, float *logvar);
/* Decode n codes (n,Z) to observations (n,C,H,W): Bernoulli means (probabilities) or Gaussian
 * means. */
KNOBS_API knobs_status knobs_model_decode(knobs_model *m, const float *z, int n, float *x);
/* Loss terms (without updating anything) of n observations, with the posterior sampled with
 * `seed`; per-dimension KL (Z) to `kl_dim` if non-NULL. */
KNOBS_API knobs_status knobs_model_evaluate(knobs_model *m, const float *x, int n, uint64_t seed,
                                  knobs_terms *terms, double *kl_dim);

/* ==== training runs (src/models/train.c) =================================================== */
typedef struct {
  const char *out_dir;    /* run folder; created if missing */
  long steps;             /* train until this many steps in total */
  /* progress: called every log_every steps and at the end; return non-zero to stop (the run is
   * checkpointed first). May be NULL. */
  int (*progress)(void *ctx, long step, long total, double images_per_s, const knobs_terms *t);
  void *ctx;
  volatile int *stop;     /* set to non-zero (e.g. from a signal handler) to stop cleanly */
} knobs_train_opts;

/* Train `m` on `d` to opts->steps, writing into the run folder: config.json, log.csv,
 * checkpoints (ckpt-<step>.safetensors and model.safetensors, the latest) and nothing
 * half-written. Returns KNOBS_ERR_INTERRUPTED if stopped by *stop or by progress(). */
KNOBS_API knobs_status knobs_train(knobs_model *m, knobs_data *d, const knobs_train_opts *opts);

/* ==== using a model (src/apps) ============================================================= */
/* Latent traversal of observation `index` of `d`: one row per latent dimension (sorted by the
 * mean KL over `n_kl` samples, largest first; ordering and KLs to `order`/`kl` if non-NULL),
 * `steps` columns from lo to hi added to the posterior mean of that dimension. Writes a PNG
 * grid, or an animated GIF if `path` ends in .gif. */
KNOBS_API knobs_status knobs_traverse(knobs_model *m, knobs_data *d, int64_t index, double lo, double hi,
                            int steps, const char *path, int *order, double *kl);
/* n observations drawn with `seed` (top row) and their reconstructions (bottom row), as a PNG. */
KNOBS_API knobs_status knobs_reconstruct(knobs_model *m, knobs_data *d, int n, uint64_t seed,
                               const char *path);
/* n decodes of prior samples z ~ N(0, I) drawn with `seed`, as a PNG grid. */
KNOBS_API knobs_status knobs_sample(knobs_model *m, int n, uint64_t seed, const char *path);

/* ==== metrics (src/metrics) ================================================================ */
/* Every standard disentanglement metric, defined as google-research/disentanglement_lib defines
 * it; docs/metrics.md gives each formula, its defaults, its source and where knobs differs.
 * Metrics run on plain arrays (codes and factors from any framework) or on a ground-truth
 * dataset with an encoder. The result of a run is a knobs_result: every score and sub-score,
 * the parameters, the seed and the seconds each metric took, as JSON or a table. */

/* The metric names, NULL-terminated: beta_vae, factor_vae, mig, mig_sampled, dci, sap,
 * modularity, explicitness, irs, unsupervised, intervention, elbo; and a line on each (NULL
 * for an unknown name). */
KNOBS_API const char *const *knobs_metric_names(void);
KNOBS_API const char *knobs_metric_describe(const char *name);

typedef struct {
  uint64_t seed;              /* every random draw derives from it [0] */
  int threads;                /* worker threads (>= 1) [1] */
  double train_frac;          /* arrays: the first ceil(N * train_frac) rows train the
                                 classifiers, the rest test them, unshuffled [0.9] */
  int num_train, num_test;    /* dataset: points drawn to train / test the array metrics
                                 [10000, 5000]; num_train is also the number of training
                                 points of beta_vae and factor_vae (arrays too) */
  int num_bins;               /* histogram bins of the discretised codes [20] */
  int batch_size;             /* beta_vae, factor_vae: observations per point [64] */
  int num_eval;               /* beta_vae, factor_vae: evaluation points [5000] */
  int num_variance;           /* factor_vae: points for the global variance [10000] */
  double prune_threshold;     /* factor_vae: dimensions with std below it are inactive [0.05] */
  int gbt_stages, gbt_depth;  /* dci: boosting stages and tree depth [100, 3] */
  double gbt_learning_rate;   /* dci [0.1] */
  double sap_C;               /* sap: the SVM's C [0.01] */
  int sap_continuous;         /* sap: treat factors as continuous (R^2 scores) [0] */
  double logreg_C;            /* beta_vae, explicitness: inverse L2 strength [1] */
  double irs_quantile;        /* irs: diff quantile [0.99] */
  int intervention_n;         /* intervention: interventions, spread over factors [5000] */
  int intervention_scale_n;   /* intervention: observations for the code scales [10000] */
  double intervention_active; /* intervention: active if std >= this * max std [0.05] */
  const char *intervention_cyclic; /* factors whose next value wraps: NULL or "auto" (an
                                 "orientation" spanning a full turn), "none", or names */
  int mig_sampled_points;     /* dataset: posteriors encoded; 0 = the whole dataset [0] */
  int mig_sampled_samples;    /* samples per entropy estimate [10000] */
  const char *mig_sampled_factors; /* factor names or indices to score (comma list), NULL =
                                 every factor with more than one value */
  int elbo_points;            /* elbo: held-out observations [10000] */
  const char *codes_name;     /* names used in error messages ["codes"] */
  const char *factors_name;   /* ["factors"] */
  const char *logvar_name;    /* ["logvar"] */
  /* Progress of long dataset metrics (may be NULL): return non-zero to stop, and the call
   * returns KNOBS_ERR_INTERRUPTED. */
  int (*progress)(void *ctx, const char *metric, double done, double total);
  void *progress_ctx;
} knobs_metrics_opts;
KNOBS_API void knobs_metrics_opts_default(knobs_metrics_opts *o);

typedef struct knobs_result knobs_result;

/* Metrics on arrays. codes (N,D): any numeric dtype (float32 keeps NumPy's float32 histogram
 * edges, as the reference sees float32 codes); factors (N,K) or (N,): integer class labels
 * (integral floats accepted); logvar (N,D) posterior log-variances or NULL (mig_sampled).
 * `metrics` is "all" (every metric the inputs allow) or a comma list. Refuses, with a message
 * naming the array and the row: mismatched N, no rows, NaN or Inf, non-integral factors, a
 * factor with a single value, D < 2, and K < 2 for the metrics that need two factors.
 * *out is a new result (free with knobs_result_free). */
KNOBS_API knobs_status knobs_metrics_arrays(const knobs_array *codes, const knobs_array *factors,
                                  const knobs_array *logvar, const char *metrics,
                                  const knobs_metrics_opts *o, knobs_result **out);

/* An encoder, independent of the model module: codes (n, code_dim) of n observations
 * (n,C,H,W). It is called from the calling thread only. */
typedef knobs_status (*knobs_encode_fn)(void *ctx, const float *x, int n, float *codes);
typedef struct {
  int code_dim;
  knobs_encode_fn encode;     /* the representation scored (posterior means or samples) */
  /* optional, for mig_sampled: posterior mean and log-variance (n, code_dim) each */
  knobs_status (*posterior)(void *ctx, const float *x, int n, float *mean, float *logvar);
  /* optional, for elbo: knobs_model_evaluate's contract */
  knobs_status (*evaluate)(void *ctx, const float *x, int n, uint64_t seed, knobs_terms *terms,
                           double *kl_dim);
  void *ctx;
  int batch;                  /* observations per call (0: 512) */
} knobs_encoder;

/* Metrics on a ground-truth dataset (K > 0, with render) and an encoder: the array metrics on
 * num_train + num_test points drawn with the seed, and those that intervene on factors
 * (beta_vae, factor_vae, intervention) or need the model (elbo, mig_sampled). "all" is every
 * metric the encoder allows. */
KNOBS_API knobs_status knobs_metrics_dataset(knobs_data *d, const knobs_encoder *enc, const char *metrics,
                                   const knobs_metrics_opts *o, knobs_result **out);

KNOBS_API void knobs_result_free(knobs_result *r);
/* A number by path: "metric.key" or "metric.key.i" (element i of a vector), e.g.
 * "dci.disentanglement", "mig.per_factor.2"; every metric has its headline as "score".
 * KNOBS_ERR_ARG if there is no such number. */
KNOBS_API knobs_status knobs_result_get(const knobs_result *r, const char *path, double *value);
/* Add a top-level string (e.g. "model": path) to the result. */
KNOBS_API knobs_status knobs_result_set_string(knobs_result *r, const char *key, const char *value);
/* The result as JSON text, and as a table of every scalar score (free both with knobs_free;
 * NULL if out of memory). */
KNOBS_API char *knobs_result_json(const knobs_result *r);
KNOBS_API char *knobs_result_table(const knobs_result *r);
/* Write the JSON atomically. */
KNOBS_API knobs_status knobs_result_write(const knobs_result *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif

