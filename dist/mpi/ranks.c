/* dist/mpi/ranks.c: dist/ranks.h over MPI_COMM_WORLD (see there). Device memory of a CPU
 * backend is host memory and goes to MPI_Allreduce in place; a CUDA backend's goes to NCCL
 * (dist/nccl/, CUDA=1 builds) or is staged through a host buffer. */
#include "dist/ranks.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/common.h"
#ifdef AVS_USE_NCCL
#include "dist/nccl/nccl.h"
#endif

static int world_rank, world_size = 1, local_rank, local_size = 1, started;
static double comm_s;
static float *stage; /* host staging for device memory without NCCL */
static size_t stage_n;

/* Started by a launcher (mpirun, mpiexec, srun with PMI/PMIx)? Alone, MPI is not started at
 * all: a singleton MPI_Init would spawn OpenMPI's runtime for nothing. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int avs_ranks_init(int *argc, char ***argv)
{
    if (!launched())
        return 0;
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init_thread failed (error %d): is this an MPI launcher's job?\n", rc);
        return -1;
    }
    started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    return 0;
}

void avs_ranks_finalize(void)
{
    if (!started)
        return;
#ifdef AVS_USE_NCCL
    avs_nccl_close();
#endif
    free(stage);
    stage = NULL, stage_n = 0;
    MPI_Finalize();
    started = 0;
}

void avs_ranks_abort(int code)
{
    if (started && world_size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int avs_ranks_rank(void) { return world_rank; }
int avs_ranks_size(void) { return world_size; }
int avs_ranks_local_rank(void) { return local_rank; }
int avs_ranks_local_size(void) { return local_size; }

static int on_cuda(void)
{
    return !strcmp(avs_ops()->name, "cuda");
}

const char *avs_ranks_comm(void)
{
    if (world_size == 1)
        return "none";
#ifdef AVS_USE_NCCL
    if (on_cuda())
        return "nccl";
#endif
    return "mpi";
}

/* MPI counts are int: large buffers go in pieces. */
static void sum_pieces(void *x, size_t n, MPI_Datatype type, size_t elem)
{
    const size_t piece = (size_t)1 << 28;
    for (size_t at = 0; at < n; at += piece) {
        size_t k = n - at < piece ? n - at : piece;
        MPI_Allreduce(MPI_IN_PLACE, (char *)x + at * elem, (int)k, type, MPI_SUM, MPI_COMM_WORLD);
    }
}

void avs_ranks_sum_f64(double *x, size_t n)
{
    if (world_size == 1 || n == 0)
        return;
    double t0 = avs_now();
    sum_pieces(x, n, MPI_DOUBLE, sizeof *x);
    comm_s += avs_now() - t0;
}

void avs_ranks_sum_dev(float *x, size_t n)
{
    if (world_size == 1 || n == 0)
        return;
    double t0 = avs_now();
    if (!on_cuda()) {
        sum_pieces(x, n, MPI_FLOAT, sizeof *x);
    } else {
#ifdef AVS_USE_NCCL
        avs_nccl_sum(x, n);
#else
        if (n > stage_n) {
            free(stage);
            stage = avs_malloc(n * sizeof *stage);
            stage_n = n;
        }
        avs_dev_download(stage, x, n);
        sum_pieces(stage, n, MPI_FLOAT, sizeof *stage);
        avs_dev_upload(x, stage, n);
#endif
    }
    comm_s += avs_now() - t0;
}

int avs_ranks_any(int flag)
{
    if (world_size == 1)
        return flag != 0;
    int in = flag != 0, out = 0;
    double t0 = avs_now();
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    comm_s += avs_now() - t0;
    return out;
}

void avs_ranks_bcast(void *buf, size_t bytes, int root)
{
    if (world_size == 1)
        return;
    AVS_ASSERT(bytes < (size_t)INT32_MAX);
    MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

void avs_ranks_barrier(void)
{
    if (world_size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
}

void avs_ranks_gather_str(const char *s, char *out, size_t len)
{
    if (world_size == 1) {
        snprintf(out, len, "%s", s);
        return;
    }
    char *all = avs_calloc((size_t)world_size, len), *mine = avs_calloc(1, len);
    snprintf(mine, len, "%s", s);
    AVS_ASSERT(len < (size_t)INT32_MAX);
    MPI_Allgather(mine, (int)len, MPI_CHAR, all, (int)len, MPI_CHAR, MPI_COMM_WORLD);
    size_t at = 0, cap = len * (size_t)world_size;
    out[0] = 0;
    for (int r = 0; r < world_size && at < cap; r++)
        at += (size_t)snprintf(out + at, cap - at, "%s%s", r ? ", " : "", all + (size_t)r * len);
    free(all), free(mine);
}

double avs_ranks_comm_seconds(void)
{
    return comm_s;
}

/* ---- point to point ---- */

enum { TAG_SIZE = 101, TAG_DATA, TAG_STOP };
#define PIECE ((size_t)1 << 30) /* MPI counts are int: messages go in pieces of 1 GiB */

static MPI_Request *stop_req; /* [world_size - 1] */
static int stop_sent, stop_got;

void avs_ranks_send(int to, const void *buf, size_t bytes)
{
    uint64_t size = bytes;
    double t0 = avs_now();
    MPI_Send(&size, 1, MPI_UINT64_T, to, TAG_SIZE, MPI_COMM_WORLD);
    for (size_t at = 0; at < bytes; at += PIECE) {
        int k = (int)(bytes - at < PIECE ? bytes - at : PIECE);
        MPI_Send((const char *)buf + at, k, MPI_BYTE, to, TAG_DATA, MPI_COMM_WORLD);
    }
    comm_s += avs_now() - t0;
}

void *avs_ranks_recv(int from, size_t *bytes)
{
    uint64_t size = 0;
    double t0 = avs_now();
    MPI_Recv(&size, 1, MPI_UINT64_T, from, TAG_SIZE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    char *buf = size ? avs_malloc((size_t)size) : NULL;
    for (size_t at = 0; at < size; at += PIECE) {
        int k = (int)(size - at < PIECE ? size - at : PIECE);
        MPI_Recv(buf + at, k, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    comm_s += avs_now() - t0;
    *bytes = (size_t)size;
    return buf;
}

void avs_ranks_stop_send(void)
{
    static int token;
    AVS_ASSERT(world_rank == 0 && !stop_sent);
    stop_req = avs_malloc((size_t)(world_size - 1) * sizeof *stop_req);
    for (int r = 1; r < world_size; r++)
        MPI_Isend(&token, 1, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD, &stop_req[r - 1]);
    stop_sent = 1;
}

int avs_ranks_stop_seen(void)
{
    int flag = 0;
    if (!stop_got) {
        MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag) {
            int token;
            MPI_Recv(&token, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            stop_got = 1;
        }
    }
    return stop_got;
}

void avs_ranks_stop_settle(void)
{
    int sent = stop_sent;
    MPI_Bcast(&sent, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (world_rank == 0 && sent) {
        MPI_Waitall(world_size - 1, stop_req, MPI_STATUSES_IGNORE);
        free(stop_req);
        stop_req = NULL;
    }
    else if (sent && !stop_got) {
        int token;
        MPI_Recv(&token, 1, MPI_INT, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    stop_sent = stop_got = 0;
}
