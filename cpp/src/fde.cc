// MUVERA fixed dimensional encodings: sampling of the random matrices, exact SimHash partitions,
// per-item encoding, threads. See fde.h for the semantics.
#include "latefold/fde.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "finite_check.h"
#include "kernels/float32_rows.h"
#include "kernels/table.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"

namespace latefold {
namespace {

// Values per item, before and after the final sketch: 2^26 float32 are 256 MiB per item (and per
// thread's scratch), far above useful encodings (R * 2^k * d_proj is in the thousands), so that
// no parameters, given or read from a file, can ask for gigabytes per item.
constexpr std::size_t max_values_per_item = std::size_t(1) << 26;
constexpr std::size_t items_per_task = 16;

std::uint64_t stream_id(FdeStream kind, std::size_t repetition) {
    return (std::uint64_t(kind) << 32) | std::uint64_t(repetition);
}

// gamma(n) = n u / (1 - n u): the relative rounding bound of an n-term sum of products.
double gamma(std::size_t n, double unit_roundoff) {
    const double nu = double(n) * unit_roundoff;
    return nu / (1.0 - nu);
}

// Branch-free bit count (the baseline x86-64 target has no popcnt instruction).
int popcount(std::uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return int((x * 0x01010101u) >> 24);
}

}  // namespace

void FdeConfig::validate() const {
    if (dimension == 0) fail_argument("dimension must be at least 1");
    if (num_repetitions == 0) fail_argument("num_repetitions must be at least 1");
    if (num_simhash_projections > 30)
        fail_argument("num_simhash_projections must be in [0, 30], got " +
                      std::to_string(num_simhash_projections));
    if (projection_type == FdeProjection::identity) {
        if (projection_dimension != 0 && projection_dimension != dimension)
            fail_argument("projection_dimension must be left unset (or equal dimension) with the "
                          "identity projection");
    } else if (projection_dimension == 0 || projection_dimension >= (std::size_t(1) << 32)) {
        fail_argument("projection_dimension must be in [1, 2^32) with a sketching projection");
    }
    const std::size_t limit = max_values_per_item;
    if (final_projection_dimension > limit)
        fail_argument("final_projection_dimension must be at most 2^26 (values per item), got " +
                      std::to_string(final_projection_dimension));
    // R * 2^k * d_proj without overflow.
    const std::size_t per_rep = partitions() * projected_dim();
    if (projected_dim() > limit || partitions() > limit / projected_dim() || num_repetitions > limit / per_rep)
        fail_argument("num_repetitions * 2^num_simhash_projections * projection_dimension must be at most 2^26 "
                      "(values per item)");
}

struct FdeEncoder::Scratch {
    // A batch of tokens; "in lanes" layouts hold one row of `lanes` values (the tokens, then
    // zeros) per coordinate.
    std::size_t lanes = 0;          // tokens rounded up to 16
    AlignedVector<float> tokens;    // float16 input widened
    AlignedVector<float> transposed;  // the tokens in lanes: dimension x lanes
    AlignedVector<float> sketch;    // SimHash values in lanes: R * k x lanes
    AlignedVector<float> norms;     // per token: squared norm (to_lanes), then ||x|| inflated
    std::vector<std::uint32_t> uncertain;  // per token: a sign not certain in float32
    std::vector<std::uint32_t> part;  // partition indices in lanes: R x lanes
    AlignedVector<float> dense;     // projected tokens: count x dense_width_, or R * d_proj x lanes
    std::vector<float> block;       // R * B * d_proj
    std::vector<std::uint32_t> sizes;     // R * B
    std::vector<std::uint32_t> occupied, first_token;  // filling: occupied partitions, first tokens
};

FdeEncoder::FdeEncoder(const FdeConfig& config) : config_(config) {
    config_.validate();
    const std::size_t d = config_.dimension, k = config_.num_simhash_projections;
    const std::size_t reps = config_.num_repetitions, d_proj = config_.projected_dim();

    // SimHash: column c = r * k + j holds the j-th Gaussian column of repetition r.
    if (k > 0) {
        const std::size_t columns = reps * k;
        simhash_columns_.resize(columns * d);
        for (std::size_t r = 0; r < reps; ++r) {
            const std::vector<float> g =
                random::normals(random::stream_key(config_.seed, stream_id(FdeStream::simhash, r)), d * k);
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = 0; j < k; ++j) simhash_columns_[(r * k + j) * d + i] = g[i * k + j];
        }
        simhash_bound_.resize(columns);
        const double slack = (gamma(d, 0x1.0p-24) + gamma(d, 0x1.0p-53)) * (1.0 + 1e-4);
        for (std::size_t c = 0; c < columns; ++c) {
            double sum = 0.0;
            for (std::size_t i = 0; i < d; ++i)
                sum += double(simhash_columns_[c * d + i]) * double(simhash_columns_[c * d + i]);
            simhash_bound_[c] = float(slack * std::sqrt(sum));
        }
    }

