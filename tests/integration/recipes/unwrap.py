#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# docs/RECIPES.md "Python (PyKCS11)": unwrap a data key with the vault key
# (RSA-OAEP-256, Key Vault unwrapKey) into a session AES key, then encrypt
# with it locally (AES-CBC-PAD). Writes the ciphertext to stdout.
#   unwrap.py MODULE TOKEN_LABEL KEY_LABEL WRAPPED_FILE IV_HEX < PLAINTEXT
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL

module, token, key_label, wrapped_file, iv_hex = sys.argv[1:6]
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
slot = next(s for s in lib.getSlotList(tokenPresent=True)
            if lib.getTokenInfo(s).label.strip() == token)
session = lib.openSession(slot)
priv = session.findObjects([(LL.CKA_CLASS, LL.CKO_PRIVATE_KEY),
                            (LL.CKA_LABEL, key_label)])[0]
with open(wrapped_file, "rb") as f:
    wrapped = f.read()
oaep = PyKCS11.RSAOAEPMechanism(LL.CKM_SHA256, LL.CKG_MGF1_SHA256)
dek = session.unwrapKey(priv, wrapped, [
    (LL.CKA_CLASS, LL.CKO_SECRET_KEY), (LL.CKA_KEY_TYPE, LL.CKK_AES),
    (LL.CKA_TOKEN, False), (LL.CKA_ENCRYPT, True), (LL.CKA_DECRYPT, True)],
    oaep)
cbc = PyKCS11.Mechanism(LL.CKM_AES_CBC_PAD, bytes.fromhex(iv_hex))
ct = session.encrypt(dek, sys.stdin.buffer.read(), cbc)
sys.stdout.buffer.write(bytes(ct))
session.destroyObject(dek)
session.closeSession()
