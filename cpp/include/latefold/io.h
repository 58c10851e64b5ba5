// latefold's file format: one container for every object, versioned, checksummed, 64-byte
// aligned, written atomically and readable in place through a memory mapping. The same bytes in
// memory (Writer::to_bytes, Reader over FileBytes) are how objects are pickled.
//
// Layout (integers in the writer's byte order, which must be the reader's: little-endian on
// every platform latefold builds for):
//
//   offset 0    header, 64 bytes
//                 magic        8 bytes  "LATEFOLD"
//                 version      u32      format_version
//                 byte_order   u32      0x01020304
//                 kind         16 bytes ASCII, zero-padded: the object the file holds ("graph", ...)
//                 sections     u32      number of sections
//                 header_crc   u32      CRC of bytes 0..35 followed by the section table
//                 reserved     24 bytes zero
//   offset 64   section table, 64 bytes per section
//                 name         32 bytes ASCII, zero-padded ("meta", "graph/edges", "graph/pq/centroids")
//                 offset       u64      a multiple of 64, so arrays can be used in place
//                 length       u64      bytes
//                 crc          u32      CRC of the section's bytes
//                 reserved     12 bytes zero
//   then        the sections, each starting on a 64-byte boundary, zero padding between them
//
// The section "meta" is UTF-8 JSON: {"objects": {prefix: description}, "arrays": {name:
// {"dtype": numpy dtype string, "shape": [...]}}}. An object writes its description (parameters
// and small scalars) under its prefix and its arrays as sections "<prefix>/<name>"; a composite
// writes its parts under longer prefixes ("graph/pq"), so one file holds them all and numpy alone
// can read any array.
//
// Versions: 2 uses CRC-32C (Castagnoli). 1 (latefold 0.1.0) used the zlib CRC-32, kept one JSON
// object for the file's single object ({"params": ..., "arrays": {...}, ...}) and named arrays
// without prefixes; Reader presents a version-1 file in version 2's terms (see io.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "latefold/buffer.h"
#include "latefold/json.h"

namespace latefold {
namespace io {

constexpr std::uint32_t format_version = 2;

/// CRC-32C (Castagnoli, reflected 0x82F63B78), continuing from `crc` (0 to start). Uses the
/// SSE4.2 / ARMv8 CRC instructions where the CPU has them.
std::uint32_t crc32c(const void* data, std::size_t bytes, std::uint32_t crc = 0) noexcept;
/// CRC-32 as zlib computes it (reflected 0xEDB88320), for version-1 files.
std::uint32_t crc32(const void* data, std::size_t bytes, std::uint32_t crc = 0) noexcept;

/// numpy's name of an element type ("<f4", "|u1", ...).
template <class T> const char* dtype_string() noexcept;
template <> const char* dtype_string<std::uint8_t>() noexcept;
template <> const char* dtype_string<std::uint16_t>() noexcept;
template <> const char* dtype_string<std::uint32_t>() noexcept;
template <> const char* dtype_string<std::int64_t>() noexcept;
template <> const char* dtype_string<float>() noexcept;
template <> const char* dtype_string<double>() noexcept;

/// The bytes of a file, read-only: a whole regular file mapped (private: writes elsewhere never
/// show through, and nothing here writes), or a copy of its own in memory (a file image received
/// as bytes, e.g. from pickle), aligned like a mapping so that arrays can be used in place.
/// Mapping: std::invalid_argument for what is not a regular file; std::system_error (an OSError)
/// when it cannot be opened or mapped. A mapped file must not be truncated while mapped (reading
/// a page past the new end would raise SIGBUS).
class FileBytes {
public:
    /// Maps the file at `path`.
    explicit FileBytes(const std::string& path);
    /// Copies `size` bytes at `data`.
    FileBytes(const void* data, std::size_t size);
    ~FileBytes();
    FileBytes(const FileBytes&) = delete;
    FileBytes& operator=(const FileBytes&) = delete;
    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool mapped() const noexcept { return mapped_; }
    /// Tells the kernel how a mapping will be read (sequentially while verifying, at random
    /// while searching); nothing for bytes in memory.
    void advise_sequential(bool sequential) const noexcept;

private:
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    bool mapped_ = false;
    AlignedVector<std::uint8_t> owned_;
};

/// Collects what an object's write() describes, then writes it in one pass: arrays are streamed
/// from the objects' own buffers (no copies), so they must stay unchanged until save() (or
/// to_bytes()) returns.
class Writer {
public:
    explicit Writer(std::string kind);

    /// The description of the object at `prefix` (parameters, small scalars).
    void object(const std::string& prefix, Json description);
    /// An array section named `name` holding prod(shape) elements at data.
    template <class T>
    void array(const std::string& name, const T* data, std::vector<std::size_t> shape) {
        std::size_t count = 1;
        for (std::size_t extent : shape) count *= extent;
        add_array(name, dtype_string<T>(), sizeof(T), {{data, count * sizeof(T)}}, std::move(shape));
    }
    /// The same from runs of (data, elements) that follow one another (an array kept in parts).
    template <class T>
    void array(const std::string& name, const std::vector<std::pair<const T*, std::size_t>>& runs,
               std::vector<std::size_t> shape) {
        std::vector<std::pair<const void*, std::size_t>> bytes;
        for (const auto& run : runs) bytes.emplace_back(run.first, run.second * sizeof(T));
        add_array(name, dtype_string<T>(), sizeof(T), std::move(bytes), std::move(shape));
    }

