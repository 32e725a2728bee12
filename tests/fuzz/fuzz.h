/* fuzz.h: what the libFuzzer targets share: a private temporary folder (for parsers that read
 * files by path), writing the input there, and silencing knobs' error detail (errors are the
 * expected outcome; only crashes, leaks and sanitizer reports count). */
#ifndef KNOBS_FUZZ_H
#define KNOBS_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "knobs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "<tmp>/<name>" in a folder made once per process under $TMPDIR (or /tmp) and removed at exit
 * (tests/fuzz/build.sh gives each run its own TMPDIR and removes it: a crashing run cannot) */
static char fz_dir[64];
static inline void fz_cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
  if (fz_dir[0] && system(cmd) != 0) fprintf(stderr, "fuzz: cannot remove %s\n", fz_dir);
}
static inline const char *fz_path(const char *name) {
  static char buf[4][256];
  static int k;
  if (!fz_dir[0]) {
    const char *t = getenv("TMPDIR");
    if (!t || strlen(t) > 40) t = "/tmp";
    snprintf(fz_dir, sizeof fz_dir, "%s/knobs-fuzz-XXXXXX", t);
    if (!mkdtemp(fz_dir)) abort();
    atexit(fz_cleanup);
  }
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", fz_dir, name);
  return buf[k];
}
static inline const char *fz_write(const char *name, const uint8_t *data, size_t n) {
  const char *p = fz_path(name);
  FILE *f = fopen(p, "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  fclose(f);
  return p;
}
/* split the input into parts: each part but the last is preceded by a 2-byte length */
static inline int fz_split(const uint8_t *data, size_t size, int parts, const uint8_t **p, size_t *n) {
  for (int i = 0; i < parts - 1; i++) {
    if (size < 2) return 0;
    size_t l = (size_t)data[0] | (size_t)data[1] << 8;
    data += 2, size -= 2;
    if (l > size) l = size;
    p[i] = data, n[i] = l;
    data += l, size -= l;
  }
  p[parts - 1] = data, n[parts - 1] = size;
  return 1;
}
/* open a dataset from a path, touch a few observations, free it */
static inline void fz_open(const char *spec) {
  knobs_data_opts o;
  knobs_data_opts_default(&o);
  knobs_data *d = NULL;
  if (knobs_data_open(spec, &o, &d) == KNOBS_OK) {
    const knobs_data_info *in = knobs_data_info_get(d);
    size_t D = (size_t)in->C * in->H * in->W;
    if (D <= (1u << 22)) {
      float *x = malloc(sizeof(float) * D * 2);
      int32_t f[2 * KNOBS_MAX_FACTORS];
      int64_t idx[2] = {0, in->n - 1};
      if (x) knobs_data_get(d, idx, 2, x, f);
      free(x);
    }
    knobs_data_free(d);
  }
}
#endif
