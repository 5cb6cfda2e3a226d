// calitap_io on a platform other than Linux: TAP, AF_PACKET and the batched I/O are Linux-only.
// The module loads (so `npm install` succeeds for replay/development) and reports that it is a stub;
// src/dataplane/devices/native/load.ts turns this into a clear error when a live port is opened.
#include <node_api.h>

NAPI_MODULE_INIT() {
  napi_value v;
  if (napi_get_boolean(env, 1, &v) == napi_ok) napi_set_named_property(env, exports, "unsupportedPlatform", v);
  return exports;
}
