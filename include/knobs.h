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
/* The BLAS in use, e.g. "OpenBLAS 0.3.21 ... , kernels SkylakeX (chosen by knobs for this
 * CPU; ...)": knobs loads OpenBLAS at run time and picks the kernels for the CPU (src/core/blas.c
 * says why; the environment variable OPENBLAS_CORETYPE overrides). "OpenBLAS not loaded" with
 * knobs_last_error() set if it cannot be loaded. */
KNOBS_API const char *knobs_blas_info(void);
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
/* Read member `name` of a .npz (zip; stored or deflate) as NumPy finds it: the member named
 * exactly `name`, else `name`.npy. */
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
  int T;                  /* frames of a sequence dataset (dsprites:seq, seq:FILE): an
                           * observation is T frames of C / T channels, (T, C/T, H, W); 1 for
                           * everything else */
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
 * drawn as knobs_data_draw(d, n, seed, 0) draws them. Images are (N,C,H,W), sequences
 * (info.T > 1) (N,T,C/T,H,W) (what "seq:FILE" reads back), vectors (N,F);
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
/* A config holds every setting of one model: the settings every model shares (data, latents,
 * batch, steps, seed, Adam, logging) and those of the model's family (beta for betavae, the
 * discriminator of factorvae, ...), each described by a knobs_field. The same descriptors make
 * the CLI flags, the JSON config of a run and the checkpoint metadata, so they cannot drift.
 * A config is an opaque handle: create, set and read it by setting name. */
typedef struct knobs_config knobs_config;

typedef enum { KNOBS_FIELD_INT, KNOBS_FIELD_LONG, KNOBS_FIELD_U64, KNOBS_FIELD_DOUBLE,
               KNOBS_FIELD_STR } knobs_field_kind;
typedef struct knobs_field_s {
  const char *name;       /* JSON key; the CLI flag is --name with '_' as '-' */
  knobs_field_kind kind;
  double min, max;        /* accepted range for numbers (inclusive) */
  const char *help;       /* one line */
  const char *owner;      /* NULL for a setting of every model; else the models of the family
                             that owns it, a comma list ("gvae,mlvae,adagvae,adamlvae") */
  int resumable;          /* may change when a run resumes (steps, threads, logging, checkpoints) */
  int derived;            /* set from the data (the input shape), not by the user */
} knobs_field;

/* A new config with every default of `model` (NULL: "betavae"); free with knobs_config_free.
 * KNOBS_ERR_ARG for an unknown model, KNOBS_ERR_NOMEM. */
KNOBS_API knobs_status knobs_config_create(const char *model, knobs_config **out);
KNOBS_API void knobs_config_free(knobs_config *c);
KNOBS_API knobs_status knobs_config_copy(const knobs_config *c, knobs_config **out);
/* Set a setting from text with full checks (numbers by strtod/strtoll with an end pointer, the
 * range, finite); KNOBS_ERR_ARG naming the setting and the value otherwise, or a setting that
 * belongs to another model's family (the message names the family). Setting "model" to another
 * model resets the family settings to that model's defaults (set it first). */
KNOBS_API knobs_status knobs_config_set(knobs_config *c, const char *name, const char *value);
/* A setting as text (numbers exactly as knobs_config_set reads them back); KNOBS_ERR_ARG for a
 * name that is not a setting of this config's model, or a buffer too small. */
KNOBS_API knobs_status knobs_config_get(const knobs_config *c, const char *name, char *buf, size_t n);
/* A numeric setting as double (NAN for an unknown name or a string setting), a string setting
 * (NULL for an unknown name or a number; the pointer lives until c is changed or freed). */
KNOBS_API double knobs_config_number(const knobs_config *c, const char *name);
KNOBS_API const char *knobs_config_string(const knobs_config *c, const char *name);
/* The i-th setting of this config's model (0 <= i): the shared settings first, then the
 * family's; NULL past the end. */
KNOBS_API const knobs_field *knobs_config_field(const knobs_config *c, int i);
/* The i-th setting that `model`'s family adds to the shared ones; NULL past the end or for an
 * unknown model. */
KNOBS_API const knobs_field *knobs_model_field(const char *model, int i);
/* Check a whole config for consistency (known arch/likelihood, ranges, the input shape set,
 * the family's own rules). */
KNOBS_API knobs_status knobs_config_validate(const knobs_config *c);
/* The config as a JSON object text (free with knobs_free), and back: "model" is applied first;
 * settings of another model's family are ignored (files of knobs 0.1 carry every setting);
 * unknown keys are KNOBS_ERR_FORMAT. */
KNOBS_API char *knobs_config_to_json(const knobs_config *c);
KNOBS_API knobs_status knobs_config_from_json(knobs_config *c, const char *json);
/* Set the input shape from a dataset, and arch/likelihood when they are empty ("" = choose):
 * images get conv + bernoulli (as the reference study does for every image dataset, values in
 * [0,1] read as probabilities), vectors mlp + gaussian; and the settings a family takes from the
 * data (ivae: the classes of its aux_factor). KNOBS_ERR_ARG if the data cannot serve the model
 * (ivae: no factor named aux_factor, or one of another size than aux_classes). */
KNOBS_API knobs_status knobs_config_from_data(knobs_config *c, const knobs_data *d);
/* The dataset options stored in a config. */
KNOBS_API void knobs_config_data_opts(const knobs_config *c, knobs_data_opts *o);

/* ==== models (src/models) ================================================================== */
typedef struct knobs_model knobs_model;

/* The model names, NULL-terminated, and a one-line description of each. */
KNOBS_API const char *const *knobs_model_names(void);
KNOBS_API const char *knobs_model_describe(const char *name);
/* The model's loss in one line ("recon + beta * KL"), NULL for an unknown name. */
KNOBS_API const char *knobs_model_loss(const char *name);

/* Build a model with freshly initialised parameters (PyTorch's default initialisation, drawn
 * from cfg->seed). cfg->C/H/W must be set (knobs_config_from_data). */
KNOBS_API knobs_status knobs_model_create(const knobs_config *cfg, knobs_model **out);
/* Load a checkpoint: a .safetensors file, or a run folder (its model.safetensors). `threads`
 * overrides the stored thread count when > 0. The same as knobs_model_load_with with only
 * .threads set: tensors holding NaN or Inf are refused (KNOBS_ERR_DATA naming the tensor).
 * The optimizer state is not read (knobs_model_load_optimizer), except from a checkpoint
 * written before knobs 0.1.1 kept it in the same file. */
KNOBS_API knobs_status knobs_model_load(const char *path, int threads, knobs_model **out);
typedef struct {
  int threads;            /* > 0: override the stored thread count */
  int allow_nonfinite;    /* 1: accept tensors holding NaN or Inf, to inspect a diverged run;
                             0: KNOBS_ERR_DATA naming the first such tensor and element */
} knobs_load_opts;
/* knobs_model_load with options (`o` may be NULL for the defaults). */
KNOBS_API knobs_status knobs_model_load_with(const char *path, const knobs_load_opts *o, knobs_model **out);
/* Save the parameters and buffers, exactly the equivalent PyTorch module's state_dict (so a
 * strict load_state_dict accepts the file), with the config and step in the metadata,
 * atomically. The optimizer state goes to its own file: knobs_model_save_optimizer. */
KNOBS_API knobs_status knobs_model_save(const knobs_model *m, const char *path);
/* Save the optimizer state (per optimizer the Adam moments and step count; metadata format,
 * knobs_version, model and step = knobs_model_step(m)) atomically. `meta_json`, a JSON object
 * of string values or NULL, adds keys to the metadata (not those four). */
KNOBS_API knobs_status knobs_model_save_optimizer(const knobs_model *m, const char *path, const char *meta_json);
/* Both files of a checkpoint: each is written in full to "<path>.new" first, then the
 * optimizer file is renamed into place, then the model file. An interruption leaves both old,
 * both new, or (in the instant between the renames) a newer optimizer beside an older model
 * and the complete "<model_path>.new", which knobs_model_load_optimizer refuses by step and
 * knobs_run_resume completes (renames the .new into place). */
KNOBS_API knobs_status knobs_model_save_checkpoint(const knobs_model *m, const char *model_path,
                                         const char *optimizer_path, const char *meta_json);
/* Read the optimizer state of `path` (an optimizer file, or an older checkpoint holding the
 * optim.* tensors beside the weights) into m. KNOBS_ERR_FORMAT if the file holds none, is of
 * another model, or of another step than knobs_model_step(m) (naming both steps);
 * KNOBS_ERR_DATA for NaN/Inf. *meta_json, if meta_json is non-NULL, gets the file's metadata
 * as JSON text (malloc'ed; free() it), NULL on failure. On failure m's optimizer state is
 * undefined: free the model. */
KNOBS_API knobs_status knobs_model_load_optimizer(knobs_model *m, const char *path, char **meta_json);
/* Start m from the weights of another checkpoint (a .safetensors file or a run folder): every
 * parameter and buffer of m is read from the tensor of the same name, which must have the same
 * shape and hold only finite values; tensors of the file that m does not have (a FactorVAE's
 * discriminator, say) are ignored, so a model of another family with the same encoder and
 * decoder serves. m's optimizer state and step are left as they are. KNOBS_ERR_FORMAT naming the
 * file and the tensor if one is missing or of another shape, KNOBS_ERR_DATA for NaN/Inf,
 * KNOBS_ERR_IO if the file cannot be read; on failure m's weights are undefined: free it. The
 * config setting `init` does this when a run starts (knobs train --init CKPT: fine-tuning). */
KNOBS_API knobs_status knobs_model_init_weights(knobs_model *m, const char *path);
/* Change a setting of a built model that may change when a run resumes (knobs_field.resumable)
 * and needs no rebuild: steps, log_every, ckpt_every, from text as knobs_config_set reads it.
 * "threads" is KNOBS_ERR_UNSUPPORTED (it takes effect at load: knobs_load_opts.threads); any
 * other setting KNOBS_ERR_ARG naming it. */
KNOBS_API knobs_status knobs_model_set(knobs_model *m, const char *name, const char *value);
KNOBS_API void knobs_model_free(knobs_model *m);
KNOBS_API const knobs_config *knobs_model_config(const knobs_model *m);
KNOBS_API long knobs_model_step(const knobs_model *m);       /* optimizer steps taken */
KNOBS_API int knobs_model_code_dim(const knobs_model *m);    /* dimensions of the representation */
/* 1 if the model has a Gaussian posterior q(z|x) (the VAEs: encode gives a log-variance and
 * evaluate works), 0 for a model whose representation is a plain encoder (InfoGAN's Q head). */
