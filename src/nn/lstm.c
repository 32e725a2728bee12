/* lstm.c: recurrent layers: one layer of torch.nn.LSTM or torch.nn.GRU, uni- or bidirectional,
 * with explicit forward and backward through time. Formulas, layouts and the threading are
 * stated at the declarations in nn.h.
 * Not here: stacked layers (num_layers > 1: run two layers), proj_size, dropout, packed
 * (variable-length) sequences, batch_first (the caller lays sequences out as (T,B,F)). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/vmath.h"

/* ---- workspace --------------------------------------------------------------------------- */
/* One direction's part, N = T*B rows, each block rounded up to 16 floats (64 bytes):
 *   gates  N x 4H  the forward's gates after their nonlinearity: LSTM i, f, g, o;
 *                  GRU r, z, n and W_hn h_{t-1} + b_hn (what r multiplies)
 *   c      N x H   LSTM: the cell states c_t
 *   h      N x H   the h_t, contiguous (y interleaves the directions)
 *   dgi    N x GH  backward: the gradients of the gates' pre-activations, input side (G*H)
 *   dgh    N x GH  GRU: those of the recurrent side (n's is times r); LSTM: the same as dgi
 *   dh     B x H   backward: dL/dh of the step being processed
 *   dc     B x H   LSTM: dL/dc of the step being processed
 *   gh     B x GH  GRU: the step's W_hh h_{t-1} (+ b_hn); in the backward, zeros standing for
 *                  h_{t-1} at the first step when there is no h0
 * After the directions, once: ones (N), the vector that sums gate gradients into bias
 * gradients as a GEMM. */
typedef struct {
  float *gates, *c, *h, *dgi, *dgh, *dh, *dc, *gh;
} dir_ws;

static size_t a16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Floats of one direction's part; with ws non-NULL, also its pointers for direction d. */
static size_t dir_layout(const kn_rnn *r, int T, int B, float *ws, int d, dir_ws *w) {
  size_t N = (size_t)T * B, H = (size_t)r->H, GH = (size_t)r->G * H, Bs = (size_t)B;
  int lstm = r->cell == KN_RNN_LSTM;
  size_t sz[8] = {a16(N * 4 * H), lstm ? a16(N * H) : 0, a16(N * H), a16(N * GH),
                  lstm ? 0 : a16(N * GH), a16(Bs * H), lstm ? a16(Bs * H) : 0, lstm ? 0 : a16(Bs * GH)};
  size_t total = 0;
  for (int i = 0; i < 8; i++) total += sz[i];
  if (ws) {
    float *q = ws + (size_t)d * total, *p[8];
    for (int i = 0; i < 8; i++) p[i] = sz[i] ? q : NULL, q += sz[i];
    *w = (dir_ws){p[0], p[1], p[2], p[3], lstm ? p[3] : p[4], p[5], p[6], p[7]};
  }
  return total;
}

static float *ones_of(const kn_rnn *r, int T, int B, float *ws) {
  return ws + (size_t)r->D * dir_layout(r, T, B, NULL, 0, NULL);
}

size_t kn_rnn_workspace_size(const kn_rnn *r, int T, int B) {
  if (T < 1 || B < 1) return 0;
  return (size_t)r->D * dir_layout(r, T, B, NULL, 0, NULL) + a16((size_t)T * B);
}

/* ---- setup, parameters ------------------------------------------------------------------- */

knobs_status kn_rnn_setup(kn_rnn *r, kn_rnn_cell cell, int I, int H, int D) {
  memset(r, 0, sizeof *r);
  if (I < 1 || H < 1 || (D != 1 && D != 2) || (cell != KN_RNN_LSTM && cell != KN_RNN_GRU))
    return kn_err(KNOBS_ERR_ARG, "recurrent layer: need input size >= 1 (got %d), hidden size >= 1 "
                  "(got %d) and 1 or 2 directions (got %d)", I, H, D);
  r->cell = cell, r->I = I, r->H = H, r->D = D;
  r->G = cell == KN_RNN_LSTM ? 4 : 3;
  if ((long)r->G * H > INT_MAX / 4) return kn_err(KNOBS_ERR_ARG, "recurrent layer: hidden size %d too large", H);
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 4; k++) r->idx[d][k] = -1;
  return KNOBS_OK;
}

