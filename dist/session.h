/* dist/session.h: the sessions row of a job (sql/schema.sql, migrations 2 and 6): the program,
 * the run or feature set it computed into, the compute device of every rank, the world size,
 * ranks per node and the communication backend. */
#ifndef AVS_DIST_SESSION_H
#define AVS_DIST_SESSION_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"

/* A collective: every rank calls it (the devices are gathered); rank 0 writes the row into db
 * (run_id or set_id 0: none). 0 ok, -1 with err set on rank 0. */
int avs_session_record(sqlite3 *db, const char *program, int64_t run_id, int64_t set_id,
                       struct avs_err *err);

#endif
