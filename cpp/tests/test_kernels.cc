// C++ checks of the core without Python: every compiled SIMD path against the scalar twin on
// sizes around the register widths (the finiteness scan included), the thread pool's error path,
// and top-k ordering.
// Built with -DLATEFOLD_BUILD_CPP_TESTS=ON (and LATEFOLD_SANITIZE=ON for ASan/UBSan runs).
#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels/table.h"
#include "latefold/centroids.h"
#include "latefold/maxsim.h"
#include "latefold/quantize.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, double a = 0, double b = 0) {
    if (!ok) {
        ++failures;
        std::printf("FAILED: %s (%g vs %g)\n", what, a, b);
    }
}

latefold::MultiVectorsView view(const std::vector<float>& tokens, const std::vector<std::int64_t>& offsets,
                                std::size_t dim) {
    latefold::MultiVectorsView v;
    v.tokens = tokens.data();
    v.offsets = offsets.data();
    v.rows = tokens.size() / dim;
    v.count = offsets.size() - 1;
    v.dim = v.row_stride = dim;
    return v;
}

void kernels_match_scalar() {
    std::mt19937 gen(7);
    std::normal_distribution<float> normal;
    for (std::size_t dim : {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100}) {
        for (std::size_t m : {1, 15, 16, 17, 32, 33, 48, 65}) {
            for (std::size_t rows : {1, 2, 7, 8, 9, 12, 13, 25}) {
                std::vector<float> q(m * dim), doc(rows * dim);
                for (float& x : q) x = normal(gen);
                for (float& x : doc) x = normal(gen);
                const std::vector<std::int64_t> q_off{0, std::int64_t(m)}, d_off{0, std::int64_t(rows)};
                float expected = 0, got = 0;
                latefold::set_active_isa("scalar");
                latefold::maxsim_scores(view(q, q_off, dim), view(doc, d_off, dim), &expected, 1);
                for (latefold::Isa isa : latefold::supported_isas()) {
                    latefold::set_active_isa(latefold::isa_name(isa));
                    latefold::maxsim_scores(view(q, q_off, dim), view(doc, d_off, dim), &got, 1);
                    const double scale = double(m) * std::sqrt(double(dim)) * 1e-5 + 1e-6;
                    check(std::fabs(got - expected) <= scale, latefold::isa_name(isa), got, expected);
                }
            }
        }
    }
    latefold::set_active_isa("best");
}

void f16_conversion_is_exact() {
    for (latefold::Isa isa : latefold::supported_isas()) {
        const auto& kern = latefold::kernels::kernels_for(isa);
        std::vector<latefold::half_bits> all(65536);
        for (std::size_t i = 0; i < all.size(); ++i) all[i] = latefold::half_bits(i);
        std::vector<float> fast(all.size()), slow(all.size());
        const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
        kern.f16_to_f32(all.data(), fast.data(), all.size() - 3);  // odd length: tail path
        scalar.f16_to_f32(all.data(), slow.data(), all.size() - 3);
        // The finiteness flag: every run of 1..40 halves around each non-finite value and each
        // finite one next to it (0x7C00..0x7FFF and 0xFC00..0xFFFF are the non-finite halves).
        for (std::size_t at : {std::size_t(0x7BFF), std::size_t(0x7C00), std::size_t(0x7E01), std::size_t(0xFBFF),
                               std::size_t(0xFC00), std::size_t(0xFFFF), std::size_t(0x3C00)})
            for (std::size_t len = 1; len <= 40; ++len)
                for (std::size_t lead = 0; lead < len && lead <= at; ++lead) {
                    if (at - lead + len > all.size()) continue;
                    const latefold::half_bits* run = all.data() + at - lead;
                    bool finite = true;
                    for (std::size_t i = 0; i < len; ++i) finite = finite && (run[i] & 0x7C00u) != 0x7C00u;
                    std::vector<float> out(len);
                    const bool got = kern.f16_to_f32(run, out.data(), len);
                    check(got == finite && scalar.f16_to_f32(run, out.data(), len) == finite, "f16 finiteness flag",
                          float(len), float(at));
                }
        for (std::size_t i = 0; i + 3 < all.size(); ++i) {
            const bool same = (std::isnan(fast[i]) && std::isnan(slow[i])) || fast[i] == slow[i];
            check(same && std::signbit(fast[i]) == std::signbit(slow[i]), "f16 conversion", fast[i], slow[i]);
        }
    }
}

// Unchecked float rows (a list's) are checked by the MaxSim kernel as it reads them: on every
// path, a NaN or an infinity anywhere (full registers, the tail past them, a last partial tile)
// is reported with its token, and finite rows score exactly as checked ones, also when their
// inner products overflow (a NaN score is then a result, not an error).
void maxsim_flags_values_as_it_reads() {
    std::mt19937 gen(5);
    std::normal_distribution<float> normal;
    for (latefold::Isa isa : latefold::supported_isas()) {
        latefold::set_active_isa(latefold::isa_name(isa));
        for (std::size_t dim : {1, 7, 16, 17, 40}) {
            for (std::size_t rows : {1, 5, 8, 13, 25}) {
                std::vector<float> q(33 * dim), doc(rows * dim);
                for (float& x : q) x = normal(gen);
                for (float& x : doc) x = normal(gen);
                const std::vector<std::int64_t> q_off{0, 33}, d_off{0, std::int64_t(rows)};
                latefold::MultiVectorsView unchecked = view(doc, d_off, dim);
                unchecked.values_checked = false;
                float want = 0, got = 0;
                latefold::maxsim_scores(view(q, q_off, dim), view(doc, d_off, dim), &want, 1);
                latefold::maxsim_scores(view(q, q_off, dim), unchecked, &got, 1);
                check(std::memcmp(&want, &got, sizeof want) == 0, "unchecked finite rows", got, want);
                for (std::size_t at = 0; at < doc.size(); at += 1 + at % 5) {
                    const float kept = doc[at];
                    doc[at] = at % 3 ? NAN : (at % 2 ? INFINITY : -INFINITY);
                    std::string error;
                    try {
                        latefold::maxsim_scores(view(q, q_off, dim), unchecked, &got, 1);
                    } catch (const std::invalid_argument& e) {
                        error = e.what();
                    }
                    const std::string token = "token " + std::to_string(at / dim) + ")";
                    check(error.find(token) != std::string::npos, "non-finite value reported", double(at), double(dim));
                    doc[at] = kept;
                }
            }
        }
        // Inner products that overflow: +inf for one query token, -inf for the other: a NaN score.
        const std::size_t dim = 24;
        std::vector<float> q(2 * dim, 1e20f), doc(3 * dim, 1e20f);
        for (std::size_t k = dim; k < 2 * dim; ++k) q[k] = -1e20f;
        const std::vector<std::int64_t> q_off{0, 2}, d_off{0, 3};
        latefold::MultiVectorsView unchecked = view(doc, d_off, dim);
        unchecked.values_checked = false;
        float got = 0;
        bool raised = false;
        try {
            latefold::maxsim_scores(view(q, q_off, dim), unchecked, &got, 1);
        } catch (const std::invalid_argument&) {
            raised = true;
        }
        check(!raised && std::isnan(got), "overflow is a result", got, 0);
    }
    latefold::set_active_isa("best");
}

