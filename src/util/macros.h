// Early-return helpers for Status and StatusOr.
#ifndef LLMFLASH_UTIL_MACROS_H_
#define LLMFLASH_UTIL_MACROS_H_

#define LLMFLASH_CONCAT_INNER(a, b) a##b
#define LLMFLASH_CONCAT(a, b) LLMFLASH_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::llmflash::Status _st = (expr);                  \
    if (!_st.ok()) return _st;                        \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F());` unwraps a StatusOr or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(LLMFLASH_CONCAT(_status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#endif  // LLMFLASH_UTIL_MACROS_H_
