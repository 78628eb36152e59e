/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the cdm guest selftests, one file pair per concern:
 *   cdm_sysfs   sysfs/procfs files, node lists, node and zone meminfo
 *   cdm_pages   per-page node queries with move_pages(2), policies,
 *               mappings, data patterns, checksums, the concurrent writer
 *   cdm_fill    child processes that run commands or fill memory, and the
 *               CDM free-memory watcher
 *   cdm_kmsg    modules, debugfs (cdm_test_kmod) and kernel reports
 *   cdm_device  the capi_sim driver's sysfs attributes and ioctls
 * cdm_sysfs.{c,h} depends on nothing else, so the tools/ tests use it too.
 */
#ifndef CDM_LIB_H
#define CDM_LIB_H

#include "cdm_sysfs.h"
#include "cdm_pages.h"
#include "cdm_fill.h"
#include "cdm_kmsg.h"
#include "cdm_device.h"

#endif
