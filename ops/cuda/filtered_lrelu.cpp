// Host side of filtered_lrelu: argument checks, tiling and shared-memory layout, Python binding.
#include <torch/extension.h>
#include <algorithm>
#include <numeric>
#include <vector>
#include "filtered_lrelu.h"

// Shared memory one tile needs at output tile th x tw, in elements (and fills the layout in `a`).
static int fl_layout(FilteredLReLUArgs& a, int th, int tw, int elem) {
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
    a.off_c = a.off_d + (a.fd_sep ? a.mh * a.tw : 0);
    const int code_bytes = a.sign_mode == FL_SIGNS_WRITE ? a.mh * a.mw : 0;
    a.smem_elems = a.off_c + (code_bytes + elem - 1) / elem;
    a.tiles_x = (a.ow + tw - 1) / tw;
    a.num_tiles = a.tiles_x * ((a.oh + th - 1) / th);
    return a.smem_elems;
}

// The largest square-ish output tile (at most 32 x 32, no larger than the output) whose working set
// fits in max_smem_bytes: bigger tiles re-read fewer halo samples. When signs are written and the
// row is cut into several tiles, a tile's width times `down` is a multiple of 4, so that each byte of
// the sign tensor belongs to one tile. False when not even the smallest tile fits.
static bool fl_plan(FilteredLReLUArgs& a, int elem, int64_t max_smem_bytes) {
    const int align = a.sign_mode == FL_SIGNS_WRITE ? 4 / std::gcd(a.down, 4) : 1;
    const auto width = [&](int w) { return w >= a.ow ? w : std::max(align, w / align * align); };
    int th = std::min(32, a.oh), tw = width(std::min(32, a.ow));
    const auto bytes = [&]() { return int64_t(fl_layout(a, th, tw, elem)) * elem; };
    while (bytes() > max_smem_bytes && (th > 1 || tw > width(1))) {
        if (tw >= th && tw > width(1)) tw = width((tw + 1) / 2); else th = (th + 1) / 2;
    }
    return bytes() <= max_smem_bytes;
}

// Everything but the tiling, from the shapes: x [N, C, H, W] and the filters' shapes.
static FilteredLReLUArgs fl_args(at::IntArrayRef x, at::IntArrayRef fu, at::IntArrayRef fd, int64_t up, int64_t down,
                                 int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1, int64_t sign_mode) {
    TORCH_CHECK(x.size() == 4, "filtered_lrelu: x must be [N, C, H, W]");
    TORCH_CHECK((fu.size() == 1 || fu.size() == 2) && (fd.size() == 1 || fd.size() == 2),
                "filtered_lrelu: fu/fd must be 1-D (separable) or 2-D");
    TORCH_CHECK(up >= 1 && down >= 1, "filtered_lrelu: up and down must be >= 1");
    TORCH_CHECK(sign_mode >= FL_SIGNS_NONE && sign_mode <= FL_SIGNS_READ, "filtered_lrelu: unknown sign mode");
    TORCH_CHECK(x[2] * up < (1 << 28) && x[3] * up < (1 << 28), "filtered_lrelu: x too large");
    FilteredLReLUArgs a{};
    a.nc = x[0] * x[1];
    a.c = static_cast<int>(x[1]);
    a.ih = static_cast<int>(x[2]);
    a.iw = static_cast<int>(x[3]);
    a.up = up; a.down = down; a.padx0 = padx0; a.pady0 = pady0;
    a.fu_sep = fu.size() == 1;
    a.fd_sep = fd.size() == 1;
    a.fuh = static_cast<int>(fu[0]);
    a.fuw = static_cast<int>(fu.back());
    a.fdh = static_cast<int>(fd[0]);
    a.fdw = static_cast<int>(fd.back());
    a.sign_mode = static_cast<int>(sign_mode);
    const int64_t oh = (a.ih * up + pady0 + pady1 - (a.fuh - 1) - (a.fdh - 1) + (down - 1)) / down;
    const int64_t ow = (a.iw * up + padx0 + padx1 - (a.fuw - 1) - (a.fdw - 1) + (down - 1)) / down;
    TORCH_CHECK(oh >= 1 && ow >= 1, "filtered_lrelu: output would be empty");
    a.oh = static_cast<int>(oh);
    a.ow = static_cast<int>(ow);
    a.sgn_h = static_cast<int>(fl_sign_rows(oh, down, a.fdh));
    a.sgn_wb = static_cast<int>(fl_sign_bytes_per_row(ow, down, a.fdw));
    return a;
}

