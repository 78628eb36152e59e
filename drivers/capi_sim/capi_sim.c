// SPDX-License-Identifier: GPL-2.0
/*
 * capi_sim - a simulated cache-coherent accelerator (CAPI, NVLink-C2C, CXL
 * style) whose memory is hot-added as a coherent device memory (CDM) node.
 *
 * The "device" is QEMU's ivshmem-plain PCI device: BAR2 is backed by host
 * RAM and plays the accelerator's memory.  Probe registers the CDM node and
 * hot-adds BAR2 into it as driver-managed System RAM, onlined to
 * ZONE_MOVABLE by cdm_add_memory().  The memory leaves again (every page
 * migrated to system RAM) on request, on unbind, on module unload and on PCI
 * hot-unplug.  A small "compute engine" (the RUN ioctl) reads and writes
 * user buffers through the kernel direct map, as a coherent device reaches
 * memory by physical address, and reports where the buffer's pages live.
 *
 * Locking: cs->lock is a leaf lock that only protects the fields below it.
 * An evacuation asked from user space is the core's alone (see
 * capi_sim_user_evacuate()).  Bringing the memory back (cdm_add_memory())
 * needs device_hotplug_lock, and an ACPI eject calls .remove with that lock
 * already held, so cs->lock is never held across it: it is serialized by
 * the cs->busy claim instead.  A claim from user space takes
 * device_hotplug_lock first, by trylock (the syscall restarts when it is
 * contended), and keeps it until the claim is dropped: so whoever holds the
 * claim holds the lock, and an eject's .remove, which waits for the claim,
 * never waits for a task that is itself waiting for the lock.  The sysfs
 * stores drop their kernfs active reference while they run, so that
 * removing the attributes (which unbind and eject do with the device lock
 * held) never waits on memory hotplug.
 *
 * Probe and remove never take device_hotplug_lock themselves: see
 * capi_sim_hotplug_work().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cdm.h>
#include <linux/completion.h>
#include <linux/crc32.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/ioport.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/memory.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "capi_sim_uapi.h"

#define CAPI_SIM_MAX_DEVICES		16
#define CAPI_SIM_BAR			2
#define CAPI_SIM_RES_NAME		"System RAM (capi_sim)"
#define CAPI_SIM_REMOVE_TRY_MS		1000
#define CAPI_SIM_REMOVE_BACKOFF_MAX_MS	8000
/* How long probe and remove wait for the hot-plug work before going on. */
#define CAPI_SIM_HOTPLUG_WAIT_MS	30000
/* Pages pinned at a time per buffer: the engine never holds more. */
#define CAPI_SIM_CHUNK_PAGES		64

static int nodes[CAPI_SIM_MAX_DEVICES] = {
	[0 ... CAPI_SIM_MAX_DEVICES - 1] = NUMA_NO_NODE
};

static int nr_nodes;
module_param_array(nodes, int, &nr_nodes, 0444);
MODULE_PARM_DESC(nodes,
		 "CDM node id for each device, by the N of /dev/capi_simN (-1: first free node reserved with cdm_nodes=)");

static unsigned int device_ns = 100;
module_param(device_ns, uint, 0644);
MODULE_PARM_DESC(device_ns,
		 "Simulated engine time per page touched, in ns (default 100)");

static unsigned int link_penalty_ns = 900;
module_param(link_penalty_ns, uint, 0644);
MODULE_PARM_DESC(link_penalty_ns,
		 "Simulated extra link time per page in system RAM, in ns (default 900)");

static bool memmap_on_device;
module_param(memmap_on_device, bool, 0444);
MODULE_PARM_DESC(memmap_on_device,
		 "Keep the struct pages of device memory on the device: no system RAM spent on them, device latency for them (needs memory_hotplug.memmap_on_memory=1; default off)");

static DEFINE_IDA(capi_sim_ida);
/* Runs capi_sim_hotplug_work(); module exit waits for it to drain. */
static struct workqueue_struct *capi_sim_wq;
/* Serializes node selection and registration between probes. */
static DEFINE_MUTEX(capi_sim_probe_lock);

struct capi_sim {
	struct kref ref;		/* probe, open files, sysfs stores */
	struct pci_dev *pdev;
	struct miscdevice misc;
	char name[20];
	int id;
	int nid;
	u64 start;
	u64 size;

	struct mutex lock;		/* protects the fields below */
	wait_queue_head_t wq;		/* busy cleared or dead set */
	bool busy;			/* an evacuation or online is running */
	bool dead;			/* being removed */

	/* Adds the memory after probe, evacuates it after remove. */
	struct work_struct hotplug_work;
	struct completion online_done;	/* the work's online attempt ran */
	struct completion removed;	/* the work emptied the node */
	int online_rc;
	bool remove_queued;		/* under lock: the work evacuates */
	bool remove_started;		/* under lock: one run evacuates */
	bool ram_res_adopted;		/* see capi_sim_adopt_ram_resource() */
	bool remove_done;		/* under lock */
	bool remove_detached;		/* under lock: the work releases cs */
};

static const char * const capi_sim_state_names[] = {
	[CAPI_SIM_STATE_ONLINE] = "online",
	[CAPI_SIM_STATE_EVACUATING] = "evacuating",
	[CAPI_SIM_STATE_OFFLINE] = "offline",
	[CAPI_SIM_STATE_FAILED] = "failed",
};

