/* backend/cuda/k_loss.cu: the losses of the CUDA backend (backend/ops.h): bce_logits, dice,
 * softmax_ce, softmax_kl. Each writes its gradient on the device and returns the loss:
 * per-thread double sums over a grid whose size depends on the shape only, a shared-memory
 * tree per block, the blocks' partials added in a fixed tree by one block, and the scalar
 * downloaded (the only host sync of the kernels). Per element the arithmetic is the cpu's
 * (backend/cpu/ops_cpu.c, backend/cpu/loss.c, backend/cpu/avmatch.c). */
#include "backend/cuda/k_reduce.cuh"

#define LOSS_BLOCKS_MAX 1024
#define DICE_B_MAX 4096

static __device__ double loss_val;
static __device__ double dice_nd[2 * DICE_B_MAX]; /* num, den per image */

static unsigned loss_blocks(size_t n)
{
    size_t b = (n + AVS_CU_BLOCK - 1) / AVS_CU_BLOCK;
    return b < LOSS_BLOCKS_MAX ? (unsigned)(b ? b : 1) : LOSS_BLOCKS_MAX;
}

/* the block's sum of v into partial blockIdx.x */
static __device__ void block_partial(double v)
{
    v = avs_k_block_sum(v);
    if (threadIdx.x == 0)
        avs_k_part[blockIdx.x] = v;
}

/* loss_val = (sum of the first nb partials) / div: one block */
__global__ static void loss_finish_k(unsigned nb, double div)
{
    double v = 0;
    for (unsigned j = threadIdx.x; j < nb; j += AVS_CU_BLOCK)
        v += avs_k_part[j];
    v = avs_k_block_sum(v);
    if (threadIdx.x == 0)
        loss_val = v / div;
}

static double loss_download(const char *op)
{
    double h = 0;
    AVS_CU_CHECK(cudaMemcpyFromSymbolAsync(&h, loss_val, sizeof h, 0, cudaMemcpyDeviceToHost,
                                           avs_cu_stream()),
                 op, "loss download");
    AVS_CU_CHECK(cudaStreamSynchronize(avs_cu_stream()), op, "loss sync");
    return h;
}

/* ---- BCE with logits, mean over all B*n ---- */

__global__ static void bce_k(float *dx, const float *x, const float *g, size_t tot, float scale)
{
    double s = 0;
    for (size_t i = blockIdx.x * (size_t)AVS_CU_BLOCK + threadIdx.x; i < tot;
         i += (size_t)gridDim.x * AVS_CU_BLOCK) {
        float v = x[i];
        s += avs_k_bce_term(v, g[i]);
        if (dx)
            dx[i] = scale * (avs_k_sigmoid(v) - g[i]) / (float)tot;
    }
    block_partial(s);
}

double avs_cu_bce_logits(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    size_t tot = (size_t)B * n;
    unsigned nb = loss_blocks(tot);
    bce_k<<<nb, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(dx, x, g, tot, scale);
    AVS_CU_LAUNCHED("bce_logits", "B=%d n=%d", B, n);
    loss_finish_k<<<1, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(nb, (double)tot);
    AVS_CU_LAUNCHED("bce_logits", "B=%d n=%d (finish)", B, n);
    return loss_download("bce_logits");
}

/* ---- Dice: 1 - mean_b 2(sum p g + 1)/(sum p + sum g + 1) ---- */

/* block (s, b): its chunk of image b's sums p g, p, g into partials ((b*S + s)*3 + q) */
__global__ static void dice_sums_k(const float *x, const float *g, int n, int S)
{
    int s = blockIdx.x, b = blockIdx.y, chunk = (n + S - 1) / S;
    int i0 = s * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
    const float *xb = x + (size_t)b * n, *gb = g + (size_t)b * n;
    double spg = 0, sp = 0, sg = 0;
    for (int i = i0 + threadIdx.x; i < i1; i += AVS_CU_BLOCK) {
        double p = 1.0 / (1.0 + exp(-(double)xb[i]));
        spg += p * gb[i];
        sp += p;
        sg += gb[i];
    }
    spg = avs_k_block_sum(spg), sp = avs_k_block_sum(sp), sg = avs_k_block_sum(sg);
    if (threadIdx.x == 0) {
        double *o = avs_k_part + ((size_t)b * S + s) * 3;
        o[0] = spg, o[1] = sp, o[2] = sg;
    }
}

/* one thread: each image's num, den (splits in order), the loss (images in order) */
__global__ static void dice_finish_k(int B, int S)
{
    double loss = 0;
    for (int b = 0; b < B; b++) {
        double t[3] = {0, 0, 0};
        for (int s = 0; s < S; s++)
            for (int q = 0; q < 3; q++)
                t[q] += avs_k_part[((size_t)b * S + s) * 3 + q];
        double num = 2 * (t[0] + 1), den = t[1] + t[2] + 1;
        dice_nd[2 * b] = num, dice_nd[2 * b + 1] = den;
        loss += 1 - num / den;
    }
    loss_val = loss / B;
}

