/* report/leaderboard.c: the self-contained HTML leaderboard (avs-report leaderboard).
 *
 * Sections: leaderboard (sortable), per-class table and bar chart, dataset summary, metric
 * definitions and grouping, qualitative gallery (best and worst videos of each result).
 * Data: metrics rows (details JSON written by avs-eval: per_class, per_video) and videos.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "report/board.h"

#define GALLERY_N 3         /* best and worst videos per result */
#define THUMB 96

/* The S4/MS3 (non-AVSS) rows, best mIoU first: the per-class table and the gallery. */
struct board {
    struct avs_report_result **r;
    int n;
    int columns; /* results side by side in the per-class table, chart and gallery */
};

void avs_report_esc(struct avs_buf *o, const char *s) { avs_buf_esc(o, AVS_REPORT_HTML, s); }

static void esc(struct avs_buf *o, const char *s) { avs_report_esc(o, s); }

static const char *CSS =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
    "max-width:1200px;padding:0 16px;color:#1d2330;background:#fff}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:2px solid #e3e7ef;"
    "padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}.meta{color:#5b6475;margin:0 0 12px}"
    "nav a{margin-right:14px;color:#2456c9;text-decoration:none}"
    "table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}"
    "th,td{border-bottom:1px solid #e3e7ef;padding:4px 10px;text-align:left;vertical-align:top}"
    "th{background:#f3f5fa;font-weight:600}table.sortable thead th{cursor:pointer;user-select:none}"
    "#leaderboard thead th{white-space:nowrap}table.sortable thead th:after{content:' \\2195';color:#9aa3b5}td.n{text-align:right}"
    "tr:hover td{background:#f8faff}.best{font-weight:700;color:#0b7a3a}"
    ".note{color:#5b6475;font-size:13px}.gal{display:flex;flex-wrap:wrap;gap:14px}"
    ".gal figure{margin:0}.gal figcaption{font-size:12px;color:#3b4456;max-width:300px}"
    "td.src{word-break:break-all;max-width:260px;font-size:12px}td.t{white-space:nowrap}"
    "code{background:#f3f5fa;padding:1px 4px;border-radius:3px}"
    ".legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;"
    "height:10px;margin-right:4px;vertical-align:middle}"
    ".problems{border:1px solid #e0a800;background:#fff8e1;padding:4px 14px;margin:12px 0}"
    ".problems h2{margin-top:8px;border:0}a.warn{color:#b35c00;text-decoration:none}"
    ".wide{overflow-x:auto}td.proto{white-space:nowrap;font-family:monospace}"
    "table.avss th,table.avss td{padding:4px 6px}"
    "table.heat td.h{text-align:center;vertical-align:middle;padding:2px 4px;min-width:44px;font-size:12px;"
    "border:1px solid #fff}table.heat td.absent{background:#eef0f4;color:#8a93a5}"
    "table.heat th.m{writing-mode:vertical-rl;transform:rotate(180deg);max-height:220px;"
    "font-size:12px;font-weight:600;white-space:nowrap}"
    ".scale{display:flex;align-items:center;gap:0;margin:6px 0 12px}.scale span{display:inline-block;"
    "width:42px;padding:2px 0;text-align:center;font-size:11px}";

static const char *SORT_JS =
    "document.querySelectorAll('table.sortable thead th').forEach(function(th){"
    "th.addEventListener('click',function(){var t=th.closest('table'),b=t.tBodies[0],"
    "i=Array.prototype.indexOf.call(th.parentNode.children,th),asc=th.dataset.dir!=='asc';"
    "th.dataset.dir=asc?'asc':'desc';var rows=Array.prototype.slice.call(b.rows);"
    "rows.sort(function(x,y){var a=x.cells[i].getAttribute('data-v')||x.cells[i].textContent,"
    "c=y.cells[i].getAttribute('data-v')||y.cells[i].textContent,na=parseFloat(a),nc=parseFloat(c);"
    "var r=(!isNaN(na)&&!isNaN(nc))?na-nc:a.localeCompare(c);return asc?r:-r;});"
    "rows.forEach(function(r){b.appendChild(r);});});});";

static const char *PALETTE[] = {"#2456c9", "#e07a1f", "#1f9d55", "#c0392b", "#8e44ad",
                                "#16a2b8", "#b8860b", "#6c757d"};

