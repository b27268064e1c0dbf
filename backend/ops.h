/* backend/ops.h: the backend table: memory operations and the primitives every network is
 * made of. Networks (model/) call only these, so a backend (cpu, guard, later cuda) can be
 * registered without touching any layer; layer code never dereferences a tensor.
 *
 *   const struct avs_ops *op = avs_ops();        the active backend (backend/backend.h selects)
 *   float *x = op->alloc(n * sizeof(float), 1);  device memory (zeroed); op->free(x)
 *   op->upload(x, host, bytes); ...; op->download(host, x, bytes);
 *   op->conv2d_fwd(out, in, w, b, &geom, ws);    ws: op->conv2d_ws(&geom) floats of scratch
 *
 * Memory: every float * of a primitive is device memory of the same backend (its alloc, or an
 * arena carved from it: backend/backend.h); host memory reaches it only through upload, and
 * comes back through download. Geometry structs (struct avs_conv2d ...) are host values.
 * The guard backend (tests) enforces this: its memory is inaccessible outside its own ops.
 *
 * Conventions (llm.c's contract): outputs first; every *_bwd ADDS into its gradients (so a
 * tensor used twice collects both); nothing allocates inside (scratch is passed in); all
 * pointers are contiguous float32 (NCHW for maps, row-major otherwise). Ops run in the order
 * they are called (one stream); results are final once sync (or a download) returns.
 *
 * Determinism (every backend): the same inputs give the same bits on the same machine, whatever
 * the thread count (CPU: fixed tiles and fixed reduction orders, backend/cpu/).
 */
#ifndef AVS_BACKEND_OPS_H
#define AVS_BACKEND_OPS_H

#include <stddef.h>
#include <stdio.h>

/* Geometry of one conv2d: input [N,C,H,W], weight [K,C/groups,R,S], output [N,K,P,Q].
 * Square stride/pad/dilation (all our models use square ones). */
struct avs_conv2d {
    int N, C, H, W;
    int K, R, S;
    int stride, pad, dil, groups;
    int P, Q;
};

void avs_conv2d_geom(struct avs_conv2d *g, int N, int C, int H, int W, int K, int R, int S,
                     int stride, int pad, int dil, int groups);
/* Floats of scratch a conv2d fwd/bwd call needs on the active backend (its conv2d_ws: the
 * same size serves all three passes). */
size_t avs_conv2d_ws(const struct avs_conv2d *g);
/* Multiply-adds of one forward (only the taps that touch the input, as computed). */
double avs_conv2d_flops(const struct avs_conv2d *g);

/* A tap conv: stride 1, taps at arbitrary offsets (zeros outside the map), input [N,C,H,W],
 * output [N,K,P,Q]: out[n,k,p,q] = b[k] + sum_{i,c} w[k,i,c] in[n,c,p+dy_i,q+dx_i], with w
 * [K,taps,C] (tap-major). A dilated conv is one (its live taps); so is ASPP's set of parallel branches
 * composed with its 1x1 output conv (model/c3n_blocks.c). */
#define AVS_TAPS_MAX 64
struct avs_tapconv {
    int N, C, H, W, K, P, Q;
    int n; /* taps */
    int dy[AVS_TAPS_MAX], dx[AVS_TAPS_MAX];
};

/* Floats of scratch a tap conv fwd/bwd call needs on the active backend; multiply-adds x 2
 * of one pass. */
size_t avs_tapconv_ws(const struct avs_tapconv *g);
double avs_tapconv_flops(const struct avs_tapconv *g);

/* How a broadcast operand s relates to x [N,C,HW]: which of the 3 axes s has (others are 1). */
struct avs_bcast {
    int N, C, HW;
    int sN, sC, sHW; /* 1 if s has that axis, 0 if broadcast */
};

struct avs_ops {
    const char *name;
    const char *about; /* one line for --help */

