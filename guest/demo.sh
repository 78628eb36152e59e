#!/bin/sh
# make run: the cdm demo, inside the guest.
echo "=== cdm demo: the machine"
uname -r
numactl --hardware
echo "CDM nodes: $(cat /sys/devices/system/node/has_coherent_device 2>/dev/null || echo 'none (kernel without cdm)')"
