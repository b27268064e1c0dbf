/* report/avss.c: the AVSS part of the leaderboard page (docs/avss.md "The metrics row and its
 * JSON"): one ranking per AVSS protocol with the official mIoU/F, the labelled variants and
 * the padded-frame counts; the per-class IoU/F table over all classes (names from each row's
 * details.classes); a class x method heat map of IoU (HTML table cells coloured on a fixed
 * scale, the number in every cell, a title per cell, a legend).
 *
 * details (written by avs-eval --semantic):
 *   { "protocol": "avss-official", "variants": {"no-bg": {"miou", "fscore"}, ...},
 *     "classes": [{"idx", "name", "iou", "fscore", "frames"}, ...],
 *     "padded_given", "padded_assumed", "unknown_pixels", "frames", ... }
 * A row whose details lack a part shows dashes there; the page's Problems list says why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/board.h"

#define MAX_CLASS_IDX 255 /* classes.idx < 255 (schema) */

static const char *VARIANTS[] = {"no-bg", "official-no-bg", "present", "pooled"};
#define N_VARIANTS 4

static void esc(struct avs_buf *o, const char *s) { avs_report_esc(o, s); }

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Why details.classes cannot be used (static text), or NULL. */
static const char *classes_problem(const cJSON *details, int *bad_item)
{
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(details, "classes"), *c;
    if (!cJSON_IsArray(cl))
        return "its details have no \"classes\" array";
    int i = 0;
    cJSON_ArrayForEach(c, cl) {
        double idx = num(c, "idx");
        if (idx < 0 || idx >= MAX_CLASS_IDX || idx != (int)idx || num(c, "iou") < 0) {
            *bad_item = i;
            return "an entry of details.classes lacks a numeric idx (0..254) or iou";
        }
        i++;
    }
    return NULL;
}

char *avs_report_avss_check(const cJSON *details)
{
    int bad = -1;
    const char *why = classes_problem(details, &bad);
    if (why && bad >= 0)
        return avs_sprintf("details.classes[%d]: %s", bad, why);
    if (why)
        return avs_strdup(why);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(details, "variants")))
        return avs_strdup("its details have no \"variants\" object");
    return NULL;
}

static int classes_ok(const struct avs_report_result *r)
{
    int bad = -1;
    return r->details && !classes_problem(r->details, &bad);
}

static double variant(const struct avs_report_result *r, const char *name, const char *key)
{
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(r->details, "variants");
    return num(cJSON_GetObjectItemCaseSensitive(vs, name), key);
}

static void count_cell(struct avs_buf *o, const struct avs_report_result *r, const char *key)
{
    double v = num(r->details, key);
    if (v < 0)
        avs_buf_puts(o, "<td class=n data-v=\"-1\">&ndash;</td>");
    else
        avs_buf_printf(o, "<td class=n>%.0f</td>", v);
}

/* ---- the AVSS leaderboard ---- */

static void avss_head(struct avs_buf *o, int k)
{
    avs_buf_printf(o, "<div class=wide><table class=\"sortable board avss\" id=avss-board-%d>"
                      "<thead><tr><th>#</th><th>Method</th><th>Split</th><th>Protocol</th>"
                      "<th title=\"official: mean over all 71 classes\">mIoU</th><th>F</th>", k);
    for (int v = 0; v < N_VARIANTS; v++) {
        const char *mark = v == 1 ? "<sup>&dagger;</sup>" : "";
        avs_buf_printf(o, "<th>%s%s mIoU</th><th>%s%s F</th>", VARIANTS[v], mark, VARIANTS[v],
                       mark);
    }
    avs_buf_puts(o, "<th>Padded given</th><th>Padded assumed</th><th>Unknown label px</th>"
                    "<th>Frames</th></tr></thead><tbody>\n");
}

