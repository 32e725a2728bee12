/* swap.c: what a sequential model with a static and a dynamic code can do that a per-frame
 * model cannot: swap the codes of two sequences (docs/apps.md "Swap").
 *   knobs_swap_picture   rows A, B, A's dynamics with B's static code, B's dynamics with A's
 *   knobs_swap_evaluate  the swap score on dsprites:seq, read back by the dSprites oracle
 * Codes are posterior means (knobs_dsvae_encode). The score also takes a per-frame model (a
 * VAE of single frames: the baseline, which has no static code) by splitting its latents into
 * a static and a dynamic part (choose_static). Only the public API of the model and the oracle
 * is used, plus dsprites:seq's frame factors (kn_dsprites_seq_frame) for the ground truth of the
 * inputs' frames. */
#include <stdlib.h>
#include <string.h>

#include "apps/apps.h"
#include "data/dsprites.h"
#include "io/io.h"

typedef struct {
  int T, Fd, Z, C, H, W, c; /* frames, code sizes, the model's input shape, channels a frame */
  size_t D;                 /* floats a sequence */
} seq_shape;

static knobs_status shape_of(knobs_model *m, knobs_data *d, seq_shape *s) {
  knobs_status st = knobs_dsvae_dims(m, &s->T, &s->Fd, &s->Z);
  if (st) return st;
  const knobs_config *c = knobs_model_config(m);
  s->C = (int)knobs_config_number(c, "C"), s->H = (int)knobs_config_number(c, "H"), s->W = (int)knobs_config_number(c, "W");
  s->c = s->C / s->T;
  s->D = (size_t)s->C * s->H * s->W;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (in->C != s->C || in->H != s->H || in->W != s->W || in->T != s->T)
    return kn_err(KNOBS_ERR_DATA, "%s has observations of %d frames %dx%dx%d, the model takes %d frames %dx%dx%d",
                  in->name, in->T, in->C / (in->T > 0 ? in->T : 1), in->H, in->W, s->T, s->c, s->H, s->W);
  return KNOBS_OK;
}

/* Codes of 2P sequences x and the swapped decodes: row 2i is A_i's dynamics with B_i's static
 * code, row 2i+1 B_i's dynamics with A_i's; y (2P sequences). f, z, fs scratch of 2P rows. */
static knobs_status swapped(knobs_model *m, const seq_shape *s, const float *x, int P, float *f, float *z, float *fs,
                            float *y) {
  knobs_status st = knobs_dsvae_encode(m, x, 2 * P, f, z);
  if (st) return st;
  for (int i = 0; i < P; i++) {
    memcpy(fs + (size_t)2 * i * s->Fd, f + (size_t)(2 * i + 1) * s->Fd, sizeof(float) * (size_t)s->Fd);
    memcpy(fs + (size_t)(2 * i + 1) * s->Fd, f + (size_t)2 * i * s->Fd, sizeof(float) * (size_t)s->Fd);
  }
  return knobs_dsvae_decode(m, fs, z, 2 * P, y);
}

