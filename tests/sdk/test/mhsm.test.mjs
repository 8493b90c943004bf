// SPDX-License-Identifier: Apache-2.0
//
// KeyClient and CryptographyClient against an emulated Managed HSM (a
// NAME.managedhsm.azure.net stand-in on its own port): the SDK follows the
// 401 challenge to the https://managedhsm.azure.net audience; local RBAC
// (role assignments at /, /keys, /keys/{name}) decides, 403 ForbiddenByRbac
// otherwise; oct-HSM 128/192/256 keys wrap/unwrap with A*KW and
// CKM_AES_KEY_WRAP(_PAD) and encrypt/decrypt with AES-GCM and AES-CBC(PAD),
// results cross-checked between algorithms; RSA-HSM and EC-HSM keys sign
// and verify. Sources: Managed HSM built-in roles, key types and
// algorithms (learn.microsoft.com), keys.json.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, it } from "node:test";

import { rawRequest, startEmulator } from "../lib/emulator.mjs";
import { createSp, cryptoClient, keyClient, secretCredential } from "../lib/azure.mjs";

const HSM = "sdkhsm";
const CSE = "Managed HSM Crypto Service Encryption User";
let emu, hsmUrl, officer, service, kc, svcCred;
const oct = {};

before(async () => {
  emu = await startEmulator();
  officer = await createSp(emu, "hsm-officer");
  service = await createSp(emu, "hsm-service");
  const h = await emu.cli("keyvault", "create", "--hsm-name", HSM, "--administrators", officer.objectId);
  hsmUrl = h.properties.hsmUri;
  await emu.cli("keyvault", "role", "assignment", "create", "--hsm-name", HSM,
    "--role", "Managed HSM Crypto User", "--assignee-object-id", officer.objectId, "--scope", "/");
  kc = keyClient(hsmUrl, secretCredential(emu, officer));
  svcCred = secretCredential(emu, service);
  for (const size of [128, 192, 256]) {
    oct[size] = await kc.createOctKey(`oct${size}`, { hsm: true, keySize: size });
  }
});

after(async () => {
  await emu?.stop();
});

async function expectRest(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    if (code) assert.equal(e.code, code, e.message);
    return true;
  });
}

describe("KeyClient on a Managed HSM", () => {
  it("creates oct-HSM keys of 128, 192 and 256 bits; Get Key tells no size", async () => {
    for (const size of [128, 192, 256]) {
      assert.equal(oct[size].keyType, "oct-HSM");
      const got = await kc.getKey(`oct${size}`);
      assert.equal(got.keyType, "oct-HSM");
      assert.equal(got.key.k, undefined);
      assert.ok(got.id.startsWith(hsmUrl), got.id);
    }
  });

  it("creates RSA-HSM and EC-HSM keys and refuses software keys", async () => {
    const r = await kc.createRsaKey("rsa", { hsm: true, keySize: 2048 });
    assert.equal(r.keyType, "RSA-HSM");
    const e = await kc.createEcKey("ec", { hsm: true, curve: "P-256" });
    assert.equal(e.keyType, "EC-HSM");
    await expectRest(kc.createRsaKey("soft", { keySize: 2048 }), 400, "BadParameter");
  });

  it("asks for a https://managedhsm.azure.net token (the challenge's resource)", async () => {
    const r = await rawRequest("GET", `${hsmUrl}keys/oct128?api-version=7.4`);
    assert.equal(r.status, 401);
    assert.match(r.headers["www-authenticate"], /resource="https:\/\/managedhsm\.azure\.net"/);
    const vaultTok = (await secretCredential(emu, officer).getToken("https://vault.azure.net/.default")).token;
    const r2 = await rawRequest("GET", `${hsmUrl}keys/oct128?api-version=7.4`, {
      headers: { Authorization: `Bearer ${vaultTok}` },
    });
    assert.equal(r2.status, 401);
    assert.match(r2.text, /AKV10022/);
  });

  it("without a role assignment: 403 ForbiddenByRbac naming the data action", async () => {
    const svc = keyClient(hsmUrl, svcCred);
    await assert.rejects(svc.getKey("oct256"), (e) => {
      assert.equal(e.statusCode, 403);
      assert.match(e.message, /keys\/read\/action/);
      return true;
    });
  });
});

