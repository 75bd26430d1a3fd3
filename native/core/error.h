// Errors inside the core are C++ exceptions carrying a te_status; every C ABI
// entry point runs its body through guard(), so none ever crosses the ABI.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "tinyemo.h"

namespace te {

struct Error {
  te_status status;
  std::string message;
};

[[noreturn]] void fail(te_status status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void set_last_error(const std::string& message);
// This thread's last error message (te_last_error).
const std::string& last_error();

template <class F>
te_status guard(F&& body) noexcept {
  try {
    body();
    set_last_error("");
    return TE_OK;
  } catch (const Error& e) {
    set_last_error(e.message);
    return e.status;
  } catch (const std::bad_alloc&) {
    set_last_error("out of host memory");
    return TE_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return TE_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return TE_ERR_INTERNAL;
  }
}

}  // namespace te