static void avss_row(struct avs_buf *o, const struct avs_report_result *r, int rank,
                     double best_m, double best_f)
{
    avs_report_rank_method(o, r, rank);
    avs_buf_puts(o, "</td><td>");
    esc(o, r->split ? r->split : "all");
    avs_buf_puts(o, "</td><td class=proto>");
    esc(o, r->protocol);
    avs_buf_puts(o, "</td>");
    avs_report_num_cell(o, r->miou, r->miou == best_m);
    avs_report_num_cell(o, r->fscore, r->fscore == best_f);
    for (int v = 0; v < N_VARIANTS; v++) {
        avs_report_num_cell(o, variant(r, VARIANTS[v], "miou"), 0);
        avs_report_num_cell(o, variant(r, VARIANTS[v], "fscore"), 0);
    }
    count_cell(o, r, "padded_given");
    count_cell(o, r, "padded_assumed");
    count_cell(o, r, "unknown_pixels");
    avs_buf_printf(o, "<td class=n>%d</td></tr>\n", r->frames);
}

static void avss_table(struct avs_buf *o, const struct avs_report_board *b,
                       const struct avs_report_group *g, int k)
{
    avs_buf_puts(o, "<h3>");
    avs_report_group_title(o, g);
    avs_buf_printf(o, "</h3>\n<p class=note>%s</p>\n", avs_report_protocol_short(g->protocol));
    avss_head(o, k);
    double best_m = -1, best_f = -1;
    for (int i = 0; i < g->n; i++) {
        const struct avs_report_result *r = &b->r[g->idx[i]];
        best_m = r->miou > best_m ? r->miou : best_m;
        best_f = r->fscore > best_f ? r->fscore : best_f;
    }
    for (int i = 0; i < g->n; i++)
        avss_row(o, &b->r[g->idx[i]], i + 1, best_m, best_f);
    avs_buf_puts(o, "</tbody></table></div>\n");
}

static const char *VARIANT_NOTE =
    "<p class=note>All numbers in percent, each under its row's protocol. <b>Official</b>: the "
    "mean over all 71 classes (background included, absent classes count 0), ranked. Variants "
    "(labelled, not ranked): <i>no-bg</i> = mean over classes 1..70; "
    "<i>official-no-bg</i><sup>&dagger;</sup> = the number the official code prints as "
    "&ldquo;without background&rdquo; (<code>miou_pc[:-1]</code>), which drops class 70 instead "
    "of the background (AVSBench issue #23), so it is not a no-background number; "
    "<i>present</i> = mean over classes that occur (frame count &gt; 0); <i>pooled</i> = per "
    "class &Sigma; inter / &Sigma; union over all frames, mean over classes with a non-empty "
    "union (as CAVP). <b>Padded</b>: v1s/v1m videos count 10 frames officially, 5 of them "
    "black padding; <i>given</i> = padded frames whose predictions were supplied, "
    "<i>assumed</i> = taken as all background because none were.</p>\n";

/* ---- per class and heat map: the columns ---- */

struct cols {
    const struct avs_report_result *r[AVS_REPORT_COLUMNS_MAX];
    int n;
};

/* AVSS rows with usable classes, in ranking order (group by group), at most b->columns
 * (avs_report_leaderboard has clamped it to 1..AVS_REPORT_COLUMNS_MAX). */
static void pick_cols(const struct avs_report_board *b, struct cols *c)
{
    int most = b->columns;
    AVS_ASSERT(most >= 1 && most <= AVS_REPORT_COLUMNS_MAX);
    c->n = 0;
    for (int g = 0; g < b->n_groups; g++) {
        const struct avs_report_group *gr = &b->groups[g];
        for (int i = 0; i < gr->n && c->n < most; i++) {
            const struct avs_report_result *r = &b->r[gr->idx[i]];
            if (avs_report_is_avss(r) && classes_ok(r))
                c->r[c->n++] = r;
        }
    }
}

static const cJSON *class_entry(const struct avs_report_result *r, int idx)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r->details, "classes"))
        if ((int)num(c, "idx") == idx)
            return c;
    return NULL;
}

