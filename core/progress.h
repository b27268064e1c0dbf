/* core/progress.h: a one-line progress bar on stderr, shown only when stderr is a TTY.
 *
 *   struct avs_progress p;
 *   avs_progress_init(&p, "ingest", total);
 *   ... avs_progress_add(&p, 1);   (thread-safe)
 *   avs_progress_end(&p);
 * Line: "ingest [#####.....] 12/40 clips  3.1/s  ETA 9s  <note>".
 */
#ifndef AVS_CORE_PROGRESS_H
#define AVS_CORE_PROGRESS_H

#include <pthread.h>
#include <stdint.h>

struct avs_progress {
    const char *label;
    const char *unit;
    int64_t total, done;
    double start, last_draw;
    int enabled;
    char note[96];
    pthread_mutex_t lock;
};

void avs_progress_init(struct avs_progress *p, const char *label, const char *unit, int64_t total);
void avs_progress_add(struct avs_progress *p, int64_t n);
/* A short text shown at the end of the line (e.g. "loss 0.123"). */
void avs_progress_note(struct avs_progress *p, const char *note);
void avs_progress_end(struct avs_progress *p);

#endif
