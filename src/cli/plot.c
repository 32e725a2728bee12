/* plot.c: the PNG plots of `knobs report`, drawn by PLplot through its pngcairo device (Debian's
 * libplplot-dev and plplot-driver-cairo): axes, text, fills and lines are PLplot's; this file
 * only lays them out. Built without PLplot (no KNOBS_HAVE_PLPLOT), it draws nothing and says so.
 * It does not decide what is plotted: cmd_report.c hands it numbers and labels.
 *
 * PLplot keeps one global stream: each plot is plinit ... plend on the calling thread, one at a
 * time. The output file is the caller's temporary (cli_out_add), created and checked writable
 * here first, because PLplot asks on stdin for another name when it cannot open the one given. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot.h"

#ifndef KNOBS_HAVE_PLPLOT

int cli_plot_available(void) { return 0; }
const char *cli_plot_info(void) { return "none: built without PLplot (install libplplot-dev and plplot-driver-cairo, rebuild)"; }
int cli_plot_box(const char *path, int w, int h, const cli_boxplot *b, char *err, size_t n) {
  snprintf(err, n, "%s: not drawn: %s", path, cli_plot_info());
  return -1;
}
int cli_plot_heat(const char *path, const char *title, int M, const char *const *labels, const double *mat, char *err,
                  size_t n) {
  snprintf(err, n, "%s: not drawn: %s", path, cli_plot_info());
  return -1;
}

#else
#include <plplot.h>

/* the width of a character of pngcairo's default font at plschr scale 1, in pixels (measured,
 * with room for wide letters; PLplot sizes text in millimetres, so it does not change with the
 * page) */
#define CHAR_PX 12.0

static int has_pngcairo(void) {
  static int known = -1;
  if (known >= 0) return known;
  const char *menu[128], *devs[128];
  const char **pm = menu, **pd = devs;
  int nd = 128;
  plgDevs(&pm, &pd, &nd);
  known = 0;
  for (int i = 0; i < nd; i++)
    if (pd[i] && !strcmp(pd[i], "pngcairo")) known = 1;
  return known;
}

int cli_plot_available(void) { return has_pngcairo(); }

const char *cli_plot_info(void) {
  static char info[160];
  char ver[80] = "";
  plgver(ver);
  if (has_pngcairo()) snprintf(info, sizeof info, "PLplot %s (pngcairo)", ver);
  else snprintf(info, sizeof info, "none: PLplot %s has no pngcairo device (install plplot-driver-cairo)", ver);
  return info;
}

/* Start a PNG of w x h pixels in `path`: white background, colour 1 black for frames and text,
 * 2 box fill, 3 dots, 4 medians, 15 grey. 0, or -1 with err. */
static int begin(const char *path, int w, int h, char *err, size_t n) {
  if (!has_pngcairo()) {
    snprintf(err, n, "%s: not drawn: %s", path, cli_plot_info());
    return -1;
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    snprintf(err, n, "cannot create %s", path);
    return -1;
  }
  fclose(f);
  plsdev("pngcairo");
  plsfnam(path);
  plspage(0, 0, w, h, 0, 0);
  plscolbg(255, 255, 255);
  plscol0(1, 0, 0, 0);
  plscol0(2, 198, 219, 239);
  plscol0(3, 8, 81, 156);
  plscol0(4, 217, 72, 1);
  plscol0(15, 190, 190, 190);
  plinit();
  pladv(0);
  plcol0(1);
  return 0;
}

