/* fuzz_npy.c: the .npy header parser and data reader (src/io/npy.c) over a memory reader. */
#include "fuzz.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kn_reader *r;
  if (kn_reader_mem(data, size, "fuzz.npy", &r)) return 0;
  kn_npy_header h;
  if (kn_npy_read_header(r, &h) == KNOBS_OK) {
    knobs_array a;
    if (kn_npy_read_data(r, &h, &a) == KNOBS_OK) {
      knobs_array c;
      if (knobs_array_convert(&a, KNOBS_F64, &c) == KNOBS_OK) knobs_array_free(&c);
      knobs_array_free(&a);
    }
  }
  kn_reader_close(r);
  return 0;
}
