/* tests/test_backend_blas.c: the properties of this machine's BLAS that the CPU backend's
 * determinism rests on (README, "Determinism"), so that a failure elsewhere explains itself.
 *
 * The CPU backend cuts every GEMM into fixed tiles (backend/cpu/conv.c) and multiplies each
 * with a single-threaded cblas_sgemm. Same bits for any thread count then needs:
 *   1. a single-threaded call is deterministic: the same call twice gives the same bits;
 *   2. its bits do not depend on the operands' addresses (arenas are 64-byte aligned, but
 *      not at the same address from run to run), only on the values;
 *   3. calls made from several OpenMP threads at once stay single-threaded and give the bits
 *      of the same calls made one after another;
 * and then checks the result: the backend's gemm gives the same bits with 1, 2 and 3
 * threads, for shapes where OpenBLAS's own threading does not (measured on Zen and Haswell
 * kernels: 48x360x576, 48x576x360, 256x3136x2304, 1000^3). What OpenBLAS's own threading does
 * here is printed, not asserted: it is why the backend does not use it. The test starts the
 * way the programs do (avs_ops_tune_process), so it checks the kernels they run: on a CPU that
 * OpenBLAS does not know, the AVX-512 or AVX2 set instead of its SSE3 fallback.
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/common.h"
#include "tests/check.h"

void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
char *openblas_get_config(void);

static const int shapes[][3] = {{48, 360, 576}, {48, 576, 360}, {256, 3136, 2304}, {1000, 1000, 1000},
                                {64, 64, 64},   {20, 20, 20},   {256, 980, 256},    {33, 517, 71}};
#define NSHAPES ((int)(sizeof shapes / sizeof *shapes))

static unsigned long long rng = 0x2545F4914F6CDD1DULL;

static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0 - 0.5);
}

static float *random_matrix(size_t n, size_t pad)
{
    float *p = avs_malloc((n + pad) * sizeof(float));
    for (size_t i = 0; i < n + pad; i++)
        p[i] = frand();
    return p;
}

static void sgemm(int M, int N, int K, const float *A, const float *B, float *C)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
}

/* 1 and 2: twice, and at operands shifted by 1, 16 and 1024 floats */
static void single_thread_calls(int M, int N, int K)
{
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = random_matrix(na, 1024), *B = random_matrix(nb, 1024);
    float *C0 = avs_malloc(nc * sizeof(float)), *C1 = avs_malloc(nc * sizeof(float));
    openblas_set_num_threads(1);
    sgemm(M, N, K, A, B, C0);
    sgemm(M, N, K, A, B, C1);
    CHECK(!memcmp(C0, C1, nc * 4), "%dx%dx%d: the same single-threaded call twice gave other bits",
          M, N, K);
    static const int shift[] = {1, 16, 1024};
    for (int s = 0; s < 3; s++) {
        float *A2 = A + shift[s], *B2 = B + (shift[s] * 7) % 1024;
        memmove(A2, A, na * sizeof(float));
        memmove(B2, B, nb * sizeof(float));
        sgemm(M, N, K, A2, B2, C1);
        CHECK(!memcmp(C0, C1, nc * 4), "%dx%dx%d: operands %d floats further on gave other bits "
              "(the result depends on addresses)", M, N, K, shift[s]);
        memmove(A, A2, na * sizeof(float));
        memmove(B, B + (shift[s] * 7) % 1024, nb * sizeof(float));
    }
    free(A), free(B), free(C0), free(C1);
}

/* 3: four column slices from 2 OpenMP threads at once == the same slices one by one */
static void concurrent_calls(int M, int N, int K)
{
    float *A = random_matrix((size_t)M * K, 0), *B = random_matrix((size_t)K * N, 0);
    size_t nc = (size_t)M * N;
    float *C0 = avs_calloc(nc, sizeof(float)), *C1 = avs_calloc(nc, sizeof(float));
    int w = (N + 3) / 4;
    openblas_set_num_threads(1);
    for (int i = 0; i < 4; i++) {
        int a = i * w, b = a + w < N ? a + w : N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, b - a, K, 1.0f, A, K, B + a, N,
                    0.0f, C0 + a, N);
    }
#pragma omp parallel for schedule(static) num_threads(2)
    for (int i = 0; i < 4; i++) {
        int a = i * w, b = a + w < N ? a + w : N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, b - a, K, 1.0f, A, K, B + a, N,
                    0.0f, C1 + a, N);
    }
    CHECK(!memcmp(C0, C1, nc * 4), "%dx%dx%d: slices computed by 2 OpenMP threads at once differ "
          "from the same calls in sequence", M, N, K);
    free(A), free(B), free(C0), free(C1);
}

/* OpenBLAS's own threading, for the record */
static void report_openblas_threads(int M, int N, int K)
{
    float *A = random_matrix((size_t)M * K, 0), *B = random_matrix((size_t)K * N, 0);
    size_t nc = (size_t)M * N;
    float *C0 = avs_malloc(nc * sizeof(float)), *C1 = avs_malloc(nc * sizeof(float));
    openblas_set_num_threads(1);
    sgemm(M, N, K, A, B, C0);
    openblas_set_num_threads(2);
    sgemm(M, N, K, A, B, C1);
    openblas_set_num_threads(1);
    printf("  OpenBLAS's own threads, %dx%dx%d: 1 vs 2 threads %s\n", M, N, K,
           memcmp(C0, C1, nc * 4) ? "DIFFER (not used by the backend)" : "agree");
    free(A), free(B), free(C0), free(C1);
}

/* the backend's gemm, 1, 2 and 3 threads: the same bits */
static void backend_gemm(int ta, int tb, int M, int N, int K)
{
    const struct avs_ops *op = avs_backend_cpu();
    size_t nc = (size_t)M * N;
    float *A = random_matrix((size_t)M * K, 0), *B = random_matrix((size_t)K * N, 0);
    float *C[3];
    for (int t = 0; t < 3; t++) {
        C[t] = avs_calloc(nc, sizeof(float));
        avs_ops_set_threads(t + 1);
        op->gemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C[t], N);
    }
    avs_ops_set_threads(2);
    for (int t = 1; t < 3; t++)
        CHECK(!memcmp(C[0], C[t], nc * 4), "backend gemm %c%c %dx%dx%d: 1 vs %d threads differ",
              ta ? 't' : 'n', tb ? 't' : 'n', M, N, K, t + 1);
    free(A), free(B), free(C[0]), free(C[1]), free(C[2]);
}

int main(int argc, char **argv)
{
    (void)argc;
    avs_ops_tune_process(argv); /* the kernels the programs run (OPENBLAS_CORETYPE fix-up) */
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS core: %s%s%s; config: %s\n", openblas_get_corename(), ct ? ", OPENBLAS_CORETYPE=" : "",
           ct ? ct : "", openblas_get_config());
    for (int i = 0; i < NSHAPES; i++) {
        int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        single_thread_calls(M, N, K);
        concurrent_calls(M, N, K);
        report_openblas_threads(M, N, K);
        for (int t = 0; t < 4; t++)
            backend_gemm(t >> 1, t & 1, M, N, K);
    }
    return check_summary("test_backend_blas");
}