static void capi_sim_free(struct kref *ref)
{
	kfree(container_of(ref, struct capi_sim, ref));
}

static void capi_sim_put(struct capi_sim *cs)
{
	kref_put(&cs->ref, capi_sim_free);
}

/* Pages in use on the device's node, as the core counts them. */
static unsigned long capi_sim_used_pages(int nid)
{
	struct cdm_node_stats st;

	cdm_node_stats(nid, &st);
	return st.pages_used;
}

/*
 * The device's state is the core's state of its node, whoever changed it
 * (this driver, nodeN/cdm/evacuate or nodeN/cdm/online): no state machine
 * of our own beside it.  The core also holds this module while the node
 * has memory (cdm_node_ops.owner): rmmod fails with EWOULDBLOCK ("in
 * use") at once, rather than waiting in .remove for every page of every
 * device to move.  Evacuate first, then unload.  Unbind and PCI hot-unplug
 * cannot be refused and still evacuate, in .remove or after it (see
 * capi_sim_hotplug_work()).
 */
static enum capi_sim_state capi_sim_state(struct capi_sim *cs)
{
	switch (cdm_node_state(cs->nid)) {
	case CDM_NODE_ONLINE:
		return CAPI_SIM_STATE_ONLINE;
	case CDM_NODE_EVACUATING:
		return CAPI_SIM_STATE_EVACUATING;
	case CDM_NODE_FAILED:
		return CAPI_SIM_STATE_FAILED;
	default:
		return CAPI_SIM_STATE_OFFLINE;
	}
}

/*
 * Claim the device for one state change asked from user space (sysfs or
 * ioctl).  Takes device_hotplug_lock by trylock first: when it is contended
 * the syscall is restarted rather than sleeping with anything an ACPI eject
 * might wait for.  -ENODEV once the device is being removed.
 */
static int capi_sim_claim(struct capi_sim *cs)
{
	int rc;

	rc = lock_device_hotplug_sysfs();
	if (rc)
		return rc;
	mutex_lock(&cs->lock);
	if (cs->dead) {
		rc = -ENODEV;
	} else if (cs->busy) {
		/* Claims hold device_hotplug_lock, which we hold: cannot be. */
		rc = -EBUSY;
	} else {
		cs->busy = true;
	}
	mutex_unlock(&cs->lock);
	if (rc)
		unlock_device_hotplug();
	return rc;
}

static void capi_sim_unclaim(struct capi_sim *cs)
{
	mutex_lock(&cs->lock);
	cs->busy = false;
	mutex_unlock(&cs->lock);
	wake_up_all(&cs->wq);
	unlock_device_hotplug();
}

/*
 * Move every page off the device and remove its memory: cdm_evacuate(),
 * whose counts are exact.  On failure the core has put the memory back
 * online.
 */
static int capi_sim_evacuate(struct capi_sim *cs, unsigned int timeout_ms,
			     unsigned long *migrated, unsigned long *unmoved)
{
	struct cdm_evacuation res;
	int rc;

	rc = cdm_evacuate(cs->nid, timeout_ms, &res);
	*migrated = res.pages_migrated;
	*unmoved = res.pages_left;
	if (rc == -EALREADY)
		return rc;
	if (rc)
		dev_info(&cs->pdev->dev,
			 "evacuation of node %d failed (%d): %lu pages could not move\n",
			 cs->nid, rc, res.pages_left);
	else
		dev_info(&cs->pdev->dev,
			 "node %d evacuated: %lu pages in %u ms\n",
			 cs->nid, res.pages_migrated, res.duration_ms);
	return rc;
}

/*
 * An evacuation asked from user space (sysfs or ioctl) is the core's, as
 * through nodeN/cdm/evacuate: the core lets one evacuation of the node run
 * at a time and holds device_hotplug_lock for one slice of it at a time,
 * so no claim is taken and .remove never waits for it.  A removal that
 * comes meanwhile finds the node busy: an ACPI eject is refused, unbind's
 * worker retries.  -ENODEV once the device is being removed.
 */
static int capi_sim_user_evacuate(struct capi_sim *cs, unsigned int timeout_ms,
				  unsigned long *migrated,
				  unsigned long *unmoved)
{
	struct pci_dev *pdev = NULL;
	int rc;

	mutex_lock(&cs->lock);
	if (!cs->dead)
		pdev = pci_dev_get(cs->pdev);	/* for the log lines */
	mutex_unlock(&cs->lock);
	if (!pdev)
		return -ENODEV;
	rc = capi_sim_evacuate(cs, timeout_ms, migrated, unmoved);
	pci_dev_put(pdev);
	return rc;
}

/*
 * Hot-add the device memory: our cdm_node_ops.online, which the core
 * calls for nodeN/cdm/online, and probe.  Under device_hotplug_lock.
 */
