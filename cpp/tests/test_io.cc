// C++ checks of persistence without Python: the JSON codec, the checksums, a save and load of
// every engine (in memory and mapped), the same through bytes in memory (pickling), and the
// reader against every truncation and random bit flips of a graph file and of its bytes (run under ASan/UBSan by .ci/sanitize: a damaged file must be refused
// with std::invalid_argument, or load into an index that searches safely).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "latefold/fde.h"
#include "latefold/graph.h"
#include "latefold/io.h"
#include "latefold/json.h"
#include "latefold/pq.h"

#include "check.h"

namespace lf = latefold;
namespace fs = std::filesystem;

namespace {

using latefold_test::check;

template <class F>
bool throws_invalid_argument(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    }
    return false;
}

std::vector<char> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& path, const std::vector<char>& bytes, std::size_t size) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(size));
}

void json_round_trips() {
    const std::string text =
        R"({"a": [1, -2, 18446744073709551615, -9223372036854775808, 0.1, 1e300, 5e-324, 2.0], )"
        R"("b": {"c": "tab\t quote\" slash\\ \u00e9 \ud83d\ude00", "d": null, "e": true}})";
    const lf::Json value = lf::Json::parse(text);
    check(lf::Json::parse(value.dump()) == value, "JSON: dump then parse gives the value back");
    const auto& a = value.at("a").items();
    check(a[2].as_uint() == UINT64_MAX && a[3].as_int() == INT64_MIN, "JSON: 64-bit integers exact");
    check(a[4].as_number() == 0.1 && a[6].as_number() == 5e-324, "JSON: doubles exact");
    check(a[7].type() == lf::Json::Type::number && value.dump().find("2.0") != std::string::npos,
          "JSON: a float stays a float");
    check(value.at("b").at("c").as_string() == "tab\t quote\" slash\\ \xc3\xa9 \xf0\x9f\x98\x80", "JSON: escapes");
    check(throws_invalid_argument([&] { a[0].as_string(); }), "JSON: wrong type refused");
    check(throws_invalid_argument([&] { a[1].as_uint(); }), "JSON: negative as unsigned refused");
    const char* bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\": 1, \"a\": 2}", "01", "1.", "-", "\"\\x\"",
                         "\"\\ud800\"", "nul", "[1] 2", "\"a\nb\"", "1e999", "18446744073709551616",
                         "\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\""};
    for (const char* t : bad) check(throws_invalid_argument([&] { lf::Json::parse(t); }), std::string("JSON rejects ") + t);
    check(throws_invalid_argument([] { lf::Json::parse(std::string(100, '[') + std::string(100, ']')); }),
          "JSON: nesting bounded");
}

void checksums() {
    const char* digits = "123456789";
    check(lf::io::crc32c(digits, 9) == 0xE3069283u, "CRC-32C check value");
    check(lf::io::crc32(digits, 9) == 0xCBF43926u, "CRC-32 check value");
    std::vector<unsigned char> data(1000);
    std::mt19937 gen(3);
    for (auto& b : data) b = static_cast<unsigned char>(gen());
    check(lf::io::crc32c(data.data() + 333, 667, lf::io::crc32c(data.data(), 333)) == lf::io::crc32c(data.data(), 1000),
          "CRC-32C continues across calls");
}

std::vector<float> random_rows(std::size_t n, std::size_t dim, std::mt19937& gen) {
    std::normal_distribution<float> normal;
    std::vector<float> x(n * dim);
    for (float& v : x) v = normal(gen);
    return x;
}

// A small graph with attributes, deletions and a quantizer: what the damage loop reads.
std::unique_ptr<lf::GraphIndex> small_graph(std::mt19937& gen, std::vector<float>& queries) {
    const std::size_t n = 120, dim = 8;
    lf::GraphParams p;
    p.dim = dim;
    p.metric = lf::Metric::l2;
    p.degree = 6;
    p.ef_construction = 16;
    auto g = std::make_unique<lf::GraphIndex>(p);
    const std::vector<float> x = random_rows(n, dim, gen);
    lf::ProductQuantizer pq(dim, 4, 4, lf::Metric::l2);
    pq.train(x.data(), n, 3, 1, n, 1);
    g->set_quantizer(pq);
    std::vector<std::int64_t> ids(n), years(n), offsets(n + 1, 0), labels;
    std::vector<double> scores(n);
    for (std::size_t i = 0; i < n; ++i) {
        ids[i] = std::int64_t(i) * 7 - 50;
        years[i] = std::int64_t(1990 + i % 10);
        scores[i] = double(i) / 3.0;
        for (std::size_t l = 0; l < i % 3; ++l) labels.push_back(std::int64_t(l + i % 5));
        offsets[i + 1] = std::int64_t(labels.size());
    }
    lf::ColumnBatch year{"year", lf::ColumnKind::int64, years.data()}, score{"score", lf::ColumnKind::float64};
    score.floats = scores.data();
    lf::ColumnBatch tags{"tags", lf::ColumnKind::labels};
    tags.offsets = offsets.data();
    tags.labels = labels.data();
    g->add(x.data(), ids.data(), n, {year, score, tags}, 1);
    const std::int64_t gone[] = {ids[4], ids[77]};
    g->remove(gone, 2);
    queries = random_rows(3, dim, gen);
    return g;
}

