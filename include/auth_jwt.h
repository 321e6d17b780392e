/* auth_jwt.h - who a WebSocket client is, from a JSON Web Token (RFC 7519).
 *
 * Promises: a token is accepted only when it is signed with the one
 * configured algorithm and key, its exp (required unless configured
 * otherwise) and nbf hold at the given time within the leeway, its iss and
 * aud match when those are configured, and its user claim is a valid user id
 * (target.h).  The key is read when the verifier is built and never again;
 * after that auth_jwt_verify() only reads the verifier, so several threads
 * may call it at once.  Nothing here logs, and no message or reason ever
 * contains the token, the secret or the key.
 *
 * Reload (SIGHUP): build a new verifier with auth_jwt_new(), swap it in, and
 * free the old one once no caller can still be using it.
 */
#ifndef NOTIFYD_AUTH_JWT_H
#define NOTIFYD_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "target.h"

/* Longest token accepted (bytes, without a NUL).  Longer ones are refused
 * before any parsing: a token is a header value or a URL, not a document. */
#define AUTH_JWT_TOKEN_MAX 8192

struct auth_jwt_config {
	const char *alg;	/* "HS256" "HS384" "HS512" "RS256" "RS384" "RS512"
				 * "ES256" "ES384" "ES512", exactly so written.  libjwt
				 * 1.10.2 has no PS* (RSASSA-PSS) nor EdDSA. */
	const char *secret;	/* HS*: the shared secret, its bytes as written (not
				 * base64-decoded); at least as long as the hash
				 * (32, 48, 64 bytes for HS256, HS384, HS512) */
	const char *key_file;	/* RS* ES*: PEM public key ("BEGIN PUBLIC KEY") or
				 * certificate; RSA at least 2048 bits; EC on the
				 * curve of the alg (P-256, P-384, P-521) */
	const char *issuer;	/* NULL or "": iss not checked; else iss must equal it */
	const char *audience;	/* NULL or "": aud not checked; else aud (a string
				 * or an array of strings) must equal or hold it */
	const char *user_claim;	/* NULL or "": "sub" */
	uint32_t leeway_s;	/* clock skew tolerated on exp and nbf */
	bool require_exp;	/* a token without exp is refused (the config
				 * default is on: a token without exp never dies) */
};

enum auth_jwt_error {
	AUTH_JWT_OK = 0,
	AUTH_JWT_MALFORMED = -1,	/* "malformed token" */
	AUTH_JWT_BAD_SIGNATURE = -2,	/* "bad signature" */
	AUTH_JWT_BAD_ALG = -3,		/* "algorithm not allowed" */
	AUTH_JWT_EXPIRED = -4,		/* "token expired" */
	AUTH_JWT_NOT_YET_VALID = -5,	/* "token not yet valid" */
	AUTH_JWT_BAD_ISSUER = -6,	/* "wrong issuer" */
	AUTH_JWT_BAD_AUDIENCE = -7,	/* "wrong audience" */
	AUTH_JWT_NO_USER = -8,		/* "missing user claim" */
	AUTH_JWT_BAD_USER = -9,		/* "invalid user claim" */
	AUTH_JWT_MISSING_EXP = -10,	/* "missing exp claim" */
	AUTH_JWT_INTERNAL = -11		/* "internal error": out of memory, not the
					 * client's fault (answer 500, not 401) */
};

#define AUTH_JWT_JTI_MAX 128

struct auth_jwt_identity {
	char user[TARGET_ID_MAX + 1];	/* NUL-terminated, target_id_valid() */
	size_t user_len;
	time_t exp;	/* exp rounded up to a whole second, without the leeway;
			 * 0 when the token has none */
	time_t iat;	/* iat rounded down; 0 when the token has none */
	char jti[AUTH_JWT_JTI_MAX + 1];	/* jti when a string of at most
			 * AUTH_JWT_JTI_MAX bytes, else "" (revocation matches it) */
};

struct auth_jwt;

/* Check cfg and load its key.  Returns the verifier, or NULL with a message
 * in err (unknown alg, missing or short secret, unreadable or unsuitable key
 * file ...).  cfg's strings are copied: the caller may free them. */
struct auth_jwt *auth_jwt_new(const struct auth_jwt_config *cfg, char *err, size_t errlen);

/* Wipes the secret.  NULL is allowed. */
void auth_jwt_free(struct auth_jwt *a);

/* Verify token[0..len) (not necessarily NUL-terminated) at time now.
 * Returns AUTH_JWT_OK with *out filled, or a negative enum auth_jwt_error
 * with *why (when why is not NULL) set to a short static reason, safe to log
 * and to send back in a JSON error.  *out is cleared on failure. */
int auth_jwt_verify(const struct auth_jwt *a, const char *token, size_t len, time_t now,
		    struct auth_jwt_identity *out, const char **why);

/* The reason auth_jwt_verify() gives for an error code. */
const char *auth_jwt_strerror(int err);

/* ---- the token in Sec-WebSocket-Protocol ------------------------------
 *
 * A browser cannot set headers on a WebSocket, and a token in the URL ends
 * up in access logs.  So a client may instead offer two subprotocols:
 *
 *	Sec-WebSocket-Protocol: notifyd.v1, bearer.<JWT>
 *
 *	new WebSocket(url, ["notifyd.v1", "bearer." + jwt])		(browser)
 *	websockets.connect(url, subprotocols=["notifyd.v1", "bearer." + jwt])
 *
 * A JWT is base64url and dots, which are token characters (RFC 6455 4.1,
 * RFC 7230 3.2.6), so "bearer.<JWT>" is a valid subprotocol name.  The
 * server answers "Sec-WebSocket-Protocol: notifyd.v1": it must echo one of
 * the offered names (Chrome fails a handshake that offered subprotocols and
 * got none back) and must not echo the token into response headers.  That
 * is why a bearer item without notifyd.v1 is refused.  notifyd.v2 (ids and
 * resuming, see envelope.h) serves the same purpose and is preferred when
 * both are offered.
 */
#define AUTH_JWT_SUBPROTOCOL "notifyd.v1"
#define AUTH_JWT_SUBPROTOCOL_V2 "notifyd.v2"
#define AUTH_JWT_BEARER_PREFIX "bearer."

/* header: every Sec-WebSocket-Protocol value of the request joined with
 * ", " (NULL when absent).  chosen (chosen_len > strlen(AUTH_JWT_SUBPROTOCOL_V2))
 * receives AUTH_JWT_SUBPROTOCOL_V2 when it is offered, else
 * AUTH_JWT_SUBPROTOCOL when that is, else "": echo it when not empty.  token (token_len should be AUTH_JWT_TOKEN_MAX + 1) receives the
 * offered token, else "".
 * Returns NULL when there is nothing wrong: token is then either the token
 * to verify or "" (none offered this way: look at ?token= and
 * Authorization).  Returns a short static reason when a bearer item is
 * offered but unusable (several of them, empty, too long for token, or
 * with neither notifyd.v1 nor notifyd.v2); answer 401 with it. */
const char *auth_jwt_from_subprotocol(const char *header, char *chosen, size_t chosen_len,
				      char *token, size_t token_len);

#endif
