/* backend/cpu/rows.c: the CPU's row gather and scatter-add (backend/ops.h, "rows"): Swin's
 * window partition with its cyclic shift, the reverse, patch merging's 2x2 gather and the
 * relative-position bias lookup are each one gather by an index map made at init.
 * Each output element has one writer; the scatter adds rows in index order within each column
 * slice, so the bits do not depend on the thread count. */
#include <string.h>

#include "backend/cpu/cpu.h"

#define PAR_MIN 32768
/* column slice of the scatter (threads take slices, every slice walks all rows in order) */
#define SLICE 64

void avs_cpu_gather_rows(float *y, const float *x, const int *idx, int n, int C)
{
#pragma omp parallel for schedule(static) if ((size_t)n * C > PAR_MIN)
    for (int i = 0; i < n; i++)
        memcpy(y + (size_t)i * C, x + (size_t)idx[i] * C, (size_t)C * sizeof(float));
}

void avs_cpu_scatter_rows_add(float *y, const float *x, const int *idx, int n, int C)
{
    int ns = (C + SLICE - 1) / SLICE;
#pragma omp parallel for schedule(static) if ((size_t)n * C > PAR_MIN && ns > 1)
    for (int s = 0; s < ns; s++) {
        int c0 = s * SLICE, c1 = c0 + SLICE < C ? c0 + SLICE : C;
        for (int i = 0; i < n; i++) {
            float *restrict d = y + (size_t)idx[i] * C;
            const float *restrict a = x + (size_t)i * C;
            for (int c = c0; c < c1; c++)
                d[c] += a[c];
        }
    }
}
