// SPDX-License-Identifier: Apache-2.0
//
// CryptographyClient against the emulator: wrapKey/unwrapKey and
// encrypt/decrypt with RSA-OAEP, RSA-OAEP-256 and RSA1_5, every result
// cross-checked against local RSA (node:crypto / openssl) in both
// directions; permissions (403 Forbidden), key attributes (enabled, nbf,
// exp) on the service side, size limits, wrong version after rotation.
// protocol.md §1.5, §1.6, §2, §3.2, §6, §7.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, it } from "node:test";

import { rawRequest, startEmulator } from "../lib/emulator.mjs";
import {
  ALL_KEY_PERMS, VAULT_SCOPE, createSp, createVault, cryptoClient, keyClient, recorder, secretCredential,
} from "../lib/azure.mjs";
import { localDecrypt, localEncrypt, maxPlain, storedPrivatePem } from "../lib/rsa.mjs";

const VAULT = "cryptovault";
const ALGS = ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"];
let emu, vaultUrl, admin, remote, wrapOnly, getOnly;
let adminCred, remoteCred, kc, token;
const keys = {};

before(async () => {
  emu = await startEmulator();
  admin = await createSp(emu, "crypto-admin");
  remote = await createSp(emu, "crypto-remote");
  wrapOnly = await createSp(emu, "crypto-wraponly");
  getOnly = await createSp(emu, "crypto-getonly");
  vaultUrl = await createVault(emu, VAULT, [
    [admin.objectId, ALL_KEY_PERMS],
    // no `get`: the SDK's CryptographyClient falls back to remote-only (§6)
    [remote.objectId, ["wrapKey", "unwrapKey", "encrypt", "decrypt"]],
    [wrapOnly.objectId, ["get", "wrapKey"]],
    [getOnly.objectId, ["get"]],
  ]);
  adminCred = secretCredential(emu, admin);
  remoteCred = secretCredential(emu, remote);
  kc = keyClient(vaultUrl, adminCred);
  for (const size of [2048, 3072, 4096]) {
    keys[size] = await kc.createRsaKey(`k${size}`, { keySize: size });
  }
  token = (await adminCred.getToken(VAULT_SCOPE)).token;
});

after(async () => {
  await emu?.stop();
});

const auth = () => ({ Authorization: `Bearer ${token}` });
const b64u = (b) => Buffer.from(b).toString("base64url");

async function raw(op, keyPath, body) {
  return rawRequest("POST", `${vaultUrl}keys/${keyPath}/${op}?api-version=7.4`, { headers: auth(), body });
}

async function expectRest(promise, status, code, re) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    assert.equal(e.code, code, e.message);
    if (re) {
      assert.match(e.message, re);
    }
    return true;
  });
}

