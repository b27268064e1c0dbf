/* avs-ingest: folders of clips (or AVSBench trees) into the indexed store. See --help. */
#include <cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/common.h"
#include "core/names.h"
#include "ingest/ingest.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: avs-ingest [options] PATH...            clips or folders of clips\n"
        "       avs-ingest [options] --avsbench DIR ...  AVSBench S4/MS3 trees (repeatable)\n"
        "       avs-ingest merge --root DEST SHARD_ROOT...  combine stores made with --shard\n"
        "\n"
        "One frame and one 1-second 16 kHz mono WAV per second of every clip, indexed in SQLite.\n"
        "Frame k is decoded frame floor((k-1)*F + 15*F/16), F = round(fps) (AVSBench's rule).\n"
        "\n"
        "options:\n"
        "  --root DIR          store folder (default ./avsdata); index DIR/avs.db\n"
        "  --db PATH           index file (default ROOT/avs.db)\n"
        "  -j, --jobs N        clips decoded in parallel (default: all cores)\n"
        "  --size WxH          frame size (default 224x224, bilinear as OpenCV INTER_LINEAR)\n"
        "  --keep-size         keep the source frame size\n"
        "  --seconds N         at most N seconds per clip\n"
        "  --frame-at RULE     avsbench (default) or timestamp (first frame at or after\n"
        "                      (k-1) + 15/16 s; for variable-frame-rate clips)\n"
        "  --category C        category of every clip (default: its folder's name)\n"
        "  --split S           split of every clip (train/val/test)\n"
        "  --avsbench DIR      import an AVSBench tree (s4_meta_data.csv / ms3_meta_data.csv)\n"
        "  --retry-failed      try again inputs that failed before even if unchanged\n"
        "  --threads N         decoder threads per clip (default: cores / jobs)\n"
        "  --shard i/N         do only items i, i+N, ... (for cluster arrays)\n"
        "  --json              print the summary as JSON on stdout\n"
        "  -q, --quiet         errors only;  --verbose  more detail\n"
        "  -h, --help          this text;    --version\n"
        "\n"
        "exit status: 0 all ingested or unchanged, 1 usage error, 2 some inputs failed\n"
        "(each recorded in v_videos with its reason), 3 fatal (e.g. store busy).\n");
}

enum { OPT_SIZE = AVS_OPT_FIRST_TOOL, OPT_KEEP, OPT_SECONDS, OPT_FRAME_AT, OPT_CATEGORY, OPT_SPLIT,
       OPT_AVSBENCH, OPT_RETRY, OPT_THREADS, OPT_JSON };

struct args {
    struct avs_cli cli;
    struct avs_ingest_opts o;
    const char *category, *split;
    const char **avsbench;
    int n_avsbench, json, threads;
};

static int parse_size(const char *s, int *w, int *h)
{
    return sscanf(s, "%dx%d", w, h) == 2 && *w > 0 && *h > 0 && *w <= 16384 && *h <= 16384 ? 0 : -1;
}

static int tool_option(struct args *a, int c, const char *arg)
{
    switch (c) {
    case OPT_SIZE:
        if (parse_size(arg, &a->o.dec.out_w, &a->o.dec.out_h)) {
            fprintf(stderr, "avs-ingest: --size %s: expected WxH, e.g. --size 224x224\n", arg);
            return -1;
        }
        return 0;
    case OPT_KEEP: a->o.dec.out_w = a->o.dec.out_h = 0; return 0;
    case OPT_SECONDS:
        if ((a->o.dec.max_seconds = atoi(arg)) < 1) {
            fprintf(stderr, "avs-ingest: --seconds %s: expected a positive number\n", arg);
            return -1;
        }
        return 0;
    case OPT_FRAME_AT:
        if (!strcmp(arg, "avsbench"))
            a->o.dec.frame_rule = AVS_FRAME_AVSBENCH;
        else if (!strcmp(arg, "timestamp"))
            a->o.dec.frame_rule = AVS_FRAME_TIMESTAMP;
        else {
            fprintf(stderr, "avs-ingest: --frame-at %s: expected avsbench or timestamp\n", arg);
            return -1;
        }
        return 0;
    case OPT_CATEGORY:
    case OPT_SPLIT: {
        struct avs_err e;
        /* both name folders: predictions under <category>/, pred-<subset>-<split> */
        if (avs_name_check(arg, c == OPT_CATEGORY ? "--category" : "--split", &e)) {
            fprintf(stderr, "avs-ingest: %s\n", e.msg);
            return -1;
        }
        *(c == OPT_CATEGORY ? &a->category : &a->split) = arg;
        return 0;
    }
    case OPT_AVSBENCH:
        a->avsbench = avs_realloc(a->avsbench, sizeof(char *) * (size_t)(a->n_avsbench + 1));
        a->avsbench[a->n_avsbench++] = arg;
        return 0;
    case OPT_RETRY: a->o.retry_failed = 1; return 0;
    case OPT_THREADS: a->threads = atoi(arg); return a->threads < 1 ? -1 : 0;
    case OPT_JSON: a->json = 1; return 0;
    default: return -1;
    }
}

/* avs_cli_parse's callback: a bad or unknown option gets the pointer to --help */
static int option_cb(void *ctx, int c, const char *arg)
{
    if (c != '?' && !tool_option(ctx, c, arg))
        return 0;
    fprintf(stderr, "avs-ingest: see avs-ingest --help\n");
    return 1;
}

