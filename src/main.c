#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth_jwt.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "delivery.h"
#include "dispatch.h"
#include "http_push.h"
#include "history.h"
#include "http_server.h"
#include "log.h"
#include "loop_base.h"
#include "mq_consumer.h"
#include "mq_control.h"
#include "mq_publisher.h"
#include "notifyd.h"
#include "peer_table.h"
#include "sd_notify.h"
#include "stats.h"
#include "worker_pool.h"
#include "ws_conn.h"
#include "xqueue.h"

extern char **environ;

#define DEFAULT_CONFIG SYSCONFDIR "/notifyd.conf"
#define CLOSE_PHASE_MS 2000	/* how long clients get to answer our 1001 */

enum drain_phase { RUNNING = 0, DRAINING, CLOSING_CLIENTS, STOPPING };

struct daemon {
	struct gateway gw;
	struct config cfg;
	struct stats stats;
	struct xqueue jobq, readyq, ackq, statusq, pushq, resultq, ctl_outq, ctl_inq;
	struct worker_pool *workers;
	struct mq_consumer *consumer;
	struct mq_publisher *publisher;
	struct mq_control *control_link;
	struct event *status_ev, *drain_ev, *watchdog_ev;
	const char *config_path;
	int config_explicit;
	struct event *sig_term, *sig_int, *sig_hup;
	enum drain_phase phase;
	uint64_t drain_deadline_ms, close_deadline_ms;
};

static void usage(FILE *out)
{
	fprintf(out,
	    "Usage: notifyd [-c FILE] [--check-config]\n"
	    "Consume notifications from RabbitMQ and push them to WebSocket clients.\n\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "      --check-config  parse and validate the configuration, print the\n"
	    "                      effective settings, exit 0 (valid) or 1\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version\n\n"
	    "Every key of the file can be overridden by NOTIFYD_<KEY> in the environment.\n",
	    DEFAULT_CONFIG);
}

static void daemon_begin_drain(struct daemon *d);

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct broker_status batch[16];
	size_t n;

	(void)fd;
	(void)what;
	while ((n = xqueue_drain(&d->statusq, batch, 16)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (batch[i].state != d->gw.broker.state)
				log_info("broker_state", "state=%s", broker_state_name(batch[i].state));
			d->gw.broker = batch[i];
		}
	}
}

/* The part of drain_timeout kept for closing clients with 1001. */
static uint64_t close_share(const struct daemon *d)
{
	uint64_t share = d->cfg.drain_timeout_ms / 4;

	return share < CLOSE_PHASE_MS ? share : CLOSE_PHASE_MS;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = clock_now_ms();

	(void)fd;
	(void)what;
	/* The close phase is kept inside drain_timeout: it starts when the
	 * broker side is settled, or when only its share of the budget is left. */
	if (d->phase == DRAINING && (d->gw.broker.drained || now + close_share(d) >= d->drain_deadline_ms)) {
		log_info("shutdown_closing_clients", "drained=%s connections=%zu in_flight=%llu",
		    d->gw.broker.drained ? "yes" : "timeout", registry_count(&d->gw.reg),
		    (unsigned long long)dispatch_in_flight(d->gw.dispatch));
		ws_conn_close_all(&d->gw, 1001, "server shutting down");
		d->phase = CLOSING_CLIENTS;
		d->close_deadline_ms = now + CLOSE_PHASE_MS;
		if (d->close_deadline_ms > d->drain_deadline_ms)
			d->close_deadline_ms = d->drain_deadline_ms;
	}
	if (d->phase == CLOSING_CLIENTS && (registry_count(&d->gw.reg) == 0 || now >= d->close_deadline_ms)) {
		/* Frames still queued for these clients were never written: not
		 * acked, so the broker keeps them. */
		dispatch_abandon(d->gw.dispatch);
		ws_conn_free_all(&d->gw, "shutdown");
		d->phase = STOPPING;
		event_base_loopexit(d->gw.base, NULL);
	}
}

static void daemon_begin_drain(struct daemon *d)
{
	struct timeval tick = { 0, 20000 };

	d->phase = DRAINING;
	d->gw.draining = true;
	d->drain_deadline_ms = clock_now_ms() + d->cfg.drain_timeout_ms;
	log_info("shutdown_started", "drain_timeout_ms=%u connections=%zu",
	    d->cfg.drain_timeout_ms, registry_count(&d->gw.reg));
	sd_notify_send("STOPPING=1");
	http_server_stop_listening(d->gw.http);
	mq_consumer_command(d->consumer, CONSUMER_STOP_CONSUMING);
	event_add(d->drain_ev, &tick);
}

static int load_config(struct config *cfg, const char *path, int explicit_path);

/* The token verifier from the configuration (auth = jwt), NULL with err
 * filled when the keys do not load. */
