/* report/ablation.c: the ablation table in the layout of the C3N paper's Table II:
 *
 *   AF | CC-V | CC || S4 mIoU | S4 F || MS3 mIoU | MS3 F        one block per backbone
 *
 * A metrics row takes part when its switches are known: details.switches (written by
 * `avs-eval --record NAME --switches AF,CC`), else the linked run's config.switches; the
 * backbone likewise from details.backbone, else config.backbone. Switches may be an object
 * {"AF": true, "CC-V": false, "CC": true}, an array ["AF", "CC"] or a string "AF,CC".
 * Only C3N's results at the official C3IM exponents (alpha = beta = 0.1, or none recorded) take
 * part: other exponents are Table III's, AVSBench's TPAVI baseline is Table I's (report/grid.c).
 * A block is a backbone, or "backbone + audio" for an audio encoder other than VGGish.
 * For each (backbone, switches) the latest S4 row and the latest MS3 row of the chosen protocol
 * (metrics.protocol, default 'official') are shown: numbers of different protocols never
 * share a table, and every format names the protocol.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "report/params.h"
#include "report/report.h"

struct cell {
    double miou, fscore;
    int have, group_frames;
};

struct line {
    char *backbone;
    int bits; /* 1 AF, 2 CC-V, 4 CC */
    struct cell s4, ms3;
};

static int find_line(struct line **lines, int *n, const char *backbone, int bits)
{
    for (int i = 0; i < *n; i++)
        if ((*lines)[i].bits == bits && !strcmp((*lines)[i].backbone, backbone))
            return i;
    *lines = avs_realloc(*lines, sizeof **lines * (size_t)(*n + 1));
    memset(&(*lines)[*n], 0, sizeof **lines);
    (*lines)[*n].backbone = avs_strdup(backbone);
    (*lines)[*n].bits = bits;
    return (*n)++;
}

/* Table II is the model at the official C3IM exponents: runs made with other alpha/beta (the
 * Table III grid, report/grid.c) stay out of it. Rows that record none take part. */
static int official_exponents(const cJSON *d, const cJSON *c)
{
    static const struct avs_report_row none = {0};
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        char *v = avs_report_param(i ? "beta" : "alpha", d, c, &none);
        ok &= !v || strtod(v, NULL) == 0.1;
        free(v);
    }
    return ok;
}

/* Table II is C3N's: AVSBench's TPAVI baseline (model "TPAVI") is Table I's (report/grid.c).
 * Rows that record no model take part. */
static int is_c3n(const cJSON *d, const cJSON *c)
{
    static const struct avs_report_row none = {0};
    char *m = avs_report_param("model", d, c, &none);
    int ok = !m || !strcmp(m, "C3N");
    free(m);
    return ok;
}

/* The block a row belongs to: its backbone, with the audio encoder when that is not VGGish
 * (the paper's Table II is VGGish's; another encoder's switches get a block of their own). */
static char *block_name(const cJSON *d, const cJSON *c)
{
    static const struct avs_report_row none = {0};
    const char *bb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "backbone"));
    if (!bb)
        bb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "backbone"));
    if (!bb)
        bb = "(backbone not recorded)";
    char *audio = avs_report_param("audio", d, c, &none);
    char *name = audio && strcmp(audio, "vggish") ? avs_sprintf("%s + %s", bb, audio) : avs_strdup(bb);
    free(audio);
    return name;
}

static int load_lines(sqlite3 *db, const char *split, const char *protocol, struct line **lines,
                      int *n, struct avs_err *err)
{
    static const char *SQL =
        "SELECT m.subset, m.miou, m.fscore, m.details, r.config, m.group_frames FROM metrics m "
        "LEFT JOIN runs r ON r.id = m.run_id WHERE (?1 IS NULL OR m.split = ?1) "
        "AND m.protocol = ?2 ORDER BY m.id";
    sqlite3_stmt *st;
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    sqlite3_bind_text(st, 1, split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, protocol, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *subset = (const char *)sqlite3_column_text(st, 0);
        const char *dt = (const char *)sqlite3_column_text(st, 3);
        const char *cf = (const char *)sqlite3_column_text(st, 4);
        cJSON *d = dt ? cJSON_Parse(dt) : NULL, *c = cf ? cJSON_Parse(cf) : NULL;
        int bits = avs_report_switch_bits(cJSON_GetObjectItemCaseSensitive(d, "switches"));
        if (bits < 0)
            bits = avs_report_switch_bits(cJSON_GetObjectItemCaseSensitive(c, "switches"));
        if (bits >= 0 && subset && (!strcmp(subset, "s4") || !strcmp(subset, "ms3")) &&
            official_exponents(d, c) && is_c3n(d, c)) {
            char *bb = block_name(d, c);
            int i = find_line(lines, n, bb, bits);
            free(bb);
            struct cell *cell = !strcmp(subset, "s4") ? &(*lines)[i].s4 : &(*lines)[i].ms3;
            cell->miou = sqlite3_column_double(st, 1);
            cell->fscore = sqlite3_column_double(st, 2);
            cell->group_frames = sqlite3_column_int(st, 5);
            cell->have = 1;
        }
        cJSON_Delete(d);
        cJSON_Delete(c);
    }
    sqlite3_finalize(st);
    return 0;
}