KNOBS_API int knobs_model_has_posterior(const knobs_model *m);
/* Open the dataset `spec` (NULL: the one the model was trained on) with the data options stored
 * in the model's config, and check that its observations have the model's input shape: else
 * KNOBS_ERR_DATA naming the dataset and both shapes. A failed open passes its status and detail
 * through. On failure *out is NULL. */
KNOBS_API knobs_status knobs_model_open_data(const knobs_model *m, const char *spec, knobs_data **out);
/* The model's tensors (parameters and buffers, in checkpoint order): returns their count; when
 * 0 <= i < count, fills the i-th one's name, rank and shape (up to 4 dimensions). */
KNOBS_API int knobs_model_tensor(const knobs_model *m, int i, const char **name, int *ndim, int64_t shape[4]);
#define KNOBS_MAX_TERMS 12
typedef struct {
  int n;
  const char *name[KNOBS_MAX_TERMS]; /* "loss", "recon", "kl", ... (static strings) */
  double value[KNOBS_MAX_TERMS];
} knobs_terms;

/* One optimisation step on a batch the model draws from `d` with the rng of (seed, step).
 * Allocates nothing. Loss terms of the step go to `terms` if non-NULL. */
KNOBS_API knobs_status knobs_model_train_step(knobs_model *m, knobs_data *d, knobs_terms *terms);
/* Data-parallel training: `size` processes train one model together. Each draws the batch of
 * step t from (seed, t) as a single process would and keeps its shard (rows rank*B/size ..
 * (rank+1)*B/size of cfg.batch = B), computes its shard's gradient, and the gradient block is
 * summed across the processes by `sum_f32` (divided by size: the gradient of the whole batch's
 * mean loss) before every process applies the same Adam step; the loss terms are summed by
 * `sum_f64` likewise. The sums must give every process the same bytes, in a fixed order
 * (src/cli/mpi.c does it with MPI). Only families whose loss is a mean of per-example terms
 * qualify (betavae); the others couple the examples of a batch (a minibatch estimator, a
 * discriminator, a batch covariance, the batch's KL against a capacity) and are refused with
 * KNOBS_ERR_UNSUPPORTED, as are a property penalty and a batch that size does not divide
 * (KNOBS_ERR_ARG). p NULL or size 1: back to one process. The checkpoints are those of one
 * process of batch B, so a run resumes under any number of processes that divides B. */
typedef struct {
  int rank, size;
  int (*sum_f32)(void *ctx, float *buf, size_t n);   /* 0 on success, in place */
  int (*sum_f64)(void *ctx, double *buf, size_t n);
  void *ctx;
} knobs_parallel;
KNOBS_API knobs_status knobs_model_set_parallel(knobs_model *m, const knobs_parallel *p);
/* 1 if the family `model` can train data-parallel (its loss is a mean of per-example terms). */
KNOBS_API int knobs_model_data_parallel(const char *model);
/* FNV-1a 64 of the model's state: parameters, buffers, optimizer moments and step count. Two
 * processes of one data-parallel run hold the same digest after every step. */
KNOBS_API uint64_t knobs_model_digest(const knobs_model *m);
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

/* ==== training runs (src/run) ============================================================= */
/* A run folder holds one training run: config.json (the resolved config), log.csv (a header,
 * then one row per log_every steps: step, seconds of training so far, images/s and the loss
 * terms of that step), model.safetensors (the latest weights: the PyTorch state_dict),
 * optimizer.safetensors (the optimizer state of the same step, and the seconds trained),
 * the pictures of the result for image data (reconstructions.png, samples.png, traversal.png),
 * and run.lock. A process that writes a run holds an advisory lock (flock) on run.lock, which
 * records its pid; a second writer is refused with that pid. After any interruption (Ctrl-C,
 * a kill, a crash) and a resume, log.csv and the checkpoints read as if the run had never
 * stopped: resuming truncates the log to the checkpoint's step and carries the seconds. */
typedef struct knobs_run knobs_run;

/* A setting to change, as text (knobs_config_set reads it). */
typedef struct {
  const char *name;       /* "steps", "log_every" ... (knobs_field.name) */
  const char *value;
} knobs_setting;

typedef struct {
  const char *out_dir;    /* knobs_train: the run folder; created if missing.
                             knobs_run_train: NULL (or the run's folder) */
  long steps;             /* train until this many steps in total; 0 (knobs_run_train only):
                             the config's steps */
  /* progress: called every log_every steps and at the end; return non-zero to stop (the run is
   * checkpointed first). May be NULL. */
  int (*progress)(void *ctx, long step, long total, double images_per_s, const knobs_terms *t);
  void *ctx;
  volatile int *stop;     /* set to non-zero (e.g. from a signal handler) to stop cleanly */
  int overwrite;          /* knobs_train: 1 lets a model at step 0 replace a run already in
                             out_dir; 0 refuses such a folder (KNOBS_ERR_IO) */
} knobs_train_opts;

/* Start a new run of `cfg` in `dir` (created if missing). `data` is the dataset the config
 * was resolved against (knobs_config_from_data), or NULL to open the config's own; the run
 * takes it over in every case (freed by knobs_run_free, or here on failure). Builds the model
 * (KNOBS_ERR_ARG for an invalid config), locks the folder (KNOBS_ERR_IO naming the pid of
 * another writer), refuses a folder that holds a run (knobs_run_exists) with KNOBS_ERR_IO
 * unless `overwrite` (then that run's files are removed; other files stay), and writes
 * config.json. */
KNOBS_API knobs_status knobs_run_create(const char *dir, const knobs_config *cfg, knobs_data *data, int overwrite,
                              knobs_run **out);
/* Continue the run in `dir`: lock it, load its checkpoint (model and optimizer, which must be
 * of one step), apply `changes` (n of them; only settings with knobs_field.resumable: steps,
 * threads, log_every, ckpt_every; any other is KNOBS_ERR_ARG naming it, as is a bad value or
 * steps fewer than the run has taken), reopen its data and cut log.csv back to the
 * checkpoint's step. KNOBS_ERR_IO/FORMAT/DATA for a folder or checkpoint that cannot be
 * resumed, with the file named. */
KNOBS_API knobs_status knobs_run_resume(const char *dir, const knobs_setting *changes, int n, knobs_run **out);
/* Train to o->steps (0 or o NULL: the config's steps), appending to log.csv, checkpointing
 * every ckpt_every steps, on a stop request and at the end, then writing the pictures.
 * KNOBS_ERR_INTERRUPTED if stopped by *stop or by progress() (the checkpoint is saved);
 * KNOBS_ERR_ARG if o->steps is fewer than the steps taken. */
KNOBS_API knobs_status knobs_run_train(knobs_run *r, const knobs_train_opts *o);
KNOBS_API knobs_model *knobs_run_model(const knobs_run *r);  /* owned by the run */
KNOBS_API knobs_data *knobs_run_data(const knobs_run *r);    /* owned by the run */
KNOBS_API const char *knobs_run_dir(const knobs_run *r);
/* Release the lock and free the run (with its model and data, unless knobs_train lent them). */
KNOBS_API void knobs_run_free(knobs_run *r);
/* 1 if `dir` holds a run's files (config.json, log.csv, model.safetensors or
 * optimizer.safetensors), else 0. */
KNOBS_API int knobs_run_exists(const char *dir);

/* A data-parallel worker's copy of the run in `dir` (knobs_model_set_parallel), made right
 * after the writer process created or resumed it: the model as the writer holds it (built
 * from config.json, with its init weights, when the folder has no checkpoint yet; else loaded
 * from its checkpoint pair, with config.json's steps) and the run's data, both the caller's to
 * free. Reads the folder only: no lock, nothing written. `threads` 0: as configured. */
KNOBS_API knobs_status knobs_run_replica(const char *dir, int threads, knobs_model **m, knobs_data **d);

/* The embedder's entry: train the caller's `m` on `d` (both stay the caller's) into
 * opts->out_dir to opts->steps, as knobs_run_train does. The folder is locked while it runs.
 * A model at step 0 starts a new run (a folder holding a run is refused unless
 * opts->overwrite); a model at step k > 0 continues the run in the folder: log.csv is cut back
 * to step k and the seconds carried when optimizer.safetensors is of step k. (To resume from
 * the folder's own checkpoint, knobs_run_resume loads both files.) */
KNOBS_API knobs_status knobs_train(knobs_model *m, knobs_data *d, const knobs_train_opts *opts);

/* ==== using a model (src/apps) ============================================================= */
/* The functions below write one picture each, atomically. A path must end in .png (or .gif
 * where a GIF is made): any other name is KNOBS_ERR_ARG, refused before any work, with nothing
 * written. A model whose data are not images (1 or 3 channels) is KNOBS_ERR_UNSUPPORTED.
 *
 * Latent traversal of observation `index` (0..n-1, else KNOBS_ERR_ARG) of `d`: one row per
 * latent dimension (sorted by the mean KL over 1000 observations, largest first; ordering and
 * KLs to `order`/`kl` (Z each) if non-NULL), `steps` (2..101, else KNOBS_ERR_ARG) columns from
 * lo to hi replacing the posterior mean of that dimension. Writes a PNG grid, or an animated
 * GIF if `path` ends in .gif. A dsvae model's traversal is of its static code f
 * (knobs_traverse_seq, below). */
KNOBS_API knobs_status knobs_traverse(knobs_model *m, knobs_data *d, int64_t index, double lo, double hi,
                            int steps, const char *path, int *order, double *kl);
/* Traversal of a sequence model (a dsvae: knobs_dsvae_dims), which knobs_traverse also does
 * for one (with .dynamic 0 and .frame 0). Observation `index` (a sequence of T frames) is
 * encoded to its posterior means f and z_1:T; row r sets one code dimension to each of `steps`
 * values from lo to hi and keeps every other code as encoded:
 *   dynamic 0  rows are f's dimensions, sorted by f's mean KL over 1000 observations (as
 *              knobs_traverse; ordering and KLs to `order`/`kl`, f_dim each, if non-NULL), and
 *              every cell keeps the sequence's own dynamic codes z_1:T;
 *   dynamic 1  rows are z_t's dimensions in order, the value set at every frame t, with the
 *              sequence's own f (`order` gets 0..z_dim-1 and `kl` NaN, z_dim each).
 * A PNG is the grid of rows x steps cells, each cell frame `frame` (0..T-1) of its decoded
 * sequence; a GIF has T frames, frame t that grid of every cell's frame t (each cell moves
 * with the sequence's own motion, or with the traversed one). KNOBS_ERR_UNSUPPORTED for a model
 * that is not a dsvae or frames of other than 1 or 3 channels; KNOBS_ERR_DATA for data of
 * another shape than the model's; KNOBS_ERR_ARG for index, steps (2..101) or frame out of
 * range; all before anything is written. */
