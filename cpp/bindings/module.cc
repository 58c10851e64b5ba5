// The compiled module latefold._core: registration only. Standard exceptions from the core map
// to Python as pybind11 does by default: std::invalid_argument / std::length_error -> ValueError,
// std::bad_alloc -> MemoryError.
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "arrays.h"
#include "latefold/fault.h"
#include "latefold/interrupt.h"
#include "latefold/simd.h"
#include "latefold/thread_pool.h"

namespace latefold {
namespace bindings {
void bind_multivectors(py::module_& m);
void bind_ragged_items(py::module_& m);
void bind_maxsim(py::module_& m);
void bind_fde(py::module_& m);
void bind_pq(py::module_& m);
void bind_graph(py::module_& m);
void bind_filter(py::module_& m);
void bind_index(py::module_& m);
void bind_cuda(py::module_& m);
}  // namespace bindings
}  // namespace latefold

PYBIND11_MODULE(_core, m) {
    namespace lf = latefold;
    m.doc() = "latefold compiled core";
    // Long calls stop on Ctrl-C: between tasks, the calling thread looks for a pending signal.
    lf::set_interrupt_check([] {
        const PyGILState_STATE state = PyGILState_Ensure();
        const bool stop = PyErr_CheckSignals() != 0;  // leaves KeyboardInterrupt set
        PyGILState_Release(state);
        return stop;
    });
    // File errors carry their errno: OSError picks the subclass (FileNotFoundError, ...).
    pybind11::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const lf::Interrupted&) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        } catch (const std::system_error& e) {
            PyErr_SetObject(PyExc_OSError, pybind11::make_tuple(e.code().value(), e.what()).ptr());
        }
    });
    auto names = [](const std::vector<lf::Isa>& isas) {
        std::vector<std::string> out;
        for (lf::Isa isa : isas) out.emplace_back(lf::isa_name(isa));
        return out;
    };
    m.def("simd_active", [] { return std::string(lf::isa_name(lf::active_isa())); });
    m.def("simd_compiled", [=] { return names(lf::compiled_isas()); });
    m.def("simd_supported", [=] { return names(lf::supported_isas()); });
    m.def("set_simd", &lf::set_active_isa, pybind11::arg("name"));
    m.def("cpu_description", &lf::cpu_description);
    m.def("hardware_threads", &lf::hardware_threads);
    m.def("max_threads", &lf::max_threads);
    // Test hook: runs `tasks` empty tasks on the pool, task `fail_task` throwing; returns how
    // many ran. Shows that a worker's exception reaches the caller and the pool survives it.
    m.def("_parallel_for_probe", [](std::size_t tasks, std::size_t threads, long long fail_task) {
        std::atomic<std::size_t> ran{0};
        pybind11::gil_scoped_release release;
        lf::parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
            if (static_cast<long long>(task) == fail_task)
                throw std::invalid_argument("task " + std::to_string(task) + " failed");
            ++ran;
        });
        return ran.load();
    });
    // Test hook: two tasks on two threads; one fails once the other has started, which then
    // checks for interrupts in a loop (inside a one-thread parallel_for of its own when
    // `nested`) for at most `seconds`. True when the check stopped it: a failed call stops its
    // other tasks at their next check, on any thread.
    m.def("_stop_probe", [](bool nested, double seconds) {
        std::atomic<bool> started{false}, stopped{false};
        const auto limit = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        auto spin = [&] {
            started = true;
            try {
                while (std::chrono::steady_clock::now() < limit) lf::check_interrupt();
            } catch (const lf::Interrupted&) {
                stopped = true;
                throw;
            }
        };
        pybind11::gil_scoped_release release;
        try {
            lf::parallel_for(2, 2, [&](std::size_t task, std::size_t) {
                if (task == 1) {
                    if (nested)
                        lf::parallel_for(1, 1, [&](std::size_t, std::size_t) { spin(); });
                    else
                        spin();
                    return;
                }
                while (!started && std::chrono::steady_clock::now() < limit) std::this_thread::yield();
                throw std::runtime_error("task 0 failed");
            });
        } catch (const std::runtime_error&) {
        }
        return stopped.load();
    });
    // Test hook: the n-th fault point from now throws std::bad_alloc (MemoryError); 0 disarms.
    m.def("_fail_after", &lf::fail_after, pybind11::arg("n"));
    lf::bindings::bind_multivectors(m);
    lf::bindings::bind_ragged_items(m);
    lf::bindings::bind_maxsim(m);
    lf::bindings::bind_fde(m);
    lf::bindings::bind_pq(m);
    lf::bindings::bind_filter(m);
    lf::bindings::bind_graph(m);
    lf::bindings::bind_index(m);
    lf::bindings::bind_cuda(m);
}
