/* bench_serve.c: the knob panel's latency. (1) knobs_model_decode of one 64x64 image on the
 * server side (model threads 1), (2) a loopback round trip POST /api/models/0/decode -> PNG and
 * ?format=raw, one connection per request, against a server in this process. Medians and p90
 * over many repetitions, for the default conv beta-VAE and the mlp (untrained weights: the
 * latency does not depend on them). Usage: bench_serve [REPS]; prints a JSON line per model. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "knobs.h"
#include "knobs.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[(int)(p * (n - 1))];
}

/* One POST with Connection: close; returns the body length, -1 on failure. */
static long roundtrip(int port, const char *path, const char *body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) return close(fd), -1;
  char h[512], buf[65536];
  int n = snprintf(h, sizeof h, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s", path,
                   strlen(body), body);
  if (send(fd, h, (size_t)n, MSG_NOSIGNAL) != n) return close(fd), -1;
  long total = 0;
  ssize_t k;
  int ok = 0;
  while ((k = recv(fd, buf, sizeof buf, 0)) > 0) {
    if (!total && k > 12) ok = !strncmp(buf + 9, "200", 3);
    total += k;
  }
  close(fd);
  return ok ? total : -1;
}

static int bench(const char *arch, int reps) {
  char dir[] = "/tmp/knobs-bench-serve-XXXXXX", path[256];
  if (!mkdtemp(dir)) return 1;
  knobs_config *c;
  knobs_data *d;
  knobs_model *m;
  if (knobs_config_create("betavae", &c) || knobs_config_set(c, "data", "dsprites") || knobs_config_set(c, "arch", arch) ||
      knobs_config_set(c, "threads", "1") || knobs_data_open("dsprites", NULL, &d) || knobs_config_from_data(c, d) ||
      knobs_model_create(c, &m)) {
    fprintf(stderr, "bench_serve: %s\n", knobs_last_error());
    return 1;
  }
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  knobs_model_save(m, path);
  int Z = knobs_model_code_dim(m);
  float *z = calloc((size_t)Z, sizeof(float)), x[4096];
  double *t = malloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < 20; i++) knobs_model_decode(m, z, 1, x);
  for (int i = 0; i < reps; i++) {
    z[i % Z] = (float)(i % 7) * 0.3f;
    double t0 = now();
    knobs_model_decode(m, z, 1, x);
    t[i] = now() - t0;
  }
  double dec_med = pct(t, reps, 0.5), dec_p90 = pct(t, reps, 0.9);

  knobs_serve_opts o;
  knobs_serve_opts_default(&o);
  o.runs[0] = dir, o.n_runs = 1, o.port = 0, o.n_kl = 64, o.n_mi = 250;
  knobs_server *s;
  if (knobs_serve_start(&o, &s)) {
    fprintf(stderr, "bench_serve: %s\n", knobs_last_error());
    return 1;
  }
  int port = knobs_serve_port(s);
  char body[1024];
  int bn = snprintf(body, sizeof body, "{\"code\":[");
  for (int i = 0; i < Z; i++) bn += snprintf(body + bn, sizeof body - (size_t)bn, "%s%.3f", i ? "," : "", 0.1 * i);
  snprintf(body + bn, sizeof body - (size_t)bn, "]}");
  double med[2], p90[2];
  const char *paths[2] = {"/api/models/0/decode", "/api/models/0/decode?format=raw"};
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < 20; i++) roundtrip(port, paths[k], body);
    for (int i = 0; i < reps; i++) {
      double t0 = now();
      if (roundtrip(port, paths[k], body) < 0) {
        fprintf(stderr, "bench_serve: request failed\n");
        return 1;
      }
      t[i] = now() - t0;
    }
    med[k] = pct(t, reps, 0.5), p90[k] = pct(t, reps, 0.9);
  }
  printf("{\"arch\": \"%s\", \"latents\": %d, \"reps\": %d, \"decode_ms_median\": %.3f, \"decode_ms_p90\": %.3f, "
         "\"roundtrip_png_ms_median\": %.3f, \"roundtrip_png_ms_p90\": %.3f, \"roundtrip_raw_ms_median\": %.3f, "
         "\"roundtrip_raw_ms_p90\": %.3f}\n",
         arch, Z, reps, 1e3 * dec_med, 1e3 * dec_p90, 1e3 * med[0], 1e3 * p90[0], 1e3 * med[1], 1e3 * p90[1]);
  knobs_serve_stop(s);
  knobs_model_free(m);
  knobs_data_free(d);
  knobs_config_free(c);
  free(z), free(t);
  snprintf(path, sizeof path, "rm -rf %s", dir);
  return system(path) != 0;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 500;
  if (reps < 10) reps = 10;
  return bench("conv", reps) || bench("mlp", reps);
}
