/* cmd_serve.c: `knobs serve RUN [RUN2]`: the knob panel in a browser (src/serve, docs/api.md).
 * Prints the URL, serves until Ctrl-C (SIGINT) or SIGTERM, then stops cleanly. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "knobs.h"

int cmd_serve(int argc, char **argv) {
  const char *cmd = "serve", *host = "127.0.0.1";
  knobs_serve_opts so;
  knobs_serve_opts_default(&so);
  int port = so.port, threads = so.threads, max_conn = so.max_connections, mthreads = so.model_threads;
  cli_opt o[] = {
      {"--port", OPT_INT, &port, 0, 65535, "N", "port to listen on (0: any free port; default 8731)", 0},
      {"--host", OPT_STR, &host, 0, 0, "H", "address to bind (default 127.0.0.1; 0.0.0.0 exposes the panel)", 0},
      {"--threads", OPT_INT, &threads, 1, 64, "N", "request threads (default 4)", 0},
      {"--model-threads", OPT_INT, &mthreads, 1, 64, "N", "threads of each model's kernels (default 1)", 0},
      {"--max-connections", OPT_INT, &max_conn, 1, 4096, "N", "concurrent connections (default 64)", 0},
  };
  const char *pos[3];
  int npos = 0;
  int r = cli_parse(cmd, "RUN [RUN2] [--port N] [--host H]", argc, argv, o, (int)(sizeof o / sizeof o[0]), pos, 3, &npos);
  if (r) return r < 0 ? 0 : r;
  if (npos < 1) return cli_usage_error(cmd, "a run folder (or checkpoint) to serve is required");
  if (npos > KNOBS_SERVE_MAX_MODELS) return cli_usage_error(cmd, "at most %d runs side by side", KNOBS_SERVE_MAX_MODELS);
  so.n_runs = npos;
  for (int i = 0; i < npos; i++) so.runs[i] = pos[i];
  so.host = host, so.port = port, so.threads = threads, so.max_connections = max_conn, so.model_threads = mthreads;
  if (strcmp(host, "127.0.0.1") && strncmp(host, "127.", 4))
    fprintf(stderr, "knobs: serve: warning: listening on %s: the panel has no authentication; anyone who can reach this "
                    "address can use it\n", host);
  /* Block the stop signals in every thread (the server's threads inherit the mask) and wait for
   * them here, so Ctrl-C always reaches this thread. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  knobs_server *s;
  if (knobs_serve_start(&so, &s)) return cli_lib_fail(cmd, "cannot start the panel");
  printf("knobs panel on http://%s:%d/  (Ctrl-C stops)\n", strcmp(host, "0.0.0.0") ? host : "127.0.0.1", knobs_serve_port(s));
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  knobs_serve_stop(s);
  printf("knobs panel stopped\n");
  return 0;
}
