#!/bin/sh
# make run: the cdm demo, inside the guest.
#  1. the machine: system RAM on node 0, accelerator memory on CDM nodes
#  2. an unbound workload never touches device memory
#  3. a workload bound to device memory has all its pages there
#  4. the device is evacuated while that workload runs: its data is intact
#     and now lives in system RAM; then the device comes back online and
#     the workload's pages go back to it
# It uses what an operator would: numactl, and cdmctl for the device
# (list, users, evacuate --dry-run, evacuate, online --restore, where).
set -u
NODE=/sys/devices/system/node

say() { printf '\n=== %s\n' "$*"; }
node_used_mib() {	# MemUsed of node $1 in MiB, 0 if it has no memory
	awk '/MemUsed/ { printf "%d", $4 / 1024; found = 1 } END { if (!found) print 0 }' \
		"$NODE/node$1/meminfo" 2>/dev/null || echo 0
}
usage_line() {
	line="node usage (MiB):"
	for n in $(seq 0 $(($(ls -d $NODE/node[0-9]* | wc -l) + 2))); do
		[ -e "$NODE/node$n" ] && line="$line  node$n=$(node_used_mib "$n")"
	done
	echo "$line"
}

say "The machine ($(uname -r)): numactl-cdm --hardware; cdmctl list"
numactl-cdm --hardware
echo
if ! cdmctl list; then
	echo "cdmctl list failed; the demo needs a kernel with CDM nodes." >&2
	exit 1
fi
devs=$(ls -d /sys/bus/pci/drivers/capi_sim/0000:* 2>/dev/null)
if [ -z "$devs" ]; then
	echo "No capi_sim device is bound; the demo needs the driver." >&2
	exit 1
fi
dev=$(echo "$devs" | head -n 1)
dnode=$(cat "$dev/node")

say "An unbound workload: 400 MiB of anonymous memory under the default policy"
usage_line
memhog -r1 400M >/dev/null
echo "done; device memory stayed untouched:"
usage_line

say "A workload bound to device memory: numactl --membind=$dnode demo-worker 128"
mkfifo /tmp/demo.ctl
# Append mode: the demo truncates the file later while the worker writes.
: > /tmp/demo.out
numactl --membind="$dnode" demo-worker 128 < /tmp/demo.ctl >> /tmp/demo.out 2>&1 &
worker=$!
exec 3> /tmp/demo.ctl
while ! grep -q '^ready' /tmp/demo.out; do
	kill -0 $worker 2>/dev/null || { cat /tmp/demo.out; exit 1; }
	sleep 0.2
done
cat /tmp/demo.out
usage_line

say "Who uses node $dnode, and what would evacuating it take: cdmctl users $dnode; cdmctl evacuate --dry-run $dnode"
cdmctl users "$dnode"
echo
cdmctl evacuate --dry-run "$dnode"

say "Evacuating node $dnode while the workload keeps writing: cdmctl evacuate $dnode"
if ! cdmctl evacuate "$dnode"; then
	echo "evacuation failed" >&2
	exit 1
fi
echo "device state: $(cat "$dev/state")"
usage_line
: > /tmp/demo.out
echo where >&3
echo verify >&3
i=0
while [ "$(grep -c '^where\|^verify' /tmp/demo.out)" -lt 2 ]; do
	kill -0 $worker 2>/dev/null || break
	i=$((i + 1))
	[ $i -le 600 ] || { echo "demo-worker does not answer" >&2; exit 1; }
	sleep 0.2
done
cat /tmp/demo.out
grep -q 'every byte intact' /tmp/demo.out || exit 1

say "Bringing node $dnode back, with the pages bound to it: cdmctl online --restore $dnode"
cdmctl online --restore "$dnode" || exit 1
echo "device state: $(cat "$dev/state")"
cdmctl where "$worker"
usage_line
echo quit >&3
wait $worker
say "Demo complete"
