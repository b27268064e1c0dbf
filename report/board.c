/* report/board.c: the metrics rows as the leaderboard page reads them (report/board.h):
 * loaded best mIoU first, details parsed and checked, and grouped into rankings by subset,
 * protocol and F grouping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "report/board.h"

static char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? avs_strdup(s) : NULL;
}

int avs_report_is_avss(const struct avs_report_result *r)
{
    return (r->subset && !strcmp(r->subset, "avss")) || !strncmp(r->protocol, "avss-", 5);
}

static char *make_label(const struct avs_report_result *r)
{
    char g[48] = "";
    if (!strcmp(r->protocol, "official"))
        snprintf(g, sizeof g, r->group_frames > 0 ? ", F groups of %d" : ", F per video",
                 r->group_frames);
    return avs_sprintf("%s [%s %s, %s%s]", r->method, r->subset ? r->subset : "?",
                       r->split ? r->split : "all", r->protocol, g);
}

/* Parse the details text; on failure say where and how to fix it. */
static void parse_details(struct avs_report_result *r, const char *text)
{
    if (!text)
        return;
    const char *end = NULL;
    r->details = cJSON_ParseWithOpts(text, &end, 1);
    if (!r->details) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0, len = strlen(text);
        char where[96];
        if (at >= len)
            snprintf(where, sizeof where, "it ends early, at byte %zu", len);
        else
            snprintf(where, sizeof where, "error at byte %zu of %zu, near \"%.16s\"", at, len,
                     text + at);
        r->problem = avs_sprintf("metrics row %lld (method \"%s\"): its details JSON does not "
                                 "parse (%s); the row's mIoU and F are shown, its per-class "
                                 "and per-video numbers are not. Re-record it with avs-eval "
                                 "--record, or delete it: DELETE FROM metrics WHERE id = %lld",
                                 (long long)r->id, r->method, where, (long long)r->id);
        return;
    }
    if (avs_report_is_avss(r)) {
        char *why = avs_report_avss_check(r->details);
        if (why) {
            r->problem = avs_sprintf("metrics row %lld (method \"%s\", AVSS): %s; the row's "
                                     "mIoU and F are shown, the rest of its AVSS numbers are "
                                     "not. Re-record it with avs-eval --semantic --record",
                                     (long long)r->id, r->method, why);
            free(why);
        }
    }
}

static void load_row(sqlite3_stmt *st, struct avs_report_result *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->method = col_text(st, 1);
    r->subset = col_text(st, 2);
    r->split = col_text(st, 3);
    r->group_frames = sqlite3_column_int(st, 4);
    r->miou = sqlite3_column_double(st, 5);
    r->fscore = sqlite3_column_double(st, 6);
    r->dataset_iou = sqlite3_column_type(st, 7) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 7);
    r->frames = sqlite3_column_int(st, 8);
    r->source = col_text(st, 9);
    r->created = col_text(st, 10);
    r->protocol = col_text(st, 12);
    if (!r->protocol) /* the column is NOT NULL DEFAULT 'official'; old rows read as that */
        r->protocol = avs_strdup("official");
    parse_details(r, (const char *)sqlite3_column_text(st, 11));
    r->label = make_label(r);
}

static int subset_rank(const char *s)
{
    if (!s)
        return 3;
    return !strcmp(s, "s4") ? 0 : !strcmp(s, "ms3") ? 1 : !strcmp(s, "avss") ? 4 : 2;
}

static int cmp_group(const void *a, const void *b)
{
    const struct avs_report_group *x = a, *y = b;
    int c = subset_rank(x->subset) - subset_rank(y->subset);
    if (!c && x->subset && y->subset)
        c = strcmp(x->subset, y->subset);
    if (!c)
        c = avs_report_protocol_rank(x->protocol) - avs_report_protocol_rank(y->protocol);
    if (!c)
        c = strcmp(x->protocol, y->protocol);
    if (!c)
        c = x->group_frames - y->group_frames;
    return c;
}

static int same_key(const struct avs_report_group *g, const struct avs_report_result *r)
{
    int ss = (!g->subset && !r->subset) || (g->subset && r->subset && !strcmp(g->subset, r->subset));
    return ss && !strcmp(g->protocol, r->protocol) && g->group_frames == r->group_frames;
}

/* Rows arrive best mIoU first, so each group's rows are in ranking order. */
static void make_groups(struct avs_report_board *b)
{
    for (int i = 0; i < b->n; i++) {
        struct avs_report_result *r = &b->r[i];
        int g = 0;
        while (g < b->n_groups && !same_key(&b->groups[g], r))
            g++;
        if (g == b->n_groups) {
            b->groups = avs_realloc(b->groups, sizeof *b->groups * (size_t)(g + 1));
            b->groups[g] = (struct avs_report_group){r->subset, r->protocol, r->group_frames,
                                                     NULL, 0};
            b->n_groups++;
        }
        struct avs_report_group *gr = &b->groups[g];
        gr->idx = avs_realloc(gr->idx, sizeof *gr->idx * (size_t)(gr->n + 1));
        gr->idx[gr->n++] = i;
    }
    if (b->n_groups > 1)
        qsort(b->groups, (size_t)b->n_groups, sizeof *b->groups, cmp_group);
}

int avs_report_board_load(sqlite3 *db, struct avs_report_board *b, struct avs_err *err)
{
    static const char *SQL =
        "SELECT id, method, subset, split, group_frames, miou, fscore, dataset_iou, frames, "
        "source, created_at, details, protocol FROM metrics ORDER BY miou DESC, id";
    sqlite3_stmt *st;
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        b->r = avs_realloc(b->r, sizeof *b->r * (size_t)(b->n + 1));
        load_row(st, &b->r[b->n]);
        b->n_problems += b->r[b->n].problem != NULL;
        b->n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return avs_err_set(err, "reading metrics from %s: %s", sqlite3_db_filename(db, "main"),
                           sqlite3_errmsg(db));
    make_groups(b);
    return 0;
}

void avs_report_board_free(struct avs_report_board *b)
{
    for (int i = 0; i < b->n; i++) {
        struct avs_report_result *r = &b->r[i];
        free(r->method), free(r->subset), free(r->split), free(r->source), free(r->created);
        free(r->protocol), free(r->label), free(r->problem);
        cJSON_Delete(r->details);
    }
    for (int g = 0; g < b->n_groups; g++)
        free(b->groups[g].idx);
    free(b->groups);
    free(b->r);
    memset(b, 0, sizeof *b);
}