typedef struct {
  int64_t index;          /* the observation (sequence) traversed, 0..n-1 */
  double lo, hi;          /* the values each code dimension takes, steps of them */
  int steps;              /* 2..101 */
  int dynamic;            /* 0: traverse f (the static code); 1: traverse z_t (the dynamic) */
  int frame;              /* the frame a PNG cell shows, 0..T-1 */
} knobs_seq_traverse_opts;
/* index 0, -2..2 in 11 steps, f, frame 0. */
KNOBS_API void knobs_seq_traverse_opts_default(knobs_seq_traverse_opts *o);
KNOBS_API knobs_status knobs_traverse_seq(knobs_model *m, knobs_data *d, const knobs_seq_traverse_opts *o,
                                          const char *path, int *order, double *kl);
/* n (1..4096) observations drawn with `seed` (rows of up to 16), each row followed by the row
 * of their reconstructions, as a PNG. */
KNOBS_API knobs_status knobs_reconstruct(knobs_model *m, knobs_data *d, int n, uint64_t seed,
                               const char *path);
/* n (1..4096) decodes of prior samples z ~ N(0, I) drawn with `seed`, as a PNG grid. */
KNOBS_API knobs_status knobs_sample(knobs_model *m, int n, uint64_t seed, const char *path);
/* The names of a model's Z knobs into names[Z] (each "" when it has none): the name a user gave
 * latent z in the knob panel, else the ground-truth factor it shares the most information with,
 * as knobs.json beside the checkpoint (the run folder, or the file's folder) records them
 * (docs/api.md). No knobs.json: KNOBS_OK with every name "". A knobs.json that is not one, or
 * names another number of latents: KNOBS_ERR_FORMAT naming the file. */
KNOBS_API knobs_status knobs_knob_names(const char *model_path, int Z, char (*names)[64]);
/* A picture of a dataset without a model, as a PNG grid of `cols` columns (2..64) at `path`:
 * - ground-truth data that renders any factor vector: row k varies factor k over `cols` evenly
 *   spaced classes (all of them if it has fewer; the rest of the row blank), the other factors
 *   fixed at those of observation `index`, or drawn with `seed` if index is -1;
 * - factors but no renderer (files with labels): row k shows the first observations, in index
 *   order, of `cols` evenly spaced classes of factor k (the other factors vary);
 * - no factors: `cols` x `cols` observations drawn with `seed`.
 * Vectors are drawn as bar charts (one tile per observation, a common scale). *layout, if
 * non-NULL, is set to a static sentence saying which of these the picture is.
 * Errors, with nothing written: KNOBS_ERR_ARG for a path not ending in .png, cols out of range
 * or index outside -1..n-1; KNOBS_ERR_UNSUPPORTED for images with neither 1 nor 3 channels;
 * the status of a failed read or write (the PNG is written atomically). */
KNOBS_API knobs_status knobs_data_show(knobs_data *d, int cols, int64_t index, uint64_t seed, const char *path,
                             const char **layout);

/* ==== using the knobs: names, edits, design (src/apps) ====================================== */
/* Naming (names.c). A model's knobs are its code dimensions; each is described by what it
 * shares with the ground-truth factors of a dataset: the normalised mutual information with
 * every factor (as disentanglement_lib's MIG computes it: 20 equal-width bins of the posterior
 * mean, MI in nats over the factor's entropy), the factor of largest MI (when >= 0.05), the
 * direction (sign of the Spearman correlation of the code with that factor's value) and a
 * calibration: a monotone piecewise-linear map from code value to factor value (isotonic
 * regression of the factor value on the code, in the direction found, read at
 * KNOBS_CALIB_KNOTS quantiles of the code). knobs.json in the run folder holds it
 * (docs/api.md); the knob panel and every command that prints latents read it. */
#define KNOBS_CALIB_KNOTS 21
typedef struct {
  char name[64];          /* the user's name ("" if none) */
  char factor[32];        /* the factor of largest normalised MI if >= 0.05 and the latent is
                             active (KL >= 0.05 nat, when the KL is known), else "" */
  int factor_index;       /* its index, -1 if none */
  double mi[KNOBS_MAX_FACTORS]; /* normalised MI with each factor */
  double kl;              /* mean KL of this dimension (nats) over the naming samples; 0 if the
                             model has no posterior */
  double mean, scale;     /* mean and standard deviation of the code over the samples */
  double corr;            /* Spearman correlation of the code with the factor's value (0: none) */
  int direction;          /* +1: the factor grows with the code, -1: it falls, 0: no factor */
  int n_knots;            /* 0: no calibration; else knot_code increasing, knot_value monotone */
  double knot_code[KNOBS_CALIB_KNOTS], knot_value[KNOBS_CALIB_KNOTS];
} knobs_knob;
typedef struct {
  int Z, K;               /* code dimensions; factors (0 for data without them) */
  long step;              /* the checkpoint step the statistics describe */
  int n;                  /* samples they were computed on (0: only names are known) */
  char data[64];          /* the dataset they were computed on */
  char factors[KNOBS_MAX_FACTORS][32];
  knobs_knob *knobs;      /* Z entries, in dimension order */
} knobs_knobs;
typedef struct {
  int n;                  /* samples drawn with their factors for the MI and calibration [10000] */
  int n_kl;               /* samples for the KL per dimension [512] */
  uint64_t seed;          /* the draws' seed [a fixed constant: the same run gives the same file] */
} knobs_name_opts;
KNOBS_API void knobs_name_opts_default(knobs_name_opts *o);
/* Compute every knob's statistics for model m on dataset d (which must have ground-truth
 * factors: KNOBS_ERR_ARG otherwise, naming d). The user names are empty: keep them with
 * knobs_knobs_merge_names. Free with knobs_knobs_free. */
KNOBS_API knobs_status knobs_name(knobs_model *m, knobs_data *d, const knobs_name_opts *o, knobs_knobs **out);
/* The same statistics from arrays (codes from any framework): codes (n,Z), factor classes (n,K),
 * factor values (n,K) or NULL (the class index is the value), K factor names, and the KL per
 * dimension (Z) or NULL. step is 0 and data "". Refuses NaN, negative classes, n < 2. */
KNOBS_API knobs_status knobs_name_codes(const float *codes, const int32_t *factors, const double *values, int n, int Z,
                                        int K, const char (*factor_names)[32], const double *kl, knobs_knobs **out);
/* Read knobs.json beside a checkpoint (model_path: a run folder or a .safetensors file) for a
 * model of Z dimensions: *out is NULL (and KNOBS_OK) if there is none; KNOBS_ERR_FORMAT naming
 * the file for one that is not a knobs.json or describes another number of latents. Files of
 * version 1 (names and MI only) are read with n_knots 0 and kl 0. */
KNOBS_API knobs_status knobs_knobs_read(const char *model_path, int Z, knobs_knobs **out);
/* Write knobs.json beside the checkpoint, atomically. */
KNOBS_API knobs_status knobs_knobs_write(const knobs_knobs *k, const char *model_path);
/* An empty table of Z knobs (no names, no statistics: n = 0, factor_index -1) for K factors
 * (0..KNOBS_MAX_FACTORS, names ""), to name knobs by hand. */
KNOBS_API knobs_status knobs_knobs_create(int Z, int K, knobs_knobs **out);
/* Copy the user names of `from` into `to` (same Z; KNOBS_ERR_ARG otherwise). */
KNOBS_API knobs_status knobs_knobs_merge_names(knobs_knobs *to, const knobs_knobs *from);
KNOBS_API void knobs_knobs_free(knobs_knobs *k);
/* Set latent z's user name ("" clears it). KNOBS_ERR_ARG for z out of range, a name that is a
 * number or has a control character or is longer than 63 bytes. */
KNOBS_API knobs_status knobs_knobs_rename(knobs_knobs *k, int z, const char *name);
/* The latent a user means by `name`: a dimension number ("3", "z3"), a user name, or a factor
 * name (the first match in that order); when several unnamed latents track that factor, the
 * one with the largest MI with it. -1 with KNOBS_ERR_ARG set (the message lists the known
 * names) if none. `k` may be NULL (numbers only). */
KNOBS_API int knobs_knobs_find(const knobs_knobs *k, int Z, const char *name);
/* The name shown for latent z: the user's, else its factor, else "z<z>". */
KNOBS_API const char *knobs_knobs_label(const knobs_knobs *k, int z, char *buf, size_t n);
/* The calibrated factor value at code value c (clamped to the knots' range), and back: the
 * code at which the calibrated value is v (the middle of a flat stretch). A knob without a
 * calibration gives NaN from knobs_knob_value (with knobs_last_error set) and KNOBS_ERR_ARG
 * from knobs_knob_code, which also refuses a v outside the calibrated values (the message
 * gives the range). */
KNOBS_API double knobs_knob_value(const knobs_knob *k, double c);
KNOBS_API knobs_status knobs_knob_code(const knobs_knob *k, double v, double *c);

/* The oracle (oracle.c): the factors of an image of a dataset whose renderer is built in
 * (dsprites, shapes): the class vector whose rendering is nearest in squared pixel distance.
 * The search (docs/apps.md states it) is exhaustive over the classes that change the
 * picture's shape and coarse-to-fine over position, and exact on rendered images: the
 * rendering of the recovered factors equals the input. Classes with the same picture tie and
 * the smallest class index is returned: dsprites' orientation 39 is 2 pi and renders as 0, and
 * a small square at orientation 19 or 29 (4.6 and 2.3 degrees off a quarter turn) can render as
 * orientation 0; the grid's steps of 2 pi / 39 never turn a square by exactly 90 degrees or an
 * ellipse by 180. One call at a time per oracle. */
typedef struct knobs_oracle knobs_oracle;
/* KNOBS_ERR_UNSUPPORTED for a dataset without a built-in renderer the oracle knows (the
 * dsprites variants and files included), naming it. `d` must outlive the oracle; `threads` >= 1
 * split the images of each call (the answers do not depend on it). */
KNOBS_API knobs_status knobs_oracle_create(knobs_data *d, int threads, knobs_oracle **out);
KNOBS_API void knobs_oracle_free(knobs_oracle *o);
/* factors (n,K) of n images (n,C,H,W); dist (n) the mean squared pixel distance to the
 * nearest rendering, if non-NULL. KNOBS_ERR_ARG for n < 0, KNOBS_ERR_DATA for a NaN or an
 * infinity in x (naming the image and pixel), before any work. */
