/* tls.h - the OpenSSL server context for wss:// and https://.
 *
 * Promises: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for 1.2,
 * the certificate chain and key checked against each other at load.  A
 * reload builds a new context; connections keep the one they started with
 * (SSL_CTX is reference counted).
 */
#ifndef NOTIFYD_TLS_H
#define NOTIFYD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Returns a new context, or NULL with err filled. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

#endif
