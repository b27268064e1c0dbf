/* backend/cpu/winograd_tf.h: the correlation half of backend/cpu/winograd.c (filter, input
 * and output transforms and the 36 GEMMs between them), written once for the value type of
 * the transformed domain. winograd.c includes it twice:
 *     WREAL float,  WN(x) x##_f, WGEMM cblas_sgemm   forward (and backward data, fast mode)
 *     WREAL double, WN(x) x##_d, WGEMM cblas_dgemm   backward data by default
 * Maps in and out are float either way: the double instance reads float, transforms, multiplies
 * and sums in double, and rounds once when it stores (adding into the float destination in
 * double first), so its result is the exact correlation to within about one float rounding.
 * Only winograd.c may include this file. */

#ifndef WINO_TF_MACROS
#define WINO_TF_MACROS
/* A constant of the transforms in the instance's type (the float values are those of
 * 1.0f / 3 etc.: double quotients rounded to float give the same bits, checked). */
#define WK(x) ((WREAL)(x))

/* G applied to 3 values (stride s) into 6 (stride os); multiplies by rounded constants (a
 * division per value made the weight transform as slow as a small layer's GEMMs). */
#define G6(o, os, g, s)                                                                        \
    do {                                                                                       \
        WREAL g0 = (g)[0], g1 = (g)[(s)], g2 = (g)[2 * (s)], e = g0 + g2;                      \
        (o)[0] = g0;                                                                           \
        (o)[(os)] = (e + g1) * WK(1.0 / 3);                                                    \
        (o)[2 * (os)] = (g1 - e) * WK(1.0 / 3);                                                \
        (o)[3 * (os)] = (4 * g0 + 2 * g1 + g2) * WK(-4.0 / 15);                                \
        (o)[4 * (os)] = (g0 - 2 * g1 + 4 * g2) * WK(1.0 / 15);                                 \
        (o)[5 * (os)] = g2;                                                                    \
    } while (0)

/* B^T applied to 6 values with stride s: the 6 results to o[0..5] with stride os. */
#define BT6(o, os, d, s)                                                                       \
    do {                                                                                       \
        WREAL d0 = (d)[0], d1 = (d)[(s)], d2 = (d)[2 * (s)], d3 = (d)[3 * (s)];                \
        WREAL d4 = (d)[4 * (s)], d5 = (d)[5 * (s)];                                            \
        (o)[0] = d0 + d4 + WK(1.5) * (d3 - d1) - 2 * d2;                                       \
        (o)[(os)] = d4 - d1 + WK(0.5) * d2 + WK(2.5) * d3;                                     \
        (o)[2 * (os)] = d4 + d1 - WK(2.5) * d2 + WK(0.5) * d3;                                 \
        (o)[3 * (os)] = d4 - d2 + 2 * (d3 - d1);                                               \
        (o)[4 * (os)] = d4 - d2 + WK(0.5) * (d1 - d3);                                         \
        (o)[5 * (os)] = d5 + d1 + WK(1.5) * (d4 - d2) - 2 * d3;                                \
    } while (0)

/* A^T m for 6 values m0..m5 into 4 (stride os). */
#define AT4V(o, os, m0, m1, m2, m3, m4, m5)                                                    \
    do {                                                                                       \
        WREAL a_ = (m1) + (m2), b_ = (m1) - (m2);                                              \
        (o)[0] = (m0) + a_ + (m3) + (m4);                                                      \
        (o)[(os)] = b_ + WK(0.5) * (m3) - 2 * (m4);                                            \
        (o)[2 * (os)] = a_ + WK(0.25) * (m3) + 4 * (m4);                                       \
        (o)[3 * (os)] = b_ + WK(0.125) * (m3) - 8 * (m4) + (m5);                               \
    } while (0)
#endif

/* U[xi][o][i] = G g G^T for every filter of w [K][C][3][3]: (o, i) = (k, c), or with flip
 * (backward data) (c, k) of the filter rotated by 180 degrees. FB filters at a time, each
 * step a loop over the filters. */
