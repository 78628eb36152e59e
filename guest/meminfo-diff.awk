# meminfo-diff.awk OLD NEW (two copies of a nodeN/meminfo): the fields that
# differ, " field was->now" each.  Used by guest/stress-lib.sh.
$1 == "Node" {
	k = $3; v = $4
	if (FNR == NR) { was[k] = v; next }
	if (was[k] != v) printf " %s %s->%s", k, was[k], v
}
