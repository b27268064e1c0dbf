/* model/ops_cpu.c: the CPU backend table: everything but conv2d (ops_cpu_conv.c).
 * Loops are OpenMP-parallel over an axis that is never reduced, so every output element has
 * one writer and one summation order: bit-identical results for any thread count.
 * Sums over many elements (norm statistics, bias gradients, losses) accumulate in double. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "model/ops.h"
#include "model/ops_cpu.h"

/* OpenMP only pays off above a few tens of thousands of elements. */
#define PAR_MIN 32768

void openblas_set_num_threads(int n);

static int n_threads = 1;

void avs_ops_set_threads(int n)
{
    if (n <= 0)
        n = avs_num_cores();
    n_threads = n;
    openblas_set_num_threads(1); /* GEMMs are sliced over OpenMP threads (ops_cpu_conv.c) */
    omp_set_num_threads(n);
}

int avs_ops_threads(void)
{
    return n_threads;
}

void avs_ops_tune_process(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    setenv("GOMP_SPINCOUNT", "30000", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default */
}

double avs_lr_linear(double lr0, double lr1, double epoch, double epochs)
{
    if (epochs <= 0 || epoch >= epochs)
        return epoch <= 0 ? lr0 : lr1;
    return lr0 + (lr1 - lr0) * epoch / epochs;
}

void avs_cpu_add_channel(float *y, const float *b, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *p = y + ((size_t)n * C + c) * HW, v = b[c];
            for (int i = 0; i < HW; i++)
                p[i] += v;
        }
}

void avs_cpu_sum_channel(float *db, const float *dy, int N, int C, int HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        /* 8 partial sums (fixed lanes, so the order never depends on threads): one dependent
         * double add per element was latency-bound, ~50 ms per head training step */
        double s[8] = {0};
        for (int n = 0; n < N; n++) {
            const float *p = dy + ((size_t)n * C + c) * HW;
            int i = 0;
            for (; i + 8 <= HW; i += 8)
                for (int l = 0; l < 8; l++)
                    s[l] += p[i + l];
            for (; i < HW; i++)
                s[i & 7] += p[i];
        }
        db[c] += (float)(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
    }
}

static void bias_fwd(float *y, const float *b, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            y[(size_t)r * cols + c] += b[c];
}

static void bias_bwd(float *db, const float *dy, int rows, int cols)
{
    for (int c = 0; c < cols; c++) {
        double s = 0;
        for (int r = 0; r < rows; r++)
            s += dy[(size_t)r * cols + c];
        db[c] += (float)s;
    }
}

/* The elementwise loops say `simd`: -O2's cheap vectoriser skipped them (possible aliasing),
 * and the scalar ReLU branched on the sign, mispredicting half the time on real data. Each
 * element's arithmetic is the same as in scalar code. */
static void relu_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0.0f;
}

static void relu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += x[i] > 0 ? dy[i] : 0.0f;
}

static void gelu_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

static void gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    const float k = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2); /* 1/sqrt(2 pi) */
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        float pdf = k * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

static void sigmoid_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void sigmoid_bwd(float *dx, const float *dy, const float *y, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

static void softmax_fwd(float *y, const float *x, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols, mx = a[0];
        for (int c = 1; c < cols; c++)
            mx = a[c] > mx ? a[c] : mx;
        double s = 0;
        for (int c = 0; c < cols; c++) {
            b[c] = expf(a[c] - mx);
            s += b[c];
        }
        float inv = (float)(1.0 / s);
        for (int c = 0; c < cols; c++)
            b[c] *= inv;
    }
}

static void softmax_bwd(float *dx, const float *dy, const float *y, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *g = dy + (size_t)r * cols, *p = y + (size_t)r * cols;
        double s = 0;
        for (int c = 0; c < cols; c++)
            s += (double)g[c] * p[c];
        for (int c = 0; c < cols; c++)
            dx[(size_t)r * cols + c] += p[c] * (g[c] - (float)s);
    }
}