static int capi_sim_online(struct capi_sim *cs)
{
	int rc;

	if (READ_ONCE(cs->dead))
		return -ENODEV;
	if (capi_sim_state(cs) != CAPI_SIM_STATE_OFFLINE)
		return -EALREADY;

	rc = cdm_add_memory(cs->nid, cs->start, cs->size, CAPI_SIM_RES_NAME,
			    memmap_on_device ? CDM_MEMMAP_ON_DEVICE : 0);
	if (rc == -EOPNOTSUPP && memmap_on_device)
		dev_err(&cs->pdev->dev,
			"memmap_on_device=1 needs memory_hotplug.memmap_on_memory=1 on the kernel command line\n");
	/* What the core could not undo stays added: evacuate to retry. */
	if (rc)
		dev_err(&cs->pdev->dev,
			"adding %#llx-%#llx to node %d failed: %d\n",
			cs->start, cs->start + cs->size - 1, cs->nid, rc);
	return rc;
}

static int capi_sim_node_online(int nid, void *data)
{
	return capi_sim_online(data);
}

static const struct cdm_node_ops capi_sim_node_ops = {
	.owner = THIS_MODULE,
	.online = capi_sim_node_online,
};

/* The core's convention: ms, 0 for CDM_EVACUATE_DEFAULT_MS, bounded. */
static int capi_sim_parse_timeout(const char *buf, unsigned int *timeout_ms)
{
	unsigned int v;

	if (kstrtouint(buf, 0, &v) || v > CDM_EVACUATE_MAX_MS)
		return -EINVAL;
	*timeout_ms = v;
	return 0;
}

/* ---- sysfs ---- */

static ssize_t node_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct capi_sim *cs = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%d\n", cs->nid);
}
static DEVICE_ATTR_RO(node);

static ssize_t size_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct capi_sim *cs = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%llu\n", cs->size);
}
static DEVICE_ATTR_RO(size);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct capi_sim *cs = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", capi_sim_state_names[capi_sim_state(cs)]);
}
static DEVICE_ATTR_RO(state);

static ssize_t stats_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct capi_sim *cs = dev_get_drvdata(dev);
	struct cdm_node_stats st;

	/* The core's counts, for every evacuation of the node. */
	cdm_node_stats(cs->nid, &st);
	return sysfs_emit(buf,
			  "resident_pages %lu\nevacuations %lu\nevacuations_failed %lu\nlast_evacuated_pages %lu\nlast_evacuation_us %llu\n",
			  st.pages_used, st.evacuations,
			  st.evacuations_failed, st.last.pages_migrated,
			  st.last.duration_ms * 1000ULL);
}
static DEVICE_ATTR_RO(stats);

/*
 * Run a state change from a sysfs store.  The kernfs active reference is
 * dropped meanwhile: unbind drains it with the device lock held and must not
 * wait for memory hotplug locks taken here.  Without it nothing keeps the
 * device data or the module around, so take references on both.
 */
static ssize_t capi_sim_store_op(struct device *dev,
				 struct device_attribute *attr, size_t count,
				 bool evacuate, unsigned int timeout_ms)
{
	struct capi_sim *cs = dev_get_drvdata(dev);
	unsigned long migrated, unmoved;
	struct kernfs_node *kn;
	int rc;

	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	kref_get(&cs->ref);
	kn = sysfs_break_active_protection(&dev->kobj, &attr->attr);
	if (!kn) {
		capi_sim_put(cs);
		module_put(THIS_MODULE);
		return -ENODEV;
	}
	if (evacuate) {
		rc = capi_sim_user_evacuate(cs, timeout_ms, &migrated,
					    &unmoved);
	} else {
		rc = capi_sim_claim(cs);
		if (!rc) {
			rc = cdm_node_online(cs->nid);
			capi_sim_unclaim(cs);
		}
	}
	sysfs_unbreak_active_protection(kn);
	capi_sim_put(cs);
	module_put(THIS_MODULE);
	return rc ? rc : count;
}

static ssize_t evacuate_store(struct device *dev,
			      struct device_attribute *attr,
			      const char *buf, size_t count)
{
	unsigned int timeout_ms;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (capi_sim_parse_timeout(buf, &timeout_ms))
		return -EINVAL;
	return capi_sim_store_op(dev, attr, count, true, timeout_ms);
}
static DEVICE_ATTR_WO(evacuate);

static ssize_t online_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	unsigned int v;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (kstrtouint(buf, 10, &v) || v != 1)
		return -EINVAL;
	return capi_sim_store_op(dev, attr, count, false, 0);
}
static DEVICE_ATTR_WO(online);

static struct attribute *capi_sim_attrs[] = {
	&dev_attr_node.attr,
	&dev_attr_size.attr,
	&dev_attr_state.attr,
	&dev_attr_evacuate.attr,
	&dev_attr_online.attr,
	&dev_attr_stats.attr,
	NULL,
};
ATTRIBUTE_GROUPS(capi_sim);

/* ---- the compute engine ---- */

struct capi_sim_buf {
	unsigned long addr;		/* user address of byte 0 */
	unsigned long next_pfn_idx;	/* first user page not yet counted */
	struct page **pages;
	int nr;				/* pages pinned for this chunk */
};

