/* fuzz_norb.c: SmallNORB matrix files (src/data/norb.c). Input: the -dat, -cat and -info files,
 * the first two preceded by a 2-byte length. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p[3];
  size_t n[3];
  if (!fz_split(data, size, 3, p, n)) return 0;
  const char *dat = fz_write("x-dat.mat", p[0], n[0]);
  fz_write("x-cat.mat", p[1], n[1]);
  fz_write("x-info.mat", p[2], n[2]);
  fz_open(dat);
  return 0;
}
