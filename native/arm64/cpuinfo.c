/*
 * cpuinfo: print the /proc/cpuinfo that Linux would show on the emulated core.
 *
 *   qemu-aarch64 -cpu CORE cpuinfo [MIDR] > ROOT/proc/cpuinfo
 *
 * qemu-user (7.2) lets a guest read the host's /proc/cpuinfo, an x86 one under which
 * LiteRT's bundled cpuinfo library crashes; a guest run with `-L ROOT` reads
 * ROOT/proc/cpuinfo instead. This program writes that file as arch/arm64/kernel/cpuinfo.c
 * does, from the core's own MIDR_EL1 (readable at EL0: HWCAP_CPUID) and hwcaps, so that
 * the runtime sees the core qemu emulates, one processor: the count runs one thread.
 * MIDR (e.g. 0x410fd490) stands in for a core whose qemu MIDR is qemu's own (`max`:
 * implementer 0), on which LiteRT's cpuinfo crashes too.
 * quant.backends.tflite_arm64 cross-builds it and runs it once per core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

/* The kernel's hwcap_str names, in bit order (AT_HWCAP, then AT_HWCAP2). */
static const char *const kHwcap[] = {
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp",
    "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512",
    "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg"};
static const char *const kHwcap2[] = {
    "dcpodp", "sve2", "sveaes", "svepmull", "svebitperm", "svesha3", "svesm4", "flagm2", "frint",
    "svei8mm", "svef32mm", "svef64mm", "svebf16", "i8mm", "bf16", "dgh", "rng", "bti", "mte", "ecv",
    "afp", "rpres", "mte3", "sme", "smei16i64", "smef64f64", "smei8i32", "smef16f32", "smeb16f32",
    "smef32f32", "smefa64", "wfxt", "ebf16", "sveebf16"};

static void features(unsigned long bits, const char *const *names, unsigned count) {
  for (unsigned i = 0; i < count; ++i)
    if (bits & (1UL << i)) printf(" %s", names[i]);
}

int main(int argc, char **argv) {
  unsigned long midr;
  __asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
  if (argc > 1) midr = strtoul(argv[1], NULL, 0);
  printf("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t:");
  features(getauxval(AT_HWCAP), kHwcap, sizeof kHwcap / sizeof *kHwcap);
  features(getauxval(AT_HWCAP2), kHwcap2, sizeof kHwcap2 / sizeof *kHwcap2);
  printf("\nCPU implementer\t: 0x%02lx\nCPU architecture: 8\nCPU variant\t: 0x%lx\n"
         "CPU part\t: 0x%03lx\nCPU revision\t: %lu\n\n",
         (midr >> 24) & 0xff, (midr >> 20) & 0xf, (midr >> 4) & 0xfff, midr & 0xf);
  return 0;
}