KNOBS_API knobs_status knobs_oracle_factors(knobs_oracle *o, const float *x, int n, int32_t *factors,
                                            double *dist);
/* One line saying how the search runs (for reports). */
KNOBS_API const char *knobs_oracle_method(const knobs_oracle *o);

/* Edits (edit.c): encode (posterior mean), change only some latents, decode. */
typedef enum {
  KNOBS_EDIT_SET = 0,     /* code[latent] = value (code units) */
  KNOBS_EDIT_ADD,         /* code[latent] += value */
  KNOBS_EDIT_FACTOR       /* code[latent] = the code whose calibrated factor value is `value` */
} knobs_edit_mode;
typedef struct {
  int latent;
  knobs_edit_mode mode;
  double value;
} knobs_edit_op;
/* Apply ops to n codes (n,Z) in place; `k` is needed (with calibrations) for KNOBS_EDIT_FACTOR
 * (KNOBS_ERR_ARG otherwise, naming the latent). */
KNOBS_API knobs_status knobs_edit_codes(const knobs_knobs *k, const knobs_edit_op *ops, int n_ops,
                                        float *codes, int n, int Z);
/* For n observations x: recon (n,C,H,W) the decode of their posterior means, edited the decode
 * after the ops; either output may be NULL. codes (n,Z), if non-NULL, receives the edited codes. */
KNOBS_API knobs_status knobs_edit(knobs_model *m, const knobs_knobs *k, const knobs_edit_op *ops, int n_ops,
                                  const float *x, int n, float *recon, float *edited, float *codes);
/* The attribute vector of latent arithmetic: mean code of the rows with label != 0 minus the
 * mean code of the rows with label == 0 (codes (n,Z)); KNOBS_ERR_DATA if either group is
 * empty. */
KNOBS_API knobs_status knobs_attribute_vector(const float *codes, const int32_t *labels, int n, int Z,
                                              float *v);
/* How trustworthy each knob is, measured with the oracle on a dataset it knows: for every
 * latent with a factor, n_edits observations are drawn (seed), encoded and decoded; the knob
 * moves by `delta` code standard deviations toward the side of its factor's range with more
 * room; the oracle reads the factors of the reconstruction and of the edit. target fidelity:
 * the share of edits whose factor moved the asked way; moved: the mean signed move in classes;
 * specificity: the share of the other factors left unchanged. */
typedef struct {
  int n_edits;            /* per knob [200] */
  double delta;           /* code standard deviations per edit [2] */
  uint64_t seed;          /* [0] */
} knobs_edit_score_opts;
typedef struct {
  int latent, factor;     /* the knob and its factor */
  int n;                  /* edits scored */
  double fidelity;        /* share moved the asked way */
  double moved;           /* mean signed move (factor classes) */
  double specificity;     /* share of other factors unchanged */
  double recon_exact;     /* share of reconstructions whose oracle factors equal the input's */
} knobs_edit_score_row;
KNOBS_API void knobs_edit_score_opts_default(knobs_edit_score_opts *o);
/* rows (one per named latent, at most Z) to a caller buffer of Z rows; *n_rows set. */
KNOBS_API knobs_status knobs_edit_score(knobs_model *m, knobs_data *d, const knobs_knobs *k,
                                        const knobs_edit_score_opts *o, knobs_edit_score_row *rows,
                                        int *n_rows);

/* The decoder's vector-Jacobian product (model.c): for n codes z (n,Z), dz (n,Z) = the gradient
 * of sum(g * decode(z)) with respect to z, with g (n,C,H,W) in decode's output space (the
 * sigmoid included for a Bernoulli model). Parameters and their gradients are untouched.
 * KNOBS_ERR_UNSUPPORTED for models without a VAE decoder (InfoGAN). */
KNOBS_API knobs_status knobs_model_decode_vjp(knobs_model *m, const float *z, int n, const float *g, float *dz);

/* Properties of decoded images (property.c), each with its gradient with respect to the image:
 * area (mean pixel intensity over pixels and channels), centroid x or y (intensity-weighted
 * mean of (column + 0.5) / W or (row + 0.5) / H, the intensities summed over channels, in
 * [0,1]; an image whose intensities sum to zero or less, as an all-zero one, has centroid 0.5
 * and a zero gradient), brightness (mean intensity: the same as area for gray images; for
 * colour (C = 3) the mean over pixels of 0.299 R + 0.587 G + 0.114 B; other C are refused),
 * channel mean (one channel's mean; any C, channel < C). */
typedef enum { KNOBS_PROP_AREA = 0, KNOBS_PROP_CX, KNOBS_PROP_CY, KNOBS_PROP_BRIGHTNESS, KNOBS_PROP_CHANNEL
} knobs_image_property;
/* value of n images (n,C,H,W) to v (n); grad (n,C,H,W) set to its gradient if non-NULL
 * (`channel` is read for KNOBS_PROP_CHANNEL only). KNOBS_ERR_DATA for a NaN or infinite pixel
 * (naming the image and element); KNOBS_ERR_ARG for a bad shape, an unknown property, a
 * channel out of range, brightness with C not 1 or 3. Nothing is written on failure. */
KNOBS_API knobs_status knobs_image_property_eval(knobs_image_property p, int channel, const float *x, int n,
                                                 int C, int H, int W, double *v, float *grad);
/* "area", "cx", "cy", "brightness", "red"/"green"/"blue" or "channel0".."channel2" (-1: unknown);
 * *channel (if non-NULL) gets the channel, 0 for the properties without one. */
KNOBS_API int knobs_image_property_parse(const char *name, int *channel);

/* Plausibility penalties on codes (density.c; docs/apps.md gives the fit exactly): value and
 * gradient of
 *   prior: -log N(z; 0, I) = 0.5 |z|^2 + 0.5 Z log(2 pi) (the constant included);
 *   gmm:   -log p(z), constants included, of a diagonal Gaussian mixture fitted by EM to
 *          training codes (the aggregate posterior): k-means++ seeds from `seed`, components
 *          that lose all their mass are dropped (so it may hold fewer than gmm_k);
 *   box:   sum over latents of the squared distance outside [q, 1 - q] quantiles of the
 *          training codes (numpy.quantile's default linear interpolation).
 * The same codes, options and seed give the same bits. */
typedef enum { KNOBS_PENALTY_NONE = 0, KNOBS_PENALTY_PRIOR, KNOBS_PENALTY_GMM, KNOBS_PENALTY_BOX } knobs_penalty_kind;
typedef struct knobs_penalty knobs_penalty;
typedef struct {
  int gmm_k;              /* mixture components, 1..1024 [10] */
  int gmm_iter;           /* EM iterations at most [200] */
  double gmm_tol;         /* stop when the mean log-likelihood gains less [1e-4] */
  double gmm_reg;         /* variance floor added to each diagonal (>= 1e-12) [1e-4] */
  double box_q;           /* box quantile, 0..0.5 [0.01] */
  uint64_t seed;          /* k-means++ initialisation [0] */
} knobs_penalty_opts;
KNOBS_API void knobs_penalty_opts_default(knobs_penalty_opts *o);
/* "none", "prior", "gmm", "box" (-1: unknown). */
KNOBS_API int knobs_penalty_parse(const char *name);
/* Fit the penalty to n training codes (n,Z) (none and prior ignore them; may be NULL). o NULL:
 * the defaults. KNOBS_ERR_ARG for Z < 1, an option out of range, no codes (gmm, box), n <
 * gmm_k (gmm); KNOBS_ERR_DATA for NaN or Inf in the codes (naming row and latent); *out is
 * NULL on failure. Free with knobs_penalty_free. */
KNOBS_API knobs_status knobs_penalty_fit(knobs_penalty_kind kind, const float *codes, int n, int Z,
                                         const knobs_penalty_opts *o, knobs_penalty **out);
KNOBS_API void knobs_penalty_free(knobs_penalty *p);
/* value of one code z (Z); grad (Z) += its gradient if non-NULL. p NULL (or none): 0, grad
 * untouched; a NaN in z gives NaN. Thread-safe on one penalty (it is not changed). */
KNOBS_API double knobs_penalty_eval(const knobs_penalty *p, const float *z, double *grad);

/* Property heads (head.c): a small MLP on codes, Z -> hidden (ReLU) x layers -> 1, trained with
 * Adam on codes and labels (mean squared error; binary labels may use the logistic loss, the
 * output is then the probability). Saved as .safetensors (tensors "0.weight", "0.bias",
 * "2.weight" ... as a torch.nn.Sequential of Linear and ReLU names them; the settings in the
 * metadata; docs/models.md "Property penalty"). */
typedef struct knobs_head knobs_head;
typedef struct {
  int hidden;             /* [64] */
  int layers;             /* hidden layers [2] */
  int steps;              /* Adam steps [2000] */
  int batch;              /* [256] */
  double lr;              /* [1e-3] */
  int logistic;           /* 1: labels 0/1, sigmoid output, logistic loss [0] */
  double val_frac;        /* share of rows held out to report the error [0.1] */
  uint64_t seed;          /* [0] */
} knobs_head_opts;
KNOBS_API void knobs_head_opts_default(knobs_head_opts *o);
/* Train on codes (n,Z) and labels y (n); *val_error (if non-NULL) is the held-out RMSE (or the
 * held-out error rate for logistic heads) on the LAST floor(n * val_frac) rows, which are not
 * trained on (unshuffled; with none held out, the training error). Refuses NaN, fewer than 2
 * training rows, a constant label (and labels other than 0/1 for a logistic head). */
KNOBS_API knobs_status knobs_head_fit(const float *codes, const double *y, int n, int Z, const knobs_head_opts *o,
                                      knobs_head **out, double *val_error);
/* Save writes atomically; load refuses (naming the file) truncated files, files that are not
 * heads (no metadata kind "knobs_head"), tensors that do not match the metadata, NaN or Inf. */
KNOBS_API knobs_status knobs_head_save(const knobs_head *h, const char *path);
KNOBS_API knobs_status knobs_head_load(const char *path, knobs_head **out);
KNOBS_API void knobs_head_free(knobs_head *h);
KNOBS_API int knobs_head_dim(const knobs_head *h); /* its input width Z */
/* Predictions of n codes (n,Z) to y (n); dz (n,Z) += dy[i] * d y_i / d z_i if dz and dy are
 * non-NULL (dy NULL: ones). Thread-compatible: one head per thread. */
KNOBS_API knobs_status knobs_head_eval(knobs_head *h, const float *z, int n, double *y, const double *dy,
                                       float *dz);

