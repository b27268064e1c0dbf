/* backend/cpu/cpu.h: internal to the CPU backend (backend/cpu/ *.c) and its guard wrapper;
 * networks use backend/ops.h. */
#ifndef AVS_BACKEND_CPU_CPU_H
#define AVS_BACKEND_CPU_CPU_H

#include "backend/ops.h"

/* p[0..n) = 0 on host memory; large blocks are cleared by all OpenMP threads (one core's
 * stores do not fill the memory bus). The table's zero. */
void avs_cpu_zero(float *p, size_t n);
/* Scratch sizes of the CPU paths (the table's conv2d_ws, tapconv_ws). */
size_t avs_cpu_conv2d_ws(const struct avs_conv2d *g);
size_t avs_cpu_tapconv_ws(const struct avs_tapconv *g);

/* The table's softmax_kl, adapool_fwd / adapool_bwd (backend/cpu/avmatch.c). */
double avs_cpu_softmax_kl(float *dv, float *da, const float *v, const float *a, int rows,
                          int cols, float scale);
void avs_cpu_adapool_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW);
void avs_cpu_adapool_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW);
/* The table's gelu_fwd, gelu_bwd: the exact (erf) form, vectorised (backend/cpu/gelu.c). */
void avs_cpu_gelu_fwd(float *y, const float *x, size_t n);
void avs_cpu_gelu_bwd(float *dx, const float *dy, const float *x, size_t n);
/* The table's softmax_ce (backend/cpu/loss.c). */
double avs_cpu_softmax_ce(float *dx, const float *x, const float *lab, int B, int C, int n,
                          float scale);
void avs_cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void avs_cpu_conv2d_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_conv2d *g, float *ws);
void avs_cpu_conv2d_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_conv2d *g, float *ws);
void avs_cpu_conv2d_bwd_data_set(float *din, const float *dout, const float *w,
                                 const struct avs_conv2d *g, float *ws);
void avs_cpu_conv2d_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                               const struct avs_conv2d *g, float *ws);
/* Winograd F(4x4,3x3) for 3x3 convs with stride 1, groups 1, padding = dilation x (0..2)
 * (dilated: per phase; backend/cpu/winograd.c); ws: avs_cpu_winograd_ws floats (bwd_double:
 * room for a backward-data pass in double). bwd_data (= or +=, by add) with dbl: transformed
 * domain in double, exact to about one float rounding; else float. bwd_filter adds into dw
 * (the bias gradient is the caller's). */
int avs_cpu_winograd_fits(const struct avs_conv2d *g);
size_t avs_cpu_winograd_ws(const struct avs_conv2d *g, int bwd_double);
/* 4x4 output tiles the transformed GEMMs run over (all images and phases). */
double avs_cpu_winograd_tiles(const struct avs_conv2d *g);
void avs_cpu_winograd_fwd(float *out, const float *in, const float *w, const float *b,
                          const struct avs_conv2d *g, float *ws);
void avs_cpu_winograd_bwd_data(float *din, int add, const float *dout, const float *w,
                               const struct avs_conv2d *g, float *ws, int dbl);
void avs_cpu_winograd_bwd_filter(float *dw, const float *dout, const float *in,
                                 const struct avs_conv2d *g, float *ws);

/* Which algorithm the CPU convs use: AUTO picks per geometry (Winograd where it fits and
 * pays, else the GEMM paths; Winograd's backward-data pass in double), the others force one
 * (tests, benchmarks); EXACT_BWD is AUTO with the GEMM paths' backward data, FAST_BWD AUTO with
 * Winograd's backward data in float (the fastest, the pre-double default, whose rounding shows
 * in the gradients: docs/backend.md, Numerics). Set it before sizing scratch with
 * avs_conv2d_ws: the size follows the choice. */
enum { AVS_CONV_AUTO, AVS_CONV_GEMM, AVS_CONV_WINOGRAD, AVS_CONV_EXACT_BWD, AVS_CONV_FAST_BWD };
void avs_cpu_conv_set_algo(int algo);
/* 1 if g's forward and backward-filter passes (_bwd_data: its backward-data pass) run through
 * Winograd under the current setting. */
int avs_cpu_conv_uses_winograd(const struct avs_conv2d *g);
int avs_cpu_conv_uses_winograd_bwd_data(const struct avs_conv2d *g);
/* 1 unless FAST_BWD: Winograd's backward-data pass runs in double. */
int avs_cpu_conv_bwd_data_double(void);
/* "" under AUTO, else "conv=gemm|winograd|exact-bwd|fast-bwd" (the table's settings member) */
const char *avs_cpu_conv_settings(void);

/* The GEMM of every CPU path, uncounted (avs_cpu_gemm counts): OpenMP threads each take a
 * slice of C (backend/cpu/conv.c). avs_cpu_flops_add books work done by a primitive. */
void avs_cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
void avs_cpu_flops_add(double flops);

/* Tap convs (model/ops_cpu_tapconv.c), ws: avs_tapconv_ws floats. The avs_cpu_op_* variants
 * are the table's entries (counted in avs_ops_flops); the others serve the conv paths. */
void avs_cpu_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                         const struct avs_tapconv *g, float *ws);
void avs_cpu_tapconv_bwd_data(float *din, const float *dout, const float *w,
                              const struct avs_tapconv *g, float *ws);