    // The sketching projections as a dimension x (R * d_proj) matrix, column r * d_proj + j.
    if (config_.projection_type != FdeProjection::identity) {
        const std::size_t columns = reps * d_proj;
        projection_columns_.assign(columns * d, 0.0f);
        const float scale = float(1.0 / std::sqrt(double(d_proj)));
        for (std::size_t r = 0; r < reps; ++r) {
            if (config_.projection_type == FdeProjection::ams_sketch) {
                const std::uint64_t key = random::stream_key(config_.seed, stream_id(FdeStream::ams_sketch, r));
                for (std::size_t i = 0; i < d; ++i) {
                    const std::uint64_t w = random::word(key, i);
                    projection_columns_[(r * d_proj + random::below(w, std::uint32_t(d_proj))) * d + i] =
                        random::sign(w);
                }
            } else {
                const std::uint64_t key = random::stream_key(config_.seed, stream_id(FdeStream::dense_sign, r));
                for (std::size_t i = 0; i < d; ++i)
                    for (std::size_t j = 0; j < d_proj; ++j)
                        projection_columns_[(r * d_proj + j) * d + i] =
                            random::sign(random::word(key, i * d_proj + j)) * scale;
            }
        }
    }
    if (config_.projection_type == FdeProjection::dense_sign) {
        // Dense: one packed product for all repetitions.
        dense_width_ = kernels::padded_query_rows(reps * d_proj);
        dense_.resize(dense_width_ * d);
        kernels::pack_columns(
            reps * d_proj, d, [&](std::size_t c, std::size_t i) { return projection_columns_[c * d + i]; },
            dense_.data());
    } else if (config_.projection_type == FdeProjection::ams_sketch) {
        // AMS: one nonzero per input coordinate; list the coordinates of each output slot.
        ams_start_.push_back(0);
        for (std::size_t r = 0; r < reps; ++r)
            for (std::size_t j = 0; j < d_proj; ++j) {
                for (std::size_t i = 0; i < d; ++i) {
                    const float v = projection_columns_[(r * d_proj + j) * d + i];
                    if (v != 0.0f) {
                        ams_index_.push_back(std::uint32_t(i));
                        ams_sign_.push_back(v);
                    }
                }
                ams_start_.push_back(std::uint32_t(ams_index_.size()));
            }
    }

    if (config_.final_projection_dimension) {
        const std::size_t n = config_.block_dim();
        const std::uint64_t key = random::stream_key(config_.seed, stream_id(FdeStream::final_sketch, 0));
        final_slot_.resize(n);
        final_sign_.resize(n);
        for (std::size_t t = 0; t < n; ++t) {
            const std::uint64_t w = random::word(key, t);
            final_slot_[t] = random::below(w, std::uint32_t(config_.final_projection_dimension));
            final_sign_[t] = random::sign(w);
        }
    }
}

std::vector<float> FdeEncoder::simhash_matrix(std::size_t r) const {
    const std::size_t d = config_.dimension, k = config_.num_simhash_projections;
    if (r >= config_.num_repetitions) fail_argument("repetition out of range");
    std::vector<float> out(d * k);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) out[i * k + j] = simhash_columns_[(r * k + j) * d + i];
    return out;
}

std::vector<float> FdeEncoder::projection_matrix(std::size_t r) const {
    const std::size_t d = config_.dimension, d_proj = config_.projected_dim();
    if (r >= config_.num_repetitions) fail_argument("repetition out of range");
    std::vector<float> out(d * d_proj, 0.0f);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d_proj; ++j)
            out[i * d_proj + j] = config_.projection_type == FdeProjection::identity
                                      ? float(i == j)
                                      : projection_columns_[(r * d_proj + j) * d + i];
    return out;
}

