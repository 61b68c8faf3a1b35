// CPU emulation of the three CUDA launchers, for the test suite on machines without a GPU. It
// compiles the very host code (checks, tiling, output allocation) and per-element/per-stage maths
// the kernels run; only the launch itself differs: loops instead of a grid, one "thread" per block,
// no barriers. Each launch's grid is checked against CUDA's limits first. Tensors on the meta
// device run the host code alone (shapes, no values): what the memory benchmark needs.
#define SG_NO_MODULE
#include "bias_act.cpp"
#include "filtered_lrelu.cpp"
#include "upfirdn2d.cpp"

#include <ATen/AccumulateType.h>
#include <cstring>
#include <vector>

#define SG_CPU_DISPATCH(x, name, ...) \
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, (x).scalar_type(), name, __VA_ARGS__)

// False for meta tensors (nothing to compute); raises for a launch CUDA would refuse.
static bool emulate(const at::Tensor& x, const SgLaunch& l) {
    const char* problem = sg_launch_problem(l);
    TORCH_CHECK(problem == nullptr, "cpu_check: invalid launch (", problem, "): grid ", l.blocks_x, " x ",
                l.blocks_y, ", ", l.threads, " threads");
    if (x.is_meta()) return false;
    TORCH_CHECK(x.is_cpu(), "cpu_check: CPU tensors only");
    return true;
}

void bias_act_launch(const BiasActArgs& a, const at::Tensor& x, const at::Tensor& b, const at::Tensor& dy,
                     const at::Tensor& dy2, at::Tensor& out) {
    if (!emulate(x, bias_act_grid(a))) return;
    SG_CPU_DISPATCH(x, "bias_act", [&] {
        using A = at::acc_type<scalar_t, true>;  // what the GPU accumulates in
        const A* pb = a.has_bias ? b.data_ptr<A>() : nullptr;
        const scalar_t* pdy = dy.numel() ? dy.data_ptr<scalar_t>() : nullptr;
        const scalar_t* pdy2 = dy2.numel() ? dy2.data_ptr<scalar_t>() : nullptr;
        for (int64_t i = 0; i < a.numel; ++i)
            bias_act_point<A, scalar_t>(a, x.data_ptr<scalar_t>(), pb, pdy, pdy2, out.data_ptr<scalar_t>(), i);
    });
}

void upfirdn2d_launch(const UpFirDn2dArgs& a, const at::Tensor& x, const at::Tensor& w, at::Tensor& y) {
    if (!emulate(x, upfirdn2d_grid(a))) return;
    SG_CPU_DISPATCH(x, "upfirdn2d", [&] {
        using A = at::acc_type<scalar_t, true>;
        for (int64_t i = 0; i < a.numel; ++i)
            upfirdn2d_point<A, scalar_t>(a, x.data_ptr<scalar_t>(), w.data_ptr<A>(), y.data_ptr<scalar_t>(), i);
    });
}

void filtered_lrelu_launch(const FilteredLReLUArgs& a, const at::Tensor& x, const at::Tensor& b,
                           const at::Tensor& fu, const at::Tensor& fd, at::Tensor& signs, at::Tensor& y) {
    if (!emulate(x, fl_grid(a, fl_elem(x.scalar_type())))) return;
    SG_CPU_DISPATCH(x, "filtered_lrelu", [&] {
        using A = at::acc_type<scalar_t, true>;
        // Poisoned shared memory: a stage reading what no stage wrote shows up as NaN (codes: as 0xFF,
        // which no byte of a sign tensor may hold).
        std::vector<A> smem(a.smem_elems, A(NAN));
        std::memset(smem.data() + a.off_c, 0xFF, (a.smem_elems - a.off_c) * sizeof(A));
        fl_load_filters<A>(a, fu.data_ptr<A>(), fd.data_ptr<A>(), smem.data(), 0, 1);
        uint8_t* ps = a.sign_mode != FL_SIGNS_NONE ? signs.data_ptr<uint8_t>() : nullptr;
        for (int tile = 0; tile < a.num_tiles; ++tile) {
            const FLTile t = fl_tile(a, tile);
            for (int64_t nc = 0; nc < a.nc; ++nc)
                for (int stage = FL_LOAD; stage < FL_NUM_STAGES; ++stage)
                    fl_stage<A, scalar_t>(a, stage, t, nc, x.data_ptr<scalar_t>(), a.has_bias ? b.data_ptr<A>() : nullptr,
                                          ps, y.data_ptr<scalar_t>(), smem.data(), 0, 1);
        }
    });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bias_act", &bias_act);
    m.def("upfirdn2d", &upfirdn2d);
    m.def("filtered_lrelu", &filtered_lrelu);
    m.def("filtered_lrelu_plan", &filtered_lrelu_plan);
}
