/* ref_json.h: read a committed reference file (tests/ref/NAME.json, made by the scripts beside it)
 * for the tests that compare against NumPy, scikit-learn or SciPy values. */
#ifndef KN_TEST_REF_JSON_H
#define KN_TEST_REF_JSON_H
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/io.h"

/* The parsed file, or NULL after saying on stderr why not (run the tests from the repository
 * root). The caller checks its "version" and frees it with cJSON_Delete. */
static inline cJSON *t_ref_json(const char *path) {
  char *txt = NULL;
  size_t n = 0;
  if (kn_read_file(path, 1 << 22, &txt, &n)) {
    fprintf(stderr, "cannot read %s: %s (run from the repository root)\n", path, knobs_last_error());
    return NULL;
  }
  cJSON *j = cJSON_ParseWithLength(txt, n);
  free(txt);
  if (!j) fprintf(stderr, "%s: not JSON\n", path);
  return j;
}
#endif
