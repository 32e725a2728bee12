/* nn.h: the neural-network engine: kernels with explicit forward and backward, the parameter
 * table, the layer stack, losses and Adam.
 *
 * Kernel conventions (after llm.c): outputs first, then inputs, weights, dims. Backward ADDS
 * into every gradient buffer (dx, dW, db ...), and any of them may be NULL to skip it. Shapes
 * are written outermost first. Two activation layouts exist:
 *   vector   (B,F) row-major, used by linear layers;
 *   spatial  (C,B,H,W) channel-major, used by conv layers: im2col + GEMM over the whole batch
 *            writes the next layer's input directly (see docs/architecture.md).
 * Parallel kernels split work so each thread owns its output; reductions over the batch go to
 * per-thread scratch summed in a fixed order, so results depend only on the thread count. */
#ifndef KN_NN_H
#define KN_NN_H
#include "core/core.h"

/* ---- dense ----------------------------------------------------------------------------- */
/* y (B,O) = x (B,I) W^T + b, with W (O,I) and b (O) (b may be NULL), as torch.nn.Linear. */
void kn_linear_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                       int B, int I, int O);
/* dx (B,I) += dy W; dW (O,I) += dy^T x; db (O) += sum_b dy. */
void kn_linear_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, int B, int I, int O);

/* ---- convolution ----------------------------------------------------------------------- */
/* Geometry of a conv (or of the conv whose adjoint a transposed conv is): B images of C
 * channels H x W in, K channels OH x OW out, kernel kh x kw, stride, zero padding. */
typedef struct {
  int B, C, H, W, K, kh, kw, stride, pad, OH, OW;
  int transposed; /* set by kn_convt_geom: the geometry of a transposed conv */
} kn_conv;
/* Fill s for a conv: OH = (H + 2 pad - kh) / stride + 1 (floor), as torch.nn.Conv2d. */
void kn_conv_geom(kn_conv *s, int B, int C, int H, int W, int K, int kh, int kw, int stride, int pad);
/* Fill s for a transposed conv with input (C,H,W) and K output channels:
 * OH = (H - 1) stride - 2 pad + kh, as torch.nn.ConvTranspose2d (output_padding 0). */
void kn_convt_geom(kn_conv *s, int B, int C, int H, int W, int K, int kh, int kw, int stride, int pad);
/* Scratch floats a conv or transposed conv of this geometry needs with nt threads: per thread
 * one im2col chunk of the direction it runs (a conv's own, or a transposed conv's) and one
 * weight-gradient partial. */
size_t kn_conv_scratch(const kn_conv *s, int nt);

/* conv2d: y (K,B,OH,OW) = W (K,C,kh,kw) * x (C,B,H,W) + b (K), cross-correlation as PyTorch. */
void kn_conv2d_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                       const kn_conv *s, float *scratch);
void kn_conv2d_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                        const float *x, const float *W, const kn_conv *s, float *scratch);
/* transposed conv2d: y (K,B,OH,OW) from x (C,B,H,W) with W (C,K,kh,kw) (PyTorch's
 * ConvTranspose2d layout: in, out, kh, kw) and b (K): the adjoint of conv2d in x. */
void kn_convt2d_forward(kn_pool *p, float *y, const float *x, const float *W, const float *b,
                        const kn_conv *s, float *scratch);
void kn_convt2d_backward(kn_pool *p, float *dx, float *dW, float *db, const float *dy,
                         const float *x, const float *W, const kn_conv *s, float *scratch);

/* ---- elementwise ----------------------------------------------------------------------- */
/* Backward of each activation uses its OUTPUT y (cheaper to keep than the input). In place is
 * allowed: forward with y == x, and backward with dx == dy, which then SETS dx = dy f'(y)
 * (the one exception to "backward adds"; the stack runs activations in place, see
 * kn_layer.inplace). */
void kn_relu_forward(kn_pool *p, float *y, const float *x, size_t n);
void kn_relu_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n);
void kn_lrelu_forward(kn_pool *p, float *y, const float *x, float slope, size_t n);
void kn_lrelu_backward(kn_pool *p, float *dx, const float *dy, const float *y, float slope, size_t n);
void kn_tanh_forward(kn_pool *p, float *y, const float *x, size_t n);
void kn_tanh_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n);
void kn_sigmoid_forward(kn_pool *p, float *y, const float *x, size_t n);
void kn_sigmoid_backward(kn_pool *p, float *dx, const float *dy, const float *y, size_t n);

