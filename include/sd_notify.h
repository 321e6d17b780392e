/* sd_notify.h - systemd's readiness protocol without libsystemd: one
 * datagram per state to $NOTIFY_SOCKET (a path, or "@name" in the abstract
 * namespace).  Does nothing when the variable is unset. */
#ifndef NOTIFYD_SD_NOTIFY_H
#define NOTIFYD_SD_NOTIFY_H

#include <stdint.h>

/* Returns 1 sent, 0 not under systemd, -1 error. */
int sd_notify_send(const char *state);

/* $WATCHDOG_USEC for this process (checks $WATCHDOG_PID), 0 when unset. */
uint64_t sd_notify_watchdog_usec(void);

#endif
