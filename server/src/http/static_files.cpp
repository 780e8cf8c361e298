#include "http/static_files.hpp"

namespace fieldsync::server::detail {

namespace {

constexpr std::string_view k_csp =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

void harden(response& res) {
    res.set(http::field::server, "fieldsync/0.1");
    res.set("Content-Security-Policy", k_csp);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set("X-Frame-Options", "DENY");
    res.set(http::field::cache_control, "no-store");
}

}  // namespace

std::string_view web_content_type(std::string_view path) noexcept {
    auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
    if (ends(".html")) return "text/html; charset=utf-8";
    if (ends(".css")) return "text/css; charset=utf-8";
    if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
    if (ends(".json")) return "application/json";
    if (ends(".webmanifest")) return "application/manifest+json";
    if (ends(".svg")) return "image/svg+xml";
    if (ends(".png")) return "image/png";
    if (ends(".wasm")) return "application/wasm";
    return "application/octet-stream";
}

response serve_web_page(std::string_view section, const std::vector<std::string>& rest, const request& req) {
    const std::string root = "/" + std::string(section) + "/";
    if (rest.empty()) {
        response res{http::status::moved_permanently, req.version()};
        harden(res);
        res.set(http::field::location, root);
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        return res;
    }
    std::string name;
    for (const auto& seg : rest) name += (name.empty() ? "" : "/") + seg;
    if (name.empty()) name = "index.html";
    const std::string path = std::string(section) + "/" + name;
    for (std::size_t i = 0; i < k_web_asset_count; ++i) {
        if (k_web_assets[i].path != path) continue;
        response res{http::status::ok, req.version()};
        harden(res);
        res.set(http::field::content_type, web_content_type(name));
        res.keep_alive(req.keep_alive());
        res.body() = std::string(k_web_assets[i].body);
        res.prepare_payload();
        return res;
    }
    auto res = error_response(req.version(), req.keep_alive(),
                              protocol::error{protocol::errc::not_found, "no file " + root + name});
    harden(res);
    return res;
}

}  // namespace fieldsync::server::detail
