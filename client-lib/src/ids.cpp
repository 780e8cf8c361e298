#include <fieldsync/client/replica.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

namespace fieldsync::client {

std::string make_uuid_v7() {
    // RFC 9562 method 1: the 12-bit rand_a field is a counter within one millisecond, so ids
    // of one process are strictly increasing even when many are made in the same millisecond.
    static std::mutex mutex;
    static std::mt19937_64 rng{std::random_device{}()};
    static std::uint64_t last_ms = 0;
    static std::uint32_t counter = 0;

    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    std::uint64_t ms;
    std::uint32_t seq;
    std::uint64_t rand_b;
    {
        std::lock_guard lock(mutex);
        if (now > last_ms) {
            last_ms = now;
            counter = static_cast<std::uint32_t>(rng() & 0x3FF);  // start low: room to count up
        } else if (++counter > 0xFFF) {
            ++last_ms;  // counter exhausted: borrow the next millisecond
            counter = 0;
        }
        ms = last_ms;
        seq = counter;
        rand_b = rng();
    }
    unsigned char b[16];
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    b[6] = static_cast<unsigned char>(0x70 | ((seq >> 8) & 0x0F));
    b[7] = static_cast<unsigned char>(seq & 0xFF);
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<unsigned char>(rand_b >> (56 - 8 * i));
    b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));

    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                  b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return std::string(out, 36);
}

}  // namespace fieldsync::client
