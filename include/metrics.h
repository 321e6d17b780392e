/* metrics.h - GET /metrics in the Prometheus text exposition format 0.0.4.
 * Reads the atomic stats and the loop's own gauges; event-loop thread. */
#ifndef NOTIFYD_METRICS_H
#define NOTIFYD_METRICS_H

struct evbuffer;
struct gateway;

void metrics_render(const struct gateway *gw, struct evbuffer *out);

#endif