/* Short-term pin: migration of these pages fails until they are unpinned. */
static int capi_sim_pin(struct capi_sim_buf *b, u64 off, u64 len,
			unsigned int gup_flags)
{
	unsigned long first = (b->addr + off) >> PAGE_SHIFT;
	unsigned long last = (b->addr + off + len - 1) >> PAGE_SHIFT;
	int want = last - first + 1;
	int got;

	got = pin_user_pages_fast(first << PAGE_SHIFT, want, gup_flags,
				  b->pages);
	if (got < 0)
		return got == -EOVERFLOW ? -EFAULT : got;
	if (got < want) {
		unpin_user_pages(b->pages, got);
		return -EFAULT;
	}
	b->nr = got;
	return 0;
}

/* Count each user page once, even where a chunk boundary splits it. */
static void capi_sim_count(struct capi_sim_buf *b, u64 off, int nid,
			   u64 *pages, u64 *device_pages)
{
	unsigned long first = (b->addr + off) >> PAGE_SHIFT;
	int i;

	for (i = 0; i < b->nr; i++) {
		if (first + i < b->next_pfn_idx)
			continue;
		(*pages)++;
		if (page_to_nid(b->pages[i]) == nid)
			(*device_pages)++;
	}
	b->next_pfn_idx = first + b->nr;
}

static void capi_sim_exec(struct capi_sim_run *run, struct capi_sim_buf *src,
			  struct capi_sim_buf *dst, u64 off, u64 len)
{
	unsigned long s0 = (src->addr + off) >> PAGE_SHIFT;
	unsigned long d0 = (dst->addr + off) >> PAGE_SHIFT;
	u64 done = 0;

	while (done < len) {
		unsigned long sa = src->addr + off + done;
		unsigned long da = dst->addr + off + done;
		size_t n = min_t(u64, len - done, PAGE_SIZE);
		u8 *s = NULL, *d = NULL;
		size_t i;

		if (src->pages)
			n = min_t(size_t, n, PAGE_SIZE - offset_in_page(sa));
		if (dst->pages)
			n = min_t(size_t, n, PAGE_SIZE - offset_in_page(da));
		if (src->pages)
			s = (u8 *)kmap_local_page(src->pages[(sa >> PAGE_SHIFT) - s0]) +
			    offset_in_page(sa);
		if (dst->pages)
			d = (u8 *)kmap_local_page(dst->pages[(da >> PAGE_SHIFT) - d0]) +
			    offset_in_page(da);

		switch (run->op) {
		case CAPI_SIM_OP_FILL:
			memset(d, run->pattern & 0xff, n);
			break;
		case CAPI_SIM_OP_COPY:
			memmove(d, s, n);
			break;
		case CAPI_SIM_OP_XOR:
			for (i = 0; i < n; i++)
				d[i] ^= s[i];
			break;
		case CAPI_SIM_OP_CRC32C:
			run->crc = __crc32c_le(run->crc, s, n);
			break;
		}

		if (d)
			kunmap_local(d);
		if (s)
			kunmap_local(s);
		done += n;
	}
}

static int capi_sim_check_range(u64 addr, u64 len)
{
	u64 end;

	if (check_add_overflow(addr, len, &end))
		return -EINVAL;
	if (addr != (unsigned long)addr || end != (unsigned long)end)
		return -EFAULT;
	return 0;
}