static void layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int outer, int C, int inner, float eps)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            const float *a = x + (size_t)o * C * inner + i;
            float *z = y + (size_t)o * C * inner + i;
            double s = 0, s2 = 0;
            for (int c = 0; c < C; c++)
                s += a[(size_t)c * inner];
            double m = s / C;
            for (int c = 0; c < C; c++) {
                double d = a[(size_t)c * inner] - m;
                s2 += d * d;
            }
            float mf = (float)m, r = (float)(1.0 / sqrt(s2 / C + eps));
            for (int c = 0; c < C; c++) {
                float v = (a[(size_t)c * inner] - mf) * r;
                z[(size_t)c * inner] = w ? v * w[c] + b[c] : v;
            }
            mean[(size_t)o * inner + i] = mf;
            rstd[(size_t)o * inner + i] = r;
        }
}

static void layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int outer, int C,
                          int inner)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            size_t base = (size_t)o * C * inner + i;
            float m = mean[(size_t)o * inner + i], r = rstd[(size_t)o * inner + i];
            double s1 = 0, s2 = 0; /* mean of g and of g*xhat, g = dy*w */
            for (int c = 0; c < C; c++) {
                size_t k = base + (size_t)c * inner;
                float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * r;
                s1 += g;
                s2 += (double)g * xh;
            }
            float a1 = (float)(s1 / C), a2 = (float)(s2 / C);
            for (int c = 0; c < C; c++) {
                size_t k = base + (size_t)c * inner;
                float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * r;
                dx[k] += r * (g - a1 - xh * a2);
            }
        }
    if (!dw)
        return;
    /* parameter gradients: parallel over C, each channel summed in one fixed order */
#pragma omp parallel for schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++) {
                size_t k = (size_t)o * C * inner + (size_t)c * inner + i;
                float xh = (x[k] - mean[(size_t)o * inner + i]) * rstd[(size_t)o * inner + i];
                sw += (double)dy[k] * xh;
                sb += dy[k];
            }
        dw[c] += (float)sw;
        db[c] += (float)sb;
    }
}

static void batchnorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, float *run_mean, float *run_var, int N, int C, int HW,
                          float eps, float momentum, int train)
{
    size_t cnt = (size_t)N * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        float m, r;
        if (train) {
            double s = 0, s2 = 0;
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++)
                    s += x[((size_t)n * C + c) * HW + i];
            double md = s / (double)cnt;
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) {
                    double d = x[((size_t)n * C + c) * HW + i] - md;
                    s2 += d * d;
                }
            double var = s2 / (double)cnt;
            m = (float)md;
            r = (float)(1.0 / sqrt(var + eps));
            if (run_mean) {
                double unb = cnt > 1 ? s2 / (double)(cnt - 1) : var;
                run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * m;
                run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)unb;
            }
        } else {
            m = run_mean[c];
            r = 1.0f / sqrtf(run_var[c] + eps);
        }
        mean[c] = m;
        rstd[c] = r;
        float sc = r * (w ? w[c] : 1.0f), sh = (b ? b[c] : 0.0f) - m * sc;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                y[k] = x[k] * sc + sh;
            }
    }
}

static void batchnorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int N, int C,
                          int HW, int train)
{
    size_t cnt = (size_t)N * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd[c], wc = w ? w[c] : 1.0f;
        double sg = 0, sgx = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                sg += dy[k];
                sgx += (double)dy[k] * ((x[k] - m) * r);
            }
        if (dw)
            dw[c] += (float)sgx;
        if (db)
            db[c] += (float)sg;
        if (!dx)
            continue;
        if (!train) {
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) {
                    size_t k = ((size_t)n * C + c) * HW + i;
                    dx[k] += wc * r * dy[k];
                }
            continue;
        }
        /* batch statistics: dx = w*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)). Its sum over
         * the channel is exactly 0; float rounding leaves a residue that would show up as a
         * spurious gradient of a bias before the norm, so the residue is removed (two passes). */
        float a1 = (float)(sg / (double)cnt), a2 = (float)(sgx / (double)cnt);
        double res = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                res += wc * r * (dy[k] - a1 - (x[k] - m) * r * a2);
            }
        float corr = (float)(res / (double)cnt);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)n * C + c) * HW + i;
                dx[k] += wc * r * (dy[k] - a1 - (x[k] - m) * r * a2) - corr;
            }
    }
}

