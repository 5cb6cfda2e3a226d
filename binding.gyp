{
  "targets": [
    {
      "target_name": "calitap_io",
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        [
          "OS=='linux'",
          {
            "sources": ["native/calitap_io.c"],
            "defines": ["_GNU_SOURCE"],
            "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"]
          },
          { "sources": ["native/stub.c"] }
        ]
      ]
    }
  ]
}
