/* avs-synth: compose AVSBench-shaped S4/MS3 clips from real media (see synth/synth.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/common.h"
#include "synth/synth.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: avs-synth --out DIR --subset s4|ms3|avss [options]\n"
            "Compose clips from real media (photo cut-outs with their alpha masks, their\n"
            "recorded sounds, background photos) and write them as an AVSBench-style folder:\n"
            "  DIR/raw_videos/<split>/<category>/<uid>.mp4   H.264 + AAC, 25 or 30 fps\n"
            "  DIR/gt_masks/...  DIR/s4_meta_data.csv | ms3_meta_data.csv  DIR/categories.csv\n"
            "so that `avs-ingest --avsbench DIR` imports it unchanged.\n"
            "\n"
            "  --out DIR          output folder (created)\n"
            "  --subset s4|ms3    s4: one sounding object; ms3: 2-3 objects, which one is\n"
            "                     heard changes over the clip (masks follow the sound)\n"
            "  --subset avss      AVSBench-semantic layout: metadata.csv, label2idx.json,\n"
            "                     {v1s,v1m,v2}/<uid>/{frames/<i>.jpg, labels_rgb/<i>.png (class\n"
            "                     colours of the sounding objects), audio.wav}; clips cycle\n"
            "                     v1s (1 object, 5 frames), v1m (2-3, 5), v2 (2-3, 10)\n"
            "  --avss-unknown N   AVSS: N pixels of clip 0's first label get a colour outside\n"
            "                     the palette (to test importers)\n"
            "  --videos N         clips to write (default 10)\n"
            "  --seconds S        clip length in seconds (default 5; AVSS: fixed by the set)\n"
            "  --seed S           random seed (default 1); same seed = same masks, CSVs, clips\n"
            "  --size WxH         frame and mask size (default 224x224)\n"
            "  --fps N            frame rate of every clip (default: 25 or 30 per clip)\n"
            "  --all-masks        S4 train clips get every second's mask (AVSBench: first only)\n"
            "  --crf N            x264 quality, lower = better (default 20)\n"
            "  --media DIR        media folder (default $AVS_MEDIA, else\n"
            "                     ${XDG_CACHE_HOME:-~/.cache}/avs/media, filled by\n"
            "                     scripts/fetch-media.sh)\n"
            "  -j, --jobs N       clips encoded in parallel (default: cores)\n"
            "  --shard i/N        write only clips i, i+N, ... (all shards may share DIR;\n"
            "                     each writes the same complete CSV files)\n"
            "  -q, --quiet        no progress bar\n"
            "  -h, --help  --version\n"
            "Exit: 0 ok, 1 usage, 3 fatal (missing media, write failure).\n");
}

static char *default_media(void)
{
    const char *env = getenv("AVS_MEDIA");
    if (env && *env) return avs_strdup(env);
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) return avs_sprintf("%s/avs/media", xdg);
    const char *home = getenv("HOME");
    return avs_sprintf("%s/.cache/avs/media", home ? home : ".");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

enum { OPT_OUT = AVS_OPT_FIRST_TOOL, OPT_SUBSET, OPT_VIDEOS, OPT_SECONDS, OPT_SEED, OPT_SIZE,
       OPT_FPS, OPT_ALL_MASKS, OPT_CRF, OPT_MEDIA, OPT_AVSS_UNKNOWN };

struct args {
    struct avs_synth_opts o;
    const char *out, *media;
    int subset; /* -1: not given */
};

/* The value of one tool option into the struct args at ctx (avs_cli_parse); 1 if bad. */
static int option_value(struct args *a, int c, const char *arg)
{
    struct avs_synth_opts *o = &a->o;
    switch (c) {
    case OPT_OUT: a->out = arg; return 0;
    case OPT_SUBSET:
        a->subset = !strcmp(arg, "s4") ? AVS_SYNTH_S4 : !strcmp(arg, "ms3") ? AVS_SYNTH_MS3
                  : !strcmp(arg, "avss") ? AVS_SYNTH_AVSS : -2;
        return a->subset == -2;
    case OPT_VIDEOS: return parse_int(arg, 1, 1000000, &o->videos);
    case OPT_SECONDS: return parse_int(arg, 1, AVS_SYNTH_MAX_SECONDS, &o->seconds);
    case OPT_SEED: {
        char *end;
        o->seed = strtoull(arg, &end, 10);
        return *arg == 0 || *end != 0;
    }
    case OPT_SIZE:
        return sscanf(arg, "%dx%d", &o->width, &o->height) != 2 || o->width < 16 || o->height < 16 ||
               o->width > 4096 || o->height > 4096 || o->width % 2 || o->height % 2;
    case OPT_FPS: return parse_int(arg, 1, 120, &o->fps);
    case OPT_ALL_MASKS: o->all_masks = 1; return 0;
    case OPT_CRF: return parse_int(arg, 0, 51, &o->crf);
    case OPT_MEDIA: a->media = arg; return 0;
    case OPT_AVSS_UNKNOWN: return parse_int(arg, 0, 1 << 24, &o->avss_unknown);
    default: return -1;
    }
}

