/* server.c: the HTTP side of the panel on libmicrohttpd (no HTTP parsing of our own): binding,
 * the thread pool, the connection limit, request bodies (capped at KNOBS_SERVE_MAX_BODY) and
 * replies. The API itself is api.c; the models are slot.c.
 *
 * A body larger than the cap is answered 413 at once when Content-Length says so; a chunked
 * body that grows past it is discarded as it arrives and answered 413 at its end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "core/core.h"
#include "serve/serve.h"

struct knobs_server {
  struct MHD_Daemon *d;
  kn_slot slots[KNOBS_SERVE_MAX_MODELS];
  int n_slots;
  kn_api api;
  int port;
};

typedef struct {
  char *body;
  size_t len, cap;
  int too_big;
} conn_state;

void knobs_serve_opts_default(knobs_serve_opts *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->port = 8731;
  o->threads = 4;
  o->model_threads = 1;
  o->max_connections = 64;
  o->n_kl = 512;
  o->n_mi = 2000;
}

static const char *query_arg(void *ctx, const char *key) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, kn_reply *r) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"", r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(r->body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", r->mime ? r->mime : "application/octet-stream");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (r->disposition) MHD_add_response_header(resp, "Content-Disposition", r->disposition);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg) {
  kn_reply r = {.status = status, .mime = "application/json"};
  size_t n = strlen(msg) + 16;
  r.body = malloc(n);
  if (!r.body) return MHD_NO;
  snprintf(r.body, n, "{\"error\":\"%s\"}", msg);
  r.len = strlen(r.body);
  return send_reply(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  knobs_server *s = cls;
  conn_state *cs = *con_cls;
  if (!cs) {
    cs = calloc(1, sizeof *cs);
    if (!cs) return MHD_NO;
    *con_cls = cs;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
      char *end;
      unsigned long long v = strtoull(cl, &end, 10);
      if (*end || v > KNOBS_SERVE_MAX_BODY) {
        cs->too_big = 2;
        return send_error(c, 413, "request body larger than 8 MB");
      }
    }
    return MHD_YES;
  }
  if (cs->too_big == 2) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (cs->too_big || cs->len + n > KNOBS_SERVE_MAX_BODY) {
      cs->too_big = 1;
      return MHD_YES;
    }
    if (cs->len + n + 1 > cs->cap) {
      size_t cap = cs->cap ? cs->cap : 4096;
      while (cap < cs->len + n + 1) cap *= 2;
      char *b = realloc(cs->body, cap);
      if (!b) return MHD_NO;
      cs->body = b, cs->cap = cap;
    }
    memcpy(cs->body + cs->len, upload, n);
    cs->len += n;
    return MHD_YES;
  }
  if (cs->too_big) return send_error(c, 413, "request body larger than 8 MB");
  kn_reply r;
  kn_api_handle(&s->api, method, url, query_arg, c, cs->body ? cs->body : "", cs->len, &r);
  if (!strcmp(method, "HEAD")) r.len = 0;
  knobs_clear_error();
  return send_reply(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  conn_state *cs = *con_cls;
  if (cs) {
    free(cs->body);
    free(cs);
    *con_cls = NULL;
  }
}

knobs_status knobs_serve_start(const knobs_serve_opts *o, knobs_server **out) {
  *out = NULL;
  knobs_serve_opts def;
  knobs_serve_opts_default(&def);
  if (o->n_runs < 1 || o->n_runs > KNOBS_SERVE_MAX_MODELS)
    return kn_err(KNOBS_ERR_ARG, "the panel shows 1 or %d models, not %d", KNOBS_SERVE_MAX_MODELS, o->n_runs);
  if (o->port < 0 || o->port > 65535) return kn_err(KNOBS_ERR_ARG, "port %d is not in 0..65535", o->port);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
  const char *host = o->host ? o->host : def.host;
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
    return kn_err(KNOBS_ERR_ARG, "host '%s' is not a numeric IPv4 address (e.g. 127.0.0.1)", host);
  knobs_server *s = calloc(1, sizeof *s);
  if (!s) return kn_err(KNOBS_ERR_NOMEM, "out of memory");
  int mt = o->model_threads > 0 ? o->model_threads : def.model_threads;
  int nkl = o->n_kl > 0 ? o->n_kl : def.n_kl, nmi = o->n_mi > 0 ? o->n_mi : def.n_mi;
  for (int i = 0; i < o->n_runs; i++) {
    knobs_status st = kn_slot_open(&s->slots[i], o->runs[i], mt, nkl, nmi);
    s->n_slots = i + 1;
    if (st) {
      knobs_serve_stop(s);
      return st;
    }
  }
  s->api = (kn_api){.slots = s->slots, .n_slots = s->n_slots};
  unsigned threads = (unsigned)(o->threads > 0 ? o->threads : def.threads);
  unsigned maxc = (unsigned)(o->max_connections > 0 ? o->max_connections : def.max_connections);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO, 0, NULL, NULL, on_request, s,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                          MHD_OPTION_THREAD_POOL_SIZE, threads,
                          MHD_OPTION_CONNECTION_LIMIT, maxc,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                          MHD_OPTION_END);
  if (!s->d) {
    knobs_serve_stop(s);
    return kn_err(KNOBS_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", host, o->port);
  }
  const union MHD_DaemonInfo *inf = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = inf ? inf->port : o->port;
  *out = s;
  return KNOBS_OK;
}

int knobs_serve_port(const knobs_server *s) { return s->port; }

void knobs_serve_stop(knobs_server *s) {
  if (!s) return;
  if (s->d) MHD_stop_daemon(s->d);
  for (int i = 0; i < s->n_slots; i++) kn_slot_close(&s->slots[i]);
  free(s);
}