    /// The same for an array made for the file, which the writer keeps.
    template <class T>
    void array(const std::string& name, AlignedVector<T> made, std::vector<std::size_t> shape) {
        auto kept = std::make_shared<const AlignedVector<T>>(std::move(made));
        array(name, kept->data(), std::move(shape));
        made_.push_back(std::move(kept));
    }

    /// Writes the file atomically: a temporary file in the same folder (".<name>.<random>.tmp",
    /// locked while written), flushed and fsynced, renamed over `path`, then the folder fsynced.
    /// A crash leaves either the old file or the new one under `path`; a temporary file left by
    /// a process killed mid-save is removed by a later save to the same path once it is a minute
    /// old and unlocked. The file's mode follows the umask. Refuses a
    /// `path` that exists and is not a regular file.
    void save(const std::string& path) const;
    /// The bytes save() would write, in memory.
    std::string to_bytes() const;

private:
    struct Section {
        std::string name;
        std::vector<std::pair<const void*, std::size_t>> runs;  // (data, bytes), in order
        std::size_t bytes;
    };
    /// runs: (data, bytes), holding the shape's elements together.
    void add_array(const std::string& name, const char* dtype, std::size_t item,
                   std::vector<std::pair<const void*, std::size_t>> runs, std::vector<std::size_t> shape);
    /// Lays out the file for save() and to_bytes() alike: passes its bytes in order to `write`,
    /// with zeros in place of the header and table, and returns the header and table, to be
    /// written over the start once the sections' checksums are known.
    std::vector<std::uint8_t> stream(const std::function<void(const void*, std::size_t)>& write) const;
    std::string kind_;
    Json objects_ = Json::object();
    Json arrays_ = Json::object();
    std::vector<Section> sections_;
    std::vector<std::shared_ptr<const void>> made_;  // arrays made for the file
};

/// Opens a file written by Writer (or by latefold 0.1.0) and checks it before anything is read:
/// magic, version, byte order, kind, bounds, the header's checksum and, with verify, every
/// section's. Every problem is a std::invalid_argument naming the file and what is wrong.
class Reader {
public:
    /// verify = false skips the checksums of the array sections (the header, table and meta are
    /// always checked): a load then reads only what it uses, which for a mapped file may be
    /// little of it. Verifying streams the whole file once (CRC-32C at several GB/s: about the
    /// cost of reading it from the page cache, plus the disk read when it is not cached).
    Reader(const std::string& path, const std::string& kind, bool verify = true);
    /// The same checks over a file's bytes already in memory (what Writer::to_bytes gives);
    /// messages call them "the data in memory".
    Reader(std::shared_ptr<const FileBytes> bytes, const std::string& kind, bool verify = true);

    const std::string& path() const noexcept { return path_; }  ///< empty for bytes in memory
    std::uint32_t version() const noexcept { return version_; }
    const std::shared_ptr<const FileBytes>& file() const noexcept { return file_; }

    bool has_object(const std::string& prefix) const { return objects_.find(prefix) != nullptr; }
    /// The description written under `prefix`.
    const Json& object(const std::string& prefix) const;
    bool has_array(const std::string& name) const { return arrays_.find(name) != nullptr; }
    /// The shape recorded for an array.
    std::vector<std::size_t> shape(const std::string& name) const;

    /// The array `name` of element type T with prod(shape) elements (the recorded shape must
    /// match, each given extent checked): borrowed from the mapping, or a copy of its own.
    template <class T>
    Buffer<T> array(const std::string& name, const std::vector<std::size_t>& shape, bool borrow) const {
        const void* data = section(name, dtype_string<T>(), sizeof(T), shape);
        std::size_t count = 1;
        for (std::size_t extent : shape) count *= extent;
        const T* first = static_cast<const T*>(data);
        if (borrow) return Buffer<T>::borrow(first, count, file_);
        return Buffer<T>(AlignedVector<T>(first, first + count));
    }

    /// Throws std::invalid_argument "<path> is corrupt (what)".
    [[noreturn]] void corrupt(const std::string& what) const;

private:
    struct Section {
        std::string name;
        std::uint64_t offset, length;
        std::uint32_t crc;
    };
    const Section* find_section(const std::string& name) const;
    const void* section(const std::string& name, const char* dtype, std::size_t item,
                        const std::vector<std::size_t>& shape) const;
    void check(const std::string& kind, bool verify);
    void adopt_version1(const std::string& kind, Json meta);

    std::string path_;
    std::string where_;  // the file as messages name it
    std::uint32_t version_ = 0;
    std::shared_ptr<const FileBytes> file_;
    std::vector<Section> sections_;
    Json objects_ = Json::object();
    Json arrays_ = Json::object();
    std::vector<std::pair<std::string, std::string>> renamed_;  // version 1: (new name, section)
};

}  // namespace io
}  // namespace latefold