static const char *const param_kind[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

void kn_rnn_declare(kn_rnn *r, kn_net *net, const char *prefix, int group) {
  KN_ASSERT(r->G > 0);
  for (int d = 0; d < r->D; d++)
    for (int k = 0; k < 4; k++) {
      char nm[64];
      kn_strfmt(nm, sizeof nm, "%s.%s_l0%s", prefix, param_kind[k], d ? "_reverse" : "");
      int64_t shape[2] = {(int64_t)r->G * r->H, k == 0 ? r->I : r->H};
      r->idx[d][k] = kn_net_add_param(net, nm, k < 2 ? 2 : 1, shape, 0, group);
    }
}

void kn_rnn_bind(kn_rnn *r, kn_net *net) {
  for (int d = 0; d < r->D; d++) {
    for (int k = 0; k < 4; k++) KN_ASSERT(r->idx[d][k] >= 0);
    r->w_ih[d] = kn_param_ptr(net, r->idx[d][0]), r->dw_ih[d] = kn_grad_ptr(net, r->idx[d][0]);
    r->w_hh[d] = kn_param_ptr(net, r->idx[d][1]), r->dw_hh[d] = kn_grad_ptr(net, r->idx[d][1]);
    r->b_ih[d] = kn_param_ptr(net, r->idx[d][2]), r->db_ih[d] = kn_grad_ptr(net, r->idx[d][2]);
    r->b_hh[d] = kn_param_ptr(net, r->idx[d][3]), r->db_hh[d] = kn_grad_ptr(net, r->idx[d][3]);
  }
}

void kn_rnn_init(const kn_rnn *r, kn_net *net, kn_rng *rng) {
  double bound = 1.0 / sqrt((double)r->H);
  for (int d = 0; d < r->D; d++)
    for (int k = 0; k < 4; k++) {
      KN_ASSERT(r->idx[d][k] >= 0);
      float *w = kn_param_ptr(net, r->idx[d][k]);
      size_t n = net->P[r->idx[d][k]].n;
      for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * kn_rng_uniform(rng) - 1.0) * bound);
    }
}

/* ---- threads ----------------------------------------------------------------------------- */
/* A recurrence over rows [lo, hi) of direction d: sequences are independent, so a thread runs
 * its rows through every step alone. */
typedef struct rnn_job rnn_job;
struct rnn_job {
  const kn_rnn *r;
  const kn_rnn_seq *s;
  const kn_rnn_grad *g; /* backward only */
  void (*rows)(const rnn_job *j, int d, int lo, int hi);
};

/* Threads go to directions in contiguous groups (direction tid * D / nt); a group splits the
 * rows. One thread and two directions: it runs both, one after the other. */
static void rnn_task(void *ctx, int tid, int nt) {
  const rnn_job *j = ctx;
  int D = j->r->D, B = j->s->B;
  if (nt < D) {
    for (int d = 0; d < D; d++) j->rows(j, d, 0, B);
    return;
  }
  int d = tid * D / nt, g0 = (d * nt + D - 1) / D, g1 = ((d + 1) * nt + D - 1) / D;
  long lo, hi;
  kn_split(B, tid - g0, g1 - g0, &lo, &hi);
  if (hi > lo) j->rows(j, d, (int)lo, (int)hi);
}

/* Step k of direction d runs time t; its previous state is that of time tp (k > 0). */
static inline int step_time(int d, int T, int k) { return d ? T - 1 - k : k; }
static inline int prev_time(int d, int t) { return d ? t + 1 : t - 1; }

/* ---- LSTM -------------------------------------------------------------------------------- */
/* One row of one step: g holds the pre-activations (input projection, biases and W_hh h_{t-1})
 * and receives the activated gates; cp is c_{t-1} (NULL: zeros). Operation order as torch's
 * lstm_cell: c = f * c_{t-1} + i * g. */