/* PyTorch's source index for bilinear resize (area_pixel_compute_source_index), in float. */
static void resize_index(int out, int in, int o, int ac, int *i0, int *i1, float *l1)
{
    float scale = ac ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f) : (float)in / (float)out;
    float src = ac ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int a = (int)src;
    if (a > in - 1)
        a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = src - (float)a;
}

/* Column indices and weights computed once per call (on the stack up to 8192 columns: 8K
 * frames for avs-predict's overlays, AVS_OVERLAY_MAXW). */
#define RS_MAXW 8192

static void resize_cols(int OW, int W, int ac, int *x0, int *x1, float *lx)
{
    for (int ox = 0; ox < OW; ox++)
        resize_index(OW, W, ox, ac, &x0[ox], &x1[ox], &lx[ox]);
}

static void resize_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW, int ac)
{
    AVS_ASSERT(OW <= RS_MAXW);
    int cx0[RS_MAXW], cx1[RS_MAXW];
    float clx[RS_MAXW];
    resize_cols(OW, W, ac, cx0, cx1, clx);
#pragma omp parallel for schedule(static) if ((size_t)NC * OH * OW > PAR_MIN)
    for (int p = 0; p < NC; p++) {
        const float *a = x + (size_t)p * H * W;
        float *b = y + (size_t)p * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1;
            float ly;
            resize_index(OH, H, oy, ac, &y0, &y1, &ly);
            const float *r0 = a + (size_t)y0 * W, *r1 = a + (size_t)y1 * W;
            float *d = b + (size_t)oy * OW;
            for (int ox = 0; ox < OW; ox++) {
                float lx = clx[ox];
                d[ox] = (1 - ly) * ((1 - lx) * r0[cx0[ox]] + lx * r0[cx1[ox]]) +
                        ly * ((1 - lx) * r1[cx0[ox]] + lx * r1[cx1[ox]]);
            }
        }
    }
}

static void resize_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW, int ac)
{
    AVS_ASSERT(OW <= RS_MAXW);
    int cx0[RS_MAXW], cx1[RS_MAXW];
    float clx[RS_MAXW];
    resize_cols(OW, W, ac, cx0, cx1, clx);
#pragma omp parallel for schedule(static) if ((size_t)NC * OH * OW > PAR_MIN)
    for (int p = 0; p < NC; p++) {
        float *a = dx + (size_t)p * H * W;
        const float *b = dy + (size_t)p * OH * OW;
        float t[RS_MAXW]; /* one output row folded onto the input columns, then spread on
                           * two input rows: 2 scattered adds per value instead of 4 */
        AVS_ASSERT(W <= RS_MAXW);
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1;
            float ly;
            resize_index(OH, H, oy, ac, &y0, &y1, &ly);
            float *r0 = a + (size_t)y0 * W, *r1 = a + (size_t)y1 * W;
            const float *g = b + (size_t)oy * OW;
            memset(t, 0, (size_t)W * sizeof(float));
            for (int ox = 0; ox < OW; ox++) {
                float lx = clx[ox];
                t[cx0[ox]] += (1 - lx) * g[ox];
                t[cx1[ox]] += lx * g[ox];
            }
            float l0 = 1 - ly;
            for (int x = 0; x < W; x++) {
                r0[x] += l0 * t[x];
                r1[x] += ly * t[x];
            }
        }
    }
}

static void mean_fwd(float *y, const float *x, int rows, int n)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += x[(size_t)r * n + i];
        y[r] = (float)(s / n);
    }
}

static void mean_bwd(float *dx, const float *dy, int rows, int n)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float g = dy[r] / (float)n;
        for (int i = 0; i < n; i++)
            dx[(size_t)r * n + i] += g;
    }
}