// float16 rows read in place: on every path, the bits of maxsim_packed over the rows widened
// beforehand (strided rows, partial tiles, one to three query groups, streamed or not), NaN when
// flagged rows hold a value that is not finite.
void maxsim_f16_in_place_matches_widened() {
    std::mt19937 gen(9);
    std::normal_distribution<float> normal;
    for (latefold::Isa isa : latefold::supported_isas()) {
        const auto& kern = latefold::kernels::kernels_for(isa);
        for (std::size_t dim : {1, 7, 16, 17, 40, 128}) {
            for (std::size_t m : {1, 16, 32, 33, 65}) {
                for (std::size_t rows : {1, 5, 8, 13, 25}) {
                    const std::size_t stride = dim + (rows % 2) * 3;
                    std::vector<float> q(m * dim);
                    for (float& x : q) x = normal(gen);
                    const std::size_t padded = latefold::kernels::padded_query_rows(m);
                    std::vector<float> packed(padded * dim);
                    latefold::kernels::pack_columns(m, dim, [&](std::size_t t, std::size_t k) { return q[t * dim + k]; },
                                                    packed.data());
                    std::vector<latefold::half_bits> doc(rows * stride, latefold::float_to_half(7.0f));
                    std::vector<float> wide(rows * dim);
                    for (std::size_t r = 0; r < rows; ++r)
                        for (std::size_t k = 0; k < dim; ++k) {
                            doc[r * stride + k] = latefold::float_to_half(normal(gen));
                            wide[r * dim + k] = latefold::kernels::half_to_float(doc[r * stride + k]);
                        }
                    const float want = kern.maxsim_packed(packed.data(), padded, dim, wide.data(), rows, dim, false, false);
                    for (int mode = 0; mode < 4; ++mode) {
                        const float got = kern.maxsim_packed_f16(packed.data(), padded, dim, doc.data(), rows, stride,
                                                                 mode & 1, mode & 2);
                        check(std::memcmp(&got, &want, sizeof got) == 0, "maxsim_packed_f16", got, want);
                    }
                    const std::size_t at = (rows - 1) * stride + dim - 1;  // the last value
                    doc[at] = 0x7C00;                                        // +inf
                    const float flagged = kern.maxsim_packed_f16(packed.data(), padded, dim, doc.data(), rows, stride,
                                                                 true, true);
                    check(std::isnan(flagged), "maxsim_packed_f16 flags an infinity", flagged, 0);
                }
            }
        }
    }
}

