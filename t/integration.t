#!/bin/bash
# t/integration.t - notifyd's integration suite, as one TAP test program.
#
# Starts a private RabbitMQ node for the whole run (unless TEST_AMQP_URL names
# an existing broker), runs pytest over t/integration/ against the real
# notifyd binary, and prints one TAP line per pytest test on stdout.  pytest's
# own output goes to stderr; failure details also appear as '# ' lines.
#
# Environment:
#   TEST_NOTIFYD_BIN   notifyd binary (default: ../notifyd next to t/, or ./notifyd)
#   TEST_SRCDIR        top of the source tree (default: the parent of this script's dir)
#   TEST_PYTHON3       python with websockets, pika, pytest (default /usr/bin/python3)
#   TEST_PYTEST_ARGS   extra pytest arguments, e.g. "-k routing" or "-x"
#   TEST_AMQP_URL      use this broker instead of a private one (optionally with
#                      TEST_RABBITMQ_NODENAME [TEST_RABBITMQCTL TEST_RABBITMQ_HOME]
#                      so that each test still gets its own vhost)
#   TEST_TIMEOUT       bound on the whole pytest run in seconds (default 1200)
#   TEST_KEEP_TMP      keep the work dir (configs, daemon logs, broker logs)
#
# By hand:  TEST_NOTIFYD_BIN=/tmp/build-main/notifyd t/integration.t
#           TEST_PYTEST_ARGS='-k order' TEST_NOTIFYD_BIN=... prove -v t/integration.t

set -u

# make distcheck runs the unit tests only: the suite already ran on the
# build it checks, and a read-only source tree cannot hold pytest's caches.
if [ "${TEST_SKIP_INTEGRATION:-0}" = 1 ]; then
	echo "1..0 # SKIP integration suite (TEST_SKIP_INTEGRATION=1)"
	exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TEST_SRCDIR:-$(dirname "$here")}
tdir=$srcdir/t
[ -d "$tdir/integration" ] || tdir=$here

bail() {
	echo "Bail out! $*"
	exit 1
}

# ---- the binary -----------------------------------------------------------
bin=${TEST_NOTIFYD_BIN:-}
if [ -z "$bin" ]; then
	for c in "$here/../notifyd" ./notifyd; do
		if [ -x "$c" ]; then bin=$c; break; fi
	done
	[ -n "$bin" ] || bail "notifyd binary not found (looked for $here/../notifyd and ./notifyd);" \
		"build it (make notifyd) or set TEST_NOTIFYD_BIN"
fi
{ [ -f "$bin" ] && [ -x "$bin" ]; } ||
	bail "notifyd binary not found or not executable: $bin (build it: make notifyd; or set TEST_NOTIFYD_BIN)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# ---- python -----------------------------------------------------------------
py_ok() { "$1" -c 'import websockets, pika, pytest' >/dev/null 2>&1; }
py=${TEST_PYTHON3:-/usr/bin/python3}
if ! py_ok "$py"; then
	if [ "$py" != /usr/bin/python3 ] && py_ok /usr/bin/python3; then
		echo "# $py lacks websockets/pika/pytest; using /usr/bin/python3"
		py=/usr/bin/python3
	else
		bail "$py cannot import websockets, pika and pytest" \
			"(apt-get install python3-websockets python3-pika python3-pytest)"
	fi
fi

# ---- work dir, broker, cleanup ----------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/notifyd-it.XXXXXX") || bail "mktemp failed"
broker_dir=$work/broker
broker_started=0
pytest_pid=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$pytest_pid" ] && kill -0 "$pytest_pid" 2>/dev/null; then
		# pytest turns SIGTERM into KeyboardInterrupt and stops its daemons
		kill -TERM "$pytest_pid" 2>/dev/null
		local _
		for _ in $(seq 1 30); do
			kill -0 "$pytest_pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$pytest_pid" 2>/dev/null
	fi
	# daemons left behind by a pytest that did not finish its teardown
	if [ -n "${TEST_PIDFILE:-}" ] && [ -s "$TEST_PIDFILE" ]; then
		local p
		while read -r p; do
			if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$bin" ]; then
				echo "# killing leftover notifyd $p" >&2
				kill -KILL "$p" 2>/dev/null
			fi
		done <"$TEST_PIDFILE"
	fi
	if [ $broker_started = 1 ]; then
		bash "$tdir/lib/broker.sh" stop "$broker_dir" >&2
	fi
	if [ -n "${TEST_KEEP_TMP:-}" ]; then
		echo "# work dir kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

export TEST_NOTIFYD_BIN=$bin
export TEST_WORKDIR=$work/tests
export TEST_PIDFILE=$work/notifyd.pids
if [ -n "${TEST_AMQP_URL:-}" ]; then
	echo "# using the broker at TEST_AMQP_URL" >&2
else
	unset TEST_AMQP_URL
	[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
		bail "rabbitmq-server is not installed (apt-get install rabbitmq-server), or set TEST_AMQP_URL"
	TEST_PYTHON3=$py bash "$tdir/lib/broker.sh" start "$broker_dir" >&2 ||
		bail "cannot start a private RabbitMQ node (logs in $broker_dir/log)"
	broker_started=1
	export TEST_BROKER_ENV=$broker_dir/env
fi

# ---- pytest -----------------------------------------------------------------
# TAP lines come from the plugin in conftest.py on fd 3 (our stdout) and are
# copied to $work/tap.log so that the plan can be written afterwards.  pytest's
# terminal output goes to stderr.
export TEST_TAP_FD=3
export TEST_TAP_LOG=$work/tap.log
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
: >"$TEST_TAP_LOG"
start=$(date +%s)

# TEST_PYTEST_ARGS is split like a shell command line: -k "a or b" works.
extra=()
eval "extra=(${TEST_PYTEST_ARGS:-})" || bail "cannot parse TEST_PYTEST_ARGS: $TEST_PYTEST_ARGS"
# Test files or node ids among them (relative to the current dir or to
# t/integration) replace the default of the whole directory.
args=()
where=("$tdir/integration")
for a in "${extra[@]}"; do
	case $a in
	-*) ;;
	*)
		if [ -e "${a%%::*}" ]; then
			where=()
		elif [ -e "$tdir/integration/${a%%::*}" ]; then
			a=$tdir/integration/$a
			where=()
		fi
		;;
	esac
	args+=("$a")
done
timeout -k 15 "${TEST_TIMEOUT:-1200}" \
	"$py" -m pytest -v -rfEs --rootdir="$tdir/integration" -c "$tdir/integration/pytest.ini" \
	"${where[@]}" "${args[@]}" 3>&1 > >(tee "$work/pytest.out" >&2) 2>&1 &
pytest_pid=$!
wait "$pytest_pid"
status=$?
pytest_pid=
sleep 0.2 # let tee finish

n=$(grep -cE '^(not )?ok ' "$TEST_TAP_LOG")
failed=$(grep -cE '^not ok ' "$TEST_TAP_LOG")
case $status in
0) ;;
1) [ "$failed" -gt 0 ] || { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - pytest reported failures"; } ;;
5) [ "$n" -gt 0 ] || { echo "1..0 # SKIP no tests selected"; exit 0; } ;;
124|137) n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - pytest run exceeded TEST_TIMEOUT=${TEST_TIMEOUT:-1200}s" ;;
*) n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - pytest exited with status $status"
   tail -n 30 "$work/pytest.out" | sed 's/^/# /' ;;
esac
echo "1..$n"
echo "# $((n - failed)) of $n passed in $(($(date +%s) - start))s"
[ "$failed" -eq 0 ]
