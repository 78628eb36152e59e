/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A four-instruction arm64 boot loader for make check-cross.
 *
 * QEMU's -kernel/-dtb boot rewrites every /memory node of the device tree
 * from its -numa options, so a property added to a memory node (compatible
 * = "ibm,coherent-device-memory") never reaches the kernel.  Instead the
 * test loads the Image, the initramfs, the patched dtb and this stub with
 * -device loader and starts CPU 0 here; the stub enters the kernel the way
 * Documentation/arch/arm64/booting.rst asks: x0 = physical address of the
 * dtb, x1-x3 = 0, MMU off.  Secondary CPUs start powered off and are
 * brought up through PSCI, which QEMU emulates (conduit hvc).
 *
 * Assembled with --defsym DTB=<addr> --defsym KERNEL=<addr>.
 */
	.text
	.globl	_start
_start:
	ldr	x0, dtb_addr
	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	ldr	x4, kernel_addr
	br	x4

	.balign	8
dtb_addr:
	.quad	DTB
kernel_addr:
	.quad	KERNEL