static void lstm_cell_fwd(float *restrict gi, float *restrict gf, float *restrict gg,
                          float *restrict go, float *restrict c, float *restrict h, float *restrict y,
                          const float *restrict cp, int H) {
  for (int k = 0; k < H; k++) {
    float i = kn_sigmoidf(gi[k]), f = kn_sigmoidf(gf[k]), g = kn_tanhf(gg[k]), o = kn_sigmoidf(go[k]);
    float cc = (cp ? f * cp[k] : 0.0f) + i * g, hh = o * kn_tanhf(cc);
    gi[k] = i, gf[k] = f, gg[k] = g, go[k] = o;
    c[k] = cc, h[k] = hh, y[k] = hh;
  }
}

/* dh, dc: dL/dh_t, dL/dc_t from the later steps (dy, this step's output gradient, is added
 * here); on return dc holds dL/dc_{t-1} and dg the pre-activation gradients. dh is left for
 * the caller's GEMM (dh_{t-1} = dg W_hh). tanh(c) is recomputed with the forward's function,
 * so it has the forward's bits. */
static void lstm_cell_bwd(float *restrict di, float *restrict df, float *restrict dg,
                          float *restrict d_o, const float *restrict a, const float *restrict c,
                          const float *restrict cp, const float *restrict dy,
                          const float *restrict dh, float *restrict dc, int H) {
  const float *restrict ai = a, *restrict af = a + H, *restrict ag = a + 2 * H, *restrict ao = a + 3 * H;
  for (int k = 0; k < H; k++) {
    float i = ai[k], f = af[k], g = ag[k], o = ao[k], tc = kn_tanhf(c[k]);
    float dht = dh[k] + (dy ? dy[k] : 0.0f);
    float dct = dc[k] + dht * o * (1.0f - tc * tc);
    di[k] = dct * g * i * (1.0f - i);
    df[k] = dct * (cp ? cp[k] : 0.0f) * f * (1.0f - f);
    dg[k] = dct * i * (1.0f - g * g);
    d_o[k] = dht * tc * o * (1.0f - o);
    dc[k] = dct * f;
  }
}

static void lstm_fwd_rows(const rnn_job *j, int d, int lo, int hi) {
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  int T = s->T, B = s->B, H = r->H, M = hi - lo, H4 = 4 * H, ldy = r->D * H;
  dir_ws w;
  dir_layout(r, T, B, s->ws, d, &w);
  size_t st0 = ((size_t)d * B + lo) * H; /* these rows in a (D,B,H) state */
  const float *h0 = s->h0 ? s->h0 + st0 : NULL, *c0 = s->c0 ? s->c0 + st0 : NULL;
  for (int k = 0; k < T; k++) {
    int t = step_time(d, T, k);
    size_t row = (size_t)t * B + lo, prow = (size_t)prev_time(d, t) * B + lo;
    const float *hp = k ? w.h + prow * H : h0, *cp = k ? w.c + prow * H : c0;
    float *g = w.gates + row * H4;
    if (hp) kn_sgemm(NULL, 0, 1, M, H4, H, 1.0f, hp, H, r->w_hh[d], H, 1.0f, g, H4);
    for (int b = 0; b < M; b++) {
      float *gb = g + (size_t)b * H4;
      lstm_cell_fwd(gb, gb + H, gb + 2 * H, gb + 3 * H, w.c + (row + b) * H, w.h + (row + b) * H,
                    s->y + (row + b) * ldy + (size_t)d * H, cp ? cp + (size_t)b * H : NULL, H);
    }
  }
  size_t last = (size_t)step_time(d, T, T - 1) * B + lo;
  if (s->hn) memcpy(s->hn + st0, w.h + last * H, sizeof(float) * M * H);
  if (s->cn) memcpy(s->cn + st0, w.c + last * H, sizeof(float) * M * H);
}

