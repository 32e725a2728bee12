/* file.c: atomic output files, whole-file reads, folders, and the file/memory byte readers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"

struct kn_atomic {
  FILE *f;
  char path[1024];
  char tmp[1100];
};

kn_atomic *kn_atomic_open(const char *path) {
  kn_atomic *a = calloc(1, sizeof *a);
  if (!a) {
    kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate", path);
    return NULL;
  }
  if (strlen(path) >= sizeof a->path) {
    free(a);
    kn_err(KNOBS_ERR_ARG, "%s: path too long", path);
    return NULL;
  }
  strcpy(a->path, path);
  snprintf(a->tmp, sizeof a->tmp, "%s.tmp-%ld", path, (long)getpid());
  a->f = fopen(a->tmp, "wb");
  if (!a->f) {
    kn_err(KNOBS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    free(a);
    return NULL;
  }
  return a;
}

FILE *kn_atomic_file(kn_atomic *a) { return a->f; }

knobs_status kn_atomic_commit(kn_atomic *a) {
  int bad = ferror(a->f);
  if (fflush(a->f) != 0) bad = 1;
  if (!bad && fsync(fileno(a->f)) != 0 && errno != EINVAL) bad = 1;
  int e = errno;
  if (fclose(a->f) != 0) bad = 1;
  if (!bad && rename(a->tmp, a->path) != 0) {
    e = errno;
    bad = 1;
  }
  knobs_status s = KNOBS_OK;
  if (bad) {
    unlink(a->tmp);
    s = kn_err(KNOBS_ERR_IO, "%s: write failed: %s", a->path, strerror(e ? e : EIO));
  }
  free(a);
  return s;
}

void kn_atomic_abort(kn_atomic *a) {
  if (!a) return;
  fclose(a->f);
  unlink(a->tmp);
  free(a);
}

knobs_status kn_write_file(const char *path, const void *data, size_t n) {
  kn_atomic *a = kn_atomic_open(path);
  if (!a) return knobs_last_status();
  if (n && fwrite(data, 1, n, a->f) != n) {
    kn_atomic_abort(a);
    return kn_err(KNOBS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  }
  return kn_atomic_commit(a);
}

knobs_status kn_read_file(const char *path, size_t max, char **data, size_t *n) {
  *data = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kn_err(KNOBS_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > max) {
    fclose(f);
    return kn_err(KNOBS_ERR_FORMAT, "%s: %lld bytes, more than the %zu accepted", path,
                  (long long)st.st_size, max);
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    fclose(f);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %lld bytes", path, (long long)st.st_size);
  }
  size_t got = fread(buf, 1, (size_t)st.st_size, f);
  int err = ferror(f);
  fclose(f);
  if (err || got != (size_t)st.st_size) {
    free(buf);
    return kn_err(KNOBS_ERR_IO, "%s: read failed", path);
  }
  buf[got] = 0;
  *data = buf;
  *n = got;
  return KNOBS_OK;
}

knobs_status kn_mkdirs(const char *path) {
  char buf[1024];
  if (!path || !*path) return kn_err(KNOBS_ERR_ARG, "empty folder name");
  if (strlen(path) >= sizeof buf) return kn_err(KNOBS_ERR_ARG, "%s: path too long", path);
  strcpy(buf, path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return kn_err(KNOBS_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
      if (!kn_is_dir(buf)) return kn_err(KNOBS_ERR_IO, "%s: exists and is not a folder", buf);
      *p = c;
      if (!c) break;
    }
  }
  if (access(path, W_OK) != 0)
    return kn_err(KNOBS_ERR_IO, "%s: folder is not writable: %s", path, strerror(errno));
  return KNOBS_OK;
}

int kn_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kn_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int kn_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* ---- readers ---------------------------------------------------------------------------- */

knobs_status kn_read_exact(kn_reader *r, void *buf, size_t n, const char *what) {
  size_t got = r->read(r, buf, n);
  if (r->status != KNOBS_OK) return r->status;
  if (got != n)
    return r->status = kn_err(KNOBS_ERR_FORMAT, "%s: truncated: %s needs %zu bytes at offset %llu, "
                              "only %zu left", r->name, what, n,
                              (unsigned long long)(r->pos - got), got);
  return KNOBS_OK;
}

void kn_reader_close(kn_reader *r) {
  if (r) r->close(r);
}

typedef struct {
  kn_reader r;
  FILE *f;
} file_reader;

static size_t file_read(kn_reader *r, void *buf, size_t n) {
  file_reader *fr = (file_reader *)r;
  size_t got = fread(buf, 1, n, fr->f);
  if (got < n && ferror(fr->f))
    r->status = kn_err(KNOBS_ERR_IO, "%s: read failed: %s", r->name, strerror(errno));
  r->pos += got;
  return got;
}

static void file_close(kn_reader *r) {
  fclose(((file_reader *)r)->f);
  free(r);
}

knobs_status kn_reader_file(const char *path, kn_reader **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return kn_err(KNOBS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kn_err(KNOBS_ERR_IO, "%s: not a regular file", path);
  }
  file_reader *fr = calloc(1, sizeof *fr);
  if (!fr) {
    fclose(f);
    return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate a reader", path);
  }
  fr->f = f;
  fr->r.read = file_read;
  fr->r.close = file_close;
  fr->r.size = (uint64_t)st.st_size;
  snprintf(fr->r.name, sizeof fr->r.name, "%s", path);
  *out = &fr->r;
  return KNOBS_OK;
}

typedef struct {
  kn_reader r;
  const uint8_t *p;
  size_t n;
} mem_reader;

static size_t mem_read(kn_reader *r, void *buf, size_t n) {
  mem_reader *m = (mem_reader *)r;
  size_t left = m->n - (size_t)r->pos;
  if (n > left) n = left;
  memcpy(buf, m->p + r->pos, n);
  r->pos += n;
  return n;
}

static void mem_close(kn_reader *r) { free(r); }

knobs_status kn_reader_mem(const void *data, size_t n, const char *name, kn_reader **out) {
  mem_reader *m = calloc(1, sizeof *m);
  if (!m) return kn_err(KNOBS_ERR_NOMEM, "cannot allocate a reader");
  m->p = data;
  m->n = n;
  m->r.read = mem_read;
  m->r.close = mem_close;
  m->r.size = n;
  snprintf(m->r.name, sizeof m->r.name, "%s", name);
  *out = &m->r;
  return KNOBS_OK;
}