void FdeEncoder::check_items(const MultiVectorsView& items) const {
    items.validate("items");
    if (items.count && items.dim != config_.dimension)
        fail_argument("items have token dimension " + std::to_string(items.dim) +
                      " but the encoder expects " + std::to_string(config_.dimension));
}

void FdeEncoder::partition_tokens(const float* rows, std::size_t count, std::size_t stride,
                                  Scratch& scratch) const {
    const std::size_t d = config_.dimension, k = config_.num_simhash_projections;
    const std::size_t reps = config_.num_repetitions, lanes = scratch.lanes;
    scratch.part.resize(reps * lanes);
    if (k == 0) {
        std::fill(scratch.part.begin(), scratch.part.end(), 0u);
        return;
    }
    const std::size_t columns = reps * k;
    scratch.sketch.resize(columns * lanes);
    kernels::active_kernels().project_lanes(scratch.transposed.data(), lanes, d, simhash_columns_.data(),
                                            columns, scratch.sketch.data());
    // A float32 sign is certain when |s| exceeds the float32 error plus the float64 error of the
    // reference value, both at most gamma(d) * ||x|| * ||g|| (Cauchy-Schwarz bounds sum |x_i g_i|).
    // simhash_bound_[c] = (gamma32(d) + gamma64(d)) * ||g_c||, inflated for float rounding, and
    // so is ||x|| here.
    const float norm_inflation = float(1.0 + 4.0 * gamma(d, 0x1.0p-24));
    float* norms = scratch.norms.data();
    for (std::size_t t = 0; t < lanes; ++t) norms[t] = std::sqrt(norms[t] * norm_inflation) * norm_inflation;
    scratch.uncertain.resize(lanes);
    kernels::active_kernels().sign_partitions(scratch.sketch.data(), lanes, reps, k, norms, simhash_bound_.data(),
                                              scratch.part.data(), scratch.uncertain.data());
    for (std::size_t t = 0; t < count; ++t) {
        if (!scratch.uncertain[t]) continue;
        const float* x = rows + t * stride;
        for (std::size_t r = 0; r < reps; ++r) {
            std::uint32_t pattern = 0;
            for (std::size_t j = 0; j < k; ++j) {
                const std::size_t c = r * k + j;
                bool bit = scratch.sketch[c * lanes + t] > 0.0f;
                if (!(std::fabs(scratch.sketch[c * lanes + t]) > norms[t] * simhash_bound_[c])) {
                    // The reference value: float64 sum, in coordinate order, of exact products.
                    const float* g = simhash_columns_.data() + c * d;
                    double exact = 0.0;
                    for (std::size_t i = 0; i < d; ++i) exact += double(x[i]) * double(g[i]);
                    bit = exact > 0.0;
                }
                pattern = (pattern << 1) | std::uint32_t(bit);
            }
            scratch.part[r * lanes + t] = kernels::gray_decode(pattern);
        }
    }
}

void FdeEncoder::project_tokens(const float* rows, std::size_t count, std::size_t stride,
                                Scratch& scratch) const {
    const kernels::KernelTable& kern = kernels::active_kernels();
    const std::size_t d = config_.dimension;
    if (config_.projection_type == FdeProjection::dense_sign) {
        scratch.dense.resize(count * dense_width_);
        kern.project_rows(rows, count, stride, d, dense_.data(), dense_width_, scratch.dense.data(), dense_width_);
    } else if (config_.projection_type == FdeProjection::ams_sketch) {
        const std::size_t lanes = scratch.lanes, outputs = config_.num_repetitions * config_.projected_dim();
        // lane_sums reads 16 lanes from an item's first token on: a zero tail after the last row.
        scratch.dense.resize(outputs * lanes + 16);
        kern.signed_sums(scratch.transposed.data(), lanes, ams_index_.data(), ams_sign_.data(),
                         ams_start_.data(), outputs, scratch.dense.data());
        std::fill(scratch.dense.end() - 16, scratch.dense.end(), 0.0f);
    }
}

