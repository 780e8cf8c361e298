#include <fieldsync/server/qr.hpp>

#include <qrencode.h>

#include <memory>

namespace fieldsync::server {

std::optional<qr_code> make_qr(const std::string& text) {
    std::unique_ptr<QRcode, void (*)(QRcode*)> q(QRcode_encodeString8bit(text.c_str(), 0, QR_ECLEVEL_M),
                                                 QRcode_free);
    if (!q) return std::nullopt;
    qr_code out;
    out.width = q->width;
    out.dark.resize(static_cast<std::size_t>(q->width) * q->width);
    for (std::size_t i = 0; i < out.dark.size(); ++i) out.dark[i] = (q->data[i] & 1) != 0;
    return out;
}

std::string qr_terminal(const qr_code& q) {
    constexpr int quiet = 2;
    std::string out;
    for (int y = -quiet; y < q.width + quiet; y += 2) {
        for (int x = -quiet; x < q.width + quiet; ++x) {
            const bool top_light = !q.at(x, y);
            const bool bottom_light = !q.at(x, y + 1) && y + 1 < q.width + quiet;
            if (top_light && bottom_light)
                out += "\u2588";  // full block
            else if (top_light)
                out += "\u2580";  // upper half
            else if (bottom_light)
                out += "\u2584";  // lower half
            else
                out += " ";
        }
        out += "\n";
    }
    return out;
}

std::string qr_svg(const qr_code& q) {
    constexpr int quiet = 4;
    const int size = q.width + 2 * quiet;
    std::string path;
    for (int y = 0; y < q.width; ++y)
        for (int x = 0; x < q.width; ++x)
            if (q.at(x, y)) path += "M" + std::to_string(x + quiet) + " " + std::to_string(y + quiet) + "h1v1h-1z";
    const std::string n = std::to_string(size);
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + n + " " + n + "\" width=\"" +
           std::to_string(size * 8) + "\" height=\"" + std::to_string(size * 8) +
           "\" shape-rendering=\"crispEdges\">\n<rect width=\"" + n + "\" height=\"" + n +
           "\" fill=\"#fff\"/>\n<path fill=\"#000\" d=\"" + path + "\"/>\n</svg>\n";
}

}  // namespace fieldsync::server
