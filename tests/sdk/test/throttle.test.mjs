// SPDX-License-Identifier: Apache-2.0
//
// Service-limit throttling (`serve --throttle --throttle-scale 0.01`): a
// vault allows 4000 x scale weighted transactions per 10 s (RSA-3072 costs 4
// units, RSA-4096 8) and 20 x scale creates, then answers 429 Throttled with
// Retry-After; the SDK waits and succeeds. protocol.md §5.1, §5.3.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, describe, it } from "node:test";

import { rawRequest, sleep, startEmulator } from "../lib/emulator.mjs";
import { ALL_KEY_PERMS, VAULT_SCOPE, createSp, createVault, keyClient, secretCredential } from "../lib/azure.mjs";

const SCALE = 0.01; // 40 ops / 10 s, 1 create / 10 s
let emu, sp, cred, token;

before(async () => {
  emu = await startEmulator({ args: ["--throttle", "--throttle-scale", String(SCALE)] });
  sp = await createSp(emu, "thr-sp");
  cred = secretCredential(emu, sp);
  token = (await cred.getToken(VAULT_SCOPE)).token;
});

after(async () => {
  await emu?.stop();
});

const authz = () => ({ Authorization: `Bearer ${token}` });

/** Sends requests until the first 429; returns {ok, r429}. */
async function drain(fn, limit = 500) {
  for (let ok = 0; ok < limit; ok++) {
    const r = await fn();
    if (r.status === 429) {
      return { ok, r429: r };
    }
    assert.equal(r.status, 200, r.text);
  }
  throw new Error(`no 429 after ${limit} requests`);
}

/** A vault with one key, created via the control CLI (not throttled). */
async function vaultWithKey(name, size) {
  const url = await createVault(emu, name, [[sp.objectId, ALL_KEY_PERMS]]);
  const k = await emu.cli("keyvault", "key", "create", "--vault-name", name, "--name", "k", "--kty", "RSA", "--size", String(size));
  return { url, kid: k.key.kid };
}

describe("throttling", () => {
  it("GET: 40 per 10 s, then 429 Throttled with Retry-After; recovers after it", async () => {
    const { url } = await vaultWithKey("thr1", 2048);
    const get = () => rawRequest("GET", `${url}keys/k?api-version=7.4`, { headers: authz() });
    const { ok, r429 } = await drain(get);
    assert.ok(ok >= 39 && ok <= 40, `${ok} requests before 429`);
    assert.equal(r429.json.error.code, "Throttled");
    const ra = Number(r429.headers["retry-after"]);
    assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 10, `Retry-After ${r429.headers["retry-after"]}`);
    // still throttled right away (429s do not consume budget)
    assert.equal((await get()).status, 429);
    await sleep(ra * 1000 + 200);
    assert.equal((await get()).status, 200);
  });

  it("throttling is per vault", async () => {
    const a = await vaultWithKey("thr2a", 2048);
    const b = await vaultWithKey("thr2b", 2048);
    await drain(() => rawRequest("GET", `${a.url}keys/k?api-version=7.4`, { headers: authz() }));
    assert.equal((await rawRequest("GET", `${b.url}keys/k?api-version=7.4`, { headers: authz() })).status, 200);
  });

  it("RSA-3072 unwrap costs 4x an RSA-2048 one (10 per 10 s)", async () => {
    const { url, kid } = await vaultWithKey("thr3", 3072);
    const ver = kid.split("/").pop();
    const pub = await rawRequest("GET", `${url}keys/k/${ver}?api-version=7.4`, { headers: authz() });
    assert.equal(pub.status, 200); // 1 unit
    const n = Buffer.from(pub.json.key.n, "base64url");
    const key = crypto.createPublicKey({ key: { kty: "RSA", n: pub.json.key.n, e: pub.json.key.e }, format: "jwk" });
    const blob = crypto.publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.alloc(32, 7));
    assert.equal(n.length, 384);
    const unwrap = () => rawRequest("POST", `${url}keys/k/${ver}/unwrapkey?api-version=7.4`, {
      headers: authz(), body: { alg: "RSA-OAEP-256", value: blob.toString("base64url") },
    });
    const { ok, r429 } = await drain(unwrap);
    assert.equal(ok, 9, `${ok} unwraps (4 units each, 1 unit already spent) before 429`);
    assert.equal(r429.json.error.code, "Throttled");
  });

  it("create: 1 per 10 s at this scale", async () => {
    const url = await createVault(emu, "thr4", [[sp.objectId, ALL_KEY_PERMS]]);
    const create = (n) => rawRequest("POST", `${url}keys/${n}/create?api-version=7.4`, { headers: authz(), body: { kty: "RSA", key_size: 2048 } });
    assert.equal((await create("c1")).status, 200);
    const r = await create("c2");
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers["retry-after"]) >= 1);
  });

  it("the SDK waits for Retry-After and succeeds", async () => {
    const { url } = await vaultWithKey("thr5", 2048);
    const kc = keyClient(url, cred);
    assert.equal((await kc.getKey("k")).name, "k"); // challenge + GET
    await drain(() => rawRequest("GET", `${url}keys/k?api-version=7.4`, { headers: authz() }));
    const t0 = Date.now();
    assert.equal((await kc.getKey("k")).name, "k");
    assert.ok(Date.now() - t0 >= 900, `returned after ${Date.now() - t0} ms`);
  });
});
