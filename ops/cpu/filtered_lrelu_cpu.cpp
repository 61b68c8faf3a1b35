// Filtered leaky ReLU on the CPU, forward only (inference): one pass over each (n, c) plane in
// strips of output rows, so the 2x/4x upsampled intermediate never leaves the cache.
//
// Per axis the op is  m[i] = sum_k fu[k] z[i + k - p0]   (z: x zero-stuffed by `up`)
//                     y[o] = sum_k fd[k] a[o * down + k] (a = clamp(lrelu(m)))
// with fu, fd already flipped and scaled by the caller (plain correlation here). Writing
// i = up * q + r, only taps k = k0(r) + up * t meet real samples, x[q + c(r) + t]: one short filter
// per phase r. The horizontal axis keeps the intermediate in phase-major order, row[r][q], so
// every pass is a unit-stride axpy the compiler vectorises; with down dividing up (d = up / down)
// output column d * p + s reads row[r][p + e] for fixed (r, e) per (s, tap): unit stride again.
//
// Vertical: rows of the strip are built one axpy per tap from input rows (bias added on the way),
// then folded by the down filter. Numbers equal the reference up to float32 summation order.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

inline int pmod(int a, int b) { return ((a % b) + b) % b; }

// dst[j] (+)= sum_k f[k] src[off[k] + j], j < n. K fixed at compile time: the tap loop unrolls, j
// vectorises, and each output is written once (the sum stays in a register, taps in order).
template <int K, bool ACC>
void fir_k(float* __restrict dst, const float* src, const int* off, const float* f, int n) {
    float fk[K];
    const float* s[K];
    for (int k = 0; k < K; ++k) { fk[k] = f[k]; s[k] = src + off[k]; }
#pragma GCC ivdep
    for (int j = 0; j < n; ++j) {
        float a = ACC ? dst[j] : 0.f;
        for (int k = 0; k < K; ++k) a += fk[k] * s[k][j];
        dst[j] = a;
    }
}

template <bool ACC>
void fir(float* dst, const float* src, const int* off, const float* f, int k, int n) {
    switch (k) {
#define SG_FIR_CASE(K) case K: return fir_k<K, ACC>(dst, src, off, f, n);
        SG_FIR_CASE(1) SG_FIR_CASE(2) SG_FIR_CASE(3) SG_FIR_CASE(4) SG_FIR_CASE(5) SG_FIR_CASE(6)
        SG_FIR_CASE(7) SG_FIR_CASE(8) SG_FIR_CASE(9) SG_FIR_CASE(10) SG_FIR_CASE(11) SG_FIR_CASE(12)
#undef SG_FIR_CASE
        default:
            if (!ACC) std::fill(dst, dst + n, 0.f);
            for (int t = 0; t < k; ++t)
                for (int j = 0; j < n; ++j) dst[j] += f[t] * src[off[t] + j];
    }
}

// Polyphase split of one axis: phase r starts at tap k0[r], reads source index q + c[r] + t.
struct Phases {
    int up;
    std::vector<int> k0, c, taps;
    std::vector<float> f;  // phase r's taps at f[r * kmax ...]
    int kmax;
    Phases(int up_, int p0, const float* fu, int k) : up(up_), k0(up_), c(up_), taps(up_), kmax((k + up_ - 1) / up_) {
        f.assign(size_t(up) * kmax, 0.f);
        for (int r = 0; r < up; ++r) {
            k0[r] = pmod(p0 - r, up);
            c[r] = (r + k0[r] - p0) / up;  // exact: r + k0 - p0 is a multiple of up
            taps[r] = k0[r] < k ? (k - 1 - k0[r]) / up + 1 : 0;
            for (int t = 0; t < taps[r]; ++t) f[r * kmax + t] = fu[k0[r] + up * t];
        }
    }
};

struct Args {
    int h, w, oh, ow, up, down, d;
    int q;              // phase-major width of one intermediate row: ceil(mw / up)
    int fuk, fdk;       // taps of the 1-D up filter, of the down filter per axis
    bool fd_sep;
    float slope, clamp; // clamp < 0: none
    int top, left;      // zero border of the padded input plane
    int xh, xw;         // padded input plane extent
    int pw;             // phase-major width of one output row: ceil(ow / d)
};

