// 3x3 convolution (stride 1, padding 1) on the CPU by Winograd's minimal filtering F(m x m, 3 x 3),
// forward only: channels-last input, the weight pre-transformed by the caller (U = G g G^T, in
// float64, once per weight).
//
// An m x m output tile needs a = m + 2 input rows and columns. Per tile and channel,
//     V = B^T d B          (a x a, additions only for m = 2)
//     M_p = sum_c V_{p,c} U_{p,c,k}     one small GEMM per point p of the a x a grid
//     y = A^T M A          (m x m)
// F(2x2, 3x3) spends 16 multiplies per 4 outputs instead of 36. Its transforms use only 0, +-1
// and 1/2 (the latter inside U, computed exactly), so its rounding stays close to a direct
// convolution's. F(4x4, 3x3) would save more, but its points +-2, +-1/2 cost ~10x the error of a
// direct float32 convolution (1.4e-5 relative, measured): too far from NVIDIA's numbers.
//
// Tiles are processed in blocks small enough that a block's V and M stay in the core's cache:
// input transform -> GEMMs -> output transform, without a pass over memory in between. The
// per-sample style scale (modulated convolution's input side) rides on V, the demodulation scale
// and the noise on the output transform.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;                    // floats per vector register
constexpr int KV = 4, TR = 6;             // micro-kernel: TR tiles x KV vectors of outputs (24 accumulators)
#else
constexpr int VW = 8;
constexpr int KV = 2, TR = 6;
#endif
typedef float vec __attribute__((vector_size(VW * 4)));
typedef float vec_u __attribute__((vector_size(VW * 4), aligned(4)));  // unaligned access

inline vec load(const float* p) { return *reinterpret_cast<const vec_u*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_u*>(p) = v; }

template <int M> struct Tr;
template <> struct Tr<2> {
    static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
    static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

// out[i] = sum_j T[i][j] in[j] for a constant matrix: zero taps vanish at compile time.
template <int R, int C>
inline void apply(const float (&T)[R][C], const vec* in, int in_stride, vec* out, int out_stride) {
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
        vec acc = {};
#pragma GCC unroll 8
        for (int j = 0; j < C; ++j) {
            if (T[i][j] == 1.f) acc += in[j * in_stride];
            else if (T[i][j] == -1.f) acc -= in[j * in_stride];
            else if (T[i][j] != 0.f) acc += T[i][j] * in[j * in_stride];
        }
        out[i * out_stride] = acc;
    }
}

struct Shape {
    int64_t n, h, w, c, k, th, tw;  // th x tw tiles per sample
};

// V[p][t][c] for tiles t0 .. t0+nt of the whole batch (tile index = (n * th + ty) * tw + tx).
template <int M>
void input_transform(const Shape& s, const float* x, const float* scale, int64_t t0, int nt, int ntp, float* V) {
    constexpr int A = M + 2;
    vec d[A * A], tmp[A * A], v[A * A];
    for (int t = 0; t < ntp; ++t) {
        if (t >= nt) {  // padding rows of the last micro-kernel block
            for (int p = 0; p < A * A; ++p) std::memset(V + (int64_t(p) * ntp + t) * s.c, 0, s.c * 4);
            continue;
        }
        const int64_t ti = t0 + t, n = ti / (s.th * s.tw), r = ti % (s.th * s.tw);
        const int64_t y0 = (r / s.tw) * M - 1, x0 = (r % s.tw) * M - 1;
        const float* xn = x + n * s.h * s.w * s.c;
        for (int64_t c = 0; c < s.c; c += VW) {
            for (int i = 0; i < A; ++i)
                for (int j = 0; j < A; ++j) {
                    const int64_t yy = y0 + i, xx = x0 + j;
                    d[i * A + j] = (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w) ? load(xn + (yy * s.w + xx) * s.c + c)
                                                                                 : vec{};
                }
            for (int j = 0; j < A; ++j) apply(Tr<M>::BT, d + j, A, tmp + j, A);      // columns: B^T d
            for (int i = 0; i < A; ++i) apply(Tr<M>::BT, tmp + i * A, 1, v + i * A, 1);  // rows: (B^T d) B
            const vec sc = scale ? load(scale + n * s.c + c) : vec{} + 1.f;
            for (int p = 0; p < A * A; ++p) store(V + (int64_t(p) * ntp + t) * s.c + c, scale ? v[p] * sc : v[p]);
        }
    }
}

