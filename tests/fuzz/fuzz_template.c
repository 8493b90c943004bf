/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: token/attr.c - caller templates decoded from bytes go through
 * template validation (every op), the class check, the find check, the
 * match, and the C_GetAttributeValue core against a fixed object; the raw
 * bytes also go through the store TLV parser. Invariants (abort on breach):
 *   - a template accepted by akv_attr_check_template has well-formed
 *     CK_BBOOL / CK_ULONG entries;
 *   - akv_attr_get_values returns one of the four §5.7.5 codes, never
 *     writes past a caller buffer (ASan) nor into an entry it marks
 *     CK_UNAVAILABLE_INFORMATION (guard bytes), and gives exact lengths;
 *   - a TLV that parses serialises back to the same bytes.
 *
 * Input format: repeated entries {u8 sel, u8 flags, u8 len, len bytes}.
 * sel picks a type (a known attribute below, else a raw 32-bit value from
 * the next bytes); flags bit 0 = pValue NULL, bit 1 = ulValueLen lies
 * (claims len+1 for a NULL value), bit 2 = caller buffer one byte short.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "include/pkcs11/akv-pkcs11.h"
#include "token/attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 32
#define GUARD       0xA5

static const CK_ATTRIBUTE_TYPE known[] = {
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_START_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_ALLOWED_MECHANISMS,
    CKA_WRAP_TEMPLATE,
    CKA_AKV_KID,
    CKA_PRIVATE_EXPONENT,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
};

/* A fixed secret-key-like object. */
static void make_object(struct akv_attrs *a)
{
    CK_MECHANISM_TYPE mechs[] = {CKM_AES_GCM, CKM_AES_CBC};
    uint8_t label[] = "fuzz-object";

    (void)akv_attrs_set_ulong(a, CKA_CLASS, CKO_SECRET_KEY);
    (void)akv_attrs_set_ulong(a, CKA_KEY_TYPE, CKK_AES);
    (void)akv_attrs_set_bool(a, CKA_TOKEN, CK_FALSE);
    (void)akv_attrs_set_bool(a, CKA_SENSITIVE, CK_TRUE);
    (void)akv_attrs_set(a, CKA_LABEL, label, sizeof(label) - 1);
    (void)akv_attrs_set(a, CKA_ID, NULL, 0);
    (void)akv_attrs_set(a, CKA_VALUE, "0123456789abcdef", 16);
    (void)akv_attrs_set_ulong(a, CKA_VALUE_LEN, 16);
    (void)akv_attrs_set(a, CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs));
}

static bool sensitive(const void *ctx, CK_ATTRIBUTE_TYPE type)
{
    (void)ctx;
    return type == CKA_VALUE;
}

static void check_get_values(const struct akv_attrs *obj, CK_ATTRIBUTE *t,
                             const uint8_t *flags, CK_ULONG n)
{
    CK_ATTRIBUTE req[MAX_ENTRIES];
    uint8_t *bufs[MAX_ENTRIES];
    CK_ULONG cap[MAX_ENTRIES];
    CK_RV rv;

    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *have = akv_attrs_find(obj, t[i].type);
        CK_ULONG want = have != NULL ? have->ulValueLen : t[i].ulValueLen;

        /* Buffer of the right size, one short, or none. */
        cap[i] = (flags[i] & 4) != 0 && want > 0 ? want - 1 : want;
        bufs[i] = (flags[i] & 1) != 0 ? NULL : malloc(cap[i] + 1);
        if (bufs[i] != NULL) {
            memset(bufs[i], GUARD, cap[i] + 1);
        }
        req[i].type = t[i].type;
        req[i].pValue = bufs[i];
        req[i].ulValueLen = cap[i];
    }
    rv = akv_attr_get_values(obj, sensitive, NULL, req, n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE
        && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL) {
        abort();
    }
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *have = akv_attrs_find(obj, req[i].type);

        if (req[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            /* Nothing written into an entry marked unavailable. */
            for (CK_ULONG j = 0; bufs[i] != NULL && j <= cap[i]; j++) {
                if (bufs[i][j] != GUARD) {
                    abort();
                }
            }
        } else if (have == NULL || req[i].ulValueLen != have->ulValueLen
                   || sensitive(NULL, req[i].type)) {
            abort();
        } else if (bufs[i] != NULL
                   && (bufs[i][cap[i]] != GUARD
                       || (have->ulValueLen > 0
                           && memcmp(bufs[i], have->pValue, have->ulValueLen)
                                  != 0))) {
            abort();
        }
        free(bufs[i]);
    }
}

