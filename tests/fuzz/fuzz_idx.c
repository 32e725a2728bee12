/* fuzz_idx.c: MNIST IDX images and labels (src/data/idx.c), plain or gzip (the input decides:
 * gzip is detected from the bytes). Input: 2-byte length, images file, then the labels file. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p[2];
  size_t n[2];
  if (!fz_split(data, size, 2, p, n)) return 0;
  const char *img = fz_write("t-images-idx3-ubyte", p[0], n[0]);
  fz_write("t-labels-idx1-ubyte", p[1], n[1]);
  fz_open(img);
  return 0;
}
