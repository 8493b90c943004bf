// SPDX-License-Identifier: Apache-2.0
//
// Local RSA reference operations for cross-checking the service: public-key
// encryption with node:crypto on the JWK the SDK returned, and private-key
// decryption with the key the emulator persisted in DIR/keys/<vault>/<key>.json
// (node:crypto for OAEP, the openssl CLI for PKCS#1 v1.5, which Node refuses
// since CVE-2023-46809).
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import { readFileSync, writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Max plaintext bytes per alg for a k-byte modulus (protocol.md §2.2). */
export function maxPlain(alg, k) {
  return { "RSA1_5": k - 11, "RSA-OAEP": k - 42, "RSA-OAEP-256": k - 66 }[alg];
}

function paddingOf(alg) {
  if (alg === "RSA1_5") {
    return { padding: crypto.constants.RSA_PKCS1_PADDING };
  }
  return { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === "RSA-OAEP-256" ? "sha256" : "sha1" };
}

/** The SDK's JsonWebKey (Uint8Array n/e) as a node KeyObject. */
export function publicKeyOf(jwk) {
  return crypto.createPublicKey({
    key: { kty: "RSA", n: Buffer.from(jwk.n).toString("base64url"), e: Buffer.from(jwk.e).toString("base64url") },
    format: "jwk",
  });
}

export function localEncrypt(jwk, alg, data) {
  return crypto.publicEncrypt({ key: publicKeyOf(jwk), ...paddingOf(alg) }, data);
}

/** The private key PEM of VAULT/NAME/VERSION from the emulator's store. */
export function storedPrivatePem(emuDir, vault, name, version) {
  const j = JSON.parse(readFileSync(join(emuDir, "keys", vault.toLowerCase(), `${name.toLowerCase()}.json`), "utf8"));
  const v = j.versions.find((x) => x.id === version);
  if (!v || !v.pem) {
    throw new Error(`no stored private key for ${vault}/${name}/${version}`);
  }
  return v.pem;
}

export function localDecrypt(pem, alg, data) {
  if (alg !== "RSA1_5") {
    return crypto.privateDecrypt({ key: pem, ...paddingOf(alg) }, data);
  }
  const d = mkdtempSync(join(tmpdir(), "akv-rsa."));
  try {
    writeFileSync(join(d, "k.pem"), pem, { mode: 0o600 });
    writeFileSync(join(d, "in.bin"), data);
    return execFileSync("openssl", ["pkeyutl", "-decrypt", "-inkey", join(d, "k.pem"), "-in", join(d, "in.bin"),
      "-pkeyopt", "rsa_padding_mode:pkcs1"]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
