/* vmath.h: branch-free float exp, sigmoid and tanh that GCC vectorises inside a loop (glibc's
 * expf/tanhf are calls). Shared by the loss loop (dense.c) and the recurrent cells (lstm.c).
 * Accuracy: exp by the Cephes single-precision polynomial (max error 1 ulp, checked in
 * tests/test_nn.c "softplus"); sigmoid and tanh built on it, within a few ulp (checked against
 * double in tests/test_lstm.c "vmath"). Not a general libm: inputs are finite. */
#ifndef KN_VMATH_H
#define KN_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0: 2^n e^r with |r| <= ln2/2; x below -87 is clamped (the result is then
 * ~1e-38, not 0). Written for GCC's vectoriser (without -ffast-math): n = round(x log2 e) by
 * adding and subtracting 1.5 * 2^23 (floorf does not vectorise under -ftrapping-math), and
 * the clamped value as x * 0 - 87 rather than the constant -87, which GCC would fold through
 * the whole function on that path, leaving a conditional floor that stops vectorisation. */
static inline float kn_exp_neg(float x) {
  x = x < -87.0f ? x * 0.0f - 87.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float two_n;
  memcpy(&two_n, &bits, sizeof two_n);
  return p * two_n;
}

/* 1 / (1 + exp(-x)), stable for large |x|: exp of a non-positive number only. */
static inline float kn_sigmoidf(float x) {
  float e = kn_exp_neg(-fabsf(x));
  return (x >= 0 ? 1.0f : e) / (1.0f + e);
}

/* tanh as Cephes' tanhf: an odd polynomial for |x| < 0.625 (where 1 - exp(-2|x|) would lose
 * relative precision), (1 - e) / (1 + e) with e = exp(-2|x|) beyond it. */
static inline float kn_tanhf(float x) {
  float a = fabsf(x), z = x * x;
  float e = kn_exp_neg(-2.0f * a);
  float big = copysignf((1.0f - e) / (1.0f + e), x);
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  return a < 0.625f ? small : big;
}
#endif
