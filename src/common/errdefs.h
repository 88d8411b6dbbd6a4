#pragma once
// berth's one error model: containerd's errdefs classes, carried as values.
//
// Every failure is an Error{code, what}: `code` is one of containerd's classes, `what` says what
// failed and where ("content digest sha256:...", "namespace \"x\""). ToString() appends the class
// suffix the way containerd's text has it ("...: not found"). Only services/ maps an Error to a
// gRPC status; clients map back with FromGrpcCode().
#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace berth {

enum class Errc {
  kUnknown = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kUnavailable,
  kNotImplemented,
  kCanceled,
  kDeadlineExceeded,
  kOutOfRange,
  kResourceExhausted,
  kDataLoss,
  kAborted,
  kPermissionDenied,
};

// The text containerd appends for a class ("not found"); empty for kUnknown.
std::string_view ErrcSuffix(Errc code);
// gRPC status code number for a class (containerd's errdefs/grpc.go mapping).
int ErrcToGrpcCode(Errc code);
Errc ErrcFromGrpcCode(int grpc_code);

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string what) : code_(code), what_(std::move(what)) {}

  Errc Code() const { return code_; }
  const std::string& What() const { return what_; }
  // "<what>: <suffix>", or just "<what>" for kUnknown.
  std::string ToString() const;
  // Prefixes context: Error(kNotFound, "x").Wrap("unpack") -> "unpack: x: not found".
  Error Wrap(std::string_view context) &&;
  Error Wrap(std::string_view context) const&;

  bool Is(Errc code) const { return code_ == code; }

 private:
  Errc code_;
  std::string what_;
};

// Shorthands, one per class.
Error Unknown(std::string what);
Error InvalidArgument(std::string what);
Error NotFound(std::string what);
Error AlreadyExists(std::string what);
Error FailedPrecondition(std::string what);
Error Unavailable(std::string what);
Error NotImplemented(std::string what);
Error OutOfRange(std::string what);
// Maps errno to a class (ENOENT -> NotFound, EEXIST -> AlreadyExists, EINVAL -> InvalidArgument,
// ...); the text is "<what>: <strerror>" unless the class suffix already says it.
Error ErrnoError(int err, std::string what);
// Parses text that ends in a class suffix (as a Go client prints) back into a class.
Error ErrorFromGrpc(int grpc_code, std::string_view message);

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Error> &&
           !std::is_same_v<std::decay_t<U>, Result>) Result(U&& value)
      : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }  // NOLINT(readability-identifier-naming)
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }               // NOLINT
  const T& value() const& { return std::get<0>(v_); }    // NOLINT
  T&& value() && { return std::get<0>(std::move(v_)); }  // NOLINT
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  template <class U>
  T value_or(U&& other) const& {  // NOLINT
    return has_value() ? value() : T(std::forward<U>(other));
  }

  Error& error() & { return std::get<1>(v_); }               // NOLINT
  const Error& error() const& { return std::get<1>(v_); }    // NOLINT
  Error&& error() && { return std::get<1>(std::move(v_)); }  // NOLINT

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT: implicit by design

  bool has_value() const { return !e_.has_value(); }  // NOLINT
  explicit operator bool() const { return has_value(); }
  void value() const {}  // NOLINT

  Error& error() & { return *e_; }               // NOLINT
  const Error& error() const& { return *e_; }    // NOLINT
  Error&& error() && { return std::move(*e_); }  // NOLINT

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;
inline Status Ok() { return {}; }

[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, std::string_view msg);

}  // namespace berth

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)

// Returns the error of a Result/Status expression from the enclosing function.
#define BERTH_TRY(expr)                            \
  do {                                             \
    auto&& berth_try_result_ = (expr);             \
    if (!berth_try_result_.has_value()) {          \
      return std::move(berth_try_result_).error(); \
    }                                              \
  } while (false)

#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.has_value()) {                            \
    return std::move(tmp).error();                   \
  }                                                  \
  lhs = std::move(tmp).value()

// `BERTH_ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value or returns its error.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(berth_result_, __LINE__), lhs, expr)

// Broken invariants: always on, never for environmental failures.
#define BERTH_CHECK(cond, msg)                                \
  do {                                                        \
    if (!(cond)) {                                            \
      ::berth::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
    }                                                         \
  } while (false)