// Rows [o0, o1) of one output plane from the padded input plane `xp` (x + b, zero border).
void strip(const Args& a, const Phases& pv, const Phases& ph, const float* fd, const float* xp, float* y, int o0,
           int o1, float* buf) {
    const int i0 = o0 * a.down, i1 = (o1 - 1) * a.down + a.fdk;  // intermediate rows the strip needs
    const int rw = a.up * a.q, pw = a.pw;
    float* v = buf;                            // one vertically upsampled row, padded width
    float* mid = v + a.xw;                     // rows x [up][q]: after lrelu
    float* acc = mid + size_t(i1 - i0) * rw;   // one row after the vertical down pass
    float* out = acc + rw;                     // one output row, [d][pw] phase-major
    int off[64];

    for (int i = i0; i < i1; ++i) {
        // Vertical up: v = sum_t fu[k0 + up t] xp[row q + c + t].
        const int r = i % a.up, q = i / a.up, kt = pv.taps[r];
        for (int t = 0; t < kt; ++t) off[t] = (q + pv.c[r] + t + a.top) * a.xw;
        fir<false>(v, xp, off, pv.f.data() + r * pv.kmax, kt, a.xw);
        // Horizontal up into phase-major order; lrelu (the gain rides on fu), clamp.
        float* m = mid + size_t(i - i0) * rw;
        for (int rx = 0; rx < a.up; ++rx) {
            const int kx = ph.taps[rx];
            for (int t = 0; t < kx; ++t) off[t] = a.left + ph.c[rx] + t;
            fir<false>(m + rx * a.q, v, off, ph.f.data() + rx * ph.kmax, kx, a.q);
        }
        for (int j = 0; j < rw; ++j) m[j] = m[j] > 0.f ? m[j] : m[j] * a.slope;
        if (a.clamp >= 0.f)
            for (int j = 0; j < rw; ++j) m[j] = std::min(std::max(m[j], -a.clamp), a.clamp);
    }

    for (int oy = o0; oy < o1; ++oy) {
        const float* first = mid + size_t(oy * a.down - i0) * rw;
        // Horizontal down of row `src` ([up][q]) with taps fx into out ([d][pw]); output column
        // d p + s reads intermediate column up p + down s + k.
        auto down_x = [&](const float* src, const float* fx, bool accumulate) {
            for (int s = 0; s < a.d; ++s) {
                for (int k = 0; k < a.fdk; ++k) {
                    const int idx = a.down * s + k;
                    off[k] = (idx % a.up) * a.q + idx / a.up;
                }
                const int np = (a.ow - s + a.d - 1) / a.d;
                if (accumulate) fir<true>(out + s * pw, src, off, fx, a.fdk, np);
                else fir<false>(out + s * pw, src, off, fx, a.fdk, np);
            }
        };
        if (a.fd_sep) {
            for (int k = 0; k < a.fdk; ++k) off[k] = k * rw;
            fir<false>(acc, first, off, fd, a.fdk, rw);
            down_x(acc, fd, false);
        } else {
            for (int k = 0; k < a.fdk; ++k) down_x(first + size_t(k) * rw, fd + k * a.fdk, k > 0);
        }
        float* dst = y + size_t(oy) * a.ow;
        if (a.d == 1) std::copy(out, out + a.ow, dst);
        else for (int ox = 0; ox < a.ow; ++ox) dst[ox] = out[(ox % a.d) * pw + ox / a.d];
    }
}

}  // namespace