void FdeEncoder::encode_item(const float* rows, std::size_t count, std::size_t stride,
                             std::size_t at, bool documents, Scratch& scratch, float* out) const {
    const std::size_t k = config_.num_simhash_projections;
    const std::size_t reps = config_.num_repetitions, d_proj = config_.projected_dim();
    const std::size_t parts = config_.partitions(), rep_size = parts * d_proj;
    // Projected token t of repetition r (token at + t of the batch): `step`-strided values.
    const std::size_t lanes = scratch.lanes;
    const std::size_t step = config_.projection_type == FdeProjection::ams_sketch ? lanes : 1;
    auto projected = [&](std::size_t t, std::size_t r) -> const float* {
        switch (config_.projection_type) {
            case FdeProjection::identity: return rows + t * stride;
            case FdeProjection::dense_sign: return scratch.dense.data() + (at + t) * dense_width_ + r * d_proj;
            case FdeProjection::ams_sketch: break;
        }
        return scratch.dense.data() + r * d_proj * step + at + t;  // transposed: tokens in lanes
    };

    const bool sketched = config_.final_projection_dimension != 0;
    float* block = out;
    if (sketched) {
        scratch.block.assign(config_.block_dim(), 0.0f);
        block = scratch.block.data();
    } else {
        std::fill(out, out + config_.block_dim(), 0.0f);
    }
    // Partition of token t in repetition r: part(r)[t].
    auto part = [&](std::size_t r) { return scratch.part.data() + r * lanes + at; };
    for (std::size_t r = 0; r < reps; ++r) {
        const std::uint32_t* partition = part(r);
        float* rep_block = block + r * rep_size;
        if (step == 1) {  // row-major projections: add whole vectors
            for (std::size_t t = 0; t < count; ++t) {
                float* target = rep_block + partition[t] * d_proj;
                const float* v = projected(t, r);
                for (std::size_t j = 0; j < d_proj; ++j) target[j] += v[j];
            }
        } else if (d_proj >= 16) {  // transposed projections (tokens in lanes): 16 slots at a time
            for (std::size_t j0 = 0; j0 < d_proj; j0 += 16)
                kernels::active_kernels().lane_sums(projected(0, r) + j0 * step, step, std::min<std::size_t>(16, d_proj - j0),
                                                    1, count, partition, 0, rep_block + j0, 0, d_proj);
        } else {  // narrow projections: several repetitions per 16 rows
            const std::size_t group = std::min(16 / d_proj, reps - r);
            kernels::active_kernels().lane_sums(projected(0, r), step, d_proj, group, count, partition, lanes,
                                                rep_block, rep_size, d_proj);
            r += group - 1;
        }
    }
    if (documents) {  // partition sizes: averages, and which partitions are empty
        scratch.sizes.assign(reps * parts, 0u);
        for (std::size_t r = 0; r < reps; ++r)
            for (std::size_t t = 0; t < count; ++t) ++scratch.sizes[r * parts + part(r)[t]];
        constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
        for (std::size_t r = 0; r < reps; ++r) {
            const std::uint32_t* partition = part(r);
            const std::uint32_t* sizes = scratch.sizes.data() + r * parts;
            // The first token of each partition: the nearest token to an empty partition's
            // pattern (ties: lowest index) is the first token of the nearest occupied pattern
            // (ties: lowest first token).
            std::vector<std::uint32_t>& first_token = scratch.first_token;
            first_token.assign(parts, none);
            for (std::size_t t = count; t-- > 0;) first_token[partition[t]] = std::uint32_t(t);
            std::vector<std::uint32_t>& occupied = scratch.occupied;  // listed when first needed
            occupied.clear();
            for (std::size_t p = 0; p < parts; ++p) {
                float* target = block + r * rep_size + p * d_proj;
                if (sizes[p] > 1) {
                    const float n = float(sizes[p]);
                    for (std::size_t j = 0; j < d_proj; ++j) target[j] /= n;
                } else if (sizes[p] == 0 && config_.fill_empty_partitions && k > 0) {
                    const std::uint32_t wanted = std::uint32_t(p ^ (p >> 1));
                    // The patterns one and then two bits away first (where the nearest
                    // occupied one usually is), then every occupied pattern. Flipping bit a of
                    // the pattern flips bits a..0 of the partition index (gray_decode is a
                    // prefix XOR); first_token of an empty partition is `none`.
                    std::uint32_t nearest = none;
                    for (std::size_t a = 0; a < k; ++a)
                        nearest = std::min(nearest, first_token[p ^ ((2u << a) - 1u)]);
                    if (nearest == none)
                        for (std::size_t a = 0; a < k; ++a)
                            for (std::size_t b = a + 1; b < k; ++b)
                                nearest = std::min(nearest, first_token[p ^ ((2u << a) - 1u) ^ ((2u << b) - 1u)]);
                    if (nearest == none) {
                        if (occupied.empty())
                            for (std::size_t q = 0; q < parts; ++q)
                                if (sizes[q]) occupied.push_back(std::uint32_t(q));
                        int best = std::numeric_limits<int>::max();
                        for (std::uint32_t q : occupied) {
                            const int distance = popcount((q ^ (q >> 1)) ^ wanted);
                            if (distance < best || (distance == best && first_token[q] < nearest))
                                best = distance, nearest = first_token[q];
                        }
                    }
                    const float* v = projected(nearest, r);
#ifdef __GNUC__
#pragma GCC unroll 8  // the loop's own instructions outnumbered the copies
#endif
                    for (std::size_t j = 0; j < d_proj; ++j) target[j] = v[j * step];
                }
            }
        }
    }
    if (sketched) {
        const std::size_t n = config_.final_projection_dimension;
        std::fill(out, out + n, 0.0f);
        for (std::size_t i = 0; i < final_slot_.size(); ++i) out[final_slot_[i]] += final_sign_[i] * block[i];
    }
}