describe("CryptographyClient, remote (service) operations cross-checked locally", () => {
  for (const size of [2048, 3072, 4096]) {
    for (const alg of ALGS) {
      it(`RSA-${size} ${alg}: wrapKey/unwrapKey both directions`, async () => {
        const k = keys[size];
        const pem = storedPrivatePem(emu.dir, VAULT, k.name, k.properties.version);
        const rec = recorder();
        const cc = cryptoClient(k.id, remoteCred, { additionalPolicies: [rec.policy] });
        const cek = crypto.randomBytes(32);
        // service wrap -> local unwrap
        const w = await cc.wrapKey(alg, cek);
        assert.equal(w.algorithm, alg);
        assert.equal(w.result.length, size / 8);
        assert.ok(rec.seen.some((s) => /\/wrapkey\?/.test(s.url) && s.status === 200), "went to the service");
        assert.deepEqual(localDecrypt(pem, alg, Buffer.from(w.result)), cek);
        // local wrap -> service unwrap
        const local = localEncrypt(k.key, alg, cek);
        const u = await cc.unwrapKey(alg, local);
        assert.deepEqual(Buffer.from(u.result), cek);
        // service round trip, randomised padding
        const w2 = await cc.wrapKey(alg, cek);
        assert.notDeepEqual(Buffer.from(w2.result), Buffer.from(w.result));
        assert.deepEqual(Buffer.from((await cc.unwrapKey(alg, w2.result)).result), cek);
      });

      it(`RSA-${size} ${alg}: encrypt/decrypt of the largest allowed plaintext, both directions`, async () => {
        const k = keys[size];
        const pem = storedPrivatePem(emu.dir, VAULT, k.name, k.properties.version);
        const cc = cryptoClient(k.id, remoteCred);
        const max = maxPlain(alg, size / 8);
        const pt = crypto.randomBytes(max);
        const e = await cc.encrypt({ algorithm: alg, plaintext: pt });
        assert.equal(e.result.length, size / 8);
        assert.deepEqual(localDecrypt(pem, alg, Buffer.from(e.result)), pt);
        const d = await cc.decrypt({ algorithm: alg, ciphertext: localEncrypt(k.key, alg, pt) });
        assert.deepEqual(Buffer.from(d.result), pt);
        // one byte more than the limit is refused by the service
        await expectRest(cc.encrypt({ algorithm: alg, plaintext: crypto.randomBytes(max + 1) }), 400, "BadParameter");
      });
    }
  }

  it("SDK-local wrap (RSA-OAEP with the public key) unwraps on the service", async () => {
    const k = keys[2048];
    const rec = recorder();
    const cc = cryptoClient(k, adminCred, { additionalPolicies: [rec.policy] });
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP", cek);
    assert.ok(!rec.seen.some((s) => /\/wrapkey\?/.test(s.url)), "RSA-OAEP wrap is local in the SDK (§6)");
    const u = await cc.unwrapKey("RSA-OAEP", w.result);
    assert.deepEqual(Buffer.from(u.result), cek);
    assert.ok(rec.seen.some((s) => /\/unwrapkey\?/.test(s.url) && s.status === 200));
  });

  it("CryptographyClient from an identifier with `get` fetches the key then works", async () => {
    const k = keys[2048];
    const cc = cryptoClient(k.id, adminCred);
    const cek = crypto.randomBytes(16);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    assert.equal(w.keyID, k.id);
    assert.deepEqual(Buffer.from((await cc.unwrapKey("RSA-OAEP-256", w.result)).result), cek);
  });

  it("CryptographyClient on an unversioned id uses the current version (`//wrapkey`)", async () => {
    const k = keys[2048];
    const rec = recorder();
    const cc = cryptoClient(`${vaultUrl}keys/${k.name}`, remoteCred, { additionalPolicies: [rec.policy] });
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    assert.ok(rec.seen.some((s) => s.url.includes(`/keys/${k.name}//wrapkey?`) && s.status === 200), JSON.stringify(rec.seen));
    const pem = storedPrivatePem(emu.dir, VAULT, k.name, k.properties.version);
    assert.deepEqual(localDecrypt(pem, "RSA-OAEP-256", Buffer.from(w.result)), cek);
    const r = await raw("wrapkey", `${k.name}/`, { alg: "RSA-OAEP-256", value: b64u(cek) });
    assert.equal(r.status, 200);
    assert.equal(r.json.kid, k.id, "response kid is versioned");
  });
});

