/* model/c3n.c: CCAM + C3N head (see c3n.h). ref: C3N (Eq. 6-7) for CCAM; the head is
 * model/c3n_head.c. */
#include "model/c3n.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/nn.h"

static size_t map_numel(const struct avs_c3n_cfg *c, int B, int s)
{
    return (size_t)B * c->C[s] * c->H[s] * c->W[s];
}

void avs_c3n_init(struct avs_c3n *m, const struct avs_c3n_cfg *cfg, const struct avs_switches *sw,
                  int n_videos)
{
    memset(m, 0, sizeof *m);
    struct avs_c3n_cfg c = *cfg;
    c.tpavi = sw->af ? 15 : 0;
    m->sw = *sw;
    m->ccam = sw->cc || sw->ccv;
    avs_c3n_head_init(&m->head, &c, n_videos);
    int B = m->head.B;
    for (int s = 0; s < 4; s++) {
        size_t n = map_numel(&c, B, s);
        m->x[s] = avs_calloc(n, sizeof(float));
        m->x1[s] = avs_calloc(n, sizeof(float));
        m->dx[s] = avs_calloc(n, sizeof(float));
        m->s[s] = avs_calloc((size_t)B * c.C[s], sizeof(float));
        m->sm[s] = avs_calloc((size_t)B * c.H[s] * c.W[s], sizeof(float));
    }
    m->scratch = avs_calloc((size_t)B * c.H[0] * c.W[0], sizeof(float));
}

void avs_c3n_free(struct avs_c3n *m)
{
    avs_c3n_head_free(&m->head);
    for (int s = 0; s < 4; s++)
        free(m->x[s]), free(m->x1[s]), free(m->dx[s]), free(m->s[s]), free(m->sm[s]);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

void avs_c3n_fwd(struct avs_c3n *m, const float *const stage[4], const float *const gradcam[4],
                 const float *audio, int train)
{
    const struct avs_c3n_cfg *c = &m->head.cfg;
    int B = m->head.B;
    const float *in[4];
    for (int s = 0; s < 4; s++) {
        m->stage[s] = stage[s];
        if (m->ccam) {
            avs_ccam_fwd(m->x[s], m->s[s], m->x1[s], m->sm[s], stage[s], gradcam[s], B, c->C[s],
                         c->H[s] * c->W[s]);
            in[s] = m->x[s];
        } else
            in[s] = stage[s];
    }
    avs_c3n_head_fwd(&m->head, in, m->sw.af ? audio : NULL, train);
}

void avs_c3n_bwd(struct avs_c3n *m, const float *dlogits, float *const dstage[4])
{
    const struct avs_c3n_cfg *c = &m->head.cfg;
    int B = m->head.B;
    if (!dstage) {
        avs_c3n_head_bwd(&m->head, dlogits, NULL, NULL);
        return;
    }
    float *dx[4];
    for (int s = 0; s < 4; s++) {
        dx[s] = m->ccam ? m->dx[s] : dstage[s];
        if (m->ccam)
            avs_ops()->zero(m->dx[s], map_numel(c, B, s));
    }
    avs_c3n_head_bwd(&m->head, dlogits, dx, NULL);
    if (!m->ccam)
        return;
    for (int s = 0; s < 4; s++)
        avs_ccam_bwd(dstage[s], m->dx[s], m->s[s], m->x1[s], m->sm[s], B, c->C[s],
                     c->H[s] * c->W[s], m->scratch);
}

int avs_switches_parse(struct avs_switches *s, const char *text)
{
    struct avs_switches r = {0, 0, 0};
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (strcmp(buf, "NONE")) {
        char *save = NULL;
        for (char *t = strtok_r(buf, ",+ ", &save); t; t = strtok_r(NULL, ",+ ", &save)) {
            if (!strcmp(t, "AF"))
                r.af = 1;
            else if (!strcmp(t, "CC"))
                r.cc = 1;
            else if (!strcmp(t, "CC-V") || !strcmp(t, "CCV"))
                r.ccv = 1;
            else
                return -1;
        }
    }
    if (r.cc && r.ccv)
        return -1;
    *s = r;
    return 0;
}

const char *avs_switches_text(const struct avs_switches *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s", s->af ? "AF" : "", s->af && (s->cc || s->ccv) ? "," : "",
             s->cc ? "CC" : s->ccv ? "CC-V" : "", !s->af && !s->cc && !s->ccv ? "none" : "");
    return buf;
}
