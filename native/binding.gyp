{
  "targets": [
    {
      "target_name": "obnam_fsops",
      "sources": ["fsops.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
