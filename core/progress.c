/* core/progress.c: see progress.h. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/common.h"
#include "core/progress.h"

void avs_progress_init(struct avs_progress *p, const char *label, const char *unit, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = avs_now();
    p->enabled = isatty(2) && getenv("AVS_NO_PROGRESS") == NULL;
    pthread_mutex_init(&p->lock, NULL);
}

static void draw(struct avs_progress *p, double now)
{
    double el = now - p->start, rate = el > 0 ? (double)p->done / el : 0;
    int width = 24, fill = p->total > 0 ? (int)(width * p->done / p->total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    char eta[32] = "";
    if (rate > 0 && p->total > p->done)
        snprintf(eta, sizeof eta, "  ETA %.0fs", (double)(p->total - p->done) / rate);
    fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.2f/s%s  %s\033[K", p->label, bar, (long long)p->done,
            (long long)p->total, p->unit, rate, eta, p->note);
    fflush(stderr);
    p->last_draw = now;
}

void avs_progress_add(struct avs_progress *p, int64_t n)
{
    pthread_mutex_lock(&p->lock);
    p->done += n;
    double now = avs_now();
    if (p->enabled && (now - p->last_draw > 0.1 || p->done == p->total))
        draw(p, now);
    pthread_mutex_unlock(&p->lock);
}

void avs_progress_note(struct avs_progress *p, const char *note)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->note, sizeof p->note, "%s", note);
    pthread_mutex_unlock(&p->lock);
}

void avs_progress_end(struct avs_progress *p)
{
    if (p->enabled) {
        draw(p, avs_now());
        fputc('\n', stderr);
    }
    pthread_mutex_destroy(&p->lock);
}