/* ---- batch norm ------------------------------------------------------------------------ */
/* Batch normalisation over C channels of M values each, element (c, m) at x[c*cs + m*ms]
 * (spatial layout: cs = B*H*W, ms = 1; vector layout (B,C): cs = 1, ms = C). As torch's
 * BatchNorm1d/2d: training normalises with the biased batch variance and updates running
 * stats with momentum and the unbiased variance; eval uses the running stats.
 * mean/invstd (C) are saved for backward. */
void kn_bn_forward(kn_pool *p, float *y, const float *x, const float *gamma, const float *beta,
                   float *mean, float *invstd, float *run_mean, float *run_var, int training,
                   float momentum, float eps, int C, long M, long cs, long ms);
/* Training-mode backward: dx += ..., dgamma += sum dy xhat, dbeta += sum dy. */
void kn_bn_backward(kn_pool *p, float *dx, float *dgamma, float *dbeta, const float *dy,
                    const float *x, const float *gamma, const float *mean, const float *invstd,
                    int C, long M, long cs, long ms);

/* ---- layout ---------------------------------------------------------------------------- */
/* (B,C,S) <-> (C,B,S) transposes (S = H*W); `add` accumulates into dst instead of overwriting. */
void kn_bcs_to_cbs(kn_pool *p, float *dst, const float *src, int B, int C, long S, int add);
void kn_cbs_to_bcs(kn_pool *p, float *dst, const float *src, int B, int C, long S, int add);

/* ---- losses (reduced as disentanglement_lib: mean over the batch of per-example sums) ----- */
/* Bernoulli log-likelihood with logits: per element max(l,0) - l x + log(1 + exp(-|l|)).
 * Returns the batch mean of per-example sums (double); per-example sums to `per` if non-NULL;
 * dlogits += scale * (sigmoid(l) - x) / B if dlogits is non-NULL. n = elements per example. */
double kn_bernoulli_loss(kn_pool *p, float *dlogits, double *per, const float *logits,
                         const float *x, int B, long n, float scale);
/* Gaussian (unit variance, as the reference's l2 loss): per example sum (mu - x)^2;
 * dmu += scale * 2 (mu - x) / B. */
double kn_gaussian_loss(kn_pool *p, float *dmu, double *per, const float *mu, const float *x,
                        int B, long n, float scale);
/* KL(N(mu, exp(lv)) || N(0, I)) per example = 0.5 sum (mu^2 + exp(lv) - lv - 1), batch mean;
 * per-dimension batch means to kl_dim (Z) if non-NULL; dmu += scale mu / B,
 * dlv += scale 0.5 (exp(lv) - 1) / B. */
double kn_gauss_kl(float *dmu, float *dlv, double *kl_dim, const float *mu, const float *lv,
                   int B, int Z, float scale);
/* z = mu + exp(lv / 2) * eps (the reparameterization); backward: dmu += dz,
 * dlv += dz * eps * exp(lv / 2) / 2. */
void kn_reparam_forward(float *z, const float *mu, const float *lv, const float *eps, size_t n);
void kn_reparam_backward(float *dmu, float *dlv, const float *dz, const float *lv,
                         const float *eps, size_t n);

/* ---- Adam ------------------------------------------------------------------------------ */
/* torch.optim.Adam (no weight decay, no amsgrad) on n parameters: with t the step count after
 * increment, m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
typedef struct {
  double lr, beta1, beta2, eps;
  long t;         /* steps taken */
  size_t off, n;  /* the parameter range it updates in the net's block */
  float *m, *v;   /* moments (n each), zero at start */
} kn_adam;
void kn_adam_step(kn_pool *p, kn_adam *a, float *param, const float *grad);

/* ---- parameter table and layer stack --------------------------------------------------- */
#define KN_MAX_PARAMS 96
#define KN_MAX_LAYERS 40

typedef struct {
  char name[64];      /* PyTorch state_dict name: "encoder.conv1.weight" */
  int ndim;
  int64_t shape[4];
  size_t off, n;      /* offset and count in the parameter (or buffer) block */
  int buffer;         /* 1: running statistic, not trained (lives in net->buf) */
  int group;          /* optimizer group (0 for most models) */
} kn_param;

typedef enum {
  KN_LINEAR, KN_CONV, KN_CONVT, KN_RELU, KN_LRELU, KN_TANH, KN_SIGMOID, KN_BN,
  KN_FLATTEN,   /* spatial (C,B,H,W) -> vector (B, C*H*W) in PyTorch's flatten order */
  KN_UNFLATTEN  /* vector (B, C*H*W) -> spatial (C,B,H,W) */
} kn_layer_kind;