/* Design (design.c): search latent space for codes whose decoded image has a property, kept
 * plausible by a penalty: maximise s * P(z) - lambda * penalty(z) (s = +1 to maximise, -1 to
 * minimise; to hit a target: -(P - target)^2), where P is the property in standard deviations
 * of the property over the n_fit dataset observations (so one lambda means the same for every
 * property; P = (property - their mean) / their sd), by gradient ascent through the
 * decoder (Adam on z), from `restarts` codes of encoded dataset observations; the best n are
 * reported, each with the checks below. */
typedef enum { KNOBS_DESIGN_MAX = 0, KNOBS_DESIGN_MIN, KNOBS_DESIGN_TARGET } knobs_design_goal;
typedef struct {
  /* the property: an image property, or a knob's calibrated factor value, or a head */
  knobs_image_property image_property;
  int channel;            /* KNOBS_PROP_CHANNEL */
  int latent;             /* >= 0: the calibrated value of this knob (needs `knobs`) [-1] */
  knobs_head *head;       /* non-NULL: the head's prediction on the code (evaluated through
                             its own scratch: one design at a time per head) */
  knobs_design_goal goal;
  double target;
  knobs_penalty_kind penalty;
  double lambda;          /* [1] */
  knobs_penalty_opts penalty_opts;
  int n;                  /* designs reported [16] */
  int restarts;           /* starting points (>= n) [64] */
  int steps;              /* Adam steps per start [200] */
  double lr;              /* [0.05] */
  int n_fit;              /* encoded dataset observations for the penalty fit and the
                             percentiles [5000] */
  uint64_t seed;          /* [0] */
} knobs_design_opts;
KNOBS_API void knobs_design_opts_default(knobs_design_opts *o);
typedef struct {
  double property;        /* the property of the decoded design */
  double objective, penalty;
  double percentile;      /* share (0..100) of the n_fit dataset observations whose property
                             (of their own image; for heads and knobs, of their code) is below */
  double nearest;         /* mean squared pixel distance to the nearest dataset image: the
                             oracle's nearest rendering on built-in data, else the nearest of
                             the n_fit observations */
  double recon;           /* mean squared pixel distance between the design and its re-encode +
                             decode */
  int valid;              /* nearest <= threshold (knobs_design_result.threshold) */
} knobs_design_item;
typedef struct {
  int n, Z, C, H, W;
  float *codes;           /* (n,Z) best first */
  float *images;          /* (n,C,H,W) */
  knobs_design_item *items;
  double threshold;       /* validity threshold: the 95th percentile of the same distance for
                             the model's reconstructions of n_fit real observations */
  double data_p50, data_p90, data_max; /* the property over the dataset observations */
  int valid;              /* designs that are valid */
  char method[640];       /* how `nearest` was measured */
} knobs_design_result;
KNOBS_API knobs_status knobs_design(knobs_model *m, knobs_data *d, const knobs_knobs *k,
                                    const knobs_design_opts *o, knobs_design_result **out);
KNOBS_API void knobs_design_result_free(knobs_design_result *r);

/* ==== orbits: a symmetry as a loop in latent space (src/apps/orbit.c) ======================= */
/* The codes of an ordered sequence of inputs (an orbit: one observation rotated step by step,
 * say) and what they trace; docs/apps.md ("knobs orbit") gives every formula and its source:
 * - PCA of the codes: centre = their mean, the plane of the top two principal directions, and
 *   the share of the variance (1/n) that plane holds;
 * - a circle in that plane: Kasa's algebraic fit, then refined geometrically (Levenberg-
 *   Marquardt on the radial distances) unless told not to; relative residual = RMS radial
 *   distance / radius;
 * - the winding number around the circle's centre: the angle steps between consecutive points,
 *   each wrapped into [-pi, pi], summed (with the step from the last point back to the first
 *   when the orbit is closed), / 2 pi;
 * - with a value per point (a factor's value): Mardia's circular-linear correlation R^2 of the
 *   angle and the value, and the Pearson correlation of the unwrapped angle and the value. */
typedef enum {
  KNOBS_ORBIT_AUTO = -1,  /* closed exactly when the last input equals the first (bit for bit;
                             for knobs_orbit_codes: the last code equals the first) */
  KNOBS_ORBIT_OPEN = 0,   /* the closing step never counts */
  KNOBS_ORBIT_CLOSED = 1  /* the step from the last point back to the first counts */
} knobs_orbit_closure;
typedef struct {
  int closed;             /* a knobs_orbit_closure [KNOBS_ORBIT_AUTO]. A closed orbit whose last
                             input equals its first drops that duplicate point */
  int refine;             /* 1: refine Kasa's circle geometrically; 0: Kasa's circle as it is [1] */
} knobs_orbit_opts;
KNOBS_API void knobs_orbit_opts_default(knobs_orbit_opts *o);
typedef struct {
  int n, Z;               /* points (a dropped duplicate not counted) and code dimensions */
  int closed;             /* 1 if the step from the last point back to the first counted */
  int dropped;            /* 1 if the last input equalled the first and was dropped */
  double *mean;           /* (Z) the centre of the PCA: the mean code */
  double *axes;           /* (2,Z) the first two principal directions: unit, orthogonal, each
                             signed so that its largest |component| is positive */
  double *xy;             /* (n,2) the points in the plane: (code - mean) . axes */
  double *angle;          /* (n) each point's angle around the circle's centre, in [-pi, pi] */
  double *values;         /* (n) the value of each point, or NULL */
  double var[2];          /* the variance along each axis (the top two eigenvalues) */
  double var_total;       /* the total variance (the covariance's trace) */
  double plane_share;     /* (var[0] + var[1]) / var_total */
  int circle;             /* 1 if a circle was fitted; 0 if the points are collinear in the
                             plane: nothing to wind around, so the circle, the angles, winding,
                             max_step and the correlations are NaN */
  double cx, cy, radius;  /* the circle, in plane coordinates */
  double kasa_cx, kasa_cy, kasa_radius; /* Kasa's circle (before refinement) */
  int refine_iters;       /* accepted Levenberg-Marquardt steps (0 without refinement) */
  double residual;        /* sqrt(mean (|p_i - c| - r)^2) / r */
  double winding;         /* total angle / 2 pi; its sign depends on the axes' signs. Read it
                             with max_step: a step near pi makes the count ambiguous */
  double max_step;        /* the largest |angle step| (radians) */
  double circlin_r2;      /* Mardia's R^2 in [0,1]; NaN without values, with constant values,
                             or with |corr(cos, sin)| = 1. Note: a linear value traversed
                             uniformly over one turn gives 6/pi^2 = 0.61, not 1 (R^2 is 1 when
                             the value is a + b cos(theta - phi)) */
  double angle_corr;      /* Pearson correlation of the unwrapped angle and the value (+-1 for a
                             uniform traversal of any number of turns); NaN as circlin_r2 */
  int factor;             /* knobs_orbit_factor: the factor swept; -1 otherwise */
  int64_t index;          /* knobs_orbit_factor: the observation; -1 otherwise */
  int32_t *classes;       /* knobs_orbit_factor: (n) each point's class of the factor; else NULL */
} knobs_orbit;
/* The orbit of codes (n,Z) (row i: the code of input i, in order) with values (n) or NULL. o
 * NULL: the defaults. KNOBS_ERR_ARG for n < 3 (after a dropped duplicate), Z < 2, bad options;
 * KNOBS_ERR_DATA for NaN or Inf (naming the point and element), or codes that are all equal;
 * KNOBS_ERR_NOMEM. *out is NULL on failure; free it with knobs_orbit_free (one block). */
KNOBS_API knobs_status knobs_orbit_codes(const float *codes, int n, int Z, const double *values,
                                         const knobs_orbit_opts *o, knobs_orbit **out);
/* The same for n inputs x (n,C,H,W) of the model's input shape, encoded to posterior means
 * (knobs_model_encode); NaN or Inf in x is KNOBS_ERR_DATA, before encoding. */
KNOBS_API knobs_status knobs_orbit_inputs(knobs_model *m, const float *x, int n, const double *values,
                                          const knobs_orbit_opts *o, knobs_orbit **out);
/* The orbit of observation `index` of d along factor `factor`: every class of the factor in
 * order, the other factors as the observation has them, rendered (knobs_data_render), encoded;
 * values = knobs_data_factor_value. With KNOBS_ORBIT_AUTO a sweep whose last rendering equals
 * its first (dSprites' orientation: class 39 is 2 pi, drawn as class 0) is closed and that
 * rendering dropped. KNOBS_ERR_UNSUPPORTED for data without factors or a renderer;
 * KNOBS_ERR_ARG for factor or index out of range, or observations of another shape than the
 * model's; KNOBS_ERR_DATA for a factor with a single class. */
KNOBS_API knobs_status knobs_orbit_factor(knobs_model *m, knobs_data *d, int64_t index, int factor,
                                          const knobs_orbit_opts *o, knobs_orbit **out);
/* A size x size RGB PNG (size 64..4096; 0: 512) of the orbit in its plane, axes scaled equally:
 * the points joined in order (and closed if the orbit is), coloured dark to light (viridis) by
 * order, a ring around the first, the fitted circle (blue) and its centre (a red cross), the
 * principal axes through the mean (gray). Written atomically; KNOBS_ERR_ARG for a path not
 * ending in .png or a size out of range, before anything is drawn. */
KNOBS_API knobs_status knobs_orbit_png(const knobs_orbit *r, const char *path, int size);
KNOBS_API void knobs_orbit_free(knobs_orbit *r);

/* ==== metrics (src/metrics) ================================================================ */
/* Every standard disentanglement metric, defined as google-research/disentanglement_lib defines
 * it; docs/metrics.md gives each formula, its defaults, its source and where knobs differs.
 * Metrics run on plain arrays (codes and factors from any framework) or on a ground-truth
 * dataset with an encoder. The result of a run is a knobs_result: every score and sub-score,
 * the parameters, the seed and the seconds each metric took, as JSON or a table. */

/* The metric names, NULL-terminated: beta_vae, factor_vae, mig, mig_sampled, dci, sap,
 * modularity, explicitness, irs, unsupervised, intervention, elbo, mcc, amari; and a line on each (NULL
 * for an unknown name). */
KNOBS_API const char *const *knobs_metric_names(void);
KNOBS_API const char *knobs_metric_describe(const char *name);

