/* report/grid.c: any two recorded parameters as a table (report/report.h, avs_report_grid):
 *
 *   alpha \ beta | 0.05 | 0.1  | 0.2          rows: the values of one parameter,
 *   0.05         | 61.2 | 60.8 | -            columns: the values of another,
 *   0.1          | 62.0 | 63.1 | 62.4         cell: the metric of the results made with both
 *
 * (the C3N paper's Table III is alpha x beta; switches x backbone and encoder x encoder are
 * others). Parameters come from each metrics row's details, its run's config and the feature
 * set's config (report/params.h). Only rows of one subset and one protocol share a table; a
 * row that lacks either parameter is left out and counted in the caption. A method recorded
 * several times in a cell counts once (its latest row); several methods in a cell are shown
 * as the best, the mean or the latest of them (g->pick), with their count in parentheses.
 * Axis values sort as numbers when they all are, switches in Table II order (by how many are
 * on), anything else alphabetically.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "report/params.h"
#include "report/report.h"

struct sample {
    char *r, *c, *method, *subset;
    double v;    /* the chosen metric */
    int64_t id;
};

struct axis {
    char **v;
    int n;
};

struct cellv {
    int n;       /* methods in the cell */
    double v;    /* best, mean or latest of them */
};

struct grid {
    struct sample *s;
    int n, skipped; /* skipped: rows without one of the two parameters */
    struct axis rows, cols;
    struct cellv *cell; /* [rows.n][cols.n] */
    const char *subset;
};

static int is_number(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return *s && !*end;
}

/* A filter "NAME=VALUE" against a row (numbers compared as numbers: "0.10" matches 0.1). */
static int where_holds(const char *w, const cJSON *d, const cJSON *c, const struct avs_report_row *row)
{
    const char *eq = strchr(w, '=');
    char *name = avs_sprintf("%.*s", (int)(eq - w), w);
    char *val = avs_report_param(name, d, c, row);
    double a, b;
    int ok = val && (!strcmp(val, eq + 1) || (is_number(val, &a) && is_number(eq + 1, &b) && a == b));
    free(name), free(val);
    return ok;
}

static void add_sample(struct grid *g, char *r, char *c, const char *method, const char *subset,
                       double v, int64_t id)
{
    g->s = avs_realloc(g->s, sizeof *g->s * (size_t)(g->n + 1));
    g->s[g->n++] = (struct sample){r, c, avs_strdup(method ? method : "?"),
                                   avs_strdup(subset ? subset : "?"), v, id};
}

static int load(sqlite3 *db, const struct avs_report_grid *o, struct grid *g, struct avs_err *err)
{
    static const char *SQL =
        "SELECT m.id, m.method, m.subset, m.split, m.protocol, m.miou, m.fscore, m.details, "
        "r.config FROM metrics m LEFT JOIN runs r ON r.id = m.run_id WHERE (?1 IS NULL OR "
        "m.split = ?1) AND m.protocol = ?2 AND (?3 IS NULL OR m.subset = ?3) ORDER BY m.id";
    sqlite3_stmt *st;
    if (avs_db_prepare(db, SQL, &st, err))
        return -1;
    sqlite3_bind_text(st, 1, o->split, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, o->protocol ? o->protocol : "official", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, o->subset, -1, SQLITE_STATIC);
    int fscore = o->metric && !strcmp(o->metric, "fscore");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *dt = (const char *)sqlite3_column_text(st, 7);
        const char *cf = (const char *)sqlite3_column_text(st, 8);
        cJSON *d = dt ? cJSON_Parse(dt) : NULL, *c = cf ? cJSON_Parse(cf) : NULL;
        struct avs_report_row row = {(const char *)sqlite3_column_text(st, 1),
                                     (const char *)sqlite3_column_text(st, 2),
                                     (const char *)sqlite3_column_text(st, 3),
                                     (const char *)sqlite3_column_text(st, 4)};
        int keep = 1;
        for (int i = 0; i < AVS_REPORT_GRID_WHERE && o->where[i] && keep; i++)
            keep = where_holds(o->where[i], d, c, &row);
        if (keep) {
            char *r = avs_report_param(o->rows, d, c, &row), *cv = avs_report_param(o->cols, d, c, &row);
            if (r && cv)
                add_sample(g, r, cv, row.method, row.subset,
                           sqlite3_column_double(st, fscore ? 6 : 5), sqlite3_column_int64(st, 0));
            else
                g->skipped++, free(r), free(cv);
        }
        cJSON_Delete(d);
        cJSON_Delete(c);
    }
    sqlite3_finalize(st);
    return 0;
}

