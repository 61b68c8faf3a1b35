// Host side of filtered_lrelu: argument checks, tiling and shared-memory layout, Python binding.
#include <torch/extension.h>
#include "filtered_lrelu.h"

// Shared memory one tile needs at output tile th x tw, in elements (and fills the layout in `a`).
static int fl_layout(FilteredLReLUArgs& a, int th, int tw) {
    a.th = th;
    a.tw = tw;
    a.mh = (th - 1) * a.down + a.fdh;
    a.mw = (tw - 1) * a.down + a.fdw;
    a.sh = (a.up - 1 + a.mh + a.fuh - 2) / a.up + 1;
    a.sw = (a.up - 1 + a.mw + a.fuw - 2) / a.up + 1;
    a.off_fu = 0;
    a.off_fd = a.off_fu + (a.fu_sep ? a.fuw : a.fuh * a.fuw);
    a.off_s = a.off_fd + (a.fd_sep ? a.fdw : a.fdh * a.fdw);
    a.off_h = a.off_s + a.sh * a.sw;
    a.off_m = a.off_h + (a.fu_sep ? a.sh * a.mw : 0);
    a.off_d = a.off_m + a.mh * a.mw;
    a.smem_elems = a.off_d + (a.fd_sep ? a.mh * a.tw : 0);
    a.tiles_x = (a.ow + tw - 1) / tw;
    a.num_tiles = a.tiles_x * ((a.oh + th - 1) / th);
    return a.smem_elems;
}

torch::Tensor filtered_lrelu(torch::Tensor x, torch::Tensor b, torch::Tensor fu, torch::Tensor fd, int64_t up,
                             int64_t down, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, double gain,
                             double slope, double clamp, int64_t max_smem_bytes) {
    TORCH_CHECK(at::isFloatingType(x.scalar_type()) && x.dim() == 4, "filtered_lrelu: x must be a floating [N, C, H, W]");
    const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    for (const auto* f : {&fu, &fd})
        TORCH_CHECK((f->dim() == 1 || f->dim() == 2) && f->numel() > 0 && f->scalar_type() == acc
                        && f->device() == x.device(),
                    "filtered_lrelu: fu/fd must be 1-D (separable) or 2-D float32 filters (float64 for float64 x) "
                    "on x's device");
    const bool has_bias = b.numel() > 0;
    if (has_bias)
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(1) && b.scalar_type() == acc && b.device() == x.device(),
                    "filtered_lrelu: b must be [C] in the accumulation dtype on x's device");
    TORCH_CHECK(up >= 1 && down >= 1, "filtered_lrelu: up and down must be >= 1");
    TORCH_CHECK(x.size(2) * up < (1 << 28) && x.size(3) * up < (1 << 28), "filtered_lrelu: x too large");
    x = x.contiguous();
    fu = fu.contiguous();
    fd = fd.contiguous();
    b = b.contiguous();

    FilteredLReLUArgs a;
    a.nc = x.size(0) * x.size(1);
    a.c = static_cast<int>(x.size(1));
    a.ih = static_cast<int>(x.size(2));
    a.iw = static_cast<int>(x.size(3));
    a.up = up; a.down = down; a.padx0 = padx0; a.pady0 = pady0;
    a.fu_sep = fu.dim() == 1;
    a.fd_sep = fd.dim() == 1;
    a.fuh = static_cast<int>(fu.size(0));
    a.fuw = static_cast<int>(fu.size(-1));
    a.fdh = static_cast<int>(fd.size(0));
    a.fdw = static_cast<int>(fd.size(-1));
    a.has_bias = has_bias;
    a.gain = gain; a.slope = slope; a.clamp = clamp;
    const int64_t oh = (a.ih * up + pady0 + pady1 - (a.fuh - 1) - (a.fdh - 1) + (down - 1)) / down;
    const int64_t ow = (a.iw * up + padx0 + padx1 - (a.fuw - 1) - (a.fdw - 1) + (down - 1)) / down;
    TORCH_CHECK(oh >= 1 && ow >= 1, "filtered_lrelu: output would be empty");
    a.oh = static_cast<int>(oh);
    a.ow = static_cast<int>(ow);

    // Largest square-ish output tile (at most 32 x 32, no larger than the output) whose working
    // set fits in shared memory: bigger tiles re-read fewer halo samples.
    const int elem = static_cast<int>(at::elementSize(acc));
    int th = static_cast<int>(std::min<int64_t>(32, oh)), tw = static_cast<int>(std::min<int64_t>(32, ow));
    while (int64_t(fl_layout(a, th, tw)) * elem > max_smem_bytes && (th > 1 || tw > 1)) {
        if (tw >= th) tw = (tw + 1) / 2; else th = (th + 1) / 2;
    }
    TORCH_CHECK(int64_t(a.smem_elems) * elem <= max_smem_bytes,
                "filtered_lrelu: filters too large for shared memory (", a.smem_elems * elem, " bytes at a 1x1 tile)");

    torch::Tensor y = torch::empty({x.size(0), x.size(1), oh, ow}, x.options());
    filtered_lrelu_launch(a, x, b, fu, fd, y);
    return y;
}

#ifndef SG_NO_MODULE
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("filtered_lrelu", &filtered_lrelu, "bias, upsample, leaky ReLU with gain and clamp, downsample: one pass");
}
#endif
