// main() for a libFuzzer runtime that has none (the atheris wheel's, which
// fuzz/run.sh uses): hands the command line to libFuzzer's driver, as
// -fsanitize=fuzzer's own main does.
#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerRunDriver(int* argc, char*** argv, int (*callback)(const uint8_t* data, size_t size));

int main(int argc, char** argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
