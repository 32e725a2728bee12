/* stack.c: the parameter table and the layer stack.
 *
 * A kn_net owns one block of parameters, one of gradients and one of buffers (BN running
 * statistics); its stacks (encoder, decoder, discriminator ...) each own one block of
 * activations and one of activation gradients, sized for a batch capacity when the net is
 * allocated. Parameter names are PyTorch's state_dict names for the equivalent module, so a
 * checkpoint loads with load_state_dict. Offsets are assigned by optimizer group, then in
 * declaration order, so each optimizer updates one contiguous range. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/nn.h"

int kn_net_add_param(kn_net *net, const char *name, int ndim, const int64_t *shape, int buffer, int group) {
  KN_ASSERT(net->np < KN_MAX_PARAMS && ndim >= 0 && ndim <= 4);
  kn_param *q = &net->P[net->np];
  memset(q, 0, sizeof *q);
  kn_strfmt(q->name, sizeof q->name, "%s", name);
  q->ndim = ndim;
  q->n = 1;
  for (int i = 0; i < ndim; i++) {
    q->shape[i] = shape[i];
    q->n *= (size_t)shape[i];
  }
  q->buffer = buffer;
  q->group = group;
  return net->np++;
}

int kn_net_find(const kn_net *net, const char *name) {
  for (int i = 0; i < net->np; i++)
    if (!strcmp(net->P[i].name, name)) return i;
  return -1;
}

float *kn_param_ptr(kn_net *net, int idx) {
  if (idx < 0) return NULL;
  return (net->P[idx].buffer ? net->buf : net->p) + net->P[idx].off;
}

float *kn_grad_ptr(kn_net *net, int idx) {
  if (idx < 0 || net->P[idx].buffer) return NULL;
  return net->g + net->P[idx].off;
}

void kn_net_group_range(const kn_net *net, int g, size_t *off, size_t *n) {
  size_t lo = (size_t)-1, hi = 0;
  for (int i = 0; i < net->np; i++)
    if (!net->P[i].buffer && net->P[i].group == g) {
      if (net->P[i].off < lo) lo = net->P[i].off;
      if (net->P[i].off + net->P[i].n > hi) hi = net->P[i].off + net->P[i].n;
    }
  *off = lo == (size_t)-1 ? 0 : lo;
  *n = hi > *off ? hi - *off : 0;
}

/* ---- building ---------------------------------------------------------------------------- */

void kn_stack_begin(kn_stack *s, kn_net *net, const char *prefix, int c, int h, int w, int spatial) {
  memset(s, 0, sizeof *s);
  s->net = net;
  kn_strfmt(s->prefix, sizeof s->prefix, "%s", prefix);
  s->in_c = c;
  s->in_h = h;
  s->in_w = w;
  s->spatial_in = spatial;
  s->training = 1;
}

static kn_layer *push(kn_stack *s, kn_layer_kind kind) {
  KN_ASSERT(s->n < KN_MAX_LAYERS);
  kn_layer *L = &s->L[s->n];
  memset(L, 0, sizeof *L);
  L->kind = kind;
  L->w = L->b = L->rm = L->rv = L->nbt = -1;
  L->heads = 1;
  if (s->n == 0) {
    L->in_c = s->in_c, L->in_h = s->in_h, L->in_w = s->in_w, L->spatial_in = s->spatial_in;
  } else {
    kn_layer *P = &s->L[s->n - 1];
    L->in_c = P->out_c, L->in_h = P->out_h, L->in_w = P->out_w, L->spatial_in = P->spatial_out;
  }
  L->out_c = L->in_c, L->out_h = L->in_h, L->out_w = L->in_w, L->spatial_out = L->spatial_in;
  s->n++;
  return L;
}

static void layer_name(kn_stack *s, char *buf, size_t n, const char *name, const char *kind, int idx) {
  if (name) kn_strfmt(buf, n, "%s.%s", s->prefix, name);
  else kn_strfmt(buf, n, "%s.%s%d", s->prefix, kind, idx);
}