typedef struct {
  kn_layer_kind kind;
  int in_c, in_h, in_w;     /* per-example input shape; vectors have in_h = in_w = 1 */
  int out_c, out_h, out_w;
  int spatial_in, spatial_out;
  int kh, kw, stride, pad;  /* conv, convt */
  float slope;              /* lrelu */
  int w, b;                 /* parameter indices (-1 if none); BN: gamma, beta */
  int heads;                /* linear: 1, or h fused heads (weights, then biases, contiguous) */
  int rm, rv, nbt;          /* BN buffers: running_mean, running_var, num_batches_tracked */
  size_t out_off;           /* this layer's output in the stack's activation block */
  int inplace;              /* an activation sharing its input's buffers (output and gradient):
                               after a linear, conv or BN layer, whose backward needs its input,
                               not its output, the activation overwrites that output */
  size_t aux_off;           /* BN: saved mean and invstd (2*C floats) in the aux block */
  double t_fwd, t_bwd;      /* seconds spent, when profiling (kn_stack_profile) */
} kn_layer;

typedef struct kn_net kn_net;
typedef struct {
  kn_net *net;
  char prefix[24];          /* "encoder", "decoder", ... */
  int n;
  kn_layer L[KN_MAX_LAYERS];
  int in_c, in_h, in_w, spatial_in;
  int cap;                  /* batch capacity */
  float *act, *dact;        /* layer outputs and their gradients, cap examples each */
  size_t act_n;             /* floats per block */
  float *aux;               /* BN saved statistics */
  size_t aux_n;
  float *dx_in;             /* gradient w.r.t. the stack input (cap examples) if wanted */
  float *xcb;               /* channel-major copy of a (B,C,H,W) input when C > 1 */
  float *dxcb;              /* its gradient before conversion back */
  const float *x_last;      /* the input of the last forward (channel-major if spatial) */
  int x_was_cm;             /* the last forward's input was given channel-major */
  int want_dx;
  int training;             /* BN mode */
  int counter;              /* name counters while building */
  int n_conv, n_convt, n_fc, n_bn;
} kn_stack;

struct kn_net {
  kn_param P[KN_MAX_PARAMS];
  int np;
  float *p, *g;             /* parameters and gradients: one block each */
  size_t n_p;
  float *buf;               /* buffers (BN running stats), one block */
  size_t n_buf;
  float *scratch;           /* conv scratch shared by all stacks (sized for the largest) */
  size_t n_scratch;
  kn_pool *pool;
  int nt;                   /* threads */
};

/* Building: declare stacks and layers (names follow PyTorch modules: "<prefix>.conv1",
 * ".deconv1", ".fc1", ".bn1"; an explicit name overrides), then kn_net_alloc sizes and
 * allocates everything for batch capacity `cap`, then kn_net_init draws PyTorch's default
 * initialisation. Parameters are grouped for optimizers by `group` at declaration. */
void kn_stack_begin(kn_stack *s, kn_net *net, const char *prefix, int c, int h, int w, int spatial);
void kn_stack_linear(kn_stack *s, int out, const char *name, int group);
/* h linear heads of `out` outputs each on the same input, fused into one (B, h*out) output
 * but named separately ("<prefix>.<names[i]>.weight" ...): the weights are declared first,
 * then the biases, so each kind is one contiguous (h*out, in) matrix. */
void kn_stack_linear_heads(kn_stack *s, int out, int h, const char *const *names, int group);
void kn_stack_conv(kn_stack *s, int k, int ksize, int stride, int pad, const char *name, int group);
void kn_stack_convt(kn_stack *s, int k, int ksize, int stride, int pad, const char *name, int group);
void kn_stack_bn(kn_stack *s, const char *name, int group);
void kn_stack_act(kn_stack *s, kn_layer_kind kind, float slope);
void kn_stack_flatten(kn_stack *s);
void kn_stack_unflatten(kn_stack *s, int c, int h, int w);
/* Output size per example of the stack. */
long kn_stack_out_size(const kn_stack *s);

/* Add a free-standing parameter (not part of a layer); returns its index. */
int kn_net_add_param(kn_net *net, const char *name, int ndim, const int64_t *shape, int buffer, int group);
/* Allocate parameters, gradients, buffers, and for each stack its activations at batch
 * capacity `cap` (and dx_in if want_dx). Returns status. */