// M[t][k0 .. k0 + NKV*VW] = sum_c V[t][c] U[c][k] for TR tiles, U one packed panel [C][NKV*VW]: its
// vectors are loaded once per c and reused by every tile, each V value is broadcast once and reused
// by every vector.
template <int NKV>
inline void micro(const float* V, const float* U, float* Mo, int64_t C, int64_t K) {
    vec acc[TR][NKV] = {};
    for (int64_t c = 0; c < C; ++c) {
        vec u[NKV];
#pragma GCC unroll 4
        for (int j = 0; j < NKV; ++j) u[j] = load(U + c * NKV * VW + j * VW);
#pragma GCC unroll 8
        for (int r = 0; r < TR; ++r) {
            const float b = V[r * C + c];
#pragma GCC unroll 4
            for (int j = 0; j < NKV; ++j) acc[r][j] += b * u[j];
        }
    }
    for (int r = 0; r < TR; ++r)
        for (int j = 0; j < NKV; ++j) store(Mo + r * K + j * VW, acc[r][j]);
}

void gemm(const float* V, const float* U, float* Mo, int ntp, int64_t C, int64_t K) {
    for (int64_t k0 = 0; k0 < K; k0 += KV * VW) {
        const int nkv = int(std::min<int64_t>(KV, (K - k0) / VW));
        for (int t = 0; t < ntp; t += TR) {
            const float* v = V + t * C;
            float* m = Mo + t * K + k0;
            const float* u = U + k0 * C;  // panels of width KV * VW (the last one narrower), each [C][width]
            switch (nkv) {
                case 4: if constexpr (KV >= 4) micro<4>(v, u, m, C, K); break;
                case 3: if constexpr (KV >= 3) micro<3>(v, u, m, C, K); break;
                case 2: micro<2>(v, u, m, C, K); break;
                default: micro<1>(v, u, m, C, K);
            }
        }
    }
}

template <int M>
void output_transform(const Shape& s, const float* Mb, const float* scale, const float* noise, int64_t noise_n,
                      int64_t t0, int nt, int ntp, float* y) {
    constexpr int A = M + 2;
    vec m[A * A], tmp[M * A], o[M * M];
    for (int t = 0; t < nt; ++t) {
        const int64_t ti = t0 + t, n = ti / (s.th * s.tw), r = ti % (s.th * s.tw);
        const int64_t y0 = (r / s.tw) * M, x0 = (r % s.tw) * M;
        float* yn = y + n * s.h * s.w * s.k;
        const float* nz = noise ? noise + (noise_n > 1 ? n : 0) * s.h * s.w : nullptr;
        for (int64_t k = 0; k < s.k; k += VW) {
            for (int p = 0; p < A * A; ++p) m[p] = load(Mb + (int64_t(p) * ntp + t) * s.k + k);
            for (int j = 0; j < A; ++j) apply(Tr<M>::AT, m + j, A, tmp + j, A);      // A^T M: M x A
            for (int i = 0; i < M; ++i) apply(Tr<M>::AT, tmp + i * A, 1, o + i * M, 1);  // (A^T M) A: M x M
            const vec sc = scale ? load(scale + n * s.k + k) : vec{};
            for (int i = 0; i < M; ++i)
                for (int j = 0; j < M; ++j) {
                    const int64_t yy = y0 + i, xx = x0 + j;
                    if (yy >= s.h || xx >= s.w) continue;
                    vec v = scale ? o[i * M + j] * sc : o[i * M + j];
                    if (nz) v += nz[yy * s.w + xx];
                    store(yn + (yy * s.w + xx) * s.k + k, v);
                }
        }
    }
}

template <int M>
void run(const Shape& s, const float* x, const float* U, const float* in_scale, const float* out_scale,
         const float* noise, int64_t noise_n, float* y, int block_tiles) {
    constexpr int P = (M + 2) * (M + 2);
    const int64_t tiles = s.n * s.th * s.tw;
    const int64_t blocks = (tiles + block_tiles - 1) / block_tiles;
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
        // Per-thread scratch kept between calls: fresh buffers of this size would page-fault every call.
        thread_local std::vector<float> V, Mb;
        if (V.size() < size_t(P) * block_tiles * s.c) V.resize(size_t(P) * block_tiles * s.c);
        if (Mb.size() < size_t(P) * block_tiles * s.k) Mb.resize(size_t(P) * block_tiles * s.k);
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t t0 = b * block_tiles;
            const int nt = int(std::min<int64_t>(block_tiles, tiles - t0));
            const int ntp = (nt + TR - 1) / TR * TR;
            input_transform<M>(s, x, in_scale, t0, nt, ntp, V.data());
            for (int p = 0; p < P; ++p)
                gemm(V.data() + int64_t(p) * ntp * s.c, U + int64_t(p) * s.c * s.k, Mb.data() + int64_t(p) * ntp * s.k,
                     ntp, s.c, s.k);
            output_transform<M>(s, Mb.data(), out_scale, noise, noise_n, t0, nt, ntp, y);
        }
    });
}

}  // namespace

