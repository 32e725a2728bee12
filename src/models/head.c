/* head.c: property heads: a small MLP on latent codes, Z -> hidden (ReLU) x layers -> 1, the
 * knobs_head_* API of knobs.h. Trained with Adam on (codes, labels): mean squared error, or for
 * 0/1 labels the logistic loss (the output is then the probability). The kernels are the
 * engine's (nn.h: kn_linear_*, kn_relu_*, kn_adam_step), run on the calling thread (no pool).
 *
 * Here and not in src/apps: the training-time property penalty (model.c) loads and runs a head,
 * and models must not call apps; apps (design) use it through the public API like anyone else.
 *
 * Training details (knobs_head_fit):
 *   - the held-out rows are the LAST floor(n * val_frac) rows, unshuffled (as the metrics'
 *     train_frac); shuffle the rows first if their order means something;
 *   - regression labels are standardised with the training rows' mean and (population) standard
 *     deviation while training, and the scale is folded into the last layer afterwards, so the
 *     saved network predicts the label itself;
 *   - initialisation as torch.nn.Linear (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
 *     biases) from (seed, KN_STREAM_INIT); minibatches are drawn without replacement from a
 *     permutation of the training rows, a new one per epoch, from (seed, KN_STREAM_DATA);
 *     torch.optim.Adam's defaults (0.9, 0.999, 1e-8) with the given learning rate.
 *
 * The file (.safetensors): the tensors of torch.nn.Sequential(Linear(Z, hidden), ReLU(), ...,
 * Linear(hidden, 1)) under its state_dict names "0.weight", "0.bias", "2.weight", ...,
 * "<2*layers>.weight" (F32), so `seq.load_state_dict(load_file(path))` loads it; the
 * metadata (strings): format "pt", kind "knobs_head", knobs_version, Z, hidden, layers, logistic
 * ("1": apply a sigmoid to the Sequential's output), output ("value" or "probability").
 *
 * Not here: input standardisation (codes are fed as they are), early stopping, weight decay. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "nn/nn.h"

#define HEAD_MAX_LAYERS 16
#define HEAD_MAX_HIDDEN 4096
#define HEAD_CAP 256 /* rows per chunk of the evaluation buffers */

struct knobs_head {
  int Z, hidden, layers, logistic;
  float *p;                         /* all parameters: per linear layer W (out,in) then b (out) */
  size_t n_p;
  size_t w_off[HEAD_MAX_LAYERS + 1], b_off[HEAD_MAX_LAYERS + 1];
  int cap;                          /* rows the buffers below hold */
  float *h;                         /* (layers, cap, hidden) hidden outputs after the ReLU */
  float *o;                         /* (cap) outputs of the last linear layer */
  float *gh, *gpre;                 /* (cap, hidden) gradients after / before a ReLU */
  float *go;                        /* (cap) gradient of the last layer's output */
};

static int lin_in(const knobs_head *h, int l) { return l == 0 ? h->Z : h->hidden; }
static int lin_out(const knobs_head *h, int l) { return l == h->layers ? 1 : h->hidden; }

void knobs_head_opts_default(knobs_head_opts *o) {
  *o = (knobs_head_opts){.hidden = 64, .layers = 2, .steps = 2000, .batch = 256, .lr = 1e-3, .logistic = 0,
                         .val_frac = 0.1, .seed = 0};
}

void knobs_head_free(knobs_head *h) {
  if (!h) return;
  kn_free(h->p), kn_free(h->h), kn_free(h->o), kn_free(h->gh), kn_free(h->gpre), kn_free(h->go);
  free(h);
}

int knobs_head_dim(const knobs_head *h) { return h ? h->Z : 0; }

/* A head of this shape with zeroed parameters and buffers for `cap` rows; NULL (error set) if
 * out of memory. */
static knobs_head *head_new(int Z, int hidden, int layers, int logistic, int cap) {
  knobs_head *h = calloc(1, sizeof *h);
  if (!h) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate a property head");
    return NULL;
  }
  h->Z = Z, h->hidden = layers ? hidden : 0, h->layers = layers, h->logistic = logistic, h->cap = cap;
  size_t off = 0;
  for (int l = 0; l <= layers; l++) {
    h->w_off[l] = off;
    off += (size_t)lin_out(h, l) * lin_in(h, l);
    h->b_off[l] = off;
    off += (size_t)lin_out(h, l);
  }
  h->n_p = off;
  size_t hc = (size_t)cap * (h->hidden ? h->hidden : 1);
  h->p = kn_alloc(sizeof(float) * off, "head parameters");
  h->h = kn_alloc(sizeof(float) * hc * (layers ? layers : 1), "head activations");
  h->o = kn_alloc(sizeof(float) * (size_t)cap, "head outputs");
  h->gh = kn_alloc(sizeof(float) * hc, "head gradients");
  h->gpre = kn_alloc(sizeof(float) * hc, "head gradients");
  h->go = kn_alloc(sizeof(float) * (size_t)cap, "head gradients");
  if (!h->p || !h->h || !h->o || !h->gh || !h->gpre || !h->go) {
    knobs_head_free(h);
    return NULL;
  }
  memset(h->p, 0, sizeof(float) * off);
  return h;
}

