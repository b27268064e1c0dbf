/* report/params.c: a recorded result's parameters (report/params.h). */
#include "report/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static const char *SW[3] = {"AF", "CC-V", "CC"};

int avs_report_switch_bits(const cJSON *s)
{
    int bits = 0;
    if (cJSON_IsObject(s)) {
        for (int i = 0; i < 3; i++)
            bits |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, SW[i])) ? 1 << i : 0;
        return bits;
    }
    if (cJSON_IsArray(s)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, s)
            for (int i = 0; i < 3; i++)
                if (cJSON_IsString(it) && !strcmp(it->valuestring, SW[i]))
                    bits |= 1 << i;
        return bits;
    }
    if (cJSON_IsString(s)) {
        char *copy = avs_strdup(s->valuestring), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            for (int i = 0; i < 3; i++)
                if (!strcmp(t, SW[i]))
                    bits |= 1 << i;
        free(copy);
        return bits;
    }
    return -1;
}

void avs_report_switch_text(int bits, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (bits >> i & 1)
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "," : "", SW[i]);
    if (!buf[0])
        snprintf(buf, n, "none");
}

/* j at a dotted path ("a.b.c"), or NULL. */
static const cJSON *at_path(const cJSON *j, const char *path)
{
    char *copy = avs_strdup(path), *save = NULL;
    for (char *t = strtok_r(copy, ".", &save); t && j; t = strtok_r(NULL, ".", &save))
        j = cJSON_GetObjectItemCaseSensitive(j, t);
    free(copy);
    return j;
}

static char *text_of(const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (cJSON_IsString(v))
        return avs_strdup(v->valuestring);
    if (cJSON_IsNumber(v))
        return avs_sprintf("%g", v->valuedouble);
    if (cJSON_IsBool(v))
        return avs_strdup(cJSON_IsTrue(v) ? "true" : "false");
    char *p = cJSON_PrintUnformatted(v), *r = avs_strdup(p ? p : "?");
    cJSON_free(p);
    return r;
}

static char *switches(const cJSON *details, const cJSON *config)
{
    int bits = avs_report_switch_bits(cJSON_GetObjectItemCaseSensitive(details, "switches"));
    if (bits < 0)
        bits = avs_report_switch_bits(cJSON_GetObjectItemCaseSensitive(config, "switches"));
    if (bits < 0)
        return NULL;
    char buf[32];
    avs_report_switch_text(bits, buf, sizeof buf);
    return avs_strdup(buf);
}

/* alpha or beta: details, config.c3im, feature_config.c3im, else 0.1 for a C3N run (its set
 * config is there but has no entry: made with the defaults). */
static char *exponent(const char *name, const cJSON *details, const cJSON *config)
{
    char p1[32], p2[48];
    snprintf(p1, sizeof p1, "c3im.%s", name);
    snprintf(p2, sizeof p2, "feature_config.c3im.%s", name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(details, name);
    if (!v)
        v = at_path(details, p1);
    if (!v)
        v = at_path(config, p1);
    if (!v)
        v = at_path(config, p2);
    if (v)
        return text_of(v);
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(config, "feature_config"))
               ? avs_strdup("0.1") : NULL;
}

/* First of details.<a>, config.<b>, config.<c> that is there (b, c may be NULL). */
static char *first_of(const cJSON *details, const cJSON *config, const char *a, const char *b,
                      const char *c)
{
    const cJSON *v = at_path(details, a);
    if (!v && b)
        v = at_path(config, b);
    if (!v && c)
        v = at_path(config, c);
    return text_of(v);
}

char *avs_report_param(const char *name, const cJSON *details, const cJSON *config,
                       const struct avs_report_row *row)
{
    const char *own[4][2] = {{"method", row->method}, {"subset", row->subset},
                             {"split", row->split}, {"protocol", row->protocol}};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, own[i][0]))
            return own[i][1] ? avs_strdup(own[i][1]) : NULL;
    if (!strcmp(name, "switches"))
        return switches(details, config);
    if (!strcmp(name, "alpha") || !strcmp(name, "beta"))
        return exponent(name, details, config);
    if (!strcmp(name, "backbone"))
        return first_of(details, config, "backbone", "backbone", "feature_config.visual.name");
    if (!strcmp(name, "model")) { /* runs from before the model was recorded are C3N's */
        char *m = first_of(details, config, "model", "model", NULL);
        return m || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(config, "feature_config"))
                   ? m : avs_strdup("C3N");
    }
    if (!strcmp(name, "audio"))
        return first_of(details, config, "audio", "audio", "feature_config.audio.name");
    char *fc = avs_sprintf("feature_config.%s", name);
    char *v = first_of(details, config, name, name, fc);
    free(fc);
    return v;
}
