/* free.c: knobs_free, the one function that frees every buffer or string the library returns.
 * Those buffers come from malloc, or from cJSON's printers, whose hooks the library never
 * changes (so they are malloc'ed too). Handles and arrays have their own _free functions. */
#include <stdlib.h>

#include "knobs.h"

void knobs_free(void *p) { free(p); }