static int capi_sim_run(struct capi_sim *cs, struct capi_sim_run *run)
{
	const u64 chunk = (CAPI_SIM_CHUNK_PAGES - 1) * PAGE_SIZE;
	bool use_src = run->op != CAPI_SIM_OP_FILL;
	bool use_dst = run->op != CAPI_SIM_OP_CRC32C;
	struct capi_sim_buf src = { .addr = run->src };
	struct capi_sim_buf dst = { .addr = run->dst };
	struct page **pages;
	u64 off, n;
	int rc = 0;

	if (run->op >= CAPI_SIM_OP_MAX || run->reserved ||
	    !run->len || run->len > CAPI_SIM_RUN_MAX_LEN)
		return -EINVAL;
	if (use_src) {
		rc = capi_sim_check_range(run->src, run->len);
		if (rc)
			return rc;
	}
	if (use_dst) {
		rc = capi_sim_check_range(run->dst, run->len);
		if (rc)
			return rc;
	}
	/* Like a DMA engine: src and dst are identical or disjoint. */
	if (use_src && use_dst && run->src != run->dst &&
	    run->src < run->dst + run->len && run->dst < run->src + run->len)
		return -EINVAL;

	pages = kmalloc_array(2 * CAPI_SIM_CHUNK_PAGES, sizeof(*pages),
			      GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (use_src)
		src.pages = pages;
	if (use_dst)
		dst.pages = pages + CAPI_SIM_CHUNK_PAGES;

	run->pages = 0;
	run->device_pages = 0;
	run->crc = ~0U;
	for (off = 0; off < run->len; off += n) {
		n = min(run->len - off, chunk);

		if (use_src) {
			rc = capi_sim_pin(&src, off, n, 0);
			if (rc)
				break;
		}
		if (use_dst) {
			rc = capi_sim_pin(&dst, off, n, FOLL_WRITE);
			if (rc) {
				if (use_src)
					unpin_user_pages(src.pages, src.nr);
				break;
			}
		}
		if (use_src)
			capi_sim_count(&src, off, cs->nid, &run->pages,
				       &run->device_pages);
		if (use_dst)
			capi_sim_count(&dst, off, cs->nid, &run->pages,
				       &run->device_pages);

		capi_sim_exec(run, &src, &dst, off, n);

		if (use_dst)
			unpin_user_pages_dirty_lock(dst.pages, dst.nr, true);
		if (use_src)
			unpin_user_pages(src.pages, src.nr);

		if (fatal_signal_pending(current)) {
			rc = -EINTR;
			break;
		}
		cond_resched();
	}
	kfree(pages);

	run->crc ^= ~0U;
	if (run->op != CAPI_SIM_OP_CRC32C)
		run->crc = 0;
	run->sim_ns = run->pages * READ_ONCE(device_ns) +
		(run->pages - run->device_pages) * READ_ONCE(link_penalty_ns);
	return rc;
}

/* ---- /dev/capi_simN ---- */

static int capi_sim_open(struct inode *inode, struct file *file)
{
	struct capi_sim *cs = container_of(file->private_data,
					   struct capi_sim, misc);

	/* misc_open() holds misc_mtx: remove cannot free cs meanwhile. */
	kref_get(&cs->ref);
	file->private_data = cs;
	return 0;
}

static int capi_sim_release(struct inode *inode, struct file *file)
{
	capi_sim_put(file->private_data);
	return 0;
}

static long capi_sim_ioctl_info(struct capi_sim *cs, void __user *uarg)
{
	struct capi_sim_info info = {
		.version = CAPI_SIM_UAPI_VERSION,
		.node = cs->nid,
		.size = cs->size,
		.link_penalty_ns = READ_ONCE(link_penalty_ns),
		.resident_pages = capi_sim_used_pages(cs->nid),
	};
	struct cdm_node_stats st;

	cdm_node_stats(cs->nid, &st);
	info.state = capi_sim_state(cs);
	info.evacuations = st.evacuations;
	info.evacuations_failed = st.evacuations_failed;

	if (copy_to_user(uarg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long capi_sim_ioctl_run(struct capi_sim *cs, void __user *uarg)
{
	struct capi_sim_run run;
	int rc;

	if (copy_from_user(&run, uarg, sizeof(run)))
		return -EFAULT;
	rc = capi_sim_run(cs, &run);
	if (rc)
		return rc;
	if (copy_to_user(uarg, &run, sizeof(run)))
		return -EFAULT;
	return 0;
}

static long capi_sim_ioctl_evacuate(struct capi_sim *cs, void __user *uarg)
{
	struct capi_sim_evacuate ev;
	unsigned long migrated, unmoved;
	int rc;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&ev, uarg, sizeof(ev)))
		return -EFAULT;
	if (ev.reserved || ev.timeout_ms > CDM_EVACUATE_MAX_MS)
		return -EINVAL;

	rc = capi_sim_user_evacuate(cs, ev.timeout_ms, &migrated, &unmoved);
	if (rc == -EALREADY || rc == -ENODEV)
		return rc;

	/* Report the counts on -EBUSY too: they say what was pinned. */
	ev.pages_migrated = migrated;
	ev.pages_unmoved = unmoved;
	if (copy_to_user(uarg, &ev, sizeof(ev)))
		return -EFAULT;
	return rc;
}

static long capi_sim_ioctl_online(struct capi_sim *cs)
{
	int rc;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	rc = capi_sim_claim(cs);
	if (rc)
		return rc;
	rc = cdm_node_online(cs->nid);
	capi_sim_unclaim(cs);
	return rc;
}

static long capi_sim_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct capi_sim *cs = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case CAPI_SIM_IOC_INFO:
	case CAPI_SIM_IOC_RUN:
	case CAPI_SIM_IOC_EVACUATE:
	case CAPI_SIM_IOC_ONLINE:
		break;
	default:
		return -ENOTTY;
	}
	if (READ_ONCE(cs->dead))
		return -ENODEV;

	switch (cmd) {
	case CAPI_SIM_IOC_INFO:
		return capi_sim_ioctl_info(cs, uarg);
	case CAPI_SIM_IOC_RUN:
		return capi_sim_ioctl_run(cs, uarg);
	case CAPI_SIM_IOC_EVACUATE:
		return capi_sim_ioctl_evacuate(cs, uarg);
	default:
		return capi_sim_ioctl_online(cs);
	}
}

