/* error.c: the per-thread error detail behind knobs_last_error(), and kn_assert_fail.
 * Thread-local, so concurrent library calls on different threads keep their own messages. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static _Thread_local char err_buf[2048];
static _Thread_local knobs_status err_status;

knobs_status kn_err(knobs_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
  err_status = s;
  return s;
}

knobs_status kn_err_prefix(knobs_status s, const char *fmt, ...) {
  char pre[512], old[sizeof err_buf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  memcpy(old, err_buf, sizeof old);
  size_t n = strlen(pre);
  memcpy(err_buf, pre, n);
  err_buf[n] = ':';
  err_buf[n + 1] = ' ';
  size_t room = sizeof err_buf - n - 3;
  size_t m = strnlen(old, room);
  memcpy(err_buf + n + 2, old, m);
  err_buf[n + 2 + m] = 0;
  err_status = s;
  return s;
}

const char *knobs_last_error(void) { return err_buf[0] ? err_buf : "no error detail"; }

knobs_status knobs_last_status(void) { return err_status; }

void knobs_clear_error(void) {
  err_buf[0] = 0;
  err_status = KNOBS_OK;
}

const char *knobs_status_name(knobs_status s) {
  switch (s) {
  case KNOBS_OK: return "ok";
  case KNOBS_ERR_ARG: return "invalid argument";
  case KNOBS_ERR_IO: return "i/o error";
  case KNOBS_ERR_FORMAT: return "bad file format";
  case KNOBS_ERR_NOMEM: return "out of memory";
  case KNOBS_ERR_DATA: return "bad data";
  case KNOBS_ERR_UNSUPPORTED: return "unsupported";
  case KNOBS_ERR_INTERRUPTED: return "interrupted";
  }
  return "unknown status";
}

_Noreturn void kn_assert_fail(const char *cond, const char *file, int line) {
  fprintf(stderr, "knobs: internal error: %s:%d: assertion failed: %s\n", file, line, cond);
  abort();
}

void *kn_alloc(size_t bytes, const char *what) {
  size_t n = (bytes + 63) & ~(size_t)63;
  if (n == 0) n = 64;
  if (n < bytes) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate %s: size overflow", what);
    return NULL;
  }
  void *p = aligned_alloc(64, n);
  if (!p) {
    kn_err(KNOBS_ERR_NOMEM, "cannot allocate %zu bytes for %s", bytes, what);
    return NULL;
  }
  memset(p, 0, n);
  return p;
}

void kn_free(void *p) { free(p); }

void kn_strfmt(char *dst, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(dst, n, fmt, ap);
  va_end(ap);
  KN_ASSERT(k >= 0 && (size_t)k < n);
}

char *kn_strdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) kn_err(KNOBS_ERR_NOMEM, "cannot allocate a string");
  return d;
}

const char *knobs_version(void) { return KNOBS_VERSION; }
