/* dist/ranks_env.c: what both implementations of dist/ranks.h share (launcher environment,
 * the stop message). */
#include "dist/ranks.h"

#include <stdio.h>
#include <stdlib.h>

int avs_ranks_env_local_rank(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                                        "MPI_LOCALRANKID", "LOCAL_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long x = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && x >= 0 && x < 1 << 20)
            return (int)x;
    }
    return -1;
}

int avs_ranks_env_size(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long x = v && *v ? strtol(v, &end, 10) : 0;
        if (v && *v && !*end && x > 1)
            return x < 1 << 20 ? (int)x : 1 << 20;
    }
    return 1;
}

const char *avs_ranks_lost_message(int signo)
{
    static char msg[256];
    snprintf(msg, sizeof msg, "rank %d of %d: stopped by signal %d from the launcher: another rank "
             "ended (its message and the launcher's name it) or the job was cancelled; the last "
             "checkpoint on disk stays valid (continue with --resume)\n",
             avs_ranks_rank(), avs_ranks_size(), signo);
    return msg;
}