static void lstm_bwd_rows(const rnn_job *j, int d, int lo, int hi) {
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  const kn_rnn_grad *g = j->g;
  int T = s->T, B = s->B, H = r->H, M = hi - lo, H4 = 4 * H, ldy = r->D * H;
  dir_ws w;
  dir_layout(r, T, B, s->ws, d, &w);
  size_t st0 = ((size_t)d * B + lo) * H, n = (size_t)M * H;
  float *dh = w.dh + (size_t)lo * H, *dc = w.dc + (size_t)lo * H;
  if (g->dhn) memcpy(dh, g->dhn + st0, sizeof(float) * n);
  else memset(dh, 0, sizeof(float) * n);
  if (g->dcn) memcpy(dc, g->dcn + st0, sizeof(float) * n);
  else memset(dc, 0, sizeof(float) * n);
  const float *c0 = s->c0 ? s->c0 + st0 : NULL;
  for (int k = T - 1; k >= 0; k--) {
    int t = step_time(d, T, k);
    size_t row = (size_t)t * B + lo, prow = (size_t)prev_time(d, t) * B + lo;
    const float *cp = k ? w.c + prow * H : c0;
    float *dg = w.dgi + row * H4;
    for (int b = 0; b < M; b++) {
      float *db = dg + (size_t)b * H4;
      lstm_cell_bwd(db, db + H, db + 2 * H, db + 3 * H, w.gates + (row + b) * H4, w.c + (row + b) * H,
                    cp ? cp + (size_t)b * H : NULL,
                    g->dy ? g->dy + (row + b) * ldy + (size_t)d * H : NULL, dh + (size_t)b * H,
                    dc + (size_t)b * H, H);
    }
    if (k || g->dh0) kn_sgemm(NULL, 0, 0, M, H, H4, 1.0f, dg, H4, r->w_hh[d], H, 0.0f, dh, H);
  }
  for (size_t i = 0; i < n; i++) {
    if (g->dh0) g->dh0[st0 + i] += dh[i];
    if (g->dc0) g->dc0[st0 + i] += dc[i];
  }
}

/* ---- GRU --------------------------------------------------------------------------------- */
/* One row of one step: g holds the input projection with b_ih and b_hr, b_hz folded in; gh is
 * W_hh h_{t-1} with b_hn added to its n block (b_hn sits inside r * (...)); hp is h_{t-1}.
 * h = n + z (h_{t-1} - n), torch's gru_cell order. */
static void gru_cell_fwd(float *restrict gr, float *restrict gz, float *restrict gn,
                         float *restrict ghn_out, const float *restrict gh,
                         const float *restrict hp, float *restrict h, float *restrict y, int H) {
  const float *restrict ghr = gh, *restrict ghz = gh + H, *restrict ghn = gh + 2 * H;
  for (int k = 0; k < H; k++) {
    float r = kn_sigmoidf(gr[k] + ghr[k]), z = kn_sigmoidf(gz[k] + ghz[k]);
    float n = kn_tanhf(gn[k] + r * ghn[k]), hh = n + z * (hp[k] - n);
    gr[k] = r, gz[k] = z, gn[k] = n, ghn_out[k] = ghn[k];
    h[k] = hh, y[k] = hh;
  }
}

/* dh: dL/dh_t from the later steps (dy added here); on return dh holds the direct part of
 * dL/dh_{t-1} (dh_t z), to which the caller's GEMM adds dgh W_hh. */
static void gru_cell_bwd(float *restrict dir, float *restrict diz, float *restrict din,
                         float *restrict dhr, float *restrict dhz, float *restrict dhn,
                         const float *restrict ar, const float *restrict az, const float *restrict an,
                         const float *restrict ah, const float *restrict hp,
                         const float *restrict dy, float *restrict dh, int H) {
  for (int k = 0; k < H; k++) {
    float r = ar[k], z = az[k], n = an[k];
    float dht = dh[k] + (dy ? dy[k] : 0.0f);
    float dnp = dht * (1.0f - z) * (1.0f - n * n);
    float drp = dnp * ah[k] * r * (1.0f - r);
    float dzp = dht * (hp[k] - n) * z * (1.0f - z);
    dir[k] = drp, diz[k] = dzp, din[k] = dnp;
    dhr[k] = drp, dhz[k] = dzp, dhn[k] = dnp * r;
    dh[k] = dht * z;
  }
}

