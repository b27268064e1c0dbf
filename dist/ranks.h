/* dist/ranks.h: the ranks of a data-parallel job (mpirun / srun), or one process alone.
 *
 *   avs_ranks_init(&argc, &argv);            first thing in main (MPI_Init_thread)
 *   int r = avs_ranks_rank(), n = avs_ranks_size();
 *   avs_ranks_sum_dev(grads, count);         in place, device memory of the active backend
 *   avs_ranks_finalize();                    last thing in main
 *
 * Two implementations of this one interface, chosen by the build (Makefile, MPI=0/1):
 * dist/single/ (world size 1: every collective is the identity, no MPI anywhere) and dist/mpi/
 * (MPI_COMM_WORLD; with CUDA=1 also dist/nccl/: one NCCL communicator for GPU ranks,
 * bootstrapped over MPI). Callers never test which one they have.
 *
 * Collectives are called by every rank in the same order with the same sizes (the training
 * loop's steps are the same on every rank). Results are identical on every rank (MPI and NCCL
 * reduce in one order per call), so every rank keeps the same model.
 * Errors: an MPI error aborts the whole job (MPI_ERRORS_ARE_FATAL) with MPI's message on stderr;
 * a rank that dies is noticed by the launcher, which stops the other ranks (mpirun: SIGTERM,
 * then SIGKILL; srun --kill-on-bad-exit=1): avs_ranks_lost_message() is what they print.
 */
#ifndef AVS_DIST_RANKS_H
#define AVS_DIST_RANKS_H

#include <stddef.h>

/* MPI_Init_thread (MPI_THREAD_FUNNELED: OpenMP threads inside, MPI from the main thread only)
 * when a launcher started this process (OMPI_COMM_WORLD_SIZE, PMI_SIZE/PMI_RANK or PMIX_RANK in
 * the environment); otherwise MPI is not started and the world is this process alone. Returns
 * 0, or -1 (message printed; also a build without MPI started as N > 1 ranks). */
int avs_ranks_init(int *argc, char ***argv);
void avs_ranks_finalize(void);
/* Abort every rank of the job (MPI_Abort) with exit status code; alone: exit(code). */
void avs_ranks_abort(int code);

int avs_ranks_rank(void);       /* 0..size-1 */
int avs_ranks_size(void);       /* world size, 1 alone */
int avs_ranks_local_rank(void); /* rank among this node's ranks */
int avs_ranks_local_size(void); /* ranks on this node */
/* "none" (one process), "mpi" (MPI_Allreduce on host memory), "nccl" (GPU ranks). */
const char *avs_ranks_comm(void);

/* x[n] summed over the ranks, in place. _f64: host memory; _dev: device memory of the active
 * backend (a CPU backend's is host memory: MPI directly; CUDA: NCCL when built with it, else
 * staged through host memory). */
void avs_ranks_sum_f64(double *x, size_t n);
void avs_ranks_sum_dev(float *x, size_t n);
/* 1 when flag is non-zero on any rank (a max over the ranks). */
int avs_ranks_any(int flag);
/* A step every rank took failed somewhere: 1 on every rank when rc is non-zero on any (the
 * others would wait in the next collective), 0 when it succeeded everywhere. A rank whose own
 * rc is 0 gets err "rank R of N: another rank failed (its message names the cause)". */
struct avs_err;
int avs_ranks_failed(int rc, struct avs_err *err);
/* bytes of buf from root to every rank. */
void avs_ranks_bcast(void *buf, size_t bytes, int root);
void avs_ranks_barrier(void);
/* Every rank's string s (at most len-1 bytes each) joined by ", " into out[len * size], on
 * every rank (the devices of a run). */
void avs_ranks_gather_str(const char *s, char *out, size_t len);

/* Seconds spent inside collectives since init (benchmarks: the communication share). */
double avs_ranks_comm_seconds(void);

