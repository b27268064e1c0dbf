/* core/cli.h: the options every program shares (DESIGN §1).
 *
 *   struct avs_cli cli;
 *   avs_cli_defaults(&cli);
 *   while ((c = getopt_long(argc, argv, "j:hq", opts, NULL)) != -1) {
 *       int r = avs_cli_common(&cli, c, optarg);  (1 handled, 0 not ours, -1 bad value)
 *       ...
 *   }
 * Long options for the common ones are in AVS_CLI_LONG_OPTIONS (put first in your array).
 */
#ifndef AVS_CORE_CLI_H
#define AVS_CORE_CLI_H

#include <getopt.h>
#include <stdio.h>

enum {
    AVS_OPT_ROOT = 1000,
    AVS_OPT_DB,
    AVS_OPT_VERSION,
    AVS_OPT_JSON,
    AVS_OPT_SHARD,
    AVS_OPT_VERBOSE,
    AVS_OPT_DEVICE,
    AVS_OPT_PRECISION,
    AVS_OPT_FIRST_TOOL /* tools number their own long options from here */
};

#define AVS_CLI_LONG_OPTIONS                                                                   \
    {"root", required_argument, 0, AVS_OPT_ROOT}, {"db", required_argument, 0, AVS_OPT_DB},      \
        {"jobs", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},                      \
        {"version", no_argument, 0, AVS_OPT_VERSION}, {"quiet", no_argument, 0, 'q'},            \
        {"verbose", no_argument, 0, AVS_OPT_VERBOSE}, {"shard", required_argument, 0, AVS_OPT_SHARD}

/* --device and --precision, for the programs that compute (avs-model, avs-features, avs-train,
 * avs-predict): put AVS_CLI_DEVICE_OPTION in their option array; they pass cli.device and
 * cli.precision to avs_backend_setup (backend/backend.h). */
#define AVS_CLI_DEVICE_OPTION                                                                  \
    {"device", required_argument, 0, AVS_OPT_DEVICE},                                          \
        {"precision", required_argument, 0, AVS_OPT_PRECISION}
#define AVS_CLI_DEVICE_USAGE                                                                   \
    "  --device NAME   compute backend: cpu, cuda or cuda:N (a build with CUDA=1 and a GPU),\n" \
    "                  or guard (tests only: the CPU's arithmetic on memory the host cannot\n" \
    "                  touch); default cuda:0 when this build has CUDA and a GPU is present,\n" \
    "                  else cpu. The choice is printed and recorded with the run\n"          \
    "  --precision P   fp32 (default), tf32 (cuda: tensor-op GEMMs and convolutions); bf16\n" \
    "                  is not implemented yet\n"                                            \
    "                  AVS_CONV=fast-bwd in the environment: the cpu backend's backward-data\n" \
    "                  convolutions in float, not double (training steps ~15-20%% faster,\n"  \
    "                  gradients several times further from exact); shown with the device\n"

struct avs_cli {
    const char *root;  /* store root, default ./avsdata */
    const char *db;    /* index path; NULL = root/avs.db */
    int jobs;          /* workers; default = cores */
    int shard_i, shard_n; /* --shard i/N: this process does items with index % N == i */
    int help, version;
    int quiet;         /* -q given */
    const char *device; /* --device; NULL: the default (avs_backend_default) */
    const char *precision; /* --precision; NULL: fp32 */
};

void avs_cli_defaults(struct avs_cli *cli);
/* Handle one getopt result; 1 handled, 0 not a common option, -1 bad value (message printed). */
int avs_cli_common(struct avs_cli *cli, int opt, const char *arg);
/* root/avs.db unless --db was given; free with free(). */
char *avs_cli_db_path(const struct avs_cli *cli);
/* The option loop of a program: common options into cli (after avs_cli_defaults), the others
 * through tool(ctx, opt, arg) (0 ok, non-zero: a usage error it has reported); --help prints
 * usage(stdout), --version the version. Returns -1 when the program goes on (operands from
 * optind), else the status main returns (AVS_EXIT_OK after --help/--version, AVS_EXIT_USAGE). */
int avs_cli_parse(struct avs_cli *cli, int argc, char **argv, const char *shortopts,
                  const struct option *lo, int (*tool)(void *ctx, int opt, const char *arg),
                  void *ctx, void (*usage)(FILE *f), const char *prog);
/* Print "<prog> <version>" to stdout. */
void avs_cli_print_version(const char *prog);

#endif
