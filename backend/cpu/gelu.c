/* backend/cpu/gelu.c: the table's gelu_fwd and gelu_bwd (the exact, erf form; the formula and
 * its accuracy: backend/gelu_math.h). The loops vectorise; the blocks are OpenMP's static cut,
 * and every element takes the same operations, so the bits do not depend on it. */
#include "backend/cpu/cpu.h"
#include "backend/gelu_math.h"

#define GELU_PAR_MIN 32768

void avs_cpu_gelu_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > GELU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = avs_gelu(x[i]);
}

void avs_cpu_gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > GELU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * avs_gelu_grad(x[i]);
}
