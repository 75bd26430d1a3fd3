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

const std::string& last_error() { return tl_last_error; }

}  // namespace te
