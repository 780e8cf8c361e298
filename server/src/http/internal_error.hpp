#pragma once
// The HTTP layer's one catch-all. An exception that escapes a handler is a bug, never an
// answer: it is logged with what the server was doing, and `on_bug` answers the request
// 500 internal (SPEC.md, "Errors"), so no request is left without an answer. Used where the
// router and the session hand a request to code that may throw.

#include <exception>
#include <iostream>
#include <string_view>

namespace fieldsync::server::detail {

/// Returns body(), or on_bug() when body throws (after logging "internal error while <doing>").
template <class Body, class OnBug>
auto catch_internal_error(std::string_view doing, Body&& body, OnBug&& on_bug) -> decltype(body()) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::cerr << "fieldsync-server: internal error while " << doing << ": " << e.what() << "\n";
    } catch (...) {
        std::cerr << "fieldsync-server: internal error while " << doing << "\n";
    }
    return on_bug();
}

}  // namespace fieldsync::server::detail
