/* plot.h: PNG plots drawn with PLplot (src/cli/plot.c) for `knobs report`: a box plot of one
 * value per group, and an annotated heat map of a correlation matrix. Only the command links
 * PLplot (as it links MPI); built without it, cli_plot_available is 0, cli_plot_info says why
 * and the drawing functions refuse. */
#ifndef KN_CLI_PLOT_H
#define KN_CLI_PLOT_H
#include <stddef.h>

/* 1 if PNGs can be drawn: built with PLplot and its pngcairo device present. */
int cli_plot_available(void);
/* "PLplot 5.15.0 (pngcairo)", or why there are no plots ("none: built without PLplot"). */
const char *cli_plot_info(void);

typedef struct {
  const char *title;            /* above the plot */
  const char *ylabel;           /* the value's name */
  int ngroups;                  /* boxes, left to right (>= 1) */
  const char *const *group;     /* (ngroups) labels under the boxes */
  const int *count;             /* (ngroups) values per group (0: an empty slot) */
  const double *const *values;  /* (ngroups) each group's values (finite) */
} cli_boxplot;

/* A box per group (quartiles by linear interpolation, as NumPy's percentile; the median line;
 * whiskers to the furthest value within 1.5 IQR of the box; every value drawn as a dot) into
 * the PNG `path`, w x h pixels (taller by the labels' length when they are too long to sit side
 * by side and are written downwards). 0, or -1 with err filled. */
int cli_plot_box(const char *path, int w, int h, const cli_boxplot *b, char *err, size_t n);
/* An M x M matrix mat (row-major, values in [-1,1]; NaN cells grey) as coloured cells, blue
 * (-1) through white (0) to red (+1), each annotated with its value, rows and columns labelled,
 * into the PNG `path`, a square page sized to M and the longest label. 0, or -1 with err. */
int cli_plot_heat(const char *path, const char *title, int M, const char *const *labels, const double *mat, char *err,
                  size_t n);

#endif
