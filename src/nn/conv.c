/* conv.c: conv2d and transposed conv2d as im2col + GEMM over channel-major activations.
 *
 * Activations are (C,B,H,W): channel c of image b is the contiguous plane at (c*B + b)*H*W.
 * Each thread takes a contiguous range of images and processes it in chunks whose im2col
 * matrix fits the scratch budget; for a chunk of nb images starting at b0 the GEMM writes the
 * output columns [b0*Q, (b0+nb)*Q) of the (K, B*Q) output directly (ldc = B*Q), so no copy or
 * transpose follows. Weight gradients are sums over images: each thread accumulates its own
 * copy, and the copies are added in thread order afterwards (deterministic for a given thread
 * count). Bias gradients are split by channel. The transposed conv is the adjoint of the conv
 * in its input: its forward is the conv's data-backward and vice versa.
 * Not done here: Winograd/FFT, dilation, groups, output_padding. */
#include <string.h>

#include "nn/nn.h"

#define CHUNK_FLOATS (1L << 17) /* im2col floats per chunk (512 KB); see bench/README.md */

void kn_conv_geom(kn_conv *s, int B, int C, int H, int W, int K, int kh, int kw, int stride, int pad) {
  KN_ASSERT(B > 0 && C > 0 && H > 0 && W > 0 && K > 0 && kh > 0 && kw > 0 && stride > 0 && pad >= 0);
  *s = (kn_conv){B, C, H, W, K, kh, kw, stride, pad, (H + 2 * pad - kh) / stride + 1,
                 (W + 2 * pad - kw) / stride + 1, 0};
  KN_ASSERT(s->OH > 0 && s->OW > 0);
}

void kn_convt_geom(kn_conv *s, int B, int C, int H, int W, int K, int kh, int kw, int stride, int pad) {
  KN_ASSERT(B > 0 && C > 0 && H > 0 && W > 0 && K > 0 && kh > 0 && kw > 0 && stride > 0 && pad >= 0);
  *s = (kn_conv){B, C, H, W, K, kh, kw, stride, pad, (H - 1) * stride - 2 * pad + kh,
                 (W - 1) * stride - 2 * pad + kw, 1};
  KN_ASSERT(s->OH > 0 && s->OW > 0);
}

/* The im2col matrix has R rows and Q columns per image: for a conv R = C kh kw, Q = OH OW;
 * for a transposed conv (im2col over its output) R = K kh kw, Q = H W. */
typedef struct {
  int R, Q, wsize, ch; /* ch: images per chunk */
} plan;

static plan make_plan(const kn_conv *s, int transposed) {
  plan p;
  p.R = (transposed ? s->K : s->C) * s->kh * s->kw;
  p.Q = transposed ? s->H * s->W : s->OH * s->OW;
  p.wsize = s->K * s->C * s->kh * s->kw;
  long per = (long)p.R * p.Q;
  p.ch = (int)(CHUNK_FLOATS / per);
  if (p.ch < 1) p.ch = 1;
  if (p.ch > s->B) p.ch = s->B;
  return p;
}

/* Only the plan of the geometry's own direction: the other one of a first or last layer (conv1
 * 1 -> 32 channels at 64x64, deconv4 32 -> 1) would be a 512 x 4096 matrix per image, 8 MB per
 * thread that no call uses. */
size_t kn_conv_scratch(const kn_conv *s, int nt) {
  plan a = make_plan(s, s->transposed);
  size_t per = (size_t)a.R * a.Q * a.ch + (size_t)a.wsize;
  per = (per + 15) & ~(size_t)15;
  return per * (size_t)nt;
}

/* Both directions work one input row at a time. For stride st and padding pad, output column
 * ow of kernel column j reads the padded input row at st*ow + j, that is element ow + j/st of
 * phase j%st, where phase q holds the padded row's elements q, q+st, q+2st, ... So each input
 * row is split into its st phases once, and every kernel column is then a contiguous copy
 * (im2col) or a contiguous add (col2im) of OW floats; the strided gather/scatter happens once
 * per row, in a loop GCC vectorises for st = 2 (the usual stride) and st = 1. */
#define ROW_MAX 4096 /* padded input row length handled on the stack (W + 2 pad + kw) */