/* The table's one subset (o->subset, or the rows' only one unless an axis is the subset). */
static int one_subset(const struct avs_report_grid *o, struct grid *g, struct avs_err *err)
{
    g->subset = o->subset;
    if (o->subset || !strcmp(o->rows, "subset") || !strcmp(o->cols, "subset") || !g->n)
        return 0;
    for (int i = 1; i < g->n; i++)
        if (strcmp(g->s[i].subset, g->s[0].subset))
            return avs_err_set(err, "results of subsets %s and %s have %s and %s recorded: one "
                               "table holds one subset (give --subset %s, or lay out subset as "
                               "--rows or --cols)", g->s[0].subset, g->s[i].subset, o->rows,
                               o->cols, g->s[0].subset);
    g->subset = g->s[0].subset;
    return 0;
}

static const char *sort_name; /* the parameter being sorted (qsort has no context) */

static int sw_key(const char *t)
{
    cJSON *s = cJSON_CreateString(t);
    int b = avs_report_switch_bits(s);
    cJSON_Delete(s);
    return b < 0 ? 99 : ((b & 1) + (b >> 1 & 1) + (b >> 2 & 1)) * 8 + b;
}

static int numeric_axis; /* set per axis before qsort */

static int cmp_value(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    double x, y;
    if (numeric_axis && is_number(a, &x) && is_number(b, &y))
        return (x > y) - (x < y);
    if (!strcmp(sort_name, "switches"))
        return sw_key(a) - sw_key(b);
    return strcmp(a, b);
}

static void axis_build(struct axis *ax, const struct grid *g, int cols, const char *name)
{
    ax->v = NULL, ax->n = 0;
    int all_num = 1;
    for (int i = 0; i < g->n; i++) {
        const char *v = cols ? g->s[i].c : g->s[i].r;
        int found = 0;
        for (int k = 0; k < ax->n && !found; k++)
            found = !strcmp(ax->v[k], v);
        if (!found) {
            double x;
            all_num &= is_number(v, &x);
            ax->v = avs_realloc(ax->v, sizeof *ax->v * (size_t)(ax->n + 1));
            ax->v[ax->n++] = (char *)v; /* borrowed from the samples */
        }
    }
    sort_name = name, numeric_axis = all_num;
    if (ax->n > 1)
        qsort(ax->v, (size_t)ax->n, sizeof *ax->v, cmp_value);
}

static int axis_at(const struct axis *ax, const char *v)
{
    for (int k = 0; k < ax->n; k++)
        if (!strcmp(ax->v[k], v))
            return k;
    return -1;
}

/* Sample i counts when it is its method's latest in its cell. */
static int latest_of_method(const struct grid *g, int i)
{
    for (int j = 0; j < g->n; j++)
        if (j != i && g->s[j].id > g->s[i].id && !strcmp(g->s[j].r, g->s[i].r) &&
            !strcmp(g->s[j].c, g->s[i].c) && !strcmp(g->s[j].method, g->s[i].method))
            return 0;
    return 1;
}

