// Filtered leaky ReLU in one pass over shared memory, one output tile of one (n, c) plane per block:
//   load:  s = x + b over the input rows/columns the tile needs (zero outside x)
//   up:    m = correlate(zero-stuff(s, up), fu)    (separable fu: a horizontal then a vertical pass)
//          m = clamp(lrelu(m, slope) * gain)
//   down:  y = correlate(m, fd) decimated by down  (separable fd: a horizontal then a vertical pass)
// Filters arrive flipped and scaled by the caller, so this is plain correlation. Each stage is an
// SG_HD function over (thread id, thread count); the kernel runs them with a barrier in between,
// the CPU emulation runs them one after another with a single "thread".
//
// Signs. For the gradient the forward can write, per intermediate sample m that some output reads,
// a 2-bit code of what the activation did (FL_CODE_*), 4 codes per byte along x: a uint8 tensor
// [N, C, sgn_h, sgn_wb]. The backward is this same kernel run on dy with up and down swapped, the
// filters transposed, and the activation replaced by a multiplication read from those codes
// (FL_SIGNS_READ), so it needs neither x nor the pre-activation. Each byte has one writer: the
// tile whose output rows/columns, times `down`, start the byte's samples (tiles are cut so that
// column ranges fall on whole bytes), and it writes every byte it owns, so the tensor needs no
// clearing.
#pragma once
#include <ATen/core/Tensor.h>
#include "common.h"

enum { FL_LOAD = 0, FL_UP_A, FL_UP_B, FL_DOWN_A, FL_DOWN_B, FL_NUM_STAGES };
enum { FL_SIGNS_NONE = 0, FL_SIGNS_WRITE = 1, FL_SIGNS_READ = 2 };
// What the activation did to one sample, as its gradient sees it: cut by the clamp (or no output
// reads it), passed with gain, passed with gain * slope.
enum { FL_CODE_ZERO = 0, FL_CODE_POS = 1, FL_CODE_NEG = 2 };

struct FilteredLReLUArgs {
    int64_t nc;
    int c, ih, iw, oh, ow;
    int up, down, padx0, pady0;
    int fuh, fuw, fdh, fdw;      // filter extents (a separable filter of k taps: k x k)
    bool fu_sep, fd_sep, has_bias;
    double gain, slope, clamp;  // clamp < 0: none
    // Signs: mode, tensor extent (rows, bytes per row) and, when reading, where intermediate sample
    // (0, 0) of this launch sits in the tensor.
    int sign_mode;
    int sgn_h, sgn_wb;
    int sgn_oy, sgn_ox;
    // Tiling, chosen on the host (filtered_lrelu.cpp).
    int th, tw;                  // output tile
    int mh, mw;                  // intermediate tile: (t - 1) * down + fd
    int sh, sw;                  // input tile: enough rows/columns for any tile origin
    int tiles_x, num_tiles;
    // Shared-memory layout, offsets in elements of the accumulation type; codes: bytes from off_c.
    int off_fu, off_fd, off_s, off_h, off_m, off_d, off_c, smem_elems;
};

// Sign tensor extent for an output of oh x ow: the intermediate rows/columns some output reads.
inline int64_t fl_sign_rows(int64_t oh, int64_t down, int64_t fdh) { return (oh - 1) * down + fdh; }
inline int64_t fl_sign_bytes_per_row(int64_t ow, int64_t down, int64_t fdw) { return ((ow - 1) * down + fdw + 3) / 4; }

// One block per output tile (x) and per (n, c) plane up to 65535 (y; more planes loop).
inline SgLaunch fl_grid(const FilteredLReLUArgs& a, int elem_bytes) {
    return SgLaunch{a.num_tiles, a.nc < 65535 ? a.nc : 65535, 256, int64_t(a.smem_elems) * elem_bytes};
}

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

// The code at intermediate sample (gy, gx) of the sign tensor's plane nc; zero outside it.
SG_HD int fl_read_code(const FilteredLReLUArgs& a, const uint8_t* signs, int64_t nc, int64_t gy, int64_t gx) {
    if (gy < 0 || gy >= a.sgn_h || gx < 0 || gx >= int64_t(a.sgn_wb) * 4) return FL_CODE_ZERO;
    return (signs[(nc * a.sgn_h + gy) * a.sgn_wb + (gx >> 2)] >> ((gx & 3) * 2)) & 3;
}

