/* backend/cuda/k_resize.cu: bilinear resize (PyTorch's F.interpolate, align_corners true or
 * false, any sizes), VGGish's 2x2 and ResNet's 3x3 stride-2 max-pools, PANNs' 2x2 average
 * pool and row max on the GPU (backend/ops.h).
 *   fwd: a thread per output pixel (backend/cuda/k_math.h avs_k_resize_at).
 *   bwd: a thread per input pixel gathering the output pixels that read it (their ranges by
 *        binary search on the monotone source index, avs_k_resize_inv), in the cpu's order:
 *        no atomics, one writer per element. */
#include "backend/cuda/k_loop.cuh"

__global__ static void resize_fwd_k(float *y, const float *x, size_t tot, int H, int W, int OH,
                                    int OW, int ac)
{
    AVS_K_FOR(k, tot) {
        size_t ox = k % (size_t)OW, oy = (k / OW) % (size_t)OH, p = k / ((size_t)OW * OH);
        y[k] = avs_k_resize_at(x + p * H * W, H, W, OH, OW, ac, (int)oy, (int)ox);
    }
}

__global__ static void resize_bwd_k(float *dx, const float *dy, size_t tot, int H, int W, int OH,
                                    int OW, int ac)
{
    AVS_K_FOR(k, tot) {
        size_t xx = k % (size_t)W, yy = (k / W) % (size_t)H, p = k / ((size_t)W * H);
        dx[k] += avs_k_resize_gather(dy + p * OH * OW, H, W, OH, OW, ac, (int)yy, (int)xx);
    }
}

void avs_cu_resize_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW,
                       int align_corners)
{
    size_t tot = (size_t)NC * OH * OW;
    if (tot == 0)
        return;
    AVS_K_GO(resize_fwd_k, tot)(y, x, tot, H, W, OH, OW, align_corners);
    AVS_CU_LAUNCHED("resize_fwd", "NC=%d %dx%d -> %dx%d ac=%d", NC, H, W, OH, OW, align_corners);
}

void avs_cu_resize_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW,
                       int align_corners)
{
    size_t tot = (size_t)NC * H * W;
    if (tot == 0 || OH <= 0 || OW <= 0)
        return;
    AVS_K_GO(resize_bwd_k, tot)(dx, dy, tot, H, W, OH, OW, align_corners);
    AVS_CU_LAUNCHED("resize_bwd", "NC=%d %dx%d <- %dx%d ac=%d", NC, H, W, OH, OW, align_corners);
}

__global__ static void maxpool2_k(float *y, const float *x, size_t tot, int H, int W)
{
    int OH = H / 2, OW = W / 2;
    AVS_K_FOR(k, tot) {
        size_t j = k % (size_t)OW, i = (k / OW) % (size_t)OH, c = k / ((size_t)OW * OH);
        const float *p = x + (c * H + 2 * i) * W + 2 * j;
        float a = p[0] > p[1] ? p[0] : p[1], b = p[W] > p[W + 1] ? p[W] : p[W + 1];
        y[k] = a > b ? a : b;
    }
}

void avs_cu_maxpool2_fwd(float *y, const float *x, int NC, int H, int W)
{
    size_t tot = (size_t)NC * (H / 2) * (W / 2);
    if (tot == 0)
        return;
    AVS_K_GO(maxpool2_k, tot)(y, x, tot, H, W);
    AVS_CU_LAUNCHED("maxpool2_fwd", "NC=%d H=%d W=%d", NC, H, W);
}

/* nn.MaxPool2d(3, 2, 1): padding never wins (-inf) */
__global__ static void maxpool3s2_k(float *y, const float *x, size_t tot, int H, int W)
{
    int OH = (H + 1) / 2, OW = (W + 1) / 2;
    AVS_K_FOR(k, tot) {
        int j = (int)(k % (size_t)OW), i = (int)((k / OW) % (size_t)OH);
        size_t c = k / ((size_t)OW * OH);
        const float *p = x + c * H * W;
        float m = -INFINITY;
        for (int r = 2 * i - 1; r <= 2 * i + 1; r++)
            for (int s = 2 * j - 1; s <= 2 * j + 1; s++)
                if (r >= 0 && r < H && s >= 0 && s < W && p[(size_t)r * W + s] > m)
                    m = p[(size_t)r * W + s];
        y[k] = m;
    }
}

void avs_cu_maxpool3s2_fwd(float *y, const float *x, int NC, int H, int W)
{
    size_t tot = (size_t)NC * ((H + 1) / 2) * ((W + 1) / 2);
    if (tot == 0)
        return;
    AVS_K_GO(maxpool3s2_k, tot)(y, x, tot, H, W);
    AVS_CU_LAUNCHED("maxpool3s2_fwd", "NC=%d H=%d W=%d", NC, H, W);
}

/* the cpu's pool_arg3 (backend/cpu/tokens.c): first maximum of the window, row-major */
__device__ static int maxpool3s2_arg(const float *x, int H, int W, int i, int j)
{
    int best = -1;
    for (int r = 2 * i - 1; r <= 2 * i + 1; r++)
        for (int c = 2 * j - 1; c <= 2 * j + 1; c++)
            if (r >= 0 && r < H && c >= 0 && c < W &&
                (best < 0 || x[(size_t)r * W + c] > x[best]))
                best = r * W + c;
    return best;
}