knobs_status knobs_swap_picture(knobs_model *m, knobs_data *d, int pairs, uint64_t seed, const char *path) {
  knobs_status st = kn_apps_check_image_path("swap", path, 1);
  if (st) return st;
  if (pairs < 1 || pairs > 256) return kn_err(KNOBS_ERR_ARG, "swap: %d pairs (1..256)", pairs);
  seq_shape s;
  if ((st = shape_of(m, d, &s))) return st;
  if (s.c != 1 && s.c != 3)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "swap: frames of %d channels are not pictures (1 or 3)", s.c);
  int P = pairs, T = s.T;
  size_t F = (size_t)s.c * s.H * s.W; /* floats a frame */
  float *x = malloc(sizeof(float) * s.D * 2 * P), *y = malloc(sizeof(float) * s.D * 2 * P);
  float *f = malloc(sizeof(float) * (size_t)s.Fd * 2 * P * 2), *z = malloc(sizeof(float) * (size_t)T * s.Z * 2 * P);
  float *img = malloc(sizeof(float) * s.D * 4 * P);
  if (!x || !y || !f || !z || !img) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate %d pairs", P);
  if (!st) st = knobs_data_draw(d, 2 * P, seed, 0, x, NULL);
  if (!st) st = swapped(m, &s, x, P, f, z, f + (size_t)s.Fd * 2 * P, y);
  if (!st) {
    /* pair i: rows A, B, swap of A, swap of B; each row the T frames */
    for (int i = 0; i < P; i++) {
      const float *rows[4] = {x + s.D * 2 * i, x + s.D * (2 * i + 1), y + s.D * 2 * i, y + s.D * (2 * i + 1)};
      for (int r = 0; r < 4; r++) memcpy(img + s.D * (4 * (size_t)i + r), rows[r], sizeof(float) * s.D);
    }
    uint8_t *g = NULL;
    int gw, gh;
    if (kn_ends_with(path, ".png")) {
      st = knobs_image_grid(img, 4 * P * T, s.c, s.H, s.W, T, 2, 0.5f, &g, &gw, &gh);
      if (!st) st = knobs_png_write(path, g, gw, gh, s.c);
      knobs_free(g);
    } else { /* frame t: the rows' frame t, a pair a row (A, B, swap A, swap B) */
      float *one = malloc(sizeof(float) * F * 4 * P), *anim = NULL;
      size_t fsz = 0;
      if (!one) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate the animation");
      for (int t = 0; !st && t < T; t++) {
        for (int r = 0; r < 4 * P; r++) memcpy(one + F * r, img + s.D * r + F * t, sizeof(float) * F);
        st = knobs_image_grid(one, 4 * P, s.c, s.H, s.W, 4, 2, 0.5f, &g, &gw, &gh);
        if (!st && !anim) {
          fsz = (size_t)s.c * gw * gh;
          if (!(anim = malloc(sizeof(float) * fsz * T))) st = kn_err(KNOBS_ERR_NOMEM, "swap: cannot allocate the animation");
        }
        for (size_t p = 0; !st && p < (size_t)gw * gh; p++) /* (gh,gw,c) bytes -> (c,gh,gw) floats */
          for (int k = 0; k < s.c; k++) anim[fsz * t + (size_t)k * gw * gh + p] = g[p * s.c + k] / 255.0f;
        knobs_free(g);
        g = NULL;
      }
      if (!st) st = knobs_gif_write(path, anim, T, s.c, gh, gw, 25);
      free(one), free(anim);
    }
  }
  free(x), free(y), free(f), free(z), free(img);
  return st;
}

/* ---- the score ----------------------------------------------------------------------------- */
enum { CHUNK = 32, CAL_PAIRS = 64 }; /* pairs decoded and read at a time; pairs choosing a baseline's split */

/* What is swapped. A dsvae (seq = 1): f and z_1:T. A per-frame model (seq = 0, the baseline): the
 * D latents of each frame, of which those with stat[j] set are the "static half": a sequence's
 * static code is their mean over its frames, and a swap puts the donor's static code into every
 * frame of the other sequence (the remaining latents, frame by frame, are its dynamics). */
typedef struct {
  knobs_model *m;
  int seq, T, Fd, Z, D, c;
  size_t frame; /* floats a frame */
  int *stat;    /* D, per-frame only */
} codec;

/* Codes of 2P sequences x: dsvae f (2P,Fd) and z (2P,T,Z); per-frame z (2P*T, D). */
static knobs_status cc_encode(const codec *k, const float *x, int P2, float *f, float *z) {
  return k->seq ? knobs_dsvae_encode(k->m, x, P2, f, z) : knobs_model_encode(k->m, x, P2 * k->T, z, NULL);
}

/* Decode rows of 2P sequences into y: row j takes its dynamics from row j and its static code
 * from row j ^ swap. fs scratch (2P, Fd); zs scratch (2P*T, D) for the per-frame model. */
static knobs_status cc_decode(const codec *k, const float *f, const float *z, int P2, int swap, float *fs, float *zs,
                              float *y) {
  if (k->seq) {
    for (int j = 0; j < P2; j++) memcpy(fs + (size_t)j * k->Fd, f + (size_t)(j ^ swap) * k->Fd, sizeof(float) * k->Fd);
    return knobs_dsvae_decode(k->m, fs, z, P2, y);
  }
  int T = k->T, D = k->D;
  memcpy(zs, z, sizeof(float) * (size_t)P2 * T * D);
  for (int j = 0; swap && j < P2; j++)
    for (int q = 0; q < D; q++) {
      if (!k->stat[q]) continue;
      double mean = 0;
      for (int t = 0; t < T; t++) mean += z[((size_t)(j ^ 1) * T + t) * D + q];
      for (int t = 0; t < T; t++) zs[((size_t)j * T + t) * D + q] = (float)(mean / T);
    }
  return knobs_model_decode(k->m, zs, P2 * T, y);
}

