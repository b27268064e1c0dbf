/* backend/cpu/avmatch.c: the primitives of AVSBench's audio-visual matching loss on the CPU
 * (backend/ops.h softmax_kl, adapool_fwd / adapool_bwd; the loss itself is
 * model/c3n_avmatch.c). ref: AVSBench avs_ms3/loss.py A_MaskedV_SimmLoss (kl_flag,
 * mask_pooling_type 'avg'): nn.AdaptiveAvgPool2d of the predicted mask to a stage's size, and
 * F.kl_div(softmax(v).log(), softmax(a), reduction='sum').
 *
 * Rows of the KL are short (the head width, 256) and few (the frames of a batch): one thread
 * per row, in double, the rows' sums added in row order, so any thread count gives the same
 * bits. The pool's backward gathers per input element (no two threads write one element).
 */
#include <math.h>

#include "backend/cpu/cpu.h"

#define GROUP 512
#define PAR_MIN 32768 /* as backend/cpu/tokens.c */

/* One row: returns KL(q || p), writes the row's gradients (times k) where asked. */
static double kl_row(float *dv, float *da, const float *v, const float *a, int n, double k)
{
    double mv = v[0], ma = a[0], sv = 0, sa = 0, kl = 0;
    for (int i = 1; i < n; i++) {
        mv = v[i] > mv ? v[i] : mv;
        ma = a[i] > ma ? a[i] : ma;
    }
    for (int i = 0; i < n; i++) {
        sv += exp(v[i] - mv);
        sa += exp(a[i] - ma);
    }
    double lv = mv + log(sv), la = ma + log(sa); /* the rows' logsumexp */
    for (int i = 0; i < n; i++) {
        double lq = a[i] - la;
        kl += exp(lq) * (lq - (v[i] - lv));
    }
    for (int i = 0; i < n; i++) {
        double lq = a[i] - la, lp = v[i] - lv;
        if (dv)
            dv[i] = (float)(k * (exp(lp) - exp(lq)));
        if (da)
            da[i] = (float)(k * exp(lq) * ((lq - lp) - kl));
    }
    return kl;
}

double avs_cpu_softmax_kl(float *dv, float *da, const float *v, const float *a, int rows,
                          int cols, float scale)
{
    double total = 0, part[GROUP];
    for (long r0 = 0; r0 < rows; r0 += GROUP) {
        long r1 = r0 + GROUP < rows ? r0 + GROUP : rows;
#pragma omp parallel for schedule(static) if (r1 - r0 > 1)
        for (long r = r0; r < r1; r++) {
            size_t o = (size_t)r * cols;
            part[r - r0] =
                kl_row(dv ? dv + o : NULL, da ? da + o : NULL, v + o, a + o, cols, scale);
        }
        for (long r = r0; r < r1; r++)
            total += part[r - r0];
    }
    return total;
}

/* nn.AdaptiveAvgPool2d's window of output index i along an axis of n inputs and m outputs */
static int win_lo(int i, int n, int m)
{
    return (int)((long)i * n / m);
}

static int win_hi(int i, int n, int m) /* exclusive */
{
    return (int)(((long)(i + 1) * n + m - 1) / m);
}

void avs_cpu_adapool_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW)
{
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                int r0 = win_lo(i, H, OH), r1 = win_hi(i, H, OH);
                int c0 = win_lo(j, W, OW), c1 = win_hi(j, W, OW);
                double s = 0;
                for (int r = r0; r < r1; r++)
                    for (int q = c0; q < c1; q++)
                        s += x[((size_t)c * H + r) * W + q];
                y[((size_t)c * OH + i) * OW + j] = (float)(s / ((double)(r1 - r0) * (c1 - c0)));
            }
}

void avs_cpu_adapool_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW)
{
#pragma omp parallel for schedule(static) if ((size_t)NC * H * W > PAR_MIN)
    for (int c = 0; c < NC; c++)
        for (int r = 0; r < H; r++)
            for (int q = 0; q < W; q++) {
                double s = 0;
                /* the windows holding (r, q): from the first that ends past it, while they
                 * start at or before it */
                for (int i = (int)((long)r * OH / H); i < OH && win_lo(i, H, OH) <= r; i++)
                    for (int j = (int)((long)q * OW / W); j < OW && win_lo(j, W, OW) <= q; j++) {
                        double area = (double)(win_hi(i, H, OH) - win_lo(i, H, OH)) *
                                      (win_hi(j, W, OW) - win_lo(j, W, OW));
                        s += dy[((size_t)c * OH + i) * OW + j] / area;
                    }
                dx[((size_t)c * H + r) * W + q] += (float)s;
            }
}
