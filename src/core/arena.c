/* arena.c: the scratch arena of arena.h. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static size_t round_up(size_t n) { return (n + KN_ARENA_ALIGN - 1) & ~(size_t)(KN_ARENA_ALIGN - 1); }

void *kn_arena_take(kn_arena *a, size_t bytes) {
  size_t n = round_up(bytes ? bytes : 1);
  if (!a->base) {
    a->used += n;
    return NULL;
  }
  KN_ASSERT(n <= a->size - a->used);
  void *p = a->base + a->used;
  a->used += n;
  return p;
}

knobs_status kn_arena_reserve(kn_arena *a, const char *what) {
  size_t need = a->used;
  void *b = calloc(1, need + KN_ARENA_ALIGN);
  if (!b) return kn_err(KNOBS_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch", what, need);
  uintptr_t p = ((uintptr_t)b + KN_ARENA_ALIGN - 1) & ~(uintptr_t)(KN_ARENA_ALIGN - 1);
  *a = (kn_arena){.base = (char *)p, .size = need, .used = 0, .block = b};
  return KNOBS_OK;
}

void kn_arena_free(kn_arena *a) {
  free(a->block);
  memset(a, 0, sizeof *a);
}
