// Shared by every fused op. The per-element maths lives in SG_HD functions so that the same code
// runs in the CUDA kernels and in the CPU emulation (cpu_check.cpp) the test suite checks it with.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SG_HD __host__ __device__ __forceinline__
#else
#define SG_HD inline
#endif

// exp/tanh/log1p for float and double under one name, on host and device alike.
SG_HD float sg_exp(float x) { return expf(x); }
SG_HD double sg_exp(double x) { return exp(x); }
SG_HD float sg_tanh(float x) { return tanhf(x); }
SG_HD double sg_tanh(double x) { return tanh(x); }
SG_HD float sg_log1p(float x) { return log1pf(x); }
SG_HD double sg_log1p(double x) { return log1p(x); }

// The grid a launcher starts: blocks along x and y, threads per block, dynamic shared memory. Each
// launcher computes it with the host code the CPU emulation shares, and the emulation checks it
// against CUDA's limits, so an invalid launch (an empty grid, too many blocks in y) fails there too.
struct SgLaunch {
    int64_t blocks_x, blocks_y;
    int threads;
    int64_t smem_bytes;
};

// Why CUDA would refuse the launch ("invalid configuration argument"), or nullptr.
inline const char* sg_launch_problem(const SgLaunch& l) {
    if (l.blocks_x < 1 || l.blocks_x > 2147483647LL) return "grid x must be in [1, 2^31 - 1]";
    if (l.blocks_y < 1 || l.blocks_y > 65535) return "grid y must be in [1, 65535]";
    if (l.threads < 1 || l.threads > 1024) return "threads per block must be in [1, 1024]";
    if (l.smem_bytes < 0) return "negative shared memory";
    return nullptr;
}

// Floor division for a possibly negative numerator and a positive divisor.
SG_HD int floor_div(int a, int b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }

// Smallest tap index k >= 0 with p + k >= 0 and (p + k) divisible by `up`: the first tap of a
// window starting at p that lands on a real (not zero-stuffed) sample.
SG_HD int first_tap(int p, int up) {
    int k = p < 0 ? -p : 0;
    int r = (p + k) % up;
    return r ? k + up - r : k;
}

// One output sample of "zero-stuff src by (upx, upy), then correlate with w[fh][fw]", the window
// starting at (py, px) in upsampled coordinates. src is sh x sw with row stride ss; taps that fall
// on stuffed zeros or outside src are skipped, which is where the polyphase saving comes from.
template <typename A, typename T>
SG_HD A resample_point(const T* src, int64_t ss, int sh, int sw, const A* w, int fh, int fw,
                       int upx, int upy, int py, int px) {
    A acc = 0;
    const int kx0 = first_tap(px, upx);
    for (int ky = first_tap(py, upy); ky < fh; ky += upy) {
        const int iy = (py + ky) / upy;
        if (iy >= sh) break;
        const T* row = src + iy * ss;
        const A* wrow = w + ky * fw;
        for (int kx = kx0; kx < fw; kx += upx) {
            const int ix = (px + kx) / upx;
            if (ix >= sw) break;
            acc += wrow[kx] * static_cast<A>(row[ix]);
        }
    }
    return acc;
}
