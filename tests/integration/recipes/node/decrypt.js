// SPDX-License-Identifier: Apache-2.0
// docs/RECIPES.md "Node": graphene-pk11 (over pkcs11js) decrypts a data key
// wrapped with the vault key's public half (RSA-OAEP-256 -> Key Vault
// unwrapKey) and writes it to stdout.
//   node decrypt.js MODULE TOKEN_LABEL KEY_LABEL WRAPPED_FILE
"use strict";
const fs = require("fs");
const graphene = require("graphene-pk11");

const [module_, token, keyLabel, wrappedFile] = process.argv.slice(2);
const mod = graphene.Module.load(module_, "akv");
mod.initialize();
try {
  const slots = mod.getSlots(true);
  let slot = null;
  for (let i = 0; i < slots.length; i++) {
    if (slots.items(i).getToken().label.trim() === token) {
      slot = slots.items(i);
    }
  }
  if (slot === null) {
    throw new Error(`no token ${token}`);
  }
  const session = slot.open(graphene.SessionFlag.SERIAL_SESSION);
  const priv = session
    .find({ class: graphene.ObjectClass.PRIVATE_KEY, label: keyLabel })
    .items(0);
  const dek = session
    .createDecipher(
      {
        name: "RSA_PKCS_OAEP",
        params: new graphene.RsaOaepParams(
          graphene.MechanismEnum.SHA256,
          graphene.RsaMgf.MGF1_SHA256,
        ),
      },
      priv,
    )
    .once(fs.readFileSync(wrappedFile), Buffer.alloc(512));
  process.stdout.write(dek);
  session.close();
} finally {
  mod.finalize();
}