static int popcount3(int b) { return (b & 1) + (b >> 1 & 1) + (b >> 2 & 1); }

static int cmp_line(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    int c = strcmp(x->backbone, y->backbone);
    if (c)
        return c;
    if (popcount3(x->bits) != popcount3(y->bits))
        return popcount3(x->bits) - popcount3(y->bits);
    return x->bits - y->bits;
}

static void mark(struct avs_buf *o, enum avs_report_format f, int on)
{
    static const char *YES[] = {"&#10003;", "&#10003;", "\\checkmark", "1"};
    static const char *NO[] = {"", "", "", "0"};
    avs_buf_puts(o, on ? YES[f] : NO[f]);
}

static void number(struct avs_buf *o, enum avs_report_format f, const struct cell *c, int miou)
{
    if (!c->have) {
        avs_buf_puts(o, f == AVS_REPORT_HTML ? "&ndash;" : f == AVS_REPORT_LATEX ? "--" :
                        f == AVS_REPORT_CSV ? "" : "-");
        return;
    }
    if (f == AVS_REPORT_CSV)
        avs_buf_printf(o, "%.6f", miou ? c->miou : c->fscore);
    else if (miou)
        avs_buf_printf(o, "%.1f", 100 * c->miou);
    else
        avs_buf_printf(o, "%.3f", c->fscore);
}

/* Cell separators and line ends per format. */
static const char *SEP[] = {"</td><td>", " | ", " & ", ","};

static void row(struct avs_buf *o, enum avs_report_format f, const struct line *l,
                const char *protocol)
{
    static const char *START[] = {"<tr><td>", "| ", "", ""};
    static const char *END[] = {"</td></tr>\n", " |\n", " \\\\\n", "\n"};
    avs_buf_puts(o, START[f]);
    if (f == AVS_REPORT_CSV) {
        avs_buf_esc(o, f, l->backbone);
        avs_buf_puts(o, ",");
    }
    for (int i = 0; i < 3; i++) {
        mark(o, f, l->bits >> i & 1);
        avs_buf_puts(o, SEP[f]);
    }
    number(o, f, &l->s4, 1);
    avs_buf_puts(o, SEP[f]);
    number(o, f, &l->s4, 0);
    avs_buf_puts(o, SEP[f]);
    number(o, f, &l->ms3, 1);
    avs_buf_puts(o, SEP[f]);
    number(o, f, &l->ms3, 0);
    if (f == AVS_REPORT_CSV) {
        avs_buf_puts(o, ",");
        avs_buf_esc(o, f, protocol);
    }
    avs_buf_puts(o, END[f]);
}

static void block_head(struct avs_buf *o, enum avs_report_format f, const char *backbone)
{
    switch (f) {
    case AVS_REPORT_HTML:
        avs_buf_puts(o, "<tr class=block><th colspan=7>Backbone: ");
        avs_buf_esc(o, f, backbone);
        avs_buf_puts(o, "</th></tr>\n");
        break;
    case AVS_REPORT_MARKDOWN:
        avs_buf_puts(o, "\n**Backbone: ");
        avs_buf_esc(o, f, backbone);
        avs_buf_puts(o, "**\n\n| AF | CC-V | CC | S4 mIoU | S4 F | MS3 mIoU | MS3 F |\n"
                        "|:--:|:--:|:--:|--:|--:|--:|--:|\n");
        break;
    case AVS_REPORT_LATEX:
        avs_buf_puts(o, "\\midrule\n\\multicolumn{7}{l}{\\textit{");
        avs_buf_esc(o, f, backbone);
        avs_buf_puts(o, "}} \\\\\n");
        break;
    case AVS_REPORT_CSV: break;
    }
}

static void html_table_head(struct avs_buf *o, const char *protocol)
{
    avs_buf_puts(o, "<p class=note>Protocol <code>");
    avs_buf_esc(o, AVS_REPORT_HTML, protocol);
    avs_buf_puts(o, "</code> only. mIoU in percent, F-score as a fraction, each from the latest "
                    "recorded row of that backbone and switch combination (switches from the "
                    "row or its avs-train run); the F grouping of each row is in the "
                    "leaderboard.</p>\n<table class=ablation><thead><tr><th>AF</th><th>CC-V</th>"
                    "<th>CC</th><th>S4 mIoU</th><th>S4 F</th><th>MS3 mIoU</th><th>MS3 F</th></tr>"
                    "</thead><tbody>\n");
}

