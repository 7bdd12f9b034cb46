/* MKL's answer to "is this CPU Intel's?", fixed at build time (-DINTEL=1 or 0) and loaded with
 * LD_PRELOAD: MKL picks its kernels by this answer (mkl_serv_intel_cpu_true, exported by
 * libtorch_cpu.so), so either vendor's MKL paths run on either vendor's machine, bit for bit.
 * `just test-isa` runs the bit-exactness tests and the parity cases under both.
 * ebgan_mkl_vendor_queries() counts the questions: a test asserts that MKL asked, so a preload
 * that was silently ignored cannot pass for the path it names. */
static int queries;

int mkl_serv_intel_cpu_true(void) {
  __atomic_add_fetch(&queries, 1, __ATOMIC_RELAXED);
  return INTEL;
}

#if !INTEL
/* The older name of the same question (other MKL builds ask this one). */
int mkl_serv_intel_cpu(void) {
  __atomic_add_fetch(&queries, 1, __ATOMIC_RELAXED);
  return 0;
}
#endif

int ebgan_mkl_vendor_queries(void) { return __atomic_load_n(&queries, __ATOMIC_RELAXED); }
