/* rng.c: xoshiro256** (Blackman & Vigna) seeded by splitmix64 over (seed, stream).
 * Every random draw in knobs goes through an explicit kn_rng passed by pointer; streams keep
 * independent uses apart so that, e.g., the batch of step t depends only on (seed, t). */
#include <math.h>

#include "core/core.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void kn_rng_seed(kn_rng *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed;
  uint64_t h = splitmix64(&x);
  x = h ^ (stream * 0xD1B54A32D192ED03ull);
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* all-zero state is absorbing */
}

double kn_rng_uniform(kn_rng *r) { return (double)(kn_rng_u64(r) >> 11) * 0x1.0p-53; }

uint32_t kn_rng_below(kn_rng *r, uint32_t n) {
  /* Lemire's nearly-divisionless method, exact (rejects the biased low part). */
  uint64_t m = (uint64_t)(uint32_t)(kn_rng_u64(r) >> 32) * n;
  uint32_t l = (uint32_t)m;
  if (l < n) {
    uint32_t t = (uint32_t)(-n) % n;
    while (l < t) {
      m = (uint64_t)(uint32_t)(kn_rng_u64(r) >> 32) * n;
      l = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

double kn_rng_normal(kn_rng *r) {
  /* Box-Muller on (0,1] x [0,1): u1 is never 0, so log(u1) is finite. */
  double u1 = 1.0 - kn_rng_uniform(r), u2 = kn_rng_uniform(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void kn_rng_normal_fill(kn_rng *r, float *x, size_t n) {
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    double u1 = 1.0 - kn_rng_uniform(r), u2 = kn_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    x[i] = (float)(rad * cos(th));
    x[i + 1] = (float)(rad * sin(th));
  }
  if (i < n) x[i] = (float)kn_rng_normal(r);
}

void kn_rng_uniform_fill(kn_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * kn_rng_uniform(r));
}

void kn_rng_permutation(kn_rng *r, int *perm, int n) {
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)kn_rng_below(r, (uint32_t)i + 1);
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
