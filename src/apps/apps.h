/* apps.h: what the files of src/apps share. */
#ifndef KN_APPS_H
#define KN_APPS_H
#include "core/core.h"

/* KNOBS_OK if `path` ends in .png (or .gif when gif_ok; case-insensitive); else KNOBS_ERR_ARG
 * "<what>: <path>: ... must end in .png[ or .gif]", before anything is computed or written. */
knobs_status kn_apps_check_image_path(const char *what, const char *path, int gif_ok);
/* n observations of T frames (T, C/T, H, W) as n pictures (C/T, H, T W), the frames side by
 * side (how reconstruct, sample, traverse and data show draw sequences): a new array (NULL if
 * it cannot be allocated), and *C, *W set to the pictures' channels and width. */
float *kn_apps_as_strips(const float *x, int n, int T, int *C, int H, int *W);

#endif
