# Shared by /opt/cdm/stress and /opt/cdm/soak (bash, sourced): the
# devices, node meminfo, evacuation through sysfs or cdmctl with the result
# classified, and the check lines scripts/stress counts.

pass=0 fail=0
# check NAME OK DETAIL: one "stress-check:" line; OK is 0 for a pass.
check() {
	if [ "$2" = 0 ]; then
		pass=$((pass + 1))
		echo "stress-check: PASS $1${3:+ ($3)}"
	else
		fail=$((fail + 1))
		echo "stress-check: FAIL $1${3:+: $3}"
	fi
}

# node_kb NODE FIELD: a field of /sys/devices/system/node/nodeN/meminfo, kB.
node_kb() {
	local v
	v=$(sed -n "s/^Node $1 $2: *\([0-9]*\) kB/\1/p" \
		"/sys/devices/system/node/node$1/meminfo" 2>/dev/null)
	echo "${v:-0}"
}
used_kb() { echo $(($(node_kb "$1" MemTotal) - $(node_kb "$1" MemFree))); }

# The capi_sim devices: dev_dir[i], dev_node[i], dev_total_kb[i] (MemTotal
# of the node with the device online, measured at start).
dev_dir=() dev_node=() dev_total_kb=()
find_devices() {
	local d
	for d in /sys/bus/pci/drivers/capi_sim/0000:*; do
		[ -e "$d/node" ] || continue
		dev_dir+=("$d")
		dev_node+=("$(cat "$d/node")")
		dev_total_kb+=("$(node_kb "$(cat "$d/node")" MemTotal)")
	done
	[ ${#dev_dir[@]} -gt 0 ]
}

# Machinery is never the OOM victim; what it starts runs at score 0.
# "run0 CMD... &" only: the background job is the function's own subshell,
# which execs CMD, so $! is CMD's pid.
echo -1000 > /proc/$$/oom_score_adj
run0() {
	echo 0 > "/proc/$BASHPID/oom_score_adj"
	exec "$@"
}
# "session0 CMD... &" only, like run0: CMD at score 0 in a session of its
# own, and $! is its pid and session id.
session0() {
	exec setsid bash -c 'echo 0 > /proc/$$/oom_score_adj; exec "$@"' session0 "$@"
}

# evacuate I METHOD TIMEOUT_MS: evacuate device I through "sysfs" (the
# device's evacuate file) or "cdmctl"; TIMEOUT_MS 0 is the kernel's 10 s
# default for both (cdmctl's own default, without --timeout, grows with the
# memory in use and would let one evacuation take minutes of a short run).  Sets
# evac_result to ok, EBUSY, ENOMEM, EINTR (the documented failures) or
# "error: <message>", and evac_ms to the time it took.
evacuate() {
	local d=${dev_dir[$1]} n=${dev_node[$1]} t0 out rc
	t0=${EPOCHREALTIME/./}
	if [ "$2" = sysfs ]; then
		out=$({ echo "$3" > "$d/evacuate"; } 2>&1)
	else
		out=$(cdmctl evacuate "$n" --timeout "$3" 2>&1)
	fi
	rc=$?
	evac_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	case "$rc:$out" in
	0:*) evac_result=ok ;;
	*"busy"* | *"timed out"*) evac_result=EBUSY ;;
	*"Cannot allocate memory"*) evac_result=ENOMEM ;;
	*"nterrupted"*) evac_result=EINTR ;;
	*) evac_result="error: rc $rc: $(echo "$out" | tail -1)" ;;
	esac
}

# online I METHOD: add device I's memory back; 0 on success.
online() {
	if [ "$2" = sysfs ]; then
		echo 1 > "${dev_dir[$1]}/online"
	else
		cdmctl online "${dev_node[$1]}" > /dev/null
	fi
}

# consistent I EXPECT: device I is fully gone (EXPECT offline: state
# offline, node MemTotal 0) or fully back (online/failed: that state and
# the node's MemTotal as at start).  Prints what it found when not.
consistent() {
	local state total want=0
	state=$(cat "${dev_dir[$1]}/state")
	total=$(node_kb "${dev_node[$1]}" MemTotal)
	[ "$2" = offline ] || want=${dev_total_kb[$1]}
	[ "$state" = "$2" ] && [ "$total" = "$want" ] && return 0
	echo "state $state, MemTotal $total kB (want $2, $want kB)"
	return 1
}

# wait_rounds FILE N: wait until the sentinel status FILE shows N more
# rounds than now (each round verifies every word), at most LIMIT s.
sentinel_rounds() { local r; read -r _ r _ 2> /dev/null < "$1"; echo "${r:-0}"; }
sentinel_errors() { local e; read -r _ _ _ e 2> /dev/null < "$1"; echo "${e:-0}"; }
wait_rounds() {
	local want=$(($(sentinel_rounds "$1") + $2)) limit=$((SECONDS + ${3:-300}))
	while [ "$(sentinel_rounds "$1")" -lt "$want" ]; do
		[ $SECONDS -lt $limit ] || return 1
		sleep 0.1
	done
}

# Drop the page cache and shrink every slab cache (which also empties
# KASAN's quarantine of that cache), so free memory can be compared.
drop_caches() {
	local f
	sync
	echo 3 > /proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do echo 1 > "$f"; done 2> /dev/null
}

# free_kb NODE: MemFree plus the free pages waiting in the node's per-cpu
# lists (/proc/zoneinfo "count:"), which MemFree leaves out and which can
# hold tens of MiB after a busy run; user space cannot drain them.
free_kb() {
	echo $(($(node_kb "$1" MemFree) +
		$(awk -v n="$1" -f /opt/cdm/node-pcp-free-kb.awk /proc/zoneinfo)))
}

# held_kb NODE: process memory on NODE: anonymous pages, slab, page
# tables, kernel stacks (file and shmem pages left out).  Unlike
# MemTotal - MemFree it also leaves out free pages in per-cpu lists.
held_kb() {
	awk -v n="$1" -f /opt/cdm/node-held-kb.awk "/sys/devices/system/node/node$1/meminfo"
}

# meminfo_diff FILE NODE: the node's meminfo fields that differ from FILE
# (an earlier copy), "field was -> now kB".
meminfo_diff() {
	awk -f /opt/cdm/meminfo-diff.awk "$1" "/sys/devices/system/node/node$2/meminfo"
}
