// libtorch's float32 precision switches for CUDA matmuls (cuBLAS) and convolutions (cuDNN),
// which tch does not expose: TF32 or full FP32. Plain C functions, no exceptions across them.
#include <ATen/Context.h>

extern "C" {

// Sets both switches; returns 0, or 1 if libtorch refused.
int ebgan_set_allow_tf32(int allow) {
  try {
    at::globalContext().setAllowTF32CuBLAS(allow != 0);
    at::globalContext().setAllowTF32CuDNN(allow != 0);
    return 0;
  } catch (...) {
    return 1;
  }
}

// Bit 0: cuBLAS may use TF32; bit 1: cuDNN may; -1 if libtorch refused.
int ebgan_allow_tf32() {
  try {
    return (at::globalContext().allowTF32CuBLAS() ? 1 : 0) |
           (at::globalContext().allowTF32CuDNN() ? 2 : 0);
  } catch (...) {
    return -1;
  }
}

// cuDNN's deterministic convolution algorithms, without the benchmark search (1), or not (0):
// what a check that compares bits needs. Returns 0, or 1 if libtorch refused.
int ebgan_set_deterministic_cudnn(int on) {
  try {
    at::globalContext().setDeterministicCuDNN(on != 0);
    if (on != 0) {
      at::globalContext().setBenchmarkCuDNN(false);
    }
    return 0;
  } catch (...) {
    return 1;
  }
}

// 1 if cuDNN is held to deterministic algorithms, 0 if not, -1 if libtorch refused.
int ebgan_deterministic_cudnn() {
  try {
    return at::globalContext().deterministicCuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
}
