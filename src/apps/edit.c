/* edit.c: counterfactual edits: encode an observation to its posterior mean, change only the
 * chosen knobs (to a code value, by an amount, or to the code whose calibrated factor value is
 * asked for), decode; the attribute vector of latent arithmetic; and the edit score, which
 * measures with the oracle (oracle.c) how far each knob moves its factor and how little it moves
 * the others. Uses only the public model, data and knobs calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

knobs_status knobs_edit_codes(const knobs_knobs *k, const knobs_edit_op *ops, int n_ops, float *codes, int n, int Z) {
  if (n < 0 || n_ops < 0) return kn_err(KNOBS_ERR_ARG, "edit: negative count");
  for (int o = 0; o < n_ops; o++) {
    const knobs_edit_op *op = &ops[o];
    if (op->latent < 0 || op->latent >= Z)
      return kn_err(KNOBS_ERR_ARG, "edit: latent %d out of range (the model has %d)", op->latent, Z);
    if (!isfinite(op->value)) return kn_err(KNOBS_ERR_ARG, "edit: latent %d: value is not a finite number", op->latent);
    if (op->mode == KNOBS_EDIT_FACTOR) {
      const knobs_knob *kb = k && k->Z == Z ? &k->knobs[op->latent] : NULL;
      if (!kb || kb->n_knots < 2)
        return kn_err(KNOBS_ERR_ARG, "edit: latent %d has no calibration to a factor (run 'knobs name' on data "
                      "with ground-truth factors)", op->latent);
      double c;
      knobs_status s = knobs_knob_code(kb, op->value, &c);
      if (s) return kn_err_prefix(s, "edit: latent %d (%s)", op->latent, kb->factor);
    } else if (op->mode != KNOBS_EDIT_SET && op->mode != KNOBS_EDIT_ADD) {
      return kn_err(KNOBS_ERR_ARG, "edit: unknown mode %d", (int)op->mode);
    }
  }
  for (int o = 0; o < n_ops; o++) {
    const knobs_edit_op *op = &ops[o];
    double c = 0;
    if (op->mode == KNOBS_EDIT_FACTOR) knobs_knob_code(&k->knobs[op->latent], op->value, &c);
    for (int i = 0; i < n; i++) {
      float *v = codes + (size_t)i * Z + op->latent;
      *v = op->mode == KNOBS_EDIT_ADD ? (float)(*v + op->value) : (float)(op->mode == KNOBS_EDIT_SET ? op->value : c);
    }
  }
  return KNOBS_OK;
}

knobs_status knobs_edit(knobs_model *m, const knobs_knobs *k, const knobs_edit_op *ops, int n_ops, const float *x, int n,
                        float *recon, float *edited, float *codes) {
  if (n <= 0) return kn_err(KNOBS_ERR_ARG, "edit: no observations");
  int Z = knobs_model_code_dim(m);
  float *z = malloc(sizeof(float) * (size_t)n * Z);
  if (!z) return kn_err(KNOBS_ERR_NOMEM, "edit: out of memory for %d codes", n);
  knobs_status s = knobs_model_encode(m, x, n, z, NULL);
  for (size_t i = 0; !s && i < (size_t)n * Z; i++)
    if (!isfinite(z[i])) s = kn_err(KNOBS_ERR_DATA, "edit: the code of observation %zu is not finite", i / Z);
  if (!s && recon) s = knobs_model_decode(m, z, n, recon);
  if (!s) s = knobs_edit_codes(k, ops, n_ops, z, n, Z);
  if (!s && edited) s = knobs_model_decode(m, z, n, edited);
  if (!s && codes) memcpy(codes, z, sizeof(float) * (size_t)n * Z);
  free(z);
  return s;
}

knobs_status knobs_attribute_vector(const float *codes, const int32_t *labels, int n, int Z, float *v) {
  double *a = calloc((size_t)Z * 2, sizeof(double));
  if (!a) return kn_err(KNOBS_ERR_NOMEM, "attribute: out of memory");
  long np = 0, nn = 0;
  for (int i = 0; i < n; i++) {
    double *t = labels[i] ? a : a + Z;
    labels[i] ? np++ : nn++;
    for (int j = 0; j < Z; j++) {
      float c = codes[(size_t)i * Z + j];
      if (!isfinite(c)) {
        free(a);
        return kn_err(KNOBS_ERR_DATA, "attribute: code %d of row %d is not finite", j, i);
      }
      t[j] += c;
    }
  }
  if (!np || !nn) {
    free(a);
    return kn_err(KNOBS_ERR_DATA, "attribute: %s (of %d rows): the vector needs rows with the attribute "
                  "(label != 0) and without it (label 0)", np ? "no negative rows" : "no positive rows", n);
  }
  for (int j = 0; j < Z; j++) v[j] = (float)(a[j] / np - a[Z + j] / nn);
  free(a);
  return KNOBS_OK;
}

void knobs_edit_score_opts_default(knobs_edit_score_opts *o) {
  o->n_edits = 200;
  o->delta = 2;
  o->seed = 0;
}

#define SCORE_CHUNK 64

knobs_status knobs_edit_score(knobs_model *m, knobs_data *d, const knobs_knobs *k, const knobs_edit_score_opts *o,
                              knobs_edit_score_row *rows, int *n_rows) {
  *n_rows = 0;
  knobs_edit_score_opts def;
  if (!o) knobs_edit_score_opts_default(&def), o = &def;
  if (o->n_edits < 1 || o->n_edits > 1000000) return kn_err(KNOBS_ERR_ARG, "edit score: n = %d out of range 1..1000000", o->n_edits);
  if (!isfinite(o->delta) || o->delta <= 0 || o->delta > 100)
    return kn_err(KNOBS_ERR_ARG, "edit score: delta %g out of range (0, 100]", o->delta);
  int Z = knobs_model_code_dim(m);
  if (!k || k->Z != Z || k->n <= 0)
    return kn_err(KNOBS_ERR_ARG, "edit score: the model's knobs are not named (run 'knobs name' first)");
  const knobs_data_info *in = knobs_data_info_get(d);
  if (in->K != k->K) return kn_err(KNOBS_ERR_ARG, "edit score: knobs.json was computed on %s, not %s", k->data, in->name);
  for (int q = 0; q < in->K; q++)
    if (strcmp(k->factors[q], in->factor_names[q]))
      return kn_err(KNOBS_ERR_ARG, "edit score: knobs.json names factor %d '%s', %s calls it '%s' (computed on %s)", q,
                    k->factors[q], in->name, in->factor_names[q], k->data);
  knobs_oracle *orc;
  knobs_status s = knobs_oracle_create(d, knobs_config_number(knobs_model_config(m), "threads") > 1 ? 2 : 1, &orc);
  if (s) return kn_err_prefix(s, "edit score");
  int K = in->K, B = SCORE_CHUNK;
  size_t D = (size_t)in->C * in->H * in->W;
  float *x = malloc(sizeof(float) * D * B), *rx = malloc(sizeof(float) * D * B), *ex = malloc(sizeof(float) * D * B);
  float *z = malloc(sizeof(float) * (size_t)Z * B);
  int32_t *f = malloc(sizeof(int32_t) * (size_t)K * B), *fr = malloc(sizeof(int32_t) * (size_t)K * B),
          *fe = malloc(sizeof(int32_t) * (size_t)K * B);
  int *sign = malloc(sizeof(int) * B);
  if (!x || !rx || !ex || !z || !f || !fr || !fe || !sign) s = kn_err(KNOBS_ERR_NOMEM, "edit score: out of memory");
  for (int j = 0; !s && j < Z; j++) {
    const knobs_knob *kb = &k->knobs[j];
    if (kb->factor_index < 0 || kb->direction == 0 || kb->scale <= 0) continue;
    int fk = kb->factor_index, nk = in->factor_sizes[fk];
    knobs_edit_score_row r = {.latent = j, .factor = fk};
    double moved = 0, same = 0, others = 0, rexact = 0;
    long up = 0;
    for (int i0 = 0; !s && i0 < o->n_edits; i0 += B) {
      int b = o->n_edits - i0 < B ? o->n_edits - i0 : B;
      /* a stream per knob and chunk: the same seed scores the same edits */
      s = knobs_data_draw(d, b, o->seed, ((uint64_t)j << 32) + (uint64_t)(i0 / B), x, NULL);
      /* the input's factors as the oracle reads them (a symmetric shape's equivalent classes) */
      if (!s) s = knobs_oracle_factors(orc, x, b, f, NULL);
      if (!s) s = knobs_model_encode(m, x, b, z, NULL);
      if (!s) s = knobs_model_decode(m, z, b, rx);
      if (!s) s = knobs_oracle_factors(orc, rx, b, fr, NULL);
      if (s) break;
      /* move toward the side of the factor's range with more room: up (in the factor) when the
       * reconstruction's class is in the lower half */
      for (int i = 0; i < b; i++) {
        sign[i] = 2 * fr[(size_t)i * K + fk] < nk - 1 ? 1 : -1;
        z[(size_t)i * Z + j] += (float)(sign[i] * kb->direction * o->delta * kb->scale);
      }
      s = knobs_model_decode(m, z, b, ex);
      if (!s) s = knobs_oracle_factors(orc, ex, b, fe, NULL);
      for (int i = 0; !s && i < b; i++) {
        int dv = fe[(size_t)i * K + fk] - fr[(size_t)i * K + fk];
        up += dv * sign[i] > 0;
        moved += dv * sign[i];
        int ex_all = 1;
        for (int q = 0; q < K; q++) {
          if (fr[(size_t)i * K + q] != f[(size_t)i * K + q]) ex_all = 0;
          if (q == fk || in->factor_sizes[q] < 2) continue;
          others++;
          same += fe[(size_t)i * K + q] == fr[(size_t)i * K + q];
        }
        rexact += ex_all;
      }
      r.n += b;
    }
    if (s) break;
    r.fidelity = (double)up / r.n;
    r.moved = moved / r.n;
    r.specificity = others > 0 ? same / others : 1;
    r.recon_exact = rexact / r.n;
    rows[(*n_rows)++] = r;
  }
  free(x), free(rx), free(ex), free(z), free(f), free(fr), free(fe), free(sign);
  knobs_oracle_free(orc);
  if (s) *n_rows = 0;
  return s;
}

