// Objects of the addon's classes carry a type tag set by their constructors,
// so that a look-alike object (another addon's wrapper with our prototype)
// is refused instead of reinterpreted.
#pragma once

#include <napi.h>

namespace te::binding {

// The T behind a JS value that carries `tag`, or nullptr.
template <class T>
T* unwrap_tagged(Napi::Value v, const napi_type_tag& tag) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  bool tagged = false;
  if (napi_check_object_type_tag(v.Env(), o, &tag, &tagged) != napi_ok || !tagged) return nullptr;
  return Napi::ObjectWrap<T>::Unwrap(o);
}

}  // namespace te::binding
