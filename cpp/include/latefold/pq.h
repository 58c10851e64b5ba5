// Product quantization (Jegou, Douze, Schmid, "Product Quantization for Nearest Neighbor
// Search", TPAMI 2011) with 8-bit codes and 4-bit "fast-scan" codes (André, Kermarrec, Le Scouarnec,
// "Cache locality is not enough: high-performance nearest neighbor search with product
// quantization fast scan", VLDB 2015).
//
// A dim-dimensional vector is cut into m sub-vectors: subspace s covers coordinates
// [offset(s), offset(s) + width(s)), the first dim % m subspaces one coordinate wider than the
// rest (so any 1 <= m <= dim is allowed). Each sub-vector is replaced by the index of its
// nearest (L2) centroid among ksub = 2^nbits.
//
// Layouts:
//   centroids   : for each subspace s in order, ksub x width(s) floats (row-major)
//   codes       : code_size() bytes per vector; nbits = 8: byte s = code of subspace s;
//                 nbits = 4: byte s/2, low nibble for even s, high nibble for odd s
//   lookup table: per query m x ksub floats, lut[s][c] = <q_s, c> (metric ip) or ||q_s - c||^2 (l2)
//   scores      : ip: sum of lut (higher is better); l2: sum of lut = squared distance to the
//                 decoded vector (lower is better)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "latefold/common.h"
#include "latefold/io.h"

namespace latefold {

/// The rotation applied before quantization, as the Python API names it: none (unless one is
/// set by hand with set_rotation), a seeded random one, or one learned by OPQ (both by train).
struct RowStore;

enum class PqRotation : std::uint8_t { none = 0, random = 1, opq = 2 };
const char* rotation_name(PqRotation rotation) noexcept;
PqRotation rotation_from_name(const std::string& name);  ///< std::invalid_argument if unknown

struct PqSearchOptions {
    std::size_t k = 10;
    /// Candidates re-scored = rescore * k (0: none): 4-bit codes re-score their fast-scan
    /// estimates with the float tables; with `vectors`, both widths re-score from the vectors.
    std::size_t rescore = 4;
    /// Optional rows the codes stand for (n x dim, any storage type): the candidates' scores
    /// are then the exact inner products (ip) or squared distances (l2).
    const RowStore* vectors = nullptr;
    const std::uint8_t* allowed = nullptr;  ///< optional bitmap, bit i (LSB first) = vector i allowed
    /// 4-bit only, optional: the same codes in the fast-scan layout (see pack), scanned instead of
    /// laying the row-major codes out on every call (those still serve the re-scoring).
    const std::uint8_t* packed = nullptr;
    std::size_t threads = 0;
};

class ProductQuantizer {
public:
    ProductQuantizer(std::size_t dim, std::size_t m, std::size_t nbits, Metric metric,
                     PqRotation rotation_kind = PqRotation::none);

    std::size_t dim() const noexcept { return dim_; }
    std::size_t m() const noexcept { return m_; }
    std::size_t nbits() const noexcept { return nbits_; }
    std::size_t ksub() const noexcept { return std::size_t(1) << nbits_; }
    Metric metric() const noexcept { return metric_; }
    PqRotation rotation_kind() const noexcept { return rotation_kind_; }

    /// The parameters as written to files, under the Python constructor's names.
    Json params() const;
    /// Persistence: parameters, and the centroids and rotation once trained.
    void write(io::Writer& writer, const std::string& prefix) const;
    static ProductQuantizer read(const io::Reader& reader, const std::string& prefix);
    void save(const std::string& path) const;  ///< a file of kind "pq"
    static ProductQuantizer load(const std::string& path);
    /// The bytes save() writes, in memory (pickling), and the quantizer back from them (copied).
    std::string to_bytes() const;
    static ProductQuantizer from_bytes(const void* data, std::size_t size);
    std::size_t code_size() const noexcept { return nbits_ == 8 ? m_ : (m_ + 1) / 2; }
    std::size_t offset(std::size_t s) const noexcept { return offset_[s]; }
    std::size_t width(std::size_t s) const noexcept { return offset_[s + 1] - offset_[s]; }
    /// 4-bit: code bytes per vector in the fast-scan layout (code_size() rounded up to even).
    std::size_t fastscan_pairs() const noexcept { return (code_size() + 1) / 2 * 2; }
    /// 4-bit: bytes of n vectors' codes in the fast-scan layout.
    std::size_t packed_size(std::size_t n) const noexcept { return (n + 31) / 32 * fastscan_pairs() * 32; }
    bool trained() const noexcept { return !centroids_.empty(); }
    const std::vector<float>& centroids() const noexcept { return centroids_; }