static const struct file_operations capi_sim_fops = {
	.owner = THIS_MODULE,
	.open = capi_sim_open,
	.release = capi_sim_release,
	.unlocked_ioctl = capi_sim_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/* ---- PCI driver ---- */

/*
 * A PCI remove (sysfs "remove", a native hot-unplug) releases the BAR once
 * .remove has returned.  The System RAM resource of memory still online is
 * the BAR's child and leaves iomem_resource with it, after which
 * offline_pages() would see a hole.  The resource of the range, in the
 * released BAR's child list (private to us from then on: the pci_dev
 * reference the removal holds keeps it valid), or NULL.
 */
static struct resource *capi_sim_orphaned_ram_resource(struct capi_sim *cs)
{
	struct resource *bar = &cs->pdev->resource[CAPI_SIM_BAR];
	struct resource *res;

	/* Cleared under resource_lock by release_resource(), never set again. */
	if (cs->ram_res_adopted || READ_ONCE(bar->parent))
		return NULL;
	for (res = bar->child; res; res = res->sibling)
		if (res->parent == bar && res->start == cs->start)
			return res;
	return NULL;
}

/*
 * Put an orphaned RAM resource back into the tree on its own, while the
 * memory is there to be removed.  Under device_hotplug_lock, which orders
 * this against any evacuation's removal of the memory.
 */
static void capi_sim_adopt_ram_resource(struct capi_sim *cs)
{
	struct resource *res;

	if (cdm_node_state(cs->nid) == CDM_NODE_OFFLINE)
		return;
	res = capi_sim_orphaned_ram_resource(cs);
	if (!res)
		return;
	if (insert_resource(&iomem_resource, res)) {
		dev_err(&cs->pdev->dev, "cannot re-insert %pR\n", res);
		return;
	}
	cs->ram_res_adopted = true;
	dev_info(&cs->pdev->dev, "BAR%d released: %pR kept\n", CAPI_SIM_BAR,
		 res);
}

/*
 * The BAR was released during an evacuation attempt that went on to remove
 * the memory: __remove_memory() did not find the orphaned resource to free.
 */
static void capi_sim_free_orphaned_ram_resource(struct capi_sim *cs)
{
	struct resource *res = capi_sim_orphaned_ram_resource(cs);

	if (!res)
		return;
	release_resource(res);
	kfree(res);
}

/*
 * One evacuation attempt of a removal; returns 0 once the node is empty.
 * Without device_hotplug_lock held (the worker) the lock is taken around
 * the resource bookkeeping only: the core's evacuation takes it one slice
 * at a time.
 */
static int capi_sim_remove_evacuate(struct capi_sim *cs,
				    unsigned int timeout_ms,
				    unsigned long *unmoved)
{
	bool locked = device_hotplug_lock_held();
	unsigned long migrated;
	int rc;

	if (!locked)
		lock_device_hotplug();
	capi_sim_adopt_ram_resource(cs);
	if (!locked)
		unlock_device_hotplug();
	rc = capi_sim_evacuate(cs, timeout_ms, &migrated, unmoved);
	if (rc && rc != -EALREADY)
		return rc;
	if (!locked)
		lock_device_hotplug();
	capi_sim_free_orphaned_ram_resource(cs);
	if (!locked)
		unlock_device_hotplug();
	return 0;
}

/*
 * Evacuate until the node is empty: the memory must be gone before the
 * device is.  The first attempt gets the default timeout, later ones 1 s
 * each, with a growing pause while pages stay pinned.  Runs in the worker,
 * which holds no lock: the core holds device_hotplug_lock for one slice of
 * an attempt at a time, so memory hotplug elsewhere goes on meanwhile.
 */
static void capi_sim_evacuate_loop(struct capi_sim *cs)
{
	unsigned int timeout_ms = 0;	/* the core's default */
	unsigned int backoff = 10;
	unsigned long unmoved;
	int rc;

	for (;;) {
		rc = capi_sim_remove_evacuate(cs, timeout_ms, &unmoved);
		if (!rc)
			return;
		/* Each attempt keeps what it moved: retry in short steps. */
		timeout_ms = CAPI_SIM_REMOVE_TRY_MS;
		dev_warn(&cs->pdev->dev,
			 "removal waits for node %d: evacuation failed (%d), %lu pages still there, retrying in %u ms\n",
			 cs->nid, rc, unmoved, backoff);
		msleep(backoff);
		backoff = min(backoff * 2, CAPI_SIM_REMOVE_BACKOFF_MAX_MS);
	}
}

/* Give back what probe took, once the node has no memory. */
static void capi_sim_release_device(struct capi_sim *cs)
{
	struct pci_dev *pdev = cs->pdev;

	cdm_node_unregister(cs->nid);
	pci_disable_device(pdev);
	ida_free(&capi_sim_ida, cs->id);
	capi_sim_put(cs);
	pci_dev_put(pdev);
	module_put(THIS_MODULE);
}

/*
 * Probe and remove can run with pci_rescan_remove_lock held (sysfs "rescan"
 * and "remove", native PCI hot-plug), while an ACPI hot-plug event holds
 * device_hotplug_lock and acpi_scan_lock and then takes
 * pci_rescan_remove_lock.  Taking device_hotplug_lock in probe or remove
 * would close that cycle, so unless the caller holds it already (an ACPI
 * hot-add or eject) the memory is added, or evacuated, by this work, which
 * takes device_hotplug_lock holding nothing else.  Probe and remove wait
 * for it at most CAPI_SIM_HOTPLUG_WAIT_MS and then return: a wait without a
 * bound would be the same deadlock, hidden from lockdep.  A removal that
 * did not finish in time goes on here, with the PCI device, its BAR
 * decoding and the module held, until every page has moved.  The work item
 * does not run concurrently with itself: an online still running when the
 * device is removed is followed by the removal.
 */
static void capi_sim_hotplug_work(struct work_struct *work)
{
	struct capi_sim *cs = container_of(work, struct capi_sim,
					   hotplug_work);
	bool queued, remove, detached;

	/* Queued again while running: one run evacuates, none twice. */
	mutex_lock(&cs->lock);
	queued = cs->remove_queued;
	remove = queued && !cs->remove_started;
	cs->remove_started |= remove;
	mutex_unlock(&cs->lock);
	if (queued && !remove) {
		capi_sim_put(cs);
		return;
	}
	if (!remove) {
		lock_device_hotplug();
		/* An ACPI eject may have come first, with the lock held. */
		cs->online_rc = READ_ONCE(cs->dead) ? -ENODEV :
			capi_sim_online(cs);
		unlock_device_hotplug();
		complete(&cs->online_done);
		capi_sim_put(cs);
		return;
	}
	capi_sim_evacuate_loop(cs);
	mutex_lock(&cs->lock);
	cs->remove_done = true;
	detached = cs->remove_detached;
	mutex_unlock(&cs->lock);
	complete(&cs->removed);
	if (detached) {
		dev_info(&cs->pdev->dev, "node %d evacuated: removal done\n",
			 cs->nid);
		capi_sim_release_device(cs);
	}
	capi_sim_put(cs);
}

/* The work holds a reference to cs while it is queued or running. */
static void capi_sim_queue_hotplug(struct capi_sim *cs)
{
	kref_get(&cs->ref);
	if (!queue_work(capi_sim_wq, &cs->hotplug_work))
		capi_sim_put(cs);
}

/*
 * Hot-add the device memory from probe; see capi_sim_hotplug_work().
 * -EALREADY is success: once registered, the node's memory may have been
 * brought back through nodeN/cdm/online before we got to it.
 */
static int capi_sim_probe_online(struct capi_sim *cs)
{
	unsigned long timeout = msecs_to_jiffies(CAPI_SIM_HOTPLUG_WAIT_MS);
	int rc;

	if (device_hotplug_lock_held()) {
		rc = capi_sim_online(cs);
		return rc == -EALREADY ? 0 : rc;
	}
	capi_sim_queue_hotplug(cs);
	if (wait_for_completion_timeout(&cs->online_done, timeout))
		return cs->online_rc == -EALREADY ? 0 : cs->online_rc;
	dev_info(&cs->pdev->dev,
		 "hot-add not done in %d ms (device_hotplug_lock busy, or a large device): node %d goes online later\n",
		 CAPI_SIM_HOTPLUG_WAIT_MS, cs->nid);
	return 0;
}

/*
 * Evacuate the device and release it, from remove or a failed probe, in
 * bounded time; see capi_sim_hotplug_work().  When the caller holds
 * device_hotplug_lock the device is going whatever we do: an ACPI eject,
 * which cdm_device_evacuate() let through only once the node was empty
 * (it refuses the eject otherwise), or a device found gone.  Then one
 * attempt is made, and what it could not move is left to the worker,
 * which can only start once the caller lets the lock go: never a wait
 * without a bound under the global lock.
 */
static void capi_sim_teardown(struct capi_sim *cs)
{
	struct pci_dev *pdev = cs->pdev;
	bool locked = device_hotplug_lock_held();
	int nid = cs->nid;	/* cs may be gone once the worker has it */
	unsigned long unmoved;
	bool done;

	mutex_lock(&cs->lock);
	cs->dead = true;
	mutex_unlock(&cs->lock);
	wake_up_all(&cs->wq);
	/* Let a running online finish; then it is ours. */
	wait_event(cs->wq, !READ_ONCE(cs->busy));

	/* Held until capi_sim_release_device(): the BAR outlives the memory. */
	pci_dev_get(pdev);
	__module_get(THIS_MODULE);
	if (locked) {
		if (!capi_sim_remove_evacuate(cs, 0, &unmoved)) {
			capi_sim_release_device(cs);
			return;
		}
		dev_err(&pdev->dev,
			"removed with %lu pages of node %d in use: their contents go with the device\n",
			unmoved, cs->nid);
	}
	mutex_lock(&cs->lock);
	cs->remove_queued = true;
	mutex_unlock(&cs->lock);
	capi_sim_queue_hotplug(cs);
	if (!locked)
		wait_for_completion_timeout(&cs->removed,
					    msecs_to_jiffies(CAPI_SIM_HOTPLUG_WAIT_MS));
	mutex_lock(&cs->lock);
	done = cs->remove_done;
	cs->remove_detached = !done;
	mutex_unlock(&cs->lock);
	if (done) {
		capi_sim_release_device(cs);
		return;
	}
	dev_warn(&pdev->dev,
		 "node %d still has %lu pages in use: the removal goes on in the background, holding the device until they have moved\n",
		 nid, capi_sim_used_pages(nid));
}

static int capi_sim_pick_node(struct capi_sim *cs)
{
	struct device *dev = &cs->pdev->dev;
	int nid = NUMA_NO_NODE;

	if (cs->id < nr_nodes)
		nid = nodes[cs->id];
	if (nid == NUMA_NO_NODE) {
		nid = cdm_reserved_node();
		if (nid == NUMA_NO_NODE) {
			dev_err(dev, "no free CDM node: boot with cdm_nodes= or load with nodes=\n");
			return -ENODEV;
		}
	} else if (nid < 0 || nid >= MAX_NUMNODES || !node_possible(nid)) {
		dev_err(dev, "nodes=%d is not a possible node\n", nid);
		return -EINVAL;
	}
	if (node_state(nid, N_MEMORY)) {
		dev_err(dev, "node %d already has memory\n", nid);
		return -EBUSY;
	}
	return nid;
}

static int capi_sim_check_bar(struct capi_sim *cs)
{
	struct pci_dev *pdev = cs->pdev;
	u64 block = memory_block_size_bytes();

	if (!(pci_resource_flags(pdev, CAPI_SIM_BAR) & IORESOURCE_MEM) ||
	    !pci_resource_len(pdev, CAPI_SIM_BAR) ||
	    !pdev->resource[CAPI_SIM_BAR].parent) {
		dev_err(&pdev->dev, "BAR%d is not an assigned memory BAR\n",
			CAPI_SIM_BAR);
		return -ENODEV;
	}
	cs->start = pci_resource_start(pdev, CAPI_SIM_BAR);
	cs->size = pci_resource_len(pdev, CAPI_SIM_BAR);
	if (cs->size < block) {
		dev_err(&pdev->dev,
			"BAR%d: %llu bytes is smaller than one memory block (%llu bytes)\n",
			CAPI_SIM_BAR, cs->size, block);
		return -EINVAL;
	}
	if (!IS_ALIGNED(cs->start, block) || !IS_ALIGNED(cs->size, block)) {
		dev_err(&pdev->dev,
			"BAR%d %#llx+%#llx is not aligned to the memory block size %#llx\n",
			CAPI_SIM_BAR, cs->start, cs->size, block);
		return -EINVAL;
	}
	return 0;
}

static int capi_sim_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct capi_sim *cs;
	int rc, nid;

	cs = kzalloc(sizeof(*cs), GFP_KERNEL);
	if (!cs)
		return -ENOMEM;
	kref_init(&cs->ref);
	mutex_init(&cs->lock);
	init_waitqueue_head(&cs->wq);
	INIT_WORK(&cs->hotplug_work, capi_sim_hotplug_work);
	init_completion(&cs->online_done);
	init_completion(&cs->removed);
	cs->pdev = pdev;
	cs->nid = NUMA_NO_NODE;

	rc = ida_alloc_max(&capi_sim_ida, CAPI_SIM_MAX_DEVICES - 1, GFP_KERNEL);
	if (rc < 0)
		goto err_free;
	cs->id = rc;
	snprintf(cs->name, sizeof(cs->name), "capi_sim%d", cs->id);

	rc = pci_enable_device_mem(pdev);
	if (rc)
		goto err_ida;
	rc = capi_sim_check_bar(cs);
	if (rc)
		goto err_disable;

	mutex_lock(&capi_sim_probe_lock);
	nid = capi_sim_pick_node(cs);
	rc = nid < 0 ? nid : cdm_node_register(nid, &pdev->dev,
					       &capi_sim_node_ops, cs);
	mutex_unlock(&capi_sim_probe_lock);
	if (rc) {
		if (nid >= 0)
			dev_err(&pdev->dev, "cannot register node %d as CDM node: %d\n",
				nid, rc);
		goto err_disable;
	}
	cs->nid = nid;

	rc = capi_sim_probe_online(cs);
	if (rc)
		goto err_teardown;

	cs->misc.minor = MISC_DYNAMIC_MINOR;
	cs->misc.name = cs->name;
	cs->misc.fops = &capi_sim_fops;
	cs->misc.parent = &pdev->dev;
	cs->misc.mode = 0666;
	rc = misc_register(&cs->misc);
	if (rc)
		goto err_teardown;

	pci_set_drvdata(pdev, cs);
	dev_info(&pdev->dev, "%s: node %d, %llu MiB at %#llx\n", cs->name,
		 cs->nid, cs->size >> 20, cs->start);
	return 0;

err_teardown:
	/* Releases the node, the device, the id and cs. */
	capi_sim_teardown(cs);
	return rc;
err_disable:
	pci_disable_device(pdev);
err_ida:
	ida_free(&capi_sim_ida, cs->id);
err_free:
	capi_sim_put(cs);
	return rc;
}