static int tool_option(void *ctx, int c, const char *arg)
{
    int bad = option_value(ctx, c, arg);
    if (bad < 0)
        usage(stderr);
    else if (bad)
        fprintf(stderr, "avs-synth: bad option value '%s' (see --help; --size takes an even WxH "
                ">= 16)\n", arg);
    return bad != 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        AVS_CLI_LONG_OPTIONS,
        {"out", required_argument, 0, OPT_OUT},
        {"subset", required_argument, 0, OPT_SUBSET},
        {"videos", required_argument, 0, OPT_VIDEOS},
        {"seconds", required_argument, 0, OPT_SECONDS},
        {"seed", required_argument, 0, OPT_SEED},
        {"size", required_argument, 0, OPT_SIZE},
        {"fps", required_argument, 0, OPT_FPS},
        {"all-masks", no_argument, 0, OPT_ALL_MASKS},
        {"crf", required_argument, 0, OPT_CRF},
        {"media", required_argument, 0, OPT_MEDIA},
        {"avss-unknown", required_argument, 0, OPT_AVSS_UNKNOWN},
        {0, 0, 0, 0}};
    struct avs_cli cli;
    struct args a = {.subset = -1};
    avs_cli_defaults(&cli);
    avs_synth_opts_default(&a.o);
    int parsed = avs_cli_parse(&cli, argc, argv, "j:hq", opts, tool_option, &a, usage, "avs-synth");
    if (parsed >= 0)
        return parsed;
    struct avs_synth_opts o = a.o;
    const char *out = a.out, *media_arg = a.media;
    int subset = a.subset, quiet = cli.quiet;
    if (optind < argc) {
        fprintf(stderr, "avs-synth: unexpected argument '%s' (see --help)\n", argv[optind]);
        return AVS_EXIT_USAGE;
    }
    if (!out || subset < 0) {
        fprintf(stderr, "avs-synth: --out DIR and --subset s4|ms3|avss are required (see --help)\n");
        return AVS_EXIT_USAGE;
    }
    o.subset = subset;
    o.jobs = cli.jobs;
    o.shard_i = cli.shard_i;
    o.shard_n = cli.shard_n;
    o.progress = !quiet;
    char *media_dir = media_arg ? avs_strdup(media_arg) : default_media();
    struct avs_synth_media *m = NULL;
    struct avs_err err = {{0}};
    int rc = AVS_EXIT_OK;
    double t0 = avs_now();
    if (avs_synth_media_load(media_dir, &m, &err)) {
        fprintf(stderr, "avs-synth: %s\n", err.msg);
        rc = AVS_EXIT_FATAL;
    } else if (avs_synth_run(out, m, &o, &err)) {
        fprintf(stderr, "avs-synth: %s\n", err.msg);
        rc = AVS_EXIT_FATAL;
    } else if (!quiet) {
        static const char *const names[3] = {"S4", "MS3", "AVSS"};
        if (subset == AVS_SYNTH_AVSS)
            printf("avs-synth: wrote %d AVSS clips (v1s/v1m: 5 frames, v2: 10; %dx%d) to %s in "
                   "%.1f s (media: %s, %d categories + background)\n", o.videos, o.width,
                   o.height, out, avs_now() - t0, media_dir, m->n_categories);
        else
            printf("avs-synth: wrote %d %s clips of %d s (%dx%d) to %s in %.1f s (media: %s, %d "
                   "categories)\n", o.videos, names[subset], o.seconds, o.width, o.height, out,
                   avs_now() - t0, media_dir, m->n_categories);
    }
    avs_synth_media_free(&m);
    free(media_dir);
    return rc;
}
