/* model/c3n.c: CCAM + C3N head (see c3n.h). ref: C3N (Eq. 6-7) for CCAM; the head is
 * model/c3n_head.c. */
#include "model/c3n.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "model/nn.h"

static size_t map_numel(const struct avs_c3n_cfg *c, int B, int s)
{
    return (size_t)B * c->C[s] * c->H[s] * c->W[s];
}

/* CCAM's tensors, in one arena of the active backend: counted (a == NULL), then taken. */
static size_t carve(struct avs_c3n *m, struct avs_arena *a)
{
    const struct avs_c3n_cfg *c = &m->head.cfg;
    int B = m->head.B;
    size_t total = 0;
#define TAKE(p, n) (total += avs_arena_round(n), p = a ? avs_arena_take(a, n) : NULL)
    for (int s = 0; s < 4; s++) {
        size_t n = map_numel(c, B, s);
        TAKE(m->x[s], n);
        TAKE(m->x1[s], n);
        TAKE(m->dx[s], n);
        TAKE(m->s[s], (size_t)B * c->C[s]);
        TAKE(m->sm[s], (size_t)B * c->H[s] * c->W[s]);
    }
    TAKE(m->scratch, (size_t)B * c->H[0] * c->W[0]);
#undef TAKE
    return total;
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
    avs_arena_init(&m->mem, carve(m, NULL));
    carve(m, &m->mem);
}

void avs_c3n_free(struct avs_c3n *m)
{
    avs_c3n_head_free(&m->head);
    avs_arena_free(&m->mem);
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