// Every other kernel of each path against the scalar twin on odd sizes.
void tile_kernels_match_scalar() {
    std::mt19937 gen(11);
    std::normal_distribution<float> normal;
    const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
    for (latefold::Isa isa : latefold::supported_isas()) {
        const auto& kern = latefold::kernels::kernels_for(isa);
        for (std::size_t depth : {1, 3, 8, 17, 64}) {
            for (std::size_t n : {1, 16, 20, 33, 100}) {
                for (std::size_t count : {1, 7, 13, 40}) {
                    const std::size_t width = latefold::kernels::padded_query_rows(n);
                    std::vector<float> m(n * depth), rows(count * depth), packed(width * depth);
                    for (float& x : m) x = normal(gen);
                    for (float& x : rows) x = normal(gen);
                    latefold::kernels::pack_columns(
                        n, depth, [&](std::size_t c, std::size_t k) { return m[c * depth + k]; }, packed.data());
                    std::vector<float> a(count * width), b(count * width);
                    kern.project_rows(rows.data(), count, depth, depth, packed.data(), width, a.data(), width);
                    scalar.project_rows(rows.data(), count, depth, depth, packed.data(), width, b.data(), width);
                    for (std::size_t i = 0; i < a.size(); ++i)
                        check(std::fabs(a[i] - b[i]) <= 1e-4f * (1 + std::sqrt(float(depth))), "project_rows", a[i], b[i]);
                    std::vector<float> bias(width, INFINITY);
                    for (std::size_t c = 0; c < n; ++c) bias[c] = normal(gen);
                    std::vector<std::uint32_t> ia(count), ib(count);
                    std::vector<float> va(count), vb(count);
                    kern.nearest_rows(rows.data(), count, depth, depth, packed.data(), bias.data(), width, ia.data(), va.data());
                    scalar.nearest_rows(rows.data(), count, depth, depth, packed.data(), bias.data(), width, ib.data(), vb.data());
                    for (std::size_t t = 0; t < count; ++t) {
                        check(std::fabs(va[t] - vb[t]) <= 1e-4f * (1 + float(depth)), "nearest value", va[t], vb[t]);
                        check(ia[t] < n, "nearest index in range", ia[t], double(n));
                    }
                }
            }
        }
        // Sparse signed sums: 3 outputs over 16 to 144 token lanes (every tail of lane groups).
        for (std::size_t columns : {16, 48, 112, 128, 144}) {
            std::vector<float> x(10 * columns), sign{1, -1, 1, 1, -1, 1, -1};
            for (float& v : x) v = normal(gen);
            const std::vector<std::uint32_t> index{0, 3, 9, 1, 2, 4, 8}, start{0, 3, 3, 7};
            std::vector<float> a(3 * columns), b(3 * columns);
            kern.signed_sums(x.data(), columns, index.data(), sign.data(), start.data(), 3, a.data());
            scalar.signed_sums(x.data(), columns, index.data(), sign.data(), start.data(), 3, b.data());
            for (std::size_t i = 0; i < a.size(); ++i) check(std::fabs(a[i] - b[i]) <= 1e-5f, "signed_sums", a[i], b[i]);
        }
        // Dense products with tokens in lanes: every tile shape (columns 1..9, 16..80 lanes).
        for (std::size_t columns : {1, 3, 4, 5, 9})
            for (std::size_t step : {16, 48, 80}) {
                const std::size_t depth = 37;
                std::vector<float> x(depth * step), m(columns * depth);
                for (float& v : x) v = normal(gen);
                for (float& v : m) v = normal(gen);
                std::vector<float> a(columns * step, -1.0f), b(columns * step, -2.0f);
                kern.project_lanes(x.data(), step, depth, m.data(), columns, a.data());
                scalar.project_lanes(x.data(), step, depth, m.data(), columns, b.data());
                for (std::size_t i = 0; i < a.size(); ++i)
                    check(std::fabs(a[i] - b[i]) <= 1e-4f * (1 + std::sqrt(float(depth))), "project_lanes", a[i], b[i]);
            }
        // Per-partition sums of tokens in lanes: the same additions in the same order.
        // Widths 1..16 rows per repetition, up to 16 / width repetitions per call.
        for (std::size_t width : {1, 3, 7, 8, 9, 16})
            for (std::size_t reps : {std::size_t(1), 16 / width})
                for (std::size_t count : {1, 15, 16, 17, 40}) {
                    const std::size_t step = (count + 15) / 16 * 16, parts = 5, out_stride = width + 2;
                    const std::size_t rep_stride = parts * out_stride + 1;
                    std::vector<float> v(reps * width * step);
                    for (float& f : v) f = normal(gen);
                    std::vector<std::uint32_t> part(reps * step);
                    for (auto& p : part) p = std::uint32_t(gen() % parts);
                    std::vector<float> a(reps * rep_stride, 0.0f), b(reps * rep_stride, 0.0f);
                    kern.lane_sums(v.data(), step, width, reps, count, part.data(), step, a.data(), rep_stride, out_stride);
                    scalar.lane_sums(v.data(), step, width, reps, count, part.data(), step, b.data(), rep_stride, out_stride);
                    for (std::size_t i = 0; i < a.size(); ++i) check(a[i] == b[i], "lane_sums", a[i], b[i]);
                }
        // Rows to lanes: a pure transposition, zero-padded.
        for (std::size_t dim : {1, 15, 16, 17, 40})
            for (std::size_t count : {1, 16, 20}) {
                const std::size_t step = (count + 15) / 16 * 16, stride = dim + 3;
                std::vector<float> rows(count * stride);
                for (float& f : rows) f = normal(gen);
                std::vector<float> a(dim * step, -1.0f), b(dim * step, -2.0f), sa(step, -1.0f), sb(step, -2.0f);
                kern.to_lanes(rows.data(), count, stride, dim, a.data(), step, sa.data());
                scalar.to_lanes(rows.data(), count, stride, dim, b.data(), step, sb.data());
                for (std::size_t i = 0; i < a.size(); ++i) check(a[i] == b[i], "to_lanes", a[i], b[i]);
                for (std::size_t t = 0; t < step; ++t)
                    check(std::fabs(sa[t] - sb[t]) <= 1e-5f * float(dim) * sb[t], "to_lanes squares", sa[t], sb[t]);
            }
        // SimHash partitions from sketch values in lanes: identical indices and flags (k up to
        // 7, values at and near zero among them).
        for (std::size_t k : {1, 3, 7}) {
            const std::size_t reps = 3, lanes = 48;
            std::vector<float> sketch(reps * k * lanes), norms(lanes), bounds(reps * k);
            for (float& v : sketch) v = gen() % 5 == 0 ? 0.01f * normal(gen) : normal(gen);
            sketch[5] = 0.0f, sketch[7] = -0.0f;
            for (float& v : norms) v = std::fabs(normal(gen));
            for (float& v : bounds) v = 0.01f;
            std::vector<std::uint32_t> pa(reps * lanes), pb(reps * lanes), ua(lanes), ub(lanes);
            kern.sign_partitions(sketch.data(), lanes, reps, k, norms.data(), bounds.data(), pa.data(), ua.data());
            scalar.sign_partitions(sketch.data(), lanes, reps, k, norms.data(), bounds.data(), pb.data(), ub.data());
            for (std::size_t i = 0; i < pa.size(); ++i) check(pa[i] == pb[i], "sign_partitions", pa[i], pb[i]);
            for (std::size_t t = 0; t < lanes; ++t) check(ua[t] == ub[t], "sign_partitions uncertain", ua[t], ub[t]);
        }
        // Fast-scan tables from float tables: identical bytes, base and step on every path
        // (ranges of 0 included: the step is then 1), and no vector's sum of entries past the
        // 16-bit limit (at m = 1,500 the sum of the ranges sets the step).
        for (std::size_t m : {1, 5, 32, 1500}) {
            std::vector<float> lut(m * 16);
            for (float& v : lut) v = normal(gen);
            std::fill(lut.begin(), lut.begin() + 16, 0.75f);
            const std::size_t table = latefold::kernels::fastscan_table_bytes((m + 3) / 4 * 2);
            for (float qmax : {127.0f, 51.0f}) {
                std::vector<std::uint8_t> ta(table, 0), tb(table, 0);
                float base_a, base_b, delta_a, delta_b;
                kern.fastscan_table(lut.data(), m, qmax, ta.data(), &base_a, &delta_a);
                scalar.fastscan_table(lut.data(), m, qmax, tb.data(), &base_b, &delta_b);
                check(base_a == base_b, "fastscan_table base", base_a, base_b);
                check(delta_a == delta_b, "fastscan_table delta", delta_a, delta_b);
                for (std::size_t i = 0; i < table; ++i) check(ta[i] == tb[i], "fastscan_table", ta[i], tb[i]);
                std::size_t largest = 0;  // the sum of each subspace's largest entry
                for (std::size_t s = 0; s < m; ++s) {
                    const std::uint8_t* entries = ta.data() + latefold::kernels::fastscan_table_offset(s);
                    largest += *std::max_element(entries, entries + 16);
                }
                check(largest <= latefold::kernels::fastscan_sum_limit, "fastscan_table sum limit", double(largest), 65535.0);
            }
        }
        // Fast scan: integer sums, identical on every path, for 1..10 queries at once (the
        // kernels take the queries four or eight at a time).
        for (std::size_t pairs : {2, 4, 8, 10}) {
            const std::size_t blocks = 3, table = latefold::kernels::fastscan_table_bytes(pairs);
            std::vector<std::uint8_t> codes(blocks * pairs * 32), tables(10 * table);
            for (auto& c : codes) c = std::uint8_t(gen());
            for (std::size_t q = 0; q < 10; ++q)
                for (std::size_t sub = 0; sub < 2 * pairs; ++sub) {
                    std::uint8_t entries[16];
                    for (auto& e : entries) e = std::uint8_t(gen() & 127);
                    latefold::kernels::set_fastscan_table(tables.data() + q * table, sub, entries);
                }
            const std::vector<std::int32_t> low{-1, 2000, -1, 2500, 1000, 70000, 1500, -5, 2100, 0},
                high{65536, 3000, 2500, 2600, 65536, 80000, 65535, 2000, 100000, 2400};
            for (std::size_t nq = 1; nq <= 10; ++nq) {
                std::vector<std::uint16_t> a(nq * blocks * 32), b(nq * blocks * 32);
                std::vector<std::uint32_t> ma(nq * blocks), mb(nq * blocks);
                kern.fastscan(codes.data(), blocks, pairs, tables.data(), nq, low.data(), high.data(), a.data(), ma.data());
                scalar.fastscan(codes.data(), blocks, pairs, tables.data(), nq, low.data(), high.data(), b.data(), mb.data());
                for (std::size_t i = 0; i < a.size(); ++i) check(a[i] == b[i], "fastscan", a[i], b[i]);
                for (std::size_t i = 0; i < ma.size(); ++i) check(ma[i] == mb[i], "fastscan mask", ma[i], mb[i]);
            }
        }
    }
}