describe("service-side refusals", () => {
  it("missing unwrapKey permission: RestError 403 Forbidden", async () => {
    const k = keys[2048];
    const cc = cryptoClient(k.id, secretCredential(emu, wrapOnly));
    const w = await cc.wrapKey("RSA-OAEP-256", crypto.randomBytes(32));
    await assert.rejects(cc.unwrapKey("RSA-OAEP-256", w.result), (e) => {
      assert.equal(e.name, "RestError");
      assert.equal(e.statusCode, 403);
      assert.equal(e.code, "Forbidden");
      assert.match(e.message, /does not have keys unwrapKey permission/i);
      assert.equal(e.details?.error?.innerError?.code ?? e.details?.error?.innererror?.code, "AccessDenied");
      return true;
    });
  });

  it("missing wrapKey permission: RestError 403 Forbidden", async () => {
    const cc = cryptoClient(keys[2048].id, secretCredential(emu, getOnly));
    await expectRest(cc.wrapKey("RSA-OAEP-256", crypto.randomBytes(32)), 403, "Forbidden");
    await expectRest(cc.decrypt({ algorithm: "RSA-OAEP", ciphertext: crypto.randomBytes(256) }), 403, "Forbidden");
  });

  it("permission removed with delete-policy takes effect at once", async () => {
    const sp = await createSp(emu, "crypto-revoked");
    await emu.cli("keyvault", "set-policy", "--name", VAULT, "--object-id", sp.objectId, "--key-permissions", "wrapKey", "unwrapKey");
    const cc = cryptoClient(keys[2048].id, secretCredential(emu, sp));
    const w = await cc.wrapKey("RSA-OAEP-256", crypto.randomBytes(32));
    await emu.cli("keyvault", "delete-policy", "--name", VAULT, "--object-id", sp.objectId);
    await expectRest(cc.unwrapKey("RSA-OAEP-256", w.result), 403, "Forbidden");
  });

  it("unwrap with the wrong algorithm or garbage is 400 BadParameter", async () => {
    const cc = cryptoClient(keys[2048].id, remoteCred);
    const w = await cc.wrapKey("RSA-OAEP-256", crypto.randomBytes(32));
    await expectRest(cc.unwrapKey("RSA-OAEP", w.result), 400, "BadParameter");
    await expectRest(cc.unwrapKey("RSA-OAEP-256", crypto.randomBytes(256)), 400, "BadParameter");
    await expectRest(cc.unwrapKey("RSA-OAEP-256", crypto.randomBytes(100)), 400, "BadParameter");
  });

  it("after rotation, the old version unwraps its blobs and the new one refuses them", async () => {
    const k = await kc.createRsaKey("rotcrypt", { keySize: 2048 });
    const cek = crypto.randomBytes(32);
    const w = await cryptoClient(k.id, remoteCred).wrapKey("RSA-OAEP-256", cek);
    const r = await kc.rotateKey("rotcrypt");
    await expectRest(cryptoClient(r.id, remoteCred).unwrapKey("RSA-OAEP-256", w.result), 400, "BadParameter", /OAEP/);
    const u = await cryptoClient(k.id, remoteCred).unwrapKey("RSA-OAEP-256", w.result);
    assert.deepEqual(Buffer.from(u.result), cek);
  });

  it("raw: non-base64url value, missing fields, unknown alg are 400 BadParameter", async () => {
    const p = `${keys[2048].name}/${keys[2048].properties.version}`;
    let r = await raw("wrapkey", p, { alg: "RSA-OAEP-256", value: "a+b/c=" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
    assert.match(r.json.error.message, /not base64url/);
    r = await raw("wrapkey", p, { alg: "RSA-OAEP-256" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
    r = await raw("wrapkey", p, { value: "AAAA" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
    r = await raw("wrapkey", p, { alg: "A256KW", value: b64u(crypto.randomBytes(32)) });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
    r = await rawRequest("POST", `${vaultUrl}keys/${p}/wrapkey?api-version=7.4`, { headers: auth(), body: "{not json" });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
  });

  it("raw: the response carries kid and unpadded base64url value", async () => {
    const k = keys[2048];
    const r = await raw("wrapkey", `${k.name}/${k.properties.version}`, { alg: "RSA-OAEP-256", value: b64u(crypto.randomBytes(32)) });
    assert.equal(r.status, 200);
    assert.equal(r.json.kid, k.id);
    assert.match(r.json.value, /^[A-Za-z0-9_-]{342}$/);
  });
});

describe("key attributes on the service side", () => {
  async function setup(name) {
    const k = await kc.createRsaKey(name, { keySize: 2048 });
    const p = `${name}/${k.properties.version}`;
    const cek = crypto.randomBytes(32);
    const w = await raw("wrapkey", p, { alg: "RSA-OAEP-256", value: b64u(cek) });
    assert.equal(w.status, 200);
    const e = await raw("encrypt", p, { alg: "RSA-OAEP", value: b64u(cek) });
    assert.equal(e.status, 200);
    return { k, p, cek, wrapped: w.json.value, encrypted: e.json.value };
  }

  it("expired key (exp in the past): wrap/encrypt 403, unwrap/decrypt still work", async () => {
    const s = await setup("expkey");
    await kc.updateKeyProperties("expkey", s.k.properties.version, { expiresOn: new Date(Date.now() - 60000) });
    let r = await raw("wrapkey", s.p, { alg: "RSA-OAEP-256", value: b64u(s.cek) });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, "Forbidden");
    r = await raw("encrypt", s.p, { alg: "RSA-OAEP", value: b64u(s.cek) });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, "Forbidden");
    r = await raw("unwrapkey", s.p, { alg: "RSA-OAEP-256", value: s.wrapped });
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(r.json.value, "base64url"), s.cek);
    r = await raw("decrypt", s.p, { alg: "RSA-OAEP", value: s.encrypted });
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(r.json.value, "base64url"), s.cek);
    // the SDK refuses client-side before calling the service (§6)
    const fresh = await kc.getKey("expkey");
    const rec = recorder();
    await assert.rejects(cryptoClient(fresh, adminCred, { additionalPolicies: [rec.policy] }).wrapKey("RSA-OAEP-256", s.cek), /expired/i);
    assert.equal(rec.seen.length, 0);
  });

  it("not-yet-valid key (nbf in the future): wrap 403, unwrap works", async () => {
    const s = await setup("nbfkey");
    await kc.updateKeyProperties("nbfkey", s.k.properties.version, { notBefore: new Date(Date.now() + 3600000) });
    let r = await raw("wrapkey", s.p, { alg: "RSA-OAEP-256", value: b64u(s.cek) });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, "Forbidden");
    r = await raw("unwrapkey", s.p, { alg: "RSA-OAEP-256", value: s.wrapped });
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(r.json.value, "base64url"), s.cek);
  });

  it("disabled key: wrap and unwrap 403 Forbidden (KeyDisabled); re-enabled works", async () => {
    const s = await setup("diskey");
    await kc.updateKeyProperties("diskey", s.k.properties.version, { enabled: false });
    let r = await raw("wrapkey", s.p, { alg: "RSA-OAEP-256", value: b64u(s.cek) });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, "Forbidden");
    assert.equal(r.json.error.innererror?.code, "KeyDisabled");
    r = await raw("unwrapkey", s.p, { alg: "RSA-OAEP-256", value: s.wrapped });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.innererror?.code, "KeyDisabled");
    // the SDK does not check `enabled` client-side: the service's 403 surfaces
    await expectRest(cryptoClient(s.k.id, remoteCred).unwrapKey("RSA-OAEP-256", Buffer.from(s.wrapped, "base64url")), 403, "Forbidden");
    await kc.updateKeyProperties("diskey", s.k.properties.version, { enabled: true });
    r = await raw("unwrapkey", s.p, { alg: "RSA-OAEP-256", value: s.wrapped });
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(r.json.value, "base64url"), s.cek);
  });

  it("key_ops without unwrapKey: service refuses unwrap with 403", async () => {
    const k = await kc.createRsaKey("wraponlyops", { keySize: 2048, keyOps: ["wrapKey"] });
    const p = `wraponlyops/${k.properties.version}`;
    const cek = crypto.randomBytes(32);
    const w = await raw("wrapkey", p, { alg: "RSA-OAEP-256", value: b64u(cek) });
    assert.equal(w.status, 200);
    const u = await raw("unwrapkey", p, { alg: "RSA-OAEP-256", value: w.json.value });
    assert.equal(u.status, 403);
    assert.equal(u.json.error.code, "Forbidden");
  });

  it("unknown version and deleted key are 404 KeyNotFound for crypto ops", async () => {
    const r = await raw("wrapkey", `k2048/${"f".repeat(32)}`, { alg: "RSA-OAEP-256", value: "AAAA" });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, "KeyNotFound");
  });
});

