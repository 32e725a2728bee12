/* test_seq.c: the built-in sequence data dsprites:seq (src/data/dsprites_seq.c): its shape and
 * factors, every frame the dSprites image of the frame's factors, the motions (moves of 2 grid
 * steps reflected at the edges, a closed circle, a full turn), dsprites:seq:T, refusals, and
 * the oracle of dSprites reading each rendered frame back exactly (the swap score's oracle). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dsprites.h"
#include "knobs.h"
#include "t.h"

static knobs_data *open_data(const char *name) {
  knobs_data *d = NULL;
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  o.threads = 2;
  knobs_status s = knobs_data_open(name, &o, &d);
  CHECK(s == KNOBS_OK, "open %s: %s", name, knobs_last_error());
  return d;
}

#define NPIX (64 * 64)

int main(void) {
  T_CASE("info");
  knobs_data *d = open_data("dsprites:seq"), *ds = open_data("dsprites");
  if (!d || !ds) return t_done();
  const knobs_data_info *in = knobs_data_info_get(d);
  CHECK(in->T == 8 && in->C == 8 && in->H == 64 && in->W == 64, "T %d C %d %dx%d", in->T, in->C, in->H, in->W);
  CHECK(in->K == 6 && in->n == 3LL * 6 * 6 * 32 * 32 * 40, "K %d n %lld", in->K, (long long)in->n);
  CHECK(!strcmp(in->factor_names[2], "action") && in->factor_sizes[2] == 6, "action factor");
  CHECK(knobs_data_info_get(ds)->T == 1, "a plain dataset has T = 1");

  T_CASE("frames are dSprites images of the frame factors");
  int32_t seqs[6][6] = {{0, 5, KN_SEQ_RIGHT, 3, 10, 0},   {1, 2, KN_SEQ_LEFT, 1, 20, 7}, {2, 0, KN_SEQ_UP, 15, 2, 11},
                        {0, 3, KN_SEQ_DOWN, 9, 30, 4},    {1, 4, KN_SEQ_CIRCLE, 2, 28, 9},
                        {2, 5, KN_SEQ_ROTATE, 16, 16, 38}};
  float *x = malloc(sizeof(float) * 6 * 8 * NPIX), *y = malloc(sizeof(float) * 8 * NPIX);
  int32_t fr[8][5], got[8][5];
  CHECK(knobs_data_render(d, &seqs[0][0], 6, x) == KNOBS_OK, "render: %s", knobs_last_error());
  for (int i = 0; i < 6; i++) {
    for (int t = 0; t < 8; t++) kn_dsprites_seq_frame(seqs[i], t, 8, fr[t]);
    CHECK(knobs_data_render(ds, &fr[0][0], 8, y) == KNOBS_OK, "dsprites render");
    CHECK(!memcmp(x + (size_t)i * 8 * NPIX, y, sizeof(float) * 8 * NPIX), "sequence %d: frames differ from dsprites", i);
  }

  T_CASE("motions");
  int32_t f[5];
  for (int t = 0; t < 8; t++) {
    kn_dsprites_seq_frame(seqs[0], t, 8, f); /* right from 3: 3, 5, .. 17; y, o fixed */
    CHECK(f[3] == 3 + 2 * t && f[4] == 10 && f[2] == 0 && f[0] == 0 && f[1] == 5, "right t=%d: x %d", t, f[3]);
    kn_dsprites_seq_frame(seqs[1], t, 8, f); /* left from 1: 1, 1 (reflected -1), 3, 5 ... */
    int want = t == 0 ? 1 : 2 * t - 1;
    CHECK(f[3] == want, "left from 1, t=%d: x %d, want %d", t, f[3], want);
    kn_dsprites_seq_frame(seqs[3], t, 8, f); /* down from 30: 30, 30 (32 reflected), 28 ... */
    want = t == 0 ? 30 : 32 - 2 * t;
    CHECK(f[4] == want && f[3] == 9, "down from 30, t=%d: y %d, want %d", t, f[4], want);
    kn_dsprites_seq_frame(seqs[5], t, 8, f); /* rotate: 5 steps a frame, mod 40 */
    CHECK(f[2] == (38 + 5 * t) % 40 && f[3] == 16 && f[4] == 16, "rotate t=%d: o %d", t, f[2]);
  }
  int32_t a[5], b[5];
  kn_dsprites_seq_frame(seqs[4], 0, 8, a); /* circle about the clamped centre (6, 25) */
  kn_dsprites_seq_frame(seqs[4], 4, 8, b);
  CHECK(a[3] == 12 && a[4] == 25 && b[3] == 0 && b[4] == 25, "circle: (%d,%d) then (%d,%d)", a[3], a[4], b[3], b[4]);
  kn_dsprites_seq_frame(seqs[4], 8, 8, b);
  CHECK(a[3] == b[3] && a[4] == b[4], "the circle closes after T frames");

  T_CASE("the dSprites oracle reads every frame");
  knobs_oracle *o = NULL;
  CHECK(knobs_oracle_create(ds, 2, &o) == KNOBS_OK, "oracle: %s", knobs_last_error());
  double dist[8];
  for (int i = 0; o && i < 6; i++) {
    for (int t = 0; t < 8; t++) kn_dsprites_seq_frame(seqs[i], t, 8, fr[t]);
    CHECK(knobs_oracle_factors(o, x + (size_t)i * 8 * NPIX, 8, &got[0][0], dist) == KNOBS_OK, "oracle");
    for (int t = 0; t < 8; t++)
      CHECK(dist[t] == 0 && got[t][0] == fr[t][0] && got[t][1] == fr[t][1] && got[t][3] == fr[t][3] &&
                got[t][4] == fr[t][4],
            "seq %d frame %d: got (%d %d %d %d %d) want (%d %d %d %d %d), dist %g", i, t, got[t][0], got[t][1],
            got[t][2], got[t][3], got[t][4], fr[t][0], fr[t][1], fr[t][2], fr[t][3], fr[t][4], dist[t]);
  }
  knobs_oracle_free(o);

  T_CASE("dsprites:seq:T and refusals");
  knobs_data *d4 = open_data("dsprites:seq:4");
  if (d4) CHECK(knobs_data_info_get(d4)->T == 4 && knobs_data_info_get(d4)->C == 4, "T 4");
  knobs_data_free(d4);
  const char *badspec[] = {"dsprites:seq:1", "dsprites:seq:33", "dsprites:seq:x", "dsprites:seqq", "dsprites:seq:"};
  for (int i = 0; i < 5; i++) {
    knobs_data *e = NULL;
    knobs_data_opts op;
    knobs_data_opts_default(&op);
    knobs_status s = knobs_data_open(badspec[i], &op, &e);
    CHECK(s == KNOBS_ERR_ARG && e == NULL && strstr(knobs_last_error(), "2 to 32"), "%s: %d %s", badspec[i], s,
          knobs_last_error());
  }
  free(x);
  free(y);
  knobs_data_free(d);
  knobs_data_free(ds);
  return t_done();
}
