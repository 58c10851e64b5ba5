#include "linalg.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>

#include "latefold/thread_pool.h"

namespace latefold {
namespace linalg {
namespace {

constexpr double eps = std::numeric_limits<double>::epsilon();

// Four interleaved partial sums: independent adds (and SIMD lanes) in a fixed order.
double dot(const double* a, const double* b, std::size_t n) noexcept {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (std::size_t l = 0; l < 4; ++l) s[l] += a[i + l] * b[i + l];
    for (; i < n; ++i) s[i & 3] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void axpy(double alpha, const double* x, double* y, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// (x, y) <- (c x - s y, s x + c y)
void rotate(double* x, double* y, double c, double s, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const double a = x[i], b = y[i];
        x[i] = c * a - s * b;
        y[i] = s * a + c * b;
    }
}

// q = H_0 H_1 ... H_{count-1} with H_k = I - beta[k] v v^T acting on indices k + shift .. n-1,
// v stored at rows[k * n + k + shift]: applied to the identity from the last reflector, each
// touching only the rows and columns it acts on (Golub & Van Loan Section 5.1.6).
void accumulate_reflectors(const double* rows, const double* beta, std::size_t count, std::size_t shift,
                           std::size_t n, double* q) {
    std::fill(q, q + n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
    std::vector<double> w(n);
    for (std::size_t k = count; k-- > 0;) {
        if (beta[k] == 0.0) continue;
        const std::size_t first = k + shift, length = n - first;
        const double* v = rows + k * n + first;
        std::fill(w.begin(), w.begin() + length, 0.0);
        for (std::size_t i = 0; i < length; ++i) axpy(v[i], q + (first + i) * n + first, w.data(), length);  // v^T Q
        for (std::size_t i = 0; i < length; ++i) axpy(-beta[k] * v[i], w.data(), q + (first + i) * n + first, length);
    }
}

// The Householder vector of x (length n, overwritten by v): H = I - beta v v^T maps x to
// alpha e_1 with alpha = -sign(x_1) ||x|| (no cancellation in v_1 = x_1 - alpha) and
// v^T v = 2 ||x|| (||x|| + |x_1|). Returns alpha and sets beta (0 when x = 0: H = I).
double householder_vector(double* x, std::size_t n, double& beta) {
    const double norm = std::sqrt(dot(x, x, n));
    if (norm == 0.0) {
        beta = 0.0;
        return 0.0;
    }
    const double alpha = x[0] >= 0.0 ? -norm : norm;
    beta = 1.0 / (norm * (norm + std::fabs(x[0])));
    x[0] -= alpha;
    return alpha;
}

std::vector<double> transpose(const double* a, std::size_t n) {
    std::vector<double> t(n * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) t[j * n + i] = a[i * n + j];
    return t;
}

// a b, row by row (row i = sum_k a[i][k] b[k]), b's rows in blocks that stay in cache; each
// row's sum in the same order for any thread count.
std::vector<double> multiply(const double* a, const double* b, std::size_t n, std::size_t threads) {
    std::vector<double> c(n * n, 0.0);
    constexpr std::size_t block = 32, rows_per_task = 16;
    parallel_for((n + rows_per_task - 1) / rows_per_task, n >= 256 ? threads : 1, [&](std::size_t task, std::size_t) {
        const std::size_t last = std::min(n, (task + 1) * rows_per_task);
        for (std::size_t k0 = 0; k0 < n; k0 += block)
            for (std::size_t i = task * rows_per_task; i < last; ++i)
                for (std::size_t k = k0; k < std::min(n, k0 + block); ++k) axpy(a[i * n + k], b + k * n, c.data() + i * n, n);
    });
    return c;
}

// The eigenvectors of the symmetric matrix s (overwritten), as the rows of the result: Householder
// tridiagonalisation (Golub & Van Loan Algorithm 8.3.1), then implicit symmetric QR steps with
// Wilkinson shifts (Algorithm 8.3.2) until every off-diagonal entry is negligible (Section 8.3.5).
std::vector<double> symmetric_eigenvectors(std::vector<double>& s, std::size_t n) {
    std::vector<double> diagonal(n), off(n, 0.0), beta(n, 0.0), p(n), q(n * n);
    for (std::size_t k = 0; k + 2 < n; ++k) {
        double* v = s.data() + k * n + k + 1;  // row k right of the diagonal = column k below it
        const std::size_t length = n - k - 1;
        off[k] = householder_vector(v, length, beta[k]);
        if (beta[k] == 0.0) continue;
        // The trailing block B becomes H B H = B - v w^T - w v^T, p = beta B v, w = p - (beta p^T v / 2) v.
        double* block = s.data() + (k + 1) * n + k + 1;
        for (std::size_t i = 0; i < length; ++i) p[i] = beta[k] * dot(block + i * n, v, length);
        const double half = 0.5 * beta[k] * dot(p.data(), v, length);
        for (std::size_t i = 0; i < length; ++i) p[i] -= half * v[i];
        for (std::size_t i = 0; i < length; ++i) {
            axpy(-v[i], p.data(), block + i * n, length);
            axpy(-p[i], v, block + i * n, length);
        }
    }
    for (std::size_t k = 0; k < n; ++k) diagonal[k] = s[k * n + k];
    if (n >= 2) off[n - 2] = s[(n - 2) * n + n - 1];
    accumulate_reflectors(s.data(), beta.data(), n >= 2 ? n - 2 : 0, 1, n, q.data());
    std::vector<double> vectors = transpose(q.data(), n);  // rows: the columns of Q, then Q Z

    for (std::size_t high = n - 1, steps = 0; high > 0 && n >= 2;) {
        for (std::size_t k = 0; k < high; ++k)
            if (std::fabs(off[k]) <= eps * (std::fabs(diagonal[k]) + std::fabs(diagonal[k + 1]))) off[k] = 0.0;
        if (off[high - 1] == 0.0) {
            --high;
            continue;
        }
        if (++steps > 30 * n) break;  // never seen: the remaining off-diagonal is then left for Jacobi
        std::size_t low = high - 1;
        while (low > 0 && off[low - 1] != 0.0) --low;
        const double delta = 0.5 * (diagonal[high - 1] - diagonal[high]), e = off[high - 1];
        const double shift = diagonal[high] - e * e / (delta + (delta >= 0.0 ? 1.0 : -1.0) * std::sqrt(delta * delta + e * e));
        double x = diagonal[low] - shift, z = off[low];
        for (std::size_t k = low; k < high; ++k) {
            // G^T (x, z) = (r, 0) on coordinates k, k+1; T <- G^T T G chases the bulge down.
            const double r = std::sqrt(x * x + z * z), c = r > 0.0 ? x / r : 1.0, sn = r > 0.0 ? z / r : 0.0;
            if (k > low) off[k - 1] = r;
            const double a0 = diagonal[k], a1 = diagonal[k + 1], b = off[k];
            diagonal[k] = c * c * a0 + 2.0 * c * sn * b + sn * sn * a1;
            diagonal[k + 1] = sn * sn * a0 - 2.0 * c * sn * b + c * c * a1;
            off[k] = c * sn * (a1 - a0) + (c * c - sn * sn) * b;
            if (k + 1 < high) {
                z = sn * off[k + 1];  // the new bulge at (k, k + 2)
                off[k + 1] *= c;
                x = off[k];
            }
            rotate(vectors.data() + k * n, vectors.data() + (k + 1) * n, c, -sn, n);
        }
    }
    return vectors;
}

// Appends unit vectors to the orthonormal rows 0..rank-1 of `basis` (n x n) until it has n rows:
// each time the coordinate vector e_k farthest from the span so far (the largest 1 - sum of the
// squared k-th entries), orthogonalised by classical Gram-Schmidt twice ("twice is enough":
// Giraud, Langou, Rozloznik, Comput. Math. Appl. 50, 2005).
void complete_basis(double* basis, std::size_t rank, std::size_t n) {
    std::vector<double> outside(n, 1.0), coefficient(rank ? n : 0);
    for (std::size_t i = 0; i < rank; ++i)
        for (std::size_t k = 0; k < n; ++k) outside[k] -= basis[i * n + k] * basis[i * n + k];
    for (std::size_t r = rank; r < n; ++r) {
        const std::size_t k = std::size_t(std::max_element(outside.begin(), outside.end()) - outside.begin());
        double* u = basis + r * n;
        std::fill(u, u + n, 0.0);
        u[k] = 1.0;
        for (int pass = 0; pass < 2; ++pass) {
            coefficient.resize(r);
            for (std::size_t i = 0; i < r; ++i) coefficient[i] = dot(basis + i * n, u, n);
            for (std::size_t i = 0; i < r; ++i) axpy(-coefficient[i], basis + i * n, u, n);
        }
        const double norm = std::sqrt(dot(u, u, n));
        for (std::size_t j = 0; j < n; ++j) u[j] /= norm;
        for (std::size_t j = 0; j < n; ++j) outside[j] -= u[j] * u[j];
        outside[k] = -1.0;  // rounding must not pick it again
    }
}

}  // namespace

void householder_qr(const double* a, std::size_t n, double* q, double* r_diagonal) {
    // Columns of a as rows of `work`, so that every step reads and writes contiguous rows.
    std::vector<double> work = transpose(a, n), beta(n);
    for (std::size_t k = 0; k < n; ++k) {
        double* v = work.data() + k * n + k;  // column k from the diagonal down, becomes v
        const std::size_t length = n - k;
        r_diagonal[k] = householder_vector(v, length, beta[k]);
        if (beta[k] == 0.0) continue;
        for (std::size_t j = k + 1; j < n; ++j) {
            double* column = work.data() + j * n + k;
            axpy(-beta[k] * dot(v, column, length), v, column, length);
        }
    }
    accumulate_reflectors(work.data(), beta.data(), n, 0, n, q);
}

void jacobi_svd(const double* a, std::size_t n, double* ut, double* s, double* vt, std::size_t threads) {
    if (n == 0) return;
    // a scaled to the largest entry 1 (no overflow in squared norms).
    double largest = 0.0;
    for (std::size_t i = 0; i < n * n; ++i) largest = std::max(largest, std::fabs(a[i]));
    const double scale = largest > 0.0 ? 1.0 / largest : 1.0;
    std::vector<double> scaled(a, a + n * n);
    for (double& x : scaled) x *= scale;
    // Preconditioning: W, the eigenvectors of a^T a, nearly diagonalises it, so the columns of
    // a W are nearly orthogonal and the rotations below converge in two or three sweeps instead
    // of about 15 from a itself (measured at n = 512 and 1024); they also restore the accuracy
    // that forming a^T a loses for small singular values. The rows of `work` are the columns of
    // a W, those of v the columns of W (times the rotations to come).
    const std::vector<double> at = transpose(scaled.data(), n);
    std::vector<double> gram = multiply(at.data(), scaled.data(), n, threads);
    std::vector<double> v = symmetric_eigenvectors(gram, n);
    std::vector<double> work = multiply(v.data(), at.data(), n, threads), norm(n);
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) total += dot(work.data() + i * n, work.data() + i * n, n);
    // Columns at or below this squared norm are numerically zero: rotating them against each
    // other would chase rounding noise.
    const double zero = total * (double(n) * eps) * (double(n) * eps);
    const double tolerance = double(n) * eps;  // |x.y| <= tol ||x|| ||y||: orthogonal enough

    // Round-robin ("chess tournament") order: position 0 stays, the others move one place per
    // step; after n' - 1 steps (n' = n rounded up to even, slot n a dummy) every pair met once.
    const std::size_t slots = n + (n & 1);
    std::vector<std::size_t> position(slots);
    std::iota(position.begin(), position.end(), std::size_t(0));
    const std::size_t pairs = slots / 2;
    threads = n >= 256 ? threads : 1;  // below that a step is shorter than waking the pool
    for (int sweep = 0; sweep < 64; ++sweep) {
        // Exact squared norms at each sweep; within it they follow the rotations' updates.
        for (std::size_t i = 0; i < n; ++i) norm[i] = dot(work.data() + i * n, work.data() + i * n, n);
        std::atomic<bool> rotated{false};
        for (std::size_t step = 0; step + 1 < slots; ++step) {
            parallel_for(pairs, threads, [&](std::size_t p, std::size_t) {
                std::size_t i = position[p], j = position[slots - 1 - p];
                if (i >= n || j >= n) return;
                if (i > j) std::swap(i, j);
                const double alpha = norm[i], beta = norm[j];
                if (alpha <= zero || beta <= zero) return;
                double* x = work.data() + i * n;
                double* y = work.data() + j * n;
                const double gamma = dot(x, y, n);
                if (std::fabs(gamma) <= tolerance * std::sqrt(alpha * beta)) return;
                // The rotation that makes x and y orthogonal, t = tan of its angle the smaller
                // root of t^2 + 2 zeta t - 1 = 0 (Golub & Van Loan Algorithm 8.5.1, sym.schur2).
                const double zeta = (beta - alpha) / (2.0 * gamma);
                const double t = (zeta >= 0.0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
                const double c = 1.0 / std::sqrt(1.0 + t * t), sn = c * t;
                rotate(x, y, c, sn, n);
                rotate(v.data() + i * n, v.data() + j * n, c, sn, n);
                norm[i] = alpha - t * gamma;
                norm[j] = beta + t * gamma;
                rotated.store(true, std::memory_order_relaxed);
            });
            std::rotate(position.begin() + 1, position.end() - 1, position.end());
        }
        if (!rotated.load()) break;
    }

    // The rows are now sigma_i u_i^T, and v's rows v_i^T; sort by decreasing sigma.
    for (std::size_t i = 0; i < n; ++i) norm[i] = dot(work.data() + i * n, work.data() + i * n, n);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return norm[x] > norm[y]; });
    std::size_t rank = 0;
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = order[r];
        const double sigma = std::sqrt(norm[i]);
        s[r] = norm[i] > zero ? sigma / scale : 0.0;
        std::copy(v.data() + i * n, v.data() + (i + 1) * n, vt + r * n);
        if (norm[i] > zero) {
            for (std::size_t k = 0; k < n; ++k) ut[r * n + k] = work[i * n + k] / sigma;
            ++rank;
        }
    }
    complete_basis(ut, rank, n);
}

std::vector<double> orthogonal_polar(const double* a, std::size_t n, std::size_t threads) {
    std::vector<double> ut(n * n), s(n), vt(n * n);
    jacobi_svd(a, n, ut.data(), s.data(), vt.data(), threads);
    const std::vector<double> u = transpose(ut.data(), n);
    return multiply(u.data(), vt.data(), n, threads);
}

}  // namespace linalg
}  // namespace latefold
