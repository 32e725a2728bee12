/* bench_lstm.c: knobs' recurrent layers (src/nn/lstm.c) at DSVAE-like sizes: the time of a
 * forward alone and of a training step's share (forward, then backward of
 * L = sum(wy * y) + sum(whn * hn) [+ sum(wcn * cn)] into the input and every parameter, the
 * gradients zeroed first), no initial state, as bench/torch_lstm.py does with torch.nn.LSTM /
 * torch.nn.GRU. Medians of repeated runs over at least a second each. Prints one line of JSON:
 *   {"impl", "cell", "dirs", "threads", "T", "B", "I", "H", "fwd_ms", "step_ms", "fwd_best_ms",
 *    "step_best_ms", "gflops"}
 * (medians and minima; gflops: the step's multiply-adds x 2 / its median time).
 * usage: bench_lstm lstm|gru DIRS THREADS [T B I H]   (run by bench/run.sh) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { MAXREP = 4000 };
static double times[MAXREP];

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_lstm lstm|gru DIRS THREADS [T B I H]\n");
    return 1;
  }
  int gru = !strcmp(argv[1], "gru"), D = atoi(argv[2]), nt = atoi(argv[3]);
  int T = argc > 4 ? atoi(argv[4]) : 8, B = argc > 5 ? atoi(argv[5]) : 64;
  int I = argc > 6 ? atoi(argv[6]) : 256, H = argc > 7 ? atoi(argv[7]) : 256;
  kn_rnn r;
  kn_net net = {0};
  if ((!gru && strcmp(argv[1], "lstm")) || nt < 1 || kn_rnn_setup(&r, gru ? KN_RNN_GRU : KN_RNN_LSTM, I, H, D) ||
      !kn_rnn_workspace_size(&r, T, B)) {
    fprintf(stderr, "bench_lstm: bad arguments%s%s\n", knobs_last_error()[0] ? ": " : "", knobs_last_error());
    return 1;
  }
  net.pool = kn_pool_create(nt);
  kn_rnn_declare(&r, &net, "rnn", 0);
  if (!net.pool || kn_net_alloc(&net, NULL, NULL, 0, 1)) {
    fprintf(stderr, "bench_lstm: %s\n", knobs_last_error());
    return 2;
  }
  kn_rnn_bind(&r, &net);
  kn_rng rng;
  kn_rng_seed(&rng, 1, KN_STREAM_INIT);
  kn_rnn_init(&r, &net, &rng);
  size_t nx = (size_t)T * B * I, ny = (size_t)T * B * D * H, ns = (size_t)D * B * H;
  float *x = malloc(sizeof(float) * nx), *dx = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
  float *wy = malloc(sizeof(float) * ny), *hn = malloc(sizeof(float) * ns), *cn = malloc(sizeof(float) * ns);
  float *whn = malloc(sizeof(float) * ns), *wcn = malloc(sizeof(float) * ns);
  float *ws = malloc(sizeof(float) * kn_rnn_workspace_size(&r, T, B));
  if (!x || !dx || !y || !wy || !hn || !cn || !whn || !wcn || !ws) return 2;
  kn_rng_uniform_fill(&rng, x, nx, -1, 1), kn_rng_uniform_fill(&rng, wy, ny, -1, 1);
  kn_rng_uniform_fill(&rng, whn, ns, -1, 1), kn_rng_uniform_fill(&rng, wcn, ns, -1, 1);
  kn_rnn_seq s = {T, B, x, NULL, NULL, y, hn, gru ? NULL : cn, ws};
  kn_rnn_grad g = {wy, whn, gru ? NULL : wcn, dx, NULL, NULL};
  double med[2], best[2];
  for (int phase = 0; phase < 2; phase++) {
    int n = 0;
    double t_end = kn_now() + 1.0;
    for (int w = 0; w < 3; w++) kn_rnn_forward(net.pool, &r, &s);
    while (n < MAXREP && (n < 20 || kn_now() < t_end)) {
      double t0 = kn_now();
      if (phase) memset(net.g, 0, sizeof(float) * net.n_p), memset(dx, 0, sizeof(float) * nx);
      kn_rnn_forward(net.pool, &r, &s);
      if (phase) kn_rnn_backward(net.pool, &r, &s, &g);
      times[n++] = kn_now() - t0;
    }
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    med[phase] = times[n / 2], best[phase] = times[0];
  }
  double G = gru ? 3 : 4, macs = 3.0 * D * T * B * G * H * (I + H); /* fwd, dgrad, wgrad */
  printf("{\"impl\": \"knobs\", \"cell\": \"%s\", \"dirs\": %d, \"threads\": %d, \"T\": %d, \"B\": %d, "
         "\"I\": %d, \"H\": %d, \"fwd_ms\": %.3f, \"step_ms\": %.3f, \"fwd_best_ms\": %.3f, "
         "\"step_best_ms\": %.3f, \"gflops\": %.1f}\n",
         argv[1], D, nt, T, B, I, H, med[0] * 1e3, med[1] * 1e3, best[0] * 1e3, best[1] * 1e3,
         2 * macs / med[1] * 1e-9);
  free(x), free(dx), free(y), free(wy), free(hn), free(cn), free(whn), free(wcn), free(ws);
  kn_net_free(&net);
  kn_pool_free(net.pool);
  return 0;
}