/* The colour of result i in the chart: the palette, then hues 137.5 degrees apart. */
static const char *colour(int i, char buf[32])
{
    if (i < 8)
        return PALETTE[i];
    snprintf(buf, 32, "hsl(%d,60%%,42%%)", (int)(i * 137.508) % 360);
    return buf;
}

void avs_report_num_cell(struct avs_buf *o, double v, int best)
{
    if (v < 0)
        avs_buf_puts(o, "<td class=n data-v=\"-1\">&ndash;</td>");
    else
        avs_buf_printf(o, "<td class=\"n%s\" data-v=\"%.6f\">%.2f</td>", best ? " best" : "", v,
                       100 * v);
}

void avs_report_rank_method(struct avs_buf *o, const struct avs_report_result *r, int rank)
{
    avs_buf_printf(o, "<tr><td class=n data-v=\"%d\">%d</td><td>", rank, rank);
    esc(o, r->method);
    if (r->problem)
        avs_buf_printf(o, " <a class=warn href=\"#problem-%lld\" title=\"details unusable\">"
                          "&#9888;</a>", (long long)r->id);
}

void avs_report_group_title(struct avs_buf *o, const struct avs_report_group *g)
{
    avs_buf_puts(o, g->subset && !strcmp(g->subset, "s4") ? "S4" :
                    g->subset && !strcmp(g->subset, "ms3") ? "MS3" :
                    g->subset && !strcmp(g->subset, "avss") ? "AVSS" : "");
    if (g->subset && strcmp(g->subset, "s4") && strcmp(g->subset, "ms3") && strcmp(g->subset, "avss"))
        esc(o, g->subset);
    else if (!g->subset)
        avs_buf_puts(o, "subset not recorded");
    avs_buf_puts(o, " &middot; protocol <code>");
    esc(o, g->protocol);
    avs_buf_puts(o, "</code>");
    if (!strcmp(g->protocol, "official")) {
        if (g->group_frames > 0)
            avs_buf_printf(o, " &middot; F groups of %d frames", g->group_frames);
        else
            avs_buf_puts(o, " &middot; F one group per video");
    }
}

static void when_cell(struct avs_buf *o, const char *created)
{
    char when[32] = "";
    snprintf(when, sizeof when, "%.16s", created ? created : "");
    char *tee = strchr(when, 'T');
    if (tee)
        *tee = ' ';
    avs_buf_puts(o, "<td class=t>");
    esc(o, when);
    avs_buf_puts(o, "</td>");
}

static void board_row(struct avs_buf *o, const struct avs_report_result *r, int rank,
                      double best_m, double best_f)
{
    avs_report_rank_method(o, r, rank);
    avs_buf_puts(o, "</td><td>");
    esc(o, r->subset ? r->subset : "?");
    avs_buf_puts(o, "</td><td>");
    esc(o, r->split ? r->split : "all");
    avs_buf_puts(o, "</td><td class=proto>");
    esc(o, r->protocol);
    if (strcmp(r->protocol, "official"))
        avs_buf_puts(o, "</td><td data-v=\"0\">n/a");
    else if (r->group_frames > 0)
        avs_buf_printf(o, "</td><td data-v=\"%d\">%d frames", r->group_frames, r->group_frames);
    else
        avs_buf_puts(o, "</td><td data-v=\"0\">one video");
    avs_buf_puts(o, "</td>");
    avs_report_num_cell(o, r->miou, r->miou == best_m);
    avs_report_num_cell(o, r->fscore, r->fscore == best_f);
    avs_report_num_cell(o, r->dataset_iou, 0);
    avs_buf_printf(o, "<td class=n>%d</td>", r->frames);
    when_cell(o, r->created);
    avs_buf_puts(o, "<td class=\"note src\">");
    esc(o, r->source);
    avs_buf_puts(o, "</td></tr>\n");
}

