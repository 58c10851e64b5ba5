// The C++ tests' one assertion: counts checks and failures, prints what failed, and main()
// ends with the line "N passed, M failed" that test runners read.
#pragma once

#include <cstdio>
#include <string>

namespace latefold_test {

inline int checks = 0, failures = 0;

inline void check(bool ok, const std::string& what) {
    ++checks;
    if (!ok) {
        ++failures;
        std::printf("FAILED: %s\n", what.c_str());
    }
}

/// Prints the summary line; the process's exit status.
inline int summary() {
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}

}  // namespace latefold_test