void avs_cpu_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                const struct avs_tapconv *g, float *ws);
void avs_cpu_op_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                            const struct avs_tapconv *g, float *ws);
void avs_cpu_op_tapconv_bwd_data(float *din, const float *dout, const float *w,
                                 const struct avs_tapconv *g, float *ws);
void avs_cpu_op_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                   const struct avs_tapconv *g, float *ws);

/* y [N,C,HW] += b [C] */
void avs_cpu_add_channel(float *y, const float *b, int N, int C, int HW);
/* db [C] += sums of dy [N,C,HW] over N and HW (fixed order, double accumulation) */
void avs_cpu_sum_channel(float *db, const float *dy, int N, int C, int HW);

/* Bilinear resize, the table's resize_fwd / resize_bwd (model/ops_cpu_resize.c). */
void avs_cpu_resize_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW, int ac);
void avs_cpu_resize_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW, int ac);
/* Tests: 1 makes resize_bwd take its general path (scatter per output row) at every size,
 * to check the transposed fast path against it; 0 (default): fast path where it fits. */
void avs_cpu_resize_force_general(int on);

/* PVT/VGGish token primitives (backend/cpu/tokens.c): the table's transpose, dwconv3_*,
 * tokmean_*, maxpool2_fwd, maxpool3s2_fwd/bwd; PANNs' avgpool2_fwd and rowmax_fwd. */
void avs_cpu_transpose(float *y, const float *x, int N, int R, int C);
void avs_cpu_dwconv3_fwd(float *y, const float *x, const float *w, const float *b, int N, int H,
                         int W, int C, float *ws);
void avs_cpu_dwconv3_bwd_data(float *dx, const float *dy, const float *w, int N, int H, int W,
                              int C, float *ws);
void avs_cpu_dwconv3_bwd_filter(float *dw, float *db, const float *dy, const float *x, int N,
                                int H, int W, int C, float *ws);
void avs_cpu_tokmean_fwd(float *y, const float *x, int N, int L, int C);
void avs_cpu_tokmean_bwd(float *dx, const float *dy, int N, int L, int C);
void avs_cpu_maxpool2_fwd(float *y, const float *x, int NC, int H, int W);
void avs_cpu_maxpool3s2_fwd(float *y, const float *x, int NC, int H, int W);
void avs_cpu_maxpool3s2_bwd(float *dx, const float *dy, const float *x, int NC, int H, int W);
void avs_cpu_avgpool2_fwd(float *y, const float *x, int NC, int H, int W);
void avs_cpu_rowmax_fwd(float *y, const float *x, int rows, int n);
/* The C3N head's primitives (backend/cpu/head.c; contracts in backend/ops.h, "head"). */
void avs_cpu_taps_split(float *wt, const float *w, int K, int C, int T);
void avs_cpu_taps_merge(float *dw, const float *dwt, int K, int C, int T);
void avs_cpu_up2conv_compose(float *kc, float *kcb, const float *w, const float *b, int K, int C);
void avs_cpu_up2conv_decompose(float *dw, float *db, const float *dkc, const float *dkcb, int K,
                               int C);
void avs_cpu_pad_replicate(float *y, const float *x, int NC, int H, int W);
void avs_cpu_pad_replicate_bwd(float *dx, const float *dy, int NC, int H, int W);
void avs_cpu_pixel_shuffle2(float *y, const float *x, int NC, int H, int W);
void avs_cpu_pixel_unshuffle2(float *y, const float *x, int NC, int H, int W);
void avs_cpu_up2_ring_cols(float *col, const float *hp, int B, int C, int H, int W);
void avs_cpu_up2_ring_cols_bwd(float *dhp, const float *col, int B, int C, int H, int W);
void avs_cpu_ring_set(float *y, const float *yr, const float *b, int B, int K, int P, int Q);
void avs_cpu_ring_take(float *yr, float *y, int B, int K, int P, int Q);
void avs_cpu_l2norm_rows(float *y, const float *x, int rows, int cols, float eps);
void avs_cpu_ccam_bwd(float *dx, const float *dout, const float *s, const float *x1,
                      const float *sm, int N, int C, int HW, float *ws);
/* Row gather/scatter (backend/cpu/rows.c; contracts in backend/ops.h, "rows"). */
void avs_cpu_gather_rows(float *y, const float *x, const int *idx, int n, int C);
void avs_cpu_scatter_rows_add(float *y, const float *x, const int *idx, int n, int C);

/* The AudioSet attention head's primitives (backend/cpu/attpool.c; backend/ops.h, "audioset"). */
void avs_cpu_attpool_fwd(float *y, float *s, const float *a, const float *v, const int *off,
                         int N, int T, int C, float eps);
void avs_cpu_attpool_bwd(float *da, float *dv, const float *dy, const float *s, const float *v,
                         const float *y, const int *off, int N, int T, int C, float eps);
void avs_cpu_quant8_fwd(float *y, const float *x, size_t n);
void avs_cpu_dropout_fwd(float *y, float *mask, const float *x, size_t n, float p,
                         unsigned long long seed);
void avs_cpu_dropout_bwd(float *dx, const float *dy, const float *mask, size_t n);

#endif
