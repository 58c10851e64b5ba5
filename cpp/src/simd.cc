// CPU feature detection and the choice of the active SIMD path.
#include "latefold/simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#define LATEFOLD_X86 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace latefold {
namespace {

#ifdef LATEFOLD_X86
struct CpuidRegs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
    CpuidRegs r;
#if defined(_MSC_VER)
    int v[4];
    __cpuidex(v, int(leaf), int(subleaf));
    r.a = unsigned(v[0]), r.b = unsigned(v[1]), r.c = unsigned(v[2]), r.d = unsigned(v[3]);
#else
    __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
#endif
    return r;
}

// Register state the operating system saves on context switches (XCR0).
unsigned long long os_saved_state() {
#if defined(_MSC_VER)
    return _xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

bool bit(unsigned value, int index) { return (value >> index) & 1u; }

// Asks Linux for the AMX tile data state (off by default for each process since Linux 5.16:
// a tile instruction without it is killed by SIGILL). Granted to the whole process, once.
bool request_tile_state() {
#if defined(__linux__)
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
    return false;
#endif
}

struct X86Features {
    bool avx2 = false, avx2vnni = false, avx512 = false, avx512vnni = false, avx512bf16 = false, amx = false;
};

X86Features detect_x86() {
    X86Features out;
    bool& avx2 = out.avx2;
    bool& avx512 = out.avx512;
    bool& avx512vnni = out.avx512vnni;
    const unsigned max_leaf = cpuid(0, 0).a;
    if (max_leaf < 7) return out;
    const CpuidRegs l1 = cpuid(1, 0), l7 = cpuid(7, 0), l7s1 = cpuid(7, 1);
    if (!bit(l1.c, 27)) return out;  // OSXSAVE: xgetbv usable
    const unsigned long long xcr0 = os_saved_state();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;     // SSE + AVX registers
    const bool zmm_state = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM0-15 upper, ZMM16-31
    const bool fma = bit(l1.c, 12), f16c = bit(l1.c, 29), avx = bit(l1.c, 28);
    avx2 = ymm_state && avx && fma && f16c && bit(l7.b, 5);
    const bool f = bit(l7.b, 16), dq = bit(l7.b, 17), bw = bit(l7.b, 30), vl = bit(l7.b, 31);
    avx512 = avx2 && zmm_state && f && dq && bw && vl;
    avx512vnni = avx512 && bit(l7.c, 1) && bit(l7.c, 11);  // VBMI, VNNI
    out.avx2vnni = avx2 && bit(l7s1.a, 4);
    out.avx512bf16 = avx512vnni && bit(l7s1.a, 5);
    const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
    const bool tiles = bit(l7.d, 24) && bit(l7.d, 25) && bit(l7.d, 22);  // AMX-TILE, -INT8, -BF16
    out.amx = out.avx512bf16 && tiles && tile_state && request_tile_state();
    return out;
}
#endif

bool cpu_supports(Isa isa) {
    switch (isa) {
        case Isa::scalar: return true;
#ifdef LATEFOLD_X86
        case Isa::avx2:
        case Isa::avx2vnni:
        case Isa::avx512:
        case Isa::avx512vnni:
        case Isa::avx512bf16:
        case Isa::amx: {
            static const X86Features f = detect_x86();
            switch (isa) {
                case Isa::avx2: return f.avx2;
                case Isa::avx2vnni: return f.avx2vnni;
                case Isa::avx512: return f.avx512;
                case Isa::avx512vnni: return f.avx512vnni;
                case Isa::avx512bf16: return f.avx512bf16;
                default: return f.amx;
            }
        }
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
        case Isa::neon: return true;  // Advanced SIMD is part of the aarch64 baseline
#endif
        default: return false;
    }
}

bool parse_isa(const std::string& name, Isa& out) {
    for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx2vnni, Isa::avx512, Isa::avx512vnni, Isa::avx512bf16, Isa::amx, Isa::neon})
        if (name == isa_name(isa)) return out = isa, true;
    return false;
}

