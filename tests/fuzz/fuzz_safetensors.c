/* fuzz_safetensors.c: the checkpoint container parser (src/io/safetensors.c). */
#include "fuzz.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kn_safetensors st;
  if (kn_st_parse(data, size, "fuzz.safetensors", &st) == KNOBS_OK) {
    for (int i = 0; i < st.n; i++) {
      const kn_st_tensor *t = &st.t[i];
      if (t->dtype == KNOBS_F32 && t->end - t->begin <= (1u << 20)) {
        float *buf = malloc(t->end - t->begin + 4);
        if (buf) kn_st_get_f32(&st, t->name, t->ndim, t->shape, buf);
        free(buf);
      }
    }
    kn_st_free(&st);
  }
  return 0;
}