/* Forward n <= cap rows of z (n,Z): hidden outputs to h->h, the last layer's output to h->o. */
static void head_forward(knobs_head *h, const float *z, int n) {
  const float *in = z;
  size_t hc = (size_t)h->cap * h->hidden;
  for (int l = 0; l < h->layers; l++) {
    float *y = h->h + (size_t)l * hc;
    kn_linear_forward(NULL, y, in, h->p + h->w_off[l], h->p + h->b_off[l], n, lin_in(h, l), h->hidden);
    kn_relu_forward(NULL, y, y, (size_t)n * h->hidden);
    in = y;
  }
  kn_linear_forward(NULL, h->o, in, h->p + h->w_off[h->layers], h->p + h->b_off[h->layers], n,
                    lin_in(h, h->layers), 1);
}

/* Backward of the last forward (n rows of z) from h->go: parameter gradients add into g (laid
 * out as h->p) if non-NULL, the input gradient into dz (n,Z) if non-NULL. */
static void head_backward(knobs_head *h, const float *z, int n, float *g, float *dz) {
  size_t hc = (size_t)h->cap * h->hidden;
  int L = h->layers;
#define GW(l) (g ? g + h->w_off[l] : NULL)
#define GB(l) (g ? g + h->b_off[l] : NULL)
  if (L == 0) {
    kn_linear_backward(NULL, dz, GW(0), GB(0), h->go, z, h->p + h->w_off[0], n, h->Z, 1);
    return;
  }
  memset(h->gh, 0, sizeof(float) * (size_t)n * h->hidden);
  kn_linear_backward(NULL, h->gh, GW(L), GB(L), h->go, h->h + (size_t)(L - 1) * hc, h->p + h->w_off[L], n,
                     h->hidden, 1);
  for (int l = L - 1; l >= 0; l--) {
    memset(h->gpre, 0, sizeof(float) * (size_t)n * h->hidden);
    kn_relu_backward(NULL, h->gpre, h->gh, h->h + (size_t)l * hc, (size_t)n * h->hidden);
    float *dx = dz;
    if (l > 0) {
      dx = h->gh;
      memset(dx, 0, sizeof(float) * (size_t)n * h->hidden);
    }
    kn_linear_backward(NULL, dx, GW(l), GB(l), h->gpre, l ? h->h + (size_t)(l - 1) * hc : z, h->p + h->w_off[l], n,
                       lin_in(h, l), h->hidden);
  }
#undef GW
#undef GB
}

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

knobs_status knobs_head_eval(knobs_head *h, const float *z, int n, double *y, const double *dy, float *dz) {
  if (!h) return kn_err(KNOBS_ERR_ARG, "head eval: no head");
  if (n < 0) return kn_err(KNOBS_ERR_ARG, "head eval: negative count %d", n);
  if (kn_blas_init()) return knobs_last_status(); /* no pool here: BLAS on the calling thread */
  if (n > 0 && (!z || !y)) return kn_err(KNOBS_ERR_ARG, "head eval: codes and outputs must not be NULL");
  int Z = h->Z;
  for (size_t i = 0; i < (size_t)n * Z; i++)
    if (!isfinite(z[i]))
      return kn_err(KNOBS_ERR_ARG, "head eval: code %zu, latent %zu is %g", i / (size_t)Z, i % (size_t)Z, (double)z[i]);
  for (int i0 = 0; i0 < n; i0 += h->cap) {
    int b = n - i0 < h->cap ? n - i0 : h->cap;
    const float *zc = z + (size_t)i0 * Z;
    head_forward(h, zc, b);
    for (int r = 0; r < b; r++) {
      double o = h->o[r], v = h->logistic ? sigmoid(o) : o;
      y[i0 + r] = v;
      double d = dy ? dy[i0 + r] : 1.0;
      h->go[r] = (float)(h->logistic ? d * v * (1.0 - v) : d);
    }
    if (dz) head_backward(h, zc, b, NULL, dz + (size_t)i0 * Z);
  }
  return KNOBS_OK;
}

