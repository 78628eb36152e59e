// SPDX-License-Identifier: GPL-2.0
/*
 * bench_hotadd - the baseline `make bench` compares evacuation against.
 *
 * Binds to the first ivshmem-plain PCI device (the simulated accelerator's
 * hardware) and hot-adds its BAR2 as ordinary driver-managed System RAM on
 * node @nid, the way dax/kmem adds memory: add_memory_driver_managed(), with
 * the blocks onlined by the kernel's auto-online policy (the bench sets
 * /sys/devices/system/memory/auto_online_blocks to online_movable first).
 * It builds against a stock 6.12, which has no CDM nodes.
 *
 * sysfs, under the PCI device, named as capi_sim's so one guest program
 * drives both:
 *   evacuate (0200)  any write: offline_and_remove_memory() of the BAR
 *   online   (0200)  any write: add the BAR again
 *   node     (0444)  the node the memory goes to
 */
#include <linux/device.h>
#include <linux/memory_hotplug.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>

#define BENCH_BAR	2
#define BENCH_RES_NAME	"System RAM (bench_hotadd)"

static int nid = 1;
module_param(nid, int, 0444);
MODULE_PARM_DESC(nid, "node the device memory is added to (default 1)");

struct bench_dev {
	struct mutex lock;	/* serializes add and remove */
	u64 start, size;
	bool added;
};

/* One device only: the bench compares one node's evacuation. */
static atomic_t bound = ATOMIC_INIT(0);

static int bench_add(struct bench_dev *bd)
{
	int rc;

	if (bd->added)
		return -EALREADY;
	rc = add_memory_driver_managed(nid, bd->start, bd->size, BENCH_RES_NAME, MHP_NONE);
	if (!rc)
		bd->added = true;
	return rc;
}

static int bench_remove_memory(struct bench_dev *bd)
{
	int rc;

	if (!bd->added)
		return -EALREADY;
	rc = offline_and_remove_memory(bd->start, bd->size);
	if (!rc)
		bd->added = false;
	return rc;
}

/* A store that runs @op on the device under its lock. */
static ssize_t bench_store(struct device *dev, size_t count,
			   int (*op)(struct bench_dev *bd))
{
	struct bench_dev *bd = dev_get_drvdata(dev);
	int rc;

	mutex_lock(&bd->lock);
	rc = op(bd);
	mutex_unlock(&bd->lock);
	return rc ? rc : count;
}

static ssize_t evacuate_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	return bench_store(dev, count, bench_remove_memory);
}
static DEVICE_ATTR_WO(evacuate);

static ssize_t online_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	return bench_store(dev, count, bench_add);
}
static DEVICE_ATTR_WO(online);

static ssize_t node_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", nid);
}
static DEVICE_ATTR_RO(node);

static struct attribute *bench_attrs[] = {
	&dev_attr_evacuate.attr,
	&dev_attr_online.attr,
	&dev_attr_node.attr,
	NULL,
};
ATTRIBUTE_GROUPS(bench);

static int bench_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct bench_dev *bd;
	int rc;

	if (atomic_xchg(&bound, 1))
		return -ENODEV;
	bd = devm_kzalloc(&pdev->dev, sizeof(*bd), GFP_KERNEL);
	if (!bd)
		return -ENOMEM;
	mutex_init(&bd->lock);
	rc = pci_enable_device_mem(pdev);
	if (rc)
		return rc;
	bd->start = pci_resource_start(pdev, BENCH_BAR);
	bd->size = pci_resource_len(pdev, BENCH_BAR);
	pci_set_drvdata(pdev, bd);
	rc = bench_add(bd);
	if (rc) {
		dev_err(&pdev->dev, "adding [mem %#llx-%#llx] to node %d failed: %d\n",
			bd->start, bd->start + bd->size - 1, nid, rc);
		pci_disable_device(pdev);
		atomic_set(&bound, 0);
		return rc;
	}
	dev_info(&pdev->dev, "%llu MiB on node %d\n", bd->size >> 20, nid);
	return 0;
}

static void bench_pci_remove(struct pci_dev *pdev)
{
	struct bench_dev *bd = pci_get_drvdata(pdev);

	mutex_lock(&bd->lock);
	if (bd->added && bench_remove_memory(bd))
		dev_err(&pdev->dev, "memory still in use; leaving it added\n");
	mutex_unlock(&bd->lock);
	pci_disable_device(pdev);
	atomic_set(&bound, 0);
}

static const struct pci_device_id bench_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, bench_ids);

static struct pci_driver bench_driver = {
	.name = "bench_hotadd",
	.id_table = bench_ids,
	.probe = bench_probe,
	.remove = bench_pci_remove,
	.dev_groups = bench_groups,
};
module_pci_driver(bench_driver);

MODULE_DESCRIPTION("make bench: ivshmem BAR as ordinary hot-added memory");
MODULE_LICENSE("GPL");
