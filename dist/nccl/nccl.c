/* dist/nccl/nccl.c: see nccl.h. Plain C host code over the CUDA runtime and NCCL. */
#include "dist/nccl/nccl.h"

#include <cuda_runtime.h>
#include <mpi.h>
/* nccl.h declares a few functions as f() (no prototype) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop
#include <stdio.h>
#include <stdlib.h>

static ncclComm_t comm;
static cudaStream_t stream;
static int opened;

/* MPI is started only under a launcher (dist/mpi/ranks.c); alone NCCL runs as 1 rank of 1. */
static int mpi_on(void)
{
    int on = 0;
    MPI_Initialized(&on);
    return on;
}

static void die(const char *what, const char *why)
{
    int rank = 0;
    if (mpi_on())
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "rank %d: %s: %s\n", rank, what, why);
    if (mpi_on())
        MPI_Abort(MPI_COMM_WORLD, 3);
    exit(3);
}

static void check_cuda(cudaError_t e, const char *what)
{
    if (e != cudaSuccess)
        die(what, cudaGetErrorString(e));
}

static void check_nccl(ncclResult_t r, const char *what)
{
    if (r != ncclSuccess)
        die(what, ncclGetErrorString(r));
}

static void open_comm(void)
{
    int rank = 0, size = 1;
    if (mpi_on()) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    ncclUniqueId id;
    if (rank == 0)
        check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (size > 1)
        MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate (NCCL)");
    check_nccl(ncclCommInitRank(&comm, size, id, rank),
               "ncclCommInitRank (each rank needs its own GPU: --device cuda:LOCAL_RANK)");
    opened = 1;
}

void avs_nccl_sum(float *x, size_t n)
{
    if (!opened)
        open_comm();
    /* the backend's kernels that wrote x run on its own streams: wait for them */
    check_cuda(cudaDeviceSynchronize(), "before ncclAllReduce");
    check_nccl(ncclAllReduce(x, x, n, ncclFloat, ncclSum, comm, stream), "ncclAllReduce");
    check_cuda(cudaStreamSynchronize(stream), "ncclAllReduce");
}

void avs_nccl_close(void)
{
    if (!opened)
        return;
    ncclCommDestroy(comm);
    cudaStreamDestroy(stream);
    opened = 0;
}