__global__ static void dice_dx_k(float *dx, const float *x, const float *g, int B, int n,
                                 float scale)
{
    AVS_K_FOR(k, (size_t)B * n) {
        size_t b = k / (size_t)n;
        double num = dice_nd[2 * b], den = dice_nd[2 * b + 1];
        double p = 1.0 / (1.0 + exp(-(double)x[k]));
        double dp = -(2 * g[k] * den - num) / (den * den) / B;
        dx[k] = (float)(scale * dp * p * (1 - p));
    }
}

double avs_cu_dice(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    if (B <= 0)
        return 0;
    if (B > DICE_B_MAX)
        avs_cu_die("dice", "more images than the kernel holds", "B=%d n=%d (at most %d)", B, n,
                   DICE_B_MAX);
    int S = avs_k_splits((size_t)n, (size_t)B * 3, 16384);
    dice_sums_k<<<dim3((unsigned)S, (unsigned)B), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(x, g, n, S);
    AVS_CU_LAUNCHED("dice", "B=%d n=%d", B, n);
    dice_finish_k<<<1, 1, 0, avs_cu_stream()>>>(B, S);
    AVS_CU_LAUNCHED("dice", "B=%d n=%d (finish)", B, n);
    if (dx) {
        AVS_K_GO(dice_dx_k, (size_t)B * n)(dx, x, g, B, n, scale);
        AVS_CU_LAUNCHED("dice", "B=%d n=%d (dx)", B, n);
    }
    return loss_download("dice");
}

/* ---- softmax cross-entropy over classes, x [B,C,n], labels [B,n] ---- */

/* a thread per pixel (classes in order, coalesced along the pixels) */
__global__ static void ce_k(float *dx, const float *x, const float *lab, int B, int C, int n,
                            float k)
{
    double sum = 0;
    size_t tot = (size_t)B * n;
    for (size_t t = blockIdx.x * (size_t)AVS_CU_BLOCK + threadIdx.x; t < tot;
         t += (size_t)gridDim.x * AVS_CU_BLOCK) {
        size_t b = t / (size_t)n, i = t % (size_t)n;
        const float *xb = x + b * C * n + i;
        int y = avs_k_ce_label(lab[t], C);
        double m = avs_k_ce_logsumexp(xb, n, C);
        sum += m - xb[(size_t)y * n];
        if (!dx)
            continue;
        float *db = dx + b * C * n + i;
        for (int c = 0; c < C; c++) {
            double p = exp((double)xb[(size_t)c * n] - m);
            db[(size_t)c * n] = (float)(k * (p - (y == c)));
        }
    }
    block_partial(sum);
}

double avs_cu_softmax_ce(float *dx, const float *x, const float *lab, int B, int C, int n,
                         float scale)
{
    size_t tot = (size_t)B * n;
    if (tot == 0)
        return 0;
    unsigned nb = loss_blocks(tot);
    float k = scale / ((float)B * (float)n);
    ce_k<<<nb, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(dx, x, lab, B, C, n, k);
    AVS_CU_LAUNCHED("softmax_ce", "B=%d C=%d n=%d", B, C, n);
    loss_finish_k<<<1, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(nb, (double)tot);
    AVS_CU_LAUNCHED("softmax_ce", "B=%d C=%d n=%d (finish)", B, C, n);
    return loss_download("softmax_ce");
}

/* ---- AVSBench's audio-visual matching: KL(softmax(a) || softmax(v)) summed over rows ---- */

/* one block; a thread per row (rows are a batch's frames, columns the head width), each row in
 * double as the cpu's kl_row (backend/cpu/avmatch.c); the threads' sums in a fixed tree */
__global__ static void kl_k(float *dv, float *da, const float *v, const float *a, int rows,
                            int n, double k)
{
    double tot = 0;
    for (int r = threadIdx.x; r < rows; r += AVS_CU_BLOCK) {
        const float *vr = v + (size_t)r * n, *ar = a + (size_t)r * n;
        double mv = vr[0], ma = ar[0], sv = 0, sa = 0, kl = 0;
        for (int i = 1; i < n; i++) {
            mv = vr[i] > mv ? vr[i] : mv;
            ma = ar[i] > ma ? ar[i] : ma;
        }
        for (int i = 0; i < n; i++) {
            sv += exp(vr[i] - mv);
            sa += exp(ar[i] - ma);
        }
        double lv = mv + log(sv), la = ma + log(sa);
        for (int i = 0; i < n; i++) {
            double lq = ar[i] - la;
            kl += exp(lq) * (lq - (vr[i] - lv));
        }
        for (int i = 0; i < n; i++) {
            double lq = ar[i] - la, lp = vr[i] - lv;
            if (dv)
                dv[(size_t)r * n + i] = (float)(k * (exp(lp) - exp(lq)));
            if (da)
                da[(size_t)r * n + i] = (float)(k * exp(lq) * ((lq - lp) - kl));
        }
        tot += kl;
    }
    tot = avs_k_block_sum(tot);
    if (threadIdx.x == 0)
        loss_val = tot;
}

double avs_cu_softmax_kl(float *dv, float *da, const float *v, const float *a, int rows,
                         int cols, float scale)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    kl_k<<<1, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(dv, da, v, a, rows, cols, scale);
    AVS_CU_LAUNCHED("softmax_kl", "rows=%d cols=%d", rows, cols);
    return loss_download("softmax_kl");
}
