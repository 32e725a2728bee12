/* export.c: knobs_data_export, a dataset's observations (and factors, factor values) to .npy
 * files for use elsewhere, streamed a chunk at a time so memory does not grow with n. Each
 * file is written to a temporary name and renamed at the end; a failure leaves none of them.
 * Draws use one rng over the whole export, exactly as one knobs_data_draw(d, n, seed, 0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "io/io.h"

typedef struct {
  kn_atomic *a;
  const char *path;
} out_file;

static knobs_status start(out_file *o, const char *path, knobs_dtype t, int ndim, const int64_t *shape) {
  o->path = path;
  o->a = NULL;
  if (!path) return KNOBS_OK;
  knobs_array hdr = {t, ndim, {0}, NULL};
  for (int i = 0; i < ndim; i++) hdr.shape[i] = shape[i];
  char buf[320];
  size_t hl = kn_npy_header_bytes(&hdr, buf);
  if (!(o->a = kn_atomic_open(path))) return knobs_last_status();
  if (fwrite(buf, 1, hl, kn_atomic_file(o->a)) != hl) return kn_err(KNOBS_ERR_IO, "%s: write failed", path);
  return KNOBS_OK;
}

static knobs_status put(out_file *o, const void *p, size_t bytes) {
  if (o->a && bytes && fwrite(p, 1, bytes, kn_atomic_file(o->a)) != bytes)
    return kn_err(KNOBS_ERR_IO, "%s: write failed", o->path);
  return KNOBS_OK;
}

knobs_status knobs_data_export(knobs_data *d, int64_t n, uint64_t seed, knobs_dtype dtype,
                               const char *obs_path, const char *factors_path,
                               const char *values_path) {
  const knobs_data_info *in = &d->info;
  int K = in->K, all = n <= 0;
  int64_t N = all ? in->n : n;
  if (!obs_path) return kn_err(KNOBS_ERR_ARG, "export: no output file");
  if (dtype != KNOBS_F32 && dtype != KNOBS_U8) return kn_err(KNOBS_ERR_ARG, "export: dtype must be float32 or uint8");
  if (dtype == KNOBS_U8 && !in->is_image)
    return kn_err(KNOBS_ERR_ARG, "export: %s holds vectors, not images: export it as float32", in->name);
  if ((factors_path || values_path) && K == 0)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "export: %s has no ground-truth factors", in->name);
  size_t D = (size_t)in->C * in->H * in->W;
  int64_t chunk = (int64_t)((64u << 20) / (D * sizeof(float)));
  chunk = chunk < 1 ? 1 : chunk > 4096 ? 4096 : chunk;
  /* images (N,C,H,W); sequences (N,T,C/T,H,W), as seq:FILE reads them back; vectors (N,D) */
  int seq = in->is_image && in->T > 1, ond = !in->is_image ? 2 : seq ? 5 : 4;
  int64_t oshape[5] = {N, in->C, in->H, in->W, 0}, fshape[2] = {N, K};
  if (seq) oshape[1] = in->T, oshape[2] = in->C / in->T, oshape[3] = in->H, oshape[4] = in->W;
  if (ond == 2) oshape[1] = (int64_t)D;
  float *x = malloc(sizeof(float) * D * (size_t)chunk);
  uint8_t *xb = dtype == KNOBS_U8 ? malloc(D * (size_t)chunk) : NULL;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)chunk * (K ? K : 1));
  int64_t *f64 = malloc(sizeof(int64_t) * (size_t)chunk * (K ? K : 1));
  double *v = malloc(sizeof(double) * (size_t)chunk * (K ? K : 1));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)chunk);
  out_file of[3] = {{0}};
  knobs_status s = KNOBS_OK;
  if (!x || (dtype == KNOBS_U8 && !xb) || !f || !f64 || !v || !idx) {
    s = kn_err(KNOBS_ERR_NOMEM, "export: cannot allocate the buffers");
    goto out;
  }
  if ((s = start(&of[0], obs_path, dtype, ond, oshape)) || (s = start(&of[1], factors_path, KNOBS_I64, 2, fshape)) ||
      (s = start(&of[2], values_path, KNOBS_F64, 2, fshape)))
    goto out;
  kn_rng r;
  kn_rng_seed(&r, seed, 0);
  for (int64_t i = 0; i < N && !s; i += chunk) {
    int m = (int)(N - i < chunk ? N - i : chunk);
    int32_t *fk = K ? f : NULL;
    if (all) {
      for (int j = 0; j < m; j++) idx[j] = i + j;
      s = knobs_data_get(d, idx, m, x, fk);
    } else if (d->ops->draw) {
      s = d->ops->draw(d, &r, m, x, fk, K ? v : NULL);
    } else {
      s = kn_data_batch(d, &r, m, x, fk, NULL);
    }
    if (s) break;
    if (K && !(d->ops->draw && !all))
      for (size_t j = 0; j < (size_t)m * K; j++) v[j] = knobs_data_factor_value(d, (int)(j % K), f[j]);
    if (dtype == KNOBS_U8) {
      for (size_t j = 0; j < (size_t)m * D; j++) {
        float y = x[j];
        xb[j] = !(y > 0) ? 0 : y >= 1 ? 255 : (uint8_t)lrintf(y * 255);
      }
      s = put(&of[0], xb, (size_t)m * D);
    } else {
      s = put(&of[0], x, sizeof(float) * (size_t)m * D);
    }
    for (size_t j = 0; j < (size_t)m * K; j++) f64[j] = f[j];
    if (!s) s = put(&of[1], f64, sizeof(int64_t) * (size_t)m * K);
    if (!s) s = put(&of[2], v, sizeof(double) * (size_t)m * K);
  }
out:
  for (int i = 0; i < 3; i++) {
    if (!of[i].a) continue;
    if (s) kn_atomic_abort(of[i].a);
    else s = kn_atomic_commit(of[i].a); /* after a failed commit, the others are aborted */
  }
  free(x), free(xb), free(f), free(f64), free(v), free(idx);
  return s;
}
