// GPU launcher of filtered_lrelu: blockIdx.x picks the output tile, blockIdx.y strides over the
// (n, c) planes; the stages of filtered_lrelu.h run with a barrier after each.
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include "filtered_lrelu.h"

template <typename A, typename T>
__global__ void filtered_lrelu_kernel(FilteredLReLUArgs a, const T* x, const A* b, const A* fu, const A* fd,
                                      uint8_t* signs, T* y) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    A* smem = reinterpret_cast<A*>(smem_raw);
    fl_load_filters<A>(a, fu, fd, smem, threadIdx.x, blockDim.x);
    const FLTile t = fl_tile(a, blockIdx.x);
    for (int64_t nc = blockIdx.y; nc < a.nc; nc += gridDim.y) {
        for (int stage = FL_LOAD; stage < FL_NUM_STAGES; ++stage) {
            __syncthreads();  // the previous stage's output (or the filters) is complete
            fl_stage<A, T>(a, stage, t, nc, x, b, signs, y, smem, threadIdx.x, blockDim.x);
        }
    }
}

void filtered_lrelu_launch(const FilteredLReLUArgs& a, const at::Tensor& x, const at::Tensor& b,
                           const at::Tensor& fu, const at::Tensor& fd, at::Tensor& signs, at::Tensor& y) {
    TORCH_CHECK(x.is_cuda(), "filtered_lrelu: the CUDA kernel needs CUDA tensors");
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "filtered_lrelu", [&] {
        using A = at::acc_type<scalar_t, true>;
        const SgLaunch l = fl_grid(a, sizeof(A));
        auto kernel = filtered_lrelu_kernel<A, scalar_t>;
        if (l.smem_bytes > 48 * 1024)  // above the default limit: opt in (the plan kept it under the device's)
            C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(l.smem_bytes)));
        kernel<<<dim3(unsigned(l.blocks_x), unsigned(l.blocks_y)), l.threads, size_t(l.smem_bytes),
                 c10::cuda::getCurrentCUDAStream()>>>(
            a, x.data_ptr<scalar_t>(), a.has_bias ? b.data_ptr<A>() : nullptr, fu.data_ptr<A>(), fd.data_ptr<A>(),
            a.sign_mode != FL_SIGNS_NONE ? signs.data_ptr<uint8_t>() : nullptr, y.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}
