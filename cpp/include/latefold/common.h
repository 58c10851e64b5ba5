// latefold: shared types and error conventions of the C++ core.
//
// Errors: the core throws standard exceptions, which the Python bindings translate at one place:
//   std::invalid_argument -> ValueError  (bad shape, range, value; the message names the argument)
//   std::length_error     -> ValueError  (sizes that would overflow)
//   std::bad_alloc        -> MemoryError
// Every public function validates its whole input before it writes anything.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace latefold {

/// Element type of stored vectors and tokens: IEEE binary32 and binary16, bfloat16 (the top half
/// of a binary32), and int8 with a float32 scale per vector (value = scale * integer). Every
/// switch over it names each type and has no default: the core builds with -Werror=switch, so a
/// path that does not handle a type fails to compile instead of silently taking another's branch.
enum class DType : std::uint8_t { f32 = 0, f16 = 1, bf16 = 2, i8 = 3 };

constexpr std::size_t dtype_size(DType t) noexcept {
    switch (t) {
        case DType::f32: return 4;
        case DType::f16: return 2;
        case DType::bf16: return 2;
        case DType::i8: return 1;
    }
    return 0;
}

/// numpy's names: "float32", "float16", "bfloat16", "int8".
inline const char* dtype_name(DType t) noexcept {
    switch (t) {
        case DType::f32: return "float32";
        case DType::f16: return "float16";
        case DType::bf16: return "bfloat16";
        case DType::i8: return "int8";
    }
    return "?";
}

inline DType dtype_from_name(const std::string& name) {
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::i8})
        if (name == dtype_name(t)) return t;
    throw std::invalid_argument("unknown element type '" + name + "'");
}

/// How vectors compare: inner product (higher is closer) or squared Euclidean distance (lower).
enum class Metric : std::uint8_t { inner_product = 0, l2 = 1 };

/// "ip" / "l2", the names of the Python API and of files.
inline const char* metric_name(Metric metric) noexcept {
    switch (metric) {
        case Metric::inner_product: return "ip";
        case Metric::l2: return "l2";
    }
    return "?";
}
inline Metric metric_from_name(const std::string& name) {
    if (name == "ip") return Metric::inner_product;
    if (name == "l2") return Metric::l2;
    throw std::invalid_argument("metric must be 'ip' or 'l2', got '" + name + "'");
}

/// IEEE binary16 stored as raw bits.
using half_bits = std::uint16_t;

/// bfloat16 (the upper half of a binary32) to float, exact.
inline float bfloat16_to_float(std::uint16_t bits) noexcept {
    const std::uint32_t wide = std::uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &wide, sizeof f);
    return f;
}

/// float to bfloat16, rounded to nearest even (as AVX512-BF16's conversions and ml_dtypes): past
/// the largest bfloat16 an infinity, NaN stays NaN (quiet).
inline std::uint16_t float_to_bfloat16(float value) noexcept {
    std::uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((x >> 16) | 0x40u);
    return std::uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/// float to IEEE binary16, rounded to nearest even (numpy's astype(float16)): beyond the largest
/// half an infinity, NaN stays NaN.
inline half_bits float_to_half(float value) noexcept {
    std::uint32_t x;
    std::memcpy(&x, &value, sizeof x);
    const std::uint32_t sign = (x >> 16) & 0x8000u, abs = x & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) return half_bits(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
    if (abs >= 0x477FF000u) return half_bits(sign | 0x7C00u);  // rounds past 65504
    if (abs < 0x38800000u) {  // a subnormal half (or zero): units of 2^-24, rounded to even
        if (abs < 0x33000000u) return half_bits(sign);
        const std::uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u, shift = 126u - (abs >> 23);
        const std::uint32_t half = mantissa >> shift, rest = mantissa & ((1u << shift) - 1u), mid = 1u << (shift - 1);
        return half_bits(sign | (half + (rest > mid || (rest == mid && (half & 1u)))));
    }
    const std::uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u);  // to nearest even at bit 13
    return half_bits(sign | ((rounded - 0x38000000u) >> 13));
}

/// Alignment of every buffer the core allocates (one cache line, one AVX-512 register).
constexpr std::size_t buffer_alignment = 64;

/// On Linux, buffers of at least this many bytes are asked for 2 MiB pages (as numpy asks for
/// its large arrays): documents, codes and graph rows are read at random, and with 4 KiB pages
/// nearly every such read also misses the TLB.
constexpr std::size_t huge_page_bytes = std::size_t(2) << 20;
#if defined(__linux__)
constexpr std::size_t huge_pages_from = std::size_t(4) << 20;
#else
constexpr std::size_t huge_pages_from = std::size_t(-1);
#endif

/// Asks the kernel to back [p, p + bytes) (2 MiB-aligned) with huge pages; a refusal changes nothing.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

/// std::allocator with buffer_alignment: vectors the kernels read start on a cache line (large
/// ones on a huge page, advised as such).
template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > std::size_t(-1) / sizeof(T)) throw std::bad_alloc();
        const std::size_t bytes = n * sizeof(T);
        if (bytes < huge_pages_from)
            return static_cast<T*>(::operator new(bytes, std::align_val_t(buffer_alignment)));
        void* p = ::operator new(bytes, std::align_val_t(huge_page_bytes));
        advise_huge_pages(p, bytes);
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        ::operator delete(p, std::align_val_t(n * sizeof(T) < huge_pages_from ? buffer_alignment : huge_page_bytes));
    }
    template <class U>
    bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

/// Room for `size` elements, growing geometrically (doubling, by at most 1 GiB at a time) so that
/// growing in small steps copies each element a bounded number of times. May throw bad_alloc,
/// changing nothing then.
template <class T, class A>
void reserve_growing(std::vector<T, A>& v, std::size_t size) {
    if (v.capacity() >= size) return;
    const std::size_t step = (std::size_t(1) << 30) / sizeof(T);
    v.reserve(std::max(size, std::min(2 * v.capacity(), size + step)));
}

[[noreturn]] inline void fail_argument(const std::string& message) {
    throw std::invalid_argument(message);
}

}  // namespace latefold