static struct auth_jwt *notifyd_auth_new(const struct config *cfg, char *err, size_t errlen)
{
	struct auth_jwt_config ac = {
		.alg = cfg->jwt_algorithm,
		.secret = cfg->jwt_secret,
		.key_file = cfg->jwt_key_file,
		.issuer = cfg->jwt_issuer,
		.audience = cfg->jwt_audience,
		.user_claim = cfg->jwt_user_claim,
		.leeway_s = cfg->jwt_leeway_s,
		.require_exp = cfg->jwt_require_exp,
	};

	return auth_jwt_new(&ac, err, errlen);
}

/* A secret in a file others can read is a secret no more; warn, do not
 * refuse: the operator may have reasons (and a refusal on SIGHUP would
 * leave the old keys in place without a word). */
static void warn_exposed_config(const struct config *cfg, const char *path)
{
	char qpath[600], qhint[700], hint[640];

	if (!config_file_exposed(cfg, getegid()))
		return;
	snprintf(hint, sizeof(hint), "chmod 600 %s (or 640 with the daemon's group)", path);
	log_warn("config_file_readable", "path=%s mode=%04o secret_key=%s hint=%s",
	    log_quote(qpath, sizeof(qpath), path, strlen(path)), (unsigned)cfg->file_mode,
	    cfg->file_secret_key, log_quote(qhint, sizeof(qhint), hint, strlen(hint)));
}

/* SIGHUP: reopen the log file and take the secrets that may rotate (push
 * keys) from a fresh read of the configuration; everything else needs a
 * restart.  A configuration that does not load changes nothing. */
static void daemon_reload(struct daemon *d)
{
	struct config fresh;
	int keys = 0;

	if (log_reopen() < 0) {
		int e = errno;
		char qpath[600], qwhy[300];
		const char *why = log_strerror(e);

		log_error("log_reopen_failed", "path=%s errno=%d why=%s",
		    log_quote(qpath, sizeof(qpath), d->cfg.log_file, strlen(d->cfg.log_file)), e,
		    log_quote(qwhy, sizeof(qwhy), why, strlen(why)));
	}
	if (load_config(&fresh, d->config_path, d->config_explicit) < 0) {
		log_error("reload_failed", "why=\"configuration does not load; keeping the current one\"");
		config_free(&fresh);
		return;
	}
	warn_exposed_config(&fresh, d->config_path);
	if (http_push_set_keys(d->gw.push, &fresh.push_keys) == 0 &&
	    http_server_set_admin_keys(d->gw.http, &fresh.admin_keys) == 0)
		keys = 1;
	if (d->cfg.auth == CONFIG_AUTH_JWT) {
		char err[300];
		struct auth_jwt *a = notifyd_auth_new(&fresh, err, sizeof(err));

		/* Only the loop thread verifies tokens: swapping here is safe. */
		if (a == NULL) {
			log_error("jwt_reload_failed", "why=\"%s\"", err);
		} else {
			auth_jwt_free(d->gw.auth);
			d->gw.auth = a;
			log_info("jwt_reloaded", "algorithm=%s", fresh.jwt_algorithm);
		}
	}
	{
		char err[300];
		int tls = http_server_reload_tls(d->gw.http, fresh.tls_cert_file, fresh.tls_key_file,
		    err, sizeof(err));

		if (tls < 0)
			log_error("tls_reload_failed", "why=\"%s\"", err);
		else if (tls > 0)
			log_info("tls_reloaded", "cert=%s", fresh.tls_cert_file);
	}
	log_info("reloaded", "log_reopened=yes push_keys=%zu applied=%s", fresh.push_keys.n, keys ? "yes" : "no");
	config_free(&fresh);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* Sent from the loop: a wedged loop stops the pings and systemd acts. */
	sd_notify_send("WATCHDOG=1");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		daemon_reload(d);
		return;
	}
	if (d->phase == RUNNING) {
		daemon_begin_drain(d);
		return;
	}
	/* A second signal: the operator does not want to wait. */
	log_warn("shutdown_forced", "signal=%d", (int)sig);
	dispatch_abandon(d->gw.dispatch);
	ws_conn_free_all(&d->gw, "forced_shutdown");
	d->phase = STOPPING;
	event_base_loopexit(d->gw.base, NULL);
}

static int load_config(struct config *cfg, const char *path, int explicit_path)
{
	char err[512];

	if (config_defaults(cfg) < 0) {
		fprintf(stderr, "notifyd: out of memory\n");
		return -1;
	}
	/* Without -c a missing default file is fine: defaults are a working
	 * local setup.  A file named on the command line must exist. */
	if ((explicit_path || access(path, F_OK) == 0) &&
	    config_load_file(cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "notifyd: %s\n", err);
		return -1;
	}
	if (config_apply_env(cfg, environ, err, sizeof(err)) < 0 ||
	    config_finish(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "notifyd: %s\n", err);
		return -1;
	}
	return 0;
}