struct Results {
    std::vector<float> scores;
    std::vector<std::int64_t> ids;
    bool operator==(const Results& o) const { return scores == o.scores && ids == o.ids; }
};

Results search(const lf::GraphIndex& g, const std::vector<float>& queries) {
    const std::size_t nq = queries.size() / g.params().dim, k = 5;
    Results r{std::vector<float>(nq * k), std::vector<std::int64_t>(nq * k)};
    lf::GraphSearchOptions o;
    o.k = k;
    o.threads = 1;
    g.search(queries.data(), nq, nullptr, o, r.scores.data(), r.ids.data(), nullptr);
    return r;
}

void engines_round_trip(const fs::path& folder) {
    std::mt19937 gen(11);
    lf::FdeConfig c;
    c.dimension = 12;
    c.num_repetitions = 3;
    c.num_simhash_projections = 2;
    c.seed = 99;
    c.projection_type = lf::FdeProjection::ams_sketch;
    c.projection_dimension = 4;
    const lf::FdeEncoder fde(c);
    fde.save((folder / "fde.lf").string());
    const lf::FdeEncoder fde_back = lf::FdeEncoder::load((folder / "fde.lf").string());
    check(fde_back.params() == fde.params(), "FDE: parameters round trip");

    const std::vector<float> x = random_rows(300, 10, gen);
    lf::ProductQuantizer pq(10, 3, 8, lf::Metric::inner_product);
    pq.train(x.data(), 300, 3, 1, 300, 1);
    pq.save((folder / "pq.lf").string());
    const lf::ProductQuantizer pq_back = lf::ProductQuantizer::load((folder / "pq.lf").string());
    std::vector<std::uint8_t> a(300 * 3), b(300 * 3);
    pq.encode(x.data(), 300, a.data(), 1);
    pq_back.encode(x.data(), 300, b.data(), 1);
    check(pq_back.centroids() == pq.centroids() && a == b, "PQ: centroids and codes round trip");

    std::vector<float> queries;
    const auto g = small_graph(gen, queries);
    const std::string path = (folder / "graph.lf").string();
    g->save(path);
    const Results expected = search(*g, queries);
    for (bool mmap : {false, true}) {
        const auto back = lf::GraphIndex::load(path, mmap, true);
        check(back->size() == g->size() && back->slots() == g->slots(), "graph: sizes round trip");
        check(search(*back, queries) == expected, mmap ? "graph (mapped): same results" : "graph: same results");
        check(back->attributes().columns().size() == 3 && back->quantizer(), "graph: columns and quantizer");
    }
    // A mapped index changes in memory only: the file stays as it was.
    const std::vector<char> before = read_file(path);
    {
        const auto mapped = lf::GraphIndex::load(path, true, true);
        const std::vector<float> more = random_rows(3, 8, gen);
        const std::int64_t ids[] = {100000, 100001, 100002};
        std::vector<std::int64_t> years = {1, 2, 3}, offsets = {0, 0, 0, 0};
        std::vector<double> scores = {0, 0, 0};
        lf::ColumnBatch year{"year", lf::ColumnKind::int64, years.data()}, score{"score", lf::ColumnKind::float64};
        score.floats = scores.data();
        lf::ColumnBatch tags{"tags", lf::ColumnKind::labels};
        tags.offsets = offsets.data();
        tags.labels = nullptr;
        mapped->add(more.data(), ids, 3, {year, score, tags}, 1);
        mapped->compact(1);
        check(mapped->size() == g->size() + 3, "graph (mapped): add after load");
    }
    check(read_file(path) == before, "graph (mapped): the file is never written");

    // In memory: the bytes are the file's, and read back into the same objects.
    auto same_bytes = [](const std::string& image, const std::vector<char>& file) {
        return image.size() == file.size() && std::memcmp(image.data(), file.data(), file.size()) == 0;
    };
    const std::string fde_image = fde.to_bytes(), pq_image = pq.to_bytes(), graph_image = g->to_bytes();
    check(same_bytes(fde_image, read_file(folder / "fde.lf")) && same_bytes(pq_image, read_file(folder / "pq.lf")) &&
              same_bytes(graph_image, before),
          "to_bytes gives the bytes save writes");
    check(lf::FdeEncoder::from_bytes(fde_image.data(), fde_image.size()).params() == fde.params(),
          "FDE: parameters round trip in memory");
    const lf::ProductQuantizer pq_copy = lf::ProductQuantizer::from_bytes(pq_image.data(), pq_image.size());
    pq_copy.encode(x.data(), 300, b.data(), 1);
    check(pq_copy.centroids() == pq.centroids() && a == b, "PQ: centroids and codes round trip in memory");
    const auto g_copy = lf::GraphIndex::from_bytes(graph_image.data(), graph_image.size());
    check(search(*g_copy, queries) == expected && g_copy->size() == g->size(), "graph: same results from memory");
    check(g_copy->to_bytes() == graph_image, "graph: bytes read back write the same bytes");
    {
        const std::vector<float> more = random_rows(1, 8, gen);
        const std::int64_t id = 200000;
        std::int64_t year = 1, offsets[] = {0, 0};
        double score = 0;
        lf::ColumnBatch year_column{"year", lf::ColumnKind::int64, &year}, score_column{"score", lf::ColumnKind::float64};
        score_column.floats = &score;
        lf::ColumnBatch tags{"tags", lf::ColumnKind::labels};
        tags.offsets = offsets;
        g_copy->add(more.data(), &id, 1, {year_column, score_column, tags}, 1);
        check(g_copy->size() == g->size() + 1 && search(*g, queries) == expected, "graph: a copy changes alone");
    }
    check(throws_invalid_argument([&] { lf::FdeEncoder::from_bytes(graph_image.data(), graph_image.size()); }),
          "graph bytes are not FDE bytes");
    check(throws_invalid_argument([&] { lf::FdeEncoder::load(path); }), "a graph file is not an FDE file");
}

