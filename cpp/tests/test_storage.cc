// C++ checks of the storage types without Python: RowStore reads float32, float16, bfloat16 and
// int8 rows (with scales) exactly as their values, and its inner products stay within the float32
// accumulation bound of a float64 reference; Scorer gives the distances search ranks by; MaxSim
// reads bfloat16 and int8 tokens as their values; items read through a table of addresses give
// the bits of the same items in one flat array; the index's centroid lists, built at once or
// batch by batch, hold each document once per centroid and give the candidates a reference does.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "latefold/centroid_lists.h"
#include "latefold/fde.h"
#include "latefold/maxsim.h"
#include "latefold/quantize.h"
#include "latefold/row_store.h"
#include "latefold/token_rows.h"

#include "check.h"

namespace lf = latefold;

namespace {

using latefold_test::check;

// Reference decodings, written from the formats' definitions.
double half_value(std::uint16_t h) {
    const int sign = h >> 15, exponent = (h >> 10) & 31, mantissa = h & 1023;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
    return sign ? -magnitude : magnitude;
}
double bf16_value(std::uint16_t b) {
    const int sign = b >> 15, exponent = (b >> 7) & 255, mantissa = b & 127;
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -133) : std::ldexp(128 + mantissa, exponent - 134);
    return sign ? -magnitude : magnitude;
}

void rows_read_as_their_values() {
    std::mt19937 gen(17);
    const std::size_t n = 23, dim = 37;
    for (lf::DType dtype : {lf::DType::f32, lf::DType::f16, lf::DType::bf16, lf::DType::i8}) {
        std::vector<std::uint8_t> bytes(n * dim * lf::dtype_size(dtype));
        std::vector<double> value(n * dim);
        std::vector<float> scales(n);
        for (std::size_t r = 0; r < n; ++r) {
            scales[r] = std::uniform_real_distribution<float>(0.001f, 0.1f)(gen);
            for (std::size_t d = 0; d < dim; ++d) {
                const std::size_t i = r * dim + d;
                const std::uint32_t w = gen();
                switch (dtype) {
                    case lf::DType::f32: {
                        const float f = std::normal_distribution<float>()(gen);
                        std::memcpy(&bytes[4 * i], &f, 4);
                        value[i] = f;
                        break;
                    }
                    case lf::DType::f16: {  // finite halves of moderate exponent, subnormals included
                        const std::uint16_t h = std::uint16_t((w & 0x8000) | ((w >> 16) % 20) << 10 | (w & 1023));
                        std::memcpy(&bytes[2 * i], &h, 2);
                        value[i] = half_value(h);
                        break;
                    }
                    case lf::DType::bf16: {
                        const std::uint16_t b = std::uint16_t((w & 0x8000) | (110 + (w >> 16) % 30) << 7 | (w & 127));
                        std::memcpy(&bytes[2 * i], &b, 2);
                        value[i] = bf16_value(b);
                        break;
                    }
                    case lf::DType::i8: {
                        const std::int8_t v = std::int8_t(w & 0xFF);
                        std::memcpy(&bytes[i], &v, 1);
                        value[i] = double(scales[r]) * v;
                        break;
                    }
                }
            }
        }
        const lf::RowStore store{bytes.data(), dim, dtype, dtype == lf::DType::i8 ? scales.data() : nullptr};
        const std::string name = lf::dtype_name(dtype);
        std::vector<float> x(dim);
        bool exact = true;
        for (std::uint32_t r = 0; r < n; ++r) {
            store.to_float(r, x.data());
            for (std::size_t d = 0; d < dim; ++d)
                exact &= dtype == lf::DType::i8 ? std::fabs(x[d] - value[r * dim + d]) <= 1e-7 * std::fabs(value[r * dim + d])
                                                : double(x[d]) == value[r * dim + d];
        }
        check(exact, name + ": rows read as their values");
        std::vector<float> q(dim);
        for (float& v : q) v = std::normal_distribution<float>()(gen);
        std::vector<std::uint32_t> picked = {5, 0, 22, 5, 13};
        std::vector<float> out(picked.size());
        store.dots(q.data(), picked.data(), picked.size(), out.data());
        bool close = true;
        for (std::size_t i = 0; i < picked.size(); ++i) {
            double ref = 0, magnitude = 0;
            for (std::size_t d = 0; d < dim; ++d) {
                ref += double(q[d]) * value[picked[i] * dim + d];
                magnitude += std::fabs(double(q[d]) * value[picked[i] * dim + d]);
            }
            // float32 accumulation of dim products (and the scale's product for int8): gamma_(dim + 2).
            const double u = std::ldexp(1.0, -24), bound = (dim + 2) * u / (1 - (dim + 2) * u) * magnitude;
            close &= std::fabs(out[i] - ref) <= bound;
        }
        check(close, name + ": inner products within the float32 bound");

        // The exact scorer's distances: ip -<q, x>, l2 |x|^2 - 2 <q, x>.
        std::vector<float> norms(n);
        for (std::uint32_t r = 0; r < n; ++r) {
            store.to_float(r, x.data());
            store.dots(x.data(), &r, 1, &norms[r]);
        }
        std::vector<float> ip(picked.size()), l2(picked.size());
        lf::Scorer::exact(store, lf::Metric::inner_product, norms.data(), q.data()).distances(picked.data(), picked.size(), ip.data());
        lf::Scorer::exact(store, lf::Metric::l2, norms.data(), q.data()).distances(picked.data(), picked.size(), l2.data());
        bool scored = true;
        for (std::size_t i = 0; i < picked.size(); ++i)
            scored &= ip[i] == -out[i] && l2[i] == norms[picked[i]] - 2.0f * out[i];
        check(scored, name + ": exact scorer distances");
    }
}