/* One ranking: the rows of one subset + protocol (+ F grouping for official). */
static void board_table(struct avs_buf *o, const struct avs_report_board *b,
                        const struct avs_report_group *g, int k)
{
    avs_buf_puts(o, "<h3>");
    avs_report_group_title(o, g);
    avs_buf_printf(o, "</h3>\n<p class=note>%s</p>\n<table class=\"sortable board\" "
                      "id=board-%d><thead><tr><th>#</th><th>Method</th><th>Subset</th>"
                      "<th>Split</th><th>Protocol</th><th>F grouping</th><th>mIoU</th>"
                      "<th>F-score</th><th>Dataset IoU</th><th>Frames</th><th>Recorded</th>"
                      "<th>Source</th></tr></thead><tbody>\n",
                   avs_report_protocol_short(g->protocol), k);
    double best_m = -1, best_f = -1;
    for (int i = 0; i < g->n; i++) {
        const struct avs_report_result *r = &b->r[g->idx[i]];
        best_m = r->miou > best_m ? r->miou : best_m;
        best_f = r->fscore > best_f ? r->fscore : best_f;
    }
    for (int i = 0; i < g->n; i++)
        board_row(o, &b->r[g->idx[i]], i + 1, best_m, best_f);
    avs_buf_puts(o, "</tbody></table>\n");
}

static void section_board(struct avs_buf *o, const struct avs_report_board *b)
{
    avs_buf_puts(o, "<h2 id=board>Leaderboard</h2>\n<p class=note>One ranking per subset and "
                    "protocol (and F grouping for <i>official</i>): rows of different protocols "
                    "are never ranked against each other (see <a href=\"#protocols\">How these "
                    "numbers were computed</a>). Click a column to sort. mIoU, F and dataset IoU "
                    "in percent. Rows are recorded results (<code>avs-eval --record NAME</code>)."
                    "</p>\n<div id=leaderboard>\n");
    int avss = 0;
    for (int g = 0; g < b->n_groups; g++) {
        if (avs_report_is_avss(&b->r[b->groups[g].idx[0]])) {
            avss += b->groups[g].n;
            continue;
        }
        board_table(o, b, &b->groups[g], g + 1);
    }
    if (b->n == 0)
        avs_buf_puts(o, "<p>No results recorded yet.</p>\n");
    else if (avss)
        avs_buf_printf(o, "<p>%d AVSS result%s: see the <a href=\"#avss\">AVSS leaderboard</a>."
                          "</p>\n", avss, avss == 1 ? "" : "s");
    avs_buf_puts(o, "</div>\n");
}

static void section_problems(struct avs_buf *o, const struct avs_report_board *b)
{
    if (!b->n_problems)
        return;
    avs_buf_printf(o, "<div class=problems id=problems><h2>Problems</h2>\n<p>%d recorded "
                      "row%s could not be shown in full; the rest of the page is complete."
                      "</p>\n<ul>\n", b->n_problems, b->n_problems == 1 ? "" : "s");
    for (int i = 0; i < b->n; i++) {
        if (!b->r[i].problem)
            continue;
        avs_buf_printf(o, "<li id=\"problem-%lld\">", (long long)b->r[i].id);
        esc(o, b->r[i].problem);
        avs_buf_puts(o, "</li>\n");
    }
    avs_buf_puts(o, "</ul></div>\n");
}

/* Class names over the first `n` results' details.per_class (sorted, unique). */
static int class_names(const struct board *b, int n, char ***out)
{
    char **names = NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        cJSON *pc = cJSON_GetObjectItemCaseSensitive(b->r[i]->details, "per_class"), *c;
        cJSON_ArrayForEach(c, pc) {
            int seen = 0;
            for (int j = 0; j < k && !seen; j++)
                seen = !strcmp(names[j], c->string);
            if (!seen) {
                names = avs_realloc(names, sizeof *names * (size_t)(k + 1));
                names[k++] = c->string;
            }
        }
    }
    for (int i = 1; i < k; i++) /* insertion sort: a few dozen classes */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    *out = names;
    return k;
}