static void WN(weight_tf)(WREAL *U, const float *w, int K, int C, int flip)
{
    size_t KC = (size_t)K * C, us = pstride(KC);
    int no = flip ? C : K, ni = flip ? K : C;
#pragma omp parallel for schedule(static) if (KC > 4096)
    for (int o = 0; o < no; o++)
        for (int i0 = 0; i0 < ni; i0 += FB) {
            int nb = ni - i0 < FB ? ni - i0 : FB;
            WREAL f[9][FB], t[18][FB], u[36][FB];
            for (int bi = 0; bi < nb; bi++) {
                int i = i0 + bi;
                const float *g = w + (flip ? (size_t)i * C + o : (size_t)o * C + i) * 9;
                for (int j = 0; j < 9; j++)
                    f[j][bi] = flip ? g[8 - j] : g[j];
            }
            for (int j = 0; j < 3; j++) /* t [6][3] = G f */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    G6(&t[j][bi], 3 * FB, &f[j][bi], 3 * FB);
            for (int j = 0; j < 6; j++) /* u [6][6] = t G^T */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    G6(&u[6 * j][bi], FB, &t[3 * j][bi], FB);
            for (int xi = 0; xi < 36; xi++)
                memcpy(U + xi * us + (size_t)o * ni + i0, u[xi], (size_t)nb * sizeof(WREAL));
        }
}

/* V[xi][c][t] (row stride ldv) for the tiles of tile rows [r0, r1) of x [N,C,H,W]. */
static void WN(input_tf)(WREAL *V, size_t ldv, const float *x, const struct wplan *p, int r0, int r1)
{
    size_t plane = pstride((size_t)p->C * ldv);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < p->C; c++)
        for (int row = r0; row < r1; row++) {
            int n = row / p->TH, tr = row % p->TH;
            const float *xc = x + ((size_t)n * p->C + c) * p->H * p->W;
            WREAL *vc = V + (size_t)c * ldv + (size_t)(row - r0) * p->TW;
            for (int t0 = 0; t0 < p->TW; t0 += TB) {
                int nt = p->TW - t0 < TB ? p->TW - t0 : TB, width = 4 * nt + 2;
                int w0 = 4 * t0 - p->pad;
                WREAL d[6 * RW], r[6 * RW]; /* 6 input rows; B^T applied down the columns */
                for (int i = 0; i < 6; i++) {
                    int h = 4 * tr - p->pad + i;
                    WREAL *di = d + i * RW;
                    if (h < 0 || h >= p->H) {
                        for (int j = 0; j < width; j++)
                            di[j] = 0;
                        continue;
                    }
                    int lo = w0 < 0 ? -w0 : 0, hi = p->W - w0 < width ? p->W - w0 : width;
                    const float *src = xc + (size_t)h * p->W + w0;
                    for (int j = 0; j < lo; j++)
                        di[j] = 0;
                    for (int j = lo; j < hi; j++)
                        di[j] = src[j];
                    for (int j = hi; j < width; j++)
                        di[j] = 0;
                }
#pragma omp simd
                for (int j = 0; j < width; j++)
                    BT6(r + j, RW, d + j, RW);
                for (int i = 0; i < 6; i++) {
                    WREAL *v = vc + (size_t)(i * 6) * plane + t0;
                    const WREAL *ri = r + i * RW;
#pragma omp simd
                    for (int j = 0; j < nt; j++)
                        BT6(v + j, plane, ri + 4 * j, 1);
                }
            }
        }
}

/* dst[q] (= or +=) ph[q mod 4][q / 4] + bk for q < nq: phases back into a row. Adding is done
 * in WREAL and rounded once. */
static void WN(store_phases)(float *restrict dst, int add, const WREAL (*restrict ph)[TB], WREAL bk, int nq)
{
    const WREAL *restrict p0 = ph[0], *restrict p1 = ph[1], *restrict p2 = ph[2], *restrict p3 = ph[3];
    int full = nq / 4, q;
    if (add)
#pragma omp simd
        for (int j = 0; j < full; j++) {
            dst[4 * j] = (float)(dst[4 * j] + (p0[j] + bk));
            dst[4 * j + 1] = (float)(dst[4 * j + 1] + (p1[j] + bk));
            dst[4 * j + 2] = (float)(dst[4 * j + 2] + (p2[j] + bk));
            dst[4 * j + 3] = (float)(dst[4 * j + 3] + (p3[j] + bk));
        }
    else
#pragma omp simd
        for (int j = 0; j < full; j++) {
            dst[4 * j] = (float)(p0[j] + bk);
            dst[4 * j + 1] = (float)(p1[j] + bk);
            dst[4 * j + 2] = (float)(p2[j] + bk);
            dst[4 * j + 3] = (float)(p3[j] + bk);
        }
    for (q = 4 * full; q < nq; q++)
        dst[q] = (float)((add ? dst[q] : 0.0f) + (ph[q & 3][q >> 2] + bk));
}

