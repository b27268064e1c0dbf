/* report/params.h: internal to report/: what a recorded result was made with, as the ablation
 * tables read it (ablation.c: Table II; grid.c: any two parameters).
 *
 *   char *v = avs_report_param("alpha", details, config, &row);   "0.1", or NULL: not recorded
 *
 * A parameter is looked up, in this order, in the metrics row's details (what `avs-eval
 * --record` wrote), then in the linked run's config (what avs-train wrote), then in that
 * config's feature_config (the feature set's config). Names with a dot are paths
 * ("feature_config.visual.name"). Names with a meaning of their own:
 *   switches  AF / CC-V / CC as canonical text ("AF,CC", "none"), from an object, array or string
 *   backbone  details.backbone, config.backbone, feature_config.visual.name
 *   audio     details.audio, config.audio, feature_config.audio.name
 *   alpha, beta   the C3IM exponents: details, config.c3im, feature_config.c3im; a C3N run
 *             whose set config has no "c3im" entry was made with 0.1, 0.1 (features/c3im_cfg.c)
 *   subset, split, protocol, method   the metrics row's own columns
 * Values are text: strings as they are, numbers as %g, true/false, other JSON printed.
 */
#ifndef AVS_REPORT_PARAMS_H
#define AVS_REPORT_PARAMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The metrics row's own columns. */
struct avs_report_row {
    const char *method, *subset, *split, *protocol;
};

/* AF = 1, CC-V = 2, CC = 4 from an object {"AF": true, ...}, an array ["AF", "CC"] or a string
 * "AF,CC"; -1 when s is none of these. */
int avs_report_switch_bits(const cJSON *s);
/* "AF,CC-V,CC" order, "none" for 0. */
void avs_report_switch_text(int bits, char *buf, size_t n);
/* The value of parameter `name` (malloc'd text), or NULL when not recorded. details and
 * config may be NULL. */
char *avs_report_param(const char *name, const cJSON *details, const cJSON *config,
                       const struct avs_report_row *row);

#endif
