// Bias + activation + gain + clamp, and its first and second derivatives.
//   mode 0: y   = clamp(f(x + b) * gain)
//   mode 1: dx  = dy * f'(x + b) * gain * [inside clamp]
//   mode 2: ddx = dy * dy2 * f''(x + b) * gain * [inside clamp]
// Mode 1 is the gradient; the gradient of mode 1 is mode 1 again (w.r.t. dy) and mode 2 (w.r.t. x).
#pragma once
#include <ATen/core/Tensor.h>
#include <algorithm>
#include "common.h"

enum SgAct { ACT_LINEAR = 0, ACT_RELU, ACT_LRELU, ACT_TANH, ACT_SIGMOID, ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SWISH };

struct BiasActArgs {
    int64_t numel;
    int64_t stride_dim;  // memory stride of the bias dimension (x is dense, any layout); >= 1
    int size_dim;
    int mode, act;
    double alpha, gain, clamp;  // clamp < 0: none
    bool has_bias;
};

// torch's elu/selu use alpha 1 and the SELU constants; softplus switches to identity above 20.
#define SG_SELU_SCALE 1.0507009873554804934193349852946
#define SG_SELU_ALPHA 1.6732632423543772848170429916717

template <typename A> SG_HD A sg_sigmoid(A x) { return A(1) / (A(1) + sg_exp(-x)); }

template <typename A> SG_HD A act_f(int act, A x, A alpha) {
    switch (act) {
        case ACT_RELU: return x > A(0) ? x : A(0);
        case ACT_LRELU: return x > A(0) ? x : x * alpha;
        case ACT_TANH: return sg_tanh(x);
        case ACT_SIGMOID: return sg_sigmoid(x);
        case ACT_ELU: return x > A(0) ? x : sg_exp(x) - A(1);
        case ACT_SELU: return x > A(0) ? A(SG_SELU_SCALE) * x : A(SG_SELU_SCALE * SG_SELU_ALPHA) * (sg_exp(x) - A(1));
        case ACT_SOFTPLUS: return x > A(20) ? x : sg_log1p(sg_exp(x));
        case ACT_SWISH: return x * sg_sigmoid(x);
        default: return x;
    }
}

// Values at the kinks follow torch's own backward formulas (relu: 0 at 0; lrelu, elu, selu: the
// negative branch at 0), so gradients agree with the reference path bit for bit in intent.
template <typename A> SG_HD A act_d1(int act, A x, A alpha) {
    switch (act) {
        case ACT_RELU: return x > A(0) ? A(1) : A(0);
        case ACT_LRELU: return x > A(0) ? A(1) : alpha;
        case ACT_TANH: { A y = sg_tanh(x); return A(1) - y * y; }
        case ACT_SIGMOID: { A s = sg_sigmoid(x); return s * (A(1) - s); }
        case ACT_ELU: return x > A(0) ? A(1) : sg_exp(x);
        case ACT_SELU: return x > A(0) ? A(SG_SELU_SCALE) : A(SG_SELU_SCALE * SG_SELU_ALPHA) * sg_exp(x);
        case ACT_SOFTPLUS: return x > A(20) ? A(1) : sg_sigmoid(x);
        case ACT_SWISH: { A s = sg_sigmoid(x); return s + x * s * (A(1) - s); }
        default: return A(1);
    }
}

template <typename A> SG_HD A act_d2(int act, A x, A alpha) {
    switch (act) {
        case ACT_TANH: { A y = sg_tanh(x); return A(-2) * y * (A(1) - y * y); }
        case ACT_SIGMOID: { A s = sg_sigmoid(x); return s * (A(1) - s) * (A(1) - A(2) * s); }
        case ACT_ELU: return x > A(0) ? A(0) : sg_exp(x);
        case ACT_SELU: return x > A(0) ? A(0) : A(SG_SELU_SCALE * SG_SELU_ALPHA) * sg_exp(x);
        case ACT_SOFTPLUS: { if (x > A(20)) return A(0); A s = sg_sigmoid(x); return s * (A(1) - s); }
        case ACT_SWISH: { A s = sg_sigmoid(x); return s * (A(1) - s) * (A(2) + x * (A(1) - A(2) * s)); }
        default: return A(0);  // piecewise linear
    }
}

// Element i (memory offset) of the op. b, when present, is in the accumulation type A.
template <typename A, typename T>
SG_HD void bias_act_point(const BiasActArgs& a, const T* x, const A* b, const T* dy, const T* dy2, T* out,
                          int64_t i) {
    A v = static_cast<A>(x[i]);
    if (a.has_bias) v += b[(i / a.stride_dim) % a.size_dim];
    const A alpha = A(a.alpha), gain = A(a.gain), clamp = A(a.clamp);
    if (a.mode == 0) {
        A y = act_f(a.act, v, alpha) * gain;
        if (a.clamp >= 0) y = y > clamp ? clamp : (y < -clamp ? -clamp : y);
        out[i] = static_cast<T>(y);
        return;
    }
    // torch.clamp passes the gradient where -clamp <= y <= clamp.
    if (a.clamp >= 0) {
        A y = act_f(a.act, v, alpha) * gain;
        if (y > clamp || y < -clamp) { out[i] = static_cast<T>(A(0)); return; }
    }
    A g = static_cast<A>(dy[i]) * gain;
    g *= (a.mode == 1) ? act_d1(a.act, v, alpha) : act_d2(a.act, v, alpha) * static_cast<A>(dy2[i]);
    out[i] = static_cast<T>(g);
}

// One thread per element, grid-stride beyond 65536 blocks. Never called with numel == 0.
inline SgLaunch bias_act_grid(const BiasActArgs& a) {
    const int threads = 256;
    return SgLaunch{std::min<int64_t>((a.numel + threads - 1) / threads, 65536), 1, threads, 0};
}

// Runs bias_act_point over every element: bias_act.cu on the GPU, cpu_check.cpp on the CPU.
void bias_act_launch(const BiasActArgs& a, const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy,
                     const at::Tensor& dy2, at::Tensor& out);
