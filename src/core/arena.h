/* arena.h: one allocation for a computation's scratch, laid out by a function that is run
 * twice: first on an empty arena, which only counts (every take returns NULL), then, after
 * kn_arena_reserve, for real. So the sizes are written once, in the layout function, and a
 * computation does one malloc instead of many. Not thread-safe: one owner lays it out; the
 * pieces may then be shared by threads (each owning its slices). */
#ifndef KN_ARENA_H
#define KN_ARENA_H
#include <stddef.h>

#include "knobs.h"

#define KN_ARENA_ALIGN 64 /* every piece starts on a cache line (and an AVX-512 vector) */

typedef struct {
  char *base;   /* NULL while counting */
  size_t size;  /* bytes reserved */
  size_t used;  /* bytes taken (counting: bytes needed) */
  void *block;  /* what malloc returned */
} kn_arena;

/* `bytes` of scratch, zeroed, aligned to KN_ARENA_ALIGN; while counting, adds to the need and
 * returns NULL. Taking more than was counted is a programmer error (asserted). */
void *kn_arena_take(kn_arena *a, size_t bytes);
/* Allocate what the counting pass needed (zeroed) and start the real pass. KNOBS_ERR_NOMEM
 * naming `what` on failure (the arena stays empty). */
knobs_status kn_arena_reserve(kn_arena *a, const char *what);
/* Free the block and reset to an empty (counting) arena; an empty arena is a no-op. */
void kn_arena_free(kn_arena *a);

#endif
