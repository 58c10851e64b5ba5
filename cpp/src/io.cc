#include "latefold/io.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <system_error>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#include <io.h>
#include <fcntl.h>
#include <sys/stat.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#endif

namespace latefold {
namespace io {

namespace {

constexpr char magic[8] = {'L', 'A', 'T', 'E', 'F', 'O', 'L', 'D'};
constexpr std::uint32_t byte_order_mark = 0x01020304;
constexpr std::size_t header_bytes = 64, entry_bytes = 64, name_bytes = 32, kind_bytes = 16;
constexpr std::size_t alignment = 64;

std::size_t aligned(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

template <class T>
T load_le(const std::uint8_t* p) {
    T value;
    std::memcpy(&value, p, sizeof value);
    return value;
}
template <class T>
void store(std::uint8_t* p, T value) {
    std::memcpy(p, &value, sizeof value);
}

// Table-driven CRCs, eight bytes a step ("slicing by 8").
struct CrcTables {
    std::uint32_t t[8][256];
    explicit CrcTables(std::uint32_t polynomial) {
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ polynomial : c >> 1;
            t[0][i] = c;
        }
        for (std::uint32_t i = 0; i < 256; ++i)
            for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
    std::uint32_t update(std::uint32_t crc, const std::uint8_t* p, std::size_t n) const noexcept {
        crc = ~crc;
        for (; n >= 8; n -= 8, p += 8) {
            const std::uint32_t lo = load_le<std::uint32_t>(p) ^ crc, hi = load_le<std::uint32_t>(p + 4);
            crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
                  t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
        }
        for (; n; --n, ++p) crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xFF];
        return ~crc;
    }
};

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t crc, const std::uint8_t* p,
                                                            std::size_t n) noexcept {
    std::uint64_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) c = _mm_crc32_u64(c, load_le<std::uint64_t>(p));
    std::uint32_t c32 = std::uint32_t(c);
    for (; n; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
    return ~c32;
}
bool have_sse42() noexcept { return __builtin_cpu_supports("sse4.2"); }
#else
std::uint32_t crc32c_sse42(std::uint32_t, const std::uint8_t*, std::size_t) noexcept { return 0; }
bool have_sse42() noexcept { return false; }
#endif

[[noreturn]] void system_failure(const std::string& what, const std::string& path) {
    throw std::system_error(errno, std::generic_category(), what + " '" + path + "'");
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// A name read from a file, fit for a message: bytes outside printable ASCII as \xHH.
std::string printable(const std::string& name) {
    std::string out;
    for (unsigned char c : name) {
        if (c >= 0x20 && c < 0x7F) {
            out += char(c);
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", unsigned(c));
            out += escaped;
        }
    }
    return out;
}

bool is_regular_or_absent(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return errno == ENOENT;
    return (st.st_mode & S_IFMT) == S_IFREG;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t bytes, std::uint32_t crc) noexcept {
    static const bool hardware = have_sse42();
    const auto* p = static_cast<const std::uint8_t*>(data);
    if (hardware) return crc32c_sse42(crc, p, bytes);
    static const CrcTables tables(0x82F63B78u);
    return tables.update(crc, p, bytes);
}

std::uint32_t crc32(const void* data, std::size_t bytes, std::uint32_t crc) noexcept {
    static const CrcTables tables(0xEDB88320u);
    return tables.update(crc, static_cast<const std::uint8_t*>(data), bytes);
}

template <> const char* dtype_string<std::uint8_t>() noexcept { return "|u1"; }
template <> const char* dtype_string<std::uint16_t>() noexcept { return "<u2"; }
template <> const char* dtype_string<std::uint32_t>() noexcept { return "<u4"; }
template <> const char* dtype_string<std::int64_t>() noexcept { return "<i8"; }
template <> const char* dtype_string<float>() noexcept { return "<f4"; }
template <> const char* dtype_string<double>() noexcept { return "<f8"; }

// ----------------------------------------------------------------------------------- FileBytes

FileBytes::FileBytes(const void* data, std::size_t size) {
    const auto* first = static_cast<const std::uint8_t*>(data);
    owned_.assign(first, first + size);
    data_ = owned_.data();
    size_ = size;
}

#ifdef _WIN32
FileBytes::FileBytes(const std::string& path) : mapped_(true) {
    HANDLE file = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file == INVALID_HANDLE_VALUE) {
        errno = ENOENT;
        system_failure("cannot open", path);
    }
    if (GetFileType(file) != FILE_TYPE_DISK) {
        CloseHandle(file);
        throw std::invalid_argument(quoted(path) + " is not a regular file");
    }
    LARGE_INTEGER size;
    GetFileSizeEx(file, &size);
    size_ = std::size_t(size.QuadPart);
    if (size_) {
        HANDLE mapping = CreateFileMappingA(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
        if (mapping) {
            data_ = static_cast<const std::uint8_t*>(MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0));
            CloseHandle(mapping);
        }
        if (!data_) {
            CloseHandle(file);
            errno = EIO;
            system_failure("cannot map", path);
        }
    }
    CloseHandle(file);
}
FileBytes::~FileBytes() {
    if (mapped_ && data_) UnmapViewOfFile(data_);
}
void FileBytes::advise_sequential(bool) const noexcept {}
#else
FileBytes::FileBytes(const std::string& path) : mapped_(true) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
    if (fd < 0) system_failure("cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        system_failure("cannot stat", path);
    }
    if ((st.st_mode & S_IFMT) != S_IFREG) {
        ::close(fd);
        throw std::invalid_argument(quoted(path) + " is not a regular file");
    }
    size_ = std::size_t(st.st_size);
    if (size_) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            system_failure("cannot map", path);
        }
        data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);  // the mapping keeps the file
}
FileBytes::~FileBytes() {
    if (mapped_ && data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}
void FileBytes::advise_sequential(bool sequential) const noexcept {
    if (mapped_ && data_) ::madvise(const_cast<std::uint8_t*>(data_), size_, sequential ? MADV_SEQUENTIAL : MADV_NORMAL);
}
#endif

// -------------------------------------------------------------------------------------- Writer

Writer::Writer(std::string kind) : kind_(std::move(kind)) {
    if (kind_.empty() || kind_.size() > kind_bytes) throw std::invalid_argument("object kind: 1 to 16 characters");
}

void Writer::object(const std::string& prefix, Json description) { objects_.set(prefix, std::move(description)); }

void Writer::add_array(const std::string& name, const char* dtype, std::size_t item,
                       std::vector<std::pair<const void*, std::size_t>> runs, std::vector<std::size_t> shape) {
    if (name.empty() || name.size() > name_bytes || name == "meta")
        throw std::invalid_argument("section name '" + name + "': 1 to 32 characters, not 'meta'");
    if (arrays_.find(name)) throw std::invalid_argument("section '" + name + "' written twice");
    std::size_t count = 1;
    Json extents = Json::array();
    for (std::size_t extent : shape) {
        count *= extent;
        extents.push(Json(static_cast<unsigned long long>(extent)));
    }
    std::size_t bytes = 0;
    for (const auto& run : runs) bytes += run.second;
    if (bytes != count * item) throw std::logic_error("section '" + name + "': its runs do not hold its shape");
    arrays_.set(name, Json::object().set("dtype", dtype).set("shape", std::move(extents)));
    sections_.push_back({name, std::move(runs), bytes});
}

namespace {

// The file being written: a temporary file that becomes `path` on commit, or disappears.
class TemporaryFile {
public:
    explicit TemporaryFile(const std::string& path) : path_(path) {
        const std::size_t slash = path.find_last_of("/\\");
        folder_ = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
        const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
        std::random_device entropy;
        for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
            char suffix[24];
            std::snprintf(suffix, sizeof suffix, "%08x", unsigned(entropy()));
            temp_ = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "." + base + "." +
                    suffix + ".tmp";
#ifdef _WIN32
            fd_ = ::_open(temp_.c_str(), _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY, _S_IREAD | _S_IWRITE);
#else
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);  // the umask applies
#endif
            if (fd_ < 0 && errno != EEXIST) system_failure("cannot create a file in the folder of", path);
        }
        if (fd_ < 0) system_failure("cannot create a temporary file for", path);
#ifndef _WIN32
        ::flock(fd_, LOCK_EX);  // held while writing: tells remove_stale_temporaries this file is live
#endif
    }
    ~TemporaryFile() {
        if (fd_ >= 0) close_fd();
        if (!committed_) std::remove(temp_.c_str());
    }

    void write(const void* data, std::size_t bytes) {
        const char* p = static_cast<const char*>(data);
        while (bytes) {
            const std::size_t step = std::min<std::size_t>(bytes, std::size_t(1) << 30);
#ifdef _WIN32
            const long long n = ::_write(fd_, p, unsigned(step));
#else
            const long long n = ::write(fd_, p, step);
#endif
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) system_failure("cannot write", path_);
            p += n;
            bytes -= std::size_t(n);
        }
    }
    void rewrite_start(const void* data, std::size_t bytes) {
#ifdef _WIN32
        if (::_lseeki64(fd_, 0, SEEK_SET) != 0) system_failure("cannot write", path_);
#else
        if (::lseek(fd_, 0, SEEK_SET) != 0) system_failure("cannot write", path_);
#endif
        write(data, bytes);
    }
    void commit() {
#ifdef _WIN32
        if (::_commit(fd_) != 0) system_failure("cannot flush", path_);
        close_fd();
        if (!MoveFileExA(temp_.c_str(), path_.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
            errno = EACCES;
            system_failure("cannot replace", path_);
        }
        committed_ = true;
#else
        if (::fsync(fd_) != 0) system_failure("cannot flush", path_);
        close_fd();
        if (::rename(temp_.c_str(), path_.c_str()) != 0) system_failure("cannot replace", path_);
        committed_ = true;
        // The rename itself reaches the disk with the folder's entry.
        const int dir = ::open(folder_.c_str(), O_RDONLY | O_CLOEXEC);
        if (dir >= 0) {
            ::fsync(dir);
            ::close(dir);
        }
#endif
    }

private:
    void close_fd() {
#ifdef _WIN32
        ::_close(fd_);
#else
        ::close(fd_);
#endif
        fd_ = -1;
    }
    std::string path_, folder_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Temporary files of earlier saves to `path` whose process died mid-save (".<name>.<8 hex
// digits>.tmp" beside it): removed when no process holds their lock and they have not been
// written for a minute (a file just created may not hold its lock yet).
void remove_stale_temporaries(const std::string& path) {
#ifndef _WIN32
    const std::size_t slash = path.find_last_of('/');
    const std::string folder = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
    const std::string prefix = "." + (slash == std::string::npos ? path : path.substr(slash + 1)) + ".";
    DIR* dir = ::opendir(folder.c_str());
    if (!dir) return;
    const std::time_t now = std::time(nullptr);
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.size() != prefix.size() + 12 || name.compare(0, prefix.size(), prefix) != 0 ||
            name.compare(name.size() - 4, 4, ".tmp") != 0 ||
            name.find_first_not_of("0123456789abcdef", prefix.size()) != name.size() - 4)
            continue;
        const std::string stale = folder + "/" + name;
        const int fd = ::open(stale.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) continue;
        struct stat st;
        if (::fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && now - st.st_mtime > 60 &&
            ::flock(fd, LOCK_EX | LOCK_NB) == 0)
            ::unlink(stale.c_str());
        ::close(fd);
    }
    ::closedir(dir);
#else
    (void)path;
#endif
}

}  // namespace