void code_scorer_matches_the_quantizer() {
    std::mt19937 gen(3);
    const std::size_t n = 300, dim = 12;
    std::vector<float> x(n * dim), q(dim);
    for (float& v : x) v = std::normal_distribution<float>()(gen);
    for (float& v : q) v = std::normal_distribution<float>()(gen);
    for (lf::Metric metric : {lf::Metric::inner_product, lf::Metric::l2}) {
        lf::ProductQuantizer pq(dim, 4, 8, metric);
        pq.train(x.data(), n, 3, 1, n, 1);
        std::vector<std::uint8_t> codes(n * pq.code_size());
        pq.encode(x.data(), n, codes.data(), 1);
        std::vector<float> lut(pq.m() * pq.ksub());
        pq.lookup_tables(q.data(), 1, lut.data(), 1);
        const std::vector<std::uint32_t> picked = {7, 299, 0};
        std::vector<float> adc(3), d(3);
        pq.score_codes(lut.data(), codes.data(), picked.data(), 3, adc.data());
        lf::Scorer::codes(pq, codes.data(), lut.data(), 2.5f).distances(picked.data(), 3, d.data());
        bool same = true;
        for (int i = 0; i < 3; ++i) same &= d[i] == (metric == lf::Metric::inner_product ? -adc[i] : adc[i] - 2.5f);
        check(same, std::string("code scorer, ") + lf::metric_name(metric));
    }
}

