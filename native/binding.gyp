{
  "targets": [
    {
      "target_name": "hhkit",
      "sources": ["unity_ops.cc", "unity_kernels.cc"],
      "include_dirs": ["<!@(node libtorch.mjs include)"],
      "defines": ["<!@(node libtorch.mjs defines)", "NAPI_VERSION=8"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-fopenmp", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<!(node libtorch.mjs libdir)",
        "-Wl,-rpath,<!(node libtorch.mjs libdir)",
        "-Wl,--no-as-needed",
        "<!@(node libtorch.mjs libs)",
        "-Wl,--as-needed"
      ]
    }
  ]
}
