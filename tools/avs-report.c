/* avs-report: HTML leaderboard and ablation tables from the metrics table (report/report.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/common.h"
#include "core/db.h"
#include "core/fs.h"
#include "report/report.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-report leaderboard [--db DB | --root DIR] [--columns N] -o FILE.html\n"
        "       avs-report ablation [--db DB | --root DIR] [--format html|markdown|latex|csv]\n"
        "                           [--split S] [--protocol P] -o FILE\n"
        "       avs-report ablation --rows NAME --cols NAME [--metric miou|fscore]\n"
        "                           [--pick best|mean|latest] [--subset S] [--where NAME=VALUE]\n"
        "                           [--format ...] [--split S] [--protocol P] -o FILE\n"
        "Reports from the results recorded by `avs-eval --record`.\n\n"
        "  leaderboard   one self-contained HTML file (inline CSS, SVG, PNG thumbnails; no\n"
        "                external URL): one sortable ranking per subset + protocol (protocol\n"
        "                column; rows of different protocols never ranked together), per-class\n"
        "                table and chart, the AVSS leaderboard (official mIoU/F, variants\n"
        "                no-bg / official-no-bg / present / pooled, padded frames), AVSS\n"
        "                per-class table and class x method heat map, dataset summary, how\n"
        "                each protocol's numbers were computed, best/worst examples per result\n"
        "  ablation      the C3N paper's Table II layout (AF / CC-V / CC, then mIoU and F for S4\n"
        "                and MS3), one block per backbone, from rows with recorded switches;\n"
        "                with --rows/--cols: any two recorded parameters as a table (rows =\n"
        "                the values of one, columns = of the other, cell = the metric), e.g.\n"
        "                --rows alpha --cols beta (the paper's Table III), --rows switches\n"
        "                --cols backbone, --rows backbone --cols audio. Parameters: switches,\n"
        "                backbone, audio, alpha, beta, subset, split, method, any key of the\n"
        "                run's config (mode, epochs, lr, seed, width, features...) or of the\n"
        "                feature set's config, or a dotted path (feature_config.visual.name)\n"
        "  --columns N   leaderboard: results side by side in the per-class tables, chart, AVSS\n"
        "                heat map and gallery, the first in ranking order (default 8, at\n"
        "                most 64)\n"
        "  --metric M    grid cell: miou (default, percent) or fscore\n"
        "  --pick P      grid: several methods in one cell: best (default), mean or latest;\n"
        "                their count is shown in parentheses\n"
        "  --subset S    grid: results of this subset (needed when several have both params)\n"
        "  --where N=V   grid: only results whose parameter N is V (repeatable, up to 8)\n"
        "  -o FILE       output ('-' = stdout, ablation only)\n"
        "  --format F    ablation format (default: from the extension of -o, else markdown)\n"
        "  --split S     ablation: rows of this split (default test; 'all' = any)\n"
        "  --protocol P  ablation: rows of this protocol (default official; also per-frame,\n"
        "                pooled); the output names it\n"
        "  --root DIR --db PATH --quiet --help --version\n"
        "Exit: 0 ok, 1 usage, 2 page written but some rows' details unusable (listed on the\n"
        "page and on stderr), 3 fatal.\n");
}

enum { OPT_FORMAT = AVS_OPT_FIRST_TOOL, OPT_SPLIT, OPT_PROTOCOL, OPT_ROWS, OPT_COLS, OPT_METRIC,
       OPT_PICK, OPT_SUBSET, OPT_WHERE, OPT_COLUMNS };

static int parse_format(const char *s, enum avs_report_format *f)
{
    static const char *NAMES[] = {"html", "markdown", "latex", "csv"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, NAMES[i]) || (i == 1 && !strcmp(s, "md")) || (i == 2 && !strcmp(s, "tex"))) {
            *f = (enum avs_report_format)i;
            return 0;
        }
    return -1;
}

struct args {
    const char *out, *format, *split, *protocol; /* split NULL: all */
    struct avs_report_grid grid;                 /* --rows/--cols: a grid */
    int nwhere;
    int columns; /* leaderboard --columns, 0: not given */
};

