/* dist/ranks_work.c: avs_ranks_ordered (dist/ranks.h): items dealt round robin to the ranks,
 * results taken by rank 0 in item order; avs_ranks_failed. Shared by both implementations:
 * alone, every item is made and taken here, in order, with no message at all. */
#include "dist/ranks.h"

#include <stdlib.h>

#include "core/common.h"

int avs_ranks_failed(int rc, struct avs_err *err)
{
    if (!avs_ranks_any(rc != 0))
        return 0;
    if (rc == 0)
        avs_err_set(err, "rank %d of %d: another rank failed (its message names the cause)",
                    avs_ranks_rank(), avs_ranks_size());
    return 1;
}

/* Rank 0: item i, made here or received from its rank, taken unless stopped. -1: stop now. */
static int rank0_item(int i, int size, avs_ranks_make_fn make, avs_ranks_take_fn take, void *ctx,
                      int stopped)
{
    void *buf = NULL;
    size_t bytes = 0;
    int from = i % size, failed = 0, rc = 0;
    if (from != 0)
        buf = avs_ranks_recv(from, &bytes); /* always: every rank sends one message an item */
    else if (!stopped)
        failed = make(ctx, i, &buf, &bytes);
    if (!stopped)
        rc = take(ctx, i, buf, bytes) || failed ? -1 : 0;
    free(buf);
    return rc;
}

int avs_ranks_ordered(int n, avs_ranks_make_fn make, avs_ranks_take_fn take, void *ctx)
{
    int size = avs_ranks_size(), rank = avs_ranks_rank(), stopped = 0;
    if (rank == 0) {
        for (int i = 0; i < n; i++) {
            if (rank0_item(i, size, make, take, ctx, stopped) && !stopped) {
                stopped = 1;
                if (size > 1)
                    avs_ranks_stop_send();
            }
        }
    } else {
        for (int i = rank; i < n; i += size) {
            void *buf = NULL;
            size_t bytes = 0;
            if (!stopped && avs_ranks_stop_seen())
                stopped = 1;
            if (!stopped && make(ctx, i, &buf, &bytes))
                stopped = 1; /* this failure is sent; rank 0 stops everyone when it takes it */
            avs_ranks_send(0, buf, bytes);
            free(buf);
        }
    }
    if (size > 1)
        avs_ranks_stop_settle();
    return rank == 0 && stopped ? -1 : 0;
}