static void capi_sim_remove(struct pci_dev *pdev)
{
	struct capi_sim *cs = pci_get_drvdata(pdev);

	/* No new opens; open files see -ENODEV from now on. */
	misc_deregister(&cs->misc);
	capi_sim_teardown(cs);
}

static const struct pci_device_id capi_sim_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, capi_sim_ids);

static struct pci_driver capi_sim_driver = {
	.name = "capi_sim",
	.id_table = capi_sim_ids,
	.probe = capi_sim_probe,
	.remove = capi_sim_remove,
	.dev_groups = capi_sim_groups,
};

static int __init capi_sim_init(void)
{
	int rc;

	capi_sim_wq = alloc_workqueue("capi_sim", WQ_UNBOUND, 0);
	if (!capi_sim_wq)
		return -ENOMEM;
	rc = pci_register_driver(&capi_sim_driver);
	if (rc)
		destroy_workqueue(capi_sim_wq);
	return rc;
}
module_init(capi_sim_init);

static void __exit capi_sim_exit(void)
{
	pci_unregister_driver(&capi_sim_driver);
	/* A background removal drops its module reference while it runs. */
	destroy_workqueue(capi_sim_wq);
}
module_exit(capi_sim_exit);

MODULE_DESCRIPTION("Simulated coherent accelerator with a CDM memory node");
MODULE_LICENSE("GPL");
