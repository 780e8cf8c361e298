#include <fieldsync/protocol/hlc.hpp>

#include <charconv>
#include <chrono>
#include <limits>

namespace fieldsync::protocol {

std::string hlc::to_string() const {
    return std::to_string(wall_ms) + "-" + std::to_string(counter);
}

std::optional<hlc> hlc::parse(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) return std::nullopt;
    hlc h;
    const char* end = text.data() + dash;
    auto [p1, e1] = std::from_chars(text.data(), end, h.wall_ms);
    if (e1 != std::errc{} || p1 != end || h.wall_ms < 0) return std::nullopt;
    const char* end2 = text.data() + text.size();
    auto [p3, e3] = std::from_chars(end + 1, end2, h.counter);
    if (e3 != std::errc{} || p3 != end2) return std::nullopt;
    return h;
}

hlc_clock::hlc_clock(wall_fn wall) : wall_(std::move(wall)) {}

std::int64_t hlc_clock::system_wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

hlc hlc_clock::now() {
    const auto wall = wall_();
    std::lock_guard lock(mutex_);
    if (wall > last_.wall_ms)
        last_ = {wall, 0};
    else if (last_.counter == std::numeric_limits<std::uint32_t>::max())
        last_ = {last_.wall_ms + 1, 0};  // the counter would wrap below a stamp already issued or observed
    else
        ++last_.counter;
    return last_;
}

void hlc_clock::observe(const hlc& remote) {
    std::lock_guard lock(mutex_);
    if (remote > last_) last_ = remote;
}

}  // namespace fieldsync::protocol