typedef struct knobs_result knobs_result;

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
  /* Progress (may be NULL): called as each metric starts (done = 0, total = 1), during long
   * ones (the dataset draw, beta_vae, factor_vae, mig_sampled, intervention, elbo, the boosting
   * stages of dci), from the calling thread. Return non-zero to stop: the call then returns
   * KNOBS_ERR_INTERRUPTED with the partial result (see "Stopping" below). */
  int (*progress)(void *ctx, const char *metric, double done, double total);
  void *progress_ctx;
  /* Completion (may be NULL): called after each metric finishes, with `so_far` holding every
   * metric finished so far (this one included; "seconds" set). `so_far` belongs to the call
   * and lives until it returns; the callback may add top-level strings to it
   * (knobs_result_set_string), which stay in the final result, and may write it
   * (knobs_result_write), so a file always holds the metrics finished so far. Return KNOBS_OK
   * to go on; any other status stops the run and is returned (KNOBS_ERR_INTERRUPTED: with the
   * partial result, as for progress). */
  knobs_status (*on_metric)(void *ctx, const char *name, knobs_result *so_far);
  void *on_metric_ctx;
  /* knobs_metrics_dataset only (may be NULL): the codes of every point of the dataset's grid
   * (knobs_grid_codes_build), read instead of rendering and encoding wherever a metric encodes
   * an observation of a factor vector; see knobs_grid_codes. Refused (KNOBS_ERR_ARG) if it
   * does not match the dataset and encoder. */
  const struct knobs_grid_codes *grid_codes;
  int mcc_spearman;           /* mcc: Spearman (rank) correlations instead of Pearson [0] */
  const char *amari_unmixing; /* amari: .npy of the estimated unmixing W (k,d) [NULL] */
  const char *amari_mixing;   /* amari: .npy of the true mixing A (d,k) [NULL] */
} knobs_metrics_opts;
KNOBS_API void knobs_metrics_opts_default(knobs_metrics_opts *o);

/* The options as a table, for front ends and bindings (as knobs_config_field is for the
 * config): flags, ranges and help come from here, so they never drift from the checks. */
typedef enum {
  KNOBS_MOPT_INT,    /* int */
  KNOBS_MOPT_U64,    /* uint64_t */
  KNOBS_MOPT_DOUBLE, /* double, finite */
  KNOBS_MOPT_FLAG,   /* int, 0 or 1 (a CLI switch that takes no value) */
  KNOBS_MOPT_STR     /* const char *, the caller's string (kept, not copied) */
} knobs_mopt_kind;
enum { KNOBS_MOPT_ARRAYS = 1, KNOBS_MOPT_DATASET = 2 }; /* which entry points read an option */
typedef struct {
  const char *name;      /* "gbt_stages"; the CLI flag is --name with '_' as '-' */
  knobs_mopt_kind kind;
  size_t offset;         /* offsetof(knobs_metrics_opts, the field) */
  double min, max;       /* accepted range of numbers, inclusive (checked by the entry points) */
  const char *meta;      /* the value's placeholder in help texts: "N", "X", "LIST" */
  const char *help;      /* one line */
  const char *metrics;   /* comma list of the metrics that read it, "*" for all */
  int inputs;            /* KNOBS_MOPT_ARRAYS | KNOBS_MOPT_DATASET */
} knobs_metrics_field;
/* The i-th option (0, 1, ...), NULL past the end. */
KNOBS_API const knobs_metrics_field *knobs_metrics_opt_field(int i);
/* Set option `name` (a knobs_metrics_field name) from text with full checks: numbers by
 * strtoll/strtoull/strtod with an end pointer, in range, NaN and Inf refused; flags take
 * 0, 1, true or false; strings are kept as given (not copied: `value` must outlive `o`).
 * KNOBS_ERR_ARG naming the option and the value otherwise; `o` is unchanged on failure. */
KNOBS_API knobs_status knobs_metrics_opts_set(knobs_metrics_opts *o, const char *name, const char *value);

/* Metrics on arrays. codes (N,D): any numeric dtype (float32 keeps NumPy's float32 histogram
 * edges, as the reference sees float32 codes); factors (N,K) or (N,): integer class labels
 * (integral floats accepted); logvar (N,D) posterior log-variances or NULL (mig_sampled).
 * `metrics` is "all" (every metric the inputs allow) or a comma list. Refuses, with a message
 * naming the array and the row: mismatched N, no rows, NaN or Inf, non-integral factors, a
 * factor with a single value, D < 2, and K < 2 for the metrics that need two factors.
 * *out is a new result (free with knobs_result_free).
 *
 * Stopping: when o->progress returns non-zero (or o->on_metric returns KNOBS_ERR_INTERRUPTED)
 * the call returns KNOBS_ERR_INTERRUPTED and *out is still a result: the metrics finished
 * before the stop, "interrupted": true, and not the metric that was running. On any other
 * failure *out is NULL. The same holds for knobs_metrics_dataset. */
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
  void (*release)(void *ctx); /* frees ctx (may be NULL); called by knobs_encoder_release */
} knobs_encoder;
/* Release what an encoder holds (its ctx, through `release`) and zero it; NULL is a no-op. */
KNOBS_API void knobs_encoder_release(knobs_encoder *e);

/* A trained model as an encoder (src/models/encoder.c, built on the knobs_model_* calls
 * only): encode gives posterior means (sampled = 0) or posterior samples (sampled = 1: eps
 * from (seed, stream), the stream advancing by one per call, so the same sequence of calls
 * gives the same codes); posterior and evaluate are set when the model has a posterior (a
 * VAE; found by evaluating one blank observation), NULL otherwise (InfoGAN). batch is 0 (the
 * metrics' default): set it after the call to change it. `m` must outlive the encoder; free
 * with knobs_encoder_release. KNOBS_ERR_NOMEM, or the model's failure, with *out zeroed. */
KNOBS_API knobs_status knobs_model_encoder(knobs_model *m, int sampled, uint64_t seed, knobs_encoder *out);

/* Metrics on a ground-truth dataset (K > 0, with render) and an encoder: the array metrics on
 * num_train + num_test points drawn with the seed, and those that intervene on factors
 * (beta_vae, factor_vae, intervention) or need the model (elbo, mig_sampled). "all" is every
 * metric the encoder allows. */
KNOBS_API knobs_status knobs_metrics_dataset(knobs_data *d, const knobs_encoder *enc, const char *metrics,
                                   const knobs_metrics_opts *o, knobs_result **out);

/* The grid code table (src/metrics/grid.c): the posterior means (and log-variances, when the
 * encoder has a posterior) of every point of a grid dataset, in index order. A full-protocol
 * evaluation of dSprites draws about 2.9 million observations from its 737,280 points; with
 * the table each point is encoded once, and a saved table (knobs_grid_codes_save) makes every
 * later evaluation of the same checkpoint skip encoding altogether.
 * Scope: grid datasets whose observation is a function of the factors (rendered procedurally
 * or read by index; not datasets with a continuous draw such as physics), and deterministic
 * encoders (posterior means, not samples); elbo still evaluates its observations. Codes
 * from the table equal the encoder's on the fly up to the rounding of batch composition
 * (OpenBLAS's sums depend on the rows beside a row; ~1e-7 relative). */
typedef struct knobs_grid_codes {
  int64_t n;        /* grid points (the dataset's info.n) */
  int D;            /* code dimensions */
  float *mean;      /* (n, D) */
  float *logvar;    /* (n, D), or NULL when the encoder has no posterior */
  char data[64];    /* the dataset's name, checked on use */
} knobs_grid_codes;
/* Encode every grid point of d (in batches of enc->batch, default 512, in index order, on the
 * calling thread; `progress` as in knobs_metrics_opts, may be NULL). KNOBS_ERR_UNSUPPORTED for
 * a dataset that is not such a grid, KNOBS_ERR_DATA for a non-finite code, KNOBS_ERR_INTERRUPTED
 * if progress asked to stop; *out is zeroed on failure. */
KNOBS_API knobs_status knobs_grid_codes_build(knobs_data *d, const knobs_encoder *enc,
                                              int (*progress)(void *ctx, const char *what, double done, double total),
                                              void *progress_ctx, knobs_grid_codes *out);
/* Save as one .npy (n, D) or (n, 2D) float32 (means, then log-variances), atomically; the
 * dataset name and D are checked by knobs_grid_codes_load through the shape and `data`. */
KNOBS_API knobs_status knobs_grid_codes_save(const knobs_grid_codes *g, const char *path);
/* Load a table saved for dataset d and code_dim D (with log-variances iff want_logvar): any
 * other shape is KNOBS_ERR_FORMAT naming the file and both shapes. */
KNOBS_API knobs_status knobs_grid_codes_load(const char *path, const knobs_data *d, int D, int want_logvar,
                                             knobs_grid_codes *out);
/* Free the arrays and zero the struct; NULL is a no-op. */
KNOBS_API void knobs_grid_codes_free(knobs_grid_codes *g);
/* Whether d is a grid whose observations are a function of the factors (the table's scope). */
KNOBS_API int knobs_data_is_fixed_grid(const knobs_data *d);

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

/* ==== ICA and the metrics of continuous factors (src/metrics/ica.c, mcc.c) ================= */
/* FastICA as scikit-learn 1.2 defines it: sklearn.decomposition.FastICA(n_components=k,
 * whiten='unit-variance', algorithm='parallel', fun='logcosh', max_iter, tol, w_init,
 * whiten_solver='svd'), in double. Centre X (n,d); whiten by the SVD of the centred data (top k
 * directions); from W = sym(w_init) iterate W <- sym(E[tanh(W x) x^T] - diag(E[1 - tanh(W x)^2]) W),
 * sym(M) = (M M^T)^-1/2 M, until max_i | |(W_new W^T)_ii| - 1 | < tol or max_iter iterations;
 * rescale each source to unit variance. docs/metrics.md ("ICA") has the formulas. */
typedef struct {
  int k;                  /* components, 1..d (0: min(n, d)) [0] */
  int max_iter;           /* iterations at most (>= 1) [200] */
  double tol;             /* convergence tolerance (>= 0) [1e-4] */
  uint64_t seed;          /* draws w_init when it is NULL [0] */
  const double *w_init;   /* (k,k) initial unmixing of the whitened data (scikit-learn's w_init),
                             or NULL: k*k standard normal draws from knobs' rng with `seed`
                             (not NumPy's RandomState: a seed does not give scikit-learn's draw) */
} knobs_ica_opts;
KNOBS_API void knobs_ica_opts_default(knobs_ica_opts *o);
typedef struct {
  int n, d, k;
  double *sources;        /* (n,k) unit variance: sources = (X - mean) unmixing^T */
  double *unmixing;       /* (k,d) scikit-learn's components_ */
  double *mixing;         /* (d,k) its pseudo-inverse, scikit-learn's mixing_ */
  double *mean;           /* (d) the column means of X */
  double *kurtosis;       /* (k) excess kurtosis of each source (0 for a Gaussian; near 0 for two
                             or more sources: their rotation is not identifiable) */
  int iterations;         /* scikit-learn's n_iter_ */
  int converged;          /* 1 if the change fell below tol within max_iter (0 is not an error:
                             scikit-learn warns and returns the same numbers) */
  double change;          /* the last iteration's change, compared with tol */
} knobs_ica_result;
/* FastICA of X (n,d) row-major. KNOBS_ERR_ARG for k < 0 or k > d, max_iter < 1, tol < 0, a
 * non-finite w_init; KNOBS_ERR_DATA for n < max(k, 2), NaN or Inf in X (naming row and
 * channel), centred data of rank below k (constant or collinear channels); NOMEM. *out is NULL
 * on failure; free it with knobs_ica_result_free (the result is one block). */