/* -1 to go on, else the status main returns (help, version, usage errors) */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        AVS_CLI_LONG_OPTIONS,
        {"size", required_argument, 0, OPT_SIZE}, {"keep-size", no_argument, 0, OPT_KEEP},
        {"seconds", required_argument, 0, OPT_SECONDS}, {"frame-at", required_argument, 0, OPT_FRAME_AT},
        {"category", required_argument, 0, OPT_CATEGORY}, {"split", required_argument, 0, OPT_SPLIT},
        {"avsbench", required_argument, 0, OPT_AVSBENCH}, {"retry-failed", no_argument, 0, OPT_RETRY},
        {"threads", required_argument, 0, OPT_THREADS}, {"json", no_argument, 0, OPT_JSON},
        {0, 0, 0, 0}};
    avs_cli_defaults(&a->cli);
    a->o.dec.out_w = a->o.dec.out_h = 224;
    return avs_cli_parse(&a->cli, argc, argv, "j:hq", opts, option_cb, a, usage, "avs-ingest");
}

/* One JSON object on stdout: {"root": ..., <names[i]>: <values[i]>..., "seconds": ...}. */
static void print_json(const char *root, const char *const *names, const int *values, double seconds)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "root", root);
    for (int i = 0; names[i]; i++)
        cJSON_AddNumberToObject(o, names[i], values[i]);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    char *txt = cJSON_PrintUnformatted(o);
    printf("%s\n", txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

static void print_summary(const struct args *a, const struct avs_ingest_stats *s, int rc)
{
    if (a->json) {
        print_json(a->o.root, (const char *[]){"total", "ingested", "unchanged", "failed", "still_failed",
                                               "no_audio", "decode_errors", "status", NULL},
                   (const int[]){s->total, s->ingested, s->unchanged, s->failed, s->still_failed,
                                 s->no_audio, s->decode_errors, rc}, s->seconds);
        return;
    }
    if (avs_log_level() < 1)
        return;
    fprintf(stderr, "avs-ingest: %d clips: %d ingested, %d unchanged, %d failed, %d failed before "
                    "and unchanged (%d without audio) in %.1f s; store %s\n", s->total, s->ingested,
            s->unchanged, s->failed, s->still_failed, s->no_audio, s->seconds, a->o.root);
    if (s->failed || s->still_failed)
        fprintf(stderr, "avs-ingest: see why: sqlite3 %s/avs.db \"SELECT uid, error FROM v_videos "
                        "WHERE status = 'failed'\"\n", a->o.root);
}

static int merge_main(const struct args *a, char *const *roots, int n)
{
    if (n < 1) {
        fprintf(stderr, "avs-ingest merge: give the shard stores to merge: avs-ingest merge --root DEST DIR...\n");
        return AVS_EXIT_USAGE;
    }
    struct avs_ingest_stats stats;
    struct avs_err err = {0};
    int rc = avs_ingest_merge(a->o.root, a->o.db_path, roots, n, &stats, &err);
    if (rc < 0) {
        fprintf(stderr, "avs-ingest merge: %s\n", err.msg);
        return AVS_EXIT_FATAL;
    }
    if (a->json)
        print_json(a->o.root, (const char *[]){"videos", "merged", "unchanged", "failed", NULL},
                   (const int[]){stats.total, stats.ingested, stats.unchanged, stats.failed}, stats.seconds);
    else if (avs_log_level() >= 1)
        fprintf(stderr, "avs-ingest merge: %d videos from %d stores: %d merged, %d unchanged, %d failed "
                        "or conflicting, into %s\n", stats.total, n, stats.ingested, stats.unchanged,
                stats.failed, a->o.root);
    return rc == 2 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int parsed = parse_args(argc, argv, &a);
    if (parsed >= 0)
        return parsed;
    int merge = optind < argc && !strcmp(argv[optind], "merge");
    if (merge)
        optind++;
    int n_paths = argc - optind;
    a.o.root = a.cli.root;
    a.o.db_path = a.cli.db;
    a.o.jobs = a.cli.jobs;
    a.o.shard_i = a.cli.shard_i;
    a.o.shard_n = a.cli.shard_n;
    a.o.progress = 1;
    a.o.dec.threads = a.threads ? a.threads : (avs_num_cores() / a.o.jobs > 1 ? avs_num_cores() / a.o.jobs : 1);
    struct avs_err err = {0};
    if (merge)
        return merge_main(&a, argv + optind, n_paths);
    struct avs_ingest_plan plan = {0};
    int rc = avs_ingest_plan_paths(&plan, argv + optind, n_paths, a.category, a.split, &err);
    for (int i = 0; rc == 0 && i < a.n_avsbench; i++)
        rc = avs_ingest_plan_avsbench(&plan, a.avsbench[i], &err);
    if (rc) {
        fprintf(stderr, "avs-ingest: %s\n", err.msg);
        avs_ingest_plan_free(&plan);
        free(a.avsbench);
        return AVS_EXIT_USAGE;
    }
    struct avs_ingest_stats stats;
    rc = avs_ingest_run(&a.o, &plan, &stats, &err);
    if (rc < 0)
        fprintf(stderr, "avs-ingest: %s\n", err.msg);
    else
        print_summary(&a, &stats, rc);
    avs_ingest_plan_free(&plan);
    free(a.avsbench);
    return rc < 0 ? AVS_EXIT_FATAL : rc == 2 ? AVS_EXIT_PARTIAL : AVS_EXIT_OK;
}