/* Without h0, the first step reads zeros: gh's rows are zeroed (plus b_hn) and serve as the
 * zero h_{t-1} too (its first H floats stay zero). */
static void gru_fwd_rows(const rnn_job *j, int d, int lo, int hi) {
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  int T = s->T, B = s->B, H = r->H, M = hi - lo, H4 = 4 * H, GH = 3 * H, ldy = r->D * H;
  dir_ws w;
  dir_layout(r, T, B, s->ws, d, &w);
  size_t st0 = ((size_t)d * B + lo) * H;
  const float *h0 = s->h0 ? s->h0 + st0 : NULL, *bn = r->b_hh[d] ? r->b_hh[d] + 2 * H : NULL;
  float *gh = w.gh + (size_t)lo * GH;
  for (int k = 0; k < T; k++) {
    int t = step_time(d, T, k);
    size_t row = (size_t)t * B + lo, prow = (size_t)prev_time(d, t) * B + lo;
    const float *hp = k ? w.h + prow * H : h0;
    if (hp) kn_sgemm(NULL, 0, 1, M, GH, H, 1.0f, hp, H, r->w_hh[d], H, 0.0f, gh, GH);
    else memset(gh, 0, sizeof(float) * (size_t)M * GH);
    for (int b = 0; b < M; b++) {
      float *gb = w.gates + (row + b) * H4, *ghb = gh + (size_t)b * GH;
      if (bn)
        for (int i = 0; i < H; i++) ghb[2 * H + i] += bn[i];
      gru_cell_fwd(gb, gb + H, gb + 2 * H, gb + 3 * H, ghb, hp ? hp + (size_t)b * H : ghb,
                   w.h + (row + b) * H, s->y + (row + b) * ldy + (size_t)d * H, H);
    }
  }
  size_t last = (size_t)step_time(d, T, T - 1) * B + lo;
  if (s->hn) memcpy(s->hn + st0, w.h + last * H, sizeof(float) * M * H);
}

static void gru_bwd_rows(const rnn_job *j, int d, int lo, int hi) {
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  const kn_rnn_grad *g = j->g;
  int T = s->T, B = s->B, H = r->H, M = hi - lo, H4 = 4 * H, GH = 3 * H, ldy = r->D * H;
  dir_ws w;
  dir_layout(r, T, B, s->ws, d, &w);
  size_t st0 = ((size_t)d * B + lo) * H, n = (size_t)M * H;
  float *dh = w.dh + (size_t)lo * H;
  if (g->dhn) memcpy(dh, g->dhn + st0, sizeof(float) * n);
  else memset(dh, 0, sizeof(float) * n);
  /* without h0 the first step's h_{t-1} is zeros: gh's rows, unused by the backward */
  float *zeros = w.gh + (size_t)lo * GH;
  memset(zeros, 0, sizeof(float) * n);
  const float *h0 = s->h0 ? s->h0 + st0 : zeros;
  for (int k = T - 1; k >= 0; k--) {
    int t = step_time(d, T, k);
    size_t row = (size_t)t * B + lo, prow = (size_t)prev_time(d, t) * B + lo;
    const float *hp = k ? w.h + prow * H : h0;
    for (int b = 0; b < M; b++) {
      float *di = w.dgi + (row + b) * GH, *dr = w.dgh + (row + b) * GH;
      const float *a = w.gates + (row + b) * H4;
      gru_cell_bwd(di, di + H, di + 2 * H, dr, dr + H, dr + 2 * H, a, a + H, a + 2 * H, a + 3 * H,
                   hp + (size_t)b * H, g->dy ? g->dy + (row + b) * ldy + (size_t)d * H : NULL,
                   dh + (size_t)b * H, H);
    }
    if (k || g->dh0) kn_sgemm(NULL, 0, 0, M, H, GH, 1.0f, w.dgh + row * GH, GH, r->w_hh[d], H, 1.0f, dh, H);
  }
  if (g->dh0)
    for (size_t i = 0; i < n; i++) g->dh0[st0 + i] += dh[i];
}