    /* ---- memory ---- */
    /* bytes of device memory, 64-byte aligned; zero: cleared (else contents undefined, and
     * untouched pages may cost nothing: for generous scratch bounds). NULL when out of memory. */
    void *(*alloc)(size_t bytes, int zero);
    void (*free)(void *p); /* NULL-safe */
    void (*zero)(float *p, size_t n);
    /* host <-> device and device -> device copies (bytes; may overlap only for copy) */
    void (*upload)(void *dev, const void *host, size_t bytes);
    void (*download)(void *host, const void *dev, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    /* y[i] = v for n floats */
    void (*fill)(float *y, float v, size_t n);
    /* wait until every op called so far is done */
    void (*sync)(void);
    /* the settings in force that change results' bits ("" for the defaults), e.g. the CPU's
     * conv algorithm from AVS_CONV; recorded with every run and feature set */
    const char *(*settings)(void);
    /* floats of scratch of a conv2d / tap conv call on this backend */
    size_t (*conv2d_ws)(const struct avs_conv2d *g);
    size_t (*tapconv_ws)(const struct avs_tapconv *g);

    /* ---- primitives ---- */
    /* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C; row-major; ta/tb: transpose. */
    void (*gemm)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

    /* conv2d; b may be NULL. bwd_data adds into din; bwd_filter adds into dw and db (db may
     * be NULL). */
    void (*conv2d_fwd)(float *out, const float *in, const float *w, const float *b,
                       const struct avs_conv2d *g, float *ws);
    void (*conv2d_bwd_data)(float *din, const float *dout, const float *w,
                            const struct avs_conv2d *g, float *ws);
    void (*conv2d_bwd_filter)(float *dw, float *db, const float *dout, const float *in,
                              const struct avs_conv2d *g, float *ws);
    /* conv2d_bwd_data into a fresh buffer: din is overwritten, not added into (saves clearing
     * it first and reading the zeros back). */
    void (*conv2d_bwd_data_set)(float *din, const float *dout, const float *w,
                                const struct avs_conv2d *g, float *ws);

    /* tap convs, the same contract as conv2d (bwd_data adds into din, bwd_filter into dw, db) */
    void (*tapconv_fwd)(float *out, const float *in, const float *w, const float *b,
                        const struct avs_tapconv *g, float *ws);
    void (*tapconv_bwd_data)(float *din, const float *dout, const float *w,
                             const struct avs_tapconv *g, float *ws);
    void (*tapconv_bwd_filter)(float *dw, float *db, const float *dout, const float *in,
                               const struct avs_tapconv *g, float *ws);

    /* y [rows,cols] += bias [cols]; db [cols] += column sums of dy. */
    void (*bias_fwd)(float *y, const float *b, int rows, int cols);
    void (*bias_bwd)(float *db, const float *dy, int rows, int cols);

    /* Elementwise activations over n values; bwd takes what fwd saw (x) or made (y). */
    void (*relu_fwd)(float *y, const float *x, size_t n);
    void (*relu_bwd)(float *dx, const float *dy, const float *x, size_t n);
    void (*gelu_fwd)(float *y, const float *x, size_t n); /* exact: 0.5x(1+erf(x/sqrt2)) */
    void (*gelu_bwd)(float *dx, const float *dy, const float *x, size_t n);
    void (*sigmoid_fwd)(float *y, const float *x, size_t n);
    void (*sigmoid_bwd)(float *dx, const float *dy, const float *y, size_t n);

    /* softmax over the last dim of [rows, cols]. */
    void (*softmax_fwd)(float *y, const float *x, int rows, int cols);
    void (*softmax_bwd)(float *dx, const float *dy, const float *y, int rows, int cols);

    /* LayerNorm over the middle axis of [outer, C, inner]: inner = 1 is the usual last-dim
     * LayerNorm; outer = N, inner = H*W normalises over the channels of an NCHW map.
     * Saves mean and rstd [outer*inner]. w, b [C]. */
    void (*layernorm_fwd)(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int outer, int C, int inner, float eps);
    void (*layernorm_bwd)(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int outer, int C,
                          int inner);

    /* BatchNorm over channels of [N,C,HW] (BatchNorm1d/2d/3d alike). train: batch stats
     * (biased variance), running stats updated with momentum (unbiased variance), as PyTorch;
     * eval: running stats. Saves mean and rstd [C]. */
    void (*batchnorm_fwd)(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, float *run_mean, float *run_var, int N, int C, int HW,
                          float eps, float momentum, int train);
    void (*batchnorm_bwd)(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int N, int C,
                          int HW, int train);

    /* Bilinear resize of [NC, H, W] to [NC, OH, OW], PyTorch's F.interpolate conventions. */
    void (*resize_fwd)(float *y, const float *x, int NC, int H, int W, int OH, int OW,
                       int align_corners);
    void (*resize_bwd)(float *dx, const float *dy, int NC, int H, int W, int OH, int OW,
                       int align_corners);

    /* Mean over the last axis of [rows, n] -> [rows] (global average pool: rows = N*C). */
    void (*mean_fwd)(float *y, const float *x, int rows, int n);
    void (*mean_bwd)(float *dx, const float *dy, int rows, int n);
    /* Mean over channels of [N,C,HW] -> [N,1,HW]. */
    void (*chmean_fwd)(float *y, const float *x, int N, int C, int HW);
    void (*chmean_bwd)(float *dx, const float *dy, int N, int C, int HW);

    /* Channel concat: x [N,Cx,HW] into channels [c0, c0+Cx) of y [N,Cy,HW], and back. */
    void (*concat_fwd)(float *y, const float *x, int N, int Cx, int HW, int Cy, int c0);
    void (*concat_bwd)(float *dx, const float *dy, int N, int Cx, int HW, int Cy, int c0);

    /* y = x + s and y = x * s with s broadcast (struct avs_bcast); y may alias x.
     * add_bwd: ds += reduced dy (dx is dy itself: callers pass it on). mul_bwd: dx += dy*s,
     * ds += reduced dy*x; either gradient may be NULL. */
    void (*add_fwd)(float *y, const float *x, const float *s, const struct avs_bcast *bc);
    void (*add_bwd)(float *ds, const float *dy, const struct avs_bcast *bc);
    void (*mul_fwd)(float *y, const float *x, const float *s, const struct avs_bcast *bc);
    void (*mul_bwd)(float *dx, float *ds, const float *dy, const float *x, const float *s,
                    const struct avs_bcast *bc);
    /* y[i] += alpha * x[i] */
    void (*axpy)(float *y, float alpha, const float *x, size_t n);

    /* Losses over [B, n] logits and targets in [0,1]; return the loss, write dloss/dlogit
     * times `scale` into dx (overwrite). BCE-with-logits, mean over all B*n.
     * Dice (DESIGN §6): 1 - mean_b 2(sum p*g + 1)/(sum p + sum g + 1), p = sigmoid(x). */
    double (*bce_logits)(float *dx, const float *x, const float *g, int B, int n, float scale);
    double (*dice)(float *dx, const float *x, const float *g, int B, int n, float scale);
    /* Pixel-wise cross-entropy over C classes (AVSS; ref: AVSBench avss/loss.py
     * F10_IoU_BCELoss, nn.CrossEntropyLoss per pixel): logits x [B,C,n], class indices lab
     * [B,n] (integers stored as floats; an index outside 0..C-1, e.g. AVSS's unknown 255,
     * counts as class 0, as the official loader maps it). Returns the mean over the B*n
     * pixels of logsumexp_c x - x[lab] (per pixel in double, summed in a fixed order);
     * dx [B,C,n] = scale * (softmax(x) - onehot(lab)) / (B*n) (overwrite; may be NULL). */
    double (*softmax_ce)(float *dx, const float *x, const float *lab, int B, int C, int n,
                         float scale);
    /* AVSBench's audio-visual matching term (ref: avs_ms3/loss.py A_MaskedV_SimmLoss with
     * kl_flag: F.kl_div(softmax(v).log(), softmax(a), reduction='sum')) over the rows of v, a
     * [rows, cols]: returns sum_r sum_c q (log q - log p) with q = softmax(a_r), p =
     * softmax(v_r) (log-softmax in double per row, rows added in order); dv = scale (p - q)
     * and da = scale q ((log q - log p) - KL_r), the gradients of scale x the loss
     * (overwrite; either may be NULL). */
    double (*softmax_kl)(float *dv, float *da, const float *v, const float *a, int rows,
                         int cols, float scale);

    /* torch.optim.Adam (no amsgrad): m, v updated in place, p -= lr/bc1 * m/(sqrt(v)/sqrt(bc2)
     * + eps), with L2 weight decay added to g first when wd != 0. step counts from 1. */
    void (*adam)(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                 double b2, double eps, double wd, long step);
    /* adam, and g set to 0 in the same pass (saves zero_grad's pass over the gradients). */
    void (*adam_zero)(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                      double b2, double eps, double wd, long step);

    /* ---- PVT/VGGish: token layouts (backend/cpu/tokens.c) ----
     * Transformer tokens are [N,L,C] row-major (L = H*W positions of a map, channels
     * innermost); maps are NCHW. */

    /* y [N,C,R] = x [N,R,C] transposed per n (overwrite; y must not alias x). Tokens <-> map:
     * map2tok is (y, x, N, C, L), tok2map is (y, x, N, L, C); VGGish's NCHW -> NHWC is
     * (y, x, N, C, H*W). Its own backward (the transpose back). */
    void (*transpose)(float *y, const float *x, int N, int R, int C);
    /* Depthwise 3x3 conv, stride 1, padding 1, on tokens: x, y [N,H,W,C]; w [C,1,3,3] (the
     * nn.Conv2d(C, C, 3, 1, 1, groups=C) weight), b [C]. fwd overwrites y (per element: bias,
     * then the taps row by row); bwd_data ADDS into dx; bwd_filter ADDS into dw [C,1,3,3] and
     * db [C] (sums in double, per token row, rows reduced in order). ws: avs_dwconv3_ws(N, H, C)
     * floats of scratch (all three). ref: PVTv2's DWConv (pvt_v2.py). */
    void (*dwconv3_fwd)(float *y, const float *x, const float *w, const float *b, int N, int H,
                        int W, int C, float *ws);
    void (*dwconv3_bwd_data)(float *dx, const float *dy, const float *w, int N, int H, int W,
                             int C, float *ws);
    void (*dwconv3_bwd_filter)(float *dw, float *db, const float *dy, const float *x, int N,
                               int H, int W, int C, float *ws);
    /* Mean over the positions of tokens: y [N,C] = mean_l x [N,L,C] (overwrite; summed in double
     * in l order). bwd: dx [N,L,C] += dy [N,C] / L. PVTv2's head input (x.mean(dim=1)) and the
     * Grad-CAM weights (spatial mean of a gradient). */
    void (*tokmean_fwd)(float *y, const float *x, int N, int L, int C);
    void (*tokmean_bwd)(float *dx, const float *dy, int N, int L, int C);
    /* 2x2 max-pool, stride 2, of [NC,H,W] (H, W even) -> y [NC,H/2,W/2] (overwrite). VGGish
     * (inference only: no backward). */
    void (*maxpool2_fwd)(float *y, const float *x, int NC, int H, int W);
    /* 3x3 max-pool, stride 2, padding 1 (padding never wins) of [NC,H,W] -> y [NC,(H+1)/2,
     * (W+1)/2] (overwrite). ResNet's stem (nn.MaxPool2d(3, 2, 1)). */
    void (*maxpool3s2_fwd)(float *y, const float *x, int NC, int H, int W);
    /* Its backward (ResNet fine-tuning): dx [NC,H,W] += dy [NC,(H+1)/2,(W+1)/2] routed to each
     * window's maximum of x, the first in row-major order on ties (PyTorch's max_pool2d index:
     * ties are common after a ReLU). Gathered per input element (the windows overlap), summed
     * in output order, then added: no atomics, the same bits on every backend. */
    void (*maxpool3s2_bwd)(float *dx, const float *dy, const float *x, int NC, int H, int W);
    /* 2x2 average pool, stride 2, of [NC,H,W] -> y [NC,H/2,W/2] (floor: an odd last row or
     * column is dropped, as F.avg_pool2d(kernel 2)); PANNs CNN14, inference only. */
    void (*avgpool2_fwd)(float *y, const float *x, int NC, int H, int W);
    /* Adaptive average pool of [NC,H,W] to y [NC,OH,OW] (nn.AdaptiveAvgPool2d: output row i
     * averages input rows floor(i*H/OH) .. ceil((i+1)*H/OH)-1, columns alike; summed in double
     * in row-major order; overwrite). bwd: dx [NC,H,W] += dy of every window holding the
     * element divided by the window's size, gathered per input element (windows may overlap
     * when OH does not divide H) and summed in output order. AVSBench's matching loss pools
     * the predicted mask to each stage's size (model/c3n_avmatch.c). */
    void (*adapool_fwd)(float *y, const float *x, int NC, int H, int W, int OH, int OW);
    void (*adapool_bwd)(float *dx, const float *dy, int NC, int H, int W, int OH, int OW);
    /* y [rows] = max over the last axis of x [rows,n] (n >= 1; NaN-free inputs); PANNs CNN14's
     * max over time, inference only. */
    void (*rowmax_fwd)(float *y, const float *x, int rows, int n);

    /* ---- head: the C3N head's rearrangements (model/c3n_*.c, CPU: backend/cpu/head.c) ---- */
    /* A conv weight w [K,C,T] (T taps) tap-major: wt [T,K,C] (overwritten); and back: dw
     * [K,C,T] += dwt [T,K,C] (the gradient of taps_split). */
    void (*taps_split)(float *wt, const float *w, int K, int C, int T);
    void (*taps_merge)(float *dw, const float *dwt, int K, int C, int T);
    /* A 3x3 conv (w [K,C,3,3], b [K], padding 1) of U = the x2 bilinear upsampling
     * (align_corners false) of h [C,H,W], as a 3x3 conv of h replicated one pixel past its
     * edges (pad_replicate) with 4K outputs, one per output parity (a,b), channel 4k + 2a+b
     * (pixel_shuffle2 puts them in place): kc [4K,C,3,3], kcb [4K], overwritten. Exact except
     * on the border ring of the output (U's zero padding: up2_ring_cols). decompose: the chain
     * rule back, dw [K,C,3,3] += and db [K] += from dkc [4K,C,3,3] and dkcb [4K]. */
    void (*up2conv_compose)(float *kc, float *kcb, const float *w, const float *b, int K, int C);
    void (*up2conv_decompose)(float *dw, float *db, const float *dkc, const float *dkcb, int K,
                              int C);
    /* y [NC,H+2,W+2] = x [NC,H,W] replicated one pixel past each edge (overwritten); bwd:
     * dx [NC,H,W] += dy [NC,H+2,W+2] folded back onto the pixels it copied. */
    void (*pad_replicate)(float *y, const float *x, int NC, int H, int W);
    void (*pad_replicate_bwd)(float *dx, const float *dy, int NC, int H, int W);
    /* Pixel shuffle by 2: y [NC,2H,2W] from x [4NC,H,W], y[c][2i+a][2j+b] = x[4c+2a+b][i][j];
     * unshuffle: the inverse, y [4NC,H,W] from x [NC,2H,2W]. Both overwrite y. */
    void (*pixel_shuffle2)(float *y, const float *x, int NC, int H, int W);
    void (*pixel_unshuffle2)(float *y, const float *x, int NC, int H, int W);
    /* The border ring of a 2H x 2W output map: its n = avs_ring_n(2H, 2W) pixels in row-major
     * order. up2_ring_cols: col [C*9, B*n] (row c*9 + 3r+s, column b*n + t) = U[b,c] at ring
     * pixel t offset by (r-1, s-1), zero outside U, with U the x2 bilinear upsampling
     * (align_corners false) read from hp [B,C,H+2,W+2] (pad_replicate of the low-resolution
     * map): the im2col columns of a 3x3 padding-1 conv of U at the ring (overwritten). bwd:
     * dhp [B,C,H+2,W+2] += the transpose. Indices come from the geometry alone. */
    void (*up2_ring_cols)(float *col, const float *hp, int B, int C, int H, int W);
    void (*up2_ring_cols_bwd)(float *dhp, const float *col, int B, int C, int H, int W);
    /* y [B,K,P,Q]: its ring pixels (avs_ring_n(P, Q) per map, row-major) set to yr [K, B*n]
     * (column b*n + t) plus b[k] (b may be NULL); take: yr = those pixels (overwritten), and
     * they are set to 0 in y. */
    void (*ring_set)(float *y, const float *yr, const float *b, int B, int K, int P, int Q);
    void (*ring_take)(float *yr, float *y, int B, int K, int P, int Q);
    /* y [rows,cols] = x / max(||x_row||_2, eps) per row (the L2 norm summed in double). */
    void (*l2norm_rows)(float *y, const float *x, int rows, int cols, float eps);
    /* CCAM's backward w.r.t. its input (model/nn.h): out = x1 * sm, x1 = x * s, sm =
     * sigmoid(mean over C of x1), with s [N,C], x1 [N,C,HW], sm [N,HW] saved by the forward:
     * dx [N,C,HW] += (dout sm + sm(1-sm)/C sum_c(dout x1)) s. ws: N*HW floats of scratch. */
    void (*ccam_bwd)(float *dx, const float *dout, const float *s, const float *x1,
                     const float *sm, int N, int C, int HW, float *ws);

    /* ---- rows: Swin's window partition with cyclic shift, its reverse, patch merging's
     * gather and the relative-position bias (model/swin*.c; CPU: backend/cpu/rows.c) ----
     * idx [n] are int32 row indices in device memory (uploaded once at init). */
    /* y [n,C] row i = x row idx[i] (overwrite; y must not alias x). */
    void (*gather_rows)(float *y, const float *x, const int *idx, int n, int C);
    /* y row idx[i] += x row i, for i in order (the gather's backward; rows hit several times
     * add up in i order). */
    void (*scatter_rows_add)(float *y, const float *x, const int *idx, int n, int C);

    /* ---- audioset: Kong et al.'s AudioSet attention head (model/audioset_head.c; CPU:
     * backend/cpu/attpool.c) ---- */
    /* Attention pooling over time (audioset_classification's Attention.forward): N clips of
     * rows of a, v [R,C] (one row per second); clip n spans rows off[n]..off[n+1] (off: int32
     * device memory [N+1]), or, off NULL, rows n*T..(n+1)*T. s = sigmoid(a) [R,C] (saved);
     * g = clamp(s, eps, 1 - eps); y [N,C] = sum_t g v / sum_t g (both overwritten). */
    void (*attpool_fwd)(float *y, float *s, const float *a, const float *v, const int *off,
                        int N, int T, int C, float eps);
    /* The backward from dy [N,C], s and v as the forward saw them and its y: dv += dy g / G,
     * da += dy (v - y) / G s (1 - s) where eps <= s <= 1 - eps (torch.clamp's pass-through),
     * G = sum_t g. Either gradient may be NULL. */
    void (*attpool_bwd)(float *da, float *dv, const float *dy, const float *s, const float *v,
                        const float *y, const int *off, int N, int T, int C, float eps);
    /* The VGGish postprocessor's 8-bit quantisation and Kong's uint8_to_float32 in one:
     * y = (round_half_even((clamp(x, -2, 2) + 2) * 255 / 4) - 128) / 128 (y may alias x).
     * No backward: it is applied to data. */
    void (*quant8_fwd)(float *y, const float *x, size_t n);
    /* Inverted dropout (F.dropout, training): mask[i] = 0 with probability p, else 1/(1-p), a
     * function of (seed, i) only (a counter hash: every backend draws the same mask);
     * y = x * mask (y may alias x). bwd: dx += dy * mask. */
    void (*dropout_fwd)(float *y, float *mask, const float *x, size_t n, float p,
                        unsigned long long seed);
    void (*dropout_bwd)(float *dx, const float *dy, const float *mask, size_t n);
};

/* Floats of scratch of the dwconv3 primitives for N images of H token rows of C channels
 * (every backend takes this size: the CPU's filter gradient keeps 10 double partials per
 * channel and token row; its data passes use the first 9*C floats). */
static inline size_t avs_dwconv3_ws(int N, int H, int C)
{
    return (size_t)20 * N * H * C + (size_t)9 * C;
}

/* Pixels on the border ring of a P x Q map (all of them when P or Q < 3). */
static inline int avs_ring_n(int P, int Q)
{
    return P < 3 || Q < 3 ? P * Q : 2 * (P + Q) - 4;
}

/* The active backend (backend/backend.h chooses it; cpu by default). */
const struct avs_ops *avs_ops(void);
/* Its name and settings, as runs and feature sets record them: "cpu", "cpu conv=exact-bwd". */
const char *avs_ops_device(void);
/* Threads for the CPU backends' loops and GEMM tiles; n <= 0: all cores. */
void avs_ops_set_threads(int n);
int avs_ops_threads(void);
/* Call first thing in main() of a program that computes: re-executes the program once with
 * settings that libgomp and OpenBLAS read only at load time.
 * - GOMP_SPINCOUNT=30000 unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set: libgomp's default
 *   (spin ~300k iterations at every barrier) wastes whole timeslices when the cores are shared
 *   with other processes (measured: 3.5x slower training steps under a load of 4 on 2 cores),
 *   while a short spin costs nothing on an idle machine.
 * - OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2 + FMA) when OpenBLAS did not know the
 *   CPU model and fell back to its SSE3 Prescott kernels (Debian 12's 0.3.21 on Emerald Rapids:
 *   5x slower GEMMs), unless the user set OPENBLAS_CORETYPE. */
void avs_ops_tune_process(char **argv);
/* FLOPs (2 x multiply-adds) done by GEMMs and convs since the last call with reset != 0. */
double avs_ops_flops(int reset);

/* Profiling (backend/prof.c): with avs_ops_profile(1), avs_ops() returns a wrapper table
 * that times every primitive (convs and GEMMs per geometry); avs_ops_profile_print writes the
 * table (times per step over `steps` steps). avs_ops_profile(0) returns to the plain table. */
void avs_ops_profile(int on);
void avs_ops_profile_print(FILE *f, int steps);
const struct avs_ops *avs_ops_profiled(const struct avs_ops *base);

#endif