// MaxSim over int8 and bfloat16 documents: int8 scores are the documented integer form (queries
// quantized per token, exact inner products, scaled, maxima summed in token order), computed here
// by hand; bfloat16 scores equal those of the same values as float32 within float32 rounding
// when the queries are bfloat16 values too.
void maxsim_reads_every_token_type() {
    std::mt19937 gen(9);
    const std::size_t dim = 20, docs = 7;
    std::vector<std::int64_t> offsets = {0};
    for (std::size_t d = 0; d < docs; ++d) offsets.push_back(offsets.back() + 1 + std::int64_t(gen() % 9));
    const std::size_t rows = std::size_t(offsets.back());
    std::vector<float> queries(9 * dim);
    for (float& v : queries) v = lf::bfloat16_to_float(lf::float_to_bfloat16(std::normal_distribution<float>()(gen)));
    const std::vector<std::int64_t> query_offsets = {0, 4, 9};
    lf::MultiVectorsView q;
    q.tokens = queries.data(), q.offsets = query_offsets.data(), q.rows = 9, q.count = 2, q.dim = q.row_stride = dim;
    for (lf::DType dtype : {lf::DType::bf16, lf::DType::i8}) {
        std::vector<std::uint8_t> bytes(rows * dim * lf::dtype_size(dtype));
        std::vector<float> as_float(rows * dim), scales(rows);
        for (std::size_t r = 0; r < rows; ++r) {
            scales[r] = std::uniform_real_distribution<float>(0.001f, 0.1f)(gen);
            for (std::size_t k = 0; k < dim; ++k) {
                const std::size_t i = r * dim + k;
                if (dtype == lf::DType::bf16) {
                    const std::uint16_t b = std::uint16_t((gen() & 0x8000) | (120 + gen() % 10) << 7 | (gen() & 127));
                    std::memcpy(&bytes[2 * i], &b, 2);
                    as_float[i] = lf::bfloat16_to_float(b);
                } else {
                    const std::int8_t v = std::int8_t(gen() & 0xFF);
                    std::memcpy(&bytes[i], &v, 1);
                    as_float[i] = scales[r] * float(v);
                }
            }
        }
        lf::MultiVectorsView typed, plain;
        typed.tokens = bytes.data(), typed.offsets = offsets.data(), typed.rows = rows, typed.count = docs;
        typed.dim = typed.row_stride = dim, typed.dtype = dtype;
        typed.scales = dtype == lf::DType::i8 ? scales.data() : nullptr;
        typed.validate("docs");
        plain = typed;
        plain.tokens = as_float.data(), plain.dtype = lf::DType::f32, plain.scales = nullptr;
        std::vector<float> a(2 * docs), b(2 * docs);
        lf::maxsim_scores(q, typed, a.data(), 1);
        if (dtype == lf::DType::i8) {
            for (std::size_t qi = 0; qi < 2; ++qi)
                for (std::size_t d = 0; d < docs; ++d) {
                    float total = 0.0f;
                    for (std::int64_t t = query_offsets[qi]; t < query_offsets[qi + 1]; ++t) {
                        std::int8_t codes[dim];
                        const float scale = lf::quantize_int8_row(&queries[std::size_t(t) * dim], dim, codes);
                        float best = -INFINITY;
                        for (std::int64_t r = offsets[d]; r < offsets[d + 1]; ++r) {
                            std::int32_t dot = 0;
                            for (std::size_t k = 0; k < dim; ++k)
                                dot += codes[k] * std::int8_t(bytes[std::size_t(r) * dim + k]);
                            best = std::max(best, scales[std::size_t(r)] * float(dot));
                        }
                        total += scale * best;
                    }
                    b[qi * docs + d] = total;
                }
            check(a == b, "maxsim over int8 tokens");
        } else {
            lf::maxsim_scores(q, plain, b.data(), 1);
            bool close = true;
            for (std::size_t i = 0; i < a.size(); ++i) close &= std::fabs(a[i] - b[i]) <= 1e-5f * (1 + std::fabs(b[i]));
            check(close, "maxsim over bfloat16 tokens");
        }
        const std::vector<std::int64_t> candidates = {6, 2, 5, 0, 3, 4};  // read one document at a time
        std::vector<float> rerank(6);
        lf::maxsim_rerank(q, typed, candidates.data(), 3, rerank.data(), 1);
        bool same = true;
        for (std::size_t i = 0; i < 6; ++i) same &= rerank[i] == a[(i / 3) * docs + std::size_t(candidates[i])];
        check(same, std::string("maxsim rerank over ") + lf::dtype_name(dtype) + " tokens");
    }
}