// The PQ kernels with float tables and the fast scan's blocked layout against the scalar twins on
// odd sizes: the same bits (the order of the additions is part of adc_rows' and adc_scan's
// contracts), and the same bytes with every padding byte written.
void pq_kernels_match_scalar() {
    std::mt19937 gen(17);
    std::normal_distribution<float> normal;
    const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
    auto same_bits = [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; };
    for (latefold::Isa isa : latefold::supported_isas()) {
        const auto& kern = latefold::kernels::kernels_for(isa);
        // Gathered estimates: every tail of the four partial sums, both code widths, rows
        // repeated and out of order, codes packed tightly or with room between vectors.
        for (std::size_t nbits : {4, 8})
            for (std::size_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33})
                for (std::size_t spare : {0, 3}) {
                    const std::size_t entries = std::size_t(1) << nbits, vectors = 40;
                    const std::size_t code_size = (nbits == 8 ? m : (m + 1) / 2) + spare;
                    std::vector<float> tables(m * entries);
                    for (float& v : tables) v = normal(gen);
                    std::vector<std::uint8_t> codes(vectors * code_size);
                    for (auto& c : codes) c = std::uint8_t(gen());
                    for (std::size_t count : {0, 1, 5, 33}) {
                        std::vector<std::uint32_t> rows(count);
                        for (auto& r : rows) r = std::uint32_t(gen() % vectors);
                        std::vector<float> a(count, NAN), b(count, NAN);
                        kern.adc_rows(tables.data(), codes.data(), code_size, rows.data(), count, m, nbits, a.data());
                        scalar.adc_rows(tables.data(), codes.data(), code_size, rows.data(), count, m, nbits, b.data());
                        for (std::size_t i = 0; i < count; ++i) check(same_bits(a[i], b[i]), "adc_rows", a[i], b[i]);
                    }
                }
        // 8-bit scans: 1 to 3 queries (two per load of codes, then one), every tail of four vectors.
        for (std::size_t m : {1, 3, 4, 5, 16, 17})
            for (std::size_t count : {1, 2, 3, 4, 5, 7, 8, 9, 33})
                for (std::size_t nq : {1, 2, 3})
                    for (float sign : {1.0f, -1.0f}) {
                        std::vector<float> tables(nq * m * 256);
                        for (float& v : tables) v = normal(gen);
                        std::vector<std::uint8_t> codes(count * m);
                        for (auto& c : codes) c = std::uint8_t(gen());
                        std::vector<float> a(nq * count, NAN), b(nq * count, NAN);
                        kern.adc_scan(tables.data(), nq, codes.data(), count, m, sign, a.data());
                        scalar.adc_scan(tables.data(), nq, codes.data(), count, m, sign, b.data());
                        for (std::size_t i = 0; i < a.size(); ++i) check(same_bits(a[i], b[i]), "adc_scan", a[i], b[i]);
                    }
        // Blocked layout: partial blocks and 8-byte groups, pairs beyond the code bytes.
        for (std::size_t count : {1, 7, 8, 9, 31, 32, 33, 65, 100})
            for (std::size_t bytes : {1, 2, 3, 7, 8, 9, 16, 17})
                for (std::size_t extra_pairs : {0, 2}) {
                    const std::size_t pairs = (bytes + 1) / 2 * 2 + extra_pairs, blocks = (count + 31) / 32;
                    std::vector<std::uint8_t> codes(count * bytes);
                    for (auto& c : codes) c = std::uint8_t(gen());
                    std::vector<std::uint8_t> a(blocks * pairs * 32, 0xAB), b(blocks * pairs * 32, 0xCD);
                    kern.block_codes(codes.data(), count, bytes, pairs, a.data());
                    scalar.block_codes(codes.data(), count, bytes, pairs, b.data());
                    for (std::size_t i = 0; i < a.size(); ++i) check(a[i] == b[i], "block_codes", a[i], b[i]);
                }
    }
}