/* One tool option into the struct args at ctx (avs_cli_parse). */
static int tool_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    switch (c) {
    case 'o': a->out = arg; break;
    case OPT_FORMAT: a->format = arg; break;
    case OPT_SPLIT: a->split = strcmp(arg, "all") ? arg : NULL; break;
    case OPT_PROTOCOL: a->protocol = arg; break;
    case OPT_ROWS: a->grid.rows = arg; break;
    case OPT_COLS: a->grid.cols = arg; break;
    case OPT_METRIC: a->grid.metric = arg; break;
    case OPT_PICK: a->grid.pick = arg; break;
    case OPT_SUBSET: a->grid.subset = arg; break;
    case OPT_COLUMNS: {
        char *end;
        long n = strtol(arg, &end, 10);
        if (end == arg || *end || n < 1 || n > AVS_REPORT_COLUMNS_MAX) {
            fprintf(stderr, "avs-report: --columns %s: expected 1 to %d\n", arg, AVS_REPORT_COLUMNS_MAX);
            return 1;
        }
        a->columns = (int)n;
        break;
    }
    case OPT_WHERE:
        if (a->nwhere == AVS_REPORT_GRID_WHERE) {
            fprintf(stderr, "avs-report: at most %d --where filters\n", AVS_REPORT_GRID_WHERE);
            return 1;
        }
        a->grid.where[a->nwhere++] = arg;
        break;
    default: usage(stderr); return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        AVS_CLI_LONG_OPTIONS, {"format", required_argument, 0, OPT_FORMAT},
        {"split", required_argument, 0, OPT_SPLIT}, {"output", required_argument, 0, 'o'},
        {"protocol", required_argument, 0, OPT_PROTOCOL},
        {"rows", required_argument, 0, OPT_ROWS}, {"cols", required_argument, 0, OPT_COLS},
        {"metric", required_argument, 0, OPT_METRIC}, {"pick", required_argument, 0, OPT_PICK},
        {"subset", required_argument, 0, OPT_SUBSET}, {"where", required_argument, 0, OPT_WHERE},
        {"columns", required_argument, 0, OPT_COLUMNS},
        {0, 0, 0, 0}};
    struct avs_cli cli;
    struct args a = {NULL, NULL, "test", "official", {0}, 0, 0};
    avs_cli_defaults(&cli);
    int parsed = avs_cli_parse(&cli, argc, argv, "j:hqo:", opts, tool_option, &a, usage, "avs-report");
    if (parsed >= 0)
        return parsed;
    const char *out = a.out, *format = a.format, *split = a.split;
    const char *cmd = optind < argc ? argv[optind] : NULL;
    int lb = cmd && !strcmp(cmd, "leaderboard"), ab = cmd && !strcmp(cmd, "ablation");
    if ((!lb && !ab) || optind + 1 != argc || !out) {
        fprintf(stderr, "avs-report: %s\n", !lb && !ab ? "give a report: leaderboard or ablation"
                                            : !out ? "-o FILE is required" : "unexpected argument");
        usage(stderr);
        return AVS_EXIT_USAGE;
    }
    enum avs_report_format f = AVS_REPORT_MARKDOWN;
    const char *ext = strrchr(out, '.');
    if (format) {
        if (parse_format(format, &f)) {
            fprintf(stderr, "--format %s: expected html, markdown, latex or csv\n", format);
            return AVS_EXIT_USAGE;
        }
    } else if (ext) {
        if (parse_format(ext + 1, &f) && !strcmp(ext, ".htm"))
            f = AVS_REPORT_HTML;
    }
    int grid = a.grid.rows || a.grid.cols || a.grid.metric || a.grid.pick || a.grid.subset ||
               a.nwhere;
    struct avs_err gerr;
    if (grid && (lb || avs_report_grid_check(&a.grid, &gerr))) {
        fprintf(stderr, "avs-report: %s\n", lb ? "--rows/--cols/--metric/--pick/--subset/--where "
                                                 "belong to the ablation report" : gerr.msg);
        return AVS_EXIT_USAGE;
    }
    if (a.columns && !lb) {
        fprintf(stderr, "avs-report: --columns belongs to the leaderboard\n");
        return AVS_EXIT_USAGE;
    }
    a.grid.split = split, a.grid.protocol = a.protocol;
    if (lb && !strcmp(out, "-")) {
        fprintf(stderr, "avs-report leaderboard: -o needs a file name (the HTML is large)\n");
        return AVS_EXIT_USAGE;
    }
    struct avs_err err = {{0}};
    char *dbp = avs_cli_db_path(&cli);
    sqlite3 *db = NULL;
    int status = AVS_EXIT_FATAL;
    if (avs_db_open_readonly(dbp, &db, &err))
        goto fail;
    /* relative store paths resolve against the folder holding the index */
    char *root = avs_strdup(dbp), *slash = strrchr(root, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(root, ".");
    int rc = lb     ? avs_report_leaderboard(db, root, a.columns, out, &err)
             : grid ? avs_report_grid(db, f, &a.grid, out, &err)
                    : avs_report_ablation(db, f, split, a.protocol, out, &err);
    free(root);
    if (rc < 0)
        goto fail;
    if (strcmp(out, "-"))
        avs_log_info("wrote %s%s", out, rc > 0 ? " (some rows incomplete: see above)" : "");
    status = rc > 0 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
    goto done;
fail:
    avs_log_error("%s", err.msg);
done:
    avs_db_close(&db);
    free(dbp);
    return status;
}
