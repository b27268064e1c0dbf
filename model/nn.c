/* model/nn.c: see nn.h. */
#include "model/nn.h"

void avs_linear_fwd(float *y, const float *x, const float *w, const float *b, int M, int I, int O)
{
    const struct avs_ops *op = avs_ops();
    op->gemm(0, 1, M, O, I, 1.0f, x, I, w, I, 0.0f, y, O);
    if (b)
        op->bias_fwd(y, b, M, O);
}

void avs_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, int M, int I, int O)
{
    const struct avs_ops *op = avs_ops();
    if (dx)
        op->gemm(0, 0, M, I, O, 1.0f, dy, O, w, I, 1.0f, dx, I);
    if (dw)
        op->gemm(1, 0, O, I, M, 1.0f, dy, O, x, I, 1.0f, dw, I);
    if (db)
        op->bias_bwd(db, dy, M, O);
}

void avs_ccam_fwd(float *out, float *s, float *x1, float *sm, const float *x, const float *cw,
                  int N, int C, int HW)
{
    const struct avs_ops *op = avs_ops();
    op->l2norm_rows(s, cw, N, C, 1e-12f);
    op->sigmoid_fwd(s, s, (size_t)N * C);
    struct avs_bcast bc = {N, C, HW, 1, 1, 0};
    op->mul_fwd(x1, x, s, &bc);
    op->chmean_fwd(sm, x1, N, C, HW);
    op->sigmoid_fwd(sm, sm, (size_t)N * HW);
    struct avs_bcast bs = {N, C, HW, 1, 0, 1};
    op->mul_fwd(out, x1, sm, &bs);
}

/* out = x1 * sm, sm = sigmoid(m), m = mean_c x1: dx1 = dout*sm + dm/C, dm = sum_c(dout*x1)
 * * sm(1-sm); then dx = dx1 * s: one primitive, without a [N,C,HW] temporary. */
void avs_ccam_bwd(float *dx, const float *dout, const float *s, const float *x1, const float *sm,
                  int N, int C, int HW, float *scratch)
{
    avs_ops()->ccam_bwd(dx, dout, s, x1, sm, N, C, HW, scratch);
}
