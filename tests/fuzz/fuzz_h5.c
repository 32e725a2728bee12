/* fuzz_h5.c: HDF5 image files (src/data/h5.c); the parsing itself is the HDF5 library's. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_open(fz_write("x.h5", data, size));
  return 0;
}
