// upfirdn2d with a 2-D correlation filter w[fh][fw] (already flipped and scaled by the caller;
// separable filters are applied as two passes of this op):
//   y[nc][oy][ox] = sum_{ky,kx} w[ky][kx] * xup[oy*downy + ky - pady0][ox*downx + kx - padx0]
// where xup is x zero-stuffed by (upx, upy). Every output sample is one resample_point.
#pragma once
#include <ATen/core/Tensor.h>
#include <algorithm>
#include "common.h"

struct UpFirDn2dArgs {
    int64_t numel;  // nc * oh * ow
    int ih, iw, oh, ow, fh, fw;
    int upx, upy, downx, downy, padx0, pady0;
};

template <typename A, typename T>
SG_HD void upfirdn2d_point(const UpFirDn2dArgs& a, const T* x, const A* w, T* y, int64_t i) {
    const int ox = static_cast<int>(i % a.ow);
    const int64_t t = i / a.ow;
    const int oy = static_cast<int>(t % a.oh);
    const int64_t nc = t / a.oh;
    const T* plane = x + nc * a.ih * a.iw;
    y[i] = static_cast<T>(resample_point<A, T>(plane, a.iw, a.ih, a.iw, w, a.fh, a.fw, a.upx, a.upy,
                                                oy * a.downy - a.pady0, ox * a.downx - a.padx0));
}

// One thread per output sample, grid-stride beyond 65536 blocks. Never called with numel == 0.
inline SgLaunch upfirdn2d_grid(const UpFirDn2dArgs& a) {
    const int threads = 256;
    return SgLaunch{std::min<int64_t>((a.numel + threads - 1) / threads, 65536), 1, threads, 0};
}

void upfirdn2d_launch(const UpFirDn2dArgs& a, const at::Tensor& x, const at::Tensor& w, at::Tensor& y);
