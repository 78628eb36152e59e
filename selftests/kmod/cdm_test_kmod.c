// SPDX-License-Identifier: GPL-2.0
/*
 * cdm_test_kmod - test helper for the cdm selftests (not for production).
 *
 * debugfs interface in /sys/kernel/debug/cdm_test/:
 *
 *  alloc  write "<nid> <order>": cdm_alloc_pages(nid, GFP_HIGHUSER_MOVABLE |
 *         __GFP_NOWARN, order), the documented way for a device driver to
 *         allocate on its node; the page is kept until "free" is written.
 *         The write fails with -ENOMEM when the allocation fails.
 *         read: "<node of last page> <pages held>\n" ("-1 0" if none).
 *
 *  implicit  write "thisnode <order>" or "fallback <order>": what a kernel
 *         path nobody audited for CDM does - for each node with memory,
 *         alloc_pages_node(nid, GFP_HIGHUSER_MOVABLE [| __GFP_THISNODE],
 *         order), without the CDM helper and without __GFP_NOWARN; each
 *         page is freed at once.  read: one "<nid> <node of the page>" line
 *         per node of the last run (-1: no page).
 *
 *  pin    write "<addr> <npages> [longterm]": pin_user_pages_fast(FOLL_WRITE
 *         [| FOLL_LONGTERM]) on the writer's own pages, held until "unpin"
 *         is written (or the module is unloaded).  A plain pin models an
 *         I/O in flight that makes evacuation fail with -EBUSY; a long-term
 *         pin (RDMA, VFIO, io_uring fixed buffers) refuses ZONE_MOVABLE
 *         pages and migrates them to other memory first.
 *         read: "<pages pinned> <node of first pinned page>\n".
 */
#include <linux/cdm.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#define CDM_TEST_MAX_PIN	1024

struct held_page {
	struct list_head list;
	struct page *page;
	unsigned int order;
};

static DEFINE_MUTEX(cdm_test_lock);
static LIST_HEAD(held_pages);
static unsigned long held_nr;
static int last_nid = NUMA_NO_NODE;
/* implicit: per node of the last run, the node of the page it got */
static int implicit_got[MAX_NUMNODES];
static nodemask_t implicit_nodes;
static struct page **pinned;
static long pinned_nr;
static struct dentry *cdm_test_dir;

static void free_held(void)
{
	struct held_page *h, *tmp;

	list_for_each_entry_safe(h, tmp, &held_pages, list) {
		__free_pages(h->page, h->order);
		list_del(&h->list);
		kfree(h);
	}
	held_nr = 0;
	last_nid = NUMA_NO_NODE;
}

static void unpin_all(void)
{
	if (pinned_nr > 0)
		unpin_user_pages(pinned, pinned_nr);
	pinned_nr = 0;
}

static ssize_t get_cmd(const char __user *ubuf, size_t len, char *buf,
		       size_t size)
{
	if (!len || len >= size)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	return 0;
}

static ssize_t alloc_write(struct file *file, const char __user *ubuf,
			   size_t len, loff_t *ppos)
{
	struct held_page *h;
	unsigned int order;
	char buf[64];
	ssize_t ret;
	int nid;

	ret = get_cmd(ubuf, len, buf, sizeof(buf));
	if (ret)
		return ret;

	mutex_lock(&cdm_test_lock);
	if (sysfs_streq(buf, "free")) {
		free_held();
		ret = len;
		goto out;
	}
	ret = -EINVAL;
	if (sscanf(buf, "%d %u", &nid, &order) != 2 || order > MAX_PAGE_ORDER ||
	    nid < 0 || nid >= MAX_NUMNODES || !node_online(nid))
		goto out;
	ret = -ENOMEM;
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		goto out;
	h->order = order;
	h->page = cdm_alloc_pages(nid, GFP_HIGHUSER_MOVABLE | __GFP_NOWARN,
				  order);
	if (!h->page) {
		kfree(h);
		goto out;
	}
	list_add(&h->list, &held_pages);
	held_nr += 1UL << order;
	last_nid = page_to_nid(h->page);
	ret = len;
out:
	mutex_unlock(&cdm_test_lock);
	return ret;
}