static double class_value(const struct avs_report_result *r, const char *cls, const char *key)
{
    cJSON *pc = cJSON_GetObjectItemCaseSensitive(r->details, "per_class");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pc, cls), key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void chart(struct avs_buf *o, const struct board *b, int n, char **names, int k)
{
    const int label_w = 170, bar_h = 9, width = 760, plot = width - label_w - 50;
    char cb[32];
    int group_h = n * bar_h + 10, height = k * group_h + 30;
    avs_buf_printf(o, "<svg role=img aria-label=\"per-class mIoU\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\" style=\"font:11px sans-serif\">\n", width, height,
                   width, height);
    for (int t = 0; t <= 10; t += 2) {
        int x = label_w + plot * t / 10;
        avs_buf_printf(o, "<line x1=\"%d\" y1=\"0\" x2=\"%d\" y2=\"%d\" stroke=\"#e3e7ef\"/>"
                          "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#5b6475\">%d</text>\n",
                       x, x, height - 20, x, height - 6, t * 10);
    }
    for (int c = 0; c < k; c++) {
        int y0 = c * group_h + 4;
        avs_buf_printf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#1d2330\">",
                       label_w - 6, y0 + group_h / 2);
        esc(o, names[c]);
        avs_buf_puts(o, "</text>\n");
        for (int i = 0; i < n; i++) {
            double v = class_value(b->r[i], names[c], "miou");
            if (v < 0)
                continue;
            avs_buf_printf(o, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
                              "<title>", label_w, y0 + i * bar_h, plot * v, bar_h - 1,
                           colour(i, cb));
            esc(o, b->r[i]->label);
            avs_buf_printf(o, ": %.2f</title></rect>\n", 100 * v);
        }
    }
    avs_buf_puts(o, "</svg>\n<p class=legend>");
    for (int i = 0; i < n; i++) {
        avs_buf_printf(o, "<span><i class=sw style=\"background:%s\"></i>", colour(i, cb));
        esc(o, b->r[i]->label);
        avs_buf_puts(o, "</span>");
    }
    avs_buf_puts(o, "</p>\n");
}

static void section_classes(struct avs_buf *o, const struct board *b)
{
    int n = b->n < b->columns ? b->n : b->columns;
    char **names = NULL;
    int k = class_names(b, n, &names);
    avs_buf_printf(o, "<h2 id=classes>Per class (S4/MS3)</h2>\n<p class=note>Our addition "
                      "(not in AVSBench): mIoU and F over the frames of each category's videos, "
                      "in percent, for the top %d S4/MS3 results by mIoU. Each column is under "
                      "its row's protocol (in its header; F with that protocol's grouping "
                      "within the class), so columns of different protocols are not "
                      "comparable. AVSS per-class numbers are in the AVSS section.</p>\n", n);
    if (k == 0) {
        avs_buf_puts(o, "<p>No per-class numbers recorded.</p>\n");
        free(names);
        return;
    }
    avs_buf_puts(o, "<table class=sortable id=per-class><thead><tr><th>Category</th>");
    for (int i = 0; i < n; i++) {
        avs_buf_puts(o, "<th>");
        esc(o, b->r[i]->label);
        avs_buf_puts(o, " mIoU</th><th>F</th>");
    }
    avs_buf_puts(o, "</tr></thead><tbody>\n");
    for (int c = 0; c < k; c++) {
        avs_buf_puts(o, "<tr><td>");
        esc(o, names[c]);
        avs_buf_puts(o, "</td>");
        for (int i = 0; i < n; i++) {
            avs_report_num_cell(o, class_value(b->r[i], names[c], "miou"), 0);
            avs_report_num_cell(o, class_value(b->r[i], names[c], "fscore"), 0);
        }
        avs_buf_puts(o, "</tr>\n");
    }
    avs_buf_puts(o, "</tbody></table>\n<h3>Per-class mIoU (%)</h3>\n");
    chart(o, b, n, names, k);
    free(names);
}