knobs_status kn_net_alloc(kn_net *net, kn_stack **stacks, const int *want_dx, int nstacks, int cap);
/* PyTorch default init: Linear/Conv/ConvT weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (ConvTranspose2d's fan_in is out_channels * kh * kw, as PyTorch computes it); BN gamma 1,
 * beta 0, running_var 1. Draws from rng in declaration order. */
void kn_net_init(kn_net *net, kn_stack **stacks, int nstacks, kn_rng *r);
void kn_net_free(kn_net *net);
float *kn_param_ptr(kn_net *net, int idx);      /* data of parameter idx (params or buffers) */
float *kn_grad_ptr(kn_net *net, int idx);       /* its gradient (NULL for buffers) */
int kn_net_find(const kn_net *net, const char *name);
/* The range [off, off+n) of the parameter block holding group g (parameters of a group must
 * be declared contiguously). */
void kn_net_group_range(const kn_net *net, int g, size_t *off, size_t *n);

/* Forward B <= cap examples. For a spatial stack x is (B,C,H,W), or (C,B,H,W) if
 * `channel_major` (e.g. the output of another spatial stack); a vector stack takes (B,F).
 * Returns the output: (B,F) for a vector output, (C,B,H,W) for a spatial one. */
const float *kn_stack_forward(kn_stack *s, const float *x, int B, int channel_major);
/* Zero the stack's activation gradients (call before a loss adds into kn_stack_dout). */
void kn_stack_zero_grad(kn_stack *s);
/* The gradient buffer of the stack's output (same layout as the output), which losses add to. */
float *kn_stack_dout(kn_stack *s);
/* Backward through the stack for the B examples of the last forward. Parameter gradients
 * accumulate into net->g; if the stack was allocated with want_dx, s->dx_in receives the
 * input gradient in the layout the forward's input had. */
void kn_stack_backward(kn_stack *s, int B);
/* Output of the last forward. */
const float *kn_stack_out(const kn_stack *s);
/* Per-layer timing for benchmarks: when on, every stack adds each layer's forward and
 * backward seconds into its kn_layer.t_fwd / t_bwd. Process-wide switch, off by default. */
void kn_stack_profile(int on);
/* Activations in place (kn_layer.inplace) for stacks allocated from now on: on by default; off
 * keeps every pre-activation readable after a forward (tests that inspect them). */
void kn_stack_inplace(int on);

/* ---- additions for the issue-4 models (src/nn/extra.c) ------------------------------------ */
/* Softmax cross-entropy over K classes, as torch.nn.functional.cross_entropy (batch mean):
 * row b holds K logits at logits[b*ld .. b*ld+K) (ld >= K lets the classes be a slice of a
 * wider row); per example lse(l) - l[target[b]] (double, to `per` if non-NULL); returns the
 * batch mean; dlogits (same layout) += scale * (softmax(l) - onehot(target)) / B if non-NULL. */
double kn_softmax_xent(float *dlogits, double *per, const float *logits, const int32_t *target,
                       int B, int K, int ld, float scale);
/* Backward through the stack for the B examples of the last forward like kn_stack_backward,
 * but computing only the input gradient s->dx_in (the stack must want_dx): parameter
 * gradients are left untouched. For a loss whose gradient must reach the stack's input but
 * not its parameters (a GAN generator's loss through the discriminator, FactorVAE's total
 * correlation through its discriminator). Activation gradients accumulate as usual: zero them
 * first (kn_stack_zero_grad). */
void kn_stack_backward_input(kn_stack *s, int B);

/* ---- count likelihoods: negative binomial and zero-inflated NB (src/nn/counts.c) ---------- */
/* scVI's parameterisation (scvi-tools: scvi/distributions/_negative_binomial.py, log_nb_positive
 * and log_zinb_positive with eps = 1e-8; scvi/module/_vae.py): for cell b and gene g,
 *   px_scale[b,:] = softmax(logits[b,:]) over the G genes,
 *   mu[b,g] = l[b] px_scale[b,g], l[b] the library size (the observed total count of the cell),
 *   theta[g] = exp(px_r[g]) (gene-wise inverse dispersion),
 *   NB:   log p = theta (log(theta+eps) - log(theta+mu+eps)) + x (log(mu+eps) - log(theta+mu+eps))
 *                 + lgamma(x+theta) - lgamma(theta) - lgamma(x+1);
 *   ZINB (pi[b,g] the dropout logit), with s = -pi + theta (log(theta+eps) - log(theta+mu+eps)):
 *         x < eps: log p = softplus(s) - softplus(-pi);
 *         x > eps: log p = -softplus(-pi) + s + x (log(mu+eps) - log(theta+mu+eps))
 *                          + lgamma(x+theta) - lgamma(theta) - lgamma(x+1).
 * Computed in double from float32 inputs. x holds raw counts (non-negative; not necessarily
 * integers, as scVI). */
