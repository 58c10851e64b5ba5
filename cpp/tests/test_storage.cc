// C++ checks of the storage types without Python: RowStore reads float32, float16, bfloat16 and
// int8 rows (with scales) exactly as their values, and its inner products stay within the float32
// accumulation bound of a float64 reference; Scorer gives the distances search ranks by; MaxSim
// reads bfloat16 and int8 tokens as their values.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "latefold/maxsim.h"
#include "latefold/row_store.h"

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

// MaxSim reads each token type as its values: the scores equal those of the same values stored as
// float32 (the conversions are exact: bfloat16 widens, int8 times its float32 scale rounds once,
// as the float32 copy was made).
void maxsim_reads_every_token_type() {
    std::mt19937 gen(9);
    const std::size_t dim = 20, docs = 7;
    std::vector<std::int64_t> offsets = {0};
    for (std::size_t d = 0; d < docs; ++d) offsets.push_back(offsets.back() + 1 + std::int64_t(gen() % 9));
    const std::size_t rows = std::size_t(offsets.back());
    std::vector<float> queries(9 * dim);
    for (float& v : queries) v = std::normal_distribution<float>()(gen);
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
        lf::maxsim_scores(q, plain, b.data(), 1);
        check(a == b, std::string("maxsim over ") + lf::dtype_name(dtype) + " tokens");
        const std::vector<std::int64_t> candidates = {6, 2, 5, 0, 3, 4};  // read one document at a time
        std::vector<float> rerank_a(6), rerank_b(6);
        lf::maxsim_rerank(q, typed, candidates.data(), 3, rerank_a.data(), 1);
        lf::maxsim_rerank(q, plain, candidates.data(), 3, rerank_b.data(), 1);
        check(rerank_a == rerank_b, std::string("maxsim rerank over ") + lf::dtype_name(dtype) + " tokens");
    }
}

}  // namespace

int main() {
    rows_read_as_their_values();
    code_scorer_matches_the_quantizer();
    maxsim_reads_every_token_type();
    return latefold_test::summary();
}