// Gathered dot products (graph search), float32 and float16 rows, against the scalar twin.
void dot_rows_match_scalar() {
    std::mt19937 gen(13);
    std::normal_distribution<float> normal;
    const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
    for (std::size_t dim : {1, 3, 8, 15, 16, 17, 33, 64, 100, 128}) {
        const std::size_t rows = 37;
        std::vector<float> base(rows * dim), q(dim);
        std::vector<latefold::half_bits> half(rows * dim);
        for (float& v : base) v = normal(gen);
        for (float& v : q) v = normal(gen);
        for (std::size_t i = 0; i < half.size(); ++i) half[i] = latefold::half_bits(0x3000u + (gen() & 0x7FFu) + ((gen() & 1u) << 15));
        for (std::size_t count : {0, 1, 3, 4, 5, 9, 30}) {
            std::vector<std::uint32_t> ids(count);
            for (auto& id : ids) id = std::uint32_t(gen() % rows);
            std::vector<float> want(count), got(count), want16(count), got16(count);
            scalar.dot_rows_f32(q.data(), base.data(), dim, ids.data(), count, dim, want.data());
            scalar.dot_rows_f16(q.data(), half.data(), dim, ids.data(), count, dim, want16.data());
            for (latefold::Isa isa : latefold::supported_isas()) {
                const auto& k = latefold::kernels::kernels_for(isa);
                k.dot_rows_f32(q.data(), base.data(), dim, ids.data(), count, dim, got.data());
                k.dot_rows_f16(q.data(), half.data(), dim, ids.data(), count, dim, got16.data());
                for (std::size_t i = 0; i < count; ++i) {
                    const double bound = 1e-5 * double(dim) * 4;
                    check(std::fabs(got[i] - want[i]) <= bound, "dot_rows_f32", got[i], want[i]);
                    check(std::fabs(got16[i] - want16[i]) <= bound, "dot_rows_f16", got16[i], want16[i]);
                }
            }
        }
    }
}

// Centroid interaction: integer arithmetic, so every path gives the scalar twin's value, and both
// the sum of per-column maxima computed here; entries up to the int16 limit the caller keeps
// (the levels summing to +-32767), padded widths of 16, 32 and 48 (an odd group of 16 columns).
void centroid_maxsim_matches_scalar() {
    std::mt19937 gen(17);
    const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
    for (std::size_t padded : {16, 32, 48, 96}) {
        const std::size_t centroids = 300;
        for (std::size_t levels : {1, 2, 3}) {
            const int most = 32767 / int(levels);  // a sum over the levels stays within int16
            std::vector<std::int16_t> table(levels * centroids * padded);
            for (auto& v : table) v = std::int16_t(int(gen() % (2 * most + 1)) - most);
            for (std::size_t l = 0; l < levels; ++l)  // rows at the extremes
                for (std::size_t c = 0; c < 2; ++c)
                    for (std::size_t j = 0; j < padded; ++j)
                        table[(l * centroids + c) * padded + j] = std::int16_t(c == 0 ? most : -most);
            for (std::size_t count : {1, 2, 7, 64, 250}) {
                std::vector<std::uint16_t> codes(count * levels);
                for (std::size_t t = 0; t < count; ++t)
                    for (std::size_t l = 0; l < levels; ++l)
                        codes[t * levels + l] = std::uint16_t(l * centroids + (t < 3 ? t : gen() % centroids));
                std::int64_t expected = 0;
                for (std::size_t j = 0; j < padded; ++j) {
                    int b = -32768;
                    for (std::size_t t = 0; t < count; ++t) {
                        int r = 0;
                        for (std::size_t l = 0; l < levels; ++l) r += table[codes[t * levels + l] * padded + j];
                        b = std::max(b, r);
                    }
                    expected += b;
                }
                const std::int64_t want = scalar.centroid_maxsim(table.data(), padded, codes.data(), count, levels);
                check(want == expected, "centroid_maxsim scalar", double(want), double(expected));
                for (latefold::Isa isa : latefold::supported_isas()) {
                    const std::int64_t got =
                        latefold::kernels::kernels_for(isa).centroid_maxsim(table.data(), padded, codes.data(), count, levels);
                    check(got == want, "centroid_maxsim", double(got), double(want));
                }
            }
        }
    }
}