describe("sign / verify (remote), cross-checked with node:crypto", () => {
  const HASH = { 256: "sha256", 384: "sha384", 512: "sha512" };
  for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]) {
    it(`${alg}: service signature verifies locally; local check of tampering; service verify`, async () => {
      const k = keys[2048];
      const cc = cryptoClient(k.id, adminCred);
      const bits = Number(alg.slice(2));
      const data = crypto.randomBytes(100);
      const digest = crypto.createHash(HASH[bits]).update(data).digest();
      const s = await cc.sign(alg, digest);
      assert.equal(s.result.length, 256);
      const pad = alg.startsWith("PS")
        ? { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 }
        : { padding: crypto.constants.RSA_PKCS1_PADDING };
      const pub = (await import("../lib/rsa.mjs")).publicKeyOf(k.key);
      assert.equal(crypto.verify(HASH[bits], data, { key: pub, ...pad }, Buffer.from(s.result)), true);
      // service verify (remote: the signing client has `get`, but verify is remote in the SDK)
      assert.equal((await cc.verify(alg, digest, s.result)).result, true);
      const bad = Buffer.from(s.result);
      bad[10] ^= 1;
      assert.equal((await cc.verify(alg, digest, bad)).result, false);
      // a signature made locally with the stored private key verifies on the service
      const pem = storedPrivatePem(emu.dir, VAULT, k.name, k.properties.version);
      const local = crypto.sign(HASH[bits], data, { key: pem, ...pad });
      assert.equal((await cc.verify(alg, digest, local)).result, true);
    });
  }

  it("wrong digest length or algorithm is 400 BadParameter; missing sign permission is 403", async () => {
    const cc = cryptoClient(keys[2048].id, adminCred);
    await expectRest(cc.sign("RS256", crypto.randomBytes(20)), 400, "BadParameter");
    await expectRest(cc.sign("ES256", crypto.randomBytes(32)), 400, "BadParameter");
    await expectRest(cryptoClient(keys[2048].id, remoteCred).sign("RS256", crypto.randomBytes(32)), 403, "Forbidden");
  });

  it("expired key: sign refused (403), verify still works", async () => {
    const k = await kc.createRsaKey("expsign", { keySize: 2048 });
    const p = `expsign/${k.properties.version}`;
    const digest = crypto.randomBytes(32);
    const s = await raw("sign", p, { alg: "PS256", value: b64u(digest) });
    assert.equal(s.status, 200);
    await kc.updateKeyProperties("expsign", k.properties.version, { expiresOn: new Date(Date.now() - 60000) });
    const s2 = await raw("sign", p, { alg: "PS256", value: b64u(digest) });
    assert.equal(s2.status, 403);
    assert.equal(s2.json.error.code, "Forbidden");
    const v = await raw("verify", p, { alg: "PS256", digest: b64u(digest), value: s.json.value });
    assert.equal(v.status, 200);
    assert.deepEqual(v.json, { value: true });
  });
});

