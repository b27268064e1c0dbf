/* dist/ranks_env.c: what both implementations of dist/ranks.h share (launcher environment,
 * the stop message). */
#include "dist/ranks.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"

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

static char *lost_line(int signo, const char *after)
{
    static char msg[512];
    snprintf(msg, sizeof msg, "rank %d of %d: stopped by signal %d from the launcher: another rank "
             "ended (its message and the launcher's name it) or the job was cancelled; %s\n",
             avs_ranks_rank(), avs_ranks_size(), signo, after);
    return msg;
}

const char *avs_ranks_lost_message(int signo)
{
    return lost_line(signo, "the last checkpoint on disk stays valid (continue with --resume)");
}

static char *lost_msg[2]; /* SIGTERM, SIGINT */

static void on_lost(int signo)
{
    const char *m = lost_msg[signo == SIGINT];
    ssize_t w = write(2, m, strlen(m));
    (void)w;
    _exit(128 + signo);
}

void avs_ranks_exit_on_lost(const char *after)
{
    if (avs_ranks_size() == 1)
        return;
    lost_msg[0] = strdup(lost_line(SIGTERM, after));
    lost_msg[1] = strdup(lost_line(SIGINT, after));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_lost;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

const char *avs_ranks_device(const char *device, char *buf, size_t len)
{
    if (device || avs_ranks_size() == 1 || strncmp(avs_backend_default(), "cuda", 4))
        return device;
    int lr = avs_ranks_env_local_rank();
    snprintf(buf, len, "cuda:%d", lr >= 0 ? lr : avs_ranks_local_rank());
    return buf;
}
