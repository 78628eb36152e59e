/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM cdm

#if !defined(_TRACE_CDM_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_CDM_H

#include <linux/tracepoint.h>

/* cdm_evacuate() started on @nid with @nr_used pages in use. */
TRACE_EVENT(cdm_evacuate_start,
	    TP_PROTO(int nid, unsigned long nr_used, unsigned int timeout_ms),
	    TP_ARGS(nid, nr_used, timeout_ms),
	    TP_STRUCT__entry(__field(int, nid)
			     __field(unsigned long, nr_used)
			     __field(unsigned int, timeout_ms)),
	    TP_fast_assign(__entry->nid = nid;
			   __entry->nr_used = nr_used;
			   __entry->timeout_ms = timeout_ms;),
	    TP_printk("nid=%d used_pages=%lu timeout_ms=%u",
		      __entry->nid, __entry->nr_used, __entry->timeout_ms)
);

/* A batch of pages was migrated off @nid. */
TRACE_EVENT(cdm_evacuate_progress,
	    TP_PROTO(int nid, unsigned long migrated, unsigned long remaining),
	    TP_ARGS(nid, migrated, remaining),
	    TP_STRUCT__entry(__field(int, nid)
			     __field(unsigned long, migrated)
			     __field(unsigned long, remaining)),
	    TP_fast_assign(__entry->nid = nid;
			   __entry->migrated = migrated;
			   __entry->remaining = remaining;),
	    TP_printk("nid=%d migrated=%lu remaining=%lu",
		      __entry->nid, __entry->migrated, __entry->remaining)
);

/* cdm_evacuate() on @nid returned @ret. */
TRACE_EVENT(cdm_evacuate_end,
	    TP_PROTO(int nid, int ret, unsigned long migrated,
		     unsigned long unmoved, unsigned int duration_ms),
	    TP_ARGS(nid, ret, migrated, unmoved, duration_ms),
	    TP_STRUCT__entry(__field(int, nid)
			     __field(int, ret)
			     __field(unsigned long, migrated)
			     __field(unsigned long, unmoved)
			     __field(unsigned int, duration_ms)),
	    TP_fast_assign(__entry->nid = nid;
			   __entry->ret = ret;
			   __entry->migrated = migrated;
			   __entry->unmoved = unmoved;
			   __entry->duration_ms = duration_ms;),
	    TP_printk("nid=%d ret=%d migrated=%lu unmoved=%lu duration_ms=%u",
		      __entry->nid, __entry->ret, __entry->migrated,
		      __entry->unmoved, __entry->duration_ms)
);

#endif /* _TRACE_CDM_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
