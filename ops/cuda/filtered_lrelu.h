// Filtered leaky ReLU in one pass over shared memory, one output tile of one (n, c) plane per block:
//   load:  s = x + b over the input rows/columns the tile needs (zero outside x)
//   up:    m = correlate(zero-stuff(s, up), fu)    (separable fu: a horizontal then a vertical pass)
//          m = clamp(lrelu(m, slope) * gain)
//   down:  y = correlate(m, fd) decimated by down  (separable fd: a horizontal then a vertical pass)
// Filters arrive flipped and scaled by the caller, so this is plain correlation. Each stage is an
// SG_HD function over (thread id, thread count); the kernel runs them with a barrier in between,
// the CPU emulation runs them one after another with a single "thread".
#pragma once
#include <ATen/core/Tensor.h>
#include "common.h"

enum { FL_LOAD = 0, FL_UP_A, FL_UP_B, FL_DOWN_A, FL_DOWN_B, FL_NUM_STAGES };

struct FilteredLReLUArgs {
    int64_t nc;
    int c, ih, iw, oh, ow;
    int up, down, padx0, pady0;
    int fuh, fuw, fdh, fdw;      // filter extents (a separable filter of k taps: k x k)
    bool fu_sep, fd_sep, has_bias;
    double gain, slope, clamp;  // clamp < 0: none
    // Tiling, chosen on the host (filtered_lrelu.cpp).
    int th, tw;                  // output tile
    int mh, mw;                  // intermediate tile: (t - 1) * down + fd
    int sh, sw;                  // input tile: enough rows/columns for any tile origin
    int tiles_x, num_tiles;
    // Shared-memory layout, offsets in elements of the accumulation type.
    int off_fu, off_fd, off_s, off_h, off_m, off_d, smem_elems;
};

// Where tile `tile` sits: output origin, and the input origin and local window offsets.
struct FLTile {
    int oy0, ox0;  // first output row / column
    int iy0, ix0;  // first input row / column loaded
    int qy, qx;    // upsampled-coordinate offset of intermediate row/column 0 within the loaded input
};

SG_HD FLTile fl_tile(const FilteredLReLUArgs& a, int tile) {
    FLTile t;
    t.oy0 = (tile / a.tiles_x) * a.th;
    t.ox0 = (tile % a.tiles_x) * a.tw;
    // Intermediate row r reads upsampled rows r - pady0 .. r - pady0 + fuh - 1.
    const int ry = t.oy0 * a.down - a.pady0, rx = t.ox0 * a.down - a.padx0;
    t.iy0 = floor_div(ry, a.up);
    t.ix0 = floor_div(rx, a.up);
    t.qy = ry - t.iy0 * a.up;
    t.qx = rx - t.ix0 * a.up;
    return t;
}

template <typename A>
SG_HD void fl_load_filters(const FilteredLReLUArgs& a, const A* fu, const A* fd, A* smem, int tid, int nt) {
    const int nfu = a.fu_sep ? a.fuw : a.fuh * a.fuw, nfd = a.fd_sep ? a.fdw : a.fdh * a.fdw;
    for (int i = tid; i < nfu; i += nt) smem[a.off_fu + i] = fu[i];
    for (int i = tid; i < nfd; i += nt) smem[a.off_fd + i] = fd[i];
}

template <typename A, typename T>
SG_HD void fl_stage(const FilteredLReLUArgs& a, int stage, const FLTile& t, int64_t nc, const T* x, const A* b,
                    T* y, A* smem, int tid, int nt) {
    const A* fu = smem + a.off_fu;
    const A* fd = smem + a.off_fd;
    A* s = smem + a.off_s;
    A* h = smem + a.off_h;
    A* m = smem + a.off_m;
    A* d = smem + a.off_d;
    if (stage == FL_LOAD) {
        const T* plane = x + nc * a.ih * a.iw;
        const A bias = a.has_bias ? b[nc % a.c] : A(0);
        for (int i = tid; i < a.sh * a.sw; i += nt) {
            const int iy = t.iy0 + i / a.sw, ix = t.ix0 + i % a.sw;
            const bool inside = iy >= 0 && iy < a.ih && ix >= 0 && ix < a.iw;
            s[i] = inside ? static_cast<A>(plane[int64_t(iy) * a.iw + ix]) + bias : A(0);
        }
        return;
    }
    if (stage == FL_UP_A || stage == FL_UP_B) {
        if (a.fu_sep && stage == FL_UP_A) {  // horizontal: s[sh][sw] -> h[sh][mw]
            for (int i = tid; i < a.sh * a.mw; i += nt) {
                const int r = i / a.mw, cx = i % a.mw;
                h[i] = resample_point<A, A>(s + r * a.sw, a.sw, 1, a.sw, fu, 1, a.fuw, a.up, 1, 0, t.qx + cx);
            }
            return;
        }
        if (!a.fu_sep && stage == FL_UP_B) return;
        const A gain = A(a.gain), slope = A(a.slope), clamp = A(a.clamp);
        for (int i = tid; i < a.mh * a.mw; i += nt) {
            const int r = i / a.mw, cx = i % a.mw;
            A v = a.fu_sep  // vertical pass over h, or the whole 2-D filter over s
                ? resample_point<A, A>(h + cx, a.mw, a.sh, 1, fu, a.fuw, 1, 1, a.up, t.qy + r, 0)
                : resample_point<A, A>(s, a.sw, a.sh, a.sw, fu, a.fuh, a.fuw, a.up, a.up, t.qy + r, t.qx + cx);
            v = (v > A(0) ? v : v * slope) * gain;
            if (a.clamp >= 0) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
            m[i] = v;
        }
        return;
    }
    if (a.fd_sep && stage == FL_DOWN_A) {  // horizontal: m[mh][mw] -> d[mh][tw]
        for (int i = tid; i < a.mh * a.tw; i += nt) {
            const int r = i / a.tw, cx = i % a.tw;
            d[i] = resample_point<A, A>(m + r * a.mw, a.mw, 1, a.mw, fd, 1, a.fdw, 1, 1, 0, cx * a.down);
        }
        return;
    }
    if (!a.fd_sep && stage == FL_DOWN_B) return;
    T* out = y + nc * a.oh * a.ow;
    for (int i = tid; i < a.th * a.tw; i += nt) {
        const int r = i / a.tw, cx = i % a.tw;
        const int oy = t.oy0 + r, ox = t.ox0 + cx;
        if (oy >= a.oh || ox >= a.ow) continue;
        const A v = a.fd_sep
            ? resample_point<A, A>(d + cx, a.tw, a.mh, 1, fd, a.fdw, 1, 1, 1, r * a.down, 0)
            : resample_point<A, A>(m, a.mw, a.mh, a.mw, fd, a.fdh, a.fdw, 1, 1, r * a.down, cx * a.down);
        out[int64_t(oy) * a.ow + ox] = static_cast<T>(v);
    }
}

void filtered_lrelu_launch(const FilteredLReLUArgs& a, const at::Tensor& x, const at::Tensor& b,
                           const at::Tensor& fu, const at::Tensor& fd, at::Tensor& y);
