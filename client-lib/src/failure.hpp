#pragma once
// Inside the library a failure deep in a local transaction unwinds as `failure`, so that the
// transaction's RAII guard rolls back; the public entry points (replica.cpp) catch it and
// return it as an `error`. It never leaves the library.

#include <fieldsync/client/errc.hpp>

#include <exception>
#include <string>
#include <utility>

namespace fieldsync::client::detail {

class failure : public std::exception {
public:
    explicit failure(error e) : error_(std::move(e)) {}
    failure(errc code, std::string message) : error_(make_error(code, std::move(message))) {}
    const char* what() const noexcept override { return error_.message.c_str(); }
    const error& err() const noexcept { return error_; }

private:
    error error_;
};

}  // namespace fieldsync::client::detail