/* ---- training ------------------------------------------------------------------------------ */

static knobs_status check_opts(const knobs_head_opts *o) {
  if (o->layers < 0 || o->layers > HEAD_MAX_LAYERS)
    return kn_err(KNOBS_ERR_ARG, "head: layers %d out of range [0, %d]", o->layers, HEAD_MAX_LAYERS);
  if (o->layers && (o->hidden < 1 || o->hidden > HEAD_MAX_HIDDEN))
    return kn_err(KNOBS_ERR_ARG, "head: hidden %d out of range [1, %d]", o->hidden, HEAD_MAX_HIDDEN);
  if (o->steps < 1) return kn_err(KNOBS_ERR_ARG, "head: steps %d must be at least 1", o->steps);
  if (o->batch < 1 || o->batch > 65536) return kn_err(KNOBS_ERR_ARG, "head: batch %d out of range [1, 65536]", o->batch);
  if (!(o->lr > 0) || !isfinite(o->lr)) return kn_err(KNOBS_ERR_ARG, "head: learning rate %g must be positive", o->lr);
  if (!(o->val_frac >= 0 && o->val_frac < 1))
    return kn_err(KNOBS_ERR_ARG, "head: val_frac %g out of range [0, 1)", o->val_frac);
  if (o->logistic != 0 && o->logistic != 1) return kn_err(KNOBS_ERR_ARG, "head: logistic is %d (0 or 1)", o->logistic);
  return KNOBS_OK;
}

/* The training data's rules: finite codes and labels, 0/1 labels for a logistic head, labels
 * not all equal over the n_tr training rows. */
static knobs_status check_data(const float *codes, const double *y, int n, int n_tr, int Z, int logistic) {
  for (size_t i = 0; i < (size_t)n * Z; i++)
    if (!isfinite(codes[i]))
      return kn_err(KNOBS_ERR_DATA, "head: code %zu, latent %zu is %g", i / (size_t)Z, i % (size_t)Z, (double)codes[i]);
  for (int i = 0; i < n; i++) {
    if (!isfinite(y[i])) return kn_err(KNOBS_ERR_DATA, "head: label %d is %g", i, y[i]);
    if (logistic && y[i] != 0 && y[i] != 1)
      return kn_err(KNOBS_ERR_DATA, "head: label %d is %g; a logistic head takes labels 0 and 1", i, y[i]);
  }
  for (int i = 1; i < n_tr; i++)
    if (y[i] != y[0]) return KNOBS_OK;
  return kn_err(KNOBS_ERR_DATA, "head: the %d training labels are all %g: nothing to learn", n_tr, y[0]);
}

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every weight and bias, layer by layer, as nn.Linear. */
static void head_init(knobs_head *h, uint64_t seed) {
  kn_rng r;
  kn_rng_seed(&r, seed, KN_STREAM_INIT);
  for (int l = 0; l <= h->layers; l++) {
    float bound = 1.0f / sqrtf((float)lin_in(h, l));
    kn_rng_uniform_fill(&r, h->p + h->w_off[l], (size_t)lin_out(h, l) * lin_in(h, l), -bound, bound);
    kn_rng_uniform_fill(&r, h->p + h->b_off[l], (size_t)lin_out(h, l), -bound, bound);
  }
}

/* RMSE (regression) or error rate (logistic) of h on n rows. */
static double head_error(knobs_head *h, const float *codes, const double *y, int n, double *pred) {
  knobs_head_eval(h, codes, n, pred, NULL, NULL);
  double s = 0;
  for (int i = 0; i < n; i++) {
    if (h->logistic) s += (pred[i] >= 0.5) != (y[i] != 0);
    else s += (pred[i] - y[i]) * (pred[i] - y[i]);
  }
  return h->logistic ? s / n : sqrt(s / n);
}

