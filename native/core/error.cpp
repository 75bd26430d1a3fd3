#include "error.h"

#include <cstdarg>
#include <cstdio>

namespace te {

namespace {
thread_local std::string tl_last_error;
}

void fail(te_status status, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Error{status, buf};
}

void set_last_error(const std::string& message) { tl_last_error = message; }

}  // namespace te

extern "C" TE_API const char* te_last_error(void) { return te::tl_last_error.c_str(); }

extern "C" TE_API const char* te_status_name(te_status status) {
  switch (status) {
    case TE_OK:
      return "OK";
    case TE_ERR_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case TE_ERR_SHAPE:
      return "SHAPE_MISMATCH";
    case TE_ERR_DTYPE:
      return "DTYPE_MISMATCH";
    case TE_ERR_DEVICE:
      return "DEVICE";
    case TE_ERR_OUT_OF_MEMORY:
      return "OUT_OF_MEMORY";
    case TE_ERR_UNSUPPORTED:
      return "UNSUPPORTED";
    case TE_ERR_INTERNAL:
      return "INTERNAL";
    case TE_ERR_CANCELLED:
      return "CANCELLED";
  }
  return "UNKNOWN";
}
