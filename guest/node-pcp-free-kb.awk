# node-pcp-free-kb.awk -v n=NODE, /proc/zoneinfo: the kB of free pages that
# wait in node NODE's per-cpu lists ("count:"), which MemFree leaves out.
# Used by guest/stress-lib.sh (free_kb).
$1 == "Node" { mine = ($2 == n ",") }
mine && $1 == "count:" { s += $2 }
END { print s * 4 }
