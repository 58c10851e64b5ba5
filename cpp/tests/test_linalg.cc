// C++ checks of the float64 linear algebra behind the PQ rotations (cpp/src/linalg.h) against
// matrices with known factors: QR, SVD and polar factor, full rank and rank-deficient.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "linalg.h"

namespace la = latefold::linalg;
using Matrix = std::vector<double>;

namespace {

using latefold_test::check;

Matrix product(const Matrix& a, const Matrix& b, std::size_t n, bool transpose_a = false, bool transpose_b = false) {
    Matrix c(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t k = 0; k < n; ++k)
                c[i * n + j] += (transpose_a ? a[k * n + i] : a[i * n + k]) * (transpose_b ? b[j * n + k] : b[k * n + j]);
    return c;
}

double distance(const Matrix& a, const Matrix& b) {
    double d = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
}

Matrix identity(std::size_t n) {
    Matrix e(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) e[i * n + i] = 1.0;
    return e;
}

double orthogonality(const Matrix& q, std::size_t n) { return distance(product(q, q, n, false, true), identity(n)); }

// A known orthogonal matrix: a product of plane rotations by angles 0.3 + 0.7 i j.
Matrix rotations(std::size_t n, double phase) {
    Matrix q = identity(n);
    for (std::size_t i = 0; i + 1 < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j) {
            const double c = std::cos(phase + 0.7 * double(i * n + j)), s = std::sin(phase + 0.7 * double(i * n + j));
            for (std::size_t r = 0; r < n; ++r) {
                const double x = q[r * n + i], y = q[r * n + j];
                q[r * n + i] = c * x - s * y, q[r * n + j] = s * x + c * y;
            }
        }
    return q;
}

// U diag(s) V^T from known orthogonal U, V.
Matrix with_singular_values(const std::vector<double>& s, std::size_t n) {
    Matrix u = rotations(n, 0.3), v = rotations(n, 1.1);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < n; ++i) u[r * n + i] *= s[i];
    return product(u, v, n, false, true);
}

void qr_of_known_matrices() {
    const Matrix a = {2.0, -1.0, 0.0, 4.0, 3.0, 1.0, -2.0, 5.0, 7.0};
    Matrix q(9), diagonal(3);
    la::householder_qr(a.data(), 3, q.data(), diagonal.data());
    check(orthogonality(q, 3) < 1e-15, "QR: Q orthogonal");
    const Matrix r = product(q, a, 3, true);  // Q^T A is R: upper triangular, diagonal as returned
    check(std::fabs(r[3]) < 1e-14 && std::fabs(r[6]) < 1e-14 && std::fabs(r[7]) < 1e-14, "QR: Q^T A upper triangular");
    for (std::size_t i = 0; i < 3; ++i) check(std::fabs(r[i * 4] - diagonal[i]) < 1e-14, "QR: diagonal of R");
    check(std::fabs(std::fabs(diagonal[0]) - std::sqrt(24.0)) < 1e-14, "QR: |R_00| = norm of the first column");
    // A singular matrix (zero column, repeated column): still an orthogonal Q.
    const Matrix singular = {1.0, 0.0, 1.0, 2.0, 0.0, 2.0, 3.0, 0.0, 3.0};
    la::householder_qr(singular.data(), 3, q.data(), diagonal.data());
    check(orthogonality(q, 3) < 1e-15 && diagonal[1] == 0.0, "QR of a singular matrix");
    const std::size_t n = 40;
    const Matrix b = with_singular_values(std::vector<double>(n, 2.0), n);
    Matrix qb(n * n), db(n);
    la::householder_qr(b.data(), n, qb.data(), db.data());
    check(orthogonality(qb, n) < 1e-14, "QR: Q orthogonal (n = 40)");
    check(distance(product(qb, product(qb, b, n, true), n), b) < 1e-13, "QR: Q Q^T A = A (n = 40)");
}

void svd_and_polar(const std::vector<double>& s, const std::string& name, std::size_t threads) {
    const std::size_t n = s.size();
    const Matrix a = with_singular_values(s, n);
    Matrix ut(n * n), sigma(n), vt(n * n);
    la::jacobi_svd(a.data(), n, ut.data(), sigma.data(), vt.data(), threads);
    std::vector<double> sorted = s;
    std::sort(sorted.rbegin(), sorted.rend());
    const double top = std::max(sorted[0], 1.0);
    double error = 0.0;
    for (std::size_t i = 0; i < n; ++i) error = std::max(error, std::fabs(sigma[i] - sorted[i]));
    check(error < 1e-13 * top, name + ": singular values");
    check(orthogonality(ut, n) < 1e-13 && orthogonality(vt, n) < 1e-13, name + ": U and V orthogonal");
    Matrix us = ut;  // rows sigma_i u_i^T
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < n; ++k) us[i * n + k] *= sigma[i];
    check(distance(product(us, vt, n, true), a) < 1e-13 * top, name + ": U diag(s) V^T = A");
    // The polar factor of U0 diag(s) V0^T is U0 V0^T wherever it is unique (all s > 0).
    const Matrix polar = la::orthogonal_polar(a.data(), n, threads);
    check(orthogonality(polar, n) < 1e-13, name + ": polar factor orthogonal");
    double trace = 0.0, total = 0.0;  // Procrustes: trace(R^T A) reaches the sum of the singular values
    for (std::size_t i = 0; i < n * n; ++i) trace += polar[i] * a[i];
    for (double x : s) total += x;
    check(std::fabs(trace - total) < 1e-12 * top * double(n), name + ": trace(R^T A) = sum of singular values");
    if (sorted.back() > 0.0)
        check(distance(polar, product(rotations(n, 0.3), rotations(n, 1.1), n, false, true)) < 1e-12 * top / sorted.back(),
              name + ": polar factor = U V^T");
}

}  // namespace

int main() {
    qr_of_known_matrices();
    svd_and_polar({3.0, 2.0, 1.0}, "3 x 3", 1);
    svd_and_polar({5.0}, "1 x 1", 1);
    std::vector<double> graded(60), deficient(60, 0.0), clustered(300, 1.0);
    for (std::size_t i = 0; i < graded.size(); ++i) graded[i] = std::pow(10.0, -double(i % 12));
    for (std::size_t i = 0; i < 20; ++i) deficient[i * 3] = 1.0 + double(i);
    for (std::size_t i = 0; i < clustered.size(); i += 7) clustered[i] = 1.0 + 1e-9 * double(i);
    svd_and_polar(graded, "graded 1 .. 1e-11", 1);
    svd_and_polar(deficient, "rank 20 of 60", 1);
    svd_and_polar(std::vector<double>(8, 0.0), "zero matrix", 1);
    svd_and_polar(clustered, "clustered (n = 300, 4 threads)", 4);
    // Threads take the rotations of one step: the same bits for any count.
    std::vector<double> spread(300);
    for (std::size_t i = 0; i < spread.size(); ++i) spread[i] = 1.0 + double((i * 37) % 101);
    const Matrix a = with_singular_values(spread, 300);
    check(la::orthogonal_polar(a.data(), 300, 1) == la::orthogonal_polar(a.data(), 300, 3), "polar: 1 and 3 threads agree");
    return latefold_test::summary();
}