typedef struct {
  long st, shape, dy, dy3, n;    /* frames: shape and scale right, shape right, position within 1, 3 */
  long st_seq, shape_seq, nseq;  /* sequences, by the vote of their frames */
} reads;

static int near(int a, int b, int k) { return abs(a - b) <= k; }

/* The most frequent of the T values v[5 t] in 0..n-1 (the lowest on a tie). */
static int vote(const int32_t *v, int T, int n) {
  int cnt[8] = {0}, best = 0;
  for (int t = 0; t < T; t++)
    if (v[5 * t] >= 0 && v[5 * t] < n) cnt[v[5 * t]]++;
  for (int i = 1; i < n; i++)
    if (cnt[i] > cnt[best]) best = i;
  return best;
}

/* Oracle reads of rows sequences y against the static donor (row j ^ swap) and the dynamics
 * donor (row j), fac the rows' sequence factors (6 each). */
static knobs_status check_rows(knobs_oracle *o, const float *y, int rows, int T, const int32_t *fac, int swap,
                               int32_t *read, reads *a) {
  knobs_status st = knobs_oracle_factors(o, y, rows * T, read, NULL);
  if (st) return st;
  for (int j = 0; j < rows; j++) {
    const int32_t *sd = fac + 6 * (size_t)(j ^ swap), *dd = fac + 6 * (size_t)j, *r0 = read + 5 * (size_t)j * T;
    for (int t = 0; t < T; t++) {
      const int32_t *r = r0 + 5 * t;
      int32_t fr[5];
      kn_dsprites_seq_frame(dd, t, T, fr);
      a->st += r[0] == sd[0] && r[1] == sd[1];
      a->shape += r[0] == sd[0];
      a->dy += near(r[3], fr[3], 1) && near(r[4], fr[4], 1);
      a->dy3 += near(r[3], fr[3], 3) && near(r[4], fr[4], 3);
      a->n++;
    }
    int vs = vote(r0, T, 3), vc = vote(r0 + 1, T, 6);
    a->st_seq += vs == sd[0] && vc == sd[1];
    a->shape_seq += vs == sd[0];
    a->nseq++;
  }
  return KNOBS_OK;
}

typedef struct {
  knobs_data *d;
  knobs_oracle *o;
  float *x, *y, *f, *fs, *z, *zs;
  int32_t *fac, *read;
} work;

/* n pairs drawn with seed: the swaps (sw), the reconstructions (rc) and, for a dsvae, the
 * generation test (gen_ok of gen_n frames). */
static knobs_status score_pairs(const codec *k, work *w, int n, uint64_t seed, reads *sw, reads *rc, long *gen_ok,
                                long *gen_n) {
  knobs_status st = KNOBS_OK;
  int T = k->T;
  for (int i0 = 0, chunk = 0; !st && i0 < n; i0 += CHUNK, chunk++) {
    int p = n - i0 < CHUNK ? n - i0 : CHUNK;
    st = knobs_data_draw(w->d, 2 * p, seed, (uint64_t)chunk, w->x, w->fac);
    if (!st) st = cc_encode(k, w->x, 2 * p, w->f, w->z);
    if (!st) st = cc_decode(k, w->f, w->z, 2 * p, 1, w->fs, w->zs, w->y);
    if (!st) st = check_rows(w->o, w->y, 2 * p, T, w->fac, 1, w->read, sw);
    if (!st) st = cc_decode(k, w->f, w->z, 2 * p, 0, w->fs, w->zs, w->y);
    if (!st) st = check_rows(w->o, w->y, 2 * p, T, w->fac, 0, w->read, rc);
    if (st || !k->seq) continue;
    /* generation: the static code of each A, dynamics sampled from the learned prior */
    for (int i = 0; i < p; i++) memcpy(w->fs + (size_t)i * k->Fd, w->f + (size_t)2 * i * k->Fd, sizeof(float) * k->Fd);
    st = knobs_dsvae_prior(k->m, p, seed + 7919 * (uint64_t)(chunk + 1), 1, w->z);
    if (!st) st = knobs_dsvae_decode(k->m, w->fs, w->z, p, w->y);
    if (!st) st = knobs_oracle_factors(w->o, w->y, p * T, w->read, NULL);
    for (int i = 0; !st && i < p; i++)
      for (int t = 1; t < T; t++) {
        const int32_t *r0 = w->read + 5 * (size_t)i * T, *r = r0 + 5 * t;
        *gen_ok += r[0] == r0[0] && r[1] == r0[1];
        (*gen_n)++;
      }
  }
  return st;
}