knobs_status knobs_head_fit(const float *codes, const double *y, int n, int Z, const knobs_head_opts *o,
                            knobs_head **out, double *val_error) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "head fit: no output pointer");
  *out = NULL;
  if (kn_blas_init()) return knobs_last_status();
  knobs_head_opts def;
  if (!o) knobs_head_opts_default(&def), o = &def;
  if (!codes || !y) return kn_err(KNOBS_ERR_ARG, "head fit: codes and labels must not be NULL");
  if (Z < 1 || Z > 65536) return kn_err(KNOBS_ERR_ARG, "head fit: code width %d out of range [1, 65536]", Z);
  knobs_status s = check_opts(o);
  if (s) return s;
  int n_val = (int)floor((double)n * o->val_frac), n_tr = n - n_val;
  if (n < 2 || n_tr < 2)
    return kn_err(KNOBS_ERR_ARG, "head fit: %d rows (%d for training after holding out %d); at least 2 are needed",
                  n, n_tr, n_val);
  if ((s = check_data(codes, y, n, n_tr, Z, o->logistic))) return s;
  double mean = 0, sd = 1;
  if (!o->logistic) {
    double sq = 0;
    for (int i = 0; i < n_tr; i++) mean += y[i];
    mean /= n_tr;
    for (int i = 0; i < n_tr; i++) sq += (y[i] - mean) * (y[i] - mean);
    sd = sqrt(sq / n_tr);
    if (!(sd > 0)) return kn_err(KNOBS_ERR_DATA, "head: the training labels have no spread");
  }
  int bs = o->batch < n_tr ? o->batch : n_tr;
  knobs_head *h = head_new(Z, o->hidden, o->layers, o->logistic, bs > HEAD_CAP ? bs : HEAD_CAP);
  if (!h) return knobs_last_status();
  float *g = kn_alloc(sizeof(float) * h->n_p, "head gradients");
  float *am = kn_alloc(sizeof(float) * h->n_p, "Adam moments"), *av = kn_alloc(sizeof(float) * h->n_p, "Adam moments");
  float *zb = kn_alloc(sizeof(float) * (size_t)bs * Z, "head batch"), *tb = kn_alloc(sizeof(float) * (size_t)bs, "head batch");
  int *perm = kn_alloc(sizeof(int) * (size_t)n_tr, "head permutation");
  double *pred = kn_alloc(sizeof(double) * (size_t)(n_val ? n_val : n_tr), "head predictions");
  if (!g || !am || !av || !zb || !tb || !perm || !pred) {
    s = KNOBS_ERR_NOMEM;
    goto out;
  }
  memset(am, 0, sizeof(float) * h->n_p), memset(av, 0, sizeof(float) * h->n_p);
  head_init(h, o->seed);
  kn_adam adam = {o->lr, 0.9, 0.999, 1e-8, 0, 0, h->n_p, am, av};
  kn_rng r;
  kn_rng_seed(&r, o->seed, KN_STREAM_DATA);
  int pos = n_tr;
  for (int step = 0; step < o->steps; step++) {
    for (int b = 0; b < bs; b++) {
      if (pos == n_tr) kn_rng_permutation(&r, perm, n_tr), pos = 0;
      int i = perm[pos++];
      memcpy(zb + (size_t)b * Z, codes + (size_t)i * Z, sizeof(float) * (size_t)Z);
      tb[b] = (float)(o->logistic ? y[i] : (y[i] - mean) / sd);
    }
    head_forward(h, zb, bs);
    /* MSE: d/do mean (o - t)^2 = 2 (o - t) / B; logistic: d/do mean BCE(sigmoid(o), t) = (sigmoid(o) - t) / B */
    for (int b = 0; b < bs; b++)
      h->go[b] = (float)(o->logistic ? (sigmoid(h->o[b]) - tb[b]) / bs : 2.0 * ((double)h->o[b] - tb[b]) / bs);
    memset(g, 0, sizeof(float) * h->n_p);
    head_backward(h, zb, bs, g, NULL);
    kn_adam_step(NULL, &adam, h->p, g);
  }
  if (!o->logistic) { /* fold the label scale into the last layer: y = sd * o + mean */
    int L = h->layers;
    float *W = h->p + h->w_off[L];
    for (int k = 0; k < lin_in(h, L); k++) W[k] = (float)(W[k] * sd);
    h->p[h->b_off[L]] = (float)(h->p[h->b_off[L]] * sd + mean);
  }
  if (val_error) { /* with no held-out rows (val_frac 0 or few rows), the training error */
    int v0 = n_val ? n_tr : 0, nv = n_val ? n_val : n_tr;
    *val_error = head_error(h, codes + (size_t)v0 * Z, y + v0, nv, pred);
  }
out:
  kn_free(g), kn_free(am), kn_free(av), kn_free(zb), kn_free(tb), kn_free(perm), kn_free(pred);
  if (s) {
    knobs_head_free(h);
    return s;
  }
  *out = h;
  return KNOBS_OK;
}

/* ---- files --------------------------------------------------------------------------------- */

