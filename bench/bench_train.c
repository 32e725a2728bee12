/* bench_train.c: time knobs' training step (forward, backward, Adam) of the beta-VAE on one
 * architecture and batch size, with a fixed random binary batch (data generation is timed
 * separately by bench_dsprites). Prints one line of JSON:
 *   {"arch", "batch", "threads", "ms_per_step", "images_per_s", "gflops", "peak_rss_mb"}
 * usage: bench_train ARCH BATCH THREADS [STEPS]   (run by bench/run.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "models/model.h"

/* forward multiply-adds of one example; training ~3x (forward, data and weight gradients) */
static double macs_per_example(const knobs_model *m) {
  double s = 0;
  for (int k = 0; k < m->nstacks; k++) {
    const kn_stack *st = m->stacks[k];
    for (int l = 0; l < st->n; l++) {
      const kn_layer *L = &st->L[l];
      if (L->kind == KN_LINEAR) s += (double)L->in_c * L->out_c;
      if (L->kind == KN_CONV) s += (double)L->out_c * L->in_c * L->kh * L->kw * L->out_h * L->out_w;
      if (L->kind == KN_CONVT) s += (double)L->out_c * L->in_c * L->kh * L->kw * L->in_h * L->in_w;
    }
  }
  return s;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_train ARCH BATCH THREADS [STEPS]\n");
    return 1;
  }
  knobs_config c;
  kn_config_default(&c, "betavae");
  snprintf(c.arch, sizeof c.arch, "%s", argv[1]);
  strcpy(c.likelihood, "bernoulli");
  c.batch = atoi(argv[2]);
  c.threads = atoi(argv[3]);
  int steps = argc > 4 ? atoi(argv[4]) : 30;
  c.C = 1, c.H = 64, c.W = 64;
  knobs_model *m;
  if (knobs_model_create(&c, &m)) {
    fprintf(stderr, "bench_train: %s\n", knobs_last_error());
    return 2;
  }
  size_t D = 4096 * (size_t)c.batch;
  float *x = malloc(sizeof(float) * D), *eps = malloc(sizeof(float) * (size_t)c.batch * c.z_dim);
  kn_rng r;
  kn_rng_seed(&r, 1, 1);
  for (size_t i = 0; i < D; i++) x[i] = kn_rng_uniform(&r) < 0.1 ? 1.0f : 0.0f;
  kn_rng_normal_fill(&r, eps, (size_t)c.batch * c.z_dim);
  m->test_x = x, m->test_nx = 1, m->test_eps = eps, m->test_neps = 1;
  for (int i = 0; i < 3; i++) knobs_model_train_step(m, NULL, NULL); /* warm up */
  double best = 1e30, total = 0;
  for (int i = 0; i < steps; i++) {
    double t0 = kn_now();
    knobs_model_train_step(m, NULL, NULL);
    double dt = kn_now() - t0;
    total += dt;
    if (dt < best) best = dt;
  }
  double med = total / steps; /* mean; best is printed too */
  if (getenv("KNOBS_PROFILE")) { /* per-layer breakdown to stderr */
    kn_stack_profile(1);
    for (int i = 0; i < steps; i++) knobs_model_train_step(m, NULL, NULL);
    kn_stack_profile(0);
    static const char *kinds[] = {"linear", "conv", "convT", "relu", "lrelu", "tanh", "sigmoid", "bn", "flatten", "unflatten"};
    double sum = 0;
    for (int k = 0; k < m->nstacks; k++)
      for (int l = 0; l < m->stacks[k]->n; l++) {
        const kn_layer *L = &m->stacks[k]->L[l];
        sum += L->t_fwd + L->t_bwd;
        fprintf(stderr, "%-8s %2d %-9s %4dx%-3dx%-3d -> %4dx%-3dx%-3d fwd %6.2f ms  bwd %6.2f ms\n", m->stacks[k]->prefix, l,
                kinds[L->kind], L->in_c, L->in_h, L->in_w, L->out_c, L->out_h, L->out_w, L->t_fwd / steps * 1e3, L->t_bwd / steps * 1e3);
      }
    fprintf(stderr, "layers %.2f ms of %.2f ms per step (the rest: loss, Adam, zeroing)\n", sum / steps * 1e3, med * 1e3);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double flops = 3 * 2 * macs_per_example(m) * c.batch;
  printf("{\"impl\": \"knobs\", \"arch\": \"%s\", \"batch\": %d, \"threads\": %d, \"ms_per_step\": %.2f, "
         "\"best_ms\": %.2f, \"images_per_s\": %.1f, \"gflops\": %.1f, \"peak_rss_mb\": %.1f}\n",
         c.arch, c.batch, c.threads, med * 1e3, best * 1e3, c.batch / med, flops / med * 1e-9,
         ru.ru_maxrss / 1024.0);
  free(x), free(eps);
  knobs_model_free(m);
  return 0;
}
