// The one translation unit that compiles Asio (with its OpenSSL stream) and Beast (see
// CMakeLists.txt beside it).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
