/* fuzz_png.c: PNG reading (src/io/image.c over libpng), and a folder of one PNG as a dataset. */
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_path("d");
  char dir[256];
  snprintf(dir, sizeof dir, "%s/pngs", fz_dir);
  mkdir(dir, 0777);
  const char *p = fz_write("pngs/a.png", data, size);
  uint8_t *px;
  int w, h, c;
  if (knobs_png_read(p, &px, &w, &h, &c) == KNOBS_OK) free(px);
  fz_open(dir);
  return 0;
}
