/* model/c3im.c: consensus class per frame (c3im.h, DESIGN §6). */
#include "model/c3im.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

int avs_c3im_exponent_ok(double x)
{
    return isfinite(x) && x > 0;
}

int avs_c3im_parse(const char *flag, const char *arg, double *x, struct avs_err *err)
{
    char *end;
    double v = strtod(arg, &end);
    if (!*arg || *end || !avs_c3im_exponent_ok(v))
        return avs_err_set(err, "%s %s: expected a number > 0 (a C3IM exponent: %s; default 0.1)",
                           flag, arg, strcmp(flag, "--beta") ? "visual probabilities ^ alpha"
                                                             : "audio probabilities ^ beta");
    *x = v;
    return 0;
}

/* The probabilities are computed in double and rounded once: the powers (up to 3 in the
 * paper's Table III range and beyond) multiply the relative error of a float32 softmax, and
 * PyTorch's own float32 result is judged against float64 too (tests/test_model_c3im.c). */
void avs_c3im_softpow(float *y, const float *x, int n, float p)
{
    float m = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > m)
            m = x[i];
    double s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    for (int i = 0; i < n; i++)
        y[i] = (float)pow(exp((double)x[i] - m) / s, p);
}

void avs_c3im(int *target, int *target_v, float *wmax, const float *vlogits, const float *alogits,
              const float *S, int N, int V, int A, float alpha, float beta)
{
    AVS_ASSERT(N >= 0 && V > 0 && A > 0);
    AVS_ASSERT(avs_c3im_exponent_ok(alpha) && avs_c3im_exponent_ok(beta));
    float *pv = avs_malloc((size_t)V * sizeof(float)), *pa = avs_malloc((size_t)A * sizeof(float));
    for (int n = 0; n < N; n++) {
        const float *vl = vlogits + (size_t)n * V;
        avs_c3im_softpow(pv, vl, V, alpha);
        avs_c3im_softpow(pa, alogits + (size_t)n * A, A, beta);
        float best = -INFINITY;
        int bi = 0, tv = 0;
        for (int i = 0; i < V; i++) {
            const float *row = S + (size_t)i * A;
            for (int j = 0; j < A; j++) {
                float w = (pa[j] * row[j]) * pv[i]; /* the official order */
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
