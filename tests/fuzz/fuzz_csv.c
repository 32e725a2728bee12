/* fuzz_csv.c: the CSV/TSV parser (src/data/csv.c) and factor tables built from its columns
 * (src/data/factors.c: classes, binning, grid detection). */
#include "data/files.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kn_reader *r;
  if (kn_reader_mem(data, size, "fuzz.csv", &r)) return 0;
  kn_csv c;
  if (kn_csv_read(r, &c) == KNOBS_OK) {
    if (c.cols <= KNOBS_MAX_FACTORS) {
      const char *names[KNOBS_MAX_FACTORS];
      for (int k = 0; k < c.cols; k++) names[k] = c.names[k];
      kn_factors f;
      if (kn_factors_from_values(&f, c.v, c.rows, c.cols, names, "fuzz.csv") == KNOBS_OK) kn_factors_free(&f);
    }
    kn_csv_free(&c);
  }
  kn_reader_close(r);
  return 0;
}