static void html_rows(struct avs_buf *o, const struct line *l, int n)
{
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(l[i].backbone, l[i - 1].backbone))
            block_head(o, AVS_REPORT_HTML, l[i].backbone);
        row(o, AVS_REPORT_HTML, &l[i], NULL);
    }
    avs_buf_puts(o, "</tbody></table>\n");
}

static void render(struct avs_buf *o, enum avs_report_format f, const struct line *l, int n,
                   const char *split, const char *protocol)
{
    const char *sp = split ? split : "all splits";
    switch (f) {
    case AVS_REPORT_HTML:
        avs_buf_puts(o, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>AVS "
                        "ablation</title><style>body{font:14px system-ui,sans-serif;margin:24px}"
                        "table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;"
                        "padding:4px 12px;text-align:center}tr.block th{text-align:left;"
                        "background:#f3f5fa}</style></head><body>\n<h1>Ablation (");
        avs_buf_esc(o, f, sp);
        avs_buf_puts(o, ", protocol ");
        avs_buf_esc(o, f, protocol);
        avs_buf_puts(o, ")</h1>\n");
        html_table_head(o, protocol);
        break;
    case AVS_REPORT_MARKDOWN:
        avs_buf_puts(o, "Ablation (");
        avs_buf_esc(o, f, sp);
        avs_buf_puts(o, ", protocol ");
        avs_buf_esc(o, f, protocol);
        avs_buf_puts(o, "): mIoU in percent, F-score as a fraction.\n");
        break;
    case AVS_REPORT_LATEX:
        avs_buf_puts(o, "% avs-report ablation, protocol ");
        avs_buf_esc(o, f, protocol);
        avs_buf_puts(o, ": mIoU in percent, F as a fraction; needs "
                        "\\usepackage{booktabs,amssymb}\n\\begin{tabular}{ccc|cc|cc}\n\\toprule\n"
                        "AF & CC-V & CC & \\multicolumn{2}{c|}{S4} & \\multicolumn{2}{c}{MS3} \\\\\n"
                        " & & & mIoU & F & mIoU & F \\\\\n");
        break;
    case AVS_REPORT_CSV:
        avs_buf_puts(o, "backbone,AF,CC-V,CC,s4_miou,s4_fscore,ms3_miou,ms3_fscore,protocol\n");
        break;
    }
    if (f == AVS_REPORT_HTML) {
        html_rows(o, l, n);
        avs_buf_puts(o, "</body></html>\n");
    } else
        for (int i = 0; i < n; i++) {
            if (i == 0 || strcmp(l[i].backbone, l[i - 1].backbone))
                block_head(o, f, l[i].backbone);
            row(o, f, &l[i], protocol);
        }
    if (f == AVS_REPORT_LATEX)
        avs_buf_puts(o, "\\bottomrule\n\\end{tabular}\n");
    if (n == 0 && f != AVS_REPORT_CSV)
        avs_buf_puts(o, f == AVS_REPORT_HTML ? "" : "\n(no recorded rows with switches)\n");
}

int avs_report_ablation(sqlite3 *db, enum avs_report_format f, const char *split,
                        const char *protocol, const char *out, struct avs_err *err)
{
    struct line *lines = NULL;
    int n = 0, rc = -1;
    struct avs_buf o = {0};
    protocol = protocol ? protocol : "official";
    if (load_lines(db, split, protocol, &lines, &n, err))
        goto done;
    if (n > 1)
        qsort(lines, (size_t)n, sizeof *lines, cmp_line);
    render(&o, f, lines, n, split, protocol);
    if (!strcmp(out, "-")) {
        fwrite(o.p, 1, o.len, stdout);
        rc = 0;
    } else {
        rc = avs_fs_write_atomic(out, o.p, o.len, err);
    }
done:
    for (int i = 0; i < n; i++)
        free(lines[i].backbone);
    free(lines);
    avs_buf_free(&o);
    return rc;
}

int avs_report_ablation_section(struct avs_buf *o, sqlite3 *db, const char *split,
                                const char *protocol, struct avs_err *err)
{
    struct line *lines = NULL;
    int n = 0;
    protocol = protocol ? protocol : "official";
    if (load_lines(db, split, protocol, &lines, &n, err))
        return -1;
    if (n > 1)
        qsort(lines, (size_t)n, sizeof *lines, cmp_line);
    if (n) {
        avs_buf_puts(o, "<h2 id=ablation>Ablation</h2>\n");
        html_table_head(o, protocol);
        html_rows(o, lines, n);
    }
    for (int i = 0; i < n; i++)
        free(lines[i].backbone);
    free(lines);
    return n;
}