KNOBS_API knobs_status knobs_ica(const double *X, int n, int d, const knobs_ica_opts *o, knobs_ica_result **out);
KNOBS_API void knobs_ica_result_free(knobs_ica_result *r);

/* Correlations of n rows of codes (n,D) and factors (n,K) into corr (D,K): corr[j*K+k] is the
 * Pearson correlation of code j and factor k (spearman = 1: of their average ranks, as
 * scipy.stats.spearmanr); 0 where a column is constant. KNOBS_ERR_ARG for n < 2, D or K < 1;
 * KNOBS_ERR_DATA for NaN/Inf (naming the row and column). */
KNOBS_API knobs_status knobs_correlations(const double *codes, const double *factors, int n, int D, int K,
                                          int spearman, double *corr);
/* The linear sum assignment of a (rows,cols) cost matrix (scipy.optimize.linear_sum_assignment):
 * min(rows, cols) pairs, each row and column used at most once, of least total cost (largest with
 * maximize = 1), by the Hungarian algorithm (O(r^2 c), r = min(rows, cols)). col_of_row (rows)
 * gets each row's column, -1 for rows left over when rows > cols. KNOBS_ERR_DATA for NaN/Inf. */
KNOBS_API knobs_status knobs_linear_assignment(const double *cost, int rows, int cols, int maximize,
                                               int *col_of_row);
/* The mean correlation coefficient of correlations corr (D,K): factors matched one-to-one to code
 * dimensions maximising the sum of |corr| (knobs_linear_assignment); match (K) gets each factor's
 * code dimension (-1 when D < K leaves it unmatched), *mcc the sum of the matched |corr| / K. */
KNOBS_API knobs_status knobs_mcc(const double *corr, int D, int K, int *match, double *mcc);
/* The Amari index of P = W A, W (k,d) an unmixing and A (d,k) a mixing, in [0,1], 0 exactly when
 * P is a scaled permutation: (1/(2k(k-1))) [sum_i (sum_j |p_ij| / max_j |p_ij| - 1) +
 * sum_j (sum_i |p_ij| / max_i |p_ij| - 1)] (0 for k = 1). KNOBS_ERR_DATA for NaN/Inf or a zero
 * row or column of P. */
KNOBS_API knobs_status knobs_amari_index(const double *W, const double *A, int k, int d, double *index);

/* ==== the knob panel server (src/serve) ===================================================== */
/* A server holds one or two trained models (run folders or checkpoint files), answers the JSON
 * API of docs/api.md and serves the page web/panel.html, embedded in the library at build time.
 * It runs on libmicrohttpd's own threads; the caller only starts and stops it. It binds to
 * 127.0.0.1 unless told otherwise and has no authentication. */
#define KNOBS_SERVE_MAX_MODELS 2
#define KNOBS_SERVE_MAX_BODY (8u << 20) /* request bodies (uploads) are capped at 8 MB */

typedef struct knobs_server knobs_server;

typedef struct {
  const char *runs[KNOBS_SERVE_MAX_MODELS]; /* run folders or .safetensors files */
  int n_runs;          /* 1 or 2 */
  const char *host;    /* numeric IPv4 address to bind; NULL: "127.0.0.1" */
  int port;            /* 0: an ephemeral port (read it with knobs_serve_port) */
  int threads;         /* request threads (>= 1); 0: 4 */
  int model_threads;   /* threads of each model's kernels; 0: 1 (lowest single-decode latency) */
  int max_connections; /* concurrent connections accepted; 0: 64 */
  int n_kl;            /* dataset samples for the per-latent KL and code scales; 0: 512 */
  int n_mi;            /* dataset samples for the latent/factor mutual information; 0: 2000 */
} knobs_serve_opts;
KNOBS_API void knobs_serve_opts_default(knobs_serve_opts *o);

/* Load the models (and each model's dataset), compute or read the cached per-latent statistics
 * (knobs.json in each run folder, see docs/api.md), and start listening. On failure nothing is
 * left running and the error detail names the run or the address. */
KNOBS_API knobs_status knobs_serve_start(const knobs_serve_opts *o, knobs_server **out);
/* The port the server listens on (the ephemeral one when opts.port was 0). */
KNOBS_API int knobs_serve_port(const knobs_server *s);
/* Stop listening, finish the requests in flight, free everything. NULL is a no-op. */
KNOBS_API void knobs_serve_stop(knobs_server *s);

/* ==== UDR: unsupervised model selection (src/metrics/udr.c, src/apps/udr_models.c) ========= */
/* The Unsupervised Disentanglement Ranking of Duan et al. 2020 ("Unsupervised Model Selection for
 * Variational Disentangled Representation Learning", arXiv:1905.12614), as google-research/
 * disentanglement_lib computes it (evaluation/udr/metrics/udr.py, compute_udr_sklearn; the KL
 * vectors of evaluation/udr/evaluate.py); docs/metrics.md ("UDR") gives every step. R runs
 * (models of one setting trained from different seeds) encode the same N inputs; for each run
 * its posterior means are standardised per latent (scikit-learn's StandardScaler), latents with
 * KL <= 0.01 are zeroed (udr.py's fixed constant) and latents with KL > kl_filter_threshold are
 * "active". For each ordered pair (i, j), i != j, a (D,D) matrix C relates run i's latents
 * (rows) to run j's (columns): lasso: C[a][b] = |w_a| of scikit-learn's Lasso(alpha) predicting
 * j's latent b from all of i's latents; spearman: the |Spearman correlation| of the two latents
 * (NaN if either is constant, as scipy gives it). On C restricted to the active latents (all
 * of them without filter_low_kl), the pair's score is udr.py's relative strength,
 * (mean over columns of max^2/sum + mean over rows of max^2/sum) / 2, a NaN term counting 0 (a
 * NaN in a column or row makes that column's or row's term NaN). A run's UDR score is the
 * median of the pair scores (j, i) over the other runs j. */
typedef enum {
  KNOBS_UDR_LASSO = 0,    /* udr.py's "lasso" (its default) */
  KNOBS_UDR_SPEARMAN = 1  /* udr.py's "spearman" */
} knobs_udr_variant;
typedef struct {
  knobs_udr_variant variant; /* [KNOBS_UDR_LASSO] */
  double alpha;           /* lasso: scikit-learn's alpha, the L1 weight of
                             (1/(2N)) |y - X w - b|^2 + alpha |w|_1 (> 0) [0.1, udr.py's] */
  int max_iter;           /* lasso: coordinate descent sweeps at most (>= 1) [1000] */
  double tol;             /* lasso: scikit-learn's stopping tolerance (>= 0) [1e-4] */
  int filter_low_kl;      /* 1: score only the active latents [1] */
  double kl_filter_threshold; /* a latent is active when its KL is above it (>= 0) [0.01] */
  int raw_correlations;   /* 1: the result keeps every pair's matrix C (udr.py's
                             include_raw_correlations) [1] */
  int threads;            /* pairs are split over this many threads (>= 1); the numbers do
                             not depend on it [1] */
  int n;                  /* knobs_udr_models: observations drawn (>= 2) [1000, udr.gin's
                             num_data_points] */
  uint64_t seed;          /* knobs_udr_models: the draw of the observations [0]. (udr.py also
                             hands its random state to Lasso, whose cyclic coordinate descent
                             does not use it: the scores need no other seed) */
} knobs_udr_opts;
KNOBS_API void knobs_udr_opts_default(knobs_udr_opts *o);
typedef struct {
  int R, N, D;            /* runs, inputs, latents */
  knobs_udr_variant variant;
  double *scores;         /* (R) each run's UDR score (udr.py's model_scores) */
  double *pairwise;       /* (R,R) [i*R + j]: the score of pair (i, j); 0 on the diagonal
                             (udr.py's pairwise_disentanglement_scores) */
  double *correlations;   /* (R,R,D,D) [((i*R + j)*D + a)*D + b]: C of pair (i, j) over all
                             latents, zeros for i == j (udr.py's raw_correlations); NULL unless
                             opts.raw_correlations */
  double *kl;             /* (R,D) the KL vectors used (zeros when none were given) */
  int *active;            /* (R,D) 1 for the latents scored */
  int *n_active;          /* (R) how many */
} knobs_udr_result;
/* UDR of R runs' posterior means reps (R,N,D) (float32, row-major: run r's input k's latent d
 * at reps[(r*N + k)*D + d]) and their KL vectors kl (R,D) (the mean over the N inputs of each
 * latent's KL to the prior, 0.5 (mu^2 + exp(logvar) - logvar - 1)), or kl NULL: no latent
 * zeroed and every latent active. A pair in which one run has no active latent scores 0
 * (udr.py fails on it). o NULL: the defaults. KNOBS_ERR_ARG for R < 2, N < 2, D < 1, an unknown
 * variant, alpha <= 0, max_iter < 1, tol < 0, a negative or NaN threshold, threads < 1;
 * KNOBS_ERR_DATA for NaN or Inf in reps (naming run, row and latent) or a NaN, infinite or
 * negative KL; KNOBS_ERR_NOMEM. *out is NULL on failure; free it with knobs_udr_result_free
 * (one block). The same inputs and options give the same bits, whatever the thread count. */
KNOBS_API knobs_status knobs_udr(const float *reps, const double *kl, int R, int N, int D,
                                 const knobs_udr_opts *o, knobs_udr_result **out);
/* UDR of R trained models on dataset d: o->n observations drawn with o->seed (knobs_data_draw,
 * in chunks of 256 on streams 0, 1, ...: the same inputs for every model), encoded by each
 * model's posterior (knobs_model_encode: means and log-variances), the KL vectors as above,
 * then knobs_udr. KNOBS_ERR_ARG for R < 2, a NULL model or dataset, models of different code
 * sizes or of an input shape other than d's (naming the model), n < 2;
 * KNOBS_ERR_UNSUPPORTED for a model without a Gaussian posterior (InfoGAN); a failed draw or
 * encode passes its status through. */
