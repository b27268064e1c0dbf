/* backend/cuda/ops_cuda.c: the CUDA backend's table (backend/ops.h), plain C: every entry is
 * an avs_cu_* function of backend/cuda/cuda_ops.h (ctx.cu, mem.cu, blas.cu, conv.cu,
 * tapconv.cu, k_*.cu). GEMMs and convolutions are booked in avs_ops_flops as on the CPU.
 * backend/backend.c registers the table when this build has CUDA and a GPU is present.
 */
#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda_ctx.h"
#include "backend/cuda/cuda_ops.h"

static void counted_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc)
{
    avs_cpu_flops_add(2.0 * M * N * (double)K);
    avs_cu_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void counted_conv2d_fwd(float *out, const float *in, const float *w, const float *b,
                               const struct avs_conv2d *g, float *ws)
{
    avs_cpu_flops_add(avs_conv2d_flops(g));
    avs_cu_conv2d_fwd(out, in, w, b, g, ws);
}

static void counted_conv2d_bwd_data(float *din, const float *dout, const float *w,
                                    const struct avs_conv2d *g, float *ws)
{
    avs_cpu_flops_add(avs_conv2d_flops(g));
    avs_cu_conv2d_bwd_data(din, dout, w, g, ws);
}

static void counted_conv2d_bwd_data_set(float *din, const float *dout, const float *w,
                                        const struct avs_conv2d *g, float *ws)
{
    avs_cpu_flops_add(avs_conv2d_flops(g));
    avs_cu_conv2d_bwd_data_set(din, dout, w, g, ws);
}

static void counted_conv2d_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                      const struct avs_conv2d *g, float *ws)
{
    avs_cpu_flops_add(avs_conv2d_flops(g));
    avs_cu_conv2d_bwd_filter(dw, db, dout, in, g, ws);
}

static void counted_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                                const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cu_tapconv_fwd(out, in, w, b, g, ws);
}

static void counted_tapconv_bwd_data(float *din, const float *dout, const float *w,
                                     const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cu_tapconv_bwd_data(din, dout, w, g, ws);
}

static void counted_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                       const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cu_tapconv_bwd_filter(dw, db, dout, in, g, ws);
}

static const struct avs_ops cuda_ops = {
    .name = "cuda",
    .about = "NVIDIA GPU: cuDNN convolutions, cuBLAS GEMMs, own kernels (cuda:N picks the "
             "device)",
    .alloc = avs_cu_alloc,
    .free = avs_cu_free,
    .zero = avs_cu_zero,
    .upload = avs_cu_upload,
    .download = avs_cu_download,
    .copy = avs_cu_copy,
    .fill = avs_cu_fill,
    .sync = avs_cu_sync,
    .settings = avs_cu_settings,
    .conv2d_ws = avs_cu_conv2d_ws,
    .tapconv_ws = avs_cu_tapconv_ws,
    .gemm = counted_gemm,
    .conv2d_fwd = counted_conv2d_fwd,
    .conv2d_bwd_data = counted_conv2d_bwd_data,
    .conv2d_bwd_filter = counted_conv2d_bwd_filter,
    .conv2d_bwd_data_set = counted_conv2d_bwd_data_set,
    .tapconv_fwd = counted_tapconv_fwd,
    .tapconv_bwd_data = counted_tapconv_bwd_data,
    .tapconv_bwd_filter = counted_tapconv_bwd_filter,
    .bias_fwd = avs_cu_bias_fwd,
    .bias_bwd = avs_cu_bias_bwd,
    .relu_fwd = avs_cu_relu_fwd,
    .relu_bwd = avs_cu_relu_bwd,
    .gelu_fwd = avs_cu_gelu_fwd,
    .gelu_bwd = avs_cu_gelu_bwd,
    .sigmoid_fwd = avs_cu_sigmoid_fwd,
    .sigmoid_bwd = avs_cu_sigmoid_bwd,
    .softmax_fwd = avs_cu_softmax_fwd,
    .softmax_bwd = avs_cu_softmax_bwd,
    .layernorm_fwd = avs_cu_layernorm_fwd,
    .layernorm_bwd = avs_cu_layernorm_bwd,
    .batchnorm_fwd = avs_cu_batchnorm_fwd,
    .batchnorm_bwd = avs_cu_batchnorm_bwd,
    .resize_fwd = avs_cu_resize_fwd,
    .resize_bwd = avs_cu_resize_bwd,
    .mean_fwd = avs_cu_mean_fwd,
    .mean_bwd = avs_cu_mean_bwd,
    .chmean_fwd = avs_cu_chmean_fwd,
    .chmean_bwd = avs_cu_chmean_bwd,
    .concat_fwd = avs_cu_concat_fwd,
    .concat_bwd = avs_cu_concat_bwd,
    .add_fwd = avs_cu_add_fwd,
    .add_bwd = avs_cu_add_bwd,
    .mul_fwd = avs_cu_mul_fwd,
    .mul_bwd = avs_cu_mul_bwd,
    .axpy = avs_cu_axpy,
    .bce_logits = avs_cu_bce_logits,
    .dice = avs_cu_dice,
    .softmax_ce = avs_cu_softmax_ce,
    .softmax_kl = avs_cu_softmax_kl,
    .adam = avs_cu_adam,
    .adam_zero = avs_cu_adam_zero,
    .transpose = avs_cu_transpose,
    .dwconv3_fwd = avs_cu_dwconv3_fwd,
    .dwconv3_bwd_data = avs_cu_dwconv3_bwd_data,
    .dwconv3_bwd_filter = avs_cu_dwconv3_bwd_filter,
    .tokmean_fwd = avs_cu_tokmean_fwd,
    .tokmean_bwd = avs_cu_tokmean_bwd,
    .maxpool2_fwd = avs_cu_maxpool2_fwd,
    .maxpool3s2_fwd = avs_cu_maxpool3s2_fwd,
    .maxpool3s2_bwd = avs_cu_maxpool3s2_bwd,
    .avgpool2_fwd = avs_cu_avgpool2_fwd,
    .adapool_fwd = avs_cu_adapool_fwd,
    .adapool_bwd = avs_cu_adapool_bwd,
    .rowmax_fwd = avs_cu_rowmax_fwd,
    .taps_split = avs_cu_taps_split,
    .taps_merge = avs_cu_taps_merge,
    .up2conv_compose = avs_cu_up2conv_compose,
    .up2conv_decompose = avs_cu_up2conv_decompose,
    .pad_replicate = avs_cu_pad_replicate,
    .pad_replicate_bwd = avs_cu_pad_replicate_bwd,
    .pixel_shuffle2 = avs_cu_pixel_shuffle2,
    .pixel_unshuffle2 = avs_cu_pixel_unshuffle2,
    .up2_ring_cols = avs_cu_up2_ring_cols,
    .up2_ring_cols_bwd = avs_cu_up2_ring_cols_bwd,
    .ring_set = avs_cu_ring_set,
    .ring_take = avs_cu_ring_take,
    .l2norm_rows = avs_cu_l2norm_rows,
    .ccam_bwd = avs_cu_ccam_bwd,
    .gather_rows = avs_cu_gather_rows,
    .scatter_rows_add = avs_cu_scatter_rows_add,
    .attpool_fwd = avs_cu_attpool_fwd,
    .attpool_bwd = avs_cu_attpool_bwd,
    .quant8_fwd = avs_cu_quant8_fwd,
    .dropout_fwd = avs_cu_dropout_fwd,
    .dropout_bwd = avs_cu_dropout_bwd,
};

const struct avs_ops *avs_backend_cuda(void)
{
    return &cuda_ops;
}