/* Output rows 4 tr .. 4 tr + 3 of plane ok (P x Q) (= or +=) A^T M A + bk for nt tiles of
 * tile row tr from mk (value xi at mk[xi * plane + tile]). */
static void WN(output_block)(float *ok, int add, const WREAL *mk, size_t plane, WREAL bk,
                             const struct wplan *p, int tr, int t0, int nt)
{
    WREAL s[6][4][TB], y[4][4][TB];
    const int rs = 4 * TB;
    for (int i = 0; i < 6; i++) { /* A^T along the rows of each tile: s[i][phase][tile] */
        const WREAL *m = mk + (size_t)(6 * i) * plane;
#pragma omp simd
        for (int j = 0; j < nt; j++)
            AT4V(&s[i][0][j], TB, m[j], m[plane + j], m[2 * plane + j], m[3 * plane + j],
                 m[4 * plane + j], m[5 * plane + j]);
    }
    for (int n = 0; n < 4; n++) /* then down */
#pragma omp simd
        for (int j = 0; j < nt; j++)
            AT4V(&y[0][n][j], rs, s[0][n][j], s[1][n][j], s[2][n][j], s[3][n][j], s[4][n][j], s[5][n][j]);
    int q0 = 4 * t0, nq = p->Q - q0 < 4 * nt ? p->Q - q0 : 4 * nt;
    for (int i = 0; i < 4 && 4 * tr + i < p->P; i++)
        WN(store_phases)(ok + (size_t)(4 * tr + i) * p->Q + q0, add, y[i], bk, nq);
}

/* out [N,K,P,Q] (= or +=) A^T M A (+ bias) for tile rows [r0, r1). */
static void WN(output_tf)(float *out, int add, const WREAL *M, size_t ldm, const float *bias,
                          const struct wplan *p, int r0, int r1)
{
    size_t plane = pstride((size_t)p->K * ldm);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < p->K; k++) {
        WREAL bk = bias ? bias[k] : 0;
        for (int row = r0; row < r1; row++) {
            int n = row / p->TH, tr = row % p->TH;
            float *ok = out + ((size_t)n * p->K + k) * p->P * p->Q;
            const WREAL *mk = M + (size_t)k * ldm + (size_t)(row - r0) * p->TW;
            for (int t0 = 0; t0 < p->TW; t0 += TB)
                WN(output_block)(ok, add, mk + t0, plane, bk, p, tr, t0, p->TW - t0 < TB ? p->TW - t0 : TB);
        }
    }
}

/* out = (or +=) correlation of x with the filter w (flip: rotated and transposed, the
 * backward-data form), chunk by chunk; ws holds U, V and M in WREAL. */
static void WN(correlate)(float *out, int add, const float *x, const float *w, int flip,
                          const float *bias, const struct wplan *p, WREAL *ws)
{
    size_t vs = pstride(p->C * p->Tc), ms = pstride(p->K * p->Tc), us = pstride((size_t)p->K * p->C);
    WREAL *U = ws, *V = U + 36 * us, *M = V + 36 * vs;
    WN(weight_tf)(U, w, flip ? p->C : p->K, flip ? p->K : p->C, flip);
    for (int r0 = 0; r0 < p->rows; r0 += p->chunk) {
        int r1 = r0 + p->chunk < p->rows ? r0 + p->chunk : p->rows;
        int T = (r1 - r0) * p->TW;
        WN(input_tf)(V, p->Tc, x, p, r0, r1);
#pragma omp parallel for schedule(static)
        for (int xi = 0; xi < 36; xi++)
            WGEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->K, T, p->C, 1.0,
                  U + xi * us, p->C, V + xi * vs, (int)p->Tc, 0.0, M + xi * ms, (int)p->Tc);
        WN(output_tf)(out, add, M, p->Tc, bias, p, r0, r1);
    }
}
