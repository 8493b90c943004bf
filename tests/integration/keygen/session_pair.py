#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# C_GenerateKeyPair with CKA_TOKEN FALSE (README "Creating keys"): a local
# session key pair signs, verifies, is found in its session, and goes with
# the session; its private parts are not readable. Prints one line per
# check ("ok ..." or "FAIL ...") and the public key (DER, hex) and one
# signature (hex) for openssl to check.
#   session_pair.py MODULE TOKEN_LABEL rsa|ec
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL

module, token, kind = sys.argv[1:4]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
slot = next(s for s in lib.getSlotList(tokenPresent=True)
            if lib.getTokenInfo(s).label.strip() == token)
s = lib.openSession(slot, LL.CKF_SERIAL_SESSION | LL.CKF_RW_SESSION)
label = "session-" + kind
if kind == "rsa":
    pub_t = [(LL.CKA_TOKEN, False), (LL.CKA_MODULUS_BITS, 2048),
             (LL.CKA_PUBLIC_EXPONENT, (1, 0, 1)), (LL.CKA_LABEL, label)]
    gen_mech = LL.CKM_RSA_PKCS_KEY_PAIR_GEN
    smech = PyKCS11.Mechanism(LL.CKM_SHA256_RSA_PKCS, None)
else:
    # P-256: 1.2.840.10045.3.1.7
    p256 = (0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07)
    pub_t = [(LL.CKA_TOKEN, False), (LL.CKA_EC_PARAMS, p256),
             (LL.CKA_LABEL, label)]
    gen_mech = LL.CKM_EC_KEY_PAIR_GEN
    smech = PyKCS11.Mechanism(LL.CKM_ECDSA_SHA256, None)
priv_t = [(LL.CKA_TOKEN, False), (LL.CKA_SIGN, True), (LL.CKA_LABEL, label)]
pub, priv = s.generateKeyPair(pub_t, priv_t,
                              PyKCS11.Mechanism(gen_mech, None))
print("ok generated")
found = s.findObjects([(LL.CKA_LABEL, label)])
print(("ok" if len(found) == 2 else "FAIL") + " found %d objects" % len(found))
a = s.getAttributeValue(priv, [LL.CKA_TOKEN, LL.CKA_LOCAL, LL.CKA_SENSITIVE,
                               LL.CKA_EXTRACTABLE, LL.CKA_ALWAYS_SENSITIVE,
                               LL.CKA_NEVER_EXTRACTABLE,
                               LL.CKA_KEY_GEN_MECHANISM])
want = [False, True, True, False, True, True, gen_mech]
print(("ok" if list(a) == want else "FAIL") + " private attributes %r" % (a,))
if kind == "rsa":
    # PyKCS11 answers None for CKR_ATTRIBUTE_SENSITIVE / _TYPE_INVALID.
    try:
        v = s.getAttributeValue(priv, [LL.CKA_PRIVATE_EXPONENT])[0]
    except PyKCS11.PyKCS11Error as e:
        v = None
    print(("ok" if v is None else "FAIL") + " private exponent not readable")
data = b"signed by a session key pair"
sig = bytes(s.sign(priv, data, smech))
print(("ok" if s.verify(pub, data, sig, smech) else "FAIL") + " verifies")
print(("ok" if not s.verify(pub, data + b"!", sig, smech) else "FAIL")
      + " a changed message does not verify")
spki = bytes(s.getAttributeValue(pub, [LL.CKA_PUBLIC_KEY_INFO])[0])
print("spki " + spki.hex())
print("sig " + sig.hex())
s.closeSession()
s = lib.openSession(slot, LL.CKF_SERIAL_SESSION | LL.CKF_RW_SESSION)
found = s.findObjects([(LL.CKA_LABEL, label)])
print(("ok" if len(found) == 0 else "FAIL")
      + " gone with the session (%d left)" % len(found))
