/* train.c: knobs_train, the training loop behind `knobs train` and embedders alike.
 * It owns the run folder: config.json (the resolved config), log.csv (one row per log
 * interval: step, seconds, images/s and the loss terms of the step), model.safetensors (the
 * latest checkpoint, replaced atomically on schedule, on a stop request and at the end) and the
 * pictures of the result (reconstructions, samples, a traversal) for image data.
 * Resuming is exact because every step's randomness derives from (seed, step). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "models/model.h"

static knobs_status save(knobs_model *m, const char *dir) {
  char path[1100];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  return knobs_model_save(m, path);
}

static knobs_status pictures(knobs_model *m, knobs_data *d, const char *dir) {
  const knobs_data_info *in = knobs_data_info_get(d);
  if (!in->is_image || (in->C != 1 && in->C != 3) || !m->has_vae) return KNOBS_OK;
  char path[1100];
  snprintf(path, sizeof path, "%s/reconstructions.png", dir);
  knobs_status s = knobs_reconstruct(m, d, 16, m->cfg.seed, path);
  snprintf(path, sizeof path, "%s/samples.png", dir);
  if (!s) s = knobs_sample(m, 64, m->cfg.seed, path);
  /* traverse from the middle of the factor grid (on dSprites: a large heart in the centre, so
   * moves in x and y show both ways); index 0 for data without a grid */
  int64_t mid = 0;
  if (in->K > 0 && in->has_render) {
    int32_t f[KNOBS_MAX_FACTORS];
    for (int k = 0; k < in->K; k++) f[k] = in->factor_sizes[k] - 1 - (in->factor_sizes[k] - 1) / 2;
    mid = knobs_data_index(d, f);
  }
  snprintf(path, sizeof path, "%s/traversal.png", dir);
  if (!s) s = knobs_traverse(m, d, mid, -2, 2, 11, path, NULL, NULL);
  return s;
}

knobs_status knobs_train(knobs_model *m, knobs_data *d, const knobs_train_opts *o) {
  if (!o || !o->out_dir) return kn_err(KNOBS_ERR_ARG, "train: no run folder given");
  if (o->steps < m->step)
    return kn_err(KNOBS_ERR_ARG, "train: the model has taken %ld steps already, more than the %ld asked",
                  m->step, o->steps);
  knobs_status s = kn_mkdirs(o->out_dir);
  if (s) return s;
  m->cfg.steps = o->steps;
  char path[1100];
  char *cj = knobs_config_to_json(&m->cfg);
  if (!cj) return kn_err(KNOBS_ERR_NOMEM, "train: cannot serialise the config");
  snprintf(path, sizeof path, "%s/config.json", o->out_dir);
  size_t cl = strlen(cj);
  cj[cl] = '\n';
  s = kn_write_file(path, cj, cl + 1);
  cj[cl] = 0;
  free(cj);
  if (s) return s;
  snprintf(path, sizeof path, "%s/log.csv", o->out_dir);
  int fresh = !kn_file_exists(path);
  FILE *log = fopen(path, "a");
  if (!log) return kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  knobs_terms t = {0};
  double t0 = kn_now(), last_t = t0;
  long last_step = m->step;
  int header = !fresh;
  int stopped = 0;
  while (m->step < o->steps) {
    s = knobs_model_train_step(m, d, &t);
    if (s) break;
    long step = m->step;
    int log_now = step % m->cfg.log_every == 0 || step == o->steps;
    if (log_now) {
      double now = kn_now(), ips = (double)(step - last_step) * m->B / (now - last_t + 1e-12);
      if (!header) {
        fprintf(log, "step,seconds,images_per_s");
        for (int i = 0; i < t.n; i++) fprintf(log, ",%s", t.name[i]);
        fputc('\n', log);
        header = 1;
      }
      fprintf(log, "%ld,%.3f,%.1f", step, now - t0, ips);
      for (int i = 0; i < t.n; i++) fprintf(log, ",%.9g", t.value[i]);
      fputc('\n', log);
      fflush(log);
      if (o->progress && o->progress(o->ctx, step, o->steps, ips, &t)) stopped = 1;
      last_t = now;
      last_step = step;
    }
    if (o->stop && *o->stop) stopped = 1;
    if (stopped) break;
    if (m->cfg.ckpt_every > 0 && step % m->cfg.ckpt_every == 0 && step < o->steps) {
      s = save(m, o->out_dir);
      if (s) break;
    }
  }
  int bad = ferror(log);
  if (fclose(log) != 0 || bad) {
    if (!s) s = kn_err(KNOBS_ERR_IO, "%s: write failed", path);
  }
  if (s) return s;
  s = save(m, o->out_dir);
  if (s) return s;
  if (stopped) return kn_err(KNOBS_ERR_INTERRUPTED, "stopped at step %ld of %ld; checkpoint saved in %s",
                             m->step, o->steps, o->out_dir);
  return pictures(m, d, o->out_dir);
}