// A query's centroid table and its int16 form on every path: the table within float32 (or, on
// the AMX path, bfloat16) rounding of float64 inner products, the int16 entries within half a step
// of table * scale, and no token's sum over the two levels past int16 whatever its codes (the
// scale comes from norms, so a query of large values is as safe as a unit one).
void centroid_table_quantized() {
    std::mt19937 gen(31);
    std::normal_distribution<float> normal;
    const std::size_t n = 3000, dim = 24, count = 32;
    std::vector<float> rows(n * dim);
    for (float& v : rows) v = normal(gen);
    const latefold::TokenCentroids centroids = latefold::TokenCentroids::train(rows.data(), n, dim, dim, count, 2, 3, 7, 1);
    for (float magnitude : {1e-3f, 1.0f, 1e3f})
        for (std::size_t m : {1, 5, 40}) {
            std::vector<float> q(m * dim);
            for (float& v : q) v = normal(gen) * magnitude;
            double norm = 0.0;
            for (std::size_t t = 0; t < m; ++t) {
                double s = 0.0;
                for (std::size_t k = 0; k < dim; ++k) s += double(q[t * dim + k]) * q[t * dim + k];
                norm = std::max(norm, std::sqrt(s));
            }
            const std::size_t padded = latefold::kernels::padded_query_rows(m);
            std::vector<float> packed(padded * dim), table(centroids.rows() * padded);
            latefold::kernels::pack_columns(m, dim, [&](std::size_t t, std::size_t k) { return q[t * dim + k]; }, packed.data());
            std::vector<std::int16_t> quantized(table.size());
            for (latefold::Isa isa : latefold::supported_isas()) {
                latefold::set_active_isa(latefold::isa_name(isa));
                centroids.query_table(packed.data(), padded, table.data());
                const float scale = centroids.quantize_table(table.data(), padded, norm, quantized.data());
                const double rounding = // the bfloat16 tables round both factors (2^-8 each)
                    isa == latefold::Isa::amx || isa == latefold::Isa::avx512bf16 ? std::ldexp(1.0, -7) : 1e-5;
                for (std::size_t c = 0; c < centroids.rows(); ++c)
                    for (std::size_t j = 0; j < padded; ++j) {
                        const float* centroid = centroids.data() + c * dim;
                        double exact = 0.0, mass = 0.0;
                        for (std::size_t k = 0; j < m && k < dim; ++k) {
                            exact += double(q[j * dim + k]) * centroid[k];
                            mass += std::fabs(double(q[j * dim + k]) * centroid[k]);
                        }
                        const float got = table[c * padded + j];
                        check(std::fabs(got - exact) <= rounding * mass + 1e-30, "centroid table", got, exact);
                        check(std::fabs(quantized[c * padded + j] - double(got) * scale) <= 0.5 + 1e-3,
                              "quantized centroid table", quantized[c * padded + j], double(got) * scale);
                    }
                for (std::size_t j = 0; j < padded; ++j) {  // the largest sums of a first- and a second-level entry
                    int most = 0;
                    for (int sign : {-1, 1}) {
                        int a = 0, b = 0;
                        for (std::size_t c = 0; c < count; ++c) {
                            a = std::max(a, sign * quantized[c * padded + j]);
                            b = std::max(b, sign * quantized[(count + c) * padded + j]);
                        }
                        most = std::max(most, a + b);
                    }
                    check(most <= 32767, "quantized table within int16", most);
                    check(j >= m || most >= 1000, "quantized table resolution", most);
                }
            }
            latefold::set_active_isa("best");
        }
}

// A centroid table from bfloat16 values: the scalar twin against float64 sums of the same
// products, every path against the scalar twin, both within the float32 rounding of a sum of dim
// products (dim + 1 units of the summed magnitudes, plus flushed subnormals); padding columns 0.
// Row counts around the tile's 16 rows, dims around its 32 values (odd ones and wider than a tile
// row take the vector fallback), strided rows.
void project_bf16_matches_scalar() {
    std::mt19937 gen(23);
    std::normal_distribution<float> normal;
    namespace k = latefold::kernels;
    const auto& scalar = k::kernels_for(latefold::Isa::scalar);
    for (std::size_t dim : {1, 2, 7, 30, 32, 34, 64, 96, 128, 130, 200, 512, 514})
        for (std::size_t m : {1, 16, 17, 33, 70})
            for (std::size_t count : {1, 15, 16, 17, 40, 70}) {
                const std::size_t stride = dim + 3, padded = k::padded_query_rows(m);
                std::vector<std::uint16_t> rows(count * stride, 0xFFFF), query(k::lane_layout_size(m, dim, 2));
                for (std::size_t r = 0; r < count; ++r)
                    for (std::size_t j = 0; j < dim; ++j) rows[r * stride + j] = latefold::float_to_bfloat16(normal(gen));
                std::vector<float> q(m * dim);
                for (float& v : q) v = latefold::bfloat16_to_float(latefold::float_to_bfloat16(normal(gen)));
                k::pack_lanes<std::uint16_t>(
                    m, dim, [&](std::size_t t, std::size_t j) { return latefold::float_to_bfloat16(q[t * dim + j]); },
                    query.data());
                const std::size_t out_stride = padded + 5;
                std::vector<float> want(count * out_stride, -1.0f), got(count * out_stride, -1.0f);
                scalar.project_bf16(rows.data(), count, stride, dim, query.data(), padded, want.data(), out_stride);
                std::vector<double> tol(count * padded);
                for (std::size_t r = 0; r < count; ++r)
                    for (std::size_t t = 0; t < padded; ++t) {
                        double exact = 0.0, mass = 0.0;
                        for (std::size_t j = 0; t < m && j < dim; ++j) {
                            const double p = double(q[t * dim + j]) * latefold::bfloat16_to_float(rows[r * stride + j]);
                            exact += p;
                            mass += std::fabs(p);
                        }
                        tol[r * padded + t] = double(dim + 1) * std::ldexp(mass, -24) + double(dim) * 1e-37;
                        const float w = want[r * out_stride + t];
                        check(t < m ? std::fabs(w - exact) <= tol[r * padded + t] : w == 0.0f,
                              "project_bf16 scalar vs float64", w, exact);
                    }
                for (latefold::Isa isa : latefold::supported_isas()) {
                    std::fill(got.begin(), got.end(), -1.0f);
                    k::kernels_for(isa).project_bf16(rows.data(), count, stride, dim, query.data(), padded, got.data(),
                                                     out_stride);
                    for (std::size_t r = 0; r < count; ++r)
                        for (std::size_t t = 0; t < out_stride; ++t) {
                            const float g = got[r * out_stride + t], w = want[r * out_stride + t];
                            if (t >= padded) check(g == -1.0f, "project_bf16 wrote between rows");  // untouched
                            else if (t >= m) check(g == 0.0f, "project_bf16 padding column", g);
                            else check(std::fabs(g - w) <= 2 * tol[r * padded + t], "project_bf16", g, w);
                        }
                }
            }
}

