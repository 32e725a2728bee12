/* bench_train.c: time knobs' training step on a fixed random binary batch (data generation is
 * timed separately by bench_dsprites): the beta-VAE (forward, backward, Adam) on one
 * architecture, or InfoGAN's whole step (src/models/infogan.c at its defaults on 64x64: the
 * discriminator's and Q head's update, then the generator's through the updated
 * discriminator, each with its Adam; the codes drawn from the rng each step, as `knobs train`
 * does). Prints one line of JSON:
 *   {"impl", "model", "arch", "batch", "threads", "params", "ms_per_step", "best_ms",
 *    "images_per_s", "gflops", "peak_rss_mb"}
 * With KNOBS_PROFILE set it then runs the steps again with the per-layer profiler on
 * (kn_stack_profile) and prints a Markdown table to stderr: per layer forward and backward
 * ms, GFLOP, GFLOP/s and share of the step (bench/README.md, "Per-layer profile").
 * usage: bench_train ARCH BATCH THREADS [STEPS]   ARCH: conv, mlp (beta-VAE) or infogan (the
 * conv networks)   (run by bench/run.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "models/model.h"

/* forward multiply-adds of layer L for one example */
static double layer_macs(const kn_layer *L) {
  if (L->kind == KN_LINEAR) return (double)L->in_c * L->out_c;
  if (L->kind == KN_CONV) return (double)L->out_c * L->in_c * L->kh * L->kw * L->out_h * L->out_w;
  if (L->kind == KN_CONVT) return (double)L->out_c * L->in_c * L->kh * L->kw * L->in_h * L->in_w;
  return 0;
}

static double stack_macs(const kn_stack *st) {
  double s = 0;
  for (int l = 0; l < st->n; l++) s += layer_macs(&st->L[l]);
  return s;
}

/* Multiply-adds of one training step per example, as multiples of each stack's forward. The
 * beta-VAE: a forward and a backward (data and weight gradients) of every stack, 3x. InfoGAN
 * (its stacks generator, trunk, D head, Q head; infogan.c's ig_step): the generator 1 forward
 * + 1 backward (3x); trunk and D head 3 forwards (real, fake, generator pass), 2 backwards
 * into the parameters and 1 into the input only (8x); Q 2 forwards, 1 + 1 backwards (5x). */
static double step_macs(const knobs_model *m, int infogan) {
  static const double ig_mult[4] = {3, 8, 8, 5};
  double s = 0;
  for (int k = 0; k < m->nstacks; k++) s += (infogan ? ig_mult[k] : 3) * stack_macs(m->stacks[k]);
  return s;
}

/* The per-layer table (KNOBS_PROFILE): `steps` more steps with the profiler on. GFLOP counts
 * the forward (2 MACs per example) and the backward (weight gradient, plus the input gradient
 * unless the layer is the first of a stack that needs none); with InfoGAN, whose stacks run
 * several times per step, only the times are given. */