/* The class name of idx from the first column that has it (NULL: no column has idx). */
static const char *class_name(const struct cols *c, int idx)
{
    for (int i = 0; i < c->n; i++) {
        const cJSON *e = class_entry(c->r[i], idx);
        if (e) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
            return name ? name : "";
        }
    }
    return NULL;
}

static void col_header(struct avs_buf *o, const struct avs_report_result *r, const char *cls,
                       const char *suffix)
{
    avs_buf_printf(o, "<th class=\"%s\" title=\"", cls);
    esc(o, r->label);
    avs_buf_puts(o, "\">");
    esc(o, r->method);
    avs_buf_puts(o, " <span class=note>(");
    esc(o, r->protocol);
    avs_buf_printf(o, ")</span>%s</th>", suffix);
}

static void class_label_cells(struct avs_buf *o, int idx, const char *name)
{
    avs_buf_printf(o, "<tr><td class=n>%d</td><th scope=row>", idx);
    esc(o, name);
    avs_buf_puts(o, "</th>");
}

/* ---- per-class table ---- */

static void per_class_table(struct avs_buf *o, const struct cols *c)
{
    avs_buf_puts(o, "<h3 id=avss-classes>Per class (AVSS)</h3>\n<p class=note>IoU and F of "
                    "every class in percent, as the official per-class numbers (sums over the "
                    "frames where the class is predicted or labelled, divided by that count; "
                    "a class in no frame scores 0); the frame count is in each IoU cell's "
                    "title. Class names from each row's details.</p>\n<div class=wide><table "
                    "class=sortable id=avss-per-class><thead><tr><th>Idx</th><th>Class</th>");
    for (int i = 0; i < c->n; i++) {
        col_header(o, c->r[i], "", " IoU");
        avs_buf_puts(o, "<th>F</th>");
    }
    avs_buf_puts(o, "</tr></thead><tbody>\n");
    for (int idx = 0; idx < MAX_CLASS_IDX; idx++) {
        const char *name = class_name(c, idx);
        if (!name)
            continue;
        class_label_cells(o, idx, name);
        for (int i = 0; i < c->n; i++) {
            const cJSON *e = class_entry(c->r[i], idx);
            double iou = e ? num(e, "iou") : -1, f = e ? num(e, "fscore") : -1;
            if (iou < 0)
                avs_buf_puts(o, "<td class=n data-v=\"-1\">&ndash;</td>");
            else
                avs_buf_printf(o, "<td class=n data-v=\"%.6f\" title=\"frames: %.0f\">%.2f</td>",
                               iou, num(e, "frames") < 0 ? 0 : num(e, "frames"), 100 * iou);
            avs_report_num_cell(o, f, 0);
        }
        avs_buf_puts(o, "</tr>\n");
    }
    avs_buf_puts(o, "</tbody></table></div>\n");
}

/* ---- heat map ---- */

