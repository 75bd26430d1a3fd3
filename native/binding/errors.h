// Errors crossing into JavaScript: every one is a JS Error with a `code`
// (the te_status name, or DISPOSED), and no C++ exception ever escapes.
#pragma once

#include <napi.h>

#include <exception>
#include <new>
#include <string>

#include "tinyemo.h"

namespace te::binding {

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message);
Napi::Error make_error(Napi::Env env, te_status status, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, const char* code, const std::string& message);
[[noreturn]] void throw_status(Napi::Env env, te_status status);  // with te_last_error()

// Runs a binding body, turning anything but a Napi::Error into one.
template <class F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw make_error(env, TE_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    throw make_error(env, TE_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    throw make_error(env, TE_ERR_INTERNAL, "internal error: unknown exception");
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value export_fn(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] { return F(info); });
}

}  // namespace te::binding