/* rows here are 8-64 floats: a loop GCC vectorises beats a call to memcpy/memset */
static inline void copy_row(float *restrict d, const float *restrict s, int n) {
  for (int i = 0; i < n; i++) d[i] = s[i];
}
static inline void zero_row(float *d, int n) {
  for (int i = 0; i < n; i++) d[i] = 0;
}

static void split_phases(float *restrict ph, int plen, const float *restrict prow, int st) {
  if (st == 1) copy_row(ph, prow, plen);
  else if (st == 2)
    for (int k = 0; k < plen; k++) ph[k] = prow[2 * k], ph[plen + k] = prow[2 * k + 1];
  else
    for (int q = 0; q < st; q++)
      for (int k = 0; k < plen; k++) ph[q * plen + k] = prow[st * k + q];
}

static void merge_phases(float *restrict prow, int plen, const float *restrict ph, int st) {
  if (st == 1) copy_row(prow, ph, plen);
  else if (st == 2)
    for (int k = 0; k < plen; k++) prow[2 * k] = ph[k], prow[2 * k + 1] = ph[plen + k];
  else
    for (int q = 0; q < st; q++)
      for (int k = 0; k < plen; k++) prow[st * k + q] = ph[q * plen + k];
}

/* phase length: enough for ow + j/st over ow < OW, j < kw */
static int phase_len(int OW, int kw, int st) { return OW + (kw - 1) / st + 1; }

/* cols (C kh kw, nb OH OW) from images [b0, b0+nb) of x (C,B,H,W). */
static void im2col(float *cols, const float *x, int C, int B, int H, int W, int b0, int nb, int kh,
                   int kw, int st, int pad, int OH, int OW) {
  long plane = (long)H * W, ncol = (long)nb * OH * OW;
  int plen = phase_len(OW, kw, st), rowlen = plen * st;
  KN_ASSERT(rowlen <= ROW_MAX && W + pad <= rowlen);
  float prow[ROW_MAX], ph[ROW_MAX];
  memset(prow, 0, sizeof prow);
  for (int c = 0; c < C; c++)
    for (int b = 0; b < nb; b++) {
      const float *xp = x + ((long)c * B + b0 + b) * plane;
      for (int oh = 0; oh < OH; oh++)
        for (int i = 0; i < kh; i++) {
          int ih = oh * st - pad + i;
          float *r0 = cols + (long)(c * kh + i) * kw * ncol + ((long)b * OH + oh) * OW;
          if (ih < 0 || ih >= H) {
            for (int j = 0; j < kw; j++) zero_row(r0 + j * ncol, OW);
            continue;
          }
          copy_row(prow + pad, xp + (long)ih * W, W); /* the rest stays 0 */
          split_phases(ph, plen, prow, st);
          for (int j = 0; j < kw; j++)
            copy_row(r0 + j * ncol, ph + (j % st) * plen + j / st, OW);
        }
    }
}

/* The adjoint: x (C,B,H,W) images [b0, b0+nb) += col2im(cols). */
static void col2im_add(float *x, const float *cols, int C, int B, int H, int W, int b0, int nb,
                       int kh, int kw, int st, int pad, int OH, int OW) {
  long plane = (long)H * W, ncol = (long)nb * OH * OW;
  int plen = phase_len(OW, kw, st), rowlen = plen * st;
  KN_ASSERT(rowlen <= ROW_MAX && W + pad <= rowlen);
  float prow[ROW_MAX], ph[ROW_MAX];
  for (int c = 0; c < C; c++)
    for (int b = 0; b < nb; b++) {
      float *xp = x + ((long)c * B + b0 + b) * plane;
      for (int oh = 0; oh < OH; oh++)
        for (int i = 0; i < kh; i++) {
          int ih = oh * st - pad + i;
          if (ih < 0 || ih >= H) continue;
          const float *r0 = cols + (long)(c * kh + i) * kw * ncol + ((long)b * OH + oh) * OW;
          zero_row(ph, rowlen);
          for (int j = 0; j < kw; j++) {
            float *restrict d = ph + (j % st) * plen + j / st;
            const float *restrict r = r0 + j * ncol;
            for (int ow = 0; ow < OW; ow++) d[ow] += r[ow];
          }
          merge_phases(prow, plen, ph, st);
          float *restrict xr = xp + (long)ih * W;
          const float *restrict pr = prow + pad;
          for (int w = 0; w < W; w++) xr[w] += pr[w];
        }
    }
}