static void add_wb(kn_stack *s, kn_layer *L, const char *base, int wdim, const int64_t *wshape, int bias_n, int group) {
  char nm[64];
  kn_strfmt(nm, sizeof nm, "%s.weight", base);
  L->w = kn_net_add_param(s->net, nm, wdim, wshape, 0, group);
  kn_strfmt(nm, sizeof nm, "%s.bias", base);
  int64_t bs[1] = {bias_n};
  L->b = kn_net_add_param(s->net, nm, 1, bs, 0, group);
}

void kn_stack_linear(kn_stack *s, int out, const char *name, int group) {
  kn_layer *L = push(s, KN_LINEAR);
  KN_ASSERT(!L->spatial_in && L->in_h == 1 && L->in_w == 1);
  L->out_c = out;
  char base[64];
  layer_name(s, base, sizeof base, name, "fc", ++s->n_fc);
  int64_t ws[2] = {out, L->in_c};
  add_wb(s, L, base, 2, ws, out, group);
}

void kn_stack_linear_heads(kn_stack *s, int out, int h, const char *const *names, int group) {
  kn_layer *L = push(s, KN_LINEAR);
  KN_ASSERT(!L->spatial_in && L->in_h == 1 && L->in_w == 1 && h >= 1);
  L->out_c = out * h;
  L->heads = h;
  char nm[64];
  int64_t ws[2] = {out, L->in_c}, bs[1] = {out};
  for (int i = 0; i < h; i++) {
    kn_strfmt(nm, sizeof nm, "%s.%s.weight", s->prefix, names[i]);
    int idx = kn_net_add_param(s->net, nm, 2, ws, 0, group);
    if (i == 0) L->w = idx;
  }
  for (int i = 0; i < h; i++) {
    kn_strfmt(nm, sizeof nm, "%s.%s.bias", s->prefix, names[i]);
    int idx = kn_net_add_param(s->net, nm, 1, bs, 0, group);
    if (i == 0) L->b = idx;
  }
}

void kn_stack_conv(kn_stack *s, int k, int ksize, int stride, int pad, const char *name, int group) {
  kn_layer *L = push(s, KN_CONV);
  KN_ASSERT(L->spatial_in);
  L->kh = L->kw = ksize, L->stride = stride, L->pad = pad;
  L->out_c = k;
  L->out_h = (L->in_h + 2 * pad - ksize) / stride + 1;
  L->out_w = (L->in_w + 2 * pad - ksize) / stride + 1;
  KN_ASSERT(L->out_h > 0 && L->out_w > 0);
  char base[64];
  layer_name(s, base, sizeof base, name, "conv", ++s->n_conv);
  int64_t ws[4] = {k, L->in_c, ksize, ksize};
  add_wb(s, L, base, 4, ws, k, group);
}

void kn_stack_convt(kn_stack *s, int k, int ksize, int stride, int pad, const char *name, int group) {
  kn_layer *L = push(s, KN_CONVT);
  KN_ASSERT(L->spatial_in);
  L->kh = L->kw = ksize, L->stride = stride, L->pad = pad;
  L->out_c = k;
  L->out_h = (L->in_h - 1) * stride - 2 * pad + ksize;
  L->out_w = (L->in_w - 1) * stride - 2 * pad + ksize;
  KN_ASSERT(L->out_h > 0 && L->out_w > 0);
  char base[64];
  layer_name(s, base, sizeof base, name, "deconv", ++s->n_convt);
  int64_t ws[4] = {L->in_c, k, ksize, ksize};
  add_wb(s, L, base, 4, ws, k, group);
}

