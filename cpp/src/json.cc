#include "latefold/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace latefold {

namespace {

[[noreturn]] void wrong_type(const char* wanted) {
    throw std::invalid_argument(std::string("expected ") + wanted);
}

void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
        out += char(code);
    } else if (code < 0x800) {
        out += char(0xC0 | (code >> 6));
        out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        out += char(0xE0 | (code >> 12));
        out += char(0x80 | ((code >> 6) & 0x3F));
        out += char(0x80 | (code & 0x3F));
    } else {
        out += char(0xF0 | (code >> 18));
        out += char(0x80 | ((code >> 12) & 0x3F));
        out += char(0x80 | ((code >> 6) & 0x3F));
        out += char(0x80 | (code & 0x3F));
    }
}

void dump_string(const std::string& s, std::string& out) {
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", unsigned(c));
            out += escaped;
        } else {
            out += char(c);
        }
    }
    out += '"';
}

// Recursive descent over [p, end); depth bounds the recursion.
class Parser {
public:
    Parser(const char* p, const char* end) : p_(p), end_(end) {}

    Json document() {
        Json value = parse_value(0);
        skip_space();
        if (p_ != end_) fail("trailing characters");
        return value;
    }

private:
    static constexpr int max_depth = 64;

    [[noreturn]] void fail(const char* what) const { throw std::invalid_argument(std::string("JSON: ") + what); }

    void skip_space() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }
    bool literal(const char* word) {
        const char* q = p_;
        for (; *word; ++word, ++q)
            if (q == end_ || *q != *word) return false;
        p_ = q;
        return true;
    }

    Json parse_value(int depth) {
        if (depth > max_depth) fail("nested too deep");
        skip_space();
        if (p_ == end_) fail("unexpected end");
        switch (*p_) {
            case '{': return parse_object(depth);
            case '[': return parse_array(depth);
            case '"': return Json(parse_string());
            case 't': if (literal("true")) return Json(true); break;
            case 'f': if (literal("false")) return Json(false); break;
            case 'n': if (literal("null")) return Json(); break;
            default: return parse_number();
        }
        fail("unexpected character");
    }

    Json parse_object(int depth) {
        ++p_;
        Json object = Json::object();
        skip_space();
        if (p_ != end_ && *p_ == '}') return ++p_, object;
        for (;;) {
            skip_space();
            if (p_ == end_ || *p_ != '"') fail("expected a key");
            std::string key = parse_string();
            skip_space();
            if (p_ == end_ || *p_ != ':') fail("expected ':'");
            ++p_;
            if (object.find(key)) fail("repeated key");
            object.set(key, parse_value(depth + 1));
            skip_space();
            if (p_ == end_) fail("unexpected end");
            if (*p_ == '}') return ++p_, object;
            if (*p_ != ',') fail("expected ',' or '}'");
            ++p_;
        }
    }

    Json parse_array(int depth) {
        ++p_;
        Json array = Json::array();
        skip_space();
        if (p_ != end_ && *p_ == ']') return ++p_, array;
        for (;;) {
            array.push(parse_value(depth + 1));
            skip_space();
            if (p_ == end_) fail("unexpected end");
            if (*p_ == ']') return ++p_, array;
            if (*p_ != ',') fail("expected ',' or ']'");
            ++p_;
        }
    }

    std::uint32_t hex4() {
        if (end_ - p_ < 4) fail("short \\u escape");
        std::uint32_t code = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            const char c = *p_;
            const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (digit < 0) fail("bad \\u escape");
            code = code * 16 + std::uint32_t(digit);
        }
        return code;
    }

    std::string parse_string() {
        ++p_;
        std::string out;
        for (;;) {
            if (p_ == end_) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(*p_++);
            if (c == '"') return out;
            if (c < 0x20) fail("control character in a string");
            if (c >= 0x80) {  // a UTF-8 sequence: copied once checked (RFC 3629)
                const int extra = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 && c <= 0xDF ? 1 : -1;
                if (extra < 0 || end_ - p_ < extra) fail("invalid UTF-8");
                std::uint32_t code = c & (0x3F >> extra);
                for (int i = 0; i < extra; ++i) {
                    const unsigned char next = static_cast<unsigned char>(p_[i]);
                    if ((next & 0xC0) != 0x80) fail("invalid UTF-8");
                    code = code << 6 | (next & 0x3F);
                }
                static const std::uint32_t smallest[4] = {0, 0x80, 0x800, 0x10000};
                if (code < smallest[extra] || code > 0x10FFFF || (code >= 0xD800 && code < 0xE000))
                    fail("invalid UTF-8");
                out += char(c);
                out.append(p_, p_ + extra);
                p_ += extra;
                continue;
            }
            if (c != '\\') {
                out += char(c);
                continue;
            }
            if (p_ == end_) fail("unterminated string");
            switch (*p_++) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t code = hex4();
                    if (code >= 0xD800 && code < 0xDC00) {  // a surrogate pair
                        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') fail("lone surrogate");
                        p_ += 2;
                        const std::uint32_t low = hex4();
                        if (low < 0xDC00 || low >= 0xE000) fail("lone surrogate");
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    } else if (code >= 0xDC00 && code < 0xE000) {
                        fail("lone surrogate");
                    }
                    append_utf8(out, code);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }

    Json parse_number() {
        const char* start = p_;
        if (p_ != end_ && *p_ == '-') ++p_;
        const char* digits = p_;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
        if (p_ == digits || (*digits == '0' && p_ - digits > 1)) fail("bad number");
        bool integral = true;
        if (p_ != end_ && *p_ == '.') {
            integral = false;
            const char* fraction = ++p_;
            while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
            if (p_ == fraction) fail("bad number");
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            integral = false;
            ++p_;
            if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            const char* exponent = p_;
            while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
            if (p_ == exponent) fail("bad number");
        }
        const std::string text(start, p_);
        if (integral) {
            std::uint64_t magnitude = 0;
            for (const char* d = digits; d != p_; ++d) {
                const std::uint64_t digit = std::uint64_t(*d - '0');
                if (magnitude > (UINT64_MAX - digit) / 10) fail("integer out of range");
                magnitude = magnitude * 10 + digit;
            }
            if (*start != '-') return Json(static_cast<unsigned long long>(magnitude));
            if (magnitude > std::uint64_t(INT64_MAX) + 1) fail("integer out of range");
            return Json(magnitude == std::uint64_t(INT64_MAX) + 1 ? INT64_MIN : -static_cast<long long>(magnitude));
        }
        const double value = std::strtod(text.c_str(), nullptr);
        if (!std::isfinite(value)) fail("number out of range");
        return Json(value);
    }

    const char* p_;
    const char* end_;
};

}  // namespace