static int fl_elem(at::ScalarType t) { return t == at::kDouble ? 8 : 4; }  // accumulation dtype's size

// The forward's sign tensor; with sign_mode FL_SIGNS_WRITE, `signs` must be [N, C, sgn_h, sgn_wb]
// uint8 (see filtered_lrelu_plan); with FL_SIGNS_READ, any such tensor a forward wrote, read with
// intermediate sample (0, 0) of this launch at (sign_oy, sign_ox). The bias and the clamp act only
// in the other modes: reading signs makes the op linear in x.
torch::Tensor filtered_lrelu(torch::Tensor x, torch::Tensor b, torch::Tensor fu, torch::Tensor fd, torch::Tensor signs,
                             int64_t up, int64_t down, int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1,
                             double gain, double slope, double clamp, int64_t sign_mode, int64_t sign_oy,
                             int64_t sign_ox, int64_t max_smem_bytes) {
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
    FilteredLReLUArgs a = fl_args(x.sizes(), fu.sizes(), fd.sizes(), up, down, padx0, padx1, pady0, pady1, sign_mode);
    a.has_bias = has_bias;
    a.gain = gain; a.slope = slope; a.clamp = clamp;
    if (sign_mode != FL_SIGNS_NONE) {
        TORCH_CHECK(signs.scalar_type() == at::kByte && signs.dim() == 4 && signs.is_contiguous()
                        && signs.device() == x.device() && signs.size(0) == x.size(0) && signs.size(1) == x.size(1),
                    "filtered_lrelu: signs must be a contiguous uint8 [N, C, rows, bytes] on x's device");
        if (sign_mode == FL_SIGNS_WRITE)
            TORCH_CHECK(signs.size(2) == a.sgn_h && signs.size(3) == a.sgn_wb,
                        "filtered_lrelu: signs to write must be [N, C, ", a.sgn_h, ", ", a.sgn_wb, "]");
        TORCH_CHECK(signs.size(2) < (1 << 28) && signs.size(3) < (1 << 28), "filtered_lrelu: signs too large");
        a.sgn_h = static_cast<int>(signs.size(2));
        a.sgn_wb = static_cast<int>(signs.size(3));
        a.sgn_oy = static_cast<int>(sign_oy);
        a.sgn_ox = static_cast<int>(sign_ox);
    }
    TORCH_CHECK(fl_plan(a, fl_elem(acc), max_smem_bytes),
                "filtered_lrelu: filters too large for ", max_smem_bytes, " bytes of shared memory");
    x = x.contiguous();
    fu = fu.contiguous();
    fd = fd.contiguous();
    b = b.contiguous();
    torch::Tensor y = torch::empty({x.size(0), x.size(1), a.oh, a.ow}, x.options());
    if (a.nc > 0) filtered_lrelu_launch(a, x, b, fu, fd, signs, y);  // empty in, empty out: no grid
    return y;
}

// The plan a call with these shapes would use, without running it: {tile height, tile width,
// shared memory bytes, output height, output width, sign rows, sign bytes per row}, or {} when not
// even a 1 x 1 tile fits in max_smem_bytes (the caller then takes another path).
std::vector<int64_t> filtered_lrelu_plan(std::vector<int64_t> x, std::vector<int64_t> fu, std::vector<int64_t> fd,
                                         int64_t up, int64_t down, int64_t padx0, int64_t padx1, int64_t pady0,
                                         int64_t pady1, int64_t sign_mode, int64_t elem_bytes, int64_t max_smem_bytes) {
    FilteredLReLUArgs a = fl_args(x, fu, fd, up, down, padx0, padx1, pady0, pady1, sign_mode);
    if (!fl_plan(a, static_cast<int>(elem_bytes), max_smem_bytes)) return {};
    return {a.th, a.tw, int64_t(a.smem_elems) * elem_bytes, a.oh, a.ow, a.sgn_h, a.sgn_wb};
}

#ifndef SG_NO_MODULE
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("filtered_lrelu", &filtered_lrelu, "bias, upsample, leaky ReLU with gain and clamp, downsample: one pass");
    m.def("filtered_lrelu_plan", &filtered_lrelu_plan, "tile and shared memory a call would use, without running it");
}
#endif
