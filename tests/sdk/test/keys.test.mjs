// SPDX-License-Identifier: Apache-2.0
//
// KeyClient against the emulator: create (RSA 2048/3072/4096), get latest
// and by version, update, rotate, delete/recover with the SDK pollers,
// purge, soft-delete conflicts, listing (and its 403 without `list`),
// api-version handling. protocol.md §1, §3, §7.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { rawRequest, startEmulator } from "../lib/emulator.mjs";
import {
  ALL_KEY_PERMS, VAULT_SCOPE, createSp, createVault, keyClient, recorder, secretCredential,
} from "../lib/azure.mjs";

let emu, admin, nolist, vaultUrl, client, cred;
const HEX32 = /^[0-9a-f]{32}$/;

before(async () => {
  emu = await startEmulator();
  admin = await createSp(emu, "keys-admin");
  nolist = await createSp(emu, "keys-nolist");
  vaultUrl = await createVault(emu, "keysvault", [
    [admin.objectId, ALL_KEY_PERMS],
    [nolist.objectId, ALL_KEY_PERMS.filter((p) => p !== "list")],
  ], { sku: "premium" }); // premium: the RSA-HSM test below
  cred = secretCredential(emu, admin);
  client = keyClient(vaultUrl, cred);
});

after(async () => {
  await emu?.stop();
});

