/* backend/cpu/ref.c: CPU primitives first needed by the reference C3N (model/c3n_ref.c).
 * Parallel over rows: one writer per element, each row's sum in 8 fixed lanes reduced in a
 * fixed tree, so the bits do not depend on the thread count. */
#include <math.h>

#include "backend/cpu/cpu.h"

#define PAR_MIN 32768 /* as ops_cpu.c */

/* sum of x[i]^2 over n floats: 8 double lanes, then a fixed tree */
static double sumsq(const float *x, int n)
{
    double s[8] = {0};
    for (int i0 = 0; i0 < n; i0 += 8) {
        int e = n - i0 < 8 ? n - i0 : 8;
#pragma omp simd
        for (int l = 0; l < e; l++)
            s[l] += (double)x[i0 + l] * x[i0 + l];
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* ref: torch.nn.functional.normalize(x, p=2, dim=-1, eps): x / norm.clamp_min(eps) */
void avs_cpu_l2norm_fwd(float *y, const float *x, int rows, int cols, float eps)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols;
        float nrm = (float)sqrt(sumsq(a, cols));
        if (!(nrm > eps))
            nrm = eps;
        for (int c = 0; c < cols; c++)
            b[c] = a[c] / nrm;
    }
}