typedef struct {
  const float *x;       /* (B,G) observed counts */
  const float *logits;  /* (B,G) decoder output; px_scale is its softmax over genes */
  const float *px_r;    /* (G) log theta */
  const float *pi;      /* (B,G) dropout logits for ZINB; NULL: NB */
  const float *lib;     /* (B) library sizes, or NULL: the row sums of x (scVI's observed size) */
  double *work;         /* optional scratch of kn_counts_work_size(B, G) doubles: caches theta,
                           the means and the theta partials (about 1.8x faster, the same bytes);
                           NULL: they are recomputed in each pass */
  int B, G;
} kn_counts_batch;

/* Gradient outputs of the count losses; each may be NULL, and each ADDS (llm.c convention). */
typedef struct {
  float *dlogits;       /* (B,G) += scale/B * d(NLL)/d logits, through the softmax */
  float *dpx_r;         /* (G)   += scale/B * sum_b d(NLL)/d px_r */
  float *dpi;           /* (B,G) += scale/B * d(NLL)/d pi (ZINB only) */
  double *per;          /* (B) per-cell NLL summed over genes, set (not added) */
} kn_counts_grad;

/* Negative log-likelihood of the batch, reduced as the other losses and as scVI's loss: the
 * batch mean of per-cell sums over genes. NB when in->pi is NULL, ZINB otherwise. The pool
 * splits cells for the value, dlogits and dpi, and genes for dpx_r; every output element is
 * summed by one thread in a fixed order, so the results do not depend on the thread count.
 * Allocates nothing; g may be NULL. A library size of 0 gives mu = 0 (under NB the cell's zeros
 * then have probability 1). Programmer errors (B, G < 1; lib < 0) assert. */
double kn_counts_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale);
/* Doubles of kn_counts_batch.work for B cells and G genes: 2 G + 2 min(B, 256) G. */
size_t kn_counts_work_size(int B, int G);
/* The same through explicit names: kn_nb_loss ignores in->pi, kn_zinb_loss requires it. */
double kn_nb_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale);
double kn_zinb_loss(kn_pool *p, const kn_counts_batch *in, const kn_counts_grad *g, float scale);
/* Elementwise: log p(x | mu, theta[, pi]) of the formulas above (pi NaN: NB) and its partial
 * derivatives (each pointer may be NULL) w.r.t. mu, theta and pi. For tests and callers with
 * their own mean. */
double kn_counts_logp(double x, double mu, double theta, double pi, double *dmu, double *dtheta,
                      double *dpi);
/* The digamma function psi(x) for x > 0 (recurrence to x >= 10, then the asymptotic series;
 * absolute error < 1e-14 on the range the losses use). */
double kn_digamma(double x);

/* ---- recurrent layers (src/nn/lstm.c) ---------------------------------------------------- */
/* One layer of torch.nn.LSTM or torch.nn.GRU (num_layers 1, batch_first False), uni- or
 * bidirectional, with explicit forward and backward through time.
 * Layout: sequences are (T,B,F), step t of sequence b at row t*B + b. A layer of D directions
 * writes y (T,B,D*H): the forward direction's h_t in columns [0,H), the reverse direction's
 * (run over t = T-1 .. 0, its own weights) in [H,2H), as torch concatenates them. States h0,
 * c0, hn, cn are (D,B,H), direction-major as torch's (num_layers * num_directions, B, H); the
 * reverse direction's final state is the one after step t = 0.
 * Parameters of each direction, torch's layout, G gate blocks of H rows each:
 *   weight_ih (G*H, I), weight_hh (G*H, H), bias_ih (G*H), bias_hh (G*H).
 * LSTM, G = 4, gates i f g o:
 *   [i, f, g, o] = [sig, sig, tanh, sig](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
 *   c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
 * GRU, G = 3, gates r z n:
 *   r = sig(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z = sig(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
 *   n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) * n + z * h_{t-1}
 * Work: one GEMM (T*B, I) x (I, G*H) projects the input of all steps; each step adds one
 * (B, H) x (H, G*H) GEMM; backward runs one (B, G*H) x (G*H, H) GEMM per step and one GEMM
 * each over all steps at once for dW_ih, dW_hh, the biases and dx.
 * Threads: the B sequences are independent, so each thread runs whole sequences (a range of
 * rows; when bidirectional on >= 2 threads, of one direction) through all T steps with its own
 * single-threaded GEMMs, with no barrier between steps; the all-step products are split by
 * rows. Same thread count = same bytes. Layers under 2e5 flops run on the calling thread.
 * Memory: nothing is allocated; the caller provides a workspace (kn_rnn_workspace_size) that
 * keeps from the forward what the backward needs (activated gates, cell states, h_t). */
