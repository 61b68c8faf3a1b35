// GPU launcher of bias_act: a grid-stride loop of bias_act_point (bias_act.h).
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "bias_act.h"

template <typename A, typename T>
__global__ void bias_act_kernel(BiasActArgs a, const T* x, const A* b, const T* dy, const T* dy2, T* out) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.numel; i += int64_t(gridDim.x) * blockDim.x)
        bias_act_point<A, T>(a, x, b, dy, dy2, out, i);
}

void bias_act_launch(const BiasActArgs& a, const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy,
                     const at::Tensor& dy2, at::Tensor& out) {
    TORCH_CHECK(x.is_cuda(), "bias_act: the CUDA kernel needs CUDA tensors");
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    const SgLaunch l = bias_act_grid(a);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act", [&] {
        using A = at::acc_type<scalar_t, true>;
        bias_act_kernel<A, scalar_t><<<unsigned(l.blocks_x), l.threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            a, x.data_ptr<scalar_t>(), a.has_bias ? b.data_ptr<A>() : nullptr,
            dy.numel() ? dy.data_ptr<scalar_t>() : nullptr, dy2.numel() ? dy2.data_ptr<scalar_t>() : nullptr,
            out.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}
