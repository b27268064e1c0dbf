/* dist/session.c: avs_session_record (dist/session.h), shared by avs-train, avs-features and
 * avs-predict. */
#include "dist/session.h"

#include <stdlib.h>

#include "backend/ops.h"
#include "core/db.h"
#include "dist/ranks.h"

int avs_session_record(sqlite3 *db, const char *program, int64_t run_id, int64_t set_id,
                       struct avs_err *err)
{
    size_t len = 64;
    int ranks = avs_ranks_size(), rc = 0;
    char *devs = avs_calloc((size_t)ranks, len);
    avs_ranks_gather_str(avs_ops_device(), devs, len);
    if (avs_ranks_rank() == 0)
        rc = avs_db_record_session(db, program, run_id, set_id, avs_ops_device(),
                                   avs_ops_threads(), err) ||
             avs_db_record_ranks(db, ranks, avs_ranks_local_size(), avs_ranks_comm(), devs, err);
    free(devs);
    return rc ? -1 : 0;
}