void kn_stack_bn(kn_stack *s, const char *name, int group) {
  kn_layer *L = push(s, KN_BN);
  char base[64], nm[64];
  layer_name(s, base, sizeof base, name, "bn", ++s->n_bn);
  int64_t cs[1] = {L->in_c};
  kn_strfmt(nm, sizeof nm, "%s.weight", base);
  L->w = kn_net_add_param(s->net, nm, 1, cs, 0, group);
  kn_strfmt(nm, sizeof nm, "%s.bias", base);
  L->b = kn_net_add_param(s->net, nm, 1, cs, 0, group);
  kn_strfmt(nm, sizeof nm, "%s.running_mean", base);
  L->rm = kn_net_add_param(s->net, nm, 1, cs, 1, group);
  kn_strfmt(nm, sizeof nm, "%s.running_var", base);
  L->rv = kn_net_add_param(s->net, nm, 1, cs, 1, group);
  kn_strfmt(nm, sizeof nm, "%s.num_batches_tracked", base);
  L->nbt = kn_net_add_param(s->net, nm, 0, NULL, 1, group);
}

void kn_stack_act(kn_stack *s, kn_layer_kind kind, float slope) {
  KN_ASSERT(kind == KN_RELU || kind == KN_LRELU || kind == KN_TANH || kind == KN_SIGMOID);
  kn_layer *L = push(s, kind);
  L->slope = slope;
}

void kn_stack_flatten(kn_stack *s) {
  kn_layer *L = push(s, KN_FLATTEN);
  KN_ASSERT(L->spatial_in);
  L->out_c = L->in_c * L->in_h * L->in_w;
  L->out_h = L->out_w = 1;
  L->spatial_out = 0;
}

void kn_stack_unflatten(kn_stack *s, int c, int h, int w) {
  kn_layer *L = push(s, KN_UNFLATTEN);
  KN_ASSERT(!L->spatial_in && L->in_c == c * h * w);
  L->out_c = c, L->out_h = h, L->out_w = w;
  L->spatial_out = 1;
}

static long layer_out(const kn_layer *L) { return (long)L->out_c * L->out_h * L->out_w; }
static long stack_in(const kn_stack *s) { return (long)s->in_c * s->in_h * s->in_w; }
long kn_stack_out_size(const kn_stack *s) { return s->n ? layer_out(&s->L[s->n - 1]) : stack_in(s); }

/* ---- allocation and init ----------------------------------------------------------------- */

static void geom_of(const kn_layer *L, int B, kn_conv *g) {
  if (L->kind == KN_CONV) kn_conv_geom(g, B, L->in_c, L->in_h, L->in_w, L->out_c, L->kh, L->kw, L->stride, L->pad);
  else kn_convt_geom(g, B, L->in_c, L->in_h, L->in_w, L->out_c, L->kh, L->kw, L->stride, L->pad);
}

static int inplace_on = 1;
void kn_stack_inplace(int on) { inplace_on = on; }