Json::Json(long long value) : type_(Type::integer), negative_(value < 0) {
    magnitude_ = value < 0 ? std::uint64_t(0) - std::uint64_t(value) : std::uint64_t(value);
}

Json::Json(double value) : type_(Type::number), number_(value) {
    if (!std::isfinite(value)) throw std::invalid_argument("JSON numbers must be finite");
}

bool Json::as_bool() const {
    if (type_ != Type::boolean) wrong_type("a boolean");
    return boolean_;
}

std::int64_t Json::as_int() const {
    if (type_ != Type::integer) wrong_type("an integer");
    if (negative_) {
        if (magnitude_ > std::uint64_t(INT64_MAX) + 1) wrong_type("a 64-bit integer");
        return magnitude_ == std::uint64_t(INT64_MAX) + 1 ? INT64_MIN : -static_cast<std::int64_t>(magnitude_);
    }
    if (magnitude_ > std::uint64_t(INT64_MAX)) wrong_type("a signed 64-bit integer");
    return static_cast<std::int64_t>(magnitude_);
}

std::uint64_t Json::as_uint() const {
    if (type_ != Type::integer || (negative_ && magnitude_ != 0)) wrong_type("a non-negative integer");
    return magnitude_;
}

double Json::as_number() const {
    if (type_ == Type::number) return number_;
    if (type_ != Type::integer) wrong_type("a number");
    return negative_ ? -double(magnitude_) : double(magnitude_);
}

const std::string& Json::as_string() const {
    if (type_ != Type::string) wrong_type("a string");
    return string_;
}

const std::vector<Json>& Json::items() const {
    if (type_ != Type::array) wrong_type("an array");
    return items_;
}

const std::vector<std::pair<std::string, Json>>& Json::members() const {
    if (type_ != Type::object) wrong_type("an object");
    return members_;
}

const Json* Json::find(const std::string& key) const {
    if (type_ != Type::object) return nullptr;
    auto it = std::lower_bound(members_.begin(), members_.end(), key,
                               [](const std::pair<std::string, Json>& m, const std::string& k) { return m.first < k; });
    return it != members_.end() && it->first == key ? &it->second : nullptr;
}

const Json& Json::at(const std::string& key) const {
    if (type_ != Type::object) wrong_type("an object");
    const Json* found = find(key);
    if (!found) throw std::invalid_argument("missing \"" + key + "\"");
    return *found;
}

Json& Json::set(const std::string& key, Json value) {
    if (type_ != Type::object) wrong_type("an object");
    auto it = std::lower_bound(members_.begin(), members_.end(), key,
                               [](const std::pair<std::string, Json>& m, const std::string& k) { return m.first < k; });
    if (it != members_.end() && it->first == key)
        it->second = std::move(value);
    else
        members_.emplace(it, key, std::move(value));
    return *this;
}

Json& Json::push(Json value) {
    if (type_ != Type::array) wrong_type("an array");
    items_.push_back(std::move(value));
    return *this;
}

void Json::dump_to(std::string& out) const {
    switch (type_) {
        case Type::null: out += "null"; return;
        case Type::boolean: out += boolean_ ? "true" : "false"; return;
        case Type::integer:
            if (negative_ && magnitude_) out += '-';
            out += std::to_string(magnitude_);
            return;
        case Type::number: {
            char text[32];
            std::snprintf(text, sizeof text, "%.17g", number_);
            out += text;
            if (std::string(text).find_first_of(".eE") == std::string::npos) out += ".0";  // stays a float when read back
            return;
        }
        case Type::string: dump_string(string_, out); return;
        case Type::array:
            out += '[';
            for (std::size_t i = 0; i < items_.size(); ++i) {
                if (i) out += ", ";
                items_[i].dump_to(out);
            }
            out += ']';
            return;
        case Type::object:
            out += '{';
            for (std::size_t i = 0; i < members_.size(); ++i) {
                if (i) out += ", ";
                dump_string(members_[i].first, out);
                out += ": ";
                members_[i].second.dump_to(out);
            }
            out += '}';
            return;
    }
}

std::string Json::dump() const {
    std::string out;
    dump_to(out);
    return out;
}

Json Json::parse(const char* text, std::size_t size) { return Parser(text, text + size).document(); }

bool Json::operator==(const Json& o) const {
    if (type_ != o.type_) return false;
    switch (type_) {
        case Type::null: return true;
        case Type::boolean: return boolean_ == o.boolean_;
        case Type::integer: return magnitude_ == o.magnitude_ && (negative_ == o.negative_ || magnitude_ == 0);
        case Type::number: return number_ == o.number_;
        case Type::string: return string_ == o.string_;
        case Type::array: return items_ == o.items_;
        case Type::object: return members_ == o.members_;
    }
    return false;
}

}  // namespace latefold