typedef struct {
  const kn_conv *s;
  plan pl;
  float *y, *dx, *dW, *db;
  const float *x, *W, *b, *dy;
  float *scratch;
  size_t per_thread;
  int transposed;
  int nparts; /* threads that wrote partial weight gradients (set by thread 0) */
} conv_job;

/* sets the output planes of images [b0,b0+nb) of y (K,B,Q) to the bias (or zero) */
static void fill_bias(float *y, const float *b, int K, int B, long Q, int b0, int nb) {
  for (int k = 0; k < K; k++) {
    float v = b ? b[k] : 0.0f;
    float *p = y + ((long)k * B + b0) * Q;
    for (long i = 0; i < (long)nb * Q; i++) p[i] = v;
  }
}

static void conv_fwd_task(void *ctx, int tid, int nt) {
  conv_job *j = ctx;
  const kn_conv *s = j->s;
  long lo, hi;
  kn_split(s->B, tid, nt, &lo, &hi);
  float *cols = j->scratch + j->per_thread * (size_t)tid;
  int R = j->pl.R, Q = j->pl.Q;
  for (long b0 = lo; b0 < hi; b0 += j->pl.ch) {
    int nb = (int)(hi - b0 < j->pl.ch ? hi - b0 : j->pl.ch);
    if (!j->transposed) {
      im2col(cols, j->x, s->C, s->B, s->H, s->W, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->OH, s->OW);
      fill_bias(j->y, j->b, s->K, s->B, Q, (int)b0, nb);
      kn_sgemm(NULL, 0, 0, s->K, nb * Q, R, 1.0f, j->W, R, cols, nb * Q, 1.0f, j->y + b0 * Q, s->B * Q);
    } else {
      /* cols (K kh kw, nb H W) = W^T (R, C) x (C, nb H W); then y = bias + col2im(cols) */
      kn_sgemm(NULL, 1, 0, R, nb * Q, s->C, 1.0f, j->W, R, j->x + b0 * Q, s->B * Q, 0.0f, cols, nb * Q);
      long OQ = (long)s->OH * s->OW;
      fill_bias(j->y, j->b, s->K, s->B, OQ, (int)b0, nb);
      col2im_add(j->y, cols, s->K, s->B, s->OH, s->OW, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->H, s->W);
    }
  }
}

static void conv_bwd_task(void *ctx, int tid, int nt) {
  conv_job *j = ctx;
  const kn_conv *s = j->s;
  long lo, hi;
  kn_split(s->B, tid, nt, &lo, &hi);
  float *cols = j->scratch + j->per_thread * (size_t)tid;
  float *dWt = cols + (size_t)j->pl.R * j->pl.Q * j->pl.ch;
  int R = j->pl.R, Q = j->pl.Q;
  if (tid == 0) j->nparts = nt;
  if (j->dW) memset(dWt, 0, sizeof(float) * (size_t)j->pl.wsize);
  for (long b0 = lo; b0 < hi; b0 += j->pl.ch) {
    int nb = (int)(hi - b0 < j->pl.ch ? hi - b0 : j->pl.ch);
    if (!j->transposed) {
      const float *dy = j->dy + b0 * Q;
      if (j->dW) {
        im2col(cols, j->x, s->C, s->B, s->H, s->W, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->OH, s->OW);
        kn_sgemm(NULL, 0, 1, s->K, R, nb * Q, 1.0f, dy, s->B * Q, cols, nb * Q, 1.0f, dWt, R);
      }
      if (j->dx) {
        kn_sgemm(NULL, 1, 0, R, nb * Q, s->K, 1.0f, j->W, R, dy, s->B * Q, 0.0f, cols, nb * Q);
        col2im_add(j->dx, cols, s->C, s->B, s->H, s->W, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->OH, s->OW);
      }
    } else {
      /* cols = im2col of dy (K, OH, OW) through the conv geometry back to (H, W) */
      im2col(cols, j->dy, s->K, s->B, s->OH, s->OW, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->H, s->W);
      if (j->dx)
        kn_sgemm(NULL, 0, 0, s->C, nb * Q, R, 1.0f, j->W, R, cols, nb * Q, 1.0f, j->dx + b0 * Q, s->B * Q);
      if (j->dW)
        kn_sgemm(NULL, 0, 1, s->C, R, nb * Q, 1.0f, j->x + b0 * Q, s->B * Q, cols, nb * Q, 1.0f, dWt, R);
    }
  }
}

