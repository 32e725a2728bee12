/* fuzz_npz.c: the zip container under .npz (src/io/zip.c: listing, streaming members, CRC,
 * ZIP64), the stored-member locator (src/data/files.c) and opening the file as user data. */
#include "data/files.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = fz_write("x.npz", data, size);
  char **names;
  int n;
  if (knobs_npz_list(p, &names, &n) == KNOBS_OK) {
    for (int i = 0; i < n && i < 8; i++) {
      knobs_array a;
      if (knobs_npz_read(p, names[i], &a) == KNOBS_OK) knobs_array_free(&a);
      uint64_t off, cs, us;
      int method;
      kn_zip_span(p, names[i], &off, &method, &cs, &us);
    }
    knobs_npz_names_free(names, n);
  }
  fz_open(p);
  return 0;
}
