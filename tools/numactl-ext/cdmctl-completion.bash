# SPDX-License-Identifier: GPL-2.0
# bash completion for cdmctl(8).  Installed as
# $(PREFIX)/share/bash-completion/completions/cdmctl.
#
# Commands and options come from cdmctl itself ("cdmctl help", "cdmctl CMD
# --help"), so this file never lists what the program can answer; nodes
# and devices from "cdmctl list", also as elements of a node list.

_cdmctl_commands()
{
	cdmctl help 2>/dev/null |
		awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && !/^  / { on = 0 }'
}

_cdmctl_options()	# the long options of command $1
{
	cdmctl "$1" --help 2>/dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

_cdmctl_targets()	# CDM node numbers, PCI addresses and device names
{
	cdmctl list 2>/dev/null |
		awk 'NR > 1 { print $1; print $2; if ($3 != "-") print $3 }'
}

_cdmctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" i

	# A PCI address holds ':', which readline treats as a word break:
	# complete the whole token, then hand back what follows its last ':'.
	if [ -n "${COMP_LINE-}" ]; then
		cur=${COMP_LINE:0:COMP_POINT}
		cur=${cur##*[[:space:]]}
	fi
	_cdmctl_complete "$cur" "$prev"
	if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
		local colon=${cur%"${cur##*:}"}
		COMPREPLY=("${COMPREPLY[@]#"$colon"}")
	fi
}

_cdmctl_complete()	# the word being completed, the word before it
{
	local cur=$1 prev=$2 cmd="" i

	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--)
			# run: what follows "--" is the command to run
			COMPREPLY=($(compgen -c -- "$cur"))
			return ;;
		-*) ;;
		*)
			if [ -z "$cmd" ]; then
				cmd=${COMP_WORDS[i]}
			fi ;;
		esac
	done

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json --human --quiet --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cdmctl_commands)" -- "$cur"))
		fi
		return
	fi
	case $prev in
	-t | --timeout)
		return ;;	# a number of milliseconds
	-n | --node)
		COMPREPLY=($(compgen -W "$(_cdmctl_targets | grep -E '^[0-9]+$') all" -- "$cur"))
		return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_cdmctl_options "$cmd")" -- "$cur"))
		return
	fi
	case $cmd in
	status | evacuate | online | users | unspill)
		# a node list ("1-2,capi_sim1"): complete after the last comma
		local pre=""
		[[ $cur == *,* ]] && pre=${cur%,*},
		COMPREPLY=($(compgen -P "$pre" -W "$(_cdmctl_targets) all" -- "${cur##*,}")) ;;
	where)
		COMPREPLY=($(compgen -W "self $(cd /proc && echo [0-9]*)" -- "$cur")) ;;
	help)
		COMPREPLY=($(compgen -W "$(_cdmctl_commands)" -- "$cur")) ;;
	esac
}
complete -F _cdmctl cdmctl