static int section_dataset(struct avs_buf *o, sqlite3 *db, struct avs_err *err)
{
    static const char *SQL =
        "SELECT coalesce(category, '(none)'), coalesce(split, '(none)'), subset, count(*), "
        "sum(n_seconds), sum((SELECT count(*) FROM masks m WHERE m.video_id = v.id)) "
        "FROM videos v WHERE status = 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    sqlite3_stmt *st;
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    avs_buf_puts(o, "<h2 id=data>Dataset</h2>\n<p class=note>Videos ingested into this store "
                    "(status ok), per category and split; frames = seconds (one frame each), "
                    "masks = annotated frames.</p>\n<table class=sortable id=dataset><thead><tr>"
                    "<th>Category</th><th>Split</th><th>Subset</th><th>Videos</th><th>Frames</th>"
                    "<th>Masks</th></tr></thead><tbody>\n");
    int rows = 0;
    int64_t tv = 0, tf = 0, tm = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        avs_buf_puts(o, "<tr><td>");
        esc(o, (const char *)sqlite3_column_text(st, 0));
        avs_buf_puts(o, "</td><td>");
        esc(o, (const char *)sqlite3_column_text(st, 1));
        avs_buf_puts(o, "</td><td>");
        esc(o, (const char *)sqlite3_column_text(st, 2));
        int64_t v = sqlite3_column_int64(st, 3), f = sqlite3_column_int64(st, 4),
                m = sqlite3_column_int64(st, 5);
        avs_buf_printf(o, "</td><td class=n>%lld</td><td class=n>%lld</td><td class=n>%lld</td>"
                          "</tr>\n", (long long)v, (long long)f, (long long)m);
        tv += v, tf += f, tm += m;
        rows++;
    }
    sqlite3_finalize(st);
    avs_buf_printf(o, "</tbody><tfoot><tr><th colspan=3>Total</th><th>%lld</th><th>%lld</th>"
                      "<th>%lld</th></tr></tfoot></table>\n", (long long)tv, (long long)tf,
                   (long long)tm);
    if (rows == 0)
        avs_buf_puts(o, "<p>No videos in this store (results may come from folder-mode "
                        "evaluation).</p>\n");
    return 0;
}

static void section_definitions(struct avs_buf *o)
{
    avs_buf_puts(o,
        "<h2 id=defs>Metric definitions</h2>\n<ul>\n"
        "<li>Per frame, <i>p</i> = sigmoid(logit) in float32, or <i>v</i>/255 for an 8-bit "
        "prediction PNG; GT foreground = value &ge; 128.</li>\n"
        "<li><b>mIoU</b> (AVSBench <code>mask_iou</code>): P = p &gt; 0.5; IoU = |P&and;G| / "
        "(|P&or;G| + 1e-7); a frame with empty GT scores the fraction of pixels predicted "
        "background. mIoU = mean over all frames.</li>\n"
        "<li><b>F-score</b> (AVSBench <code>Eval_Fmeasure</code>, &beta;&sup2; = 0.3): for 255 "
        "thresholds t<sub>i</sub> = linspace(0, 1&minus;1e-10, 255), precision and recall of "
        "p &ge; t<sub>i</sub> per frame with non-empty GT; F<sub>i</sub> = 1.3&middot;P&middot;R / "
        "(0.3&middot;P + R). Frames are <b>grouped</b>: a group's score is the maximum over "
        "thresholds of its mean F curve (0 if all its GTs are empty), and F is the mean over "
        "groups. The official test.sh groups 20 frames (batch of 4 videos &times; 5); "
        "avs-eval's default is one group per video. The grouping of each result is in the "
        "leaderboard: numbers with different groupings are not comparable.</li>\n"
        "<li><b>Dataset IoU</b> (secondary, used by some papers): &Sigma;|P&and;G| / "
        "&Sigma;|P&or;G| over all frames.</li>\n"
        "<li><b>Per class</b>: the same numbers over one category's frames (our addition).</li>\n"
        "</ul>\n");
}

