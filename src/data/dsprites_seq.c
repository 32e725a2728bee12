/* dsprites_seq.c: `dsprites:seq`, short videos of one dSprites sprite (issue 14's built-in
 * sequence data): what stays fixed over a sequence (the shape and the scale) and what moves
 * frame by frame (the position and the orientation), with both as ground truth.
 *
 * An observation is a sequence of T frames (default 8; `dsprites:seq:T` for 2..32), laid out
 * (T, 1, 64, 64): the dataset's shape is C = T channels of 64x64 (info.T = T frames of
 * C / T channels), so every model that takes images takes a sequence as a T-channel image,
 * and a sequential model reads the frames from info.T. Its factors are the sequence's
 * generating parameters, a grid of 3 x 6 x 6 x 32 x 32 x 40 = 4,423,680 sequences:
 *   shape (3), scale (6)                        static: the same in every frame
 *   action (6): left, right, up, down, circle, rotate
 *   posX, posY (32 each), orientation (40)      the first frame's
 * and frame t is the dSprites image of (shape, scale, orientation_t, posX_t, posY_t) from
 * kn_dsprites_seq_frame (below): left/right/up/down move 2 grid steps (of 32) per frame,
 * reflected at the edges; circle goes once round a circle of radius 6 grid steps about
 * (posX, posY) moved 6 steps from the edges (so for circle the position is the centre, and the
 * first frame is 6 steps to its right) over the T frames; rotate turns 40/T
 * orientation steps per frame (a full turn over the sequence) in place; every other action
 * keeps the first orientation. The renderer is dSprites' own (kn_dsprites_mask), so the
 * frames are exactly dSprites images and the oracle of src/apps/oracle.c reads them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/dsprites.h"

#define HW KN_DSPRITES_HW
#define NPIX (HW * HW)

static const char *const seq_names[6] = {"shape", "scale", "action", "posX", "posY", "orientation"};
static const int seq_sizes[6] = {3, 6, KN_SEQ_ACTIONS, 32, 32, 40};
const char *const kn_dsprites_seq_actions[KN_SEQ_ACTIONS] = {"left", "right", "up", "down", "circle", "rotate"};

/* v reflected into [0, 31] (period 62) */
static int reflect(int v) {
  int p = ((v % 62) + 62) % 62;
  return p > 31 ? 62 - p : p;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void kn_dsprites_seq_frame(const int32_t *seq, int t, int T, int32_t frame[5]) {
  int action = seq[2], x = seq[3], y = seq[4], o = seq[5];
  switch (action) {
  case KN_SEQ_LEFT: x = reflect(x - 2 * t); break;
  case KN_SEQ_RIGHT: x = reflect(x + 2 * t); break;
  case KN_SEQ_UP: y = reflect(y - 2 * t); break;
  case KN_SEQ_DOWN: y = reflect(y + 2 * t); break;
  case KN_SEQ_CIRCLE: {
    int cx = clampi(x, 6, 25), cy = clampi(y, 6, 25);
    double a = 2 * M_PI * t / T;
    x = clampi((int)lround(cx + 6 * cos(a)), 0, 31);
    y = clampi((int)lround(cy + 6 * sin(a)), 0, 31);
    break;
  }
  case KN_SEQ_ROTATE: o = (o + (40 * t) / T) % 40; break;
  default: break;
  }
  frame[0] = seq[0], frame[1] = seq[1], frame[2] = o, frame[3] = x, frame[4] = y;
}

typedef struct {
  int T;
} seq_impl;

typedef struct {
  const knobs_data *d;
  const int32_t *f;
  int n;
  float *obs;
} seq_job;

static void seq_task(void *ctx, int tid, int nt) {
  const seq_job *j = ctx;
  int T = j->d->info.T;
  long lo, hi;
  kn_split((long)j->n * T, tid, nt, &lo, &hi); /* frames: a thread owns its frames */
  uint8_t mask[NPIX];
  for (long k = lo; k < hi; k++) {
    long i = k / T;
    int t = (int)(k % T);
    int32_t fr[5];
    kn_dsprites_seq_frame(j->f + (size_t)i * 6, t, T, fr);
    kn_dsprites_mask(mask, fr[0], kn_dsprites_value(1, fr[1]), kn_dsprites_value(2, fr[2]),
                     16 + 32 * kn_dsprites_value(3, fr[3]), 16 + 32 * kn_dsprites_value(4, fr[4]));
    float *out = j->obs + (size_t)k * NPIX;
    for (int p = 0; p < NPIX; p++) out[p] = mask[p];
  }
}

static knobs_status seq_render(knobs_data *d, const int32_t *factors, int n, float *obs) {
  seq_job j = {d, factors, n, obs};
  kn_pool_run((long)n * d->info.T > 1 ? d->pool : NULL, seq_task, &j);
  return KNOBS_OK;
}

/* The factors' values: shape 1..3, the dSprites linspaces for scale, position and orientation,
 * the action's index. */
static double seq_value(const knobs_data *d, int k, int c) {
  (void)d;
  static const int grid_of[6] = {0, 1, -1, 3, 4, 2};
  return grid_of[k] < 0 ? c : kn_dsprites_value(grid_of[k], c);
}

static void seq_free(void *p) { free(p); }

static const kn_data_ops seq_ops = {.render = seq_render, .factor_value = seq_value, .free_impl = seq_free};

static int seq_match(const char *spec) { return !strncmp(spec, "dsprites:seq", 12); }

static knobs_status seq_open(knobs_data *d, const char *spec, const knobs_data_opts *o) {
  if (o->factors)
    return kn_err(KNOBS_ERR_ARG, "%s has its own factors: a factors file (%s) is for your own data", spec, o->factors);
  int T = 8;
  if (spec[12]) {
    char *e;
    long v = spec[12] == ':' ? strtol(spec + 13, &e, 10) : -1;
    if (spec[12] != ':' || !spec[13] || *e || v < 2 || v > 32)
      return kn_err(KNOBS_ERR_ARG, "'%s': frames per sequence are dsprites:seq:T with T from 2 to 32 (dsprites:seq "
                    "is 8)", spec);
    T = (int)v;
  }
  seq_impl *m = calloc(1, sizeof *m);
  if (!m) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", spec);
  m->T = T;
  d->impl = m;
  d->ops = &seq_ops;
  knobs_data_info *in = &d->info;
  snprintf(in->name, sizeof in->name, "%s", spec);
  kn_data_set_factors(in, 6, seq_names, seq_sizes);
  in->n = 1;
  for (int k = 0; k < in->K; k++) in->n *= in->factor_sizes[k];
  in->T = T;
  in->C = T, in->H = HW, in->W = HW;
  in->is_image = 1;
  in->binary = 1;
  in->has_render = 1;
  return KNOBS_OK;
}

const kn_data_entry kn_data_dsprites_seq = {
    "dsprites:seq",
    "sequences of T frames (dsprites:seq:T, default 8) of one dSprites sprite: shape 3 x scale 6 fixed, "
    "action 6 (left, right, up, down, circle, rotate) from a first posX 32 x posY 32 x orientation 40; "
    "T channels of 64x64",
    seq_match, seq_open};
