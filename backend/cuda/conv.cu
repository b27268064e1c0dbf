/* backend/cuda/conv.cu: conv2d through cuDNN (conv_plan.cu picks the algorithms), the bias
 * and its gradient (own kernels: a fixed reduction order), and the scratch bound.
 *
 * Contract (backend/ops.h): fwd overwrites out (bias b may be NULL); bwd_data ADDS into din
 * (beta = 1), bwd_data_set overwrites it (beta = 0); bwd_filter ADDS into dw (beta = 1) and db
 * (may be NULL). ws: conv2d_ws(g) floats, the largest workspace of the three chosen algorithms.
 */
#include "backend/cuda/conv_plan.cuh"

/* db[k] += sum over n, t of dy[n,k,t] for dy [N,K,T]: one block per channel, each thread sums
 * a fixed stride of the elements in double, then a fixed tree (the same bits on every run). */
__global__ void channel_sum_kernel(float *db, const float *dy, int N, int K, size_t T)
{
    __shared__ double part[AVS_CU_BLOCK];
    int k = blockIdx.x;
    size_t total = (size_t)N * T;
    double s = 0;
    for (size_t i = threadIdx.x; i < total; i += blockDim.x) {
        size_t n = i / T, t = i % T;
        s += dy[(n * K + k) * T + t];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h)
            part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        db[k] += (float)part[0]; /* as the CPU: the double sum rounded, then added */
}

void avs_cu_channel_sum(float *db, const float *dy, int N, int K, size_t T, const char *op)
{
    if (K <= 0)
        return;
    channel_sum_kernel<<<K, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(db, dy, N, K, T);
    AVS_CU_LAUNCHED(op, "db: N=%d K=%d T=%zu", N, K, T);
}

/* y [N,K,T] += b[k] */
__global__ void channel_add_kernel(float *y, const float *b, int K, size_t T, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += b[(i / T) % K];
}

void avs_cu_channel_add(float *y, const float *b, int N, int K, size_t T, const char *op)
{
    size_t n = (size_t)N * K * T;
    if (!n)
        return;
    channel_add_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(y, b, K, T, n);
    AVS_CU_LAUNCHED(op, "bias: N=%d K=%d T=%zu", N, K, T);
}

size_t avs_cu_conv2d_ws(const struct avs_conv2d *g)
{
    return avs_cu_conv_plan_get(g)->ws_bytes / sizeof(float) + 16;
}

void avs_cu_conv2d_fwd(float *out, const float *in, const float *w, const float *b,
                       const struct avs_conv2d *g, float *ws)
{
    const struct avs_cu_conv_plan *p = avs_cu_conv_plan_get(g);
    const float zero = 0.0f, one = 1.0f;
    AVS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->fwd_math), "conv2d_fwd", AVS_CONV_FMT,
                    AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnConvolutionForward(avs_cu_dnn(), &one, p->x, in, p->w, w, p->conv, p->fwd,
                                            ws, p->ws_bytes, &zero, p->y, out),
                    "conv2d_fwd", AVS_CONV_FMT, AVS_CONV_ARGS(g));
    if (b)
        avs_cu_channel_add(out, b, g->N, g->K, (size_t)g->P * g->Q, "conv2d_fwd");
}

static void bwd_data(float *din, const float *dout, const float *w, const struct avs_conv2d *g,
                     float *ws, float beta, const char *op)
{
    const struct avs_cu_conv_plan *p = avs_cu_conv_plan_get(g);
    const float one = 1.0f;
    AVS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->bwd_data_math), op, AVS_CONV_FMT,
                    AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnConvolutionBackwardData(avs_cu_dnn(), &one, p->w, w, p->y, dout, p->conv,
                                                 p->bwd_data, ws, p->ws_bytes, &beta, p->x, din),
                    op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
}

void avs_cu_conv2d_bwd_data(float *din, const float *dout, const float *w,
                            const struct avs_conv2d *g, float *ws)
{
    bwd_data(din, dout, w, g, ws, 1.0f, "conv2d_bwd_data");
}

void avs_cu_conv2d_bwd_data_set(float *din, const float *dout, const float *w,
                                const struct avs_conv2d *g, float *ws)
{
    bwd_data(din, dout, w, g, ws, 0.0f, "conv2d_bwd_data_set");
}

void avs_cu_conv2d_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                              const struct avs_conv2d *g, float *ws)
{
    const struct avs_cu_conv_plan *p = avs_cu_conv_plan_get(g);
    const float one = 1.0f;
    AVS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->bwd_filter_math), "conv2d_bwd_filter",
                    AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnConvolutionBackwardFilter(avs_cu_dnn(), &one, p->x, in, p->y, dout,
                                                   p->conv, p->bwd_filter, ws, p->ws_bytes, &one,
                                                   p->w, dw),
                    "conv2d_bwd_filter", AVS_CONV_FMT, AVS_CONV_ARGS(g));
    if (db)
        avs_cu_channel_sum(db, dout, g->N, g->K, (size_t)g->P * g->Q, "conv2d_bwd_filter");
}
