/* features/c3im_cfg.c: the C3IM exponents in a feature set's config (features/features.h).
 *
 * A set's config (feature_sets.config, written by avs-features) holds
 *   "c3im": {"alpha": A, "beta": B}
 * when the set was made with exponents other than the official 0.1, 0.1; a config without the
 * entry means 0.1, 0.1 (every set made before the option existed, and every default one, so
 * their configs stay byte-identical and re-running avs-features on them is still a no-op).
 * The targets CC of a set depend on the exponents, so a run (avs-train, avs-predict) that asks
 * for other values than its set has is refused, never silently given the set's.
 */
#include <cJSON.h>
#include <stdio.h>

#include "features/features.h"
#include "model/c3im.h"

int avs_feat_c3im_config(const char *set, const char *config, double *alpha, double *beta,
                         struct avs_err *err)
{
    *alpha = AVS_C3IM_ALPHA, *beta = AVS_C3IM_BETA;
    cJSON *j = config ? cJSON_Parse(config) : NULL;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "c3im");
    int rc = 0;
    if (c) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, "alpha");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(c, "beta");
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !avs_c3im_exponent_ok(a->valuedouble) ||
            !avs_c3im_exponent_ok(b->valuedouble))
            rc = avs_err_set(err, "feature set \"%s\": its config's \"c3im\" entry is not two "
                             "exponents > 0 (alpha, beta): remake the set with avs-features",
                             set);
        else
            *alpha = a->valuedouble, *beta = b->valuedouble;
    }
    cJSON_Delete(j);
    return rc;
}

int avs_feat_c3im_check(const char *set, const char *config, int alpha_given, double alpha,
                        int beta_given, double beta, const char *what, struct avs_err *err)
{
    double a, b;
    if (avs_feat_c3im_config(set, config, &a, &b, err))
        return -1;
    if ((!alpha_given || alpha == a) && (!beta_given || beta == b))
        return 0;
    double wa = alpha_given ? alpha : a, wb = beta_given ? beta : b;
    return avs_err_set(err, "%s asks for C3IM alpha %g, beta %g but feature set \"%s\" was made "
                       "with alpha %g, beta %g (its targets CC depend on them): make a set with "
                       "these values (avs-features --alpha %g --beta %g --set NAME, then "
                       "--features NAME), or leave --alpha/--beta out to use the set's", what, wa,
                       wb, set, a, b, wa, wb);
}