knobs_status kn_net_alloc(kn_net *net, kn_stack **stacks, const int *want_dx, int nstacks, int cap) {
  /* offsets: parameters by group then declaration order; buffers in declaration order */
  int maxg = 0;
  for (int i = 0; i < net->np; i++)
    if (net->P[i].group > maxg) maxg = net->P[i].group;
  net->n_p = 0;
  net->n_buf = 0;
  for (int g = 0; g <= maxg; g++)
    for (int i = 0; i < net->np; i++)
      if (!net->P[i].buffer && net->P[i].group == g) {
        net->P[i].off = net->n_p;
        net->n_p += net->P[i].n;
      }
  for (int i = 0; i < net->np; i++)
    if (net->P[i].buffer) {
      net->P[i].off = net->n_buf;
      net->n_buf += net->P[i].n;
    }
  net->nt = kn_pool_size(net->pool);
  size_t scratch = 0;
  for (int k = 0; k < nstacks; k++) {
    kn_stack *s = stacks[k];
    s->cap = cap;
    s->want_dx = want_dx ? want_dx[k] : 0;
    size_t off = 0, aux = 0;
    for (int l = 0; l < s->n; l++) {
      kn_layer *L = &s->L[l];
      kn_layer_kind pk = l ? s->L[l - 1].kind : KN_FLATTEN;
      int act = L->kind == KN_RELU || L->kind == KN_LRELU || L->kind == KN_TANH || L->kind == KN_SIGMOID;
      L->inplace = inplace_on && act && l > 0 && (pk == KN_LINEAR || pk == KN_CONV || pk == KN_CONVT || pk == KN_BN);
      if (L->inplace) {
        L->out_off = s->L[l - 1].out_off;
        continue;
      }
      L->out_off = off;
      off += (size_t)layer_out(L) * cap;
      if (L->kind == KN_BN) {
        L->aux_off = aux;
        aux += 2 * (size_t)L->in_c;
      }
      if (L->kind == KN_CONV || L->kind == KN_CONVT) {
        kn_conv g;
        geom_of(L, cap, &g);
        size_t need = kn_conv_scratch(&g, net->nt);
        if (need > scratch) scratch = need;
      }
    }
    s->act_n = off;
    s->aux_n = aux;
  }
  net->p = kn_alloc(sizeof(float) * net->n_p, "parameters");
  net->g = kn_alloc(sizeof(float) * net->n_p, "gradients");
  net->buf = kn_alloc(sizeof(float) * (net->n_buf ? net->n_buf : 1), "buffers");
  net->scratch = kn_alloc(sizeof(float) * (scratch ? scratch : 1), "conv scratch");
  net->n_scratch = scratch;
  if (!net->p || !net->g || !net->buf || !net->scratch) return KNOBS_ERR_NOMEM;
  for (int k = 0; k < nstacks; k++) {
    kn_stack *s = stacks[k];
    size_t in = (size_t)stack_in(s) * cap;
    s->act = kn_alloc(sizeof(float) * s->act_n, "activations");
    s->dact = kn_alloc(sizeof(float) * s->act_n, "activation gradients");
    s->aux = kn_alloc(sizeof(float) * (s->aux_n ? s->aux_n : 1), "batch-norm statistics");
    if (!s->act || !s->dact || !s->aux) return KNOBS_ERR_NOMEM;
    if (s->spatial_in && s->in_c > 1) {
      s->xcb = kn_alloc(sizeof(float) * in, "input transpose");
      if (!s->xcb) return KNOBS_ERR_NOMEM;
    }
    if (s->want_dx) {
      s->dx_in = kn_alloc(sizeof(float) * in, "input gradient");
      if (!s->dx_in) return KNOBS_ERR_NOMEM;
      if (s->spatial_in && s->in_c > 1 && !(s->dxcb = kn_alloc(sizeof(float) * in, "input gradient")))
        return KNOBS_ERR_NOMEM;
    }
  }
  return KNOBS_OK;
}

static void uniform(kn_rng *r, float *x, size_t n, double bound) {
  for (size_t i = 0; i < n; i++) x[i] = (float)((2.0 * kn_rng_uniform(r) - 1.0) * bound);
}

void kn_net_init(kn_net *net, kn_stack **stacks, int nstacks, kn_rng *r) {
  for (int k = 0; k < nstacks; k++) {
    kn_stack *s = stacks[k];
    for (int l = 0; l < s->n; l++) {
      kn_layer *L = &s->L[l];
      if (L->kind == KN_LINEAR || L->kind == KN_CONV || L->kind == KN_CONVT) {
        kn_param *W = &net->P[L->w];
        /* PyTorch's fan_in: weight.size(1) * receptive field (for ConvTranspose2d that is
         * out_channels, because its weight is (in, out, kh, kw)) */
        double fan_in = (double)W->shape[1];
        for (int d = 2; d < W->ndim; d++) fan_in *= (double)W->shape[d];
        double bound = 1.0 / sqrt(fan_in);
        uniform(r, kn_param_ptr(net, L->w), W->n * (size_t)L->heads, bound);
        uniform(r, kn_param_ptr(net, L->b), net->P[L->b].n * (size_t)L->heads, bound);
      } else if (L->kind == KN_BN) {
        float *g = kn_param_ptr(net, L->w), *b = kn_param_ptr(net, L->b);
        float *rm = kn_param_ptr(net, L->rm), *rv = kn_param_ptr(net, L->rv);
        for (int c = 0; c < L->in_c; c++) g[c] = 1, b[c] = 0, rm[c] = 0, rv[c] = 1;
        *kn_param_ptr(net, L->nbt) = 0;
      }
    }
  }
}

