// Host side of upfirdn2d: argument checks, output size, Python binding.
#include <torch/extension.h>
#include "upfirdn2d.h"

torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor w, int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                        int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1) {
    TORCH_CHECK(at::isFloatingType(x.scalar_type()) && x.dim() == 4, "upfirdn2d: x must be a floating [N, C, H, W]");
    const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    TORCH_CHECK(w.dim() == 2 && w.numel() > 0 && w.scalar_type() == acc && w.device() == x.device(),
                "upfirdn2d: w must be a 2-D float32 filter (float64 for float64 x) on x's device");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: factors must be >= 1");
    TORCH_CHECK(x.size(2) * upy < (1 << 30) && x.size(3) * upx < (1 << 30), "upfirdn2d: x too large");
    x = x.contiguous();
    w = w.contiguous();
    UpFirDn2dArgs a;
    a.ih = static_cast<int>(x.size(2));
    a.iw = static_cast<int>(x.size(3));
    a.fh = static_cast<int>(w.size(0));
    a.fw = static_cast<int>(w.size(1));
    a.upx = upx; a.upy = upy; a.downx = downx; a.downy = downy;
    a.padx0 = padx0; a.pady0 = pady0;
    const int64_t oh = (a.ih * upy + pady0 + pady1 - a.fh + downy) / downy;
    const int64_t ow = (a.iw * upx + padx0 + padx1 - a.fw + downx) / downx;
    TORCH_CHECK(oh >= 1 && ow >= 1, "upfirdn2d: output would be empty");
    a.oh = static_cast<int>(oh);
    a.ow = static_cast<int>(ow);
    torch::Tensor y = torch::empty({x.size(0), x.size(1), oh, ow}, x.options());
    a.numel = y.numel();
    if (a.numel > 0) upfirdn2d_launch(a, x, w, y);
    return y;
}

#ifndef SG_NO_MODULE
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("upfirdn2d", &upfirdn2d, "zero-stuff, pad, correlate with a 2-D filter, decimate");
}
#endif
