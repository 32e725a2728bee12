/* apps.h: what the files of src/apps share. */
#ifndef KN_APPS_H
#define KN_APPS_H
#include "core/core.h"

/* KNOBS_OK if `path` ends in .png (or .gif when gif_ok; case-insensitive); else KNOBS_ERR_ARG
 * "<what>: <path>: ... must end in .png[ or .gif]", before anything is computed or written. */
knobs_status kn_apps_check_image_path(const char *what, const char *path, int gif_ok);

#endif
