// An array that is either owned (an aligned vector) or borrowed read-only from memory that another
// object keeps alive (a memory-mapped file). Reads never copy. The first mutable access to a
// borrowed buffer copies it into memory of its own (copy on write), so changes to an object
// loaded with mmap=True never reach the file it was mapped from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>

#include "latefold/common.h"

namespace latefold {

template <class T>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(AlignedVector<T> owned) : owned_(std::move(owned)) {}

    /// A read-only view of size elements at data; `keeper` keeps that memory alive.
    static Buffer borrow(const T* data, std::size_t size, std::shared_ptr<const void> keeper) {
        Buffer b;
        b.borrowed_ = data;
        b.borrowed_size_ = size;
        b.keeper_ = std::move(keeper);
        return b;
    }

    bool is_borrowed() const noexcept { return keeper_ != nullptr; }
    std::size_t size() const noexcept { return keeper_ ? borrowed_size_ : owned_.size(); }
    bool empty() const noexcept { return size() == 0; }
    const T* data() const noexcept { return keeper_ ? borrowed_ : owned_.data(); }
    const T* begin() const noexcept { return data(); }
    const T* end() const noexcept { return data() + size(); }
    const T& operator[](std::size_t i) const noexcept { return data()[i]; }

    /// The elements as a vector of this buffer's own, copied first if borrowed.
    AlignedVector<T>& own() {
        if (keeper_) {
            AlignedVector<T> copy(borrowed_, borrowed_ + borrowed_size_);
            owned_.swap(copy);
            keeper_.reset();
            borrowed_ = nullptr;
            borrowed_size_ = 0;
        }
        return owned_;
    }
    T* mutable_data() { return own().data(); }
    T& at_mut(std::size_t i) { return own()[i]; }

private:
    AlignedVector<T> owned_;
    const T* borrowed_ = nullptr;
    std::size_t borrowed_size_ = 0;
    std::shared_ptr<const void> keeper_;
};

}  // namespace latefold
