/* prop_penalty.c: the training-time property penalty (docs/models.md, "Property penalty").
 *
 * Each training step of a model whose step goes through kn_vae_forward, when
 * cfg.property_penalty names a property head and cfg.property_weight W != 0, first draws B
 * codes z ~ N(0, I) from (seed, KN_STREAM_AUX + step) with salt PROP_SALT (no other draw of
 * the step changes), decodes them, x^ = decode(z) (after the sigmoid for Bernoulli models, as
 * knobs_model_decode), encodes x^ to its posterior mean mu(x^), and adds
 *     W * mean_i head(mu_i)
 * to the loss. Its gradient reaches the DECODER's parameters only: the encoder is a fixed
 * map here (kn_stack_backward_input: the encoder's parameter gradients from this term are not
 * taken). Then the VAE stacks' activation gradients are zeroed, so the step's main forward and
 * backward see clean stacks; the pass runs before the main forward so that forward's
 * activations are those the step's backward uses.
 *
 * Not here: stacks with batch norm (the VAE architectures have none; the pass would update a
 * BN layer's running statistics with the decodes), families with their own forward (refused by
 * config validation through kn_model_ops.property_penalty). */
#include <string.h>

#include "models/model.h"

#define PROP_SALT 0x50524F50ull /* "PROP": the penalty's draw of the step */

static int bernoulli(const knobs_model *m) { return !strcmp(m->cfg.likelihood, "bernoulli"); }

knobs_status kn_prop_penalty_open(knobs_model *m) {
  kn_prop_penalty *p = &m->prop;
  const char *path = m->cfg.property_penalty;
  if (!path[0]) return KNOBS_OK;
  knobs_status s = knobs_head_load(path, &p->head);
  if (s) return kn_err_prefix(s, "property_penalty");
  if (knobs_head_dim(p->head) != m->Z)
    return kn_err(KNOBS_ERR_ARG, "property_penalty %s: the head takes codes of %d latents, the model has %d", path,
                  knobs_head_dim(p->head), m->Z);
  p->on = m->cfg.property_weight != 0;
  for (int i = 0; p->on && i < m->nstacks; i++)
    if (m->stacks[i] == &m->enc) m->want_dx[i] = 1; /* the pass needs d mu / d x^ */
  return KNOBS_OK;
}

knobs_status kn_prop_penalty_alloc(knobs_model *m) {
  kn_prop_penalty *p = &m->prop;
  if (!p->on) return KNOBS_OK;
  size_t B = (size_t)m->B, Z = (size_t)m->Z;
  p->z = kn_alloc(sizeof(float) * B * Z, "property penalty codes");
  p->mu = kn_alloc(sizeof(float) * B * Z, "property penalty codes");
  p->dmu = kn_alloc(sizeof(float) * B * Z, "property penalty gradients");
  p->y = kn_alloc(sizeof(double) * B, "property penalty predictions");
  p->x = bernoulli(m) ? kn_alloc(sizeof(float) * B * m->D, "property penalty decodes") : NULL;
  if (!p->z || !p->mu || !p->dmu || !p->y || (bernoulli(m) && !p->x)) return KNOBS_ERR_NOMEM;
  return KNOBS_OK;
}

void kn_prop_penalty_free(knobs_model *m) {
  kn_prop_penalty *p = &m->prop;
  knobs_head_free(p->head);
  kn_free(p->z), kn_free(p->x), kn_free(p->mu), kn_free(p->dmu), kn_free(p->y);
  memset(p, 0, sizeof *p);
}

knobs_status kn_prop_penalty_pass(knobs_model *m) {
  kn_prop_penalty *p = &m->prop;
  if (!p->on) return KNOBS_OK;
  int B = m->B, Z = m->Z, conv = !strcmp(m->cfg.arch, "conv");
  size_t n = (size_t)B * m->D;
  kn_rng r;
  kn_model_rng(m, KN_STREAM_AUX, PROP_SALT, &r);
  kn_rng_normal_fill(&r, p->z, (size_t)B * Z);
  /* x^ = decode(z), in the decoder's layout: (C,B,H,W) for conv (the encoder takes it as
   * channel-major input, so no transpose either way), (B,D) for mlp */
  const float *y = kn_stack_forward(&m->dec, p->z, B, 0), *xh = y;
  if (bernoulli(m)) {
    kn_sigmoid_forward(m->pool, p->x, y, n);
    xh = p->x;
  }
  const float *h = kn_stack_forward(&m->enc, xh, B, conv);
  for (int b = 0; b < B; b++) memcpy(p->mu + (size_t)b * Z, h + (size_t)b * 2 * Z, sizeof(float) * (size_t)Z);
  memset(p->dmu, 0, sizeof(float) * (size_t)B * Z);
  knobs_status s = knobs_head_eval(p->head, p->mu, B, p->y, NULL, p->dmu);
  if (s) return kn_err_prefix(s, "property penalty (%s)", m->cfg.property_penalty);
  double sum = 0;
  for (int b = 0; b < B; b++) sum += p->y[b];
  p->value = sum / B;
  /* d(W mean_i head(mu_i)) / d mu_i = (W / B) d head / d mu_i, into the encoder's mu columns */
  float scale = (float)(m->cfg.property_weight / B);
  kn_stack_zero_grad(&m->enc);
  kn_stack_zero_grad(&m->dec);
  float *dh = kn_stack_dout(&m->enc);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Z; k++) dh[(size_t)b * 2 * Z + k] = scale * p->dmu[(size_t)b * Z + k];
  kn_stack_backward_input(&m->enc, B);
  float *dy = kn_stack_dout(&m->dec);
  if (bernoulli(m)) kn_sigmoid_backward(m->pool, dy, m->enc.dx_in, p->x, n);
  else
    for (size_t i = 0; i < n; i++) dy[i] += m->enc.dx_in[i];
  kn_stack_backward(&m->dec, B); /* the decoder's parameter gradients accumulate into net.g */
  kn_stack_zero_grad(&m->enc);
  kn_stack_zero_grad(&m->dec);
  return KNOBS_OK;
}
