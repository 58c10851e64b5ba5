// Product quantizer persistence: parameters, then the centroids and the rotation once trained.
#include <cmath>
#include <memory>

#include "latefold/pq.h"

namespace latefold {

const char* rotation_name(PqRotation rotation) noexcept {
    switch (rotation) {
        case PqRotation::none: return "none";
        case PqRotation::random: return "random";
        case PqRotation::opq: return "opq";
    }
    return "?";
}

PqRotation rotation_from_name(const std::string& name) {
    for (PqRotation r : {PqRotation::none, PqRotation::random, PqRotation::opq})
        if (name == rotation_name(r)) return r;
    fail_argument("rotation must be None, 'random' or 'opq', got '" + name + "'");
}

Json ProductQuantizer::params() const {
    Json p = Json::object()
                 .set("dim", static_cast<unsigned long long>(dim_))
                 .set("m", static_cast<unsigned long long>(m_))
                 .set("nbits", static_cast<unsigned long long>(nbits_))
                 .set("metric", metric_name(metric_));
    if (rotation_kind_ != PqRotation::none) p.set("rotation", rotation_name(rotation_kind_));  // absent: none
    return p;
}

void ProductQuantizer::write(io::Writer& writer, const std::string& prefix) const {
    writer.object(prefix, Json::object().set("params", params()));
    if (!trained()) return;
    writer.array(prefix + "/centroids", centroids_.data(), {centroids_.size()});
    if (!rotation_.empty()) writer.array(prefix + "/rotation", rotation_.data(), {dim_, dim_});
}

ProductQuantizer ProductQuantizer::read(const io::Reader& reader, const std::string& prefix) {
    const Json& description = reader.object(prefix);
    std::unique_ptr<ProductQuantizer> pq;
    try {
        const Json& p = description.at("params");
        for (const auto& member : p.members())
            if (member.first != "dim" && member.first != "m" && member.first != "nbits" && member.first != "metric" &&
                member.first != "rotation")
                throw std::invalid_argument("unexpected parameter '" + member.first + "'");
        const Json* rotation = p.find("rotation");
        pq = std::make_unique<ProductQuantizer>(
            std::size_t(p.at("dim").as_uint()), std::size_t(p.at("m").as_uint()), std::size_t(p.at("nbits").as_uint()),
            metric_from_name(p.at("metric").as_string()),
            rotation ? rotation_from_name(rotation->as_string()) : PqRotation::none);
        if (pq->rotation_kind_ == PqRotation::none && rotation) throw std::invalid_argument("rotation 'none'");
    } catch (const std::invalid_argument& error) {
        reader.corrupt("quantizer parameters: " + std::string(error.what()));
    }
    if (!reader.has_array(prefix + "/centroids")) return *pq;
    const bool rotated = pq->rotation_kind_ != PqRotation::none;
    if (reader.has_array(prefix + "/rotation") != rotated) reader.corrupt("quantizer rotation");
    if (rotated) {
        const Buffer<float> r = reader.array<float>(prefix + "/rotation", {pq->dim_, pq->dim_}, true);
        try {
            pq->set_rotation(r.data());
        } catch (const std::invalid_argument& error) {
            reader.corrupt("quantizer " + std::string(error.what()));
        }
    }
    const Buffer<float> c = reader.array<float>(prefix + "/centroids", {pq->ksub() * pq->dim_}, true);
    for (float v : c)
        if (!std::isfinite(v)) reader.corrupt("quantizer centroids are not finite");
    pq->set_centroids(c.data());
    return *pq;
}

void ProductQuantizer::save(const std::string& path) const {
    io::Writer writer("pq");
    write(writer, "pq");
    writer.save(path);
}

ProductQuantizer ProductQuantizer::load(const std::string& path) { return read(io::Reader(path, "pq"), "pq"); }

std::string ProductQuantizer::to_bytes() const {
    io::Writer writer("pq");
    write(writer, "pq");
    return writer.to_bytes();
}

ProductQuantizer ProductQuantizer::from_bytes(const void* data, std::size_t size) {
    return read(io::Reader(std::make_shared<const io::FileBytes>(data, size), "pq"), "pq");
}

}  // namespace latefold
