/* fuzz_h5ad.c: AnnData files (src/data/h5ad.c): the checks of the matrix and of obs after HDF5
 * (which runs in a forked child) has read them. libhdf5 1.10 loops forever on some damaged
 * files (H5HG_read on a corrupt global heap, under H5Aread of a string attribute): libFuzzer
 * reports those as timeouts; they are libhdf5's, documented in docs/formats.md, not knobs'. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_open(fz_write("x.h5ad", data, size));
  return 0;
}
