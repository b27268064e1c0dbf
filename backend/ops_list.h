/* backend/ops_list.h: every primitive of the backend table (backend/ops.h) as an X-macro
 * list, for the wrappers that must cover all of them (the guard backend, the profiler):
 *   X(name, (parameters), (arguments), (tensor pointer arguments))   returning void
 *   XD(...)                                                         returning double
 * A primitive added to struct avs_ops is added here too: backend/guard.c asserts at compile
 * time that the list covers the whole table, and the wrappers' assignments check each
 * signature against the struct's.
 */
#ifndef AVS_BACKEND_OPS_LIST_H
#define AVS_BACKEND_OPS_LIST_H

#define AVS_OPS_VOID(X)                                                                          \
    X(gemm, (int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,          \
          const float *B, int ldb, float beta, float *C, int ldc),                               \
      (ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), (A, B, C))                         \
    X(conv2d_fwd, (float *out, const float *in, const float *w, const float *b,                  \
          const struct avs_conv2d *g, float *ws),                                                \
      (out, in, w, b, g, ws), (out, in, w, b, ws))                                               \
    X(conv2d_bwd_data, (float *din, const float *dout, const float *w, const struct avs_conv2d *g, \
          float *ws),                                                                            \
      (din, dout, w, g, ws), (din, dout, w, ws))                                                 \
    X(conv2d_bwd_filter, (float *dw, float *db, const float *dout, const float *in,              \
          const struct avs_conv2d *g, float *ws),                                                \
      (dw, db, dout, in, g, ws), (dw, db, dout, in, ws))                                         \
    X(conv2d_bwd_data_set, (float *din, const float *dout, const float *w,                       \
          const struct avs_conv2d *g, float *ws),                                                \
      (din, dout, w, g, ws), (din, dout, w, ws))                                                 \
    X(tapconv_fwd, (float *out, const float *in, const float *w, const float *b,                 \
          const struct avs_tapconv *g, float *ws),                                               \
      (out, in, w, b, g, ws), (out, in, w, b, ws))                                               \
    X(tapconv_bwd_data, (float *din, const float *dout, const float *w,                          \
          const struct avs_tapconv *g, float *ws),                                               \
      (din, dout, w, g, ws), (din, dout, w, ws))                                                 \
    X(tapconv_bwd_filter, (float *dw, float *db, const float *dout, const float *in,             \
          const struct avs_tapconv *g, float *ws),                                               \
      (dw, db, dout, in, g, ws), (dw, db, dout, in, ws))                                         \
    X(bias_fwd, (float *y, const float *b, int rows, int cols),                                  \
      (y, b, rows, cols), (y, b))                                                                \
    X(bias_bwd, (float *db, const float *dy, int rows, int cols),                                \
      (db, dy, rows, cols), (db, dy))                                                            \
    X(relu_fwd, (float *y, const float *x, size_t n),                                            \
      (y, x, n), (y, x))                                                                         \
    X(relu_bwd, (float *dx, const float *dy, const float *x, size_t n),                          \
      (dx, dy, x, n), (dx, dy, x))                                                               \
    X(gelu_fwd, (float *y, const float *x, size_t n),                                            \
      (y, x, n), (y, x))                                                                         \
    X(gelu_bwd, (float *dx, const float *dy, const float *x, size_t n),                          \
      (dx, dy, x, n), (dx, dy, x))                                                               \
    X(sigmoid_fwd, (float *y, const float *x, size_t n),                                         \
      (y, x, n), (y, x))                                                                         \
    X(sigmoid_bwd, (float *dx, const float *dy, const float *y, size_t n),                       \
      (dx, dy, y, n), (dx, dy, y))                                                               \
    X(softmax_fwd, (float *y, const float *x, int rows, int cols),                               \
      (y, x, rows, cols), (y, x))                                                                \
    X(softmax_bwd, (float *dx, const float *dy, const float *y, int rows, int cols),             \
      (dx, dy, y, rows, cols), (dx, dy, y))                                                      \
    X(layernorm_fwd, (float *y, float *mean, float *rstd, const float *x, const float *w,        \
          const float *b, int outer, int C, int inner, float eps),                               \
      (y, mean, rstd, x, w, b, outer, C, inner, eps), (y, mean, rstd, x, w, b))                  \
    X(layernorm_bwd, (float *dx, float *dw, float *db, const float *dy, const float *x,          \
          const float *mean, const float *rstd, const float *w, int outer, int C, int inner),    \
      (dx, dw, db, dy, x, mean, rstd, w, outer, C, inner), (dx, dw, db, dy, x, mean, rstd, w))   \
    X(batchnorm_fwd, (float *y, float *mean, float *rstd, const float *x, const float *w,        \
          const float *b, float *run_mean, float *run_var, int N, int C, int HW, float eps,      \
          float momentum, int train),                                                            \
      (y, mean, rstd, x, w, b, run_mean, run_var, N, C, HW, eps, momentum, train),               \
      (y, mean, rstd, x, w, b, run_mean, run_var))                                               \
    X(batchnorm_bwd, (float *dx, float *dw, float *db, const float *dy, const float *x,          \
          const float *mean, const float *rstd, const float *w, int N, int C, int HW, int train), \
      (dx, dw, db, dy, x, mean, rstd, w, N, C, HW, train), (dx, dw, db, dy, x, mean, rstd, w))   \
    X(resize_fwd, (float *y, const float *x, int NC, int H, int W, int OH, int OW,               \
          int align_corners),                                                                    \
      (y, x, NC, H, W, OH, OW, align_corners), (y, x))                                           \
    X(resize_bwd, (float *dx, const float *dy, int NC, int H, int W, int OH, int OW,             \
          int align_corners),                                                                    \
      (dx, dy, NC, H, W, OH, OW, align_corners), (dx, dy))                                       \
    X(mean_fwd, (float *y, const float *x, int rows, int n),                                     \
      (y, x, rows, n), (y, x))                                                                   \
    X(mean_bwd, (float *dx, const float *dy, int rows, int n),                                   \
      (dx, dy, rows, n), (dx, dy))                                                               \
    X(chmean_fwd, (float *y, const float *x, int N, int C, int HW),                              \
      (y, x, N, C, HW), (y, x))                                                                  \
    X(chmean_bwd, (float *dx, const float *dy, int N, int C, int HW),                            \
      (dx, dy, N, C, HW), (dx, dy))                                                              \
    X(concat_fwd, (float *y, const float *x, int N, int Cx, int HW, int Cy, int c0),             \
      (y, x, N, Cx, HW, Cy, c0), (y, x))                                                         \
    X(concat_bwd, (float *dx, const float *dy, int N, int Cx, int HW, int Cy, int c0),           \
      (dx, dy, N, Cx, HW, Cy, c0), (dx, dy))                                                     \
    X(add_fwd, (float *y, const float *x, const float *s, const struct avs_bcast *bc),           \
      (y, x, s, bc), (y, x, s))                                                                  \
    X(add_bwd, (float *ds, const float *dy, const struct avs_bcast *bc),                         \
      (ds, dy, bc), (ds, dy))                                                                    \
    X(mul_fwd, (float *y, const float *x, const float *s, const struct avs_bcast *bc),           \
      (y, x, s, bc), (y, x, s))                                                                  \
    X(mul_bwd, (float *dx, float *ds, const float *dy, const float *x, const float *s,           \
          const struct avs_bcast *bc),                                                           \
      (dx, ds, dy, x, s, bc), (dx, ds, dy, x, s))                                                \
    X(axpy, (float *y, float alpha, const float *x, size_t n),                                   \
      (y, alpha, x, n), (y, x))                                                                  \
    X(adam, (float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,       \
          double b2, double eps, double wd, long step),                                          \
      (p, g, m, v, n, lr, b1, b2, eps, wd, step), (p, g, m, v))                                  \
    X(adam_zero, (float *p, float *g, float *m, float *v, size_t n, double lr, double b1,        \
          double b2, double eps, double wd, long step),                                          \
      (p, g, m, v, n, lr, b1, b2, eps, wd, step), (p, g, m, v))                                  \
    X(transpose, (float *y, const float *x, int N, int R, int C),                                \
      (y, x, N, R, C), (y, x))                                                                   \
    X(dwconv3_fwd, (float *y, const float *x, const float *w, const float *b, int N, int H,      \
          int W, int C, float *ws),                                                              \
      (y, x, w, b, N, H, W, C, ws), (y, x, w, b, ws))                                            \
    X(dwconv3_bwd_data, (float *dx, const float *dy, const float *w, int N, int H, int W, int C, \
          float *ws),                                                                            \
      (dx, dy, w, N, H, W, C, ws), (dx, dy, w, ws))                                              \
    X(dwconv3_bwd_filter, (float *dw, float *db, const float *dy, const float *x, int N, int H,  \
          int W, int C, float *ws),                                                              \
      (dw, db, dy, x, N, H, W, C, ws), (dw, db, dy, x, ws))                                      \
    X(tokmean_fwd, (float *y, const float *x, int N, int L, int C),                              \
      (y, x, N, L, C), (y, x))                                                                   \
    X(tokmean_bwd, (float *dx, const float *dy, int N, int L, int C),                            \
      (dx, dy, N, L, C), (dx, dy))                                                               \
    X(maxpool2_fwd, (float *y, const float *x, int NC, int H, int W),                            \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(maxpool3s2_fwd, (float *y, const float *x, int NC, int H, int W),                          \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(maxpool3s2_bwd, (float *dx, const float *dy, const float *x, int NC, int H, int W),        \
      (dx, dy, x, NC, H, W), (dx, dy, x))                                                        \
    X(avgpool2_fwd, (float *y, const float *x, int NC, int H, int W),                            \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(adapool_fwd, (float *y, const float *x, int NC, int H, int W, int OH, int OW),            \
      (y, x, NC, H, W, OH, OW), (y, x))                                                          \
    X(adapool_bwd, (float *dx, const float *dy, int NC, int H, int W, int OH, int OW),          \
      (dx, dy, NC, H, W, OH, OW), (dx, dy))                                                      \
    X(rowmax_fwd, (float *y, const float *x, int rows, int n),                                   \
      (y, x, rows, n), (y, x))                                                                   \
    X(taps_split, (float *wt, const float *w, int K, int C, int T),                              \
      (wt, w, K, C, T), (wt, w))                                                                 \
    X(taps_merge, (float *dw, const float *dwt, int K, int C, int T),                            \
      (dw, dwt, K, C, T), (dw, dwt))                                                             \
    X(up2conv_compose, (float *kc, float *kcb, const float *w, const float *b, int K, int C),    \
      (kc, kcb, w, b, K, C), (kc, kcb, w, b))                                                    \
    X(up2conv_decompose, (float *dw, float *db, const float *dkc, const float *dkcb, int K,      \
          int C),                                                                                \
      (dw, db, dkc, dkcb, K, C), (dw, db, dkc, dkcb))                                            \
    X(pad_replicate, (float *y, const float *x, int NC, int H, int W),                           \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(pad_replicate_bwd, (float *dx, const float *dy, int NC, int H, int W),                     \
      (dx, dy, NC, H, W), (dx, dy))                                                              \
    X(pixel_shuffle2, (float *y, const float *x, int NC, int H, int W),                          \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(pixel_unshuffle2, (float *y, const float *x, int NC, int H, int W),                        \
      (y, x, NC, H, W), (y, x))                                                                  \
    X(up2_ring_cols, (float *col, const float *hp, int B, int C, int H, int W),                  \
      (col, hp, B, C, H, W), (col, hp))                                                          \
    X(up2_ring_cols_bwd, (float *dhp, const float *col, int B, int C, int H, int W),             \
      (dhp, col, B, C, H, W), (dhp, col))                                                        \
    X(ring_set, (float *y, const float *yr, const float *b, int B, int K, int P, int Q),         \
      (y, yr, b, B, K, P, Q), (y, yr, b))                                                        \
    X(ring_take, (float *yr, float *y, int B, int K, int P, int Q),                              \
      (yr, y, B, K, P, Q), (yr, y))                                                              \
    X(l2norm_rows, (float *y, const float *x, int rows, int cols, float eps),                    \
      (y, x, rows, cols, eps), (y, x))                                                           \
    X(ccam_bwd, (float *dx, const float *dout, const float *s, const float *x1, const float *sm, \
          int N, int C, int HW, float *ws),                                                      \
      (dx, dout, s, x1, sm, N, C, HW, ws), (dx, dout, s, x1, sm, ws))                          \
    X(gather_rows, (float *y, const float *x, const int *idx, int n, int C),                    \
      (y, x, idx, n, C), (y, x, idx))                                                            \
    X(scatter_rows_add, (float *y, const float *x, const int *idx, int n, int C),               \
      (y, x, idx, n, C), (y, x, idx))                                                      \
    X(attpool_fwd, (float *y, float *s, const float *a, const float *v, const int *off, int N,    \
          int T, int C, float eps),                                                              \
      (y, s, a, v, off, N, T, C, eps), (y, s, a, v, off))                                        \
    X(attpool_bwd, (float *da, float *dv, const float *dy, const float *s, const float *v,        \
          const float *y, const int *off, int N, int T, int C, float eps),                       \
      (da, dv, dy, s, v, y, off, N, T, C, eps), (da, dv, dy, s, v, y, off))                      \
    X(quant8_fwd, (float *y, const float *x, size_t n),                                          \
      (y, x, n), (y, x))                                                                         \
    X(dropout_fwd, (float *y, float *mask, const float *x, size_t n, float p,                    \
          unsigned long long seed),                                                              \
      (y, mask, x, n, p, seed), (y, mask, x))                                                    \
    X(dropout_bwd, (float *dx, const float *dy, const float *mask, size_t n),                    \
      (dx, dy, mask, n), (dx, dy, mask))

#define AVS_OPS_DOUBLE(X)                                                                        \
    X(bce_logits, (float *dx, const float *x, const float *g, int B, int n, float scale),        \
      (dx, x, g, B, n, scale), (dx, x, g))                                                       \
    X(dice, (float *dx, const float *x, const float *g, int B, int n, float scale),              \
      (dx, x, g, B, n, scale), (dx, x, g))                                                       \
    X(softmax_ce, (float *dx, const float *x, const float *lab, int B, int C, int n,             \
          float scale),                                                                          \
      (dx, x, lab, B, C, n, scale), (dx, x, lab))                                                \
    X(softmax_kl, (float *dv, float *da, const float *v, const float *a, int rows, int cols,     \
          float scale),                                                                          \
      (dv, da, v, a, rows, cols, scale), (dv, da, v, a))

#endif
