#!/bin/bash
# shellcheck disable=SC2030,SC2031 # the subshell exports are meant to stay there
# t/lib/broker.sh start|stop|status DIR
#
# Starts (or stops) a private RabbitMQ node whose whole state lives in DIR, on
# free loopback ports, for the integration tests.  Nothing outside DIR is
# touched (except the shared epmd daemon that Erlang starts on first use).
#
# After "start" succeeds, DIR/env holds shell-sourceable KEY=value lines:
#   AMQP_PORT, AMQP_URL (guest on vhost "/"), RABBITMQ_NODENAME, BROKER_HOME
#   (the HOME that rabbitmqctl needs to find the node's Erlang cookie),
#   RABBITMQCTL, BROKER_PID (the beam process), BROKER_DIR.
#
# To use rabbitmqctl on that node:
#   . DIR/env; HOME=$BROKER_HOME $RABBITMQCTL -n $RABBITMQ_NODENAME list_vhosts
#
# Processes are stopped by PID only.  Every wait is bounded.
# Environment: BROKER_START_TIMEOUT (seconds, default 60).

set -u

RABBIT_BIN=${RABBIT_BIN:-/usr/lib/rabbitmq/bin}
RABBITMQCTL=$RABBIT_BIN/rabbitmqctl
START_TIMEOUT=${BROKER_START_TIMEOUT:-60}

die() { echo "broker.sh: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop|status DIR [AMQP_PORT]" >&2; exit 2; }

[ $# -eq 2 ] || [ $# -eq 3 ] || usage
cmd=$1
dir=$2
fixed_port=${3:-}	# start: listen on this AMQP port (the quickstart's 5672)

# A TCP port nobody listens on now (best effort: bind to port 0 and release).
free_port() {
	local py=${TEST_PYTHON3:-/usr/bin/python3}
	[ -x "$py" ] || py=/usr/bin/python3
	"$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

ctl() {
	# rabbitmqctl finds the node's cookie in $HOME/.erlang.cookie.
	HOME=$dir "$RABBITMQCTL" -n "$node" "$@"
}

start() {
	command -v "$RABBITMQCTL" >/dev/null 2>&1 || [ -x "$RABBITMQCTL" ] ||
		die "rabbitmqctl not found at $RABBITMQCTL (apt-get install rabbitmq-server)"
	mkdir -p "$dir" || die "cannot create $dir"
	dir=$(cd "$dir" && pwd) || die "cannot enter $dir"
	if [ -f "$dir/env" ]; then
		# shellcheck disable=SC1091
		. "$dir/env"
		if alive "${BROKER_PID:-}"; then
			die "a broker already runs from $dir (pid $BROKER_PID)"
		fi
		rm -f "$dir/env"
	fi

	local port dport
	if [ -n "$fixed_port" ]; then
		port=$fixed_port
	else
		port=$(free_port) || die "no free port"
	fi
	dport=$(free_port) || die "no free port"
	[ "$port" != "$dport" ] || dport=$(free_port)
	node="notifyd-test-$$-$port@localhost"

	mkdir -p "$dir/mnesia" "$dir/log"
	echo '[].' >"$dir/plugins"
	(
		export HOME=$dir
		export RABBITMQ_NODENAME=$node
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT=$port
		export RABBITMQ_DIST_PORT=$dport
		export RABBITMQ_MNESIA_BASE=$dir/mnesia
		export RABBITMQ_LOG_BASE=$dir/log
		export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/plugins
		export RABBITMQ_PID_FILE=$dir/pid
		export RABBITMQ_CONFIG_FILE=$dir/rabbitmq
		cd "$dir" || exit 1
		# Do not let the node (or the epmd daemon it may start, which
		# outlives it) hold our caller's pipes open: a TAP driver waiting
		# for EOF on them would hang.
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
		done
		exec setsid "$RABBIT_BIN/rabbitmq-server" </dev/null >"$dir/server.out" 2>&1
	) &
	local spid=$!
	echo "$spid" >"$dir/script.pid"

	local deadline=$((SECONDS + START_TIMEOUT)) ok=0
	while [ $SECONDS -lt $deadline ]; do
		if ! alive "$spid"; then
			echo "broker.sh: rabbitmq-server exited during start-up; last output:" >&2
			tail -n 30 "$dir/server.out" >&2
			return 1
		fi
		if ctl -q -t 5 await_startup >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.5
	done
	local bpid=""
	[ -s "$dir/pid" ] && bpid=$(cat "$dir/pid")
	if [ $ok -ne 1 ]; then
		echo "broker.sh: node $node did not start within ${START_TIMEOUT}s; last output:" >&2
		tail -n 30 "$dir/server.out" >&2
		[ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null
		kill -KILL "$spid" 2>/dev/null
		return 1
	fi
	cat >"$dir/env" <<EOF
BROKER_DIR=$dir
BROKER_HOME=$dir
BROKER_PID=${bpid:-$spid}
BROKER_SCRIPT_PID=$spid
RABBITMQ_NODENAME=$node
RABBITMQCTL=$RABBITMQCTL
AMQP_HOST=127.0.0.1
AMQP_PORT=$port
AMQP_URL=amqp://guest:guest@127.0.0.1:$port/
EOF
	echo "broker.sh: node $node listening on 127.0.0.1:$port (pid ${bpid:-?})" >&2
}

stop() {
	[ -f "$dir/env" ] || { echo "broker.sh: no $dir/env, nothing to stop" >&2; return 0; }
	# shellcheck disable=SC1091
	. "$dir/env"
	dir=$BROKER_DIR
	node=$RABBITMQ_NODENAME
	if alive "$BROKER_PID" || alive "${BROKER_SCRIPT_PID:-}"; then
		ctl -q -t 20 stop >/dev/null 2>&1 || true
		local _
		for _ in $(seq 1 40); do
			alive "$BROKER_PID" || alive "${BROKER_SCRIPT_PID:-}" || break
			sleep 0.25
		done
		for p in "$BROKER_PID" "${BROKER_SCRIPT_PID:-}"; do
			if alive "$p"; then
				echo "broker.sh: killing $p" >&2
				kill -KILL "$p" 2>/dev/null
			fi
		done
	fi
	# The disk monitor helper (/bin/sh -s rabbit_disk_monitor) is a child of
	# the node's erl_child_setup; it exits with the node.
	rm -f "$dir/env"
}

status() {
	[ -f "$dir/env" ] || { echo "not started"; return 1; }
	# shellcheck disable=SC1091
	. "$dir/env"
	node=$RABBITMQ_NODENAME
	dir=$BROKER_DIR
	if alive "$BROKER_PID" && ctl -q -t 5 status >/dev/null 2>&1; then
		echo "running $node port $AMQP_PORT pid $BROKER_PID"
	else
		echo "not running"
		return 1
	fi
}

case $cmd in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
