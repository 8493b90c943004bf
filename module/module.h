/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to module/: the two function lists (interface.c).
 */
#ifndef AKV_MODULE_MODULE_H
#define AKV_MODULE_MODULE_H

#include <p11-kit/pkcs11.h>

#include "../include/pkcs11/akv-pkcs11.h"

/* The three exported entry points; everything else is hidden
 * (-fvisibility=hidden + exports.map). */
#define AKV_EXPORT __attribute__((visibility("default")))

/* The PKCS#11 2.40 list (C_GetFunctionList) and the 3.0 list
 * (C_GetInterface "PKCS 11" 3.0). */
extern CK_FUNCTION_LIST akv_interface_list_240;
extern CK_FUNCTION_LIST_3_0 akv_interface_list_30;

#endif /* AKV_MODULE_MODULE_H */