/* YlGnBu-like sequential scale, 0 -> light, 1 -> dark blue. */
static void heat_colour(double v, char out[8])
{
    static const unsigned char STOPS[5][3] = {
        {255, 255, 217}, {199, 233, 180}, {65, 182, 196}, {34, 94, 168}, {8, 29, 88}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double x = v * 4;
    int k = x >= 4 ? 3 : (int)x;
    double t = x - k;
    int rgb[3];
    for (int ch = 0; ch < 3; ch++)
        rgb[ch] = (int)(STOPS[k][ch] + t * (STOPS[k + 1][ch] - STOPS[k][ch]) + 0.5);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static void heat_legend(struct avs_buf *o)
{
    avs_buf_puts(o, "<div class=scale role=list aria-label=\"colour scale: IoU in percent\">"
                    "<span role=listitem style=\"width:auto;padding-right:8px\">IoU %</span>");
    for (int t = 0; t <= 10; t++) {
        char col[8];
        heat_colour(t / 10.0, col);
        avs_buf_printf(o, "<span role=listitem style=\"background:%s;color:%s\">%d</span>", col,
                       t >= 6 ? "#fff" : "#1d2330", 10 * t);
    }
    avs_buf_puts(o, "<span role=listitem class=absent style=\"background:#eef0f4;color:#8a93a5;"
                    "width:auto;padding:2px 8px;margin-left:12px\">&middot; absent (in no "
                    "frame; counts 0)</span></div>\n");
}

static void heat_cell(struct avs_buf *o, const struct avs_report_result *r, int idx,
                      const char *name)
{
    const cJSON *e = class_entry(r, idx);
    double iou = e ? num(e, "iou") : -1, frames = e ? num(e, "frames") : -1;
    avs_buf_puts(o, "<td class=\"h");
    if (!e || iou < 0 || frames == 0) {
        avs_buf_puts(o, " absent\" title=\"");
        esc(o, name);
        avs_buf_puts(o, " / ");
        esc(o, r->label);
        avs_buf_puts(o, e ? ": absent (no frame has it in label or prediction; counts 0)\">"
                          "&middot;</td>" : ": not in this row's details\">&ndash;</td>");
        return;
    }
    char col[8];
    heat_colour(iou, col);
    avs_buf_printf(o, "\" style=\"background:%s;color:%s\" title=\"", col,
                   iou >= 0.6 ? "#fff" : "#1d2330");
    esc(o, name);
    avs_buf_puts(o, " / ");
    esc(o, r->label);
    avs_buf_printf(o, ": IoU %.2f%%, %.0f frames\">%.1f</td>", 100 * iou, frames, 100 * iou);
}

static void heat_map(struct avs_buf *o, const struct cols *c)
{
    avs_buf_puts(o, "<h3 id=avss-heat>Class &times; method heat map (AVSS IoU)</h3>\n<p "
                    "class=note>Each cell: the class's IoU in percent for that result, coloured "
                    "on the scale below (the number is in the cell; hover for class, method, "
                    "protocol and frame count). Column headers name each result's protocol.</p>\n");
    heat_legend(o);
    avs_buf_puts(o, "<div class=wide><table class=heat id=avss-heatmap><caption class=note>"
                    "rows: classes by index; columns: results</caption><thead><tr><th>Idx</th>"
                    "<th>Class</th>");
    for (int i = 0; i < c->n; i++)
        col_header(o, c->r[i], "m", "");
    avs_buf_puts(o, "</tr></thead><tbody>\n");
    for (int idx = 0; idx < MAX_CLASS_IDX; idx++) {
        const char *name = class_name(c, idx);
        if (!name)
            continue;
        class_label_cells(o, idx, name);
        for (int i = 0; i < c->n; i++)
            heat_cell(o, c->r[i], idx, name);
        avs_buf_puts(o, "</tr>\n");
    }
    avs_buf_puts(o, "</tbody></table></div>\n");
}

int avs_report_avss_section(struct avs_buf *o, const struct avs_report_board *b)
{
    int n = 0, k = 0;
    for (int i = 0; i < b->n; i++)
        n += avs_report_is_avss(&b->r[i]);
    if (!n)
        return 0;
    avs_buf_puts(o, "<h2 id=avss>AVSS leaderboard (AVSBench-semantic)</h2>\n<p class=note>One "
                    "ranking per AVSS protocol; rows of different protocols are never ranked "
                    "against each other (see <a href=\"#protocols\">How these numbers were "
                    "computed</a>).</p>\n");
    avs_buf_puts(o, VARIANT_NOTE);
    for (int g = 0; g < b->n_groups; g++) {
        const struct avs_report_group *gr = &b->groups[g];
        if (avs_report_is_avss(&b->r[gr->idx[0]]))
            avss_table(o, b, gr, ++k);
    }
    struct cols c;
    pick_cols(b, &c);
    if (c.n == 0) {
        avs_buf_puts(o, "<p>No AVSS row has usable per-class numbers (see Problems).</p>\n");
        return n;
    }
    per_class_table(o, &c);
    heat_map(o, &c);
    return n;
}