std::vector<std::uint8_t> Writer::stream(const std::function<void(const void*, std::size_t)>& write) const {
    const std::string meta = Json::object().set("arrays", arrays_).set("objects", objects_).dump();
    std::vector<Section> sections;
    sections.push_back({"meta", {{meta.data(), meta.size()}}, meta.size()});
    sections.insert(sections.end(), sections_.begin(), sections_.end());

    const std::size_t table_end = header_bytes + entry_bytes * sections.size();
    std::vector<std::uint8_t> head(aligned(table_end), 0);
    std::vector<std::uint64_t> offsets;
    std::size_t offset = head.size();
    for (const Section& s : sections) {
        offsets.push_back(offset);
        offset = aligned(offset + s.bytes);
    }

    write(head.data(), head.size());
    static const std::uint8_t zeros[alignment] = {};
    constexpr std::size_t chunk = std::size_t(4) << 20;  // checksummed while still in cache
    for (std::size_t i = 0; i < sections.size(); ++i) {
        const Section& s = sections[i];
        std::uint32_t crc = 0;
        for (const auto& run : s.runs) {
            const auto* p = static_cast<const std::uint8_t*>(run.first);
            for (std::size_t done = 0; done < run.second; done += chunk) {
                const std::size_t n = std::min(chunk, run.second - done);
                crc = crc32c(p + done, n, crc);
                write(p + done, n);
            }
        }
        if (i + 1 < sections.size()) write(zeros, aligned(s.bytes) - s.bytes);  // none at the end:
                                                                              // every truncation shows
        std::uint8_t* entry = head.data() + header_bytes + i * entry_bytes;
        std::memcpy(entry, s.name.data(), s.name.size());
        store<std::uint64_t>(entry + 32, offsets[i]);
        store<std::uint64_t>(entry + 40, s.bytes);
        store<std::uint32_t>(entry + 48, crc);
    }
    std::memcpy(head.data(), magic, 8);
    store<std::uint32_t>(head.data() + 8, format_version);
    store<std::uint32_t>(head.data() + 12, byte_order_mark);
    std::memcpy(head.data() + 16, kind_.data(), kind_.size());
    store<std::uint32_t>(head.data() + 32, std::uint32_t(sections.size()));
    std::uint32_t crc = crc32c(head.data(), 36);
    crc = crc32c(head.data() + header_bytes, table_end - header_bytes, crc);
    store<std::uint32_t>(head.data() + 36, crc);
    return head;
}

