/* report/report.h: reports from the metrics table: a self-contained HTML leaderboard, the
 * ablation table (C3N paper Table II layout) and a grid of any two recorded parameters (Table
 * III: alpha x beta) as HTML, Markdown, LaTeX or CSV.
 *
 *   sqlite3 *db; avs_db_open_readonly("avsdata/avs.db", &db, &err);
 *   avs_report_leaderboard(db, "avsdata", "board.html", &err);
 *   avs_report_ablation(db, AVS_REPORT_MARKDOWN, "test", "official", "table.md", &err);
 *
 * Every string that comes from data (methods, categories, uids, paths) goes through the
 * escaper of the output format (avs_buf_esc); nothing from the data is ever emitted raw.
 * The HTML has no external reference: CSS, the sort script and SVG charts are inline and
 * thumbnails are PNG data URIs.
 */
#ifndef AVS_REPORT_REPORT_H
#define AVS_REPORT_REPORT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

enum avs_report_format {
    AVS_REPORT_HTML,
    AVS_REPORT_MARKDOWN,
    AVS_REPORT_LATEX,
    AVS_REPORT_CSV
};

/* A growing text buffer. */
struct avs_buf {
    char *p;
    size_t len, cap;
};
void avs_buf_put(struct avs_buf *b, const char *s, size_t n);
void avs_buf_puts(struct avs_buf *b, const char *s);
void avs_buf_printf(struct avs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped for the format (NULL appends nothing). HTML: & < > " ' as entities;
 * Markdown: also | \ ` * _ [ ] # escaped with a backslash, newlines as spaces; LaTeX: the ten
 * special characters; CSV: a quoted field with doubled quotes. */
void avs_buf_esc(struct avs_buf *b, enum avs_report_format f, const char *s);
void avs_buf_base64(struct avs_buf *b, const uint8_t *data, size_t n);
void avs_buf_free(struct avs_buf *b);

/* Results side by side in the leaderboard's per-class tables, chart, AVSS heat map and
 * gallery, by default (the best by mIoU; more are in the rankings). */
#define AVS_REPORT_COLUMNS 8
#define AVS_REPORT_COLUMNS_MAX 64
/* The HTML leaderboard; `root` resolves relative paths (store root); `columns` (1 ..
 * AVS_REPORT_COLUMNS_MAX; <= 0: AVS_REPORT_COLUMNS) results side by side where columns are
 * per result. One ranking per subset +
 * protocol (metrics.protocol; + F grouping for 'official'), an AVSS section (variants,
 * per-class table, heat map) when AVSS rows exist, and "How these numbers were computed" for
 * the protocols present. Returns -1 on error (err set), else the number of rows whose details
 * could not be used in full (each named on the page's Problems list and logged as a warning;
 * the page is complete otherwise). */
int avs_report_leaderboard(sqlite3 *db, const char *root, int columns, const char *out,
                           struct avs_err *err);
/* The ablation table for one split (NULL = any split) from rows of one protocol (NULL =
 * 'official'); every format names the protocol (CSV: a protocol column). */
int avs_report_ablation(sqlite3 *db, enum avs_report_format f, const char *split,
                        const char *protocol, const char *out, struct avs_err *err);

/* The ablation table as an HTML section (heading + table) appended to o, for the leaderboard;
 * nothing when no row has switches. Returns the number of lines, or -1. */
int avs_report_ablation_section(struct avs_buf *o, sqlite3 *db, const char *split,
                                const char *protocol, struct avs_err *err);

/* Any two recorded parameters as a table (report/grid.c): rows = the values of one, columns =
 * the values of the other (alpha x beta is the C3N paper's Table III; switches x backbone,
 * encoder x encoder...), each cell the metric of the results recorded with both values.
 * Parameter names and where they are read: report/params.h. */
#define AVS_REPORT_GRID_WHERE 8
struct avs_report_grid {
    const char *rows, *cols; /* parameter names */
    const char *metric;      /* "miou" (NULL: default) or "fscore" */
    const char *pick;        /* several methods in a cell: "best" (NULL: default), "mean", "latest" */
    const char *subset;      /* NULL: the one subset of the results (an error when several) */
    const char *split;       /* NULL: any split */
    const char *protocol;    /* NULL: official */
    const char *where[AVS_REPORT_GRID_WHERE]; /* "NAME=VALUE" filters, all must hold */
};
/* -1 with err when the options are unusable (names missing, metric or pick unknown, a filter
 * without '='), else 0. */
int avs_report_grid_check(const struct avs_report_grid *g, struct avs_err *err);
/* The table in format f to out ('-': stdout). 0 or -1 (err). */
int avs_report_grid(sqlite3 *db, enum avs_report_format f, const struct avs_report_grid *g,
                    const char *out, struct avs_err *err);
/* The table as an HTML section (heading `title` with anchor `id`) appended to o when it has
 * more than one row or column: returns 1 (shown), 0 (nothing appended), -1 (err). */
int avs_report_grid_section(struct avs_buf *o, sqlite3 *db, const struct avs_report_grid *g,
                            const char *id, const char *title, struct avs_err *err);

/* One gallery thumbnail: frame (or gray), GT overlay, prediction overlay, side by side,
 * each `size` pixels square; PNG bytes in *png (malloc'd). Missing inputs are drawn gray. */
int avs_report_thumbnail(const char *image, const char *gt, const char *pred, int size,
                         uint8_t **png, size_t *len, struct avs_err *err);

#endif