describe("importKey with a local private key", () => {
  it("imports an RSA-2048 JWK; service results check against the local private key", async () => {
    const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const j = privateKey.export({ format: "jwk" });
    const jwk = { kty: "RSA", keyOps: ["wrapKey", "unwrapKey", "sign", "verify"] };
    for (const f of ["n", "e", "d", "p", "q", "dp", "dq", "qi"]) {
      jwk[f] = Buffer.from(j[f], "base64url");
    }
    const imp = await kc.importKey("imported", jwk, { tags: { src: "local" } });
    assert.equal(imp.keyType, "RSA");
    assert.deepEqual(Buffer.from(imp.key.n), Buffer.from(j.n, "base64url"));
    assert.equal(imp.key.d, undefined, "private material is not returned");
    assert.deepEqual([...imp.keyOperations].sort(), ["sign", "unwrapKey", "verify", "wrapKey"]);
    assert.deepEqual(imp.properties.tags, { src: "local" });
    const cc = cryptoClient(imp.id, remoteCred);
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    const mine = crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.from(w.result));
    assert.deepEqual(mine, cek);
    const local = crypto.publicEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, cek);
    assert.deepEqual(Buffer.from((await cc.unwrapKey("RSA-OAEP", local)).result), cek);
    // key_ops from the import are enforced
    await expectRest(cc.encrypt({ algorithm: "RSA-OAEP-256", plaintext: cek }), 403, "Forbidden");
    // importing again adds a version
    const again = await kc.importKey("imported", jwk);
    assert.notEqual(again.properties.version, imp.properties.version);
  });

  it("a public-only JWK is refused with 400 BadParameter", async () => {
    const { publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const j = publicKey.export({ format: "jwk" });
    await expectRest(kc.importKey("pubonly", { kty: "RSA", n: Buffer.from(j.n, "base64url"), e: Buffer.from(j.e, "base64url") }), 400, "BadParameter");
  });
});