void FdeEncoder::for_each_sketched(const MultiVectorsView& items, const char* name, std::size_t threads,
                                   bool project, const ItemFn& fn) const {
    constexpr std::size_t batch_tokens = 128;  // rows per SimHash product (short items share one)
    const std::size_t d = config_.dimension;
    const bool lanes_needed = config_.num_simhash_projections > 0 || (project && config_.projection_type == FdeProjection::ams_sketch);
    const std::size_t tasks = (items.count + items_per_task - 1) / items_per_task;
    const kernels::KernelTable& kern = kernels::active_kernels();
    std::vector<Scratch> scratch(resolve_threads(threads, tasks));
    FiniteCheck check(items, name);
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t worker) {
        Scratch& s = scratch[worker];
        const std::size_t last = std::min(items.count, (task + 1) * items_per_task);
        for (std::size_t i = task * items_per_task; i < last;) {
            std::size_t j = i, tokens = 0;
            while (j < last && (j == i || tokens + items.item_length(j) <= batch_tokens)) tokens += items.item_length(j++);
            const ItemRows rows = float_items(items, i, j, s.tokens, kern, true);  // one run: the batch
            const float* batch = rows.item(i);
            if (check.needed() && !rows.finite)
                for (std::size_t c = i; c < j; ++c) check.rows(c, rows.item(c), items.item_length(c), rows.stride);
            s.lanes = (tokens + 15) / 16 * 16;
            if (lanes_needed) {
                s.transposed.resize(d * s.lanes);
                s.norms.resize(s.lanes);
                kern.to_lanes(batch, tokens, rows.stride, d, s.transposed.data(), s.lanes, s.norms.data());
            }
            partition_tokens(batch, tokens, rows.stride, s);
            if (project) project_tokens(batch, tokens, rows.stride, s);
            for (; i < j; ++i) {
                const std::size_t at = std::size_t(items.offsets[i]) - rows.first_row;
                fn(i, rows.item(i), rows.stride, at, s);
            }
        }
    });
    check.raise();
}


void FdeEncoder::encode(const MultiVectorsView& items, float* out, std::size_t threads,
                        bool documents) const {
    check_items(items);
    const char* name = documents ? "docs" : "queries";
    for_each_sketched(items, name, threads, true, [&](std::size_t i, const float* rows, std::size_t stride,
                                                      std::size_t at, Scratch& s) {
        encode_item(rows, items.item_length(i), stride, at, documents, s, out + i * config_.output_dim());
    });
}

void FdeEncoder::encode_queries(const MultiVectorsView& items, float* out, std::size_t threads) const {
    encode(items, out, threads, false);
}

void FdeEncoder::encode_documents(const MultiVectorsView& items, float* out, std::size_t threads) const {
    encode(items, out, threads, true);
}

void FdeEncoder::partition_indices(const MultiVectorsView& items, std::uint32_t* out,
                                   std::size_t threads) const {
    check_items(items);
    const std::size_t reps = config_.num_repetitions;
    for_each_sketched(items, "items", threads, false, [&](std::size_t i, const float*, std::size_t, std::size_t at,
                                                          Scratch& s) {
        const std::size_t count = items.item_length(i), first = std::size_t(items.offsets[i]);
        for (std::size_t t = 0; t < count; ++t)
            for (std::size_t r = 0; r < reps; ++r) out[(first + t) * reps + r] = s.part[r * s.lanes + at + t];
    });
}

}  // namespace latefold
