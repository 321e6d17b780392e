# notifyd container image: build with the same script CI runs, run on
# debian:12-slim as a non-root user.
#
#   docker build -t notifyd .
#   docker run --rm -p 8081:8081 -e NOTIFYD_AMQP_URL=amqp://guest:guest@broker:5672/ \
#       -e NOTIFYD_JWT_SECRET=<32+ bytes> notifyd
#
# Configure it with NOTIFYD_<KEY> environment variables (see notifyd.conf(5));
# they override /etc/notifyd/notifyd.conf, which is secure by default:
# auth = jwt, so it refuses to start until NOTIFYD_JWT_SECRET (or
# NOTIFYD_JWT_KEY_FILE) is given, or NOTIFYD_AUTH=none is chosen on purpose.
# "docker run ... notifyd --check-config" prints the effective settings.
# docker-compose.yml runs it next to a RabbitMQ broker.
# scripts/check-dockerfile checks this file statically and replays its build.

# ---- build -----------------------------------------------------------------
FROM debian:12 AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /src

# The build packages first, so that editing a source file does not reinstall
# them.  scripts/deps.sh holds the one list that CI and the quickstart use.
COPY scripts/deps.sh scripts/deps.sh
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(sh scripts/deps.sh build) \
 && rm -rf /var/lib/apt/lists/*

# Only what the build reads: not the build directories or a configure
# generated on the host; scripts/build runs autoreconf itself.
COPY configure.ac Makefile.am README ChangeLog ./
COPY m4/ m4/
COPY include/ include/
COPY src/ src/
COPY etc/ etc/
COPY doc/ doc/
COPY scripts/ scripts/
# The browser client the binary serves at /notifyd.js (built in).
COPY www/ www/
# Makefile.am lists t/unit/tap.h among the headers that "make" needs.
COPY t/ t/

# The build CI runs (scripts/build: configure + make out of tree), then
# "make install" from its build directory into a staging root.
RUN scripts/build /tmp/build --prefix=/usr --sysconfdir=/etc/notifyd \
 && cd /tmp/build \
 && make install DESTDIR=/staging

# ---- run -------------------------------------------------------------------
FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive

# The shared libraries the binary needs: scripts/deps.sh run.
COPY --from=build /src/scripts/deps.sh /tmp/deps.sh
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(sh /tmp/deps.sh run) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps.sh \
 && groupadd --system notifyd \
 && useradd --system --gid notifyd --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin notifyd

COPY --from=build /staging/usr/sbin/notifyd /usr/sbin/notifyd
COPY --from=build /staging/etc/notifyd/notifyd.conf /etc/notifyd/notifyd.conf
# The file may be given secrets by a derived image: root and group notifyd only.
RUN chown root:notifyd /etc/notifyd/notifyd.conf \
 && chmod 0640 /etc/notifyd/notifyd.conf \
 && notifyd --version

# In a container the listener must accept connections from outside it.
ENV NOTIFYD_LISTEN_ADDRESS=0.0.0.0
EXPOSE 8081
USER notifyd:notifyd

# GET /health answers 200 only while notifyd consumes from the broker.  The
# slim image has no curl: bash's /dev/tcp sends the request, and the status
# line is checked.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${NOTIFYD_LISTEN_PORT:-8081} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]

# SIGTERM drains: notifyd exits within drain_timeout (10s), the clients' close
# included.  Give "docker stop" more than that: docker stop -t 20
# (docker-compose.yml sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["notifyd", "-c", "/etc/notifyd/notifyd.conf"]
