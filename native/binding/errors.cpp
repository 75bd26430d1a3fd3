#include "errors.h"

namespace te::binding {

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error make_error(Napi::Env env, te_status status, const std::string& message) {
  return make_error(env, te_status_name(status), message);
}

void throw_error(Napi::Env env, const char* code, const std::string& message) { throw make_error(env, code, message); }

void throw_status(Napi::Env env, te_status status) { throw make_error(env, status, te_last_error()); }

}  // namespace te::binding