// x [N, C, H, W] float32; b [C] or empty; fu [ku] and fd [kd] (separable) or [kd, kd], float32,
// flipped and scaled. Padding is (x0, x1, y0, y1) in upsampled pixels. Requires up % down == 0.
torch::Tensor filtered_lrelu_cpu(torch::Tensor x, torch::Tensor b, torch::Tensor fu, torch::Tensor fd, int64_t up,
                                 int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, double slope,
                                 double clamp, int64_t rows_per_strip) {
    TORCH_CHECK(x.is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4, "x: float32 [N, C, H, W] on the CPU");
    TORCH_CHECK(fu.dim() == 1 && fu.scalar_type() == at::kFloat && fu.numel() > 0, "fu: 1-D float32");
    TORCH_CHECK((fd.dim() == 1 || (fd.dim() == 2 && fd.size(0) == fd.size(1))) && fd.scalar_type() == at::kFloat,
                "fd: 1-D or square 2-D float32");
    TORCH_CHECK(up >= 1 && down >= 1 && up % down == 0, "up must be a multiple of down");
    TORCH_CHECK(b.numel() == 0 || (b.dim() == 1 && b.size(0) == x.size(1) && b.scalar_type() == at::kFloat),
                "b: [C] float32 or empty");
    x = x.contiguous(); fu = fu.contiguous(); fd = fd.contiguous(); b = b.contiguous();

    Args a;
    a.h = x.size(2); a.w = x.size(3);
    a.up = up; a.down = down; a.d = up / down;
    a.fuk = fu.numel(); a.fdk = fd.size(0); a.fd_sep = fd.dim() == 1;
    TORCH_CHECK(a.fdk <= 64 && (a.fuk + up - 1) / up <= 64, "filters longer than 64 taps per phase");
    const int mw = a.w * a.up + px0 + px1 - a.fuk + 1, mh = a.h * a.up + py0 + py1 - a.fuk + 1;
    a.ow = (mw - a.fdk + a.down) / a.down; a.oh = (mh - a.fdk + a.down) / a.down;
    TORCH_CHECK(a.ow >= 1 && a.oh >= 1, "output would be empty");
    a.q = (mw + a.up - 1) / a.up;
    a.pw = (a.ow + a.d - 1) / a.d;
    a.slope = slope; a.clamp = clamp;
    const float* pfu = fu.data_ptr<float>();
    const Phases pv(up, py0, pfu, a.fuk), ph(up, px0, pfu, a.fuk);
    // Zero border wide enough for every tap of every phase (rows q + c + t, columns likewise).
    auto border = [](const Phases& p, int n_out, int n_in, int& lo, int& hi) {
        lo = 0; hi = n_in;
        for (int r = 0; r < p.up; ++r) {
            lo = std::min(lo, p.c[r]);
            hi = std::max(hi, n_out + p.c[r] + p.taps[r]);
        }
    };
    int ylo, yhi, xlo, xhi;
    border(pv, (mh + a.up - 1) / a.up, a.h, ylo, yhi);
    border(ph, a.q, a.w, xlo, xhi);
    a.top = -ylo; a.left = -xlo; a.xh = yhi - ylo; a.xw = xhi - xlo;
    // Output rows per strip: the strip's intermediate rows should stay within ~256 KiB of cache.
    const int rw = a.up * a.q;
    int th = rows_per_strip > 0 ? rows_per_strip
                                : std::max(1, ((256 * 1024 / 4) / rw - a.fdk) / a.down + 1);
    th = std::min(th, a.oh);

    auto y = torch::empty({x.size(0), x.size(1), a.oh, a.ow}, x.options());
    const int64_t nc = x.size(0) * x.size(1), c = x.size(1);
    const float* px = x.data_ptr<float>();
    const float* pb = b.numel() ? b.data_ptr<float>() : nullptr;
    const float* pfd = fd.data_ptr<float>();
    float* py = y.data_ptr<float>();
    // strip()'s scratch: one padded row, the strip's intermediate rows, one row, one output row.
    const size_t scratch = size_t(a.xw) + size_t((th - 1) * a.down + a.fdk) * rw + rw + size_t(a.d) * a.pw;
    at::parallel_for(0, nc, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> xp(size_t(a.xh) * a.xw), buf(scratch);
        for (int64_t p = begin; p < end; ++p) {
            const float bias = pb ? pb[p % c] : 0.f;
            const float* src = px + p * a.h * a.w;
            std::fill(xp.begin(), xp.end(), 0.f);
            for (int iy = 0; iy < a.h; ++iy) {
                float* row = xp.data() + size_t(iy + a.top) * a.xw + a.left;
                for (int ix = 0; ix < a.w; ++ix) row[ix] = src[size_t(iy) * a.w + ix] + bias;
            }
            for (int o0 = 0; o0 < a.oh; o0 += th)
                strip(a, pv, ph, pfd, xp.data(), py + p * a.oh * a.ow, o0, std::min(o0 + th, a.oh), buf.data());
        }
    });
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("filtered_lrelu", &filtered_lrelu_cpu);
}
