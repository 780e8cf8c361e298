#pragma once
// A value or an error: the one result type of the project (std::expected arrives with C++23;
// this is the small part we need). protocol::expected<T> carries a protocol::error (server
// and protocol); client::result<T> is the same template with the client's error.

#include <utility>
#include <variant>

namespace fieldsync::protocol {

template <class T, class E>
class [[nodiscard]] basic_expected {
public:
    basic_expected(T value) : v_(std::move(value)) {}
    basic_expected(E e) : v_(std::move(e)) {}
    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }
    // On a temporary (`*f()`, `f().value()`, `f().err()`) the value is moved out and returned
    // by value, so `const auto& x = *f();` and `for (auto& e : *f())` hold it, not a
    // reference into the destroyed temporary.
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }
    T operator*() && { return std::get<0>(std::move(v_)); }
    const E& err() const& { return std::get<1>(v_); }
    E err() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, E> v_;
};

/// Success without a value, or an error.
template <class E>
class [[nodiscard]] basic_expected<void, E> {
public:
    basic_expected() = default;
    basic_expected(E e) : err_(std::move(e)), failed_(true) {}
    bool has_value() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return !failed_; }
    const E& err() const& { return err_; }
    E err() && { return std::move(err_); }

private:
    E err_;
    bool failed_ = false;
};

}  // namespace fieldsync::protocol
