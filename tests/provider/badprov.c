/* SPDX-License-Identifier: Apache-2.0 */
/*
 * badprov - an OpenSSL 3 provider for tests: it offers key management for
 * the TLS key-exchange groups (X25519, X448, EC, DH) whose key generation
 * always fails, the way a hardware-backed provider (pkcs11-provider, a TPM
 * provider) that cannot generate an ephemeral key behaves. A host program
 * that loads it into its default library context before the default
 * provider (or sets default_properties = ?provider=badprov) makes every TLS
 * handshake in that context fail at the key share. The module's own TLS
 * must not notice (tests/integration/provider.sh).
 *
 * It also offers SHA-256, AES-256-GCM, HMAC and HKDF implementations that
 * cannot be used (their contexts cannot be made), so a host that prefers
 * badprov breaks every digest, AEAD, MAC and KDF done in its default
 * context: the token object store (token/store.c, token/seal.c) must not
 * notice either.
 *
 * Follows: OpenSSL 3.0 provider(7), provider-keymgmt(7), provider-digest(7),
 * provider-cipher(7), provider-mac(7), provider-kdf(7).
 */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

static int gen_calls;

static void *km_new(void *provctx)
{
    (void)provctx;
    return NULL; /* no key can be made here */
}

static void km_free(void *key)
{
    (void)key;
}

static int km_has(const void *key, int selection)
{
    (void)key;
    (void)selection;
    return 0;
}

static void *km_gen_init(void *provctx, int selection,
                         const OSSL_PARAM params[])
{
    (void)selection;
    (void)params;
    return provctx != NULL ? provctx : (void *)&gen_calls;
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    (void)genctx;
    (void)params;
    return 1; /* accept the group name: fail later, in gen */
}

static const OSSL_PARAM *km_gen_settable_params(void *genctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_END,
    };
    (void)genctx;
    (void)provctx;
    return settable;
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    (void)genctx;
    (void)cb;
    (void)cbarg;
    gen_calls++;
    return NULL; /* the failure under test */
}

static void km_gen_cleanup(void *genctx)
{
    (void)genctx;
}

static const OSSL_DISPATCH km_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))km_new},
    {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},
    {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has},
    {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))km_gen_init},
    {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))km_gen_set_params},
    {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,
     (void (*)(void))km_gen_settable_params},
    {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))km_gen},
    {OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))km_gen_cleanup},
    {0, NULL},
};

static const OSSL_ALGORITHM keymgmts[] = {
    {"X25519:1.3.101.110", "provider=badprov", km_functions, NULL},
    {"X448:1.3.101.111", "provider=badprov", km_functions, NULL},
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=badprov", km_functions,
     NULL},
    {"DH:dhKeyAgreement:1.2.840.113549.1.3.1", "provider=badprov", km_functions,
     NULL},
    {NULL, NULL, NULL, NULL},
};

/* ---- digests, ciphers, MACs, KDFs whose contexts cannot be made ---- */

static void *no_ctx(void *provctx)
{
    (void)provctx;
    return NULL; /* the failure under test */
}

static void free_ctx(void *ctx)
{
    (void)ctx;
}

static int fail_op(void)
{
    return 0;
}

static int md_get_params(OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_SIZE);

    if (p != NULL && !OSSL_PARAM_set_size_t(p, 32)) {
        return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_BLOCK_SIZE);
    return p == NULL || OSSL_PARAM_set_size_t(p, 64);
}

static const OSSL_DISPATCH md_functions[] = {
    {OSSL_FUNC_DIGEST_NEWCTX, (void (*)(void))no_ctx},
    {OSSL_FUNC_DIGEST_FREECTX, (void (*)(void))free_ctx},
    {OSSL_FUNC_DIGEST_INIT, (void (*)(void))fail_op},
    {OSSL_FUNC_DIGEST_UPDATE, (void (*)(void))fail_op},
    {OSSL_FUNC_DIGEST_FINAL, (void (*)(void))fail_op},
    {OSSL_FUNC_DIGEST_GET_PARAMS, (void (*)(void))md_get_params},
    {0, NULL},
};

static int cipher_get_params(OSSL_PARAM params[])
{
    static const struct {
        const char *name;
        size_t value;
    } p[] = {{OSSL_CIPHER_PARAM_KEYLEN, 32},
             {OSSL_CIPHER_PARAM_IVLEN, 12},
             {OSSL_CIPHER_PARAM_BLOCK_SIZE, 1}};

    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
        OSSL_PARAM *q = OSSL_PARAM_locate(params, p[i].name);
        if (q != NULL && !OSSL_PARAM_set_size_t(q, p[i].value)) {
            return 0;
        }
    }
    return 1;
}

static const OSSL_DISPATCH cipher_functions[] = {
    {OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void))no_ctx},
    {OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))free_ctx},
    {OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))fail_op},
    {OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))fail_op},
    {OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))fail_op},
    {OSSL_FUNC_CIPHER_FINAL, (void (*)(void))fail_op},
    {OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void))cipher_get_params},
    {0, NULL},
};

static const OSSL_DISPATCH mac_functions[] = {
    {OSSL_FUNC_MAC_NEWCTX, (void (*)(void))no_ctx},
    {OSSL_FUNC_MAC_FREECTX, (void (*)(void))free_ctx},
    {OSSL_FUNC_MAC_INIT, (void (*)(void))fail_op},
    {OSSL_FUNC_MAC_UPDATE, (void (*)(void))fail_op},
    {OSSL_FUNC_MAC_FINAL, (void (*)(void))fail_op},
    {0, NULL},
};

static const OSSL_DISPATCH kdf_functions[] = {
    {OSSL_FUNC_KDF_NEWCTX, (void (*)(void))no_ctx},
    {OSSL_FUNC_KDF_FREECTX, (void (*)(void))free_ctx},
    {OSSL_FUNC_KDF_DERIVE, (void (*)(void))fail_op},
    {0, NULL},
};

static const OSSL_ALGORITHM digests[] = {
    {"SHA2-256:SHA-256:SHA256:2.16.840.1.101.3.4.2.1", "provider=badprov",
     md_functions, NULL},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM ciphers[] = {
    {"AES-256-GCM:id-aes256-GCM:2.16.840.1.101.3.4.1.46", "provider=badprov",
     cipher_functions, NULL},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM macs[] = {
    {"HMAC", "provider=badprov", mac_functions, NULL},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM kdfs[] = {
    {"HKDF", "provider=badprov", kdf_functions, NULL},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *query(void *provctx, int operation_id,
                                   int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmts;
    case OSSL_OP_DIGEST:
        return digests;
    case OSSL_OP_CIPHER:
        return ciphers;
    case OSSL_OP_MAC:
        return macs;
    case OSSL_OP_KDF:
        return kdfs;
    default:
        return NULL;
    }
}

static void teardown(void *provctx)
{
    (void)provctx;
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))teardown},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query},
    {0, NULL},
};

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;
    *out = provider_functions;
    *provctx = (void *)&gen_calls;
    return 1;
}
