{
  "targets": [
    {
      "target_name": "calitap_io",
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        [
          "OS=='linux'",
          {
            "sources": [
              "native/addon.c",
              "native/common.c",
              "native/tap.c",
              "native/netns.c",
              "native/sockets.c",
              "native/batch_io.c",
              "native/poll.c",
              "native/offload.c",
              "native/gro.c",
              "native/uring.c"
            ],
            "defines": ["_GNU_SOURCE"],
            "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"]
          },
          { "sources": ["native/stub.c"] }
        ]
      ]
    }
  ]
}