/* The launcher's local rank from the environment (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID,
 * MPI_LOCALRANKID, LOCAL_RANK), -1 when none is set: programs map it to --device cuda:N. */
int avs_ranks_env_local_rank(void);

/* The device of this rank: `device` when given (--device), else under a launcher cuda:N (N the
 * local rank) when the default backend is a GPU, else NULL (the default). buf[len] holds it. */
const char *avs_ranks_device(const char *device, char *buf, size_t len);

/* The world size the launcher announces in the environment (OMPI_COMM_WORLD_SIZE; PMI_SIZE from
 * MPICH's launchers and srun --mpi=pmi2), 1 when none: a build without MPI (dist/single/) refuses
 * to start under a launcher (N copies would do the same work on one store). */
int avs_ranks_env_size(void);

/* One line for a rank stopped by its launcher (a signal while the world has other ranks):
 * "rank R of N: stopped by signal S from the launcher: another rank ended (its message and
 * mpirun's name it) or the job was cancelled". Fixed buffer; async-signal-safe to write(2). */
const char *avs_ranks_lost_message(int signo);
/* With more than one rank: SIGTERM and SIGINT print that line, with `after` in place of the
 * training checkpoint's sentence (what stays valid, how to go on), and end the process
 * (exit status 128 + signal). For programs whose state on disk is always valid (avs-features,
 * avs-predict). Alone: nothing installed. */
void avs_ranks_exit_on_lost(const char *after);

/* ---- point to point (dist/ranks_work.c builds the ordered work loop on these) ----
 * Messages of any size between two ranks, received in the order they were sent. */

/* bytes of buf to rank `to`, which receives them with avs_ranks_recv; returns once buf may be
 * reused (a large message: once `to` receives it). Blocking on purpose: a message sent in the
 * background moves only while the sender calls MPI (without single-copy shared memory), so the
 * receiver would wait for the sender's next video anyway (measured: 18-19 s against 15 s for
 * 12 videos on 2 ranks). */
void avs_ranks_send(int to, const void *buf, size_t bytes);
/* The next message from rank `from` (malloc'd, NULL when 0 bytes; *bytes its size). */
void *avs_ranks_recv(int from, size_t *bytes);
/* Rank 0 tells every other rank to stop early (once); a rank other than 0 asks whether it was
 * told so (non-blocking), and avs_ranks_stop_settle (collective) receives a stop message
 * that came after it stopped asking, so that none is left unmatched at the end. */
void avs_ranks_stop_send(void);
int avs_ranks_stop_seen(void);
void avs_ranks_stop_settle(void);

/* ---- ordered work (dist/ranks_work.c) ----
 * Items 0..n-1 over the ranks: item i is made on rank i % size, and rank 0 takes every item's
 * result in item order, so that what rank 0 writes is what one process writes.
 *   make(ctx, i, &buf, &bytes): on the item's rank: its result as malloc'd bytes (a failure is
 *     a result too: the bytes say so). Returns 0, or -1: this rank makes nothing more (its
 *     failure goes to rank 0 in buf).
 *   take(ctx, i, buf, bytes): on rank 0, in item order (buf is freed after: copy what is
 *     kept). Returns 0, or -1 to stop: no more takes, and every rank stops making (their
 *     remaining items go to rank 0 empty and are dropped).
 * Rank 0 waits only for the next item in order, and a rank sends its items in order, so the
 * loop cannot deadlock; a rank that dies ends the job (the launcher).
 * Every rank calls it with the same n. Returns 0, or -1 on rank 0 when a take stopped it. */
typedef int (*avs_ranks_make_fn)(void *ctx, int i, void **buf, size_t *bytes);
typedef int (*avs_ranks_take_fn)(void *ctx, int i, const void *buf, size_t bytes);
int avs_ranks_ordered(int n, avs_ranks_make_fn make, avs_ranks_take_fn take, void *ctx);

#endif