void Writer::save(const std::string& path) const {
    if (!is_regular_or_absent(path))
        throw std::invalid_argument(quoted(path) + " exists and is not a regular file: latefold saves to regular files only");
    remove_stale_temporaries(path);
    TemporaryFile file(path);
    const std::vector<std::uint8_t> head = stream([&file](const void* p, std::size_t n) { file.write(p, n); });
    file.rewrite_start(head.data(), head.size());
    file.commit();
}

std::string Writer::to_bytes() const {
    std::string out;
    const std::vector<std::uint8_t> head =
        stream([&out](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); });
    std::memcpy(&out[0], head.data(), head.size());
    return out;
}

// -------------------------------------------------------------------------------------- Reader

Reader::Reader(const std::string& path, const std::string& kind, bool verify)
    : path_(path), where_(quoted(path)), file_(std::make_shared<const FileBytes>(path)) {
    check(kind, verify);
}

Reader::Reader(std::shared_ptr<const FileBytes> bytes, const std::string& kind, bool verify)
    : where_("the data in memory"), file_(std::move(bytes)) {
    check(kind, verify);
}

void Reader::check(const std::string& kind, bool verify) {
    const std::uint8_t* data = file_->data();
    const std::size_t size = file_->size();
    const std::string& where = where_;
    if (size < header_bytes)
        throw std::invalid_argument(where + " is not a latefold file (too short: " + std::to_string(size) + " bytes)");
    if (std::memcmp(data, magic, 8) != 0) throw std::invalid_argument(where + " is not a latefold file (bad magic)");
    if (load_le<std::uint32_t>(data + 12) != byte_order_mark)
        throw std::invalid_argument(where + " was written with another byte order");
    version_ = load_le<std::uint32_t>(data + 8);
    if (version_ < 1 || version_ > format_version)
        throw std::invalid_argument(where + " has file format version " + std::to_string(version_) +
                                    "; this latefold reads versions 1 to " + std::to_string(format_version) +
                                    (version_ > format_version ? " (upgrade latefold)" : ""));
    auto checksum = [this](const void* p, std::size_t n, std::uint32_t crc) {
        return version_ == 1 ? crc32(p, n, crc) : crc32c(p, n, crc);
    };
    const std::uint64_t count = load_le<std::uint32_t>(data + 32);
    const std::uint64_t table_end = header_bytes + entry_bytes * count;
    if (count < 1 || table_end > size) corrupt("section table");
    const std::uint32_t header_crc = checksum(data + header_bytes, table_end - header_bytes, checksum(data, 36, 0));
    if (header_crc != load_le<std::uint32_t>(data + 36)) corrupt("header checksum mismatch");
    const std::string found(reinterpret_cast<const char*>(data + 16),
                            strnlen(reinterpret_cast<const char*>(data + 16), kind_bytes));
    if (found != kind) throw std::invalid_argument(where + " holds a '" + printable(found) + "', not a '" + kind + "'");

    if (verify) file_->advise_sequential(true);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint8_t* entry = data + header_bytes + i * entry_bytes;
        Section s;
        s.name.assign(reinterpret_cast<const char*>(entry), strnlen(reinterpret_cast<const char*>(entry), name_bytes));
        s.offset = load_le<std::uint64_t>(entry + 32);
        s.length = load_le<std::uint64_t>(entry + 40);
        s.crc = load_le<std::uint32_t>(entry + 48);
        if (s.offset % alignment || s.offset < table_end || s.offset > size || s.length > size - s.offset)
            corrupt("section '" + printable(s.name) + "' out of bounds");
        if (find_section(s.name)) corrupt("section '" + printable(s.name) + "' repeated");
        if ((verify || s.name == "meta") && checksum(data + s.offset, s.length, 0) != s.crc)
            corrupt("checksum mismatch in section '" + printable(s.name) + "'");
        sections_.push_back(std::move(s));
    }
    if (verify) file_->advise_sequential(false);

    const Section* meta_section = find_section("meta");
    if (!meta_section) corrupt("no meta section");
    Json meta;
    try {
        meta = Json::parse(reinterpret_cast<const char*>(data + meta_section->offset), meta_section->length);
        if (version_ == 1) {
            adopt_version1(kind, std::move(meta));
        } else {
            objects_ = meta.at("objects");
            arrays_ = meta.at("arrays");
            objects_.members();  // both must be objects
        }
        for (const auto& array : arrays_.members()) {
            array.second.at("dtype").as_string();
            for (const Json& extent : array.second.at("shape").items()) extent.as_uint();
        }
    } catch (const std::invalid_argument& error) {
        corrupt(std::string("meta section: ") + error.what());
    }
}

