/* extra.c: the two engine pieces the issue-4 models need beyond the foundation: a softmax
 * cross-entropy (InfoGAN's categorical code, FactorVAE's two-class discriminator) and a
 * backward pass through a stack that yields only its input gradient (a loss that must reach a
 * stack's input but not its parameters). Formulas at the declarations in nn.h.
 * It does not change any existing kernel: kn_stack_backward_input mirrors kn_stack_backward
 * layer by layer with every parameter-gradient pointer NULL (the kernels skip those). */
#include <math.h>

#include "nn/nn.h"

double kn_softmax_xent(float *dlogits, double *per, const float *logits, const int32_t *target,
                       int B, int K, int ld, float scale) {
  double total = 0;
  for (int b = 0; b < B; b++) {
    const float *l = logits + (size_t)b * ld;
    int t = target[b];
    KN_ASSERT(t >= 0 && t < K);
    double mx = l[0];
    for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
    double s = 0;
    for (int k = 0; k < K; k++) s += exp((double)l[k] - mx); /* >= 1: the log is finite */
    double lse = mx + log(s), loss = lse - (double)l[t];
    if (per) per[b] = loss;
    total += loss;
    if (dlogits) {
      float *d = dlogits + (size_t)b * ld;
      double g = (double)scale / B;
      for (int k = 0; k < K; k++) d[k] += (float)(g * (exp((double)l[k] - lse) - (k == t)));
    }
  }
  return total / B;
}

void kn_stack_backward_input(kn_stack *s, int B) {
  KN_ASSERT(s->want_dx && s->dx_in);
  kn_net *net = s->net;
  kn_pool *p = net->pool;
  int convert_back = s->spatial_in && s->in_c > 1 && !s->x_was_cm;
  for (int l = s->n - 1; l >= 0; l--) {
    kn_layer *L = &s->L[l];
    const float *dout = s->dact + L->out_off, *out = s->act + L->out_off;
    const float *in = l ? s->act + s->L[l - 1].out_off : s->x_last;
    float *din = l ? s->dact + s->L[l - 1].out_off : (convert_back ? s->dxcb : s->dx_in);
    size_t n = (size_t)L->out_c * L->out_h * L->out_w * B;
    switch (L->kind) {
    case KN_LINEAR:
      kn_linear_backward(p, din, NULL, NULL, dout, in, kn_param_ptr(net, L->w), B, L->in_c, L->out_c);
      break;
    case KN_CONV:
    case KN_CONVT: {
      kn_conv g;
      if (L->kind == KN_CONV) {
        kn_conv_geom(&g, B, L->in_c, L->in_h, L->in_w, L->out_c, L->kh, L->kw, L->stride, L->pad);
        kn_conv2d_backward(p, din, NULL, NULL, dout, in, kn_param_ptr(net, L->w), &g, net->scratch);
      } else {
        kn_convt_geom(&g, B, L->in_c, L->in_h, L->in_w, L->out_c, L->kh, L->kw, L->stride, L->pad);
        kn_convt2d_backward(p, din, NULL, NULL, dout, in, kn_param_ptr(net, L->w), &g, net->scratch);
      }
      break;
    }
    case KN_RELU: kn_relu_backward(p, din, dout, out, n); break;
    case KN_LRELU: kn_lrelu_backward(p, din, dout, out, L->slope, n); break;
    case KN_TANH: kn_tanh_backward(p, din, dout, out, n); break;
    case KN_SIGMOID: kn_sigmoid_backward(p, din, dout, out, n); break;
    case KN_BN: {
      KN_ASSERT(s->training);
      long S = (long)L->in_h * L->in_w;
      long M = L->spatial_in ? B * S : B, cs = L->spatial_in ? B * S : 1, ms = L->spatial_in ? 1 : L->in_c;
      float *aux = s->aux + L->aux_off;
      kn_bn_backward(p, din, NULL, NULL, dout, in, kn_param_ptr(net, L->w), aux, aux + L->in_c, L->in_c, M, cs, ms);
      break;
    }
    case KN_FLATTEN: kn_bcs_to_cbs(p, din, dout, B, L->in_c, (long)L->in_h * L->in_w, 1); break;
    case KN_UNFLATTEN: kn_cbs_to_bcs(p, din, dout, B, L->out_c, (long)L->out_h * L->out_w, 1); break;
    }
  }
  if (convert_back) kn_cbs_to_bcs(p, s->dx_in, s->dxcb, B, s->in_c, (long)s->in_h * s->in_w, 1);
}