static void chmean_fwd(float *y, const float *x, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += x[((size_t)n * C + c) * HW + i];
            y[(size_t)n * HW + i] = (float)(s / C);
        }
}

static void chmean_bwd(float *dx, const float *dy, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                dx[((size_t)n * C + c) * HW + i] += dy[(size_t)n * HW + i] / (float)C;
}

static void concat_fwd(float *y, const float *x, int N, int Cx, int HW, int Cy, int c0)
{
    for (int n = 0; n < N; n++)
        memcpy(y + ((size_t)n * Cy + c0) * HW, x + (size_t)n * Cx * HW,
               (size_t)Cx * HW * sizeof(float));
}

static void concat_bwd(float *dx, const float *dy, int N, int Cx, int HW, int Cy, int c0)
{
    for (int n = 0; n < N; n++) {
        const float *s = dy + ((size_t)n * Cy + c0) * HW;
        float *d = dx + (size_t)n * Cx * HW;
        for (size_t i = 0; i < (size_t)Cx * HW; i++)
            d[i] += s[i];
    }
}

static size_t bc_index(const struct avs_bcast *bc, int n, int c, int i)
{
    size_t k = 0;
    if (bc->sN)
        k = (size_t)n;
    if (bc->sC)
        k = k * bc->C + c;
    if (bc->sHW)
        k = k * bc->HW + i;
    return k;
}

static void add_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (int n = 0; n < bc->N; n++)
        for (int c = 0; c < bc->C; c++)
            for (int i = 0; i < bc->HW; i++) {
                size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                y[k] = x[k] + s[bc_index(bc, n, c, i)];
            }
}

static void mul_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (int n = 0; n < bc->N; n++)
        for (int c = 0; c < bc->C; c++)
            for (int i = 0; i < bc->HW; i++) {
                size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                y[k] = x[k] * s[bc_index(bc, n, c, i)];
            }
}

/* ds[j] += sum of dy*(x or 1) over the positions that map to j; serial over the broadcast
 * operand's elements so the order is fixed. */
static void bcast_reduce(float *ds, const float *dy, const float *x, const struct avs_bcast *bc)
{
    size_t ns = (size_t)(bc->sN ? bc->N : 1) * (bc->sC ? bc->C : 1) * (bc->sHW ? bc->HW : 1);
#pragma omp parallel for schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (size_t j = 0; j < ns; j++) {
        size_t t = j;
        int i0 = 0, i1 = bc->HW, c0 = 0, c1 = bc->C, n0 = 0, n1 = bc->N;
        if (bc->sHW)
            i0 = (int)(t % bc->HW), i1 = i0 + 1, t /= bc->HW;
        if (bc->sC)
            c0 = (int)(t % bc->C), c1 = c0 + 1, t /= bc->C;
        if (bc->sN)
            n0 = (int)t, n1 = n0 + 1;
        double s = 0;
        for (int n = n0; n < n1; n++)
            for (int c = c0; c < c1; c++)
                for (int i = i0; i < i1; i++) {
                    size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                    s += x ? (double)dy[k] * x[k] : dy[k];
                }
        ds[j] += (float)s;
    }
}

static void add_bwd(float *ds, const float *dy, const struct avs_bcast *bc)
{
    bcast_reduce(ds, dy, NULL, bc);
}

static void mul_bwd(float *dx, float *ds, const float *dy, const float *x, const float *s,
                    const struct avs_bcast *bc)
{
    if (dx) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
        for (int n = 0; n < bc->N; n++)
            for (int c = 0; c < bc->C; c++)
                for (int i = 0; i < bc->HW; i++) {
                    size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                    dx[k] += dy[k] * s[bc_index(bc, n, c, i)];
                }
    }
    if (ds)
        bcast_reduce(ds, dy, x, bc);
}