knobs_status knobs_head_save(const knobs_head *h, const char *path) {
  if (!h || !path) return kn_err(KNOBS_ERR_ARG, "head save: no head or no path");
  kn_st_entry e[2 * (HEAD_MAX_LAYERS + 1)];
  char names[2 * (HEAD_MAX_LAYERS + 1)][32];
  int k = 0;
  for (int l = 0; l <= h->layers; l++) {
    kn_strfmt(names[k], 32, "%d.weight", 2 * l);
    e[k] = (kn_st_entry){.name = names[k], .dtype = KNOBS_F32, .ndim = 2,
                         .shape = {lin_out(h, l), lin_in(h, l)}, .data = h->p + h->w_off[l]};
    k++;
    kn_strfmt(names[k], 32, "%d.bias", 2 * l);
    e[k] = (kn_st_entry){.name = names[k], .dtype = KNOBS_F32, .ndim = 1, .shape = {lin_out(h, l)},
                         .data = h->p + h->b_off[l]};
    k++;
  }
  char meta[512];
  kn_strfmt(meta, sizeof meta,
            "{\"format\":\"pt\",\"kind\":\"knobs_head\",\"knobs_version\":\"%s\",\"Z\":\"%d\",\"hidden\":\"%d\","
            "\"layers\":\"%d\",\"logistic\":\"%d\",\"output\":\"%s\"}",
            KNOBS_VERSION, h->Z, h->hidden, h->layers, h->logistic, h->logistic ? "probability" : "value");
  return kn_st_write(path, e, k, meta);
}

/* The whole-number metadata value `key` of a head file, in [lo, hi]. */
static knobs_status meta_int(const char *path, cJSON *meta, const char *key, long lo, long hi, int *v) {
  cJSON *it = cJSON_GetObjectItemCaseSensitive(meta, key);
  if (!cJSON_IsString(it)) return kn_err(KNOBS_ERR_FORMAT, "%s: property head metadata lacks '%s'", path, key);
  char *end;
  errno = 0;
  long x = strtol(it->valuestring, &end, 10);
  if (end == it->valuestring || *end || errno || x < lo || x > hi)
    return kn_err(KNOBS_ERR_FORMAT, "%s: property head metadata '%s' is '%s' (a whole number in [%ld, %ld])", path,
                  key, it->valuestring, lo, hi);
  *v = (int)x;
  return KNOBS_OK;
}

knobs_status knobs_head_load(const char *path, knobs_head **out) {
  if (!out) return kn_err(KNOBS_ERR_ARG, "head load: no output pointer");
  *out = NULL;
  if (!path) return kn_err(KNOBS_ERR_ARG, "head load: no path");
  kn_safetensors st;
  knobs_status s = kn_st_read(path, &st);
  if (s) return s;
  cJSON *meta = st.metadata_json ? cJSON_Parse(st.metadata_json) : NULL;
  cJSON *kind = cJSON_GetObjectItemCaseSensitive(meta, "kind");
  knobs_head *h = NULL;
  int Z = 0, hidden = 0, layers = 0, logistic = 0;
  if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "knobs_head")) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: not a knobs property head (no kind \"knobs_head\" in __metadata__)", path);
    goto out;
  }
  if ((s = meta_int(path, meta, "Z", 1, 65536, &Z)) || (s = meta_int(path, meta, "layers", 0, HEAD_MAX_LAYERS, &layers)) ||
      (s = meta_int(path, meta, "hidden", layers ? 1 : 0, HEAD_MAX_HIDDEN, &hidden)) ||
      (s = meta_int(path, meta, "logistic", 0, 1, &logistic)))
    goto out;
  if (st.n != 2 * (layers + 1)) {
    s = kn_err(KNOBS_ERR_FORMAT, "%s: %d tensors, a head of %d hidden layers has %d", path, st.n, layers,
               2 * (layers + 1));
    goto out;
  }
  if (!(h = head_new(Z, hidden, layers, logistic, HEAD_CAP))) {
    s = knobs_last_status();
    goto out;
  }
  for (int l = 0; l <= layers && !s; l++) {
    char nw[32], nb[32];
    kn_strfmt(nw, sizeof nw, "%d.weight", 2 * l);
    kn_strfmt(nb, sizeof nb, "%d.bias", 2 * l);
    int64_t sw[2] = {lin_out(h, l), lin_in(h, l)}, sb[1] = {lin_out(h, l)};
    s = kn_st_get_f32(&st, nw, 2, sw, h->p + h->w_off[l]);
    if (!s) s = kn_st_get_f32(&st, nb, 1, sb, h->p + h->b_off[l]);
  }
  for (size_t i = 0; !s && i < h->n_p; i++)
    if (!isfinite(h->p[i])) s = kn_err(KNOBS_ERR_DATA, "%s: property head parameter %zu is %g", path, i, (double)h->p[i]);
out:
  cJSON_Delete(meta);
  kn_st_free(&st);
  if (s) {
    knobs_head_free(h);
    return s;
  }
  *out = h;
  return KNOBS_OK;
}