    /// k-means per subspace on n training vectors (n >= ksub), at most max_points of them
    /// (a seeded sample), `iterations` Lloyd steps from k-means++ seeds. With a rotation kind,
    /// the rotation is trained first on the same sample (pq_rotation.cc): random, the Q of a
    /// Gaussian matrix's QR; opq, `opq_iterations` alternations of a 4-iteration training and an
    /// orthogonal Procrustes step from that random start. A rotation set by hand (kind none) is
    /// kept. Deterministic for a seed and independent of the thread count. On failure the
    /// quantizer is left as it was.
    void train(const float* x, std::size_t n, std::size_t iterations, std::uint64_t seed,
               std::size_t max_points, std::size_t threads, std::size_t opq_iterations = 8);
    /// Installs centroids (layout above; ksub * dim floats).
    void set_centroids(const float* centroids);
    /// An optional orthogonal dim x dim rotation R (row-major), applied before quantization:
    /// x is quantized as the row vector x R, tables are built from q R, and decode returns the
    /// reconstruction rotated back (times R^T). Inner products and distances are unchanged by R;
    /// only how they spread over the subspaces changes. Clears the centroids (train again);
    /// nullptr removes the rotation. Rejects a matrix that is not orthogonal to 1e-3.
    void set_rotation(const float* rotation);
    const std::vector<float>& rotation() const noexcept { return rotation_; }

    void encode(const float* x, std::size_t n, std::uint8_t* codes, std::size_t threads) const;
    /// 4-bit codes in the fast-scan layout (packed_size(n) bytes): per block of 32 vectors, byte
    /// p of vector j at [(block * fastscan_pairs() + p) * 32 + j], missing vectors and bytes zero.
    /// A search of packed codes skips this transposition of every call.
    void pack(const std::uint8_t* codes, std::size_t n, std::uint8_t* out, std::size_t threads) const;
    void decode(const std::uint8_t* codes, std::size_t n, float* x, std::size_t threads) const;
    void lookup_tables(const float* queries, std::size_t nq, float* lut, std::size_t threads) const;

    /// out[i] = the ADC score of row rows[i] of `codes` from one query's lookup table `lut`
    /// (m x ksub, as lookup_tables writes it): the sum over s of lut[s][code_s].
    void score_codes(const float* lut, const std::uint8_t* codes, const std::uint32_t* rows,
                     std::size_t count, float* out) const noexcept;

    /// Top-k of n coded vectors for each query: scores and ids (k per query, best first; ids -1
    /// and scores NaN when fewer than k vectors are allowed).
    void search(const std::uint8_t* codes, std::size_t n, const float* queries, std::size_t nq,
                const PqSearchOptions& options, float* scores, std::int64_t* ids) const;

private:
    class Search;  // one search call (pq_search.cc)
    void require_trained() const;
    /// k-means per subspace on `count` rows of x (rows[i], or i when rows is null), taken as
    /// already rotated.
    void train_subspaces(const float* x, const std::size_t* rows, std::size_t count, std::size_t iterations,
                         std::uint64_t seed, std::size_t threads);
    /// Sets rotation_ (kind random or opq) from `count` sample rows (pq_rotation.cc).
    void train_rotation(const float* sample, std::size_t count, std::uint64_t seed, std::size_t opq_iterations,
                        std::size_t threads);
    /// set_rotation without the checks, for matrices orthogonal by construction.
    void install_rotation(const float* rotation);
    /// Rows of x (n x dim) times the rotation, or its transpose, into out (x itself without one).
    const float* rotated(const float* x, std::size_t n, bool inverse, std::vector<float>& out,
                         std::size_t threads) const;
    std::uint32_t code(const std::uint8_t* vector_codes, std::size_t s) const noexcept;

    std::size_t dim_, m_, nbits_;
    Metric metric_;
    PqRotation rotation_kind_;
    std::vector<std::size_t> offset_;  // m + 1 subspace boundaries
    std::vector<float> centroids_;     // ksub * dim, per subspace ksub x width(s)
    std::vector<float> packed_centroids_;  // per subspace, the centroids packed for the kernels
    std::vector<float> centroid_norms_;    // m x ksub squared norms
    std::vector<float> rotation_;          // dim x dim, empty: none
    std::vector<float> packed_rotation_, packed_inverse_;  // R and R^T for project_rows
};

}  // namespace latefold
