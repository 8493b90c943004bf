// SPDX-License-Identifier: Apache-2.0
//
// Injected faults (`akv-emulator fault add`) as the SDK and a raw client see
// them: 401 (with challenge), 403, 429 with and without Retry-After, 500,
// 503, delay, hang, connection closed mid-response, malformed bodies
// (truncated JSON, non-base64url value, wrong-length value), on the vault,
// the token endpoint and IMDS. Retry expectations: protocol.md §5.3.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";

import { rawRequest, startEmulator } from "../lib/emulator.mjs";
import {
  ALL_KEY_PERMS, FAST_RETRY, VAULT_SCOPE, createSp, createVault, cryptoClient, keyClient,
  managedIdentityCredential, secretCredential, stats,
} from "../lib/azure.mjs";

let emu, sp, cred, vaultUrl, kc, cc, key, token, mi;

before(async () => {
  emu = await startEmulator();
  sp = await createSp(emu, "faults-sp");
  mi = await emu.cli("identity", "create", "--name", "faults-mi");
  vaultUrl = await createVault(emu, "faultvault", [[sp.objectId, ALL_KEY_PERMS], [mi.principalId, ["get"]]]);
  cred = secretCredential(emu, sp);
  kc = keyClient(vaultUrl, cred, { retryOptions: FAST_RETRY });
  key = await kc.createRsaKey("fk", { keySize: 2048 });
  // remote-only crypto client (no local public-key shortcut): built from the id
  cc = cryptoClient(key.id, cred, { retryOptions: FAST_RETRY });
  await cc.unwrapKey("RSA-OAEP-256", (await cc.wrapKey("RSA-OAEP-256", Buffer.alloc(32, 1))).result);
  await kc.getKey("fk"); // warm: challenge done, token cached
  token = (await cred.getToken(VAULT_SCOPE)).token;
});

after(async () => {
  delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  await emu?.cli("fault", "clear").catch(() => {});
  await emu?.stop();
});

beforeEach(async () => {
  await emu.cli("fault", "clear");
  await stats(emu, true);
});

const fault = (...a) => emu.cli("fault", "add", ...a);
const getUrl = () => `${vaultUrl}keys/fk/${key.properties.version}?api-version=7.4`;
const authz = () => ({ Authorization: `Bearer ${token}` });

async function timed(p) {
  const t0 = Date.now();
  const v = await p;
  return { v, ms: Date.now() - t0 };
}

async function expectRest(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    if (code) {
      assert.equal(e.code, code, e.message);
    }
    return true;
  });
}

