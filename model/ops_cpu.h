/* model/ops_cpu.h: internal to the CPU backend (model/ops_cpu*.c); layers use model/ops.h. */
#ifndef AVS_MODEL_OPS_CPU_H
#define AVS_MODEL_OPS_CPU_H

#include "model/ops.h"

void avs_cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void avs_cpu_conv2d_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_conv2d *g, float *ws);
void avs_cpu_conv2d_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_conv2d *g, float *ws);
void avs_cpu_conv2d_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                               const struct avs_conv2d *g, float *ws);
/* y [N,C,HW] += b [C] */
void avs_cpu_add_channel(float *y, const float *b, int N, int C, int HW);
/* db [C] += sums of dy [N,C,HW] over N and HW (fixed order, double accumulation) */
void avs_cpu_sum_channel(float *db, const float *dy, int N, int C, int HW);

#endif