// Write the bytes of plane nc that this tile owns, from the codes its activation stage left in
// shared memory; FL_CODE_ZERO for samples no output reads (with down > fd's extent some fall between
// the windows), which also makes the bytes independent of the tiling.
SG_HD void fl_write_signs(const FilteredLReLUArgs& a, const FLTile& t, int64_t nc, const uint8_t* codes,
                          uint8_t* signs, int tid, int nt) {
    const int gy0 = t.oy0 * a.down, gx0 = t.ox0 * a.down;
    const int gy1 = t.oy0 + a.th >= a.oh ? a.sgn_h : gy0 + a.th * a.down;
    const int bx0 = gx0 / 4, bx1 = t.ox0 + a.tw >= a.ow ? a.sgn_wb : (gx0 + a.tw * a.down) / 4;
    const int sgn_w = (a.ow - 1) * a.down + a.fdw;
    const int cols = bx1 - bx0;
    for (int i = tid; i < (gy1 - gy0) * cols; i += nt) {
        const int r = i / cols, bx = bx0 + i % cols;
        unsigned byte = 0;
        if ((gy0 + r) % a.down < a.fdh && r < a.mh) {  // (a read sample of an owned row is always computed)
            for (int k = 0; k < 4; ++k) {
                const int gx = bx * 4 + k, cx = gx - gx0;
                if (gx % a.down < a.fdw && gx < sgn_w && cx < a.mw) byte |= unsigned(codes[r * a.mw + cx]) << (2 * k);
            }
        }
        signs[(nc * a.sgn_h + gy0 + r) * a.sgn_wb + bx] = static_cast<uint8_t>(byte);
    }
}

template <typename A, typename T>
SG_HD void fl_stage(const FilteredLReLUArgs& a, int stage, const FLTile& t, int64_t nc, const T* x, const A* b,
                    uint8_t* signs, T* y, A* smem, int tid, int nt) {
    const A* fu = smem + a.off_fu;
    const A* fd = smem + a.off_fd;
    A* s = smem + a.off_s;
    A* h = smem + a.off_h;
    A* m = smem + a.off_m;
    A* d = smem + a.off_d;
    uint8_t* codes = reinterpret_cast<uint8_t*>(smem + a.off_c);
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
            if (a.sign_mode == FL_SIGNS_READ) {  // the activation's derivative, as the forward applied it
                const int code = fl_read_code(a, signs, nc, int64_t(t.oy0) * a.down + r + a.sgn_oy,
                                              int64_t(t.ox0) * a.down + cx + a.sgn_ox);
                v = code == FL_CODE_POS ? v * gain : code == FL_CODE_NEG ? (v * gain) * slope : A(0);
            } else {
                const bool pos = v > A(0);
                v = (pos ? v : v * slope) * gain;
                const bool cut = a.clamp >= 0 && (v > clamp || v < -clamp);  // torch.clamp passes |v| == clamp
                if (cut) v = v > clamp ? clamp : -clamp;
                if (a.sign_mode == FL_SIGNS_WRITE)
                    codes[i] = static_cast<uint8_t>(cut ? FL_CODE_ZERO : pos ? FL_CODE_POS : FL_CODE_NEG);
            }
            m[i] = v;
        }
        return;
    }
    if (stage == FL_DOWN_A && a.sign_mode == FL_SIGNS_WRITE) fl_write_signs(a, t, nc, codes, signs, tid, nt);
    if (a.fd_sep && stage == FL_DOWN_A) {  // horizontal: m[mh][mw] -> d[mh][tw]
        for (int i = tid; i < a.mh * a.tw; i += nt) {
            const int r = i / a.tw, cx = i % a.tw;
            d[i] = resample_point<A, A>(m + r * a.mw, a.mw, 1, a.mw, fd, 1, a.fdw, 1, 1, 0, cx * a.down);
        }
        return;
    }
    if (!a.fd_sep && stage == FL_DOWN_B) return;  // a 2-D fd: the output came in FL_DOWN_A
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
                           const at::Tensor& fu, const at::Tensor& fd, at::Tensor& signs, at::Tensor& y);
