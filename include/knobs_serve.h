/* knobs_serve.h: the knob panel server (src/serve), the public API of `knobs serve`.
 *
 * A server holds one or two trained models (run folders or checkpoint files), answers the JSON
 * API of docs/api.md and serves the page web/panel.html, embedded in the library at build time.
 * It runs on libmicrohttpd's own threads; the caller only starts and stops it. It binds to
 * 127.0.0.1 unless told otherwise and has no authentication. */
#ifndef KNOBS_SERVE_H
#define KNOBS_SERVE_H
#include "knobs.h"

#define KNOBS_SERVE_MAX_MODELS 2
#define KNOBS_SERVE_MAX_BODY (8u << 20) /* request bodies (uploads) are capped at 8 MB */

typedef struct knobs_server knobs_server;

typedef struct {
  const char *runs[KNOBS_SERVE_MAX_MODELS]; /* run folders or .safetensors files */
  int n_runs;          /* 1 or 2 */
  const char *host;    /* numeric IPv4 address to bind; NULL: "127.0.0.1" */
  int port;            /* 0: an ephemeral port (read it with knobs_serve_port) */
  int threads;         /* request threads (>= 1); 0: 4 */
  int model_threads;   /* threads of each model's kernels; 0: 1 (lowest single-decode latency) */
  int max_connections; /* concurrent connections accepted; 0: 64 */
  int n_kl;            /* dataset samples for the per-latent KL and code scales; 0: 512 */
  int n_mi;            /* dataset samples for the latent/factor mutual information; 0: 2000 */
} knobs_serve_opts;
void knobs_serve_opts_default(knobs_serve_opts *o);

/* Load the models (and each model's dataset), compute or read the cached per-latent statistics
 * (knobs.json in each run folder, see docs/api.md), and start listening. On failure nothing is
 * left running and the error detail names the run or the address. */
knobs_status knobs_serve_start(const knobs_serve_opts *o, knobs_server **out);
/* The port the server listens on (the ephemeral one when opts.port was 0). */
int knobs_serve_port(const knobs_server *s);
/* Stop listening, finish the requests in flight, free everything. NULL is a no-op. */
void knobs_serve_stop(knobs_server *s);

#endif