// x: [N, C, H, W] float32 in channels-last memory; U: [16, C, K] float32 (G w G^T, packed by pack());
// in_scale [N, C], out_scale [N, K], noise [N or 1, 1, H, W] (contiguous), each optional (empty).
// Returns y [N, K, H, W] channels-last. C and K must be multiples of the vector width.
torch::Tensor conv3x3(torch::Tensor x, torch::Tensor U, torch::Tensor in_scale, torch::Tensor out_scale,
                      torch::Tensor noise, int64_t block_tiles) {
    constexpr int64_t m = 2, P = 16;
    TORCH_CHECK(x.is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4, "x: float32 [N, C, H, W] on the CPU");
    TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "x must be channels-last");
    Shape s{x.size(0), x.size(2), x.size(3), x.size(1), U.size(2), (x.size(2) + m - 1) / m, (x.size(3) + m - 1) / m};
    TORCH_CHECK(U.scalar_type() == at::kFloat && U.is_contiguous() && U.dim() == 3 && U.size(0) == P && U.size(1) == s.c,
                "U: float32 [16, C, K] contiguous");
    TORCH_CHECK(s.c % VW == 0 && s.k % VW == 0, "channels must be multiples of ", VW);
    TORCH_CHECK(in_scale.numel() == 0 || (in_scale.is_contiguous() && in_scale.numel() == s.n * s.c), "in_scale: [N, C]");
    TORCH_CHECK(out_scale.numel() == 0 || (out_scale.is_contiguous() && out_scale.numel() == s.n * s.k),
                "out_scale: [N, K]");
    const int64_t noise_n = noise.numel() ? noise.numel() / (s.h * s.w) : 0;
    TORCH_CHECK(noise.numel() == 0 || (noise.is_contiguous() && noise.numel() == noise_n * s.h * s.w &&
                                       (noise_n == 1 || noise_n == s.n)), "noise: [N or 1, 1, H, W]");
    for (auto* t : {&in_scale, &out_scale, &noise})
        TORCH_CHECK(t->numel() == 0 || t->scalar_type() == at::kFloat, "scales and noise: float32");
    auto y = torch::empty({s.n, s.k, s.h, s.w}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    if (block_tiles <= 0) {  // V and M of one block within ~1 MiB (half this machine's L2 or less)
        block_tiles = std::max<int64_t>(TR, (1 << 20) / (4 * P * (s.c + s.k)) / TR * TR);
    }
    block_tiles = (block_tiles + TR - 1) / TR * TR;
    const float* pin = in_scale.numel() ? in_scale.data_ptr<float>() : nullptr;
    const float* pout = out_scale.numel() ? out_scale.data_ptr<float>() : nullptr;
    const float* pn = noise.numel() ? noise.data_ptr<float>() : nullptr;
    run<m>(s, x.data_ptr<float>(), U.data_ptr<float>(), pin, pout, pn, noise_n, y.data_ptr<float>(), int(block_tiles));
    return y;
}

// U [P, C, K] -> the same numbers in the micro-kernel's panel order: per point, K in panels of
// KV * VW columns (the last one narrower), each panel [C][width] contiguous.
torch::Tensor pack(torch::Tensor U) {
    TORCH_CHECK(U.dim() == 3 && U.scalar_type() == at::kFloat, "U: float32 [P, C, K]");
    const int64_t C = U.size(1), K = U.size(2);
    std::vector<torch::Tensor> panels;
    for (int64_t k0 = 0; k0 < K; k0 += KV * VW)
        panels.push_back(U.slice(2, k0, std::min<int64_t>(K, k0 + KV * VW)).reshape({U.size(0), -1}));
    return torch::cat(panels, 1).reshape({U.size(0), C, K}).contiguous();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("conv3x3", &conv3x3);
    m.def("pack", &pack);
    m.attr("vector_width") = VW;
}
