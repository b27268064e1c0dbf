/* backend/cuda/conv_plan.cu: the cache of cuDNN conv plans (conv_plan.cuh). A process sees a
 * few dozen geometries, so the cache is a growing array searched linearly. */
#include <cstdlib>
#include <cstring>

#include "backend/cuda/conv_plan.cuh"

static struct avs_cu_conv_plan **plans;
static int nplans, cap;

static void make_descriptors(struct avs_cu_conv_plan *p, const struct avs_conv2d *g)
{
    const char *op = "conv2d plan";
    AVS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->N, g->C,
                                               g->H, g->W), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->N, g->K,
                                               g->P, g->Q), op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->K,
                                               g->C / g->groups, g->R, g->S),
                    op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g->pad, g->pad, g->stride, g->stride,
                                                    g->dil, g->dil, CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT),
                    op, AVS_CONV_FMT, AVS_CONV_ARGS(g));
    AVS_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, g->groups), op, AVS_CONV_FMT,
                    AVS_CONV_ARGS(g));
}

/* The math an algorithm runs with: fp32 forces FMA (no TF32) and refuses algorithms that need
 * tensor ops; tf32 takes what cuDNN proposes. -1: not acceptable. */
static int math_for(cudnnMathType_t proposed, enum avs_precision prec, cudnnMathType_t *use)
{
    if (prec == AVS_PRECISION_TF32) {
        *use = proposed;
        return 0;
    }
    if (proposed == CUDNN_TENSOR_OP_MATH || proposed == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return -1;
    *use = CUDNN_FMA_MATH;
    return 0;
}

/* The first algorithm of cuDNN's heuristic ranking that is deterministic, has an acceptable
 * math, a workspace under the cap, and that cuDNN accepts with that math (its workspace query
 * succeeds); if none is, the fallback (an implicit-GEMM algorithm, deterministic by cuDNN's
 * documentation) under the same checks. One function per pass: the three cuDNN families
 * differ only in types. */
#define CHOOSE_ALGO(fname, Perf, Algo, COUNT, get_v7, get_ws, fallback, field, mfield)             \
    static int try_##fname(struct avs_cu_conv_plan *p, Algo algo, cudnnMathType_t m)              \
    {                                                                                             \
        size_t ws = 0;                                                                            \
        if (cudnnSetConvolutionMathType(p->conv, m) != CUDNN_STATUS_SUCCESS ||                    \
            get_ws != CUDNN_STATUS_SUCCESS || ws > AVS_CU_CONV_WS_MAX)                            \
            return -1;                                                                            \
        p->field = algo;                                                                          \
        p->mfield = m;                                                                            \
        if (ws > p->ws_bytes)                                                                     \
            p->ws_bytes = ws;                                                                     \
        return 0;                                                                                 \
    }                                                                                             \
    static void fname(struct avs_cu_conv_plan *p, const struct avs_conv2d *g)                     \
    {                                                                                             \
        Perf perf[COUNT];                                                                         \
        int n = 0;                                                                                \
        AVS_CUDNN_CHECK(get_v7, #get_v7, AVS_CONV_FMT, AVS_CONV_ARGS(g));                         \
        for (int i = 0; i < n; i++) {                                                             \
            cudnnMathType_t m;                                                                    \
            if (perf[i].status == CUDNN_STATUS_SUCCESS &&                                         \
                perf[i].determinism == CUDNN_DETERMINISTIC &&                                     \
                !math_for(perf[i].mathType, p->prec, &m) && !try_##fname(p, perf[i].algo, m))     \
                return;                                                                           \
        }                                                                                         \
        cudnnMathType_t m = p->prec == AVS_PRECISION_TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; \
        if (!try_##fname(p, fallback, m))                                                         \
            return;                                                                               \
        avs_cu_die(#fname, "cuDNN offers no deterministic algorithm at this precision",          \
                   AVS_CONV_FMT, AVS_CONV_ARGS(g));                                               \
    }

CHOOSE_ALGO(choose_fwd, cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
            cudnnGetConvolutionForwardAlgorithm_v7(avs_cu_dnn(), p->x, p->w, p->conv, p->y,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
            cudnnGetConvolutionForwardWorkspaceSize(avs_cu_dnn(), p->x, p->w, p->conv, p->y, algo,
                                                    &ws),
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, fwd, fwd_math)
CHOOSE_ALGO(choose_bwd_data, cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
            cudnnGetConvolutionBackwardDataAlgorithm_v7(avs_cu_dnn(), p->w, p->y, p->conv, p->x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                        perf),
            cudnnGetConvolutionBackwardDataWorkspaceSize(avs_cu_dnn(), p->w, p->y, p->conv, p->x,
                                                         algo, &ws),
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, bwd_data, bwd_data_math)
CHOOSE_ALGO(choose_bwd_filter, cudnnConvolutionBwdFilterAlgoPerf_t,
            cudnnConvolutionBwdFilterAlgo_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
            cudnnGetConvolutionBackwardFilterAlgorithm_v7(avs_cu_dnn(), p->x, p->y, p->conv, p->w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                          &n, perf),
            cudnnGetConvolutionBackwardFilterWorkspaceSize(avs_cu_dnn(), p->x, p->y, p->conv,
                                                           p->w, algo, &ws),
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, bwd_filter, bwd_filter_math)

static struct avs_cu_conv_plan *make_plan(const struct avs_conv2d *g, enum avs_precision prec)
{
    struct avs_cu_conv_plan *p = (struct avs_cu_conv_plan *)calloc(1, sizeof *p);
    if (!p)
        avs_cu_die("conv2d plan", "out of host memory", AVS_CONV_FMT, AVS_CONV_ARGS(g));
    p->g = *g;
    p->prec = prec;
    make_descriptors(p, g);
    cudnnMathType_t ask = prec == AVS_PRECISION_TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    AVS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, ask), "conv2d plan", AVS_CONV_FMT,
                    AVS_CONV_ARGS(g));
    choose_fwd(p, g);
    choose_bwd_data(p, g);
    choose_bwd_filter(p, g);
    return p;
}

const struct avs_cu_conv_plan *avs_cu_conv_plan_get(const struct avs_conv2d *g)
{
    enum avs_precision prec = avs_cu_precision();
    for (int i = nplans - 1; i >= 0; i--)
        if (plans[i]->prec == prec && !memcmp(&plans[i]->g, g, sizeof *g))
            return plans[i];
    if (nplans == cap) {
        cap = cap ? 2 * cap : 64;
        plans = (struct avs_cu_conv_plan **)realloc(plans, (size_t)cap * sizeof *plans);
        if (!plans)
            avs_cu_die("conv2d plan", "out of host memory", AVS_CONV_FMT, AVS_CONV_ARGS(g));
    }
    plans[nplans] = make_plan(g, prec);
    return plans[nplans++];
}
