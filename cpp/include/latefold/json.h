// A small JSON value: how objects describe their parameters in a file's "meta" section, so that a
// file stays readable by any JSON tool and by numpy alone. Only what that needs: objects keep
// their members sorted by key (one text per value), integers are exact 64-bit (signed or
// unsigned), other numbers are doubles written so that they read back bit for bit. Parsing
// accepts RFC 8259 text, nested at most 64 deep, and throws std::invalid_argument otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace latefold {

class Json {
public:
    enum class Type : std::uint8_t { null, boolean, integer, number, string, array, object };

    Json() = default;
    Json(std::nullptr_t) {}
    Json(bool value) : type_(Type::boolean), boolean_(value) {}
    Json(int value) : Json(static_cast<long long>(value)) {}
    Json(long value) : Json(static_cast<long long>(value)) {}
    Json(long long value);
    Json(unsigned value) : Json(static_cast<unsigned long long>(value)) {}
    Json(unsigned long value) : Json(static_cast<unsigned long long>(value)) {}
    Json(unsigned long long value) : type_(Type::integer), magnitude_(value) {}
    Json(double value);
    Json(std::string value) : type_(Type::string), string_(std::move(value)) {}
    Json(const char* value) : Json(std::string(value)) {}
    static Json array() { Json j; j.type_ = Type::array; return j; }
    static Json object() { Json j; j.type_ = Type::object; return j; }

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return type_ == Type::null; }

    // Typed access: std::invalid_argument when the value is of another type or out of range.
    bool as_bool() const;
    std::int64_t as_int() const;
    std::uint64_t as_uint() const;
    double as_number() const;  ///< integers too
    const std::string& as_string() const;
    const std::vector<Json>& items() const;
    const std::vector<std::pair<std::string, Json>>& members() const;

    /// Object member, or nullptr.
    const Json* find(const std::string& key) const;
    /// Object member; std::invalid_argument naming the key when absent.
    const Json& at(const std::string& key) const;
    /// Sets an object member (replacing one of the same key); returns *this for chaining.
    Json& set(const std::string& key, Json value);
    Json& push(Json value);

    std::string dump() const;
    static Json parse(const char* text, std::size_t size);
    static Json parse(const std::string& text) { return parse(text.data(), text.size()); }

    bool operator==(const Json& other) const;
    bool operator!=(const Json& other) const { return !(*this == other); }

private:
    void dump_to(std::string& out) const;
    Type type_ = Type::null;
    bool boolean_ = false;
    bool negative_ = false;          // integer: the sign; magnitude_ its absolute value
    std::uint64_t magnitude_ = 0;
    double number_ = 0.0;
    std::string string_;
    std::vector<Json> items_;
    std::vector<std::pair<std::string, Json>> members_;  // sorted by key
};

}  // namespace latefold
