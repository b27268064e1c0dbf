/* backend/cpu/loss.c: the CPU's pixel-wise cross-entropy over classes (backend/ops.h,
 * softmax_ce). ref: AVSBench avs_scripts/avss/loss.py (F10_IoU_BCELoss: nn.CrossEntropyLoss
 * per pixel, mean over the pixels of the frames that have labels).
 *
 * Layout: x [B,C,n], a class plane per frame, so the loop runs over blocks of BLK pixels of
 * one frame with the classes outside and the pixels inside (contiguous). Each block's loss
 * sum is a double computed by one thread; the blocks' sums are added in block order, so the
 * result is the same for any thread count. No allocation: the per-block sums of up to GROUP
 * blocks at a time live on the stack.
 */
#include <math.h>

#include "backend/cpu/cpu.h"

#define BLK 256
#define GROUP 512

static int label_of(float v, int C)
{
    int c = (int)v;
    return v >= 0 && c < C && (float)c == v ? c : 0;
}

/* One block: pixels [i0, i1) of frame b; returns its loss sum, writes its dx. */
static double ce_block(float *dx, const float *x, const float *lab, int b, int C, int n, int i0,
                       int i1, float k)
{
    double m[BLK], s[BLK], sum = 0;
    int y[BLK]; /* each pixel's class, once */
    const float *xb = x + (size_t)b * C * n;
    const float *lb = lab + (size_t)b * n;
    int len = i1 - i0;
    for (int i = 0; i < len; i++)
        m[i] = xb[i0 + i], s[i] = 0, y[i] = label_of(lb[i0 + i], C);
    for (int c = 1; c < C; c++)
        for (int i = 0; i < len; i++)
            m[i] = xb[(size_t)c * n + i0 + i] > m[i] ? xb[(size_t)c * n + i0 + i] : m[i];
    for (int c = 0; c < C; c++)
        for (int i = 0; i < len; i++)
            s[i] += exp((double)xb[(size_t)c * n + i0 + i] - m[i]);
    for (int i = 0; i < len; i++) {
        m[i] += log(s[i]); /* logsumexp */
        sum += m[i] - xb[(size_t)y[i] * n + i0 + i];
    }
    if (!dx)
        return sum;
    float *db = dx + (size_t)b * C * n;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < len; i++) {
            double p = exp((double)xb[(size_t)c * n + i0 + i] - m[i]);
            db[(size_t)c * n + i0 + i] = (float)(k * (p - (y[i] == c)));
        }
    return sum;
}

double avs_cpu_softmax_ce(float *dx, const float *x, const float *lab, int B, int C, int n,
                          float scale)
{
    int per = (n + BLK - 1) / BLK;
    long nblk = (long)B * per;
    double total = 0, part[GROUP];
    float k = scale / ((float)B * (float)n);
    for (long g0 = 0; g0 < nblk; g0 += GROUP) {
        long g1 = g0 + GROUP < nblk ? g0 + GROUP : nblk;
#pragma omp parallel for schedule(static) if (g1 - g0 > 1)
        for (long j = g0; j < g1; j++) {
            int b = (int)(j / per), i0 = (int)(j % per) * BLK;
            int i1 = i0 + BLK < n ? i0 + BLK : n;
            part[j - g0] = ce_block(dx, x, lab, b, C, n, i0, i1, k);
        }
        for (long j = g0; j < g1; j++)
            total += part[j - g0];
    }
    return B && n ? total / ((double)B * n) : 0;
}