// A table of item addresses (a list of arrays) reads as the flat layout of the same rows: MaxSim
// (all pairs, rerank, top-k) and FDE encodings give the same bits, for every token type, padded
// rows, and items of one token to several hundred (FDE batches short items together, and a
// table's batch is gathered); validation and the finiteness scan name the same item.
void item_tables_read_as_flat_rows() {
    std::mt19937 gen(23);
    const std::size_t dim = 33, stride = 37, docs = 40;
    std::vector<std::int64_t> offsets = {0};
    for (std::size_t d = 0; d < docs; ++d)
        offsets.push_back(offsets.back() + std::int64_t(d % 13 == 5 ? 150 + gen() % 200 : 1 + gen() % 30));
    const std::size_t rows = std::size_t(offsets.back());
    std::vector<float> queries(40 * dim);
    for (float& v : queries) v = std::normal_distribution<float>()(gen);
    const std::vector<std::int64_t> query_offsets = {0, 7, 8, 40};
    lf::MultiVectorsView q;
    q.tokens = queries.data(), q.offsets = query_offsets.data(), q.rows = 40, q.count = 3, q.dim = q.row_stride = dim;
    lf::FdeConfig config;
    config.dimension = dim, config.num_repetitions = 3, config.num_simhash_projections = 4;
    config.projection_type = lf::FdeProjection::ams_sketch, config.projection_dimension = 8;
    config.fill_empty_partitions = true;
    const lf::FdeEncoder fde(config);
    const std::size_t out_dim = config.output_dim();
    for (lf::DType dtype : {lf::DType::f32, lf::DType::f16, lf::DType::bf16, lf::DType::i8}) {
        const std::size_t size = lf::dtype_size(dtype);
        std::vector<std::uint8_t> bytes(rows * stride * size);
        for (std::size_t i = 0; i < rows * stride; ++i) {
            const float f = std::normal_distribution<float>()(gen);
            switch (dtype) {
                case lf::DType::f32: std::memcpy(&bytes[4 * i], &f, 4); break;
                case lf::DType::f16: {
                    const std::uint16_t h = std::uint16_t((gen() & 0x8000) | (10 + gen() % 8) << 10 | (gen() & 1023));
                    std::memcpy(&bytes[2 * i], &h, 2);
                    break;
                }
                case lf::DType::bf16: {
                    const std::uint16_t b = std::uint16_t((gen() & 0x8000) | (120 + gen() % 10) << 7 | (gen() & 127));
                    std::memcpy(&bytes[2 * i], &b, 2);
                    break;
                }
                case lf::DType::i8: bytes[i] = std::uint8_t(gen()); break;
            }
        }
        std::vector<float> scales(rows);
        for (float& v : scales) v = std::uniform_real_distribution<float>(0.001f, 0.1f)(gen);
        lf::MultiVectorsView flat;
        flat.tokens = bytes.data(), flat.offsets = offsets.data(), flat.rows = rows, flat.count = docs;
        flat.dim = dim, flat.row_stride = stride, flat.dtype = dtype;
        flat.scales = dtype == lf::DType::i8 ? scales.data() : nullptr;
        // Each item copied to an allocation of its own.
        std::vector<std::vector<std::uint8_t>> items(docs);
        std::vector<const void*> table(docs);
        for (std::size_t d = 0; d < docs; ++d) {
            const auto* first = static_cast<const std::uint8_t*>(flat.item_data(d));
            items[d].assign(first, first + flat.item_length(d) * stride * size);
            table[d] = items[d].data();
        }
        lf::MultiVectorsView ragged = flat;
        ragged.tokens = nullptr, ragged.item_rows = table.data();
        ragged.validate("docs");
        const std::string type = lf::dtype_name(dtype);
        for (std::size_t threads : {1, 3}) {
            std::vector<float> a(3 * docs), b(3 * docs);
            lf::maxsim_scores(q, flat, a.data(), threads);
            lf::maxsim_scores(q, ragged, b.data(), threads);
            check(a == b, "maxsim over a table of " + type + " items");
            std::vector<float> ta(3 * 5), tb(3 * 5);
            std::vector<std::int64_t> ia(3 * 5), ib(3 * 5);
            lf::maxsim_topk(q, flat, 5, ta.data(), ia.data(), threads);
            lf::maxsim_topk(q, ragged, 5, tb.data(), ib.data(), threads);
            check(ta == tb && ia == ib, "maxsim top-k over a table of " + type + " items");
            const std::vector<std::int64_t> candidates = {39, 2, -1, 0, 5, 18, 31, 5, 7};
            std::vector<float> ra(9), rb(9);
            lf::maxsim_rerank(q, flat, candidates.data(), 3, ra.data(), threads);
            lf::maxsim_rerank(q, ragged, candidates.data(), 3, rb.data(), threads);
            check(ra == rb, "maxsim rerank over a table of " + type + " items");
            // As queries too (packed one item at a time).
            std::vector<float> qa(docs * 3), qb(docs * 3);
            lf::maxsim_scores(flat, q, qa.data(), threads);
            lf::maxsim_scores(ragged, q, qb.data(), threads);
            check(qa == qb, "maxsim of a table of " + type + " queries");
            for (bool documents : {false, true}) {
                std::vector<float> ea(docs * out_dim), eb(docs * out_dim);
                if (documents) {
                    fde.encode_documents(flat, ea.data(), threads);
                    fde.encode_documents(ragged, eb.data(), threads);
                } else {
                    fde.encode_queries(flat, ea.data(), threads);
                    fde.encode_queries(ragged, eb.data(), threads);
                }
                check(std::memcmp(ea.data(), eb.data(), ea.size() * sizeof(float)) == 0,
                      "FDE encodings of a table of " + type + " items");
            }
            std::vector<std::uint32_t> pa(rows * config.num_repetitions), pb(pa.size());
            fde.partition_indices(flat, pa.data(), threads);
            fde.partition_indices(ragged, pb.data(), threads);
            check(pa == pb, "FDE partitions of a table of " + type + " items");
        }
        // A non-finite value (for int8: scale) in item 17, token 2, found in both layouts.
        const std::size_t row = std::size_t(offsets[17]) + 2;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        if (dtype == lf::DType::i8) {
            scales[row] = nan;
        } else {
            const std::uint32_t bits32 = 0x7FC00000u;
            const std::uint16_t bits16 = dtype == lf::DType::f16 ? 0x7E00 : 0x7FC0;
            std::uint8_t* at = items[17].data() + 2 * stride * size + 5 * size;
            std::memcpy(at, dtype == lf::DType::f32 ? static_cast<const void*>(&bits32) : &bits16, size);
            std::memcpy(&bytes[(row * stride + 5) * size], at, size);
        }
        for (const lf::MultiVectorsView* v : {&flat, &ragged}) {
            const lf::NonFiniteToken bad = lf::first_non_finite_token(*v);
            check(bad.item == 17 && bad.token == 2, "the non-finite token of " + type + " items, " +
                                                    (v->flat() ? "flat" : "table"));
        }
        // Values not yet checked are checked by every reader, which names the same token.
        lf::MultiVectorsView unchecked = ragged;
        unchecked.values_checked = false;
        for (const char* name : {"docs", "queries"}) {
            const std::string message = std::string(name) + ": item 17 (token 2) holds a NaN or infinite value";
            const auto fails = [&](const char* what, const std::function<void()>& call) {
                std::string got;
                try {
                    call();
                } catch (const std::invalid_argument& error) {
                    got = error.what();
                }
                check(got == message, std::string(what) + " over unchecked " + type + " items: " + got);
            };
            const bool docs_side = std::string(name) == "docs";
            // Rerank checks the documents it reads: item 17 as a candidate, not otherwise.
            const std::vector<std::int64_t> candidates = {0, 17, 2}, clean_candidates = {0, 1, 2};
            std::vector<float> scores(docs * out_dim * 3);
            std::vector<std::int64_t> ids(docs * 3);
            for (std::size_t threads : {1, 3}) {
                fails("maxsim", [&] {
                    docs_side ? lf::maxsim_scores(q, unchecked, scores.data(), threads)
                              : lf::maxsim_scores(unchecked, q, scores.data(), threads);
                });
                fails("maxsim top-k", [&] {
                    docs_side ? lf::maxsim_topk(q, unchecked, 2, scores.data(), ids.data(), threads)
                              : lf::maxsim_topk(unchecked, q, 2, scores.data(), ids.data(), threads);
                });
                if (docs_side) {
                    fails("maxsim rerank", [&] {
                        lf::maxsim_rerank(q, unchecked, candidates.data(), 1, scores.data(), threads);
                    });
                    std::string error;
                    try {
                        lf::maxsim_rerank(q, unchecked, clean_candidates.data(), 1, scores.data(), threads);
                    } catch (const std::invalid_argument& e) {
                        error = e.what();
                    }
                    check(error.empty(), "maxsim rerank over unchecked " + type + " items, item 17 no candidate: " + error);
                    fails("FDE documents", [&] { fde.encode_documents(unchecked, scores.data(), threads); });
                } else {
                    fails("FDE queries", [&] { fde.encode_queries(unchecked, scores.data(), threads); });
                }
            }
        }
        table[11] = nullptr;
        bool refused = false;
        try {
            ragged.validate("docs");
        } catch (const std::invalid_argument& error) {
            refused = std::string(error.what()) == "docs: item 11 has no rows";
        }
        check(refused, "a table with an item missing is refused");
    }
}

}  // namespace