static int cmp_video_miou(const void *a, const void *b)
{
    double x = cJSON_GetObjectItem(*(cJSON *const *)a, "miou")->valuedouble;
    double y = cJSON_GetObjectItem(*(cJSON *const *)b, "miou")->valuedouble;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A path of the details: as written, else with the bytes avs-eval wrote as %XX (not UTF-8)
 * decoded (core/names.h avs_name_untext); NULL (drawn gray) unless a regular file (never a
 * FIFO or device a hostile row names). */
static char *resolve(const char *root, const char *p)
{
    if (!p)
        return NULL;
    char *path = p[0] == '/' ? avs_strdup(p) : avs_fs_join(root, p);
    if (!avs_fs_is_file(path) && strchr(path, '%')) {
        char *raw = avs_name_untext(path);
        free(path), path = raw;
    }
    if (!avs_fs_is_file(path))
        avs_freep(&path);
    return path;
}

static void figure(struct avs_buf *o, const char *root, cJSON *v, const char *tag)
{
    char *img = resolve(root, cJSON_GetStringValue(cJSON_GetObjectItem(v, "image_path")));
    char *gt = resolve(root, cJSON_GetStringValue(cJSON_GetObjectItem(v, "gt_path")));
    char *pr = resolve(root, cJSON_GetStringValue(cJSON_GetObjectItem(v, "pred_path")));
    uint8_t *png = NULL;
    size_t len = 0;
    struct avs_err err;
    avs_buf_puts(o, "<figure>");
    if (avs_report_thumbnail(img, gt, pr, THUMB, &png, &len, &err) == 0) {
        avs_buf_puts(o, "<img alt=\"frame, ground truth, prediction\" src=\"data:image/png;base64,");
        avs_buf_base64(o, png, len);
        avs_buf_puts(o, "\">");
    }
    avs_buf_printf(o, "<figcaption>%s: <b>", tag);
    esc(o, cJSON_GetStringValue(cJSON_GetObjectItem(v, "video")));
    avs_buf_puts(o, "</b> (");
    esc(o, cJSON_GetStringValue(cJSON_GetObjectItem(v, "category")));
    avs_buf_printf(o, ") mIoU %.1f, F %.3f</figcaption></figure>\n",
                   100 * cJSON_GetObjectItem(v, "miou")->valuedouble,
                   cJSON_GetObjectItem(v, "fscore")->valuedouble);
    free(png), free(img), free(gt), free(pr);
}

static void section_gallery(struct avs_buf *o, const struct board *b, const char *root)
{
    avs_buf_puts(o, "<h2 id=gallery>Qualitative examples</h2>\n<p class=note>Best and worst "
                    "videos of each result by mIoU, first annotated frame: frame | ground truth "
                    "(green) | prediction p &gt; 0.5 (red). Gray where the frame is not in the "
                    "store.</p>\n");
    for (int i = 0; i < b->n && i < b->columns; i++) {
        cJSON *pv = cJSON_GetObjectItem(b->r[i]->details, "per_video");
        int n = cJSON_GetArraySize(pv);
        if (n == 0)
            continue;
        cJSON **v = avs_malloc(sizeof *v * (size_t)n);
        int k = 0;
        cJSON *it;
        cJSON_ArrayForEach(it, pv) {
            if (cJSON_IsNumber(cJSON_GetObjectItem(it, "miou")) &&
                cJSON_IsNumber(cJSON_GetObjectItem(it, "fscore")))
                v[k++] = it;
        }
        if (k > 1)
            qsort(v, (size_t)k, sizeof *v, cmp_video_miou);
        avs_buf_puts(o, "<h3>");
        esc(o, b->r[i]->label);
        avs_buf_puts(o, "</h3>\n<div class=gal>\n");
        for (int j = 0; j < k && j < GALLERY_N; j++)
            figure(o, root, v[j], "best");
        for (int j = k - 1; j >= GALLERY_N && j >= k - GALLERY_N; j--)
            figure(o, root, v[j], "worst");
        avs_buf_puts(o, "</div>\n");
        free(v);
    }
}

static void page_head(struct avs_buf *o, sqlite3 *db, const struct avs_report_board *b)
{
    char when[64];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime_r(&now, &tmv));
    avs_buf_printf(o, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
                      "<meta name=viewport content=\"width=device-width,initial-scale=1\">\n"
                      "<title>AVS leaderboard</title>\n<style>%s</style></head><body>\n"
                      "<h1>AVS leaderboard</h1>\n<p class=meta>Index <code>", CSS);
    esc(o, sqlite3_db_filename(db, "main"));
    avs_buf_printf(o, "</code>, %d recorded results, generated %s by avs-report %s.</p>\n"
                      "<nav><a href=\"#board\">Leaderboard</a>", b->n, when, AVS_VERSION);
    int avss = 0;
    for (int i = 0; i < b->n && !avss; i++)
        avss = avs_report_is_avss(&b->r[i]);
    if (avss)
        avs_buf_puts(o, "<a href=\"#avss\">AVSS</a>");
    avs_buf_puts(o, "<a href=\"#classes\">Per class</a><a href=\"#data\">Dataset</a>"
                    "<a href=\"#ablation\">Ablation</a><a href=\"#defs\">Definitions</a>"
                    "<a href=\"#protocols\">How computed</a><a href=\"#gallery\">Examples</a>"
                    "</nav>\n");
}

/* The C3N paper's Table III: full-model (AF,CC) results by C3IM exponents, one grid per subset
 * that has more than one alpha or beta recorded. */
