/* toy_t.h: the toy ground-truth dataset of the model tests: a bright square (side HW/5, at
 * least 2) on a dark HW x HW field, its position (fx, fy) on a cells x cells grid the two
 * factors; so the model tests depend on no real dataset. Include after t.h. */
#ifndef KNOBS_TOY_T_H
#define KNOBS_TOY_T_H
#include <math.h>
#include <stdio.h>

#include "data/data.h"

/* Set a setting by name when c's model has it (the tests' configs name settings of several
 * families at once); a value the config refuses fails the test binary at once. */
static inline void mt_set(knobs_config *c, const char *name, double v) {
  if (isnan(knobs_config_number(c, name)) && !knobs_config_string(c, name)) return;
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", v);
  if (knobs_config_set(c, name, buf)) {
    fprintf(stderr, "mt_set %s = %s: %s\n", name, buf, knobs_last_error());
    exit(2);
  }
}
static inline void mt_set_str(knobs_config *c, const char *name, const char *v) {
  if (!knobs_config_string(c, name)) return;
  if (knobs_config_set(c, name, v)) {
    fprintf(stderr, "mt_set %s = %s: %s\n", name, v, knobs_last_error());
    exit(2);
  }
}

typedef struct { int side, cells; } mt_toy;

static inline knobs_status mt_toy_render(knobs_data *d, const int32_t *f, int n, float *obs) {
  mt_toy *t = d->impl;
  int H = d->info.H, W = d->info.W;
  for (int i = 0; i < n; i++) {
    float *o = obs + (size_t)i * H * W;
    memset(o, 0, sizeof(float) * (size_t)H * W);
    int x0 = f[2 * i] * (W - t->side) / (t->cells - 1), y0 = f[2 * i + 1] * (H - t->side) / (t->cells - 1);
    for (int y = 0; y < t->side; y++)
      for (int x = 0; x < t->side; x++) o[(y0 + y) * W + x0 + x] = 1.0f;
  }
  return KNOBS_OK;
}

static inline void mt_toy_free(void *p) { free(p); }
static const kn_data_ops mt_toy_ops = {.render = mt_toy_render, .free_impl = mt_toy_free};

static inline knobs_data *mt_toy_open(int HW, int cells) {
  knobs_data *d = calloc(1, sizeof *d);
  mt_toy *t = malloc(sizeof *t);
  t->side = HW / 5 > 1 ? HW / 5 : 2;
  t->cells = cells;
  snprintf(d->info.name, sizeof d->info.name, "toy%d", HW);
  d->info.C = 1, d->info.H = HW, d->info.W = HW, d->info.is_image = 1, d->info.binary = 1, d->info.has_render = 1;
  const char *names[2] = {"x", "y"};
  int sizes[2] = {cells, cells};
  kn_data_set_factors(&d->info, 2, names, sizes);
  d->info.n = (int64_t)cells * cells;
  d->grid = 1;
  d->ops = &mt_toy_ops;
  d->impl = t;
  return d;
}

#endif