void kn_net_free(kn_net *net) {
  if (!net) return;
  kn_free(net->p);
  kn_free(net->g);
  kn_free(net->buf);
  kn_free(net->scratch);
  net->p = net->g = net->buf = net->scratch = NULL;
}

/* ---- forward / backward ------------------------------------------------------------------ */

static int profiling;
void kn_stack_profile(int on) { profiling = on; }

const float *kn_stack_out(const kn_stack *s) {
  return s->n ? s->act + s->L[s->n - 1].out_off : s->x_last;
}

float *kn_stack_dout(kn_stack *s) {
  KN_ASSERT(s->n > 0);
  return s->dact + s->L[s->n - 1].out_off;
}

void kn_stack_zero_grad(kn_stack *s) {
  memset(s->dact, 0, sizeof(float) * s->act_n);
  size_t in = (size_t)stack_in(s) * s->cap;
  if (s->dx_in) memset(s->dx_in, 0, sizeof(float) * in);
  if (s->dxcb) memset(s->dxcb, 0, sizeof(float) * in);
}

const float *kn_stack_forward(kn_stack *s, const float *x, int B, int channel_major) {
  KN_ASSERT(B > 0 && B <= s->cap);
  kn_net *net = s->net;
  kn_pool *p = net->pool;
  const float *in = x;
  s->x_was_cm = channel_major;
  if (s->spatial_in && s->in_c > 1 && !channel_major) {
    kn_bcs_to_cbs(p, s->xcb, x, B, s->in_c, (long)s->in_h * s->in_w, 0);
    in = s->xcb;
  }
  s->x_last = in;
  for (int l = 0; l < s->n; l++) {
    kn_layer *L = &s->L[l];
    float *out = s->act + L->out_off;
    size_t n = (size_t)layer_out(L) * B;
    double t0 = profiling ? kn_now() : 0;
    switch (L->kind) {
    case KN_LINEAR:
      kn_linear_forward(p, out, in, kn_param_ptr(net, L->w), kn_param_ptr(net, L->b), B, L->in_c, L->out_c);
      break;
    case KN_CONV:
    case KN_CONVT: {
      kn_conv g;
      geom_of(L, B, &g);
      if (L->kind == KN_CONV) kn_conv2d_forward(p, out, in, kn_param_ptr(net, L->w), kn_param_ptr(net, L->b), &g, net->scratch);
      else kn_convt2d_forward(p, out, in, kn_param_ptr(net, L->w), kn_param_ptr(net, L->b), &g, net->scratch);
      break;
    }
    case KN_RELU: kn_relu_forward(p, out, in, n); break;
    case KN_LRELU: kn_lrelu_forward(p, out, in, L->slope, n); break;
    case KN_TANH: kn_tanh_forward(p, out, in, n); break;
    case KN_SIGMOID: kn_sigmoid_forward(p, out, in, n); break;
    case KN_BN: {
      long S = (long)L->in_h * L->in_w;
      long M = L->spatial_in ? B * S : B, cs = L->spatial_in ? B * S : 1, ms = L->spatial_in ? 1 : L->in_c;
      float *aux = s->aux + L->aux_off;
      kn_bn_forward(p, out, in, kn_param_ptr(net, L->w), kn_param_ptr(net, L->b), aux, aux + L->in_c,
                    kn_param_ptr(net, L->rm), kn_param_ptr(net, L->rv), s->training, 0.1f, 1e-5f,
                    L->in_c, M, cs, ms);
      if (s->training) *kn_param_ptr(net, L->nbt) += 1.0f;
      break;
    }
    case KN_FLATTEN: kn_cbs_to_bcs(p, out, in, B, L->in_c, (long)L->in_h * L->in_w, 0); break;
    case KN_UNFLATTEN: kn_bcs_to_cbs(p, out, in, B, L->out_c, (long)L->out_h * L->out_w, 0); break;
    }
    if (profiling) L->t_fwd += kn_now() - t0;
    in = out;
  }
  return kn_stack_out(s);
}