static void cells_fill(struct grid *g, const char *pick)
{
    int nr = g->rows.n, nc = g->cols.n;
    g->cell = avs_calloc((size_t)(nr ? nr : 1) * (size_t)(nc ? nc : 1), sizeof *g->cell);
    int64_t *last = avs_calloc((size_t)(nr ? nr : 1) * (size_t)(nc ? nc : 1), sizeof *last);
    int mean = pick && !strcmp(pick, "mean"), latest = pick && !strcmp(pick, "latest");
    for (int i = 0; i < g->n; i++) {
        if (!latest_of_method(g, i))
            continue;
        int k = axis_at(&g->rows, g->s[i].r) * nc + axis_at(&g->cols, g->s[i].c);
        struct cellv *c = &g->cell[k];
        double v = g->s[i].v;
        if (mean)
            c->v += v;
        else if (latest ? g->s[i].id > last[k] : (c->n == 0 || v > c->v))
            c->v = v;
        if (g->s[i].id > last[k])
            last[k] = g->s[i].id;
        c->n++;
    }
    if (mean)
        for (int k = 0; k < nr * nc; k++)
            if (g->cell[k].n)
                g->cell[k].v /= g->cell[k].n;
    free(last);
}

static void grid_free(struct grid *g)
{
    for (int i = 0; i < g->n; i++)
        free(g->s[i].r), free(g->s[i].c), free(g->s[i].method), free(g->s[i].subset);
    free(g->s), free(g->rows.v), free(g->cols.v), free(g->cell);
    memset(g, 0, sizeof *g);
}

static int grid_make(sqlite3 *db, const struct avs_report_grid *o, struct grid *g,
                     struct avs_err *err)
{
    memset(g, 0, sizeof *g);
    if (load(db, o, g, err) || one_subset(o, g, err)) {
        grid_free(g);
        return -1;
    }
    axis_build(&g->rows, g, 0, o->rows);
    axis_build(&g->cols, g, 1, o->cols);
    cells_fill(g, o->pick);
    return 0;
}

/* ---- output ---- */

static const char *SEP[] = {"</td><td>", " | ", " & ", ","};

static void name_out(struct avs_buf *o, enum avs_report_format f, const char *name)
{
    if (f == AVS_REPORT_LATEX && (!strcmp(name, "alpha") || !strcmp(name, "beta")))
        avs_buf_printf(o, "$\\%s$", name);
    else
        avs_buf_esc(o, f, name);
}

static void value_out(struct avs_buf *o, enum avs_report_format f, const struct cellv *c,
                      int fscore)
{
    if (!c->n) {
        avs_buf_puts(o, f == AVS_REPORT_HTML ? "&ndash;" : f == AVS_REPORT_LATEX ? "--" :
                        f == AVS_REPORT_CSV ? "" : "-");
        return;
    }
    if (f == AVS_REPORT_CSV)
        avs_buf_printf(o, "%.6f", c->v);
    else
        avs_buf_printf(o, fscore ? "%.3f" : "%.1f", fscore ? c->v : 100 * c->v);
    if (c->n > 1 && f != AVS_REPORT_CSV)
        avs_buf_printf(o, " (%d)", c->n);
}

/* One sentence: what the cells are, which rows, how several results are shown. */
static void caption(struct avs_buf *o, enum avs_report_format f, const struct avs_report_grid *g,
                    const struct grid *gr)
{
    int fs = g->metric && !strcmp(g->metric, "fscore");
    const char *pick = g->pick ? g->pick : "best";
    avs_buf_puts(o, fs ? "F-score (fraction)" : "mIoU (percent)");
    avs_buf_puts(o, " by ");
    avs_buf_esc(o, f, g->rows);
    avs_buf_puts(o, " (rows) and ");
    avs_buf_esc(o, f, g->cols);
    avs_buf_puts(o, " (columns); subset ");
    avs_buf_esc(o, f, gr->subset ? gr->subset : "(on an axis)");
    avs_buf_puts(o, ", split ");
    avs_buf_esc(o, f, g->split ? g->split : "any");
    avs_buf_puts(o, ", protocol ");
    avs_buf_esc(o, f, g->protocol ? g->protocol : "official");
    for (int i = 0; i < AVS_REPORT_GRID_WHERE && g->where[i]; i++) {
        avs_buf_puts(o, i ? ", " : "; only ");
        avs_buf_esc(o, f, g->where[i]);
    }
    avs_buf_printf(o, ". A cell with several results (count in parentheses) shows the %s of them",
                   !strcmp(pick, "mean") ? "mean" : !strcmp(pick, "latest") ? "latest" : "best");
    avs_buf_printf(o, " (each method's latest row); missing: no result recorded with both "
                      "values; %d result%s without ", gr->skipped, gr->skipped == 1 ? "" : "s");
    avs_buf_esc(o, f, g->rows);
    avs_buf_puts(o, " or ");
    avs_buf_esc(o, f, g->cols);
    avs_buf_puts(o, " left out.");
}

