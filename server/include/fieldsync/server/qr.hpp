#pragma once
// QR codes for enrolment links (SPEC.md, "Enrolment"), made with Debian's libqrencode: drawn
// on a terminal in UTF-8 half blocks (fieldsync-admin), and as SVG (a file to print or send,
// and the /admin/ page's code: POST /v1/devices/{id}/enrol).

#include <optional>
#include <string>
#include <vector>

namespace fieldsync::server {

/// A QR code's modules, row by row: true is dark. Error correction M (15% of the code may be
/// damaged or dirty and it still reads). The quiet zone is not included.
struct qr_code {
    int width = 0;
    std::vector<bool> dark;
    bool at(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < width && dark[y * width + x]; }
};

/// nullopt when the text does not fit a QR code (over about 2,300 bytes).
std::optional<qr_code> make_qr(const std::string& text);

/// The code for a terminal with a dark background, as `qrencode -t UTF8` draws it: light
/// modules (and a quiet zone of 2) are blocks, two rows of modules to a line of text.
std::string qr_terminal(const qr_code& q);

/// A standalone SVG: black modules on white, a quiet zone of 4, 8 px a module.
std::string qr_svg(const qr_code& q);

}  // namespace fieldsync::server
