/* report/board.h: internal to report/: the recorded results as the leaderboard page reads
 * them, shared by leaderboard.c (S4/MS3 tables, per class, gallery), avss.c (the AVSS
 * leaderboard, per-class table and heat map) and protocols.c (how the numbers were computed).
 *
 *   struct avs_report_board b = {0};
 *   avs_report_board_load(db, &b, &err);     every metrics row, details parsed and checked
 *   ... b.r[i], b.groups[g] (rows of one subset + protocol + F grouping, best mIoU first) ...
 *   avs_report_board_free(&b);
 *
 * A row whose details JSON does not parse, or an AVSS row whose details lack what the AVSS
 * sections need, keeps its place in the leaderboard (miou, fscore come from their columns);
 * r->problem says why the rest is missing and the page lists it under "Problems".
 */
#ifndef AVS_REPORT_BOARD_H
#define AVS_REPORT_BOARD_H

#include <cjson/cJSON.h>

#include "report/report.h"

struct avs_report_result {
    int64_t id;
    char *method, *subset, *split, *source, *created, *protocol;
    char *label;   /* "method [subset split, protocol, grouping]" for column headers */
    int group_frames, frames;
    double miou, fscore, dataset_iou; /* dataset_iou < 0: not recorded */
    cJSON *details; /* NULL when absent or unparsable */
    char *problem;  /* why (part of) the details could not be used, or NULL */
};

/* Rows that are ranked together: same subset, protocol and F grouping. */
struct avs_report_group {
    const char *subset, *protocol; /* borrowed from the first row */
    int group_frames;
    int *idx; /* rows, best mIoU first */
    int n;
};

struct avs_report_board {
    struct avs_report_result *r; /* best mIoU first */
    int n;
    struct avs_report_group *groups; /* s4, ms3, other subsets, avss; then protocol, grouping */
    int n_groups;
    int n_problems;
    int columns; /* results side by side (avs_report_leaderboard's columns) */
};

int avs_report_board_load(sqlite3 *db, struct avs_report_board *b, struct avs_err *err);
void avs_report_board_free(struct avs_report_board *b);
int avs_report_is_avss(const struct avs_report_result *r);

/* HTML pieces shared by the sections. */
void avs_report_esc(struct avs_buf *o, const char *s);
/* A number cell in percent (v < 0: a dash); best: bold green. */
void avs_report_num_cell(struct avs_buf *o, double v, int best);
/* A ranking row's opening: "<tr>", the rank cell and the method cell (with the warning link
 * of a row whose details are unusable), cell left open for more text. */
void avs_report_rank_method(struct avs_buf *o, const struct avs_report_result *r, int rank);
/* "S4 · protocol official · F one group per video" (escaped). */
void avs_report_group_title(struct avs_buf *o, const struct avs_report_group *g);

/* avss.c: the AVSS leaderboard, per-class IoU table and class x method heat map (id=avss);
 * nothing when no AVSS row exists. Returns the number of AVSS rows. */
int avs_report_avss_section(struct avs_buf *o, const struct avs_report_board *b);
/* Why an AVSS row's parsed details cannot feed the AVSS sections (malloc'd), or NULL. */
char *avs_report_avss_check(const cJSON *details);

/* protocols.c: "How these numbers were computed": one paragraph per protocol on the page, in
 * a fixed order; a protocol this version does not know gets a line saying so. */
void avs_report_protocols_section(struct avs_buf *o, const struct avs_report_board *b);
/* The short description of a protocol for table notes ("" when unknown). */
const char *avs_report_protocol_short(const char *protocol);
/* Sort rank of a protocol name: known ones in the table's order, unknown after. */
int avs_report_protocol_rank(const char *protocol);

#endif