Isa best_supported() {
    Isa best = Isa::scalar;
    for (Isa isa : supported_isas()) best = isa;  // listed in increasing order of preference
    return best;
}

std::atomic<int>& active_slot() {
    static std::atomic<int> slot{[] {
        Isa chosen = best_supported();
        // LATEFOLD_SIMD may only lower the choice: an unknown or unsupported name is ignored.
        if (const char* env = std::getenv("LATEFOLD_SIMD")) {
            Isa wanted;
            if (parse_isa(env, wanted))
                for (Isa isa : supported_isas())
                    if (isa == wanted) chosen = wanted;
        }
        return static_cast<int>(chosen);
    }()};
    return slot;
}

}  // namespace

const char* isa_name(Isa isa) noexcept {
    switch (isa) {
        case Isa::scalar: return "scalar";
        case Isa::avx2: return "avx2";
        case Isa::avx2vnni: return "avx2vnni";
        case Isa::avx512: return "avx512";
        case Isa::avx512vnni: return "avx512vnni";
        case Isa::avx512bf16: return "avx512bf16";
        case Isa::amx: return "amx";
        case Isa::neon: return "neon";
    }
    return "unknown";
}

std::vector<Isa> compiled_isas() {
    std::vector<Isa> out{Isa::scalar};
#ifdef LATEFOLD_HAVE_AVX2
    out.push_back(Isa::avx2);
#ifdef LATEFOLD_HAVE_AVX2VNNI
    out.push_back(Isa::avx2vnni);
#endif
#endif
#ifdef LATEFOLD_HAVE_AVX512
    out.push_back(Isa::avx512);
#endif
#if defined(LATEFOLD_HAVE_AVX512) && defined(LATEFOLD_HAVE_AVX512VNNI)
    out.push_back(Isa::avx512vnni);
#if defined(LATEFOLD_HAVE_AVX512BF16)
    out.push_back(Isa::avx512bf16);
#if defined(LATEFOLD_HAVE_AMX)
    out.push_back(Isa::amx);
#endif
#endif
#endif
#ifdef LATEFOLD_HAVE_NEON
    out.push_back(Isa::neon);
#endif
    return out;
}

std::vector<Isa> supported_isas() {
    std::vector<Isa> out;
    for (Isa isa : compiled_isas())
        if (cpu_supports(isa)) out.push_back(isa);
    return out;
}

Isa active_isa() noexcept { return static_cast<Isa>(active_slot().load(std::memory_order_relaxed)); }

void set_active_isa(const std::string& name) {
    Isa wanted = Isa::scalar;
    if (name == "best") {
        wanted = best_supported();
    } else if (!parse_isa(name, wanted)) {
        throw std::invalid_argument("simd: unknown path '" + name +
                                    "' (expected scalar, avx2, avx2vnni, avx512, avx512vnni, avx512bf16, amx, neon or best)");
    } else {
        bool available = false;
        for (Isa isa : supported_isas()) available |= isa == wanted;
        if (!available)
            throw std::invalid_argument("simd: path '" + name +
                                        "' is not available on this CPU or in this build");
    }
    active_slot().store(static_cast<int>(wanted), std::memory_order_relaxed);
}

std::string cpu_description() {
#ifdef LATEFOLD_X86
    if (cpuid(0x80000000u, 0).a >= 0x80000004u) {
        char brand[49] = {};
        for (unsigned i = 0; i < 3; ++i) {
            const CpuidRegs r = cpuid(0x80000002u + i, 0);
            std::memcpy(brand + 16 * i, &r, 16);
        }
        std::string s(brand);
        const auto first = s.find_first_not_of(' ');
        return first == std::string::npos ? "x86-64" : s.substr(first);
    }
    return "x86-64";
#elif defined(__aarch64__) || defined(_M_ARM64)
    return "aarch64";
#else
    return "unknown";
#endif
}

}  // namespace latefold
