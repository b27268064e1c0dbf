/* model/c3im.c: consensus class per frame (c3im.h, DESIGN §6). */
#include "model/c3im.h"

#include <math.h>
#include <stdlib.h>

#include "core/common.h"

void avs_c3im_softpow(float *y, const float *x, int n, float p)
{
    float m = x[0], s = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > m)
            m = x[i];
    for (int i = 0; i < n; i++)
        s += y[i] = expf(x[i] - m);
    for (int i = 0; i < n; i++)
        y[i] = powf(y[i] / s, p);
}

void avs_c3im(int *target, int *target_v, float *wmax, const float *vlogits, const float *alogits,
              const float *S, int N, int V, int A)
{
    AVS_ASSERT(N >= 0 && V > 0 && A > 0);
    float *pv = avs_malloc((size_t)V * sizeof(float)), *pa = avs_malloc((size_t)A * sizeof(float));
    for (int n = 0; n < N; n++) {
        const float *vl = vlogits + (size_t)n * V;
        avs_c3im_softpow(pv, vl, V, 0.1f);
        avs_c3im_softpow(pa, alogits + (size_t)n * A, A, 0.1f);
        float best = -INFINITY;
        int bi = 0, tv = 0;
        for (int i = 0; i < V; i++) {
            const float *row = S + (size_t)i * A;
            for (int j = 0; j < A; j++) {
                float w = (pv[i] * row[j]) * pa[j];
                if (w > best)
                    best = w, bi = i;
            }
            if (vl[i] > vl[tv])
                tv = i;
        }
        target[n] = bi;
        target_v[n] = tv;
        if (wmax)
            wmax[n] = best;
    }
    free(pv);
    free(pa);
}