static void axpy(float *y, float alpha, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* BCE with logits, stable form: max(x,0) - x*g + log(1 + exp(-|x|)). */
static double bce_logits(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    size_t tot = (size_t)B * n;
    double s = 0;
    for (size_t i = 0; i < tot; i++) {
        float v = x[i];
        s += (v > 0 ? v : 0) - v * g[i] + log1pf(expf(-fabsf(v)));
        if (dx)
            dx[i] = scale * (1.0f / (1.0f + expf(-v)) - g[i]) / (float)tot;
    }
    return s / (double)tot;
}

static double dice(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * n, *gb = g + (size_t)b * n;
        double spg = 0, sp = 0, sg = 0;
        for (int i = 0; i < n; i++) {
            double p = 1.0 / (1.0 + exp(-(double)xb[i]));
            spg += p * gb[i];
            sp += p;
            sg += gb[i];
        }
        double num = 2 * (spg + 1), den = sp + sg + 1;
        loss += 1 - num / den;
        if (dx)
            for (int i = 0; i < n; i++) {
                double p = 1.0 / (1.0 + exp(-(double)xb[i]));
                /* d(-num/den)/dp = -(2 g den - num) / den^2 */
                double dp = -(2 * gb[i] * den - num) / (den * den) / B;
                dx[(size_t)b * n + i] = (float)(scale * dp * p * (1 - p));
            }
    }
    return loss / B;
}

/* torch 1.13 _single_tensor_adam: scalars are Python doubles, rounded to float where they
 * meet a tensor; the update order below is PyTorch's. */
static void adam(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                 double b2, double eps, double wd, long step)
{
    double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    float fb1 = (float)b1, fb2 = (float)b2, a1 = (float)(1.0 - b1), a2 = (float)(1.0 - b2);
    float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), feps = (float)eps;
    float fwd = (float)wd;
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = fwd != 0 ? g[i] + fwd * p[i] : g[i];
        m[i] = m[i] * fb1 + a1 * gi;
        v[i] = v[i] * fb2 + a2 * gi * gi;
        float denom = sqrtf(v[i]) / bc2s + feps;
        p[i] += -step_size * (m[i] / denom);
    }
}

static const struct avs_ops cpu_ops = {
    .name = "cpu",
    .gemm = avs_cpu_gemm,
    .conv2d_fwd = avs_cpu_conv2d_fwd,
    .conv2d_bwd_data = avs_cpu_conv2d_bwd_data,
    .conv2d_bwd_filter = avs_cpu_conv2d_bwd_filter,
    .tapconv_fwd = avs_cpu_op_tapconv_fwd,
    .tapconv_bwd_data = avs_cpu_op_tapconv_bwd_data,
    .tapconv_bwd_filter = avs_cpu_op_tapconv_bwd_filter,
    .bias_fwd = bias_fwd,
    .bias_bwd = bias_bwd,
    .relu_fwd = relu_fwd,
    .relu_bwd = relu_bwd,
    .gelu_fwd = gelu_fwd,
    .gelu_bwd = gelu_bwd,
    .sigmoid_fwd = sigmoid_fwd,
    .sigmoid_bwd = sigmoid_bwd,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .layernorm_fwd = layernorm_fwd,
    .layernorm_bwd = layernorm_bwd,
    .batchnorm_fwd = batchnorm_fwd,
    .batchnorm_bwd = batchnorm_bwd,
    .resize_fwd = resize_fwd,
    .resize_bwd = resize_bwd,
    .mean_fwd = mean_fwd,
    .mean_bwd = mean_bwd,
    .chmean_fwd = chmean_fwd,
    .chmean_bwd = chmean_bwd,
    .concat_fwd = concat_fwd,
    .concat_bwd = concat_bwd,
    .add_fwd = add_fwd,
    .add_bwd = add_bwd,
    .mul_fwd = mul_fwd,
    .mul_bwd = mul_bwd,
    .axpy = axpy,
    .bce_logits = bce_logits,
    .dice = dice,
    .adam = adam,
};

const struct avs_ops *avs_ops_cpu(void)
{
    return &cpu_ops;
}

const struct avs_ops *avs_ops(void)
{
    return avs_ops_profiled(&cpu_ops);
}