static void conv_reduce_task(void *ctx, int tid, int nt) {
  conv_job *j = ctx;
  const kn_conv *s = j->s;
  int nthreads = j->nparts;
  long lo, hi;
  if (j->dW) {
    kn_split(j->pl.wsize, tid, nt, &lo, &hi);
    size_t woff = (size_t)j->pl.R * j->pl.Q * j->pl.ch;
    for (int t = 0; t < nthreads; t++) {
      const float *part = j->scratch + j->per_thread * (size_t)t + woff;
      for (long i = lo; i < hi; i++) j->dW[i] += part[i];
    }
  }
  if (j->db) {
    long OQ = (long)s->B * s->OH * s->OW;
    kn_split(s->K, tid, nt, &lo, &hi);
    for (long k = lo; k < hi; k++) {
      const float *r = j->dy + k * OQ;
      float acc = 0;
      for (long i = 0; i < OQ; i++) acc += r[i];
      j->db[k] += acc;
    }
  }
}

/* A transposed conv of fewer images than threads (a decoder drawing one image for the panel)
 * splits by output channel instead: output channel k reads the rows k*kh*kw .. of W^T x and
 * writes only its own planes, so each thread owns channels [klo, khi) of every image. */
static void convt_fwd_by_channel(void *ctx, int tid, int nt) {
  conv_job *j = ctx;
  const kn_conv *s = j->s;
  long klo, khi;
  kn_split(s->K, tid, nt, &klo, &khi);
  if (khi <= klo) return;
  float *cols = j->scratch + j->per_thread * (size_t)tid;
  int R = j->pl.R, Q = j->pl.Q, taps = s->kh * s->kw, nk = (int)(khi - klo);
  long OQ = (long)s->OH * s->OW;
  float *y = j->y + klo * s->B * OQ;
  for (long b0 = 0; b0 < s->B; b0 += j->pl.ch) {
    int nb = (int)(s->B - b0 < j->pl.ch ? s->B - b0 : j->pl.ch);
    kn_sgemm(NULL, 1, 0, nk * taps, nb * Q, s->C, 1.0f, j->W + klo * taps, R, j->x + b0 * Q, s->B * Q, 0.0f, cols, nb * Q);
    fill_bias(y, j->b ? j->b + klo : NULL, nk, s->B, OQ, (int)b0, nb);
    col2im_add(y, cols, nk, s->B, s->OH, s->OW, (int)b0, nb, s->kh, s->kw, s->stride, s->pad, s->H, s->W);
  }
}

static void conv_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                         const kn_conv *s, float *scratch, int transposed) {
  KN_ASSERT(s->transposed == transposed);
  conv_job j = {.s = s, .pl = make_plan(s, transposed), .y = y, .x = x, .W = W, .b = b,
                .scratch = scratch, .per_thread = kn_conv_scratch(s, 1), .transposed = transposed};
  if (transposed && s->B < kn_pool_size(p) && s->K >= kn_pool_size(p)) kn_pool_run(p, convt_fwd_by_channel, &j);
  else kn_pool_run(p, conv_fwd_task, &j);
}

static void conv_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                          const float *x, const float *W, const kn_conv *s, float *scratch,
                          int transposed) {
  KN_ASSERT(s->transposed == transposed);
  conv_job j = {.s = s, .pl = make_plan(s, transposed), .dx = dx, .dW = dW, .dy = dy, .x = x,
                .W = W, .scratch = scratch, .per_thread = kn_conv_scratch(s, 1),
                .transposed = transposed};
  if (dx || dW) kn_pool_run(p, conv_bwd_task, &j);
  j.db = db;
  if (dW || db) kn_pool_run(p, conv_reduce_task, &j);
}

void kn_conv2d_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                       const kn_conv *s, float *scratch) {
  conv_forward(p, y, x, W, b, s, scratch, 0);
}
void kn_conv2d_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, const kn_conv *s, float *scratch) {
  conv_backward(p, dx, dW, db, dy, x, W, s, scratch, 0);
}
void kn_convt2d_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                        const kn_conv *s, float *scratch) {
  conv_forward(p, y, x, W, b, s, scratch, 1);
}
void kn_convt2d_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                         const float *x, const float *W, const kn_conv *s, float *scratch) {
  conv_backward(p, dx, dW, db, dy, x, W, s, scratch, 1);
}
