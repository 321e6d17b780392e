/* keyring.c - API keys as digests (see keyring.h). */
#include "autoconfig.h"

#include "keyring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admission.h"
#include "config.h"

#define KEY_DIGEST 32

struct keyring {
	uint8_t (*keys)[KEY_DIGEST];	/* SHA-256 of each accepted key */
	size_t nkeys;
	/* Fetched once: an implicit fetch per request (EVP_sha256() in
	 * OpenSSL 3) doubled the cost of checking the key. */
	EVP_MD *md;			/* fetched: ours to free */
	EVP_MD_CTX *mdctx;
};

struct keyring *keyring_new(const struct config_list *keys)
{
	struct keyring *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	k->mdctx = EVP_MD_CTX_new();
	if (k->md == NULL || k->mdctx == NULL || keyring_set(k, keys) < 0) {
		keyring_free(k);
		return NULL;
	}
	return k;
}

void keyring_free(struct keyring *k)
{
	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->mdctx);
	EVP_MD_free(k->md);
	if (k->keys != NULL)
		OPENSSL_cleanse(k->keys, k->nkeys * sizeof(*k->keys));
	free(k->keys);
	free(k);
}

int keyring_set(struct keyring *k, const struct config_list *keys)
{
	uint8_t (*d)[KEY_DIGEST] = NULL;

	if (keys->n > 0) {
		d = calloc(keys->n, sizeof(*d));
		if (d == NULL)
			return -1;
	}
	for (size_t i = 0; i < keys->n; i++) {
		unsigned int dl = 0;

		if (!EVP_Digest(keys->item[i], strlen(keys->item[i]), d[i], &dl, k->md, NULL)) {
			free(d);
			return -1;
		}
	}
	if (k->keys != NULL)
		OPENSSL_cleanse(k->keys, k->nkeys * sizeof(*k->keys));
	free(k->keys);
	k->keys = d;
	k->nkeys = keys->n;
	return 0;
}

size_t keyring_count(const struct keyring *k)
{
	return k->nkeys;
}

bool keyring_ok(struct keyring *k, const char *authorization)
{
	uint8_t d[KEY_DIGEST];
	unsigned int dl = 0;
	int match = 0;
	const char *tok = admission_bearer(authorization);

	if (tok == NULL || !EVP_DigestInit_ex(k->mdctx, k->md, NULL) ||
	    !EVP_DigestUpdate(k->mdctx, tok, strlen(tok)) || !EVP_DigestFinal_ex(k->mdctx, d, &dl))
		return false;
	for (size_t i = 0; i < k->nkeys; i++)
		match |= CRYPTO_memcmp(d, k->keys[i], KEY_DIGEST) == 0;
	OPENSSL_cleanse(d, sizeof(d));
	return match != 0;
}