/* NumPy's percentile (linear) of sorted v[0..k) at q in [0,1] */
static double quantile(const double *v, int k, double q) {
  double p = q * (k - 1);
  int lo = (int)floor(p);
  if (lo >= k - 1) return v[k - 1];
  return v[lo] + (p - lo) * (v[lo + 1] - v[lo]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* one box at x of the sorted values v[0..k) */
static void draw_box(double x, const double *v, int k) {
  double q1 = quantile(v, k, 0.25), med = quantile(v, k, 0.5), q3 = quantile(v, k, 0.75), iqr = q3 - q1;
  double lo = q1, hi = q3;
  for (int i = 0; i < k; i++) {
    if (v[i] >= q1 - 1.5 * iqr && v[i] < lo) lo = v[i];
    if (v[i] <= q3 + 1.5 * iqr && v[i] > hi) hi = v[i];
  }
  const double hw = 0.3, cap = 0.12;
  PLFLT bx[5] = {x - hw, x + hw, x + hw, x - hw, x - hw}, by[5] = {q1, q1, q3, q3, q1};
  plcol0(2);
  plfill(4, bx, by);
  plcol0(1);
  plline(5, bx, by);
  PLFLT wx[2] = {x, x}, wy[2] = {q3, hi}, cx[2] = {x - cap, x + cap}, cy[2] = {hi, hi};
  plline(2, wx, wy);
  plline(2, cx, cy);
  wy[0] = q1, wy[1] = lo, cy[0] = cy[1] = lo;
  plline(2, wx, wy);
  plline(2, cx, cy);
  PLFLT mx[2] = {x - hw, x + hw}, my[2] = {med, med};
  plcol0(4);
  plwidth(3);
  plline(2, mx, my);
  plwidth(1);
  plcol0(3); /* the values, spread a little sideways in their order so equal ones stay visible */
  double step = k > 1 ? fmin(0.06, 0.4 / (k - 1)) : 0;
  for (int i = 0; i < k; i++) {
    PLFLT px = x + (i - (k - 1) / 2.0) * step, py = v[i];
    plpoin(1, &px, &py, 17);
  }
  plcol0(1);
}

int cli_plot_box(const char *path, int w, int h, const cli_boxplot *b, char *err, size_t n) {
  double ymin = INFINITY, ymax = -INFINITY;
  size_t maxlen = 1;
  for (int g = 0; g < b->ngroups; g++) {
    for (int i = 0; i < b->count[g]; i++) ymin = fmin(ymin, b->values[g][i]), ymax = fmax(ymax, b->values[g][i]);
    if (strlen(b->group[g]) > maxlen) maxlen = strlen(b->group[g]);
  }
  if (!isfinite(ymin)) ymin = 0, ymax = 1; /* no values: an empty frame */
  double pad = ymax > ymin ? 0.08 * (ymax - ymin) : fmax(0.05 * fabs(ymax), 0.01);
  ymin -= pad, ymax += pad;
  /* labels side by side when they fit under their boxes, else written downwards on a page
   * made taller by their length */
  double label_px = CHAR_PX * 0.9 * (double)maxlen;
  int vertical = label_px > 0.9 * (w * 0.83) / b->ngroups;
  if (vertical) h += (int)label_px;
  double bottom = vertical ? (label_px + 0.07 * h) / h : 0.12;
  if (begin(path, w, h, err, n)) return -1;
  plschr(0, 0.9);
  plvpor(0.13, 0.96, bottom, 0.90);
  plwind(0.5, b->ngroups + 0.5, ymin, ymax);
  plbox("bct", 1.0, 1, "bcnstv", 0.0, 0);
  plmtex("t", 1.5, 0.5, 0.5, b->title);
  plmtex("l", 5.0, 0.5, 0.5, b->ylabel);
  for (int g = 0; g < b->ngroups; g++) {
    double pos = (g + 0.5) / b->ngroups;
    if (vertical) plmtex("bv", 0.8, pos, 1.0, b->group[g]);
    else plmtex("b", 1.6, pos, 0.5, b->group[g]);
    if (b->count[g] <= 0) continue;
    double *v = malloc(sizeof *v * (size_t)b->count[g]);
    if (!v) {
      plend();
      snprintf(err, n, "%s: out of memory", path);
      return -1;
    }
    memcpy(v, b->values[g], sizeof *v * (size_t)b->count[g]);
    qsort(v, (size_t)b->count[g], sizeof *v, cmp_double);
    draw_box(g + 1, v, b->count[g]);
    free(v);
  }
  plend();
  return 0;
}

int cli_plot_heat(const char *path, const char *title, int M, const char *const *labels, const double *mat, char *err,
                  size_t n) {
  size_t maxlen = 1;
  for (int i = 0; i < M; i++)
    if (strlen(labels[i]) > maxlen) maxlen = strlen(labels[i]);
  double chr = M <= 6 ? 0.9 : M <= 12 ? 0.7 : 0.5;
  /* a square page: the labels' margin (left and bottom), the cells, a border */
  double label_px = CHAR_PX * chr * (double)maxlen + 40, cells = fmax(420, 60.0 * chr * M), border = 50;
  int w = (int)(label_px + cells + border);
  double margin = label_px / w, top = 1 - border / w;
  if (begin(path, w, w, err, n)) return -1;
  /* blue (-1), white (0), red (+1) */
  PLFLT pos[3] = {0, 0.5, 1}, r[3] = {0.13, 1, 0.70}, g[3] = {0.40, 1, 0.09}, bl[3] = {0.67, 1, 0.17};
  plscmap1l(1, 3, pos, r, g, bl, NULL);
  plschr(0, chr);
  plvpor(margin, top, margin, top);
  plwind(0, M, 0, M);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < M; j++) {
      double v = mat[i * M + j];
      double y0 = M - 1 - i;
      PLFLT cx[4] = {j, j + 1, j + 1, j}, cy[4] = {y0, y0, y0 + 1, y0 + 1};
      if (isnan(v)) plcol0(15);
      else plcol1((fmax(-1, fmin(1, v)) + 1) / 2);
      plfill(4, cx, cy);
      char t[16];
      if (isnan(v)) snprintf(t, sizeof t, "n/a");
      else snprintf(t, sizeof t, "%.2f", v);
      plcol0(isnan(v) || fabs(v) < 0.6 ? 1 : 0); /* white text on the dark cells */
      plptex(j + 0.5, y0 + 0.5, 1, 0, 0.5, t);
    }
  plcol0(1);
  plbox("bc", 0, 0, "bc", 0, 0);
  for (int i = 0; i < M; i++) {
    double p = (i + 0.5) / M;
    plmtex("bv", 0.8, p, 1.0, labels[i]);
    plmtex("lv", 0.8, 1 - p, 1.0, labels[i]);
  }
  plschr(0, 0.9);
  plvpor(0, 1, 0, 1); /* the title centred on the page, not on the cells */
  plmtex("t", -1.8, 0.5, 0.5, title);
  plend();
  return 0;
}
#endif
