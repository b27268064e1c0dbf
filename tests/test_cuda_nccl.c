/* tests/test_cuda_nccl.c: the NCCL path of data-parallel training (dist/nccl/) on one GPU: a
 * 1-rank communicator bootstrapped over MPI (ncclGetUniqueId broadcast, ncclCommInitRank),
 * ncclAllReduce in place on a device buffer the size of the C3N head's gradients (official
 * width 256, 224x224 stages): the sum over one rank must give back the same bits; then the
 * all-reduce bandwidth of that buffer (algorithm bytes / s) is printed. NCCL refuses two ranks
 * on one GPU, so more ranks need more GPUs (README, "Data-parallel training").
 * SKIP without a CUDA+MPI build (make CUDA=1 with MPI) or without a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/common.h"
#include "dist/ranks.h"
#include "tests/check.h"
#ifdef AVS_USE_NCCL
#include "backend/cuda/cuda_ctx.h"
#include "dist/nccl/nccl.h"
#include "model/c3n_head.h"

static int run_all(int argc, char **argv)
{
    char why[256];
    if (avs_cu_device_count(why, sizeof why) == 0)
        SKIP("no CUDA device (%s)", why);
    struct avs_err err;
    if (avs_ranks_init(&argc, &argv) || avs_backend_use("cuda:0", &err)) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    struct avs_c3n_cfg cfg;
    avs_c3n_cfg_default(&cfg, 224);
    struct avs_c3n_head h;
    avs_c3n_head_init(&h, &cfg, 1);
    size_t n = h.grads.arena.used;
    avs_c3n_head_free(&h);
    float *host = avs_malloc(n * sizeof *host), *back = avs_malloc(n * sizeof *back);
    for (size_t i = 0; i < n; i++)
        host[i] = (float)((i * 2654435761u) % 1000003u) / 1000003.0f - 0.5f;
    float *dev = avs_dev_alloc(n, "NCCL test buffer");
    avs_dev_upload(dev, host, n);
    avs_nccl_sum(dev, n);
    avs_dev_download(back, dev, n);
    CHECK(!memcmp(host, back, n * sizeof *host), "ncclAllReduce over 1 rank changed the data");
    int reps = 20;
    double t0 = avs_now();
    for (int r = 0; r < reps; r++)
        avs_nccl_sum(dev, n);
    double s = (avs_now() - t0) / reps;
    printf("cuda:0 %s: ncclAllReduce of the head's gradients (%zu floats, %.1f MB): %.3f ms, "
           "%.1f GB/s (1 rank: the launch and copy cost; bus bandwidth needs >= 2 GPUs)\n",
           avs_cu_device_name(), n, n * 4e-6, s * 1e3, n * 4e-9 / s);
    avs_dev_free(&dev);
    free(host), free(back);
    avs_ranks_finalize();
    return check_summary("test_cuda_nccl");
}
#endif

int main(int argc, char **argv)
{
#ifdef AVS_USE_NCCL
    return run_all(argc, argv);
#else
    (void)argc, (void)argv;
    SKIP("this build has no NCCL path (make CUDA=1 with MPI installed)");
#endif
}
