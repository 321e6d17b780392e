#!/bin/sh
# Debian 12 packages, in one place for the quickstart, the tests, CI and the
# Dockerfile.  Usage: scripts/deps.sh build|run|test  (prints the list).
set -eu
BUILD="build-essential autoconf automake pkg-config libevent-dev librabbitmq-dev libjwt-dev libssl-dev libcjson-dev zlib1g-dev"
RUN="libevent-2.1-7 libevent-openssl-2.1-7 librabbitmq4 libjwt0 libcjson1 libssl3 zlib1g"
QUICKSTART="rabbitmq-server amqp-tools python3-websockets curl"
TEST="rabbitmq-server openssl python3 python3-websockets python3-pika python3-pytest curl cppcheck valgrind clang libclang-rt-14-dev"
case "${1:-}" in
build) echo "$BUILD" ;;
run) echo "$RUN" ;;
quickstart) echo "$BUILD $QUICKSTART" ;;
test) echo "$BUILD $TEST" ;;
*) echo "usage: $0 build|run|quickstart|test" >&2; exit 2 ;;
esac