KNOBS_API knobs_status knobs_udr_models(knobs_model *const *models, int R, knobs_data *d,
                                        const knobs_udr_opts *o, knobs_udr_result **out);
KNOBS_API void knobs_udr_result_free(knobs_udr_result *r);


/* ==== in-silico perturbation of cells (src/apps/perturb.c; docs/apps.md "knobs perturb") ==== */
/* The name of class c of factor k of d ("ctrl", "type1"), or NULL when d names none or k, c are
 * out of range; and the class of factor k named `name`, or -1 if none has that name. */
KNOBS_API const char *knobs_data_class_name(const knobs_data *d, int k, int c);
KNOBS_API int knobs_data_class_find(const knobs_data *d, int k, const char *name);

/* The count likelihood of decoded codes z (n,Z) of a model with likelihood nb or zinb: mu (n,G)
 * the NB means at library sizes lib (n) (NULL: 10,000 counts each, as knobs_model_decode), theta
 * (G) the gene-wise inverse dispersions exp(px_r), pi (n,G) the dropout logits (ZINB; for NB
 * filled with -inf: no dropout); theta and pi may be NULL. KNOBS_ERR_UNSUPPORTED for another
 * likelihood. */
/* The count likelihood itself, as scVI defines it (log_nb_positive / log_zinb_positive, eps
 * 1e-8): log p(x | mu, theta) of a negative binomial with mean mu > 0 and inverse dispersion
 * theta > 0 at a count x >= 0, or with pi_logit not NaN the zero-inflated one whose dropout
 * probability is sigmoid(pi_logit); its partial derivatives w.r.t. mu, theta and pi_logit to
 * the pointers that are not NULL. The loss of --likelihood nb|zinb is minus its sum over genes. */
KNOBS_API double knobs_counts_logp(double x, double mu, double theta, double pi_logit, double *dmu, double *dtheta,
                                   double *dpi);

KNOBS_API knobs_status knobs_model_decode_counts(knobs_model *m, const float *z, int n, const float *lib, float *mu,
                                                 float *theta, float *pi);

/* Which cells: factors by name (or number), classes by name (or number when the dataset names
 * none). Every string is required. */
typedef struct {
  const char *label;      /* the condition's factor ["condition"] */
  const char *control;    /* its control class ["ctrl"] */
  const char *stim;       /* its perturbed class ["stim"] */
  const char *celltype;   /* the cell type's factor ["celltype"] */
  const char *hold_out;   /* the cell type whose stim cells are predicted (no default: NULL) */
  int top_de;             /* size of the top differentially expressed gene set [100] */
  double target_sum;      /* library normalisation: counts / library * target_sum, then log1p [1e4] */
  double amount;          /* t of z_new = z_ctrl + t * delta [1] */
} knobs_perturb_opts;
KNOBS_API void knobs_perturb_opts_default(knobs_perturb_opts *o);

/* Scores of one prediction of the held-out type's mean expression against the truth, over all
 * genes and over the top DE genes: r2 is the squared Pearson correlation (as scGen reports),
 * cod the coefficient of determination 1 - SS_res / SS_tot (truth the target; can be < 0). */
typedef struct {
  double r2_all, r2_top, cod_all, cod_top;
} knobs_perturb_score;

typedef struct {
  int G, Z;               /* genes, code size */
  int n_top;              /* genes in top (min(top_de, G)) */
  int64_t n_ctrl, n_stim; /* the held-out type's control and stim cells */
  int64_t n_other_ctrl, n_other_stim; /* the other types' control and stim cells (delta's) */
  /* each (G): mean over cells of log1p(counts / library * target_sum) */
  float *pred;            /* the cells decoded from (posterior means of the held-out type's
                             control cells + amount * delta), expressed as in knobs_perturb */
  float *truth;           /* the held-out type's stim cells */
  float *ctrl;            /* its control cells: the "no change" baseline */
  float *shift;           /* ctrl + (other types' stim mean - their control mean): the "mean
                             shift in gene space" baseline */
  float *delta;           /* (Z) mean posterior mean of the other types' stim cells minus that of
                             their control cells (knobs_attribute_vector with stim = 1) */
  int32_t *top;           /* (n_top) gene indices by decreasing |truth - ctrl| (the log fold
                             change in log1p-normalised expression) */
  knobs_perturb_score model, no_change, mean_shift;
} knobs_perturb_result;

/* scGen's latent arithmetic on every cell of d (raw counts: whole non-negative numbers, C = the
 * model's genes, H = W = 1). Cells whose label is neither control nor stim are left out. A
 * count model (likelihood nb or zinb) reads the raw counts, and a predicted cell's expression
 * is the expectation, under the model's NB (ZINB) at the control cell's own library L, of
 * log1p(x / L * target_sum): the quantity the truth averages over real cells (log1p of the mean
 * would be biased upwards by Jensen's inequality). A Gaussian model is taken to have been
 * trained on log1p(counts) (counts:log1p), so it reads log1p(x) and its decode y becomes counts
 * max(expm1(y), 0), then normalised as a cell. Errors: KNOBS_ERR_ARG for an unknown factor or class, a held-out type with
 * no control or no stim cells, no control or no stim cells in the other types, data whose shape
 * is not the model's; KNOBS_ERR_DATA for data that are not raw counts (naming the cell and
 * gene); KNOBS_ERR_UNSUPPORTED for a model with no Gaussian posterior or with a Bernoulli
 * likelihood. The result's arrays are malloc'ed: free with knobs_perturb_result_free
 * (NULL-safe); on error nothing is left allocated. */
KNOBS_API knobs_status knobs_perturb(knobs_model *m, knobs_data *d, const knobs_perturb_opts *o,
                                     knobs_perturb_result *out);
KNOBS_API void knobs_perturb_result_free(knobs_perturb_result *r);
/* ==== sequences: the dsvae model's two codes, and swaps (src/models/dsvae.c, src/apps/swap.c) ==
 * A dsvae model (docs/models.md) codes an observation of T frames, (T, C/T, H, W), as one static
 * code f (f_dim) and one dynamic code z_t (latents) per frame. knobs_model_encode returns f's
 * posterior (mean and log-variance, (n, f_dim)): the representation the metrics see;
 * knobs_model_decode decodes an f with the learned prior's mean path z_t = mu_p(z_<t). The
 * functions below reach both codes. Each returns KNOBS_ERR_UNSUPPORTED (naming the model) for
 * a model that is not a dsvae and KNOBS_ERR_ARG for n < 0; arrays are caller-owned. */
/* The frames T, f's and z_t's dimensions (any pointer may be NULL). */
KNOBS_API knobs_status knobs_dsvae_dims(const knobs_model *m, int *T, int *f_dim, int *z_dim);
/* Posterior means of n sequences x (n,C,H,W): f_mean (n,f_dim) and z_mean (n,T,z_dim) (either
 * may be NULL). The full variant's q(z_t | x_1:T, f) is taken at f's mean. */
KNOBS_API knobs_status knobs_dsvae_encode(knobs_model *m, const float *x, int n, float *f_mean, float *z_mean);
/* n sequences x (n,C,H,W) decoded from f (n,f_dim) and z (n,T,z_dim): Bernoulli probabilities
 * (or Gaussian means). */
KNOBS_API knobs_status knobs_dsvae_decode(knobs_model *m, const float *f, const float *z, int n, float *x);
/* n draws of z_1:T (n,T,z_dim) from the learned prior p(z_t | z_<t): sampled with the rng of
 * `seed` if `sample`, else the mean path (each z_t the prior's mean given the earlier means). */
KNOBS_API knobs_status knobs_dsvae_prior(knobs_model *m, int n, uint64_t seed, int sample, float *z);

/* The swap picture: `pairs` pairs of sequences (A, B) drawn from d with `seed`; for each pair
 * four rows of T frames: A, B, A's dynamic codes with B's static code, B's dynamic codes with
 * A's static code (posterior means). A PNG of every row if `path` ends in .png; an animated GIF
 * (T frames, each the grid of the rows' frame t) if it ends in .gif; written atomically.
 * KNOBS_ERR_ARG for another ending or pairs outside 1..256 (before anything is drawn);
 * KNOBS_ERR_UNSUPPORTED for a model that is not a dsvae; the data must have the model's shape
 * (KNOBS_ERR_DATA). */
KNOBS_API knobs_status knobs_swap_picture(knobs_model *m, knobs_data *d, int pairs, uint64_t seed, const char *path);

/* The swap score on dsprites:seq (docs/apps.md "Swap"): n pairs drawn with `seed`, each frame
 * of the generated sequences read by the dSprites oracle. A sequence's static factors "by the
 * vote" are the most frequent shape and scale over its frames. The model is a dsvae, or a
 * per-frame model of the data's frames (the baseline without a static code): its latents ordered
 * by the share of their variance within sequences, the k most constant taken as the static code
 * (a sequence's: their mean over its frames), k in 1..D-1 chosen by the best swaps on 64 pairs
 * of another draw. */
typedef struct {
  int pairs;              /* n */
  long frames;            /* swapped frames checked (2 n T) */
  double static_acc;      /* share of swapped frames whose shape and scale equal the static donor's */
  double static_seq_acc;  /* share of swapped sequences whose shape and scale by the vote do */
  double shape_acc, shape_seq_acc; /* the same for the shape alone (chance 1/3) */
  double dynamic_acc;     /* share whose posX and posY are each within 1 grid step (of 32) of the
                             dynamics donor's frame t (a grid step is about one pixel) */
  double dynamic_acc3;    /* the same within 3 grid steps: how closely the motion follows */
  double gen_static_acc;  /* generation: f of one sequence, z_1:T sampled from the learned prior;
                             share of frames t >= 2 whose shape and scale equal frame 1's (dsvae;
                             -1 for a per-frame model) */
  double recon_static_acc, recon_static_seq_acc, recon_dynamic_acc; /* the checks on plain
                             reconstructions (own codes) */
  int static_dims;        /* per-frame model: latents taken as static (0 for a dsvae) */
  unsigned long long static_mask; /* which (bit j: latent j) */
} knobs_swap_score;
/* KNOBS_ERR_ARG for n outside 1..100000; KNOBS_ERR_UNSUPPORTED for a model that is neither a
 * dsvae nor a per-frame model of the data's frames, or data other than dsprites:seq (naming it). */
KNOBS_API knobs_status knobs_swap_evaluate(knobs_model *m, knobs_data *d, int n, uint64_t seed, knobs_swap_score *out);


#ifdef __cplusplus
}
#endif
#endif