// Every truncation is refused; a random bit flip is refused or harmless (padding).
void damaged_files_are_refused(const fs::path& folder) {
    std::mt19937 gen(5);
    std::vector<float> queries;
    const auto g = small_graph(gen, queries);
    const fs::path good = folder / "good.lf", bad = folder / "bad.lf";
    g->save(good.string());
    const std::vector<char> blob = read_file(good);
    const Results expected = search(*g, queries);
    int refused = 0;
    for (std::size_t cut = 0; cut < blob.size(); cut += 5) {
        write_file(bad, blob, cut);
        for (bool mmap : {false, true})
            refused += throws_invalid_argument([&] { lf::GraphIndex::load(bad.string(), mmap, true); });
    }
    check(refused == int(2 * ((blob.size() + 4) / 5)), "every truncation refused");
    int flips = 0, harmless = 0;
    for (int trial = 0; trial < 400; ++trial) {
        std::vector<char> damaged = blob;
        const std::size_t at = std::uniform_int_distribution<std::size_t>(0, blob.size() - 1)(gen);
        damaged[at] = char(damaged[at] ^ (1 << (gen() % 8)));
        write_file(bad, damaged, damaged.size());
        for (bool verify : {true, false}) {
            try {
                const auto back = lf::GraphIndex::load(bad.string(), trial % 2 == 0, verify);
                const Results r = search(*back, queries);  // must not crash, whatever it finds
                if (verify) harmless += r == expected;
                if (verify && !(r == expected)) check(false, "a verified load gave other results");
            } catch (const std::invalid_argument&) {
                flips += verify;
            }
        }
    }
    check(flips + harmless == 400 && flips > 300, "bit flips refused (or in padding)");
}

// The same over bytes in memory: every truncation refused, a bit flip refused or harmless.
void damaged_bytes_are_refused() {
    std::mt19937 gen(7);
    std::vector<float> queries;
    const auto g = small_graph(gen, queries);
    const std::string image = g->to_bytes();
    const Results expected = search(*g, queries);
    std::size_t refused = 0;
    for (std::size_t cut = 0; cut < image.size(); ++cut)
        refused += throws_invalid_argument([&] { lf::GraphIndex::from_bytes(image.data(), cut); });
    check(refused == image.size(), "in memory: every truncation refused");
    int flips = 0, harmless = 0;
    for (int trial = 0; trial < 400; ++trial) {
        std::string damaged = image;
        const std::size_t at = std::uniform_int_distribution<std::size_t>(0, image.size() - 1)(gen);
        damaged[at] = char(damaged[at] ^ (1 << (gen() % 8)));
        try {
            const auto back = lf::GraphIndex::from_bytes(damaged.data(), damaged.size());
            if (search(*back, queries) == expected) ++harmless;
            else check(false, "in memory: damaged bytes gave other results");
        } catch (const std::invalid_argument&) {
            ++flips;
        }
    }
    check(flips + harmless == 400 && flips > 300, "in memory: bit flips refused (or in padding)");
}

}  // namespace

int main() {
    const fs::path folder = fs::temp_directory_path() / ("latefold_io_tests_" + std::to_string(std::random_device()()));
    fs::create_directories(folder);
    json_round_trips();
    checksums();
    engines_round_trip(folder);
    damaged_files_are_refused(folder);
    damaged_bytes_are_refused();
    fs::remove_all(folder);
    return latefold_test::summary();
}