/* a thread per input pixel: the windows whose maximum it is, summed in the cpu's order */
__global__ static void maxpool3s2_bwd_k(float *dx, const float *dy, const float *x, size_t tot,
                                        int H, int W)
{
    int OH = (H + 1) / 2, OW = (W + 1) / 2;
    AVS_K_FOR(k, tot) {
        int c = (int)(k % (size_t)W), r = (int)((k / W) % (size_t)H);
        size_t p = k / ((size_t)W * H);
        const float *xp = x + p * H * W, *g = dy + p * OH * OW;
        int i1 = (r + 1) / 2 < OH ? (r + 1) / 2 : OH - 1, j1 = (c + 1) / 2 < OW ? (c + 1) / 2 : OW - 1;
        float s = 0.0f;
        for (int i = r / 2; i <= i1; i++)
            for (int j = c / 2; j <= j1; j++)
                if (maxpool3s2_arg(xp, H, W, i, j) == r * W + c)
                    s += g[(size_t)i * OW + j];
        dx[k] += s;
    }
}

void avs_cu_maxpool3s2_bwd(float *dx, const float *dy, const float *x, int NC, int H, int W)
{
    size_t tot = (size_t)NC * H * W;
    if (tot == 0)
        return;
    AVS_K_GO(maxpool3s2_bwd_k, tot)(dx, dy, x, tot, H, W);
    AVS_CU_LAUNCHED("maxpool3s2_bwd", "NC=%d H=%d W=%d", NC, H, W);
}

__global__ static void avgpool2_k(float *y, const float *x, size_t tot, int H, int W)
{
    int OH = H / 2, OW = W / 2;
    AVS_K_FOR(k, tot) {
        size_t j = k % (size_t)OW, i = (k / OW) % (size_t)OH, c = k / ((size_t)OW * OH);
        const float *p = x + (c * H + 2 * i) * W + 2 * j;
        y[k] = (((p[0] + p[1]) + p[W]) + p[W + 1]) / 4.0f; /* the cpu's order */
    }
}

void avs_cu_avgpool2_fwd(float *y, const float *x, int NC, int H, int W)
{
    size_t tot = (size_t)NC * (H / 2) * (W / 2);
    if (tot == 0)
        return;
    AVS_K_GO(avgpool2_k, tot)(y, x, tot, H, W);
    AVS_CU_LAUNCHED("avgpool2_fwd", "NC=%d H=%d W=%d", NC, H, W);
}

/* nn.AdaptiveAvgPool2d's window of output index i along an axis of n inputs and m outputs:
 * [win_lo, win_hi), as the cpu's (backend/cpu/avmatch.c) */
static __device__ int win_lo(int i, int n, int m)
{
    return (int)((long long)i * n / m);
}

static __device__ int win_hi(int i, int n, int m)
{
    return (int)(((long long)(i + 1) * n + m - 1) / m);
}

/* a thread per output element, its window summed in double in row-major order */
__global__ static void adapool_k(float *y, const float *x, size_t tot, int H, int W, int OH,
                                 int OW)
{
    AVS_K_FOR(k, tot) {
        int j = (int)(k % (size_t)OW), i = (int)((k / OW) % (size_t)OH);
        size_t c = k / ((size_t)OW * OH);
        int r0 = win_lo(i, H, OH), r1 = win_hi(i, H, OH);
        int c0 = win_lo(j, W, OW), c1 = win_hi(j, W, OW);
        double s = 0;
        for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++)
                s += x[(c * H + r) * W + q];
        y[k] = (float)(s / ((double)(r1 - r0) * (c1 - c0)));
    }
}

void avs_cu_adapool_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW)
{
    size_t tot = (size_t)NC * OH * OW;
    if (tot == 0)
        return;
    AVS_K_GO(adapool_k, tot)(y, x, tot, H, W, OH, OW);
    AVS_CU_LAUNCHED("adapool_fwd", "NC=%d H=%d W=%d OH=%d OW=%d", NC, H, W, OH, OW);
}

/* a thread per input element: the windows holding it, in output order (no atomics) */
__global__ static void adapool_bwd_k(float *dx, const float *dy, size_t tot, int H, int W,
                                     int OH, int OW)
{
    AVS_K_FOR(k, tot) {
        int q = (int)(k % (size_t)W), r = (int)((k / W) % (size_t)H);
        size_t c = k / ((size_t)W * H);
        double s = 0;
        for (int i = (int)((long long)r * OH / H); i < OH && win_lo(i, H, OH) <= r; i++)
            for (int j = (int)((long long)q * OW / W); j < OW && win_lo(j, W, OW) <= q; j++) {
                double area = (double)(win_hi(i, H, OH) - win_lo(i, H, OH)) *
                              (win_hi(j, W, OW) - win_lo(j, W, OW));
                s += dy[(c * OH + i) * OW + j] / area;
            }
        dx[k] += (float)s;
    }
}

void avs_cu_adapool_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW)
{
    size_t tot = (size_t)NC * H * W;
    if (tot == 0)
        return;
    AVS_K_GO(adapool_bwd_k, tot)(dx, dy, tot, H, W, OH, OW);
    AVS_CU_LAUNCHED("adapool_bwd", "NC=%d H=%d W=%d OH=%d OW=%d", NC, H, W, OH, OW);
}

/* a thread per row: PANNs' rows are short (time steps after 5 poolings) */
__global__ static void rowmax_k(float *y, const float *x, size_t rows, int n)
{
    AVS_K_FOR(r, rows) {
        const float *p = x + r * n;
        float m = p[0];
        for (int i = 1; i < n; i++)
            m = p[i] > m ? p[i] : m;
        y[r] = m;
    }
}

void avs_cu_rowmax_fwd(float *y, const float *x, int rows, int n)
{
    if (rows <= 0 || n <= 0)
        return;
    AVS_K_GO(rowmax_k, (size_t)rows)(y, x, (size_t)rows, n);
    AVS_CU_LAUNCHED("rowmax_fwd", "rows=%d n=%d", rows, n);
}
