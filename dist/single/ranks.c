/* dist/single/ranks.c: dist/ranks.h for a build without MPI: a world of one process, every
 * collective the identity. */
#include "dist/ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* Started N times by a launcher, this build would run N independent copies on one store. */
int avs_ranks_init(int *argc, char ***argv)
{
    (void)argc;
    int n = avs_ranks_env_size();
    if (n > 1) {
        fprintf(stderr, "%s: started as %d ranks by a launcher, but this build has no MPI: N "
                "copies would do the same work on one store; rebuild with MPI (bash "
                "scripts/deps.sh, then make MPI=1) or run one process\n",
                *argv && (*argv)[0] ? (*argv)[0] : "avs", n);
        return -1;
    }
    return 0;
}

void avs_ranks_finalize(void) {}

void avs_ranks_abort(int code)
{
    exit(code);
}

int avs_ranks_rank(void) { return 0; }
int avs_ranks_size(void) { return 1; }
int avs_ranks_local_rank(void) { return 0; }
int avs_ranks_local_size(void) { return 1; }
const char *avs_ranks_comm(void) { return "none"; }

void avs_ranks_sum_f64(double *x, size_t n) { (void)x, (void)n; }
void avs_ranks_sum_dev(float *x, size_t n) { (void)x, (void)n; }
int avs_ranks_any(int flag) { return flag != 0; }
void avs_ranks_bcast(void *buf, size_t bytes, int root) { (void)buf, (void)bytes, (void)root; }
void avs_ranks_barrier(void) {}
double avs_ranks_comm_seconds(void) { return 0; }

void avs_ranks_gather_str(const char *s, char *out, size_t len)
{
    size_t n = strlen(s) < len ? strlen(s) : len - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Point to point: with one rank there is no other to talk to (avs_ranks_ordered sends
 * nothing alone), so these are never reached. */
void avs_ranks_send(int to, const void *buf, size_t bytes)
{
    (void)to, (void)buf, (void)bytes;
    AVS_ASSERT(!"avs_ranks_send with one rank");
}

void *avs_ranks_recv(int from, size_t *bytes)
{
    (void)from;
    *bytes = 0;
    AVS_ASSERT(!"avs_ranks_recv with one rank");
    return NULL;
}

void avs_ranks_stop_send(void) {}
int avs_ranks_stop_seen(void) { return 0; }
void avs_ranks_stop_settle(void) {}
