/* dist/nccl/nccl.h: NCCL collectives for GPU ranks (CUDA=1 builds with MPI; dist/mpi/ranks.c
 * calls these when the active backend is CUDA). One communicator over MPI_COMM_WORLD, made at
 * the first call: rank 0's ncclGetUniqueId broadcast with MPI_Bcast, then ncclCommInitRank on
 * the device the CUDA backend opened (a process alone, MPI not started: 1 rank of 1). NCCL refuses two ranks on one GPU: give each rank its own
 * device (--device cuda:$LOCAL_RANK, the default under a launcher). */
#ifndef AVS_DIST_NCCL_H
#define AVS_DIST_NCCL_H

#include <stddef.h>

/* x[n] (device memory) summed over the ranks in place (ncclAllReduce, float, sum), waited for.
 * A CUDA or NCCL error aborts the job with its message (MPI_Abort). */
void avs_nccl_sum(float *x, size_t n);
void avs_nccl_close(void);

#endif
