/* dsprites.h: the sprite rasteriser behind the built-in dSprites, exposed for the tests and the
 * benchmark (a sprite at any angle or sub-pixel centre, not only on the factor grid), and for the
 * oracle (src/apps/oracle.c), which draws the masks it compares with through it. The
 * dataset itself is reached through the registry entry kn_data_dsprites (data.h). */
#ifndef KN_DSPRITES_H
#define KN_DSPRITES_H
#include <stdint.h>

#define KN_DSPRITES_HW 64 /* images are 64x64 */

enum { KN_DSPRITES_SQUARE = 0, KN_DSPRITES_ELLIPSE = 1, KN_DSPRITES_HEART = 2 };

/* The stream of the per-image nuisance rng of the variants: the nuisance of grid index i is drawn
 * from kn_rng_seed(&r, opts->seed, KN_DSPRITES_STREAM + i) (colour: 3 uniforms; noisy: the
 * background; noshape: the shape). Far from the KN_STREAM_* ranges so that a dataset seed equal
 * to the training seed shares no stream with training draws. */
#define KN_DSPRITES_STREAM (0x6473ull << 48) /* "ds" */

/* Rasterise one sprite into `mask` (64*64 bytes, row-major, row 0 at the top), every byte set to
 * 0 or 1. shape: KN_DSPRITES_*; scale: 1 is the largest dSprites sprite (square side 20 px);
 * angle: radians, counter-clockwise on screen; (cx, cy): the rotation centre in continuous pixel
 * coordinates (column i covers [i, i+1)), x along columns and y down the rows. A pixel is on when
 * at least 13 of its 25 sub-samples (a sheared 5x5 lattice) fall inside the shape; only the
 * sprite's bounding box is sampled. Parts outside the image are clipped. Returns the number of pixels set. */
int kn_dsprites_mask(uint8_t *mask, int shape, double scale, double angle, double cx, double cy);

/* The value of class c of dSprites grid factor j (0 shape 1..3, 1 scale, 2 orientation in
 * radians, 3 posX, 4 posY in [0, 1]), as numpy.linspace gives the original's latents_values. */
double kn_dsprites_value(int j, int c);

/* dsprites:seq (dsprites_seq.c): a sequence's factors are (shape, scale, action, posX, posY,
 * orientation), the last three of its first frame; kn_dsprites_seq_frame gives frame t of T as
 * dSprites grid factors (shape, scale, orientation, posX, posY). */
enum { KN_SEQ_LEFT, KN_SEQ_RIGHT, KN_SEQ_UP, KN_SEQ_DOWN, KN_SEQ_CIRCLE, KN_SEQ_ROTATE, KN_SEQ_ACTIONS };
extern const char *const kn_dsprites_seq_actions[KN_SEQ_ACTIONS];
void kn_dsprites_seq_frame(const int32_t *seq, int t, int T, int32_t frame[5]);

#endif
