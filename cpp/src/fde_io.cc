// FDE persistence: the parameters (the constructor's names) and the random generator's version.
#include "latefold/fde.h"
#include "latefold/random.h"

namespace latefold {

const char* projection_name(FdeProjection projection) noexcept {
    switch (projection) {
        case FdeProjection::identity: return "identity";
        case FdeProjection::ams_sketch: return "ams_sketch";
        case FdeProjection::dense_sign: return "dense_sign";
    }
    return "?";
}

FdeProjection projection_from_name(const std::string& name) {
    for (FdeProjection p : {FdeProjection::identity, FdeProjection::ams_sketch, FdeProjection::dense_sign})
        if (name == projection_name(p)) return p;
    fail_argument("projection_type must be 'identity', 'ams_sketch' or 'dense_sign', got '" + name + "'");
}

namespace {

Json size_or_null(std::size_t n) { return n ? Json(static_cast<unsigned long long>(n)) : Json(); }

std::size_t size_from(const Json& value) { return value.is_null() ? 0 : std::size_t(value.as_uint()); }

}  // namespace

Json FdeEncoder::params() const {
    const FdeConfig& c = config_;
    return Json::object()
        .set("dimension", static_cast<unsigned long long>(c.dimension))
        .set("num_repetitions", static_cast<unsigned long long>(c.num_repetitions))
        .set("num_simhash_projections", static_cast<unsigned long long>(c.num_simhash_projections))
        .set("seed", static_cast<unsigned long long>(c.seed))
        .set("projection_type", projection_name(c.projection_type))
        .set("projection_dimension", size_or_null(c.projection_dimension))
        .set("fill_empty_partitions", c.fill_empty_partitions)
        .set("final_projection_dimension", size_or_null(c.final_projection_dimension));
}

void FdeEncoder::write(io::Writer& writer, const std::string& prefix) const {
    writer.object(prefix, Json::object().set("params", params()).set("rng_version", random::generator_version));
}

FdeEncoder FdeEncoder::read(const io::Reader& reader, const std::string& prefix) {
    const Json& description = reader.object(prefix);
    FdeConfig c;
    try {
        const Json* version = description.find("rng_version");
        if (!version || version->type() != Json::Type::integer || version->as_int() != random::generator_version)
            throw std::invalid_argument("random generator version " + (version ? version->dump() : "missing") +
                                        "; this latefold has version " + std::to_string(random::generator_version));
        const Json& p = description.at("params");
        if (p.members().size() != 8) throw std::invalid_argument("unexpected parameters");
        c.dimension = std::size_t(p.at("dimension").as_uint());
        c.num_repetitions = std::size_t(p.at("num_repetitions").as_uint());
        c.num_simhash_projections = std::size_t(p.at("num_simhash_projections").as_uint());
        c.seed = p.at("seed").as_uint();
        c.projection_type = projection_from_name(p.at("projection_type").as_string());
        c.projection_dimension = size_from(p.at("projection_dimension"));
        c.fill_empty_partitions = p.at("fill_empty_partitions").as_bool();
        c.final_projection_dimension = size_from(p.at("final_projection_dimension"));
        c.validate();
    } catch (const std::logic_error& error) {  // a missing or invalid parameter
        reader.corrupt(std::string("FDE parameters: ") + error.what());
    }
    return FdeEncoder(c);
}

void FdeEncoder::save(const std::string& path) const {
    io::Writer writer("fde");
    write(writer, "fde");
    writer.save(path);
}

FdeEncoder FdeEncoder::load(const std::string& path) { return read(io::Reader(path, "fde"), "fde"); }

std::string FdeEncoder::to_bytes() const {
    io::Writer writer("fde");
    write(writer, "fde");
    return writer.to_bytes();
}

FdeEncoder FdeEncoder::from_bytes(const void* data, std::size_t size) {
    return read(io::Reader(std::make_shared<const io::FileBytes>(data, size), "fde"), "fde");
}

}  // namespace latefold
