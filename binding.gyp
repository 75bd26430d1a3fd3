{
  # The CPU addon. CMakeLists.txt builds the CUDA addon and the plain C-ABI
  # library from the same source list (native/sources.json).
  "variables": {
    "te_version": "<!(node -p \"require('./package.json').version\")"
  },
  "target_defaults": {
    "include_dirs": ["native/include"],
    "defines": ["TE_VERSION_STRING=\"<(te_version)\""],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags": ["-O3", "-fPIC", "-fvisibility=hidden"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "GCC_ENABLE_CPP_RTTI": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0",
      "OTHER_CFLAGS": ["-O3", "-fvisibility=hidden"]
    },
    "msvs_settings": {
      "VCCLCompilerTool": {
        "ExceptionHandling": 1,
        "AdditionalOptions": ["/std:c++17", "/O2"]
      }
    }
  },
  "targets": [
    {
      # AVX2/FMA/F16C kernels, compiled with those flags and reached only
      # after the runtime CPU check in native/cpu/isa.cpp.
      "target_name": "tinyemo_avx2",
      "type": "none",
      "conditions": [
        ["target_arch=='x64'", {
          "type": "static_library",
          "sources": ["<!@(node native/sources.js avx2)"],
          "cflags": ["-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx2", "-mfma", "-mf16c"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX2"]}}
        }]
      ]
    },
    {
      # AVX-512 F/DQ/BW/VL kernels, behind the same kind of runtime check.
      "target_name": "tinyemo_avx512",
      "type": "none",
      "conditions": [
        ["target_arch=='x64'", {
          "type": "static_library",
          "sources": ["<!@(node native/sources.js avx512)"],
          "cflags": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX512"]}}
        }]
      ]
    },
    {
      # AVX512_BF16 kernels (vdpbf16ps), behind the runtime check of that flag.
      "target_name": "tinyemo_avx512_bf16",
      "type": "none",
      "conditions": [
        ["target_arch=='x64'", {
          "type": "static_library",
          "sources": ["<!@(node native/sources.js avx512_bf16)"],
          "cflags": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mavx2", "-mfma", "-mf16c"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX512"]}}
        }]
      ]
    },
    {
      "target_name": "tinyemo",
      "sources": ["<!@(node native/sources.js core cpu binding)"],
      "dependencies": ["tinyemo_avx2", "tinyemo_avx512", "tinyemo_avx512_bf16"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS"],
      "conditions": [
        ["target_arch=='x64'", {"defines": ["TE_HAVE_AVX2"]}],
        # Every symbol bound at load: a missing one is a load error, not a crash at its first call.
        ["OS=='linux'", {"libraries": ["-lpthread"], "ldflags": ["-Wl,-z,now"]}]
      ]
    }
  ]
}