describe("status faults on the vault", () => {
  it("fault add/list/clear round trip", async () => {
    const l = await fault("--op", "get", "--count", "2", "--status", "500");
    assert.equal(l.length, 1);
    assert.equal(l[0].op, "get");
    assert.equal(l[0].status, 500);
    assert.equal(l[0].count, 2);
    assert.deepEqual(await emu.cli("fault", "list"), l);
    await emu.cli("fault", "clear");
    assert.deepEqual(await emu.cli("fault", "list"), []);
    const bad = await emu.cliRaw("fault", "add", "--op", "nosuchop", "--status", "500");
    assert.notEqual(bad.code, 0);
  });

  it("429 with Retry-After: 1 is retried by the SDK after >= 1 s (2 requests)", async () => {
    await fault("--op", "get", "--count", "1", "--status", "429", "--retry-after", "1");
    const { v, ms } = await timed(kc.getKey("fk"));
    assert.equal(v.name, "fk");
    assert.ok(ms >= 950, `waited ${ms} ms`);
    assert.equal((await stats(emu)).get, 2);
  });

  it("429 with Retry-After (raw): status, header, Throttled body", async () => {
    await fault("--op", "get", "--count", "1", "--status", "429", "--retry-after", "7");
    const r = await rawRequest("GET", getUrl(), { headers: authz() });
    assert.equal(r.status, 429);
    assert.equal(r.headers["retry-after"], "7");
    assert.equal(r.json.error.code, "Throttled");
    assert.equal((await rawRequest("GET", getUrl(), { headers: authz() })).status, 200);
  });

  it("429 without Retry-After is not retried by the SDK", async () => {
    await fault("--op", "get", "--count", "1", "--status", "429");
    await expectRest(kc.getKey("fk"), 429, "Throttled");
    assert.equal((await stats(emu)).get, 1);
  });

  it("500 once: retried, succeeds (2 requests)", async () => {
    await fault("--op", "get", "--count", "1", "--status", "500");
    assert.equal((await kc.getKey("fk")).name, "fk");
    assert.equal((await stats(emu)).get, 2);
  });

  it("500 always: the SDK gives up after 1 + 3 retries with RestError 500", async () => {
    await fault("--op", "get", "--status", "500");
    await expectRest(kc.getKey("fk"), 500);
    assert.equal((await stats(emu)).get, 4);
  });

  it("503 once on unwrapkey (POST): retried, same plaintext", async () => {
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    await fault("--op", "unwrapkey", "--count", "1", "--status", "503");
    const u = await cc.unwrapKey("RSA-OAEP-256", w.result);
    assert.deepEqual(Buffer.from(u.result), cek);
    assert.equal((await stats(emu)).unwrapkey, 2);
  });

  it("503 with Retry-After: 1 waits that long", async () => {
    await fault("--op", "get", "--count", "1", "--status", "503", "--retry-after", "1");
    const { ms } = await timed(kc.getKey("fk"));
    assert.ok(ms >= 950, `waited ${ms} ms`);
    assert.equal((await stats(emu)).get, 2);
  });

  it("403 surfaces as RestError 403 Forbidden, not retried", async () => {
    await fault("--op", "wrapkey", "--count", "1", "--status", "403");
    await expectRest(cc.wrapKey("RSA-OAEP-256", Buffer.alloc(32)), 403, "Forbidden");
    assert.equal((await stats(emu)).wrapkey, 1);
  });

  it("401 once (with challenge): the SDK re-authenticates and succeeds", async () => {
    await fault("--op", "get", "--count", "1", "--status", "401");
    assert.equal((await kc.getKey("fk")).name, "fk");
    assert.equal((await stats(emu)).get, 2);
  });

  it("401 always: RestError 401 Unauthorized after one re-authentication", async () => {
    await fault("--op", "get", "--status", "401");
    await expectRest(kc.getKey("fk"), 401, "Unauthorized");
    assert.equal((await stats(emu)).get, 2);
    const r = await rawRequest("GET", getUrl(), { headers: authz() });
    assert.equal(r.status, 401);
    assert.match(r.headers["www-authenticate"], /^Bearer authorization="/);
  });

  it("--path matches a URL substring; other keys are unaffected", async () => {
    await kc.createRsaKey("other", { keySize: 2048 });
    await stats(emu, true);
    await fault("--path", "/keys/other", "--status", "500");
    assert.equal((await kc.getKey("fk")).name, "fk");
    await expectRest(kc.getKey("other"), 500);
  });

  it("--fraction 0.5 hits about half the requests", async () => {
    await fault("--op", "get", "--fraction", "0.5", "--status", "500");
    let fails = 0;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const r = await rawRequest("GET", getUrl(), { headers: authz() });
      assert.ok(r.status === 200 || r.status === 500);
      fails += r.status === 500 ? 1 : 0;
    }
    assert.ok(fails > 50 && fails < 150, `${fails}/${n} failed`);
  });
});