static ssize_t alloc_read(struct file *file, char __user *ubuf, size_t len,
			  loff_t *ppos)
{
	char buf[64];
	int n;

	mutex_lock(&cdm_test_lock);
	n = scnprintf(buf, sizeof(buf), "%d %lu\n", last_nid, held_nr);
	mutex_unlock(&cdm_test_lock);
	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static ssize_t implicit_write(struct file *file, const char __user *ubuf,
			      size_t len, loff_t *ppos)
{
	unsigned int order;
	char buf[64], mode[16];
	struct page *page;
	gfp_t gfp;
	ssize_t ret;
	int nid;

	ret = get_cmd(ubuf, len, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%15s %u", mode, &order) != 2 || order > MAX_PAGE_ORDER)
		return -EINVAL;
	if (!strcmp(mode, "thisnode"))
		gfp = GFP_HIGHUSER_MOVABLE | __GFP_THISNODE;
	else if (!strcmp(mode, "fallback"))
		gfp = GFP_HIGHUSER_MOVABLE;
	else
		return -EINVAL;

	mutex_lock(&cdm_test_lock);
	implicit_nodes = node_states[N_MEMORY];
	for_each_node_mask(nid, implicit_nodes) {
		page = alloc_pages_node(nid, gfp, order);
		implicit_got[nid] = page ? page_to_nid(page) : NUMA_NO_NODE;
		if (page)
			__free_pages(page, order);
	}
	mutex_unlock(&cdm_test_lock);
	return len;
}

static ssize_t implicit_read(struct file *file, char __user *ubuf,
			     size_t len, loff_t *ppos)
{
	size_t size = 16 * MAX_NUMNODES;
	ssize_t ret;
	char *buf;
	int nid, n = 0;

	buf = kmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&cdm_test_lock);
	for_each_node_mask(nid, implicit_nodes)
		n += scnprintf(buf + n, size - n, "%d %d\n", nid,
			       implicit_got[nid]);
	mutex_unlock(&cdm_test_lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, buf, n);
	kfree(buf);
	return ret;
}

static ssize_t pin_write(struct file *file, const char __user *ubuf,
			 size_t len, loff_t *ppos)
{
	unsigned int gup = FOLL_WRITE;
	unsigned long addr;
	char buf[64], how[16] = "";
	ssize_t ret;
	long nr, got;
	int n;

	ret = get_cmd(ubuf, len, buf, sizeof(buf));
	if (ret)
		return ret;

	mutex_lock(&cdm_test_lock);
	if (sysfs_streq(buf, "unpin")) {
		unpin_all();
		ret = len;
		goto out;
	}
	ret = -EINVAL;
	n = sscanf(buf, "%lx %ld %15s", &addr, &nr, how);
	if (n < 2 || nr <= 0 || nr > CDM_TEST_MAX_PIN || pinned_nr)
		goto out;
	if (n == 3 && strcmp(how, "longterm"))
		goto out;
	if (n == 3)
		gup |= FOLL_LONGTERM;
	got = pin_user_pages_fast(addr, nr, gup, pinned);
	if (got < 0) {
		ret = got;
		goto out;
	}
	pinned_nr = got;
	if (got != nr) {
		unpin_all();
		ret = -EFAULT;
		goto out;
	}
	ret = len;
out:
	mutex_unlock(&cdm_test_lock);
	return ret;
}

static ssize_t pin_read(struct file *file, char __user *ubuf, size_t len,
			loff_t *ppos)
{
	char buf[64];
	int n;

	mutex_lock(&cdm_test_lock);
	n = scnprintf(buf, sizeof(buf), "%ld %d\n", pinned_nr,
		      pinned_nr ? page_to_nid(pinned[0]) : NUMA_NO_NODE);
	mutex_unlock(&cdm_test_lock);
	return simple_read_from_buffer(ubuf, len, ppos, buf, n);
}

static const struct file_operations alloc_fops = {
	.owner = THIS_MODULE,
	.read = alloc_read,
	.write = alloc_write,
	.llseek = default_llseek,
};

static const struct file_operations implicit_fops = {
	.owner = THIS_MODULE,
	.read = implicit_read,
	.write = implicit_write,
	.llseek = default_llseek,
};

static const struct file_operations pin_fops = {
	.owner = THIS_MODULE,
	.read = pin_read,
	.write = pin_write,
	.llseek = default_llseek,
};

static int __init cdm_test_init(void)
{
	pinned = kcalloc(CDM_TEST_MAX_PIN, sizeof(*pinned), GFP_KERNEL);
	if (!pinned)
		return -ENOMEM;
	cdm_test_dir = debugfs_create_dir("cdm_test", NULL);
	debugfs_create_file("alloc", 0600, cdm_test_dir, NULL, &alloc_fops);
	debugfs_create_file("implicit", 0600, cdm_test_dir, NULL,
			    &implicit_fops);
	debugfs_create_file("pin", 0600, cdm_test_dir, NULL, &pin_fops);
	return 0;
}

static void __exit cdm_test_exit(void)
{
	debugfs_remove_recursive(cdm_test_dir);
	mutex_lock(&cdm_test_lock);
	unpin_all();
	free_held();
	mutex_unlock(&cdm_test_lock);
	kfree(pinned);
}

module_init(cdm_test_init);
module_exit(cdm_test_exit);
MODULE_DESCRIPTION("cdm selftest helper: driver-style allocation and page pinning");
MODULE_LICENSE("GPL");