void centroid_lists_match_a_reference() {
    std::mt19937_64 gen(17);
    for (const std::size_t count : {1, 5, 37}) {
        const std::size_t levels = 2, slots = 300;
        std::vector<std::int64_t> offsets(1, 0);
        std::vector<std::uint16_t> codes;
        for (std::size_t s = 0; s < slots; ++s) {  // empty documents too (compacted slots)
            const std::size_t n = gen() % 4 == 0 ? 0 : 1 + gen() % 9;
            for (std::size_t t = 0; t < n; ++t) {
                codes.push_back(std::uint16_t(gen() % count));
                codes.push_back(std::uint16_t(count + gen() % count));
            }
            offsets.push_back(offsets.back() + std::int64_t(n));
        }
        // Reference lists: the sorted distinct slots of each first-level code.
        std::vector<std::vector<std::uint32_t>> want(count);
        for (std::size_t s = 0; s < slots; ++s)
            for (std::int64_t t = offsets[s]; t < offsets[s + 1]; ++t) {
                auto& list = want[codes[std::size_t(t) * levels]];
                if (list.empty() || list.back() != s) list.push_back(std::uint32_t(s));
            }
        latefold::CentroidLists whole, batches;
        whole.build(count, codes.data(), levels, offsets.data(), slots);
        batches.build(count, codes.data(), levels, offsets.data(), 0);
        for (std::size_t s = 0; s < slots;) {  // appended in batches of 1 to 40 slots
            const std::size_t n = std::min(slots - s, std::size_t(1 + gen() % 40));
            const std::uint16_t* at = codes.data() + std::size_t(offsets[s]) * levels;
            batches.reserve(at, levels, offsets.data() + s, n);
            batches.append(at, levels, offsets.data() + s, n, std::uint32_t(s));
            s += n;
        }
        bool same = whole.count() == count && batches.count() == count;
        for (std::size_t c = 0; same && c < count; ++c) same = whole.list(c) == want[c] && batches.list(c) == want[c];
        check(same, "centroid lists, count " + std::to_string(count));

        // Candidates against a reference: tokens' best centroids, weights summed in the same order.
        const std::size_t tokens = 7, padded = 16;
        std::vector<float> table(count * levels * padded);
        std::normal_distribution<float> normal;
        for (float& v : table) v = normal(gen);
        std::vector<std::uint64_t> allowed((slots + 63) / 64);
        for (std::size_t s = 0; s < slots; ++s)
            if (gen() % 5) allowed[s / 64] |= std::uint64_t(1) << (s % 64);
        latefold::CentroidLists::Scratch scratch;
        for (const std::size_t probe : {std::size_t(1), std::size_t(3), count + 4})
            for (const std::size_t width : {std::size_t(1), std::size_t(20), slots}) {
                const std::size_t p = std::min(probe, count);
                std::vector<float> weight(count, 0.0f);
                std::vector<std::uint32_t> order;  // centroids in the order first probed
                std::vector<bool> probed(count, false);
                for (std::size_t j = 0; j < tokens; ++j) {
                    std::vector<std::uint32_t> by(count);
                    for (std::size_t c = 0; c < count; ++c) by[c] = std::uint32_t(c);
                    std::stable_sort(by.begin(), by.end(), [&](std::uint32_t a, std::uint32_t b) {
                        return table[a * padded + j] > table[b * padded + j];
                    });
                    for (std::size_t r = 0; r < p; ++r) {
                        const std::uint32_t c = by[r];
                        if (!probed[c]) order.push_back(c);
                        weight[c] = probed[c] ? weight[c] + table[c * padded + j] : table[c * padded + j];
                        probed[c] = true;
                    }
                }
                std::vector<float> score(slots, 0.0f);
                std::vector<bool> hit(slots, false);
                for (const std::uint32_t c : order)
                    for (const std::uint32_t s : want[c])
                        if (allowed[s / 64] >> (s % 64) & 1) {
                            score[s] = hit[s] ? score[s] + weight[c] : weight[c];
                            hit[s] = true;
                        }
                std::vector<latefold::ScoredId> ref;
                for (std::size_t s = 0; s < slots; ++s)
                    if (hit[s]) ref.push_back({score[s], std::int64_t(s)});
                std::sort(ref.begin(), ref.end(), latefold::RanksBefore());
                if (ref.size() > width) ref.resize(width);
                std::vector<latefold::ScoredId> got;
                whole.candidates(table.data(), padded, tokens, probe, allowed.data(), slots, width, scratch, got);
                std::sort(got.begin(), got.end(), latefold::RanksBefore());
                bool equal = got.size() == ref.size();
                for (std::size_t i = 0; equal && i < got.size(); ++i)
                    equal = got[i].id == ref[i].id && got[i].score == ref[i].score;
                check(equal, "centroid list candidates, count " + std::to_string(count) + ", probe " +
                                 std::to_string(probe) + ", width " + std::to_string(width));
            }
    }
}

