/* synth/compose.c: rendering one frame of a planned clip, and its masks.
 *
 * Layering: background (a slow pan/zoom over the photo), then the layers back to front. Each
 * layer is the cut-out scaled to height h(t) (bilinear on premultiplied RGBA, pixel centres at
 * +0.5), placed with its centre at (x(t), y(t)):
 *     out = a * obj + (1 - a) * out
 * The visible alpha of layer l at a pixel is a_l * prod over layers in front (1 - a_front);
 * the mask of a set of layers is (sum of their visible alphas >= 0.5): the exact composited
 * alpha of the sounding objects, so a sounding object hidden behind a silent one is not in it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth.h"

int avs_synth_frame_for_second(int k, double fps)
{
    /* DESIGN §3: floor((k-1)*F + 15*F/16), F = round(fps). */
    double F = floor(fps + 0.5);
    return (int)floor((k - 1) * F + 15.0 * F / 16.0);
}

static float smoothstep(float t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

/* Where layer L is at time t (seconds) of a clip `dur` seconds long. */
static void layer_at(const struct avs_synth_layer *L, float t, float dur, float *cx, float *cy,
                     float *h)
{
    float s = smoothstep(t / dur);
    *cx = L->x0 + (L->x1 - L->x0) * s;
    *cy = L->y0 + (L->y1 - L->y0) * s +
          L->bob_amp * sinf(2 * (float)M_PI * L->bob_freq * t + L->bob_phase);
    *h = L->h0 + (L->h1 - L->h0) * s;
}

/* Bilinear sample of RGBA at (u, v) in source pixel coordinates (centres at +0.5), with
 * transparent outside; result premultiplied: p[0..2] = colour * alpha, p[3] = alpha in [0,1]. */
static void sample_rgba(const struct avs_image *img, float u, float v, float p[4])
{
    float x = u - 0.5f, y = v - 0.5f;
    int x0 = (int)floorf(x), y0 = (int)floorf(y);
    float fx = x - x0, fy = y - y0;
    p[0] = p[1] = p[2] = p[3] = 0;
    for (int dy = 0; dy < 2; dy++) {
        int yy = y0 + dy;
        if (yy < 0 || yy >= img->h) continue;
        float wy = dy ? fy : 1 - fy;
        for (int dx = 0; dx < 2; dx++) {
            int xx = x0 + dx;
            if (xx < 0 || xx >= img->w) continue;
            float w = wy * (dx ? fx : 1 - fx);
            const uint8_t *s = img->data + ((size_t)yy * img->w + xx) * 4;
            float a = s[3] * (1.0f / 255) * w;
            p[0] += s[0] * a;
            p[1] += s[1] * a;
            p[2] += s[2] * a;
            p[3] += a;
        }
    }
}

static void render_background(const struct avs_image *bg, const struct avs_synth_clip *c,
                              float s, float *acc /* [h][w][3] */)
{
    /* Cover the frame with the photo at zoom >= 1 (1 = the largest centred crop with the
     * frame's aspect), centred at (cx, cy) in photo-relative coordinates. */
    int W = c->width, H = c->height;
    float zoom = c->bg_zoom0 + (c->bg_zoom1 - c->bg_zoom0) * s;
    float cover = fmaxf((float)W / bg->w, (float)H / bg->h) * zoom; /* output px per photo px */
    float vw = W / cover, vh = H / cover;                            /* view size in photo px */
    float cx = (c->bg_cx0 + (c->bg_cx1 - c->bg_cx0) * s) * bg->w;
    float cy = (c->bg_cy0 + (c->bg_cy1 - c->bg_cy0) * s) * bg->h;
    cx = fminf(fmaxf(cx, vw / 2), bg->w - vw / 2);
    cy = fminf(fmaxf(cy, vh / 2), bg->h - vh / 2);
    for (int y = 0; y < H; y++) {
        float v = cy - vh / 2 + (y + 0.5f) / cover - 0.5f;
        int y0 = (int)floorf(v);
        float fy = v - y0;
        int ya = y0 < 0 ? 0 : y0 >= bg->h ? bg->h - 1 : y0;
        int yb = y0 + 1 < 0 ? 0 : y0 + 1 >= bg->h ? bg->h - 1 : y0 + 1;
        for (int x = 0; x < W; x++) {
            float u = cx - vw / 2 + (x + 0.5f) / cover - 0.5f;
            int x0 = (int)floorf(u);
            float fx = u - x0;
            int xa = x0 < 0 ? 0 : x0 >= bg->w ? bg->w - 1 : x0;
            int xb = x0 + 1 < 0 ? 0 : x0 + 1 >= bg->w ? bg->w - 1 : x0 + 1;
            const uint8_t *p00 = bg->data + ((size_t)ya * bg->w + xa) * 3;
            const uint8_t *p01 = bg->data + ((size_t)ya * bg->w + xb) * 3;
            const uint8_t *p10 = bg->data + ((size_t)yb * bg->w + xa) * 3;
            const uint8_t *p11 = bg->data + ((size_t)yb * bg->w + xb) * 3;
            float *o = acc + ((size_t)y * W + x) * 3;
            for (int ch = 0; ch < 3; ch++)
                o[ch] = (1 - fy) * ((1 - fx) * p00[ch] + fx * p01[ch]) +
                        fy * ((1 - fx) * p10[ch] + fx * p11[ch]);
        }
    }
}

void avs_synth_render_frame(const struct avs_synth_media *m, const struct avs_synth_clip *c,
                            int f, uint8_t *rgb, uint8_t *mask, unsigned mask_layers,
                            float *alpha)
{
    int W = c->width, H = c->height;
    size_t npix = (size_t)W * H;
    float dur = (float)c->seconds, t = (float)f / (float)c->fps;
    float *acc = avs_malloc(npix * 3 * sizeof(float));
    float *vis = avs_calloc(npix, sizeof(float)); /* visible alpha of the masked layers */
    render_background(&m->backgrounds[c->background], c, smoothstep(t / dur), acc);
    for (int l = 0; l < c->n_layers; l++) {
        const struct avs_synth_layer *L = &c->layers[l];
        const struct avs_image *obj = &m->categories[L->category].objects[L->object];
        float cx, cy, h;
        layer_at(L, t, dur, &cx, &cy, &h);
        float scale = h / obj->h, w = obj->w * scale; /* output px per source px */
        int xa = (int)floorf(cx - w / 2) - 1, xb = (int)ceilf(cx + w / 2) + 1;
        int ya = (int)floorf(cy - h / 2) - 1, yb = (int)ceilf(cy + h / 2) + 1;
        xa = xa < 0 ? 0 : xa;
        ya = ya < 0 ? 0 : ya;
        xb = xb > W ? W : xb;
        yb = yb > H ? H : yb;
        int in_mask = (mask_layers >> l) & 1;
        for (int y = ya; y < yb; y++) {
            float v = (y + 0.5f - (cy - h / 2)) / scale;
            for (int x = xa; x < xb; x++) {
                float u = (x + 0.5f - (cx - w / 2)) / scale;
                if (L->flip) u = obj->w - u;
                float p[4];
                sample_rgba(obj, u, v, p);
                if (p[3] <= 0) continue;
                size_t i = (size_t)y * W + x;
                float *o = acc + i * 3;
                for (int ch = 0; ch < 3; ch++) o[ch] = p[ch] + (1 - p[3]) * o[ch];
                vis[i] = (in_mask ? p[3] : 0) + (1 - p[3]) * vis[i];
            }
        }
    }
    for (size_t i = 0; i < npix * 3; i++) {
        float v = acc[i] + 0.5f;
        rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    if (mask)
        for (size_t i = 0; i < npix; i++) mask[i] = vis[i] >= 0.5f ? 255 : 0;
    if (alpha) memcpy(alpha, vis, npix * sizeof(float));
    free(acc);
    free(vis);
}
