// Private: small dense float64 linear algebra for the rotations of product quantization.
//
// Square n x n matrices, row-major. Every sum is taken in an order fixed by n alone (never by the
// thread count), and only +, -, *, / and sqrt are used: with IEEE-754 doubles and no contraction
// into fused multiply-adds (the core is built with -ffp-contract=off) the results are the same
// bits on every platform.
#pragma once

#include <cstddef>
#include <vector>

namespace latefold {
namespace linalg {

/// Householder QR, a = Q R (Golub & Van Loan, "Matrix Computations", 4th ed., 2013, Algorithm
/// 5.2.1 with the reflectors of Section 5.1.2, Q accumulated backwards as in Section 5.1.6).
/// Writes Q to q (n x n) and the diagonal of R to r_diagonal (n); R's diagonal entries have the
/// sign opposite to the pivot column's first entry (the stable choice), so not all positive.
void householder_qr(const double* a, std::size_t n, double* q, double* r_diagonal);

/// The singular value decomposition a = U diag(s) V^T by one-sided Jacobi rotations (Hestenes
/// 1958; Demmel & Veselic, "Jacobi's method is more accurate than QR", SIAM J. Matrix Anal. Appl.
/// 13(4), 1992; Golub & Van Loan Section 8.6.4) applied to a W, W the eigenvectors of a^T a from
/// tridiagonal QR (Golub & Van Loan Section 8.3): two or three sweeps then suffice. Pairs are
/// visited in round-robin order, so the n/2 rotations of a step are independent and run on
/// `threads` threads (same result for any count). Measured at n = 512 / 1024, one thread:
/// 0.17 / 1.45 s (numpy's LAPACK SVD: 0.15 / 0.86 s). U and V are orthogonal: the columns of U
/// for singular values below n * eps * ||a||_F (numerically zero) complete the others to a basis. Writes U^T to ut (row i = column i of U),
/// s in decreasing order, and V^T to vt.
void jacobi_svd(const double* a, std::size_t n, double* ut, double* s, double* vt, std::size_t threads);

/// The orthogonal polar factor of a: U V^T from a = U diag(s) V^T, the orthogonal matrix nearest
/// to a (and the R maximising trace(R^T a): the orthogonal Procrustes solution, Golub & Van
/// Loan Section 6.4.1). Defined for any a, rank-deficient included (then one of many).
std::vector<double> orthogonal_polar(const double* a, std::size_t n, std::size_t threads);

}  // namespace linalg
}  // namespace latefold