typedef enum { KN_RNN_LSTM, KN_RNN_GRU } kn_rnn_cell;

typedef struct {
  kn_rnn_cell cell;
  int I, H;   /* input features, hidden units */
  int D;      /* directions: 1, or 2 (bidirectional) */
  int G;      /* gate blocks: 4 (LSTM) or 3 (GRU) */
  /* per direction (0 forward, 1 reverse): the weights, and the gradients backward adds into.
   * A NULL gradient is skipped; NULL biases are a layer without them (torch's bias=False),
   * and then their gradients must be NULL too. */
  const float *w_ih[2], *w_hh[2], *b_ih[2], *b_hh[2];
  float *dw_ih[2], *dw_hh[2], *db_ih[2], *db_hh[2];
  int idx[2][4];   /* the parameters' indices in a kn_net (w_ih, w_hh, b_ih, b_hh), else -1 */
} kn_rnn;

/* One call's tensors. x, y and ws are required; the rest may be NULL. */
typedef struct {
  int T, B;              /* steps, sequences */
  const float *x;        /* (T,B,I) */
  const float *h0, *c0;  /* (D,B,H) initial states; NULL: zeros (c0: LSTM only) */
  float *y;              /* (T,B,D*H) every h_t */
  float *hn, *cn;        /* (D,B,H) final states (cn: LSTM only) */
  float *ws;             /* kn_rnn_workspace_size(r, T, B) floats, from forward to backward */
} kn_rnn_seq;

/* The gradients of one backward: inputs dy, dhn, dcn (NULL: zero), outputs dx, dh0, dc0 that
 * backward adds into (NULL: skipped). */
typedef struct {
  const float *dy;         /* (T,B,D*H) */
  const float *dhn, *dcn;  /* (D,B,H) */
  float *dx;               /* (T,B,I) */
  float *dh0, *dc0;        /* (D,B,H) */
} kn_rnn_grad;

/* Fill r for a layer with no parameters bound (pointers NULL, indices -1). KNOBS_ERR_ARG
 * unless I >= 1, H >= 1 and D is 1 or 2. */
knobs_status kn_rnn_setup(kn_rnn *r, kn_rnn_cell cell, int I, int H, int D);
/* Declare r's parameters in net under torch's names, in torch's order: "<prefix>.weight_ih_l0",
 * ".weight_hh_l0", ".bias_ih_l0", ".bias_hh_l0", then the same with the suffix "_reverse"
 * (so a checkpoint loads into torch.nn.LSTM/GRU as the module "<prefix>"). */
void kn_rnn_declare(kn_rnn *r, kn_net *net, const char *prefix, int group);
/* Point r's weights and gradients at net's blocks (after kn_net_alloc, which places them). */
void kn_rnn_bind(kn_rnn *r, kn_net *net);
/* torch's reset_parameters: every tensor of r in net U(-1/sqrt(H), 1/sqrt(H)), drawn from rng
 * in torch's order (the order of kn_rnn_declare). */
void kn_rnn_init(const kn_rnn *r, kn_net *net, kn_rng *rng);
/* Floats of workspace for T steps of B sequences (every direction); 0 if T < 1 or B < 1. */
size_t kn_rnn_workspace_size(const kn_rnn *r, int T, int B);
/* y, hn, cn from x (and h0, c0). KNOBS_ERR_ARG (nothing written) if T < 1, B < 1, or x, y, ws
 * or a weight is NULL. */
knobs_status kn_rnn_forward(kn_pool *p, const kn_rnn *r, const kn_rnn_seq *s);
/* Backward through time of the last forward of s (same s, workspace untouched since): adds
 * into dx, dh0, dc0 of g and into r's weight gradients. KNOBS_ERR_ARG as the forward. */
knobs_status kn_rnn_backward(kn_pool *p, const kn_rnn *r, const kn_rnn_seq *s, const kn_rnn_grad *g);

#endif
