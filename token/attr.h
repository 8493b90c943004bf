/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attribute storage, the attribute policy table, template validation and
 * matching, the C_GetAttributeValue core, and the compact TLV that stores
 * the non-secret attributes of token objects.
 *
 * Follows: PKCS#11 v3.0 §4 (object attribute tables and their footnotes),
 * §5.7 C_GetAttributeValue / C_SetAttributeValue / C_CopyObject /
 * C_FindObjectsInit.
 */
#ifndef AKV_TOKEN_ATTR_H
#define AKV_TOKEN_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

/* An owned attribute list: every pValue is a private copy (or NULL when
 * ulValueLen is 0) owned by the list - values of up to sizeof(CK_ULONG)
 * bytes inline in the list's block (attr.c says how), wiped when replaced,
 * removed or cleared; change it only
 * through akv_attrs_* (moving it by copying the struct is fine). Never holds
 * CKA_VALUE of a secret key: secret bytes live in struct akv_secret (object.h).
 */
struct akv_attrs {
    CK_ATTRIBUTE *v;
    size_t n;
};

#define AKV_ATTRS_INIT                                                         \
    {                                                                          \
        NULL, 0                                                                \
    }

/* What a template is being used for; selects the policy column. */
enum akv_attr_op {
    AKV_ATTR_OP_CREATE = 0, /* C_CreateObject */
    AKV_ATTR_OP_GENERATE,   /* C_GenerateKey */
    AKV_ATTR_OP_UNWRAP,     /* C_UnwrapKey */
    AKV_ATTR_OP_COPY,       /* C_CopyObject */
    AKV_ATTR_OP_SET,        /* C_SetAttributeValue */
};

/* Value kinds of the policy table. */
enum akv_attr_kind {
    AKV_AK_BOOL = 0, /* CK_BBOOL, exactly sizeof(CK_BBOOL), 0 or 1 */
    AKV_AK_ULONG,    /* CK_ULONG, exactly sizeof(CK_ULONG) */
    AKV_AK_BYTES,    /* any length */
    AKV_AK_DATE,     /* CK_DATE (8 bytes) or empty */
    AKV_AK_MECHS,    /* CK_MECHANISM_TYPE array */
};

/* Policy flags, named after the v3.0 §4 attribute-table footnotes. */
#define AKV_A_CREATE       0x01u /* may be given to C_CreateObject */
#define AKV_A_GENERATE     0x02u /* may be given to C_GenerateKey (fn 4 not) */
#define AKV_A_UNWRAP       0x04u /* may be given to C_UnwrapKey (fn 6 not) */
#define AKV_A_MODIFIABLE   0x08u /* fn 8: C_SetAttributeValue/C_CopyObject */
#define AKV_A_STICKY_TRUE  0x10u /* fn 11: may only change FALSE -> TRUE */
#define AKV_A_STICKY_FALSE 0x20u /* fn 12: may only change TRUE -> FALSE */
#define AKV_A_COPY_ONLY    0x40u /* C_CopyObject may set (CKA_TOKEN/PRIVATE) */

struct akv_attr_policy {
    CK_ATTRIBUTE_TYPE type;
    enum akv_attr_kind kind;
    unsigned flags;
};

/* akv_attr_policy_find - the table row for TYPE, or NULL when the module
 * does not know the attribute. */
const struct akv_attr_policy *akv_attr_policy_find(CK_ATTRIBUTE_TYPE type);

/* akv_attr_policy_table - the whole table (sorted by type) for tests. */
const struct akv_attr_policy *akv_attr_policy_table(size_t *n);

/*
 * akv_attr_check_template - validates a caller template for OP (v3.0 §5.7
 * and §4 footnotes), checking each entry in order:
 *   pValue NULL with ulValueLen > 0, a wrong size for CK_BBOOL/CK_ULONG or a
 *   CK_BBOOL other than 0/1 -> CKR_ATTRIBUTE_VALUE_INVALID;
 *   an attribute the module does not know -> CKR_ATTRIBUTE_TYPE_INVALID;
 *   an attribute OP may not set -> CKR_ATTRIBUTE_READ_ONLY;
 *   the same type twice with different values -> CKR_TEMPLATE_INCONSISTENT.
 * tmpl may be NULL only when n is 0 (else CKR_ARGUMENTS_BAD).
 */
CK_RV akv_attr_check_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                              enum akv_attr_op op);

/*
 * akv_attr_check_class - the attributes a caller may give an object of
 * class CLS (v3.0 §4.4-§4.5 data objects, §4.7/§4.10 secret keys). Data
 * objects take only the common storage attributes plus CKA_APPLICATION,
 * CKA_OBJECT_ID and CKA_VALUE; secret keys refuse the data-object ones
 * (CKA_APPLICATION, CKA_OBJECT_ID). Anything else ->
 * CKR_ATTRIBUTE_TYPE_INVALID ("not a valid attribute for this object"),
 * CKR_OK otherwise. Call after akv_attr_check_template (shape is known).
 */
CK_RV akv_attr_check_class(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_CLASS cls);

/*
 * akv_attrs_fill_defaults - adds to A every attribute that an object of class
 * CLS answers (v3.0 §4.4 storage, §4.7 common key, §4.8 public, §4.9
 * private, §4.10 secret key, §4.6.2-§4.6.3 X.509 certificate attributes
 * that are not the certificate's own) and that A does not hold yet, with the
 * module's default (the table in attr.c). Attributes already in A are left
 * alone; other classes get nothing. CKR_OK or CKR_HOST_MEMORY (A may then
 * hold some of the defaults).
 */
CK_RV akv_attrs_fill_defaults(struct akv_attrs *a, CK_OBJECT_CLASS cls);