static void table_out(struct avs_buf *o, enum avs_report_format f, const struct avs_report_grid *g,
                      const struct grid *gr)
{
    static const char *START[] = {"<tr><th>", "| ", "", ""};
    static const char *END[] = {"</td></tr>\n", " |\n", " \\\\\n", "\n"};
    int fs = g->metric && !strcmp(g->metric, "fscore");
    if (f == AVS_REPORT_HTML)
        avs_buf_puts(o, "<table class=grid><thead><tr><th>");
    else if (f == AVS_REPORT_LATEX) {
        avs_buf_puts(o, "\\begin{tabular}{l|");
        for (int j = 0; j < gr->cols.n; j++)
            avs_buf_puts(o, "c");
        avs_buf_puts(o, "}\n\\toprule\n");
    } else
        avs_buf_puts(o, START[f]);
    if (f == AVS_REPORT_CSV) { /* the corner is one field */
        char *corner = avs_sprintf("%s\\%s", g->rows, g->cols);
        avs_buf_esc(o, f, corner);
        free(corner);
    } else {
        name_out(o, f, g->rows);
        avs_buf_puts(o, f == AVS_REPORT_LATEX ? " \\textbackslash{} " : " \\ ");
        name_out(o, f, g->cols);
    }
    for (int j = 0; j < gr->cols.n; j++) {
        avs_buf_puts(o, f == AVS_REPORT_HTML ? "</th><th>" : SEP[f]);
        avs_buf_esc(o, f, gr->cols.v[j]);
    }
    avs_buf_puts(o, f == AVS_REPORT_HTML ? "</th></tr></thead><tbody>\n"
                    : f == AVS_REPORT_LATEX ? " \\\\\n\\midrule\n" : f == AVS_REPORT_CSV ? "\n" : " |\n");
    if (f == AVS_REPORT_MARKDOWN) {
        avs_buf_puts(o, "|:--|");
        for (int j = 0; j < gr->cols.n; j++)
            avs_buf_puts(o, "--:|");
        avs_buf_puts(o, "\n");
    }
    for (int i = 0; i < gr->rows.n; i++) {
        avs_buf_puts(o, START[f]);
        avs_buf_esc(o, f, gr->rows.v[i]);
        if (f == AVS_REPORT_HTML)
            avs_buf_puts(o, "</th>");
        for (int j = 0; j < gr->cols.n; j++) {
            avs_buf_puts(o, f == AVS_REPORT_HTML ? "<td>" : SEP[f]);
            value_out(o, f, &gr->cell[i * gr->cols.n + j], fs);
            if (f == AVS_REPORT_HTML && j + 1 < gr->cols.n)
                avs_buf_puts(o, "</td>");
        }
        avs_buf_puts(o, f == AVS_REPORT_HTML && !gr->cols.n ? "</tr>\n" : END[f]);
    }
    if (f == AVS_REPORT_HTML)
        avs_buf_puts(o, "</tbody></table>\n");
    if (f == AVS_REPORT_LATEX)
        avs_buf_puts(o, "\\bottomrule\n\\end{tabular}\n");
}

