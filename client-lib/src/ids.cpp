#include <fieldsync/client/replica.hpp>

#include <fieldsync/protocol/ids.hpp>

#include <chrono>
#include <mutex>
#include <random>

namespace fieldsync::client {

std::string make_uuid_v7() {
    // One maker for the process, so the ids of all its replicas are strictly increasing.
    static std::mutex mutex;
    static std::mt19937_64 rng{std::random_device{}()};
    static protocol::uuid_v7_maker maker;
    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    protocol::uuid_bytes b;
    {
        std::lock_guard lock(mutex);
        b = maker.next(now, rng(), rng());
    }
    return protocol::format_uuid(b);
}

}  // namespace fieldsync::client
