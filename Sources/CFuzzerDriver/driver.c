// Declarations only (include/fuzzer_driver.h): the definition comes from libFuzzer, which
// `make fuzz` links into annexd-fuzz. Ordinary builds never call it.
#include "fuzzer_driver.h"
