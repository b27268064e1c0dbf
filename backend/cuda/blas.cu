/* backend/cuda/blas.cu: gemm through cuBLAS.
 *
 * The table's GEMM is row-major: C[M,N] = alpha op(A) op(B) + beta C. A row-major [M,N] matrix
 * with leading dimension ldc is the column-major [N,M] matrix C^T with the same ld, so the call
 * is the column-major C^T = op(B)^T op(A)^T: cuBLAS gets (B, A) swapped and (N, M) swapped,
 * each keeping its own transpose flag.
 * Math (ctx.cu sets it on the handle): fp32 keeps FP32 FMA math (no TF32, no reduced-precision
 * reductions); tf32 allows TF32 tensor cores. With one stream and a fixed workspace cuBLAS gives
 * the same bits on every run on the same GPU model.
 */
#include "backend/cuda/cu_lib.cuh"

void avs_cu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    AVS_CUBLAS_CHECK(cublasSgemm(avs_cu_blas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                 &beta, C, ldc),
                     "gemm", "ta=%d tb=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d", ta, tb, M, N, K,
                     lda, ldb, ldc);
}
