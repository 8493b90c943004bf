// SPDX-License-Identifier: Apache-2.0
//
// Token lifetime and revocation: with `serve --token-lifetime 2` tokens
// expire (vault answers 401 + challenge) and the SDK fetches a new one by
// itself; `identity revoke-tokens` invalidates tokens already issued.
// protocol.md §3.2, §4.3, §4.7.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { jwtClaims, rawRequest, sleep, startEmulator } from "../lib/emulator.mjs";
import {
  VAULT_SCOPE, createSp, createVault, keyClient, managedIdentityCredential, secretCredential, stats,
} from "../lib/azure.mjs";

let short, normal;

before(async () => {
  [short, normal] = await Promise.all([startEmulator({ args: ["--token-lifetime", "2"] }), startEmulator()]);
});

after(async () => {
  delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  await Promise.all([short?.stop(), normal?.stop()]);
});

describe("token lifetime (--token-lifetime 2)", () => {
  let sp, vaultUrl, cred;
  before(async () => {
    sp = await createSp(short, "short-sp");
    vaultUrl = await createVault(short, "shortvault", [[sp.objectId, ["get", "create"]]]);
    cred = secretCredential(short, sp);
    await keyClient(vaultUrl, cred).createRsaKey("k", { keySize: 2048 });
  });

  it("tokens carry a 2 s lifetime (expires_in, exp - iat)", async () => {
    const t = await cred.getToken(VAULT_SCOPE);
    const c = jwtClaims(t.token);
    assert.equal(c.exp - c.iat, 2);
    assert.ok(t.expiresOnTimestamp - Date.now() <= 2500);
    const r = await rawRequest("POST", `${short.info.authority_host.replace(/\/$/, "")}/${short.info.tenant_id}/oauth2/v2.0/token`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${sp.appId}&client_secret=${encodeURIComponent(sp.password)}&scope=${encodeURIComponent(VAULT_SCOPE)}`,
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.expires_in, 2);
    assert.equal(r.json.token_type, "Bearer");
  });

  it("an expired token is refused with 401 and a challenge", async () => {
    const t = (await cred.getToken(VAULT_SCOPE)).token;
    const url = `${vaultUrl}keys/k?api-version=7.4`;
    assert.equal((await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t}` } })).status, 200);
    await sleep(3200);
    const r = await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t}` } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "Unauthorized");
    assert.match(r.headers["www-authenticate"], /^Bearer authorization="/);
  });

  it("the SDK refreshes an expired token on its own", async () => {
    const kc = keyClient(vaultUrl, cred);
    assert.equal((await kc.getKey("k")).name, "k");
    const before = (await stats(short)).token;
    await sleep(3200);
    assert.equal((await kc.getKey("k")).name, "k");
    assert.ok((await stats(short)).token > before, "a new token was requested");
  });
});

describe("identity revoke-tokens", () => {
  let mi, sp, vaultUrl;
  before(async () => {
    mi = await normal.cli("identity", "create", "--name", "revoke-mi");
    sp = await createSp(normal, "revoke-admin");
    vaultUrl = await createVault(normal, "revvault", [[mi.principalId, ["get"]], [sp.objectId, ["get", "create"]]]);
    await keyClient(vaultUrl, secretCredential(normal, sp)).createRsaKey("k", { keySize: 2048 });
  });

  it("a token issued before revoke-tokens gets 401; a new one works", async () => {
    const url = `${vaultUrl}keys/k?api-version=7.4`;
    const t1 = (await managedIdentityCredential(normal, mi.clientId).getToken(VAULT_SCOPE)).token;
    assert.equal((await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t1}` } })).status, 200);
    await sleep(1100); // a new token must differ in iat from the revoked one
    await normal.cli("identity", "revoke-tokens", "--name", "revoke-mi");
    const r = await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t1}` } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "Unauthorized");
    // a new token from IMDS works
    const imds = `${new URL(normal.info.imds_endpoint).origin}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=${mi.clientId}`;
    const t2 = (await rawRequest("GET", imds, { headers: { Metadata: "true" } })).json.access_token;
    assert.notEqual(t2, t1);
    assert.equal((await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t2}` } })).status, 200);
    // msal-node caches managed-identity tokens process-wide, so the SDK keeps
    // presenting the revoked token: one re-authentication, then RestError 401
    const kc = keyClient(vaultUrl, managedIdentityCredential(normal, mi.clientId));
    await assert.rejects(kc.getKey("k"), (e) => {
      assert.equal(e.name, "RestError");
      assert.equal(e.statusCode, 401);
      assert.equal(e.code, "Unauthorized");
      return true;
    });
  });

  it("service principal: revoked token refused; a new credential instance works", async () => {
    const sp2 = await createSp(normal, "revoke-sp");
    await normal.cli("keyvault", "set-policy", "--name", "revvault", "--object-id", sp2.objectId, "--key-permissions", "get");
    const cred = secretCredential(normal, sp2);
    const kc = keyClient(vaultUrl, cred);
    assert.equal((await kc.getKey("k")).name, "k");
    await normal.cli("identity", "revoke-tokens", "--name", "revoke-sp");
    await assert.rejects(kc.getKey("k"), (e) => e.statusCode === 401 && e.code === "Unauthorized");
    assert.equal((await keyClient(vaultUrl, secretCredential(normal, sp2)).getKey("k")).name, "k");
  });

  it("revoke-tokens of one identity leaves others' tokens valid", async () => {
    const url = `${vaultUrl}keys/k?api-version=7.4`;
    const t = (await secretCredential(normal, sp).getToken(VAULT_SCOPE)).token;
    await normal.cli("identity", "revoke-tokens", "--name", "revoke-mi");
    assert.equal((await rawRequest("GET", url, { headers: { Authorization: `Bearer ${t}` } })).status, 200);
  });

  it("revoke-tokens of an unknown identity fails", async () => {
    const r = await normal.cliRaw("identity", "revoke-tokens", "--name", "nosuch");
    assert.notEqual(r.code, 0);
  });
});