describe("transport faults on the vault", () => {
  it("delay: the response comes after the delay", async () => {
    await fault("--op", "get", "--count", "1", "--delay-ms", "1500");
    const { v, ms } = await timed(kc.getKey("fk"));
    assert.equal(v.name, "fk");
    assert.ok(ms >= 1450, `took ${ms} ms`);
    const { ms: ms2 } = await timed(kc.getKey("fk"));
    assert.ok(ms2 < 1000, `next one took ${ms2} ms`);
  });

  it("hang: the SDK call is aborted by its abortSignal; raw client times out; clear releases", async () => {
    await fault("--op", "get", "--hang");
    const t0 = Date.now();
    await assert.rejects(kc.getKey("fk", { abortSignal: AbortSignal.timeout(1500) }), (e) => {
      assert.equal(e.name, "AbortError", `${e.name}: ${e.message}`);
      return true;
    });
    assert.ok(Date.now() - t0 >= 1400);
    await assert.rejects(rawRequest("GET", getUrl(), { headers: authz(), timeoutMs: 1000 }), (e) => {
      assert.equal(e.code, "ETIMEDOUT");
      return true;
    });
    // a hung request parked by the server is released by `fault clear`
    const pending = rawRequest("GET", getUrl(), { headers: authz(), timeoutMs: 20000 });
    const settled = pending.then(() => "resolved", (e) => `rejected ${e.code}`);
    await new Promise((r) => setTimeout(r, 300));
    await emu.cli("fault", "clear");
    const how = await settled;
    assert.ok(how === "rejected ECONNRESET" || how === "resolved", how);
    assert.equal((await kc.getKey("fk")).name, "fk");
  });

  it("close mid-response: raw client sees a reset; the SDK surfaces an aborted read (no retry)", async () => {
    await fault("--op", "get", "--count", "1", "--close");
    await assert.rejects(rawRequest("GET", getUrl(), { headers: authz() }), (e) => {
      assert.ok(e.code === "ECONNRESET" || /aborted|incomplete|socket hang up/.test(e.message), `${e.code} ${e.message}`);
      return true;
    });
    await fault("--op", "get", "--count", "1", "--close");
    await stats(emu, true);
    // headers (200) arrived, the body did not: ts-http-runtime reports a
    // PARSE_ERROR while reading the body and does not retry it (§5.3)
    await assert.rejects(kc.getKey("fk"), (e) => {
      assert.equal(e.name, "RestError");
      assert.equal(e.code, "PARSE_ERROR");
      assert.match(e.message, /aborted/);
      return true;
    });
    assert.equal((await stats(emu)).get, 1);
    assert.equal((await kc.getKey("fk")).name, "fk");
  });

  it("malformed truncated JSON: raw client gets 200 with unparsable body; SDK throws", async () => {
    await fault("--op", "get", "--count", "1", "--malformed", "truncated");
    const r = await rawRequest("GET", getUrl(), { headers: authz() });
    assert.equal(r.status, 200);
    assert.equal(r.json, undefined, "body must not parse");
    assert.ok(r.text.startsWith('{"key":'), r.text.slice(0, 40));
    await fault("--op", "get", "--count", "1", "--malformed", "truncated");
    await assert.rejects(kc.getKey("fk"), (e) => {
      assert.match(`${e.code} ${e.message}`, /PARSE_ERROR|JSON|Unexpected end/i);
      return true;
    });
  });

  it("malformed bad-base64 value on unwrapkey: not base64url on the wire, SDK returns wrong bytes", async () => {
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    await fault("--op", "unwrapkey", "--count", "1", "--malformed", "bad-base64");
    const r = await rawRequest("POST", `${vaultUrl}keys/fk/${key.properties.version}/unwrapkey?api-version=7.4`, {
      headers: authz(), body: { alg: "RSA-OAEP-256", value: Buffer.from(w.result).toString("base64url") },
    });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.json.value, /^[A-Za-z0-9_-]*$/);
    await fault("--op", "unwrapkey", "--count", "1", "--malformed", "bad-base64");
    const u = await cc.unwrapKey("RSA-OAEP-256", w.result);
    assert.notDeepEqual(Buffer.from(u.result), cek, "the SDK decodes leniently: the caller must validate");
    assert.deepEqual(Buffer.from((await cc.unwrapKey("RSA-OAEP-256", w.result)).result), cek);
  });

  it("malformed wrong-length value: unwrap result one byte short; GET n one byte short", async () => {
    const cek = crypto.randomBytes(32);
    const w = await cc.wrapKey("RSA-OAEP-256", cek);
    await fault("--op", "unwrapkey", "--count", "1", "--malformed", "wrong-length");
    const u = await cc.unwrapKey("RSA-OAEP-256", w.result);
    assert.equal(u.result.length, 31);
    assert.deepEqual(Buffer.from(u.result), cek.subarray(0, 31));
    await fault("--op", "get", "--count", "1", "--malformed", "wrong-length");
    const k = await kc.getKey("fk");
    assert.equal(k.key.n.length, 255);
  });
});

describe("faults on the token endpoint and IMDS", () => {
  it("token endpoint 500 (every attempt): ClientSecretCredential fails with an AuthenticationError", async () => {
    await fault("--op", "token", "--status", "500");
    const c = secretCredential(emu, sp);
    await assert.rejects(c.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "AuthenticationRequiredError");
      assert.match(e.message, /AADSTS50000: Injected fault/);
      return true;
    });
    const n = (await stats(emu)).token;
    assert.ok(n >= 1, `token requests: ${n}`);
    await emu.cli("fault", "clear");
    // msal-node's throttling cache replays the 5xx for this credential
    // (default 60 s) without asking the server again ...
    await assert.rejects(c.getToken(VAULT_SCOPE), /AADSTS50000/);
    assert.equal((await stats(emu)).token, n);
    // ... while a new credential instance goes to the server and succeeds
    assert.ok((await secretCredential(emu, sp).getToken(VAULT_SCOPE)).token);
    assert.equal((await stats(emu)).token, n + 1);
  });

  it("token endpoint 400 body (raw): OAuth error JSON", async () => {
    const r = await rawRequest("POST", `${emu.info.authority_host.replace(/\/$/, "")}/${emu.info.tenant_id}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${sp.appId}&client_secret=wrong&scope=${encodeURIComponent(VAULT_SCOPE)}`,
    });
    assert.equal(r.status, 401);
    assert.equal(r.json.error, "invalid_client");
    assert.match(r.json.error_description, /^AADSTS7000215/);
    assert.ok(Array.isArray(r.json.error_codes));
  });

  it("IMDS 500 twice: msal-node's IMDS retry policy retries and succeeds", async () => {
    await fault("--op", "imds", "--count", "2", "--status", "500");
    const c = managedIdentityCredential(emu, mi.clientId);
    const t = await c.getToken(VAULT_SCOPE);
    assert.ok(t.token);
    assert.ok((await stats(emu)).imds >= 3, JSON.stringify(await stats(emu)));
  });

  it("IMDS hang: raw client times out", async () => {
    await fault("--op", "imds", "--count", "1", "--hang");
    const url = `${new URL(emu.info.imds_endpoint).origin}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=${mi.clientId}`;
    await assert.rejects(rawRequest("GET", url, { headers: { Metadata: "true" }, timeoutMs: 800 }), (e) => e.code === "ETIMEDOUT");
    await emu.cli("fault", "clear");
  });
});
