// GPU launcher of upfirdn2d: one thread per output sample (grid-stride), polyphase taps only.
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "upfirdn2d.h"

template <typename A, typename T>
__global__ void upfirdn2d_kernel(UpFirDn2dArgs a, const T* x, const A* w, T* y) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.numel; i += int64_t(gridDim.x) * blockDim.x)
        upfirdn2d_point<A, T>(a, x, w, y, i);
}

void upfirdn2d_launch(const UpFirDn2dArgs& a, const at::Tensor& x, const at::Tensor& w, at::Tensor& y) {
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: the CUDA kernel needs CUDA tensors");
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    const SgLaunch l = upfirdn2d_grid(a);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d", [&] {
        using A = at::acc_type<scalar_t, true>;
        upfirdn2d_kernel<A, scalar_t><<<unsigned(l.blocks_x), l.threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            a, x.data_ptr<scalar_t>(), w.data_ptr<A>(), y.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}