/* akv_attrs_mech_allowed - false when A has a non-empty
 * CKA_ALLOWED_MECHANISMS list without MECH (v3.0 §4.7); absent or empty
 * means no restriction. */
bool akv_attrs_mech_allowed(const struct akv_attrs *a, CK_MECHANISM_TYPE mech);

/* akv_attr_check_find - find templates: only malformed entries are errors
 * (CKR_ATTRIBUTE_VALUE_INVALID); unknown types simply match nothing. */
CK_RV akv_attr_check_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* Template (caller array) lookups; NULL/false when absent. */
const CK_ATTRIBUTE *akv_attr_tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                       CK_ATTRIBUTE_TYPE type);
bool akv_attr_tmpl_bool(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_ATTRIBUTE_TYPE type, CK_BBOOL *out);
bool akv_attr_tmpl_ulong(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         CK_ATTRIBUTE_TYPE type, CK_ULONG *out);

/* Owned-list lookups. */
const CK_ATTRIBUTE *akv_attrs_find(const struct akv_attrs *a,
                                   CK_ATTRIBUTE_TYPE type);
/* akv_attrs_bool - the value, or DFLT when absent. */
CK_BBOOL akv_attrs_bool(const struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                        CK_BBOOL dflt);
bool akv_attrs_ulong(const struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                     CK_ULONG *out);

/* akv_attrs_set - adds or replaces TYPE with a copy of LEN bytes at P.
 * Returns CKR_OK or CKR_HOST_MEMORY (the list is unchanged then). */
CK_RV akv_attrs_set(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type, const void *p,
                    CK_ULONG len);
CK_RV akv_attrs_set_bool(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                         CK_BBOOL v);
CK_RV akv_attrs_set_ulong(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type,
                          CK_ULONG v);
/* akv_attrs_merge - sets every entry of TMPL except those of type SKIP
 * (pass (CK_ATTRIBUTE_TYPE)-1 to skip none). CKR_OK / CKR_HOST_MEMORY. */
CK_RV akv_attrs_merge(struct akv_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_ATTRIBUTE_TYPE skip);
void akv_attrs_remove(struct akv_attrs *a, CK_ATTRIBUTE_TYPE type);
CK_RV akv_attrs_copy(struct akv_attrs *dst, const struct akv_attrs *src);
/* akv_attrs_clear - wipes every value and frees everything (NULL-safe);
 * A becomes empty. */
void akv_attrs_clear(struct akv_attrs *a);
/* akv_attrs_reset - wipes and drops every value but keeps the list's block
 * (akv_attrs_capacity entries), so that refilling it allocates nothing for
 * values of up to sizeof(CK_ULONG) bytes; A becomes empty. For recycled
 * object records (token/objpool.h). */
void akv_attrs_reset(struct akv_attrs *a);
/* akv_attrs_capacity - entries A holds without growing (0 when it has no
 * block). */
size_t akv_attrs_capacity(const struct akv_attrs *a);

/* akv_attrs_match - true when every template entry is present in A with
 * exactly the same bytes (v3.0 §5.7.7 C_FindObjectsInit). */
bool akv_attrs_match(const struct akv_attrs *a, const CK_ATTRIBUTE *tmpl,
                     CK_ULONG n);

/* akv_attrs_size - bytes of akv_attrs_serialise output (C_GetObjectSize). */
size_t akv_attrs_size(const struct akv_attrs *a);

/*
 * akv_attrs_serialise - the compact TLV: "AKA1" | u32 count | count x
 * (u64 type | u32 len | len bytes), little-endian. *out is malloc'd (caller
 * frees). CKR_OK / CKR_HOST_MEMORY.
 */
CK_RV akv_attrs_serialise(const struct akv_attrs *a, uint8_t **out,
                          size_t *out_len);
/* akv_attrs_parse - inverse; CKR_OK, CKR_HOST_MEMORY, or CKR_DEVICE_ERROR
 * for a malformed blob (A is left empty). */
CK_RV akv_attrs_parse(const uint8_t *in, size_t len, struct akv_attrs *a);

/*
 * akv_attr_sensitive_fn - tells whether an attribute of the object exists
 * but must not be revealed (v3.0 §5.7.5 case 1).
 */
typedef bool (*akv_attr_sensitive_fn)(const void *ctx, CK_ATTRIBUTE_TYPE t);

/*
 * akv_attr_get_values - the C_GetAttributeValue core (v3.0 §5.7.5). Walks
 * the whole template; for each entry, in this order:
 *   1. sensitive (IS_SENSITIVE true)    -> ulValueLen =
 * CK_UNAVAILABLE_INFORMATION
 *   2. not an attribute of the object   -> ulValueLen =
 * CK_UNAVAILABLE_INFORMATION
 *   3. pValue NULL                      -> ulValueLen = exact length
 *   4. buffer large enough              -> value copied, ulValueLen = length
 *   5. buffer too small                 -> ulValueLen =
 * CK_UNAVAILABLE_INFORMATION pValue is never written for cases 1, 2, 3, 5.
 * Returns CKR_OK when no entry hit 1, 2 or 5; otherwise, by fixed precedence,
 * CKR_ATTRIBUTE_SENSITIVE > CKR_ATTRIBUTE_TYPE_INVALID > CKR_BUFFER_TOO_SMALL.
 */
CK_RV akv_attr_get_values(const struct akv_attrs *a,
                          akv_attr_sensitive_fn is_sensitive, const void *ctx,
                          CK_ATTRIBUTE *tmpl, CK_ULONG n);

#endif /* AKV_TOKEN_ATTR_H */
