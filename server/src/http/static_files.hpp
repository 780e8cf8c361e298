#pragma once
// The review page under /admin/ and the field app under /app/: files of server/web/admin/
// and server/web/app/, compiled into the binary at build time (server/CMakeLists.txt
// generates web_assets.cpp), so the server needs no files on disk and the pages always match
// the API they call.
//
// The field app also serves the client library's browser build: the worker that runs it
// (client-lib/wasm/replica-worker.js, replica-client.js) and the WebAssembly module emscripten
// made of it (fieldsync-replica.js/.wasm, embedded as they are).
//
// Every answer carries a strict Content-Security-Policy (no inline script or style, nothing
// from another origin; 'wasm-unsafe-eval' lets a page compile WebAssembly, not evaluate
// JavaScript), nosniff and no-store. The review page keeps its token in
// sessionStorage, the field app in localStorage; both send it in an Authorization header,
// never in a URL.

#include "http/router.hpp"

#include <string_view>

namespace fieldsync::server::detail {

struct web_asset {
    std::string_view path;          // relative to server/web/, e.g. "admin/index.html"
    std::string_view body;
};
/// The generated table (web_assets.cpp).
extern const web_asset k_web_assets[];
extern const std::size_t k_web_asset_count;

/// GET /<section>/<rest> (section "admin" or "app"): "" or "index.html" is the page; unknown
/// files are 404. "/admin" without a trailing slash redirects to "/admin/" so relative links
/// resolve.
response serve_web_page(std::string_view section, const std::vector<std::string>& rest, const request& req);

/// The Content-Type of a file name by its extension.
std::string_view web_content_type(std::string_view path) noexcept;

}  // namespace fieldsync::server::detail