/* The baseline's static half: the latents ordered by the share of their variance that lies
 * within sequences (over the frames of CAL_PAIRS pairs drawn with a seed of their own); the k
 * most constant of them are static, for the k in 1..D-1 whose swaps on those pairs score best
 * (static by the vote + dynamic within 1 step; the smaller k on a tie). */
static knobs_status choose_static(codec *k, work *w, uint64_t seed) {
  int T = k->T, D = k->D, P2 = 2 * CAL_PAIRS;
  uint64_t cal = seed ^ 0x5eed5a9bULL;
  knobs_status st = knobs_data_draw(w->d, P2, cal, 0, w->x, w->fac);
  if (!st) st = cc_encode(k, w->x, P2, w->f, w->z);
  if (st) return st;
  double share[64] = {0};
  int order[64] = {0};
  for (int q = 0; q < D; q++) {
    double tot = 0, tot2 = 0, within = 0;
    for (int j = 0; j < P2; j++) {
      double m = 0, m2 = 0;
      for (int t = 0; t < T; t++) {
        double v = w->z[((size_t)j * T + t) * D + q];
        m += v, m2 += v * v;
      }
      tot += m, tot2 += m2;
      within += m2 - m * m / T;
    }
    double total = tot2 - tot * tot / ((double)P2 * T);
    share[q] = total > 0 ? within / total : 1;
    order[q] = q;
  }
  for (int a = 1; a < D; a++) /* insertion sort: stable, so equal shares keep the latents' order */
    for (int b = a; b > 0 && share[order[b]] < share[order[b - 1]]; b--) {
      int t = order[b];
      order[b] = order[b - 1], order[b - 1] = t;
    }
  /* the calibration pairs, drawn in chunks as score_pairs draws them and encoded once: only the
   * swapped decodes and their reads depend on k */
  for (int i0 = 0, chunk = 0; i0 < CAL_PAIRS; i0 += CHUNK, chunk++) {
    int p = CAL_PAIRS - i0 < CHUNK ? CAL_PAIRS - i0 : CHUNK;
    size_t r0 = 2 * (size_t)i0;
    st = knobs_data_draw(w->d, 2 * p, cal, (uint64_t)chunk, w->x, w->fac + 6 * r0);
    if (!st) st = cc_encode(k, w->x, 2 * p, w->f, w->z + r0 * T * D);
    if (st) return st;
  }
  double best = -1;
  int bk = 1;
  for (int kk = 1; kk < D; kk++) {
    for (int q = 0; q < D; q++) k->stat[q] = 0;
    for (int q = 0; q < kk; q++) k->stat[order[q]] = 1;
    reads sw = {0};
    for (int i0 = 0; !st && i0 < CAL_PAIRS; i0 += CHUNK) {
      int p = CAL_PAIRS - i0 < CHUNK ? CAL_PAIRS - i0 : CHUNK;
      size_t r0 = 2 * (size_t)i0;
      st = cc_decode(k, w->f, w->z + r0 * T * D, 2 * p, 1, w->fs, w->zs, w->y);
      if (!st) st = check_rows(w->o, w->y, 2 * p, T, w->fac + 6 * r0, 1, w->read, &sw);
    }
    if (st) return st;
    double s = (double)sw.st_seq / sw.nseq + (double)sw.dy / sw.n;
    if (s > best) best = s, bk = kk;
  }
  for (int q = 0; q < D; q++) k->stat[q] = 0;
  for (int q = 0; q < bk; q++) k->stat[order[q]] = 1;
  return KNOBS_OK;
}

/* The model as a codec for data of T frames of c channels, or KNOBS_ERR_UNSUPPORTED. */
static knobs_status codec_of(knobs_model *m, knobs_data *d, codec *k) {
  memset(k, 0, sizeof *k);
  k->m = m;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (!knobs_dsvae_dims(m, NULL, NULL, NULL)) {
    seq_shape s;
    knobs_status st = shape_of(m, d, &s);
    if (st) return st;
    k->seq = 1, k->T = s.T, k->Fd = s.Fd, k->Z = s.Z, k->c = s.c, k->frame = (size_t)s.c * s.H * s.W;
    return KNOBS_OK;
  }
  const knobs_config *c = knobs_model_config(m);
  int C = (int)knobs_config_number(c, "C"), H = (int)knobs_config_number(c, "H"), W = (int)knobs_config_number(c, "W");
  if (in->T < 2 || C * in->T != in->C || H != in->H || W != in->W || !knobs_model_has_posterior(m))
    return kn_err(KNOBS_ERR_UNSUPPORTED,
                  "swap score: model %s is neither a dsvae nor a per-frame model of %s's %dx%dx%d frames with a posterior",
                  knobs_config_string(c, "model"), in->name, in->T > 0 ? in->C / in->T : in->C, in->H, in->W);
  k->seq = 0, k->T = in->T, k->c = C, k->D = knobs_model_code_dim(m), k->frame = (size_t)C * H * W;
  if (k->D < 2 || k->D > 64)
    return kn_err(KNOBS_ERR_UNSUPPORTED, "swap score: a per-frame model needs 2..64 latents to split, %s has %d",
                  knobs_config_string(c, "model"), k->D);
  k->stat = calloc((size_t)k->D, sizeof(int));
  return k->stat ? KNOBS_OK : kn_err(KNOBS_ERR_NOMEM, "swap score: cannot allocate");
}