void kn_stack_backward(kn_stack *s, int B) {
  kn_net *net = s->net;
  kn_pool *p = net->pool;
  int convert_back = s->want_dx && s->spatial_in && s->in_c > 1 && !s->x_was_cm;
  for (int l = s->n - 1; l >= 0; l--) {
    kn_layer *L = &s->L[l];
    const float *dout = s->dact + L->out_off, *out = s->act + L->out_off;
    const float *in = l ? s->act + s->L[l - 1].out_off : s->x_last;
    float *din = l ? s->dact + s->L[l - 1].out_off : (s->want_dx ? (convert_back ? s->dxcb : s->dx_in) : NULL);
    size_t n = (size_t)layer_out(L) * B;
    double t0 = profiling ? kn_now() : 0;
    switch (L->kind) {
    case KN_LINEAR:
      kn_linear_backward(p, din, kn_grad_ptr(net, L->w), kn_grad_ptr(net, L->b), dout, in,
                         kn_param_ptr(net, L->w), B, L->in_c, L->out_c);
      break;
    case KN_CONV:
    case KN_CONVT: {
      kn_conv g;
      geom_of(L, B, &g);
      if (L->kind == KN_CONV)
        kn_conv2d_backward(p, din, kn_grad_ptr(net, L->w), kn_grad_ptr(net, L->b), dout, in, kn_param_ptr(net, L->w), &g, net->scratch);
      else
        kn_convt2d_backward(p, din, kn_grad_ptr(net, L->w), kn_grad_ptr(net, L->b), dout, in, kn_param_ptr(net, L->w), &g, net->scratch);
      break;
    }
    case KN_RELU: if (din) kn_relu_backward(p, din, dout, out, n); break;
    case KN_LRELU: if (din) kn_lrelu_backward(p, din, dout, out, L->slope, n); break;
    case KN_TANH: if (din) kn_tanh_backward(p, din, dout, out, n); break;
    case KN_SIGMOID: if (din) kn_sigmoid_backward(p, din, dout, out, n); break;
    case KN_BN: {
      KN_ASSERT(s->training);
      long S = (long)L->in_h * L->in_w;
      long M = L->spatial_in ? B * S : B, cs = L->spatial_in ? B * S : 1, ms = L->spatial_in ? 1 : L->in_c;
      float *aux = s->aux + L->aux_off;
      kn_bn_backward(p, din, kn_grad_ptr(net, L->w), kn_grad_ptr(net, L->b), dout, in,
                     kn_param_ptr(net, L->w), aux, aux + L->in_c, L->in_c, M, cs, ms);
      break;
    }
    case KN_FLATTEN: if (din) kn_bcs_to_cbs(p, din, dout, B, L->in_c, (long)L->in_h * L->in_w, 1); break;
    case KN_UNFLATTEN: if (din) kn_cbs_to_bcs(p, din, dout, B, L->out_c, (long)L->out_h * L->out_w, 1); break;
    }
    if (profiling) L->t_bwd += kn_now() - t0;
  }
  if (convert_back) kn_cbs_to_bcs(p, s->dx_in, s->dxcb, B, s->in_c, (long)s->in_h * s->in_w, 1);
}
