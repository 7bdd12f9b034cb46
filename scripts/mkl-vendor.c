/* MKL's answer to "is this CPU Intel's?", fixed at build time (-DINTEL=0 or 1), for LD_PRELOAD.
 * The workspace's binaries answer the question themselves (ebgan-core/src/mkl_path.rs), and the
 * dynamic linker asks the executable before any preloaded library: `just test-isa` preloads the
 * "not Intel" answer and checks that MKL never asks it (ebgan_mkl_vendor_queries() stays 0). */
static int queries;

int mkl_serv_intel_cpu_true(void) {
  __atomic_add_fetch(&queries, 1, __ATOMIC_RELAXED);
  return INTEL;
}

int ebgan_mkl_vendor_queries(void) { return __atomic_load_n(&queries, __ATOMIC_RELAXED); }