// TokenRows: a first part (borrowed, as from a mapped file) and blocks of added rows read back as
// the rows appended, in runs that follow one another, across block boundaries and a replaced
// empty block; rows never move once stored.
void token_rows_read_what_was_appended() {
    const std::size_t row_bytes = 24;
    std::vector<std::uint8_t> all;  // the reference: every row's bytes in order
    auto rows_of = [&](std::size_t n) {
        std::vector<std::uint8_t> out(n * row_bytes);
        for (auto& b : out) b = std::uint8_t(all.size() + (&b - out.data()) * 7);
        return out;
    };
    const std::vector<std::uint8_t> first = rows_of(5);
    all = first;
    auto keeper = std::make_shared<std::vector<std::uint8_t>>(first);
    lf::TokenRows t(lf::Buffer<std::uint8_t>::borrow(keeper->data(), keeper->size(), keeper), row_bytes, true);
    check(t.contiguous() && t.rows() == 5 && t.row(3) == keeper->data() + 3 * row_bytes, "token rows: the first part");
    std::vector<const std::uint8_t*> where;
    const std::size_t big = (std::size_t(64) << 20) / row_bytes + 10;  // past a least block
    for (std::size_t n : {std::size_t(3), std::size_t(1), big, std::size_t(2), std::size_t(50)}) {
        t.reserve(n);
        if (n == 1) t.reserve(big + 5);  // an unused room request: later rows still follow
        const std::vector<std::uint8_t> add = rows_of(n);
        t.append(add.data(), add.size());
        all.insert(all.end(), add.begin(), add.end());
        where.push_back(t.row(t.rows() - n));
    }
    check(t.rows() * row_bytes == all.size() && !t.contiguous(), "token rows: count");
    bool same = true;
    for (std::size_t r = 0; r < t.rows(); r += (r < 100 || r + 100 > t.rows()) ? 1 : 997) {
        same &= std::memcmp(t.row(r), all.data() + r * row_bytes, row_bytes) == 0;
        const std::size_t end = t.part_end(r);
        same &= end > r && end <= t.rows();
        same &= t.row(end - 1) == t.row(r) + (end - 1 - r) * row_bytes;  // one run up to part_end
    }
    check(same, "token rows: rows and runs read back");
    std::size_t at = 5;
    for (std::size_t i = 0; i < where.size(); ++i) {  // nothing moved
        const std::size_t n = std::vector<std::size_t>{3, 1, big, 2, 50}[i];
        check(t.row(at) == where[i], "token rows: stored rows stay where they are");
        at += n;
    }
    // A compaction's result: the mapped rows where they were, then the rows given, in one part.
    const std::vector<std::uint8_t> rest = rows_of(4);
    const lf::TokenRows kept = t.with_mapped_rows(lf::AlignedVector<std::uint8_t>(rest.begin(), rest.end()));
    check(t.mapped_rows() == 5 && kept.mapped_rows() == 5 && kept.rows() == 9 && kept.row(2) == keeper->data() + 2 * row_bytes &&
              kept.part_end(0) == 5 && kept.part_end(5) == 9 && std::memcmp(kept.row(5), rest.data(), rest.size()) == 0,
          "token rows: a compaction keeps the mapped rows in place");
    const lf::TokenRows in_memory(lf::Buffer<std::uint8_t>(lf::AlignedVector<std::uint8_t>(first.begin(), first.end())),
                                  row_bytes);
    const lf::TokenRows only = in_memory.with_mapped_rows(lf::AlignedVector<std::uint8_t>(rest.begin(), rest.end()));
    check(in_memory.mapped_rows() == 0 && only.rows() == 4 && only.contiguous() &&
              std::memcmp(only.row(0), rest.data(), rest.size()) == 0,
          "token rows: rows in memory are all replaced");
}

int main() {
    rows_read_as_their_values();
    code_scorer_matches_the_quantizer();
    maxsim_reads_every_token_type();
    item_tables_read_as_flat_rows();
    centroid_lists_match_a_reference();
    token_rows_read_what_was_appended();
    return latefold_test::summary();
}