static int section_exponents(struct avs_buf *o, sqlite3 *db, struct avs_err *err)
{
    static const char *SUB[2][3] = {{"s4", "exponents-s4", "C3IM exponents alpha x beta (Table III), S4"},
                                    {"ms3", "exponents-ms3", "C3IM exponents alpha x beta (Table III), MS3"}};
    for (int i = 0; i < 2; i++) {
        struct avs_report_grid g = {.rows = "alpha", .cols = "beta", .subset = SUB[i][0],
                                    .split = "test", .where = {"switches=AF,CC"}};
        if (avs_report_grid_section(o, db, &g, SUB[i][1], SUB[i][2], err) < 0)
            return -1;
    }
    return 0;
}

/* The C3N paper's Table I, per subset: C3N (AF,CC) by backbone x audio encoder, and C3N against
 * AVSBench's TPAVI baseline by backbone x model (VGGish audio); both at the official exponents,
 * each shown when it has more than one cell. */
static int section_table1(struct avs_buf *o, sqlite3 *db, struct avs_err *err)
{
    static const char *SUB[2][2] = {{"s4", "S4"}, {"ms3", "MS3"}};
    for (int i = 0; i < 2; i++) {
        char id[2][32], title[2][128];
        snprintf(id[0], sizeof id[0], "encoders-%s", SUB[i][0]);
        snprintf(id[1], sizeof id[1], "baseline-%s", SUB[i][0]);
        snprintf(title[0], sizeof title[0], "Backbone x audio encoder (Table I, C3N AF,CC), %s", SUB[i][1]);
        snprintf(title[1], sizeof title[1], "C3N and the TPAVI baseline by backbone (Table I, VGGish), %s",
                 SUB[i][1]);
        struct avs_report_grid g[2] = {
            {.rows = "backbone", .cols = "audio", .subset = SUB[i][0], .split = "test",
             .where = {"switches=AF,CC", "alpha=0.1", "beta=0.1"}},
            {.rows = "backbone", .cols = "model", .subset = SUB[i][0], .split = "test",
             .where = {"audio=vggish", "alpha=0.1", "beta=0.1"}}};
        for (int k = 0; k < 2; k++)
            if (avs_report_grid_section(o, db, &g[k], id[k], title[k], err) < 0)
                return -1;
    }
    return 0;
}

/* The S4/MS3 rows (everything but AVSS), best mIoU first. */
static void binary_rows(const struct avs_report_board *all, struct board *b)
{
    b->r = avs_malloc(sizeof *b->r * (size_t)(all->n ? all->n : 1));
    b->n = 0;
    for (int i = 0; i < all->n; i++)
        if (!avs_report_is_avss(&all->r[i]))
            b->r[b->n++] = &all->r[i];
}

int avs_report_leaderboard(sqlite3 *db, const char *root, int columns, const char *out,
                           struct avs_err *err)
{
    struct avs_report_board all = {0};
    struct board b = {0};
    struct avs_buf o = {0};
    int rc = -1;
    if (avs_report_board_load(db, &all, err))
        goto done;
    binary_rows(&all, &b);
    if (columns <= 0)
        columns = AVS_REPORT_COLUMNS;
    b.columns = all.columns = columns < AVS_REPORT_COLUMNS_MAX ? columns : AVS_REPORT_COLUMNS_MAX;
    page_head(&o, db, &all);
    section_problems(&o, &all);
    section_board(&o, &all);
    avs_report_avss_section(&o, &all);
    section_classes(&o, &b);
    if (section_dataset(&o, db, err))
        goto done;
    if (avs_report_ablation_section(&o, db, "test", "official", err) < 0 ||
        section_exponents(&o, db, err) || section_table1(&o, db, err))
        goto done;
    section_definitions(&o);
    avs_report_protocols_section(&o, &all);
    section_gallery(&o, &b, root);
    avs_buf_printf(&o, "<script>%s</script>\n</body></html>\n", SORT_JS);
    for (int i = 0; i < all.n; i++)
        if (all.r[i].problem)
            avs_log_warn("%s", all.r[i].problem);
    rc = avs_fs_write_atomic(out, o.p, o.len, err) ? -1 : all.n_problems;
done:
    free(b.r);
    avs_report_board_free(&all);
    avs_buf_free(&o);
    return rc;
}
