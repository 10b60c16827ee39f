/*
 * A 32-bit (arm32, AArch32) test helper for aarch64 hosts: its syscalls go
 * through the kernel's compat table, as the i386 ones of
 * `enforcer-test-helper getppid-int80` do on x86_64. C, because the
 * toolchain that builds it (Debian's gcc-arm-linux-gnueabihf, static)
 * needs nothing else; `cargo xtask vmtest --arch arm64` builds it and the
 * tests find it through ENFORCER_TEST_COMPAT32.
 *
 *   getppid K     make exactly K getppid(2) calls (arm32 number 64)
 *   personality   personality(PER_LINUX32) (arm32 number 136), then print
 *                 `alive` (a group that kills on `personality` never does)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "getppid") == 0) {
		long k = strtol(argv[2], NULL, 10);
		for (long i = 0; i < k; i++)
			syscall(SYS_getppid);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "personality") == 0) {
		syscall(SYS_personality, 0x0008);
		puts("alive");
		return 0;
	}
	fputs("usage: enforcer-test-compat32 getppid K | personality\n", stderr);
	return 2;
}
