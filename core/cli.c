/* core/cli.c: see cli.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/common.h"
#include "core/db.h"

void avs_cli_defaults(struct avs_cli *cli)
{
    memset(cli, 0, sizeof *cli);
    cli->root = "avsdata";
    cli->jobs = avs_num_cores();
    cli->shard_n = 1;
}

static int parse_shard(struct avs_cli *cli, const char *arg)
{
    int i, n;
    if (sscanf(arg, "%d/%d", &i, &n) != 2 || n < 1 || i < 0 || i >= n) {
        fprintf(stderr, "--shard %s: expected i/N with 0 <= i < N, e.g. --shard 0/4\n", arg);
        return -1;
    }
    cli->shard_i = i;
    cli->shard_n = n;
    return 1;
}

int avs_cli_common(struct avs_cli *cli, int opt, const char *arg)
{
    switch (opt) {
    case AVS_OPT_ROOT: cli->root = arg; return 1;
    case AVS_OPT_DB: cli->db = arg; return 1;
    case 'j':
        cli->jobs = atoi(arg);
        if (cli->jobs < 1 || cli->jobs > 1024) {
            fprintf(stderr, "-j %s: expected a number of workers from 1 to 1024\n", arg);
            return -1;
        }
        return 1;
    case 'h': cli->help = 1; return 1;
    case AVS_OPT_VERSION: cli->version = 1; return 1;
    case 'q': cli->quiet = 1; avs_log_set_level(0); return 1;
    case AVS_OPT_VERBOSE: avs_log_set_level(avs_log_level() + 1); return 1;
    case AVS_OPT_SHARD: return parse_shard(cli, arg);
    case AVS_OPT_DEVICE: cli->device = arg; return 1;
    case AVS_OPT_PRECISION: cli->precision = arg; return 1;
    default: return 0;
    }
}

int avs_cli_parse(struct avs_cli *cli, int argc, char **argv, const char *shortopts,
                  const struct option *lo, int (*tool)(void *ctx, int opt, const char *arg),
                  void *ctx, void (*usage)(FILE *f), const char *prog)
{
    int c;
    while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
        int r = avs_cli_common(cli, c, optarg);
        if (r < 0 || (r == 0 && tool(ctx, c, optarg)))
            return AVS_EXIT_USAGE;
    }
    if (cli->help) {
        usage(stdout);
        return AVS_EXIT_OK;
    }
    if (cli->version) {
        avs_cli_print_version(prog);
        return AVS_EXIT_OK;
    }
    return -1;
}

char *avs_cli_db_path(const struct avs_cli *cli)
{
    return cli->db ? avs_strdup(cli->db) : avs_db_path_for_root(cli->root);
}

void avs_cli_print_version(const char *prog) { printf("%s %s\n", prog, AVS_VERSION); }