describe("CryptographyClient on oct-HSM keys", () => {
  it("wrapKey/unwrapKey with A128KW, A192KW, A256KW and CKM_AES_KEY_WRAP(_PAD)", async () => {
    const dek = crypto.randomBytes(32);
    for (const size of [128, 192, 256]) {
      const cc = cryptoClient(oct[size], secretCredential(emu, officer));
      for (const alg of [`A${size}KW`, "CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD"]) {
        const w = await cc.wrapKey(alg, dek);
        assert.equal(w.result.length, 40, alg);
        const u = await cc.unwrapKey(alg, w.result);
        assert.deepEqual(Buffer.from(u.result), dek, alg);
      }
      await expectRest(cc.wrapKey(size === 256 ? "A128KW" : "A256KW", dek), 400, "BadParameter");
    }
  });

  it("A*KW answers are RFC 3394: CKM_AES_KEY_WRAP and A256KW agree", async () => {
    const cc = cryptoClient(oct[256], secretCredential(emu, officer));
    const dek = crypto.randomBytes(24);
    const a = await cc.wrapKey("A256KW", dek);
    const b = await cc.wrapKey("CKM_AES_KEY_WRAP", dek);
    assert.deepEqual(Buffer.from(a.result), Buffer.from(b.result));
    const c = await cc.wrapKey("CKM_AES_KEY_WRAP_PAD", dek);
    assert.equal(c.result.length, 32); // RFC 5649: 24 bytes + 8
  });

  it("encrypt/decrypt with AES-GCM: the service picks the iv and answers the tag", async () => {
    const cc = cryptoClient(oct[256], secretCredential(emu, officer));
    const pt = Buffer.from("managed hsm gcm test data");
    const aad = Buffer.from("header");
    const e = await cc.encrypt({ algorithm: "A256GCM", plaintext: pt, additionalAuthenticatedData: aad });
    assert.equal(e.iv.length, 12);
    assert.equal(e.authenticationTag.length, 16);
    assert.equal(e.result.length, pt.length);
    const d = await cc.decrypt({
      algorithm: "A256GCM", ciphertext: e.result, iv: e.iv, authenticationTag: e.authenticationTag,
      additionalAuthenticatedData: aad,
    });
    assert.deepEqual(Buffer.from(d.result), pt);
    const bad = Buffer.from(e.authenticationTag);
    bad[0] ^= 1;
    await expectRest(cc.decrypt({
      algorithm: "A256GCM", ciphertext: e.result, iv: e.iv, authenticationTag: bad, additionalAuthenticatedData: aad,
    }), 400, "BadParameter");
  });

  it("encrypt/decrypt with AES-CBC and AES-CBCPAD under the caller's iv", async () => {
    const cc = cryptoClient(oct[128], secretCredential(emu, officer));
    const iv = crypto.randomBytes(16);
    const pt = crypto.randomBytes(20);
    const e = await cc.encrypt({ algorithm: "A128CBCPAD", plaintext: pt, iv });
    assert.equal(e.result.length, 32);
    assert.deepEqual(Buffer.from(e.iv), iv);
    const d = await cc.decrypt({ algorithm: "A128CBCPAD", ciphertext: e.result, iv });
    assert.deepEqual(Buffer.from(d.result), pt);
    const block = crypto.randomBytes(32);
    const e2 = await cc.encrypt({ algorithm: "A128CBC", plaintext: block, iv });
    const d2 = await cc.decrypt({ algorithm: "A128CBC", ciphertext: e2.result, iv });
    assert.deepEqual(Buffer.from(d2.result), block);
    await expectRest(cc.encrypt({ algorithm: "A128CBC", plaintext: pt, iv }), 400, "BadParameter");
  });

  it("Crypto Service Encryption User at /keys/{name}: get, wrap, unwrap only; revocation and restore", async () => {
    const grant = (scope) => emu.cli("keyvault", "role", "assignment", "create", "--hsm-name", HSM,
      "--role", CSE, "--assignee-object-id", service.objectId, "--scope", scope);
    const a = await grant("/keys/oct256");
    assert.equal(a.roleName, CSE);
    assert.equal(a.scope, "/keys/oct256");
    const cc = cryptoClient(oct[256].id, svcCred);
    const dek = crypto.randomBytes(32);
    const w = await cc.wrapKey("CKM_AES_KEY_WRAP_PAD", dek);
    assert.deepEqual(Buffer.from((await cc.unwrapKey("CKM_AES_KEY_WRAP_PAD", w.result)).result), dek);
    await expectRest(cc.encrypt({ algorithm: "A256GCM", plaintext: dek }), 403, "Forbidden");
    await expectRest(cryptoClient(oct[128].id, svcCred).wrapKey("A128KW", dek), 403, "Forbidden");
    await emu.cli("keyvault", "role", "assignment", "delete", "--hsm-name", HSM,
      "--assignee-object-id", service.objectId);
    await expectRest(cc.unwrapKey("CKM_AES_KEY_WRAP_PAD", w.result), 403, "Forbidden");
    await grant("/keys");
    assert.deepEqual(Buffer.from((await cc.unwrapKey("CKM_AES_KEY_WRAP_PAD", w.result)).result), dek);
  });
});

describe("CryptographyClient on RSA-HSM and EC-HSM keys", () => {
  it("signs and verifies", async () => {
    const cred = secretCredential(emu, officer);
    const digest = crypto.createHash("sha256").update("mhsm").digest();
    for (const name of ["rsa", "ec"]) {
      const key = await kc.getKey(name);
      const alg = name === "rsa" ? "PS256" : "ES256";
      const cc = cryptoClient(key.id, cred);
      const s = await cc.sign(alg, digest);
      assert.ok(s.result.length > 0);
      assert.equal((await cc.verify(alg, digest, s.result)).result, true, name);
      const other = crypto.createHash("sha256").update("other").digest();
      assert.equal((await cc.verify(alg, other, s.result)).result, false, name);
    }
  });
});
