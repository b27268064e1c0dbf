/* backend/cuda/conv_plan.cuh: one cuDNN plan per conv2d geometry (conv_plan.cu): descriptors
 * and the three algorithms, chosen once (by cuDNN's heuristics, not by timing: the choice, and
 * so the bits, is the same on every run) and cached for the process.
 *
 * Algorithms: only those cuDNN reports CUDNN_DETERMINISTIC; under fp32 only FMA math (the
 * descriptor is set to CUDNN_FMA_MATH, so no TF32), under tf32 tensor-op math allowed; the
 * workspace of each is capped (AVS_CU_CONV_WS_MAX) so conv2d_ws stays a modest bound.
 */
#ifndef AVS_BACKEND_CUDA_CONV_PLAN_CUH
#define AVS_BACKEND_CUDA_CONV_PLAN_CUH

#include "backend/cuda/cu_lib.cuh"

#define AVS_CU_CONV_WS_MAX ((size_t)512 << 20)

struct avs_cu_conv_plan {
    struct avs_conv2d g;
    enum avs_precision prec;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t ws_bytes; /* the largest of the three */
};

/* The plan of g at the current precision (made on first use). */
const struct avs_cu_conv_plan *avs_cu_conv_plan_get(const struct avs_conv2d *g);

/* db [K] += the sum over n, t of dy [N,K,T] (fixed order); y [N,K,T] += b [K]. */
void avs_cu_channel_sum(float *db, const float *dy, int N, int K, size_t T, const char *op);
void avs_cu_channel_add(float *y, const float *b, int N, int K, size_t T, const char *op);

#define AVS_CONV_FMT                                                                              \
    "in [%d,%d,%d,%d] w [%d,%d,%d,%d] out [%d,%d,%d,%d] stride %d pad %d dil %d groups %d"
#define AVS_CONV_ARGS(g)                                                                          \
    (g)->N, (g)->C, (g)->H, (g)->W, (g)->K, (g)->C / (g)->groups, (g)->R, (g)->S, (g)->N, (g)->K, \
        (g)->P, (g)->Q, (g)->stride, (g)->pad, (g)->dil, (g)->groups

#endif