static void profile(knobs_model *m, int steps, int infogan) {
  static const char *kinds[] = {"linear", "conv", "convT", "relu", "lrelu", "tanh", "sigmoid", "bn", "flatten", "unflatten"};
  kn_stack_profile(1);
  double t0 = kn_now();
  for (int i = 0; i < steps; i++) knobs_model_train_step(m, NULL, NULL);
  double step = (kn_now() - t0) / steps, sum = 0, gsum = 0;
  kn_stack_profile(0);
  fprintf(stderr, "| layer | in -> out | fwd ms | bwd ms | GFLOP | GFLOP/s | share |\n|---|---|---|---|---|---|---|\n");
  for (int k = 0; k < m->nstacks; k++)
    for (int l = 0; l < m->stacks[k]->n; l++) {
      const kn_stack *st = m->stacks[k];
      const kn_layer *L = &st->L[l];
      double f = L->t_fwd / steps, b = L->t_bwd / steps, mac = layer_macs(L) * m->B;
      char name[80], gf[32] = "-", gs[32] = "-";
      if (L->w >= 0 && (L->kind == KN_LINEAR || L->kind == KN_CONV || L->kind == KN_CONVT)) {
        snprintf(name, sizeof name, "%s", m->net.P[L->w].name);
        char *dot = strrchr(name, '.');
        if (dot) *dot = 0; /* "encoder.conv1.weight" -> "encoder.conv1" */
        for (int h = 1; h < L->heads; h++) { /* fused heads: "encoder.fc_mu+fc_logvar" */
          const char *o = m->net.P[L->w + h].name, *e = strrchr(o, '.'), *sdot = e;
          while (sdot > o && sdot[-1] != '.') sdot--;
          size_t len = strlen(name);
          snprintf(name + len, sizeof name - len, "+%.*s", (int)(e - sdot), sdot);
        }
      } else {
        snprintf(name, sizeof name, "%s %s", st->prefix, kinds[L->kind]);
      }
      if (mac > 0 && !infogan) {
        double g = 2 * mac * (1 + 1 + (l > 0 || st->want_dx)) * 1e-9;
        gsum += g;
        snprintf(gf, sizeof gf, "%.3f", g);
        snprintf(gs, sizeof gs, "%.1f", g / (f + b));
      }
      sum += f + b;
      fprintf(stderr, "| %s | %dx%dx%d -> %dx%dx%d | %.3f | %.3f | %s | %s | %.1f %% |\n", name, L->in_c, L->in_h, L->in_w,
              L->out_c, L->out_h, L->out_w, f * 1e3, b * 1e3, gf, gs, 100 * (f + b) / step);
    }
  fprintf(stderr, "| rest: loss, Adam, zeroing, copies | | %.3f | | | | %.1f %% |\n", (step - sum) * 1e3, 100 * (step - sum) / step);
  if (!infogan)
    fprintf(stderr, "| **step** (%d examples) | | %.3f | | %.3f | %.1f | 100 %% |\n", m->B, step * 1e3, gsum, gsum / step);
  else
    fprintf(stderr, "| **step** (%d examples) | | %.3f | | | | 100 %% |\n", m->B, step * 1e3);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_train ARCH BATCH THREADS [STEPS]   (ARCH: conv, mlp or infogan)\n");
    return 1;
  }
  int infogan = !strcmp(argv[1], "infogan");
  knobs_config c;
  kn_config_default(&c, infogan ? "infogan" : "betavae");
  snprintf(c.arch, sizeof c.arch, "%s", infogan ? "conv" : argv[1]);
  strcpy(c.likelihood, "bernoulli");
  c.batch = atoi(argv[2]);
  c.threads = atoi(argv[3]);
  int steps = argc > 4 ? atoi(argv[4]) : 30;
  c.C = 1, c.H = 64, c.W = 64;
  knobs_model *m;
  if (steps < 1 || knobs_model_create(&c, &m)) {
    fprintf(stderr, "bench_train: %s\n", steps < 1 ? "STEPS must be at least 1" : knobs_last_error());
    return 2;
  }
  size_t D = 4096 * (size_t)c.batch;
  float *x = malloc(sizeof(float) * D), *eps = malloc(sizeof(float) * (size_t)c.batch * c.z_dim);
  kn_rng r;
  kn_rng_seed(&r, 1, 1);
  for (size_t i = 0; i < D; i++) x[i] = kn_rng_uniform(&r) < 0.1 ? 1.0f : 0.0f;
  kn_rng_normal_fill(&r, eps, (size_t)c.batch * c.z_dim);
  m->test_x = x, m->test_nx = 1;
  if (!infogan) m->test_eps = eps, m->test_neps = 1; /* InfoGAN draws its codes, as in training */
  for (int i = 0; i < 3; i++) knobs_model_train_step(m, NULL, NULL); /* warm up */
  double best = 1e30, total = 0;
  for (int i = 0; i < steps; i++) {
    double t0 = kn_now();
    knobs_model_train_step(m, NULL, NULL);
    double dt = kn_now() - t0;
    total += dt;
    if (dt < best) best = dt;
  }
  double mean = total / steps;
  if (getenv("KNOBS_PROFILE")) profile(m, steps, infogan);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double flops = 2 * step_macs(m, infogan) * c.batch;
  printf("{\"impl\": \"knobs\", \"model\": \"%s\", \"arch\": \"%s\", \"batch\": %d, \"threads\": %d, \"params\": %zu, "
         "\"ms_per_step\": %.2f, \"best_ms\": %.2f, \"images_per_s\": %.1f, \"gflops\": %.1f, \"peak_rss_mb\": %.1f}\n",
         c.model, c.arch, c.batch, c.threads, m->net.n_p, mean * 1e3, best * 1e3, c.batch / mean, flops / mean * 1e-9,
         ru.ru_maxrss / 1024.0);
  free(x), free(eps);
  knobs_model_free(m);
  return 0;
}
