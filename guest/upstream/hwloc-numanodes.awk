# hwloc-numanodes.awk: lstopo's XML, one token per line, to one
# "@@HWLOC NUMANode os_index= cpuset= local_memory=" line per NUMA node.
# Used by guest/upstream/run.
/^<object$/ { inobj = 1; t = ""; os = ""; cs = ""; mem = ""; next }
inobj && /^type=/ { t = $0 }
inobj && /^os_index=/ { os = $0 }
inobj && /^cpuset=/ { cs = $0 }
inobj && /^local_memory=/ { mem = $0 }
inobj && />$/ { if (t == "type=\"NUMANode\"") print "@@HWLOC NUMANode", os, cs, mem; inobj = 0 }