static void render(struct avs_buf *o, enum avs_report_format f, const struct avs_report_grid *g,
                   const struct grid *gr)
{
    switch (f) {
    case AVS_REPORT_HTML:
        avs_buf_puts(o, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>AVS "
                        "ablation</title><style>body{font:14px system-ui,sans-serif;margin:24px}"
                        "table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;"
                        "padding:4px 12px;text-align:center}</style></head><body>\n<h1>");
        avs_buf_esc(o, f, g->rows);
        avs_buf_puts(o, " &times; ");
        avs_buf_esc(o, f, g->cols);
        avs_buf_puts(o, "</h1>\n<p class=note>");
        caption(o, f, g, gr);
        avs_buf_puts(o, "</p>\n");
        table_out(o, f, g, gr);
        avs_buf_puts(o, "</body></html>\n");
        break;
    case AVS_REPORT_MARKDOWN:
        caption(o, f, g, gr);
        avs_buf_puts(o, "\n\n");
        table_out(o, f, g, gr);
        break;
    case AVS_REPORT_LATEX:
        avs_buf_puts(o, "% avs-report ablation: ");
        caption(o, f, g, gr);
        avs_buf_puts(o, " Needs \\usepackage{booktabs}.\n");
        table_out(o, f, g, gr);
        break;
    case AVS_REPORT_CSV:
        table_out(o, f, g, gr);
        break;
    }
    if (!gr->rows.n && f != AVS_REPORT_CSV)
        avs_buf_puts(o, f == AVS_REPORT_HTML ? "<p>(no recorded results with both)</p>\n"
                                             : "\n(no recorded results with both)\n");
}

int avs_report_grid_check(const struct avs_report_grid *g, struct avs_err *err)
{
    if (!g->rows || !g->cols || !*g->rows || !*g->cols)
        return avs_err_set(err, "a grid needs two parameters: --rows NAME --cols NAME (e.g. "
                           "--rows alpha --cols beta)");
    if (g->metric && strcmp(g->metric, "miou") && strcmp(g->metric, "fscore"))
        return avs_err_set(err, "--metric %s: use miou or fscore", g->metric);
    if (g->pick && strcmp(g->pick, "best") && strcmp(g->pick, "mean") && strcmp(g->pick, "latest"))
        return avs_err_set(err, "--pick %s: use best, mean or latest", g->pick);
    for (int i = 0; i < AVS_REPORT_GRID_WHERE && g->where[i]; i++)
        if (!strchr(g->where[i], '=') || g->where[i][0] == '=')
            return avs_err_set(err, "--where %s: use NAME=VALUE (e.g. switches=AF,CC)", g->where[i]);
    return 0;
}

int avs_report_grid(sqlite3 *db, enum avs_report_format f, const struct avs_report_grid *g,
                    const char *out, struct avs_err *err)
{
    struct grid gr;
    struct avs_buf o = {0};
    if (avs_report_grid_check(g, err) || grid_make(db, g, &gr, err))
        return -1;
    render(&o, f, g, &gr);
    int rc = 0;
    if (!strcmp(out, "-"))
        fwrite(o.p, 1, o.len, stdout);
    else
        rc = avs_fs_write_atomic(out, o.p, o.len, err);
    grid_free(&gr);
    avs_buf_free(&o);
    return rc;
}

int avs_report_grid_section(struct avs_buf *o, sqlite3 *db, const struct avs_report_grid *g,
                            const char *id, const char *title, struct avs_err *err)
{
    struct grid gr;
    if (avs_report_grid_check(g, err) || grid_make(db, g, &gr, err))
        return -1;
    int shown = gr.rows.n > 1 || gr.cols.n > 1; /* one cell is no grid */
    if (shown) {
        avs_buf_puts(o, "<h2 id=");
        avs_buf_esc(o, AVS_REPORT_HTML, id);
        avs_buf_puts(o, ">");
        avs_buf_esc(o, AVS_REPORT_HTML, title);
        avs_buf_puts(o, "</h2>\n<p class=note>");
        caption(o, AVS_REPORT_HTML, g, &gr);
        avs_buf_puts(o, "</p>\n");
        table_out(o, AVS_REPORT_HTML, g, &gr);
    }
    grid_free(&gr);
    return shown;
}