/* ---- the layer --------------------------------------------------------------------------- */

static knobs_status check(const kn_rnn *r, const kn_rnn_seq *s, const char *what) {
  KN_ASSERT(r->G == 4 || r->G == 3);
  if (s->T < 1 || s->B < 1 || (long)s->T * s->B > INT_MAX / 4)
    return kn_err(KNOBS_ERR_ARG, "recurrent %s: need >= 1 step and >= 1 sequence (got T = %d, B = %d)",
                  what, s->T, s->B);
  if (!s->x || !s->y || !s->ws)
    return kn_err(KNOBS_ERR_ARG, "recurrent %s: input, output and workspace are required", what);
  for (int d = 0; d < r->D; d++) {
    if (!r->w_ih[d] || !r->w_hh[d])
      return kn_err(KNOBS_ERR_ARG, "recurrent %s: direction %d has no weights", what, d);
    KN_ASSERT((r->b_ih[d] || !r->db_ih[d]) && (r->b_hh[d] || !r->db_hh[d]));
  }
  return KNOBS_OK;
}

/* The products over all steps, before the recurrence (the input projection) and after it (the
 * weight and bias gradients and dx): one pool task each, every thread computing its slice of
 * every direction's products with single-threaded GEMMs (one wake-up instead of one per GEMM). */
typedef struct {
  const kn_rnn *r;
  const kn_rnn_seq *s;
  const kn_rnn_grad *g;
} steps_job;

/* Forward: gates rows [lo, hi) of each direction = x W_ih^T + b_ih + b_hh (GRU: b_hh's r and z
 * parts only; b_hn sits inside r * (...)); and the ones vector. */
static void project_task(void *ctx, int tid, int nt) {
  const steps_job *j = ctx;
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  int N = s->T * s->B, I = r->I, H = r->H, GH = r->G * H, H4 = 4 * H;
  int nbh = r->cell == KN_RNN_LSTM ? GH : 2 * H; /* the b_hh entries outside r * (...) */
  long lo, hi;
  kn_split(N, tid, nt, &lo, &hi);
  if (hi <= lo) return;
  float *ones = ones_of(r, s->T, s->B, s->ws);
  for (long i = lo; i < hi; i++) ones[i] = 1.0f;
  for (int d = 0; d < r->D; d++) {
    dir_ws w;
    dir_layout(r, s->T, s->B, s->ws, d, &w);
    const float *bi = r->b_ih[d], *bh = r->b_hh[d];
    float *g = w.gates + (size_t)lo * H4;
    if (bi || bh) {
      for (int k = 0; k < GH; k++) g[k] = (bi ? bi[k] : 0.0f) + (bh && k < nbh ? bh[k] : 0.0f);
      for (long n = 1; n < hi - lo; n++) memcpy(g + (size_t)n * H4, g, sizeof(float) * GH);
    }
    kn_sgemm(NULL, 0, 1, (int)(hi - lo), GH, I, 1.0f, s->x + (size_t)lo * I, I, r->w_ih[d], I,
             bi || bh ? 1.0f : 0.0f, g, H4);
  }
}

/* Backward, after the recurrence: rows [lo, hi) (16-aligned) of every direction's weight and
 * bias gradients, and rows of dx (the directions added in order). dW_hh pairs each step's dgh
 * with the h it read: h_{t-1} (forward direction) or h_{t+1} (reverse) from the workspace for
 * all steps but the first, h0 for the first (nothing if h0 is zeros). */