// Version 1 kept one object per file: {"params": ..., other scalars, "arrays": {name: ...}}, and
// a graph's quantizer as {"quantizer": params} with arrays "quantizer_<name>".
void Reader::adopt_version1(const std::string& kind, Json meta) {
    Json description = Json::object();
    for (const auto& member : meta.members())
        if (member.first != "arrays" && !(kind == "graph" && member.first == "quantizer"))
            description.set(member.first, member.second);
    objects_.set(kind, std::move(description));
    if (kind == "graph" && meta.find("quantizer"))
        objects_.set("graph/pq", Json::object().set("params", meta.at("quantizer")));
    for (const auto& array : meta.at("arrays").members()) {
        const std::string& old = array.first;
        const bool quantizer = kind == "graph" && old.rfind("quantizer_", 0) == 0;
        const std::string name = quantizer ? "graph/pq/" + old.substr(10) : kind + "/" + old;
        arrays_.set(name, array.second);
        renamed_.emplace_back(name, old);
    }
}

const Reader::Section* Reader::find_section(const std::string& name) const {
    std::string stored = name;
    for (const auto& r : renamed_)
        if (r.first == name) stored = r.second;
    for (const Section& s : sections_)
        if (s.name == stored) return &s;
    return nullptr;
}

const Json& Reader::object(const std::string& prefix) const {
    const Json* found = objects_.find(prefix);
    if (!found || found->type() != Json::Type::object) corrupt("no description of '" + prefix + "'");
    return *found;
}

