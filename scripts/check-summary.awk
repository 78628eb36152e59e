# scripts/run-selftests' summary of a make check: reads the collected TAP
# results (@begin NAME / @t ok|not ok ... / @end NAME RC, one block per test
# program), prints a line per program, per guest console scan and for the
# host unit tests, names every program of selftests/tests.list that never
# ran, and prints "N passed, M failed, K skipped", each failed test with
# the diagnostics printed just before it (CI shows only this summary); exits 1 if anything failed,
# 2 if a test of the list never ran.
# Variables (awk -v): list, vmrcs, guests, kasan, kasan_off, logs,
# host_line, host_rc.
BEGIN {
	while ((getline l < list) > 0) {
		split(l, fld, " ")
		if (fld[1] == "" || substr(fld[1], 1, 1) == "#") continue
		want[++nwant] = (fld[1] == "main" || fld[1] == "pre") ? fld[2] : fld[1] "-" fld[2]
	}
	split(vmrcs, vmrc, " ")
	nguests = split(guests, gname, " ")
	# every guest loads the modules first: modulesN (shardN), modules-NAME
	for (i = 1; i <= nguests; i++)
		want[++nwant] = gname[i] ~ /^shard[0-9]+$/ ? "modules" substr(gname[i], 6) : "modules-" gname[i]
}
/^@begin / { name = $2; seen[name] = 1; p = f = s = nd = 0; next }
/^@t (ok|not ok) [0-9]+/ {
	if ($2 == "ok") { if ($0 ~ /# *SKIP/) s++; else p++ }
	else {
		f++
		why_failed[++nfailed] = name ": " substr($0, 4)
		# the failed checks (an EXPECT may fail long before the end)
		# and the last four lines, at most twelve
		k = 0
		for (i = 1; i <= nd && k < 12; i++)
			if (i > nd - 4 || diag[i] ~ /:Expected |Test terminated/) {
				why_failed[nfailed] = why_failed[nfailed] "\n      " diag[i]
				k++
			}
	}
	nd = 0
	next
}
/^@t # / && !/^@t # +(RUN|OK|FAIL) / { diag[++nd] = substr(substr($0, 6), 1, 300); next }
/^@end / {
	rc = $3
	if (rc != 0 && f == 0) {
		f = 1
		why = (rc == 137) ? " (killed: time limit)" : " (exit " rc ")"
	} else why = ""
	if (p + f + s == 0) { f = 1; why = " (no TAP result)" }
	printf "  %-24s %3d passed, %d failed, %d skipped%s\n", name, p, f, s, why
	P += p; F += f; S += s
	next
}
END {
	split(host_line, h, /[ ,]+/)
	hp = h[1] + 0; hf = h[3] + 0
	if (host_line == "" || (host_rc != 0 && hf == 0)) hf++
	printf "  %-24s %3d passed, %d failed, 0 skipped (host)\n", "numactl-ext-unit", hp, hf
	P += hp; F += hf
	for (i = 1; i <= nwant; i++) if (!(want[i] in seen)) {
		printf "  %-24s did not run (guest died? see the console logs)\n", want[i]; F++
		missing = 1
	}
	for (i = 1; i <= nguests; i++) {
		name = "console-scan-" gname[i]
		if (vmrc[i] != 0) {
			if (vmrc[i] == 4) why = "kernel report in the console"
			else if (vmrc[i] == 3) why = "guest did not finish"
			else why = "guest exit " vmrc[i]
			printf "  %-24s FAILED (%s; %s.%s.console.log)\n", name, why, logs, gname[i]
			F++
		} else { printf "  %-24s ok\n", name; P++ }
		if (kasan != 1) continue
		name = "kasan-on-" gname[i]
		if (index(kasan_off, " " gname[i] " ")) {
			printf "  %-24s FAILED (no \"KernelAddressSanitizer initialized\" in the console)\n", name
			F++
		} else { printf "  %-24s ok\n", name; P++ }
	}
	for (i = 1; i <= nfailed; i++) printf "FAILED %s\n", why_failed[i]
	printf "%d passed, %d failed, %d skipped\n", P, F, S
	exit F == 0 ? 0 : missing ? 2 : 1
}
