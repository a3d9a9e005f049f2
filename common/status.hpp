#pragma once
//! Error values for hot paths: `Status` and `Expected<T>`; exceptions are for what ends a request.
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace t2s {

//! A success-or-error value with a human-readable message that names the problem.
class Status {
 public:
  //! Success.
  Status() = default;
  //! An error with `message`.
  static Status error(std::string message) { return Status(std::move(message)); }
  //! True when this is success.
  bool ok() const { return !message_.has_value(); }
  explicit operator bool() const { return ok(); }
  //! The error message ("" on success).
  const std::string& message() const {
    static const std::string empty;
    return message_ ? *message_ : empty;
  }

 private:
  explicit Status(std::string m) : message_(std::move(m)) {}
  std::optional<std::string> message_;
};

//! Either a value or an error message (a small stand-in for C++23 std::expected).
template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Expected(Status error) : v_(std::move(error)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) throw std::logic_error("Expected built from a success Status");
  }
  //! True when a value is held.
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  //! The value; throws std::runtime_error with the message when this holds an error.
  T& value() & {
    if (!ok()) throw std::runtime_error(error().message());
    return std::get<0>(v_);
  }
  const T& value() const& {
    if (!ok()) throw std::runtime_error(error().message());
    return std::get<0>(v_);
  }
  T&& value() && {
    if (!ok()) throw std::runtime_error(error().message());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  //! The error (only valid when !ok()).
  const Status& error() const { return std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

//! Thrown for bad input or bad usage; the CLI maps it to exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace t2s
