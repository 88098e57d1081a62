#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, libclang_rt.fuzzer_no_main), linked only by `make fuzz`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