static void grads_task(void *ctx, int tid, int nt) {
  const steps_job *j = ctx;
  const kn_rnn *r = j->r;
  const kn_rnn_seq *s = j->s;
  int T = s->T, B = s->B, N = T * B, I = r->I, H = r->H, GH = r->G * H;
  const float *ones = ones_of(r, T, B, s->ws);
  long lo, hi;
  kn_split((GH + 15) / 16, tid, nt, &lo, &hi);
  lo *= 16, hi = hi * 16 < GH ? hi * 16 : GH;
  int m = (int)(hi - lo);
  size_t BH = (size_t)B * H, BG = (size_t)B * GH;
  for (int d = 0; m > 0 && d < r->D; d++) {
    dir_ws w;
    dir_layout(r, T, B, s->ws, d, &w);
    if (r->dw_ih[d]) kn_sgemm(NULL, 1, 0, m, I, N, 1.0f, w.dgi + lo, GH, s->x, I, 1.0f, r->dw_ih[d] + lo * I, I);
    if (r->db_ih[d]) kn_sgemm(NULL, 0, 0, 1, m, N, 1.0f, ones, N, w.dgi + lo, GH, 1.0f, r->db_ih[d] + lo, m);
    if (r->db_hh[d]) kn_sgemm(NULL, 0, 0, 1, m, N, 1.0f, ones, N, w.dgh + lo, GH, 1.0f, r->db_hh[d] + lo, m);
    if (!r->dw_hh[d]) continue;
    if (T > 1)
      kn_sgemm(NULL, 1, 0, m, H, (T - 1) * B, 1.0f, (d ? w.dgh : w.dgh + BG) + lo, GH, d ? w.h + BH : w.h,
               H, 1.0f, r->dw_hh[d] + lo * H, H);
    if (s->h0)
      kn_sgemm(NULL, 1, 0, m, H, B, 1.0f, w.dgh + (size_t)step_time(d, T, 0) * BG + lo, GH, s->h0 + d * BH,
               H, 1.0f, r->dw_hh[d] + lo * H, H);
  }
  if (!j->g->dx) return;
  kn_split(N, tid, nt, &lo, &hi);
  for (int d = 0; hi > lo && d < r->D; d++) {
    dir_ws w;
    dir_layout(r, T, B, s->ws, d, &w);
    kn_sgemm(NULL, 0, 0, (int)(hi - lo), I, GH, 1.0f, w.dgi + (size_t)lo * GH, GH, r->w_ih[d], I, 1.0f,
             j->g->dx + (size_t)lo * I, I);
  }
}

/* The pool, or NULL (inline) for a layer too small to pay for waking threads: the threshold
 * of kn_sgemm, 2e5 flops, on the forward's products. */
static kn_pool *pool_for(kn_pool *p, const kn_rnn *r, const kn_rnn_seq *s) {
  double flops = 2.0 * r->D * s->T * s->B * r->G * r->H * (double)(r->I + r->H);
  return flops < 2e5 ? NULL : p;
}

knobs_status kn_rnn_forward(kn_pool *p, const kn_rnn *r, const kn_rnn_seq *s) {
  knobs_status st = check(r, s, "forward");
  if (st) return st;
  p = pool_for(p, r, s);
  steps_job sj = {r, s, NULL};
  kn_pool_run(p, project_task, &sj);
  rnn_job j = {r, s, NULL, r->cell == KN_RNN_LSTM ? lstm_fwd_rows : gru_fwd_rows};
  kn_pool_run(p, rnn_task, &j);
  return KNOBS_OK;
}

knobs_status kn_rnn_backward(kn_pool *p, const kn_rnn *r, const kn_rnn_seq *s, const kn_rnn_grad *g) {
  knobs_status st = check(r, s, "backward");
  if (st) return st;
  p = pool_for(p, r, s);
  rnn_job j = {r, s, g, r->cell == KN_RNN_LSTM ? lstm_bwd_rows : gru_bwd_rows};
  kn_pool_run(p, rnn_task, &j);
  steps_job sj = {r, s, g};
  kn_pool_run(p, grads_task, &sj);
  return KNOBS_OK;
}
