// The embedded build (FIELDSYNC_CLIENT_EMBEDDED): no Boost, so no default transport; the app
// supplies one (replica_options::transport_override, or fs_replica_set_transport in C).

#include <fieldsync/client/transport.hpp>

namespace fieldsync::client {

bool has_http_transport() noexcept { return false; }

std::unique_ptr<transport> make_http_transport() { return nullptr; }
std::unique_ptr<transport> make_http_transport(const http_transport_options&) { return nullptr; }

}  // namespace fieldsync::client
