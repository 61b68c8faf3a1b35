// Host side of bias_act: argument checks, output allocation, Python binding.
#include <torch/extension.h>
#include "bias_act.h"

torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor dy, torch::Tensor dy2, int64_t mode,
                       int64_t dim, int64_t act, double alpha, double gain, double clamp) {
    TORCH_CHECK(at::isFloatingType(x.scalar_type()), "bias_act: x must be floating point");
    TORCH_CHECK(x.is_non_overlapping_and_dense(), "bias_act: x must be dense");
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    TORCH_CHECK(act >= ACT_LINEAR && act <= ACT_SWISH, "bias_act: unknown activation id");
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
    torch::Tensor out = torch::empty_like(x);  // same strides as x: x is dense
    // Empty in, empty out, in every mode: no grid to launch (and an empty dy is no missing dy).
    if (x.numel() == 0) return out;
    const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const bool has_bias = b.numel() > 0;
    if (has_bias) {
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must be [x.shape[dim]]");
        TORCH_CHECK(b.scalar_type() == acc && b.is_contiguous() && b.device() == x.device(),
                    "bias_act: b must be contiguous, on x's device, float32 (float64 for float64 x)");
    }
    for (const auto* t : {&dy, &dy2}) {
        if (t->numel() == 0) continue;
        TORCH_CHECK(t->sizes() == x.sizes() && t->strides() == x.strides() && t->scalar_type() == x.scalar_type()
                        && t->device() == x.device(),
                    "bias_act: dy/dy2 must match x in shape, strides, dtype and device");
    }
    TORCH_CHECK(mode == 0 || dy.numel() > 0, "bias_act: modes 1 and 2 need dy");
    TORCH_CHECK(mode != 2 || dy2.numel() > 0, "bias_act: mode 2 needs dy2");

    BiasActArgs a;
    a.numel = x.numel();
    // A size-1 dimension may carry any stride, 0 included (dense all the same); the bias index
    // (i / stride) % 1 is 0 whatever the stride, so take 1 and never divide by 0.
    a.stride_dim = x.size(dim) == 1 ? 1 : x.stride(dim);
    a.size_dim = static_cast<int>(x.size(dim));
    a.mode = static_cast<int>(mode);
    a.act = static_cast<int>(act);
    a.alpha = alpha;
    a.gain = gain;
    a.clamp = clamp;
    a.has_bias = has_bias;
    bias_act_launch(a, x, b, dy, dy2, out);
    return out;
}

#ifndef SG_NO_MODULE
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act, "bias + activation + gain + clamp (mode 0), or its derivatives (modes 1, 2)");
}
#endif