async function expectRest(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

async function collect(iter) {
  const out = [];
  for await (const x of iter) {
    out.push(x);
  }
  return out;
}

describe("KeyClient", () => {
  it("vaultUri is https://127.0.0.1:PORT/", () => {
    assert.match(vaultUrl, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  });

  for (const size of [2048, 3072, 4096]) {
    it(`createRsaKey ${size} returns a full KeyBundle`, async () => {
      const name = `rsa${size}`;
      const key = await client.createRsaKey(name, { keySize: size, keyOps: ["wrapKey", "unwrapKey", "encrypt", "decrypt"] });
      assert.equal(key.name, name);
      assert.equal(key.keyType, "RSA");
      assert.equal(key.key.n.length, size / 8);
      assert.ok(key.key.n[0] & 0x80, "n is minimal (top bit set, no leading 0)");
      assert.deepEqual([...key.key.e], [1, 0, 1]);
      assert.deepEqual([...key.keyOperations].sort(), ["decrypt", "encrypt", "unwrapKey", "wrapKey"]);
      assert.match(key.properties.version, HEX32);
      assert.equal(key.id, `${vaultUrl}keys/${name}/${key.properties.version}`);
      assert.equal(key.properties.vaultUrl, vaultUrl.replace(/\/$/, ""));
      assert.equal(key.properties.enabled, true);
      assert.ok(key.properties.createdOn instanceof Date);
      assert.ok(Math.abs(key.properties.createdOn.getTime() - Date.now()) < 60000);
      assert.equal(key.properties.recoveryLevel, "Recoverable+Purgeable");
      assert.equal(key.properties.recoverableDays, 90);
      assert.equal(key.key.d, undefined, "no private material");
      assert.equal(key.key.p, undefined);
    });
  }

  it("createKey RSA-HSM: kty RSA-HSM, hsmPlatform \"2\" (api 2025-07-01)", async () => {
    const k = await client.createKey("hsmkey", "RSA-HSM", { keySize: 3072 });
    assert.equal(k.keyType, "RSA-HSM");
    assert.equal(k.key.n.length, 384);
    assert.equal(k.properties.hsmPlatform, "2");
    assert.equal(k.properties.exportable, false);
  });

  it("getKey latest and by version; create on an existing name adds a version", async () => {
    const v1 = await client.createRsaKey("multi", { keySize: 2048 });
    const v2 = await client.createRsaKey("multi", { keySize: 2048 });
    assert.notEqual(v1.properties.version, v2.properties.version);
    const latest = await client.getKey("multi");
    assert.equal(latest.id, v2.id);
    assert.deepEqual(latest.key.n, v2.key.n);
    const old = await client.getKey("multi", { version: v1.properties.version });
    assert.equal(old.id, v1.id);
    assert.deepEqual(old.key.n, v1.key.n);
    assert.notDeepEqual(old.key.n, latest.key.n);
  });

  it("names are case-insensitive", async () => {
    const k = await client.createRsaKey("CaseKey", { keySize: 2048 });
    const g = await client.getKey("casekey");
    assert.deepEqual(g.key.n, k.key.n);
  });

  it("unknown key and unknown version are 404 KeyNotFound", async () => {
    await expectRest(client.getKey("nosuchkey"), 404, "KeyNotFound");
    await expectRest(client.getKey("multi", { version: "0".repeat(32) }), 404, "KeyNotFound");
  });

  it("invalid key name on create is 400 BadParameter", async () => {
    const r = await rawRequest("POST", `${vaultUrl}keys/bad_name!/create?api-version=7.4`, {
      headers: { Authorization: `Bearer ${(await cred.getToken(VAULT_SCOPE)).token}` },
      body: { kty: "RSA", key_size: 2048 },
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
  });

  it("unsupported key size is 400 BadParameter", async () => {
    await expectRest(client.createRsaKey("oddsize", { keySize: 1000 }), 400, "BadParameter");
  });

  it("updateKeyProperties sets enabled, nbf, exp, tags, key_ops", async () => {
    const k = await client.createRsaKey("upd", { keySize: 2048 });
    const nbf = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000);
    const exp = new Date(Math.floor(Date.now() / 1000 + 86400) * 1000);
    const u = await client.updateKeyProperties("upd", k.properties.version, {
      enabled: false, notBefore: nbf, expiresOn: exp, tags: { team: "p11", env: "test" }, keyOps: ["wrapKey", "unwrapKey"],
    });
    assert.equal(u.properties.enabled, false);
    assert.equal(u.properties.notBefore.getTime(), nbf.getTime());
    assert.equal(u.properties.expiresOn.getTime(), exp.getTime());
    assert.deepEqual(u.properties.tags, { team: "p11", env: "test" });
    assert.deepEqual([...u.keyOperations].sort(), ["unwrapKey", "wrapKey"]);
    assert.ok(u.properties.updatedOn.getTime() >= k.properties.createdOn.getTime());
    const g = await client.getKey("upd", { version: k.properties.version });
    assert.equal(g.properties.enabled, false);
    assert.deepEqual(g.properties.tags, { team: "p11", env: "test" });
    // partial update keeps the other fields
    const u2 = await client.updateKeyProperties("upd", k.properties.version, { enabled: true });
    assert.equal(u2.properties.enabled, true);
    assert.equal(u2.properties.expiresOn.getTime(), exp.getTime());
    assert.deepEqual(u2.properties.tags, { team: "p11", env: "test" });
  });

  it("updateKeyProperties without a version updates the current version (PATCH /keys/{n}/)", async () => {
    const v1 = await client.createRsaKey("updlatest", { keySize: 2048 });
    const v2 = await client.rotateKey("updlatest");
    const u = await client.updateKeyProperties("updlatest", { tags: { latest: "yes" } });
    assert.equal(u.properties.version, v2.properties.version);
    assert.deepEqual(u.properties.tags, { latest: "yes" });
    const old = await client.getKey("updlatest", { version: v1.properties.version });
    assert.equal(old.properties.tags, undefined);
  });

  it("createRsaKey with enabled:false and tags", async () => {
    const k = await client.createRsaKey("disabledatbirth", { keySize: 2048, enabled: false, tags: { a: "b" } });
    assert.equal(k.properties.enabled, false);
    assert.deepEqual(k.properties.tags, { a: "b" });
  });

  it("rotateKey makes a new current version; old versions stay readable", async () => {
    const k = await client.createRsaKey("rot", { keySize: 2048 });
    const r = await client.rotateKey("rot");
    assert.equal(r.name, "rot");
    assert.notEqual(r.properties.version, k.properties.version);
    assert.notDeepEqual(r.key.n, k.key.n);
    assert.equal(r.key.n.length, 256, "rotation keeps the key size");
    assert.equal((await client.getKey("rot")).properties.version, r.properties.version);
    assert.deepEqual((await client.getKey("rot", { version: k.properties.version })).key.n, k.key.n);
  });

  it("rotateKey of an unknown key is 404", async () => {
    await expectRest(client.rotateKey("nosuchrot"), 404, "KeyNotFound");
  });

  it("listPropertiesOfKeyVersions returns every version (also one per page)", async () => {
    await client.createRsaKey("lv", { keySize: 2048 });
    await client.rotateKey("lv");
    await client.rotateKey("lv");
    const all = await collect(client.listPropertiesOfKeyVersions("lv"));
    assert.equal(all.length, 3);
    for (const p of all) {
      assert.equal(p.name, "lv");
      assert.match(p.version, HEX32);
      assert.equal(p.id, `${vaultUrl}keys/lv/${p.version}`);
    }
    assert.equal(new Set(all.map((p) => p.version)).size, 3);
    const pages = [];
    for await (const page of client.listPropertiesOfKeyVersions("lv").byPage({ maxPageSize: 1 })) {
      pages.push(page.map((p) => p.version));
    }
    assert.equal(pages.flat().length, 3);
    assert.ok(pages.length >= 2, `nextLink paging: got ${pages.length} page(s)`);
    assert.deepEqual(pages.flat().sort(), all.map((p) => p.version).sort());
  });

  it("listPropertiesOfKeys lists base ids of live keys only", async () => {
    const all = await collect(client.listPropertiesOfKeys());
    const names = all.map((p) => p.name);
    for (const n of ["rsa2048", "rsa3072", "rsa4096", "multi", "rot", "lv"]) {
      assert.ok(names.includes(n), `${n} in ${names}`);
    }
    for (const p of all) {
      assert.equal(p.version, undefined);
      assert.equal(p.id, `${vaultUrl}keys/${p.name}`);
    }
    let pages = 0;
    let count = 0;
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 2 })) {
      pages += 1;
      count += page.length;
    }
    assert.equal(count, all.length);
    assert.ok(pages >= Math.ceil(all.length / 2));
  });

  it("listing without the list permission is 403 Forbidden", async () => {
    const c = keyClient(vaultUrl, secretCredential(emu, nolist));
    await expectRest(collect(c.listPropertiesOfKeys()), 403, "Forbidden");
    await expectRest(collect(c.listPropertiesOfKeyVersions("lv")), 403, "Forbidden");
    // the same identity can still get
    assert.equal((await c.getKey("lv")).name, "lv");
  });

  it("beginDeleteKey / beginRecoverDeletedKey with the SDK pollers, 409 on reuse, purge", async () => {
    const k = await client.createRsaKey("del", { keySize: 2048 });
    await client.rotateKey("del");
    const latest = await client.getKey("del");
    const poller = await client.beginDeleteKey("del", { intervalInMs: 100 });
    const deleted = await poller.pollUntilDone();
    assert.equal(deleted.name, "del");
    assert.equal(deleted.properties.recoveryId, `${vaultUrl}deletedkeys/del`);
    assert.ok(deleted.properties.deletedOn instanceof Date);
    assert.ok(deleted.properties.scheduledPurgeDate.getTime() - deleted.properties.deletedOn.getTime() >= 89 * 86400000);
    await expectRest(client.getKey("del"), 404, "KeyNotFound");
    const gd = await client.getDeletedKey("del");
    assert.equal(gd.properties.version, latest.properties.version);
    // soft-deleted name cannot be reused
    await assert.rejects(client.createRsaKey("del", { keySize: 2048 }), (e) => {
      assert.equal(e.statusCode, 409);
      assert.equal(e.code, "Conflict");
      assert.match(e.message, /deleted but recoverable/);
      assert.equal(e.details.error.innerError.code, "ObjectIsDeletedButRecoverable");
      return true;
    });
    // deleted keys are listed by listDeletedKeys, not listPropertiesOfKeys
    const live = (await collect(client.listPropertiesOfKeys())).map((p) => p.name);
    assert.ok(!live.includes("del"));
    const dl = (await collect(client.listDeletedKeys())).filter((d) => d.name === "del");
    assert.equal(dl.length, 1);
    assert.equal(dl[0].properties.recoveryId, `${vaultUrl}deletedkeys/del`);
    const rp = await client.beginRecoverDeletedKey("del", { intervalInMs: 100 });
    const rec = await rp.pollUntilDone();
    assert.equal(rec.name, "del");
    assert.equal(rec.properties.version, latest.properties.version);
    const old = await client.getKey("del", { version: k.properties.version });
    assert.deepEqual(old.key.n, k.key.n, "recover brings back every version");
    // delete again, purge, name free again
    await (await client.beginDeleteKey("del", { intervalInMs: 100 })).pollUntilDone();
    await client.purgeDeletedKey("del");
    await expectRest(client.getDeletedKey("del"), 404, "KeyNotFound");
    const fresh = await client.createRsaKey("del", { keySize: 2048 });
    assert.notDeepEqual(fresh.key.n, k.key.n);
    assert.equal((await collect(client.listPropertiesOfKeyVersions("del"))).length, 1);
  });

  it("backupKey / restoreKeyBackup: all versions come back; 409 while the name is in use", async () => {
    const v1 = await client.createRsaKey("bk", { keySize: 2048, tags: { t: "1" } });
    const v2 = await client.rotateKey("bk");
    const blob = await client.backupKey("bk");
    assert.ok(blob instanceof Uint8Array && blob.length > 1000);
    assert.ok(!Buffer.from(blob).toString("latin1").includes("PRIVATE KEY"), "backup is sealed");
    await assert.rejects(client.restoreKeyBackup(blob), (e) => e.statusCode === 409 && e.code === "Conflict");
    await (await client.beginDeleteKey("bk", { intervalInMs: 100 })).pollUntilDone();
    await assert.rejects(client.restoreKeyBackup(blob), (e) => {
      assert.equal(e.statusCode, 409);
      assert.equal(e.details.error.innerError.code, "ObjectIsDeletedButRecoverable");
      return true;
    });
    await client.purgeDeletedKey("bk");
    const r = await client.restoreKeyBackup(blob);
    assert.equal(r.id, v2.id);
    assert.deepEqual(r.key.n, v2.key.n);
    const old = await client.getKey("bk", { version: v1.properties.version });
    assert.deepEqual(old.key.n, v1.key.n);
    assert.deepEqual(old.properties.tags, { t: "1" });
    assert.equal((await collect(client.listPropertiesOfKeyVersions("bk"))).length, 2);
    const bad = Buffer.from(blob);
    bad[bad.length - 3] ^= 1;
    await client.beginDeleteKey("bk").then((p) => p.pollUntilDone());
    await client.purgeDeletedKey("bk");
    await expectRest(client.restoreKeyBackup(bad), 400, "BadParameter");
    await expectRest(client.backupKey("nosuchbk"), 404, "KeyNotFound");
  });

  it("deleting or recovering an unknown key fails with 404", async () => {
    await expectRest(client.beginDeleteKey("nosuchdel"), 404, "KeyNotFound");
    await expectRest(client.getDeletedKey("nosuchdel"), 404, "KeyNotFound");
  });

  it("the SDK sends a percent-encoded api%2Dversion=2025-07-01 and it works", async () => {
    const rec = recorder();
    const c = keyClient(vaultUrl, cred, { additionalPolicies: [rec.policy] });
    await c.getKey("multi");
    assert.ok(rec.seen.length >= 1);
    for (const s of rec.seen) {
      assert.match(s.url, /[?&]api%2Dversion=2025-07-01(&|$)/, s.url);
    }
    assert.equal(rec.seen.at(-1).status, 200);
    // first request is the unauthenticated challenge probe (§4.7)
    assert.equal(rec.seen[0].auth, false);
    assert.equal(rec.seen[0].status, 401);
  });

  for (const v of ["7.4", "7.5", "7.6"]) {
    it(`serviceVersion ${v} works`, async () => {
      const rec = recorder();
      const c = keyClient(vaultUrl, cred, { serviceVersion: v, additionalPolicies: [rec.policy] });
      assert.equal((await c.getKey("multi")).name, "multi");
      assert.ok(rec.seen.at(-1).url.includes(`api%2Dversion=${v}`));
    });
  }

  it("an unknown api-version is 400 BadParameter (SDK and raw)", async () => {
    const c = keyClient(vaultUrl, cred, { serviceVersion: "7.99" });
    await assert.rejects(c.getKey("multi"), (e) => {
      assert.equal(e.statusCode, 400);
      assert.equal(e.code, "BadParameter");
      assert.match(e.message, /The specified version \(7\.99\) is not recognized/);
      return true;
    });
    const token = (await cred.getToken(VAULT_SCOPE)).token;
    const auth = { Authorization: `Bearer ${token}` };
    const r = await rawRequest("GET", `${vaultUrl}keys/multi?api-version=1999-01-01`, { headers: auth });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "BadParameter");
    const none = await rawRequest("GET", `${vaultUrl}keys/multi`, { headers: auth });
    assert.equal(none.status, 400);
    assert.equal(none.json.error.code, "BadParameter");
    const enc = await rawRequest("GET", `${vaultUrl}keys/multi/?api%2Dversion=7.4`, { headers: auth });
    assert.equal(enc.status, 200);
    assert.equal(enc.headers["content-type"], "application/json; charset=utf-8");
    assert.match(enc.headers["x-ms-request-id"], /^[0-9a-f-]{36}$/);
    assert.equal(enc.headers["cache-control"], "no-cache");
    assert.match(enc.headers["strict-transport-security"], /^max-age=\d+/);
    assert.match(enc.headers["x-ms-keyvault-network-info"], /addr=127\.0\.0\.1/);
    assert.ok(enc.headers["x-ms-keyvault-service-version"]);
    assert.ok(enc.headers["x-ms-keyvault-region"]);
  });

  it("kid in responses uses the request host (localhost works as well as 127.0.0.1)", async () => {
    const token = (await cred.getToken(VAULT_SCOPE)).token;
    const url = vaultUrl.replace("127.0.0.1", "localhost");
    const r = await rawRequest("GET", `${url}keys/multi?api-version=7.4`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200);
    assert.ok(r.json.key.kid.startsWith(`${url}keys/multi/`), r.json.key.kid);
    assert.equal(typeof r.json.attributes.created, "number");
    assert.ok(Number.isInteger(r.json.attributes.created));
    assert.doesNotMatch(r.json.key.n, /[=+/]/, "unpadded base64url");
  });
});
