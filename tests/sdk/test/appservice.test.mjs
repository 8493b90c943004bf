// SPDX-License-Identifier: Apache-2.0
//
// ManagedIdentityCredential through the App Service source (IDENTITY_ENDPOINT
// + IDENTITY_HEADER, api-version 2019-08-01, X-IDENTITY-HEADER). A separate
// file because msal-node picks the managed-identity source once per process.
// protocol.md §4.4.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { jwtClaims, rawRequest, startEmulator } from "../lib/emulator.mjs";
import { VAULT_SCOPE, createSp, createVault, keyClient, secretCredential } from "../lib/azure.mjs";

let emu, server, mi, vaultUrl;

before(async () => {
  emu = await startEmulator();
  server = JSON.parse(readFileSync(join(emu.dir, "server.json"), "utf8"));
  mi = await emu.cli("identity", "create", "--name", "app-mi");
  const admin = await createSp(emu, "app-admin");
  vaultUrl = await createVault(emu, "appvault", [[mi.principalId, ["get"]], [admin.objectId, ["create"]]]);
  await keyClient(vaultUrl, secretCredential(emu, admin)).createRsaKey("k", { keySize: 2048 });
});

after(async () => {
  delete process.env.IDENTITY_ENDPOINT;
  delete process.env.IDENTITY_HEADER;
  await emu?.stop();
});

describe("App Service managed identity", () => {
  it("wire format: X-IDENTITY-HEADER required, expires_on string, client_id", async () => {
    const u = `${server.identity_endpoint}?api-version=2019-08-01&resource=${encodeURIComponent("https://vault.azure.net")}&client_id=${mi.clientId}`;
    // App Service answers a missing/wrong secret header with 400 (the
    // emulator's choice where the docs are silent, see emulator/README.md)
    const no = await rawRequest("GET", u);
    assert.equal(no.status, 400);
    assert.equal(no.json.error, "invalid_request");
    const wrong = await rawRequest("GET", u, { headers: { "X-IDENTITY-HEADER": "nope" } });
    assert.equal(wrong.status, 400);
    const ok = await rawRequest("GET", u, { headers: { "X-IDENTITY-HEADER": server.identity_header } });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.json.expires_on, "string");
    assert.equal(ok.json.resource, "https://vault.azure.net");
    assert.equal(ok.json.client_id, mi.clientId);
    assert.equal(jwtClaims(ok.json.access_token).oid, mi.principalId);
  });

  it("ManagedIdentityCredential (IDENTITY_ENDPOINT/IDENTITY_HEADER) gets a token and reads a key", async () => {
    process.env.IDENTITY_ENDPOINT = server.identity_endpoint;
    process.env.IDENTITY_HEADER = server.identity_header;
    const { ManagedIdentityCredential } = await import("@azure/identity");
    const cred = new ManagedIdentityCredential({ clientId: mi.clientId });
    const t = await cred.getToken(VAULT_SCOPE);
    const c = jwtClaims(t.token);
    assert.equal(c.aud, "https://vault.azure.net");
    assert.equal(c.oid, mi.principalId);
    assert.equal(c.appid, mi.clientId);
    assert.equal((await keyClient(vaultUrl, cred).getKey("k")).name, "k");
  });
});