knobs_status knobs_swap_evaluate(knobs_model *m, knobs_data *d, int n, uint64_t seed, knobs_swap_score *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || n > 100000) return kn_err(KNOBS_ERR_ARG, "swap score: %d pairs (1..100000)", n);
  codec k;
  knobs_status st = codec_of(m, d, &k);
  if (st) return st;
  const knobs_data_info *in = knobs_data_info_get(d);
  if (strncmp(in->name, "dsprites:seq", 12) || in->K != 6 || k.c != 1 || in->H != 64) {
    free(k.stat);
    return kn_err(KNOBS_ERR_UNSUPPORTED, "swap score: the oracle reads dsprites:seq frames; %s is not dsprites:seq",
                  in->name);
  }
  work w = {.d = d};
  knobs_data *dsp = NULL; /* the oracle's dSprites */
  int threads = (int)knobs_config_number(knobs_model_config(m), "threads");
  if (!(st = knobs_data_open("dsprites", NULL, &dsp))) st = knobs_oracle_create(dsp, threads > 0 ? threads : 1, &w.o);
  if (st) {
    knobs_data_free(dsp);
    free(k.stat);
    return st;
  }
  int T = k.T, P2 = 2 * (CHUNK > CAL_PAIRS ? CHUNK : CAL_PAIRS), Dz = k.seq ? T * k.Z : T * k.D;
  size_t D = k.frame * T;
  w.x = malloc(sizeof(float) * D * P2), w.y = malloc(sizeof(float) * D * P2);
  w.f = malloc(sizeof(float) * ((size_t)k.Fd + 1) * P2), w.fs = malloc(sizeof(float) * ((size_t)k.Fd + 1) * P2);
  w.z = malloc(sizeof(float) * (size_t)Dz * P2), w.zs = malloc(sizeof(float) * (size_t)Dz * P2);
  w.fac = malloc(sizeof(int32_t) * 6 * P2), w.read = malloc(sizeof(int32_t) * 5 * (size_t)T * P2);
  if (!w.x || !w.y || !w.f || !w.fs || !w.z || !w.zs || !w.fac || !w.read)
    st = kn_err(KNOBS_ERR_NOMEM, "swap score: cannot allocate");
  if (!st && !k.seq) st = choose_static(&k, &w, seed);
  reads sw = {0}, rc = {0};
  long gen_ok = 0, gen_n = 0;
  if (!st) st = score_pairs(&k, &w, n, seed, &sw, &rc, &gen_ok, &gen_n);
  if (!st) {
    out->pairs = n;
    out->frames = sw.n;
    out->static_acc = (double)sw.st / sw.n;
    out->static_seq_acc = (double)sw.st_seq / sw.nseq;
    out->shape_acc = (double)sw.shape / sw.n;
    out->shape_seq_acc = (double)sw.shape_seq / sw.nseq;
    out->dynamic_acc = (double)sw.dy / sw.n;
    out->dynamic_acc3 = (double)sw.dy3 / sw.n;
    out->recon_static_acc = (double)rc.st / rc.n;
    out->recon_static_seq_acc = (double)rc.st_seq / rc.nseq;
    out->recon_dynamic_acc = (double)rc.dy / rc.n;
    out->gen_static_acc = gen_n ? (double)gen_ok / gen_n : -1;
    for (int q = 0; !k.seq && q < k.D; q++)
      if (k.stat[q]) out->static_mask |= 1ULL << q, out->static_dims++;
  }
  free(w.x), free(w.y), free(w.f), free(w.fs), free(w.z), free(w.zs), free(w.fac), free(w.read);
  knobs_oracle_free(w.o);
  knobs_data_free(dsp);
  free(k.stat);
  return st;
}
