/* SPDX-License-Identifier: GPL-2.0 */
/* cdm selftest library: the capi_sim device. */
#ifndef CDM_DEVICE_H
#define CDM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../drivers/capi_sim/capi_sim_uapi.h"

#define CDM_MAX_DEVS 8
#define CAPI_DRV "/sys/bus/pci/drivers/capi_sim"
#define CAPI_KO "/lib/modules/cdm/capi_sim.ko"

/* ---- capi_sim ---- */
struct capi_dev {
	char bdf[64];
	char path[512];		/* /sys/bus/pci/devices/<bdf> */
	int node;
	unsigned long long size;
	char state[32];
};
int capi_devs(struct capi_dev *d, int max);	/* bound devices, by size desc */
int capi_refresh(struct capi_dev *d);
int capi_attr(const struct capi_dev *d, const char *attr, char *buf, size_t len);
int capi_write(const struct capi_dev *d, const char *attr, const char *val);
long capi_stat(const struct capi_dev *d, const char *key);
/* open /dev/capi_simN whose INFO reports @node; -errno */
int capi_open_node(int node);
int capi_info(int fd, struct capi_sim_info *info);
int capi_evac_ioctl(int fd, unsigned int timeout_ms,
		    unsigned long long *migrated, unsigned long long *unmoved);
int capi_online_ioctl(int fd);
/* poll until state equals @state; 0 or -ETIMEDOUT */
int capi_wait_state(struct capi_dev *d, const char *state, int timeout_ms);
/* poll until node has (want=true) or lacks memory */
int wait_node_memory(int nid, bool want, int timeout_ms);
/* node in this task's Mems_allowed (cpuset follows hotplug) */
bool mems_allowed_has(int nid);
/* node has memory and is in Mems_allowed */
int wait_node_usable(int nid, int timeout_ms);
/*
 * Bring every capi_sim device back online: module loaded, devices bound,
 * states online. Returns number of online devices.
 */
int capi_restore_all(void);
int capi_run(int fd, struct capi_sim_run *run);

/* memory blocks of @nid whose valid_zones is "Movable" */
int memory_blocks_movable(int nid);
/* offline memory block @b in a child bounded by @timeout_s: 0 or -errno */
int memory_block_offline(int b, int timeout_s);
/* block @b holds a boot-time reserved page: never offlinable (see .c) */
bool memory_block_has_reserved(int b);

#endif