// The finiteness scan: every path finds the row the scalar twin finds (and the planted one), for
// NaN (any payload, either sign), +-infinity and the largest finite values around it, at every
// column of widths around the vector widths; values between rows (the stride's padding) are not read.
void finite_scan_matches_scalar() {
    std::mt19937 gen(29);
    std::normal_distribution<float> normal;
    const auto& scalar = latefold::kernels::kernels_for(latefold::Isa::scalar);
    const float inf = std::numeric_limits<float>::infinity(), big = std::numeric_limits<float>::max();
    std::uint32_t payload_nan_bits = 0xFF800001u;  // negative NaN with the smallest payload
    float payload_nan;
    std::memcpy(&payload_nan, &payload_nan_bits, sizeof payload_nan);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), payload_nan, inf, -inf};
    for (std::size_t dim : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128})
        for (std::size_t pad : {0, 3})  // rows without gaps are read as one run first
            for (std::size_t rows : {1, 2, 6}) {
                const std::size_t stride = dim + pad;
                std::vector<float> data(rows * stride);
                for (std::size_t r = 0; r < rows; ++r)
                    for (std::size_t k = 0; k < stride; ++k)
                        data[r * stride + k] = k < dim ? (gen() % 7 == 0 ? (gen() % 2 ? big : -big) : normal(gen))
                                                       : specials[gen() % 4];  // padding: never read
                for (latefold::Isa isa : latefold::supported_isas()) {
                    const auto& k = latefold::kernels::kernels_for(isa);
                    check(k.first_non_finite(data.data(), rows, stride, dim) == rows, "finite rows pass", double(dim));
                    check(k.first_non_finite(data.data(), 0, stride, dim) == 0, "no rows pass", double(dim));
                }
                for (std::size_t col = 0; col < dim; ++col) {
                    const std::size_t row = gen() % rows;
                    const float saved = data[row * stride + col];
                    data[row * stride + col] = specials[gen() % 4];
                    const std::size_t want = scalar.first_non_finite(data.data(), rows, stride, dim);
                    check(want == row, "scalar finds the planted value", double(want), double(row));
                    for (latefold::Isa isa : latefold::supported_isas()) {
                        const auto& k = latefold::kernels::kernels_for(isa);
                        const std::size_t got = k.first_non_finite(data.data(), rows, stride, dim);
                        check(got == want, latefold::isa_name(isa), double(got), double(want));
                    }
                    data[row * stride + col] = saved;
                }
            }
}

void pool_rethrows_and_survives() {
    bool caught = false;
    try {
        latefold::parallel_for(100, 2, [](std::size_t task, std::size_t) {
            if (task == 42) throw std::runtime_error("boom");
        });
    } catch (const std::runtime_error&) {
        caught = true;
    }
    check(caught, "worker exception re-thrown");
    std::vector<int> hits(1000, 0);
    latefold::parallel_for(1000, 4, [&](std::size_t task, std::size_t) { hits[task] += 1; });
    for (int h : hits) check(h == 1, "each task exactly once", h, 1);
}

void topk_order() {
    latefold::TopK top(3);
    for (auto e : std::vector<latefold::ScoredId>{{1, 5}, {2, 9}, {2, 3}, {NAN, 0}, {0.5f, 1}, {2, 4}})
        top.push(e);
    const auto best = top.sorted();
    check(best.size() == 3 && best[0].id == 3 && best[1].id == 4 && best[2].id == 9, "top-k ties");
}

// The reservoir keeps exactly the k best of a stream (duplicates included), whatever the
// order of arrival, and its threshold never lets a better item be refused.
void reservoir_keeps_the_best() {
    std::mt19937_64 gen(11);
    for (std::size_t k : {1, 2, 3, 10, 40}) {
        for (std::size_t n : {std::size_t(0), k - 1, k, 2 * k, 2 * k + 1, 5000 / k + 7 * k}) {
            for (std::uint64_t range : {std::uint64_t(5), std::uint64_t(1) << 40}) {
                std::vector<std::uint64_t> items(n);
                for (auto& v : items) v = gen() % range + 1;
                latefold::Reservoir<std::uint64_t, std::greater<std::uint64_t>> top(k, 0);
                for (std::uint64_t v : items) top.push(v);
                std::vector<std::uint64_t> expected(items);
                std::sort(expected.begin(), expected.end(), std::greater<std::uint64_t>());
                expected.resize(std::min(k, n));
                check(top.sorted() == expected, "reservoir keeps the k best", double(k), double(n));
            }
        }
    }
}

}  // namespace