static void check_tlv(const uint8_t *data, size_t size)
{
    struct akv_attrs a = AKV_ATTRS_INIT;
    uint8_t *out = NULL;
    size_t out_len = 0;

    if (akv_attrs_parse(data, size, &a) == CKR_OK) {
        /* Duplicates collapse, so only a duplicate-free input must come
         * back byte for byte; any parsed list must serialise and parse. */
        if (akv_attrs_serialise(&a, &out, &out_len) != CKR_OK) {
            abort();
        }
        if (out_len == size && memcmp(out, data, size) != 0) {
            /* Same length means no duplicate was dropped. */
            abort();
        }
        akv_attrs_clear(&a);
        if (akv_attrs_parse(out, out_len, &a) != CKR_OK) {
            abort();
        }
        free(out);
    }
    akv_attrs_clear(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CK_ATTRIBUTE t[MAX_ENTRIES];
    uint8_t flags[MAX_ENTRIES];
    uint8_t *vals[MAX_ENTRIES];
    CK_ULONG n = 0;
    size_t off = 0;
    struct akv_attrs obj = AKV_ATTRS_INIT;
    static const enum akv_attr_op ops[] = {
        AKV_ATTR_OP_CREATE, AKV_ATTR_OP_GENERATE, AKV_ATTR_OP_UNWRAP,
        AKV_ATTR_OP_COPY, AKV_ATTR_OP_SET};
    static const CK_OBJECT_CLASS classes[] = {CKO_DATA, CKO_SECRET_KEY,
                                              CKO_PUBLIC_KEY};

    check_tlv(data, size);
    while (n < MAX_ENTRIES && size - off >= 3) {
        uint8_t sel = data[off];
        uint8_t fl = data[off + 1];
        uint8_t len = data[off + 2];
        CK_ATTRIBUTE_TYPE type;

        off += 3;
        if (sel < sizeof(known) / sizeof(known[0])) {
            type = known[sel];
        } else if (size - off >= 4) {
            uint32_t raw;

            memcpy(&raw, data + off, 4);
            off += 4;
            type = raw;
        } else {
            break;
        }
        if (len > size - off) {
            len = (uint8_t)(size - off);
        }
        /* A private heap copy so ASan sees over-reads of the value. */
        vals[n] = (fl & 1) != 0 ? NULL : malloc(len > 0 ? len : 1);
        if (vals[n] != NULL && len > 0) {
            memcpy(vals[n], data + off, len);
        }
        off += len;
        t[n].type = type;
        t[n].pValue = vals[n];
        t[n].ulValueLen = (fl & 1) != 0 && (fl & 2) != 0 ? len + 1u : len;
        flags[n] = fl;
        n++;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        CK_RV rv = akv_attr_check_template(t, n, ops[i]);

        if (rv != CKR_OK) {
            continue;
        }
        for (CK_ULONG j = 0; j < n; j++) {
            const struct akv_attr_policy *p = akv_attr_policy_find(t[j].type);

            if (p == NULL || (t[j].pValue == NULL && t[j].ulValueLen > 0)) {
                abort();
            }
            if (p->kind == AKV_AK_BOOL
                && (t[j].ulValueLen != 1
                    || *(const CK_BBOOL *)t[j].pValue > CK_TRUE)) {
                abort();
            }
            if (p->kind == AKV_AK_ULONG
                && t[j].ulValueLen != sizeof(CK_ULONG)) {
                abort();
            }
        }
        for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++) {
            (void)akv_attr_check_class(t, n, classes[c]);
        }
    }
    make_object(&obj);
    if (akv_attr_check_find(t, n) == CKR_OK) {
        (void)akv_attrs_match(&obj, t, n);
    }
    (void)akv_attrs_mech_allowed(&obj, n > 0 ? t[0].type : CKM_AES_GCM);
    check_get_values(&obj, t, flags, n);
    akv_attrs_clear(&obj);
    for (CK_ULONG i = 0; i < n; i++) {
        free(vals[i]);
    }
    return 0;
}
