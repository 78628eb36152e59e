# node-held-kb.awk -v n=NODE, nodeNODE/meminfo: the kB of process memory on
# the node - anonymous pages, slab, page tables, kernel stacks.
# Used by guest/stress-lib.sh (held_kb).
$1 == "Node" && $2 == n && $3 ~ /^(AnonPages|Slab|PageTables|SecPageTables|KernelStack):$/ { s += $4 }
END { print s + 0 }