/* Every client is a descriptor: lift the soft limit to what the connection
 * limit needs (up to the hard limit), and say so when it cannot. */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	/* Every connection the limits allow, plus the broker, logs and slack. */
	rlim_t want = (rlim_t)cfg->max_connections + cfg->max_http_connections + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warn("fd_limit_low", "nofile=%llu max_connections=%u hint=\"raise LimitNOFILE or lower max_connections\"",
		    (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

/* Threads other than the loop's must not take the signals libevent waits for. */
static int start_threads(struct daemon *d)
{
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	d->workers = worker_pool_start(d->cfg.workers, &d->jobq, &d->readyq, &d->ackq,
	    &d->stats, d->cfg.max_message_size);
	if (d->workers != NULL)
		d->consumer = mq_consumer_start(&d->cfg, &d->stats, &d->jobq, &d->ackq, &d->statusq);
	if (d->consumer != NULL)
		d->publisher = mq_publisher_start(&d->cfg, &d->pushq, &d->resultq);
	if (d->publisher != NULL)
		d->control_link = mq_control_start(&d->cfg, &d->stats, &d->ctl_outq, &d->ctl_inq);
	if (d->workers == NULL || d->consumer == NULL || d->publisher == NULL || d->control_link == NULL)
		rc = -1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void daemon_free_leftovers(struct daemon *d)
{
	struct ready r[64];
	struct job j;
	size_t n;

	/* Deliveries nobody finished stay unacked: the broker has them. */
	while ((n = xqueue_drain(&d->readyq, r, 64)) > 0)
		for (size_t i = 0; i < n; i++)
			if (r[i].msg != NULL)
				msg_free(r[i].msg);
	xqueue_close(&d->jobq);
	while (xqueue_pop_wait(&d->jobq, &j))
		amqp_destroy_envelope(&j.env);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon *d;
	const char *path = DEFAULT_CONFIG;
	int explicit_path = 0, check = 0, opt, rc = 1;
	char err[512];

	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			explicit_path = 1;
			break;
		case 'C':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("notifyd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "notifyd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return 1;
	d->config_path = path;
	d->config_explicit = explicit_path;
	if (load_config(&d->cfg, path, explicit_path) < 0) {
		config_free(&d->cfg);
		free(d);
		return 1;
	}
	if (check) {
		config_print(&d->cfg, stdout);
		config_free(&d->cfg);
		free(d);
		return 0;
	}
	if (log_init((enum log_level)d->cfg.log_level, d->cfg.log_format == CONFIG_LOG_JSON, d->cfg.log_file) < 0) {
		fprintf(stderr, "notifyd: log_file %s: %s\n", d->cfg.log_file, log_strerror(errno));
		config_free(&d->cfg);
		free(d);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	warn_exposed_config(&d->cfg, path);
	raise_fd_limit(&d->cfg);

	d->gw.cfg = &d->cfg;
	d->gw.stats = &d->stats;
	d->gw.ackq = &d->ackq;
	d->gw.started_ms = clock_now_ms();
	d->gw.base = loop_base_new();
	d->gw.peers = peer_table_new();
	if (d->gw.base == NULL || d->gw.peers == NULL || registry_init(&d->gw.reg) < 0 ||
	    xqueue_init(&d->jobq, "jobs", sizeof(struct job), false) < 0 ||
	    xqueue_init(&d->readyq, "ready", sizeof(struct ready), true) < 0 ||
	    xqueue_init(&d->ackq, "acks", sizeof(struct ack_item), true) < 0 ||
	    xqueue_init(&d->statusq, "broker_status", sizeof(struct broker_status), true) < 0 ||
	    xqueue_init(&d->pushq, "push_jobs", sizeof(struct push_job), true) < 0 ||
	    xqueue_init(&d->resultq, "push_results", sizeof(struct push_result), true) < 0 ||
	    xqueue_init(&d->ctl_outq, "control_out", sizeof(struct ctl_out), true) < 0 ||
	    xqueue_init(&d->ctl_inq, "control_in", sizeof(struct ctl_in), true) < 0) {
		log_error("startup_failed", "why=\"cannot allocate the event loop or queues\"");
		goto out;
	}
	if (d->cfg.auth == CONFIG_AUTH_JWT) {
		d->gw.auth = notifyd_auth_new(&d->cfg, err, sizeof(err));
		if (d->gw.auth == NULL) {
			log_error("startup_failed", "why=\"%s\"", err);
			fprintf(stderr, "notifyd: %s\n", err);
			goto out;
		}
	}
	d->gw.http = http_server_start(&d->gw, err, sizeof(err));
	if (d->gw.http == NULL) {
		log_error("startup_failed", "why=\"%s\"", err);
		fprintf(stderr, "notifyd: %s\n", err);
		goto out;
	}
	if (d->cfg.amqp_source == CONFIG_SOURCE_STREAM && d->cfg.history_max_bytes > 0) {
		d->gw.hist = history_new(d->cfg.history_max_bytes, (uint64_t)d->cfg.history_max_age_s * 1000u);
		if (d->gw.hist == NULL) {
			log_error("startup_failed", "why=\"cannot allocate the history\"");
			goto out;
		}
	}
	d->gw.dispatch = dispatch_new(&d->gw, &d->readyq);
	d->gw.push = http_push_new(&d->gw, &d->pushq, &d->resultq);
	(void)control_new(&d->gw, &d->ctl_outq, &d->ctl_inq);	/* sets gw.control */
	d->status_ev = event_new(d->gw.base, xqueue_fd(&d->statusq), EV_READ | EV_PERSIST, on_status, d);
	d->drain_ev = event_new(d->gw.base, -1, EV_PERSIST, on_drain_tick, d);
	d->sig_term = evsignal_new(d->gw.base, SIGTERM, on_signal, d);
	d->sig_int = evsignal_new(d->gw.base, SIGINT, on_signal, d);
	d->sig_hup = evsignal_new(d->gw.base, SIGHUP, on_signal, d);
	if (d->gw.dispatch == NULL || d->gw.push == NULL || d->gw.control == NULL || d->status_ev == NULL || d->drain_ev == NULL ||
	    d->sig_term == NULL || d->sig_int == NULL || d->sig_hup == NULL ||
	    event_add(d->status_ev, NULL) < 0 || event_add(d->sig_term, NULL) < 0 ||
	    event_add(d->sig_int, NULL) < 0 || event_add(d->sig_hup, NULL) < 0) {
		log_error("startup_failed", "why=\"cannot set up events\"");
		goto out;
	}
	if (start_threads(d) < 0) {
		log_error("startup_failed", "why=\"cannot start threads\"");
		goto out;
	}
	log_info("started", "version=%s workers=%u source=%s queue=%s pid=%d", PACKAGE_VERSION,
	    d->cfg.workers, d->cfg.amqp_source == CONFIG_SOURCE_STREAM ? "stream" : "queue",
	    d->cfg.amqp_source == CONFIG_SOURCE_STREAM ? d->cfg.amqp_stream : d->cfg.amqp_queue,
	    (int)getpid());
	sd_notify_send("READY=1");
	{
		uint64_t wd = sd_notify_watchdog_usec();

		if (wd > 0) {
			struct timeval half = { (time_t)(wd / 2000000u), (suseconds_t)((wd / 2) % 1000000u) };

			d->watchdog_ev = event_new(d->gw.base, -1, EV_PERSIST, on_watchdog, d);
			if (d->watchdog_ev != NULL)
				event_add(d->watchdog_ev, &half);
		}
	}
	event_base_dispatch(d->gw.base);
	rc = 0;
	log_info("stopped", "acked=%llu", (unsigned long long)stats_get(&d->stats.acked));
out:
	if (d->consumer != NULL) {
		/* The last acks (released by the connections just closed) go
		 * out before the broker connection closes. */
		mq_consumer_command(d->consumer, CONSUMER_FINISH);
		mq_consumer_join(d->consumer);
	}
	xqueue_close(&d->ackq);
	http_push_fail_all(d->gw.push, "server shutting down");
	mq_publisher_stop(d->publisher);
	control_goodbye(d->gw.control);
	mq_control_stop(d->control_link);
	xqueue_close(&d->ctl_outq);
	daemon_free_leftovers(d);
	worker_pool_join(d->workers);
	daemon_free_leftovers(d);
	http_server_free(d->gw.http);
	control_free(d->gw.control);	/* after the last connection (presence) */
	http_push_free(d->gw.push);
	dispatch_free(d->gw.dispatch);
	if (d->status_ev != NULL)
		event_free(d->status_ev);
	if (d->drain_ev != NULL)
		event_free(d->drain_ev);
	if (d->watchdog_ev != NULL)
		event_free(d->watchdog_ev);
	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->gw.base != NULL)
		event_base_free(d->gw.base);
	registry_free(&d->gw.reg);
	history_free(d->gw.hist);
	peer_table_free(d->gw.peers);
	auth_jwt_free(d->gw.auth);
	xqueue_destroy(&d->jobq);
	xqueue_destroy(&d->readyq);
	xqueue_destroy(&d->ackq);
	xqueue_destroy(&d->statusq);
	xqueue_destroy(&d->pushq);
	xqueue_destroy(&d->resultq);
	xqueue_destroy(&d->ctl_outq);
	xqueue_destroy(&d->ctl_inq);
	config_free(&d->cfg);
	free(d);
	return rc;
}
