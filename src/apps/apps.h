/* apps.h: what the files of src/apps share. */
#ifndef KN_APPS_H
#define KN_APPS_H
#include "core/core.h"

/* KNOBS_OK if `path` ends in .png (or .gif when gif_ok; case-insensitive); else KNOBS_ERR_ARG
 * "<what>: <path>: ... must end in .png[ or .gif]", before anything is computed or written. */
knobs_status kn_apps_check_image_path(const char *what, const char *path, int gif_ok);
/* n observations of T frames (T, c, H, W) as n pictures (c, H, T W), the frames side by side
 * (how reconstruct, sample, traverse and data show draw sequences). */
void kn_apps_frames_side_by_side(float *out, const float *x, int n, int T, int c, int H, int W);

#endif