describe("EC keys: create, sign/verify cross-checked with node:crypto", () => {
  const CURVES = [
    { crv: "P-256", alg: "ES256", hash: "sha256", clen: 32, node: "P-256" },
    { crv: "P-384", alg: "ES384", hash: "sha384", clen: 48, node: "P-384" },
    { crv: "P-521", alg: "ES512", hash: "sha512", clen: 66, node: "P-521" },
    { crv: "P-256K", alg: "ES256K", hash: "sha256", clen: 32, node: "secp256k1" },
  ];
  for (const c of CURVES) {
    it(`${c.crv}: createEcKey, ${c.alg} both directions, rotate keeps the curve`, async () => {
      const name = `ec-${c.crv.toLowerCase()}`;
      const k = await kc.createEcKey(name, { curve: c.crv });
      assert.equal(k.keyType, "EC");
      assert.equal(k.key.crv, c.crv);
      assert.equal(k.key.x.length, c.clen);
      assert.equal(k.key.y.length, c.clen);
      assert.equal(k.key.n, undefined);
      assert.deepEqual([...k.keyOperations].sort(), ["sign", "verify"]);
      const pub = crypto.createPublicKey({
        key: { kty: "EC", crv: c.node, x: Buffer.from(k.key.x).toString("base64url"), y: Buffer.from(k.key.y).toString("base64url") },
        format: "jwk",
      });
      const cc = cryptoClient(k.id, adminCred);
      const data = crypto.randomBytes(64);
      const digest = crypto.createHash(c.hash).update(data).digest();
      const s = await cc.sign(c.alg, digest);
      assert.equal(s.result.length, 2 * c.clen, "JWS r || s");
      assert.equal(crypto.verify(c.hash, data, { key: pub, dsaEncoding: "ieee-p1363" }, Buffer.from(s.result)), true);
      assert.equal((await cc.verify(c.alg, digest, s.result)).result, true);
      const bad = Buffer.from(s.result);
      bad[5] ^= 1;
      assert.equal((await cc.verify(c.alg, digest, bad)).result, false);
      const pem = storedPrivatePem(emu.dir, VAULT, name, k.properties.version);
      const local = crypto.sign(c.hash, data, { key: pem, dsaEncoding: "ieee-p1363" });
      assert.equal((await cc.verify(c.alg, digest, local)).result, true);
      const r = await kc.rotateKey(name);
      assert.equal(r.key.crv, c.crv);
      assert.notDeepEqual(Buffer.from(r.key.x), Buffer.from(k.key.x));
    });
  }

  it("EC: wrong alg for the curve / digest length is 400; no wrapKey on EC", async () => {
    const k = await kc.createEcKey("ec-misc", { curve: "P-256" });
    const cc = cryptoClient(k.id, adminCred);
    await expectRest(cc.sign("ES384", crypto.randomBytes(48)), 400, "BadParameter");
    await expectRest(cc.sign("ES256", crypto.randomBytes(48)), 400, "BadParameter");
    await expectRest(cc.sign("RS256", crypto.randomBytes(32)), 400, "BadParameter");
    const w = await raw("wrapkey", `ec-misc/${k.properties.version}`, { alg: "RSA-OAEP-256", value: b64u(crypto.randomBytes(32)) });
    assert.equal(w.status, 403, "key_ops of an EC key do not include wrapKey");
    await expectRest(kc.createEcKey("ec-bad", { curve: "P-192" }), 400, "BadParameter");
  });
});