// MaxSim over int8 and bfloat16 tokens: every path's kernel against the scalar twin on the same
// quantized values (int8: the same bits; bfloat16: within the float32 rounding of the sums, dim
// additions of at most |q||x| each), around the register, tile (16 rows, 64 bytes) and lane
// widths, strided rows, several documents per call; and the engine against a float64 sum over
// the dequantized values.
void quantized_maxsim_matches_scalar() {
    namespace k = latefold::kernels;
    std::mt19937 gen(11);
    std::normal_distribution<float> normal;
    const auto& scalar = k::kernels_for(latefold::Isa::scalar);
    for (std::size_t dim : {1, 3, 4, 5, 31, 32, 33, 64, 68, 96, 128, 130, 200}) {
        for (std::size_t m : {1, 15, 16, 17, 32, 33, 48, 65}) {
            const std::size_t stride = dim + (dim % 3 == 0 ? 5 : 0);
            // The last document is long enough to be widened in several chunks (quantized_templates.h).
            const std::vector<std::int64_t> offsets{0, 1, 13, 16, 17, 40, 57, 200};
            const std::size_t rows = std::size_t(offsets.back());
            std::vector<float> x(rows * dim), q(m * dim);
            for (float& v : x) v = normal(gen);
            for (float& v : q) v = normal(gen);
            // int8
            std::vector<std::int8_t> codes(rows * stride, 99), qcodes(m * dim);
            std::vector<float> scales(rows), qscales(k::padded_query_rows(m), 0.0f);
            for (std::size_t r = 0; r < rows; ++r)
                scales[r] = latefold::quantize_int8_row(&x[r * dim], dim, &codes[r * stride]);
            for (std::size_t t = 0; t < m; ++t) qscales[t] = latefold::quantize_int8_row(&q[t * dim], dim, &qcodes[t * dim]);
            std::vector<std::int8_t> qpacked(k::lane_layout_size(m, dim, 4));
            k::pack_lanes<std::int8_t>(m, dim, [&](std::size_t t, std::size_t j) { return qcodes[t * dim + j]; }, qpacked.data());
            // bfloat16
            std::vector<std::uint16_t> halves(rows * stride, 0x7FC0), qhalves(k::lane_layout_size(m, dim, 2));
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t j = 0; j < dim; ++j) halves[r * stride + j] = latefold::float_to_bfloat16(x[r * dim + j]);
            k::pack_lanes<std::uint16_t>(m, dim, [&](std::size_t t, std::size_t j) { return latefold::float_to_bfloat16(q[t * dim + j]); },
                                         qhalves.data());
            const std::size_t count = offsets.size() - 1, padded = k::padded_query_rows(m);
            std::vector<float> want_i8(count), want_bf(count), got(count);
            scalar.maxsim_i8(qpacked.data(), qscales.data(), padded, dim, codes.data(), scales.data(), stride,
                             offsets.data(), count, want_i8.data());
            scalar.maxsim_bf16(qhalves.data(), padded, dim, halves.data(), stride, offsets.data(), count, want_bf.data());
            // The scalar twin against float64 over the same values.
            for (std::size_t i = 0; i < count; ++i) {
                double exact_i8 = 0, exact_bf = 0, bound = 0;
                for (std::size_t t = 0; t < m; ++t) {
                    double best_i8 = -INFINITY, best_bf = -INFINITY, mass = 0;
                    for (std::int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
                        double d8 = 0, dbf = 0, a = 0;
                        for (std::size_t j = 0; j < dim; ++j) {
                            d8 += double(qcodes[t * dim + j]) * codes[std::size_t(r) * stride + j];
                            const double p = double(latefold::bfloat16_to_float(latefold::float_to_bfloat16(q[t * dim + j]))) *
                                             latefold::bfloat16_to_float(halves[std::size_t(r) * stride + j]);
                            dbf += p, a += std::fabs(p);
                        }
                        best_i8 = std::max(best_i8, d8 * scales[std::size_t(r)]);
                        best_bf = std::max(best_bf, dbf), mass = std::max(mass, a);
                    }
                    exact_i8 += best_i8 * qscales[t], exact_bf += best_bf, bound += mass;
                }
                const double tol = 1e-6 * bound * double(dim + m) + 1e-30;
                check(std::fabs(want_i8[i] - exact_i8) <= 1e-5 * (std::fabs(exact_i8) + double(m)), "int8 scalar vs float64", want_i8[i], exact_i8);
                check(std::fabs(want_bf[i] - exact_bf) <= tol, "bfloat16 scalar vs float64", want_bf[i], exact_bf);
                (void)tol;
            }
            for (latefold::Isa isa : latefold::supported_isas()) {
                const auto& kern = k::kernels_for(isa);
                kern.maxsim_i8(qpacked.data(), qscales.data(), padded, dim, codes.data(), scales.data(), stride,
                               offsets.data(), count, got.data());
                for (std::size_t i = 0; i < count; ++i)
                    check(std::memcmp(&got[i], &want_i8[i], sizeof(float)) == 0, latefold::isa_name(isa), got[i], want_i8[i]);
                kern.maxsim_bf16(qhalves.data(), padded, dim, halves.data(), stride, offsets.data(), count, got.data());
                for (std::size_t i = 0; i < count; ++i) {
                    double bound = 0;  // sum over tokens of the largest |q||x| mass: the rounding scale
                    for (std::size_t t = 0; t < m; ++t) {
                        double mass = 0;
                        for (std::int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
                            double a = 0;
                            for (std::size_t j = 0; j < dim; ++j)
                                a += std::fabs(double(q[t * dim + j]) * latefold::bfloat16_to_float(halves[std::size_t(r) * stride + j]));
                            mass = std::max(mass, a);
                        }
                        bound += mass;
                    }
                    const double tol = double(dim + 2) * 1.2e-7 * bound * 2 + 1e-30;
                    check(std::fabs(got[i] - want_bf[i]) <= tol, latefold::isa_name(isa), got[i], want_bf[i]);
                }
            }
        }
    }
}

int main() {
    const std::vector<std::pair<const char*, void (*)()>> tests{
        {"kernels_match_scalar", kernels_match_scalar},
        {"f16_conversion_is_exact", f16_conversion_is_exact},
        {"maxsim_flags_values_as_it_reads", maxsim_flags_values_as_it_reads},
        {"maxsim_f16_in_place_matches_widened", maxsim_f16_in_place_matches_widened},
        {"tile_kernels_match_scalar", tile_kernels_match_scalar},
        {"dot_rows_match_scalar", dot_rows_match_scalar},
        {"finite_scan_matches_scalar", finite_scan_matches_scalar},
        {"pq_kernels_match_scalar", pq_kernels_match_scalar},
        {"centroid_maxsim_matches_scalar", centroid_maxsim_matches_scalar},
        {"project_bf16_matches_scalar", project_bf16_matches_scalar},
        {"centroid_table_quantized", centroid_table_quantized},
        {"quantized_maxsim_matches_scalar", quantized_maxsim_matches_scalar},
        {"pool_rethrows_and_survives", pool_rethrows_and_survives},
        {"topk_order", topk_order},
        {"reservoir_keeps_the_best", reservoir_keeps_the_best},
    };
    int failed = 0;
    for (const auto& test : tests) {
        const int before = failures;
        test.second();
        if (failures != before) std::printf("%s failed\n", test.first), ++failed;
    }
    std::printf("%d passed, %d failed\n", int(tests.size()) - failed, failed);
    return failed ? 1 : 0;
}