std::vector<std::size_t> Reader::shape(const std::string& name) const {
    const Json* desc = arrays_.find(name);
    if (!desc) corrupt("missing array '" + name + "'");
    std::vector<std::size_t> extents;
    for (const Json& extent : desc->at("shape").items()) extents.push_back(std::size_t(extent.as_uint()));
    return extents;
}

const void* Reader::section(const std::string& name, const char* dtype, std::size_t item,
                            const std::vector<std::size_t>& shape) const {
    const Json* desc = arrays_.find(name);
    if (!desc) corrupt("missing array '" + name + "'");
    if (desc->at("dtype").as_string() != dtype)
        corrupt("array '" + name + "' holds " + desc->at("dtype").as_string() + ", expected " + dtype);
    // The recorded shape may be flat (version 1) or not: the element counts must agree.
    auto product = [this, &name](const std::vector<std::size_t>& extents) {
        std::size_t n = 1;
        for (std::size_t e : extents) {
            if (e && n > std::size_t(-1) / e) corrupt("array '" + name + "' is too large");
            n *= e;
        }
        return n;
    };
    const std::size_t count = product(shape);
    if (product(this->shape(name)) != count) corrupt("array '" + name + "' does not have the expected shape");
    const Section* s = find_section(name);
    if (!s) corrupt("missing section '" + name + "'");
    if (count > std::size_t(-1) / item || s->length != count * item)
        corrupt("array '" + name + "' does not match its section");
    return file_->data() + s->offset;
}

void Reader::corrupt(const std::string& what) const {
    throw std::invalid_argument(where_ + " is corrupt (" + what + ")");
}

}  // namespace io
}  // namespace latefold
