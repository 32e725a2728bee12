/* fuzz_mtx.c: 10x Genomics MatrixMarket files (src/data/cells.c: the header, the size line, the
 * entries, the CSR built from them), opened by their .mtx path. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_open(fz_write("matrix.mtx", data, size));
  return 0;
}
