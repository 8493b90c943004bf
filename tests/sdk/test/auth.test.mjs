// SPDX-License-Identifier: Apache-2.0
//
// @azure/identity against the emulator's Entra ID and IMDS endpoints:
// client secret, client certificate (both assertion styles MSAL can send),
// user-assigned managed identity over IMDS; each token then opens the vault.
// protocol.md §4.1-§4.3, §4.7, §6.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";

import { jwtClaims, jwtHeader, rawRequest, startEmulator } from "../lib/emulator.mjs";
import {
  VAULT_SCOPE, certCredential, createSp, createVault, keyClient, managedIdentityCredential,
  secretCredential, uniq,
} from "../lib/azure.mjs";

let emu;
let sp, spCert, mi, vaultUrl, keyName;

before(async () => {
  emu = await startEmulator();
  sp = await createSp(emu, uniq("sp-secret"));
  spCert = await createSp(emu, uniq("sp-cert"), { cert: true });
  mi = await emu.cli("identity", "create", "--name", uniq("mi"));
  const admin = await createSp(emu, uniq("admin"));
  vaultUrl = await createVault(emu, "authvault", [
    [admin.objectId, ["get", "create"]],
    [sp.objectId, ["get"]],
    [spCert.objectId, ["get"]],
    [mi.principalId, ["get"]],
  ]);
  keyName = "authkey";
  await keyClient(vaultUrl, secretCredential(emu, admin)).createRsaKey(keyName, { keySize: 2048 });
});

after(async () => {
  delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  await emu?.stop();
});

function assertVaultToken(token, { oid, appid }) {
  const c = jwtClaims(token);
  assert.equal(c.aud, "https://vault.azure.net");
  assert.equal(c.tid, emu.info.tenant_id);
  assert.equal(c.iss, `https://sts.windows.net/${emu.info.tenant_id}/`);
  assert.equal(c.oid, oid);
  assert.equal(c.appid, appid);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(c.exp > now + 60 && c.exp <= now + 86400, `exp ${c.exp} vs now ${now}`);
  assert.equal(jwtHeader(token).alg, "RS256");
}

describe("identity", () => {
  it("ready line has the documented fields", () => {
    for (const f of ["ca_file", "authority_host", "imds_endpoint", "tenant_id", "port", "imds_port", "pid"]) {
      assert.ok(emu.info[f] !== undefined, `missing ${f}`);
    }
    assert.match(emu.info.authority_host, /^https:\/\//);
    assert.match(emu.info.tenant_id, /^[0-9a-f-]{36}$/);
    assert.equal(emu.info.pid, emu.child.pid);
  });

  it("sp create-for-rbac returns az-cli shaped JSON", () => {
    assert.match(sp.appId, /^[0-9a-f-]{36}$/);
    assert.match(sp.objectId, /^[0-9a-f-]{36}$/);
    assert.notEqual(sp.appId, sp.objectId);
    assert.equal(sp.tenant, emu.info.tenant_id);
    assert.ok(sp.password.length >= 20);
    const pem = readFileSync(spCert.fileWithCertAndPrivateKey, "utf8");
    assert.match(pem, /-----BEGIN CERTIFICATE-----/);
    assert.match(pem, /-----BEGIN (RSA )?PRIVATE KEY-----/);
  });

  it("ClientSecretCredential gets a vault token and reads a key", async () => {
    const cred = secretCredential(emu, sp);
    const t = await cred.getToken(VAULT_SCOPE);
    assertVaultToken(t.token, { oid: sp.objectId, appid: sp.appId });
    assert.ok(Math.abs(t.expiresOnTimestamp - jwtClaims(t.token).exp * 1000) < 5000);
    const key = await keyClient(vaultUrl, cred).getKey(keyName);
    assert.equal(key.name, keyName);
  });

  it("ClientSecretCredential with a wrong secret fails with invalid_client", async () => {
    const cred = secretCredential(emu, { ...sp, password: sp.password + "x" });
    // msal-node turns the 401 into a ServerError, which @azure/identity
    // reports as AuthenticationRequiredError carrying the AAD message.
    await assert.rejects(cred.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "AuthenticationRequiredError");
      assert.match(e.message, /^invalid_client: .*AADSTS7000215: Invalid client secret/s);
      return true;
    });
  });

  it("ClientSecretCredential with an unknown client id fails (unauthorized_client)", async () => {
    const cred = secretCredential(emu, { ...sp, appId: "00000000-0000-0000-0000-000000000001" });
    await assert.rejects(cred.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "AuthenticationRequiredError");
      assert.match(e.message, /^unauthorized_client: .*AADSTS700016/s);
      return true;
    });
  });

  it("a token from the secret credential does not work with a wrong tenant", async () => {
    const cred = new (await import("@azure/identity")).ClientSecretCredential(
      "11111111-1111-1111-1111-111111111111", sp.appId, sp.password,
      { authorityHost: emu.info.authority_host, disableInstanceDiscovery: true },
    );
    await assert.rejects(cred.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "AuthenticationRequiredError");
      assert.match(e.message, /AADSTS90002: Tenant '11111111-1111-1111-1111-111111111111' not found/);
      return true;
    });
  });

  it("ClientCertificateCredential (PS256 + x5t#S256) gets a token and reads a key", async () => {
    const cred = certCredential(emu, spCert);
    const t = await cred.getToken(VAULT_SCOPE);
    assertVaultToken(t.token, { oid: spCert.objectId, appid: spCert.appId });
    const key = await keyClient(vaultUrl, cred).getKey(keyName);
    assert.equal(key.name, keyName);
  });

  it("ClientCertificateCredential with sendCertificateChain (x5c) works", async () => {
    const cred = certCredential(emu, spCert, { sendCertificateChain: true });
    const t = await cred.getToken(VAULT_SCOPE);
    assertVaultToken(t.token, { oid: spCert.objectId, appid: spCert.appId });
  });

  it("a certificate registered for another app is refused", async () => {
    const cred = certCredential(emu, { ...spCert, appId: sp.appId });
    await assert.rejects(cred.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "AuthenticationRequiredError");
      assert.match(e.message, /^invalid_client: .*AADSTS700027/s);
      return true;
    });
  });

  it("ManagedIdentityCredential (client id, IMDS) gets a token and reads a key", async () => {
    const cred = managedIdentityCredential(emu, mi.clientId);
    const t = await cred.getToken(VAULT_SCOPE);
    assertVaultToken(t.token, { oid: mi.principalId, appid: mi.clientId });
    const key = await keyClient(vaultUrl, cred).getKey(keyName);
    assert.equal(key.name, keyName);
  });

  it("ManagedIdentityCredential with an unknown client id fails", async () => {
    const cred = managedIdentityCredential(emu, "00000000-0000-0000-0000-0000000000aa");
    await assert.rejects(cred.getToken(VAULT_SCOPE), (e) => {
      assert.equal(e.name, "CredentialUnavailableError");
      assert.match(e.message, /Identity not found/);
      return true;
    });
  });

  it("IMDS speaks the documented wire format (Metadata header, string numbers)", async () => {
    const base = `${new URL(emu.info.imds_endpoint).origin}/metadata/identity/oauth2/token`;
    const q = `api-version=2018-02-01&resource=${encodeURIComponent("https://vault.azure.net")}&client_id=${mi.clientId}`;
    const noHdr = await rawRequest("GET", `${base}?${q}`);
    assert.equal(noHdr.status, 400);
    const upper = await rawRequest("GET", `${base}?${q}`, { headers: { Metadata: "True" } });
    assert.equal(upper.status, 400, "Metadata value must be lower-case true");
    const ok = await rawRequest("GET", `${base}?${q}`, { headers: { Metadata: "true" } });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.json.expires_in, "string");
    assert.equal(typeof ok.json.expires_on, "string");
    assert.equal(ok.json.resource, "https://vault.azure.net");
    assert.equal(ok.json.token_type, "Bearer");
    assertVaultToken(ok.json.access_token, { oid: mi.principalId, appid: mi.clientId });
    // object_id selects the same identity
    const byOid = await rawRequest("GET", `${base}?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&object_id=${mi.principalId}`, { headers: { Metadata: "true" } });
    assert.equal(byOid.status, 200);
    assert.equal(jwtClaims(byOid.json.access_token).oid, mi.principalId);
  });

  it("a wrong audience (resource with trailing slash) is refused by the vault with 401", async () => {
    const base = `${new URL(emu.info.imds_endpoint).origin}/metadata/identity/oauth2/token`;
    const r = await rawRequest("GET", `${base}?api-version=2018-02-01&resource=${encodeURIComponent("https://vault.azure.net/")}&client_id=${mi.clientId}`, { headers: { Metadata: "true" } });
    assert.equal(r.status, 200);
    assert.equal(jwtClaims(r.json.access_token).aud, "https://vault.azure.net/");
    const g = await rawRequest("GET", `${vaultUrl}keys/${keyName}?api-version=7.4`, {
      headers: { Authorization: `Bearer ${r.json.access_token}` },
    });
    assert.equal(g.status, 401);
    assert.equal(g.json.error.code, "Unauthorized");
    assert.equal(g.json.error.message, "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://vault.azure.net/.");
  });

  it("the vault's 401 challenge is what the SDK parses (authorization, resource)", async () => {
    const r = await rawRequest("GET", `${vaultUrl}keys/${keyName}?api-version=7.4`);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, "Unauthorized");
    assert.match(r.json.error.message, /^AKV10000/);
    const h = r.headers["www-authenticate"];
    assert.match(h, /^Bearer authorization="https:\/\/[^"]+\/[0-9a-f-]{36}", resource="https:\/\/vault\.azure\.net"$/);
    assert.ok(h.includes(emu.info.tenant_id));
  });

  it("a garbage bearer token gets 401 with a challenge", async () => {
    const r = await rawRequest("GET", `${vaultUrl}keys/${keyName}?api-version=7.4`, {
      headers: { Authorization: "Bearer abc.def.ghi" },
    });
    assert.equal(r.status, 401);
    assert.ok(r.headers["www-authenticate"]);
  });
});

describe("workload identity", () => {
  it("WorkloadIdentityCredential with `identity federated-token` gets a token and reads a key", async () => {
    const { WorkloadIdentityCredential } = await import("@azure/identity");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const r = await emu.cliRaw("identity", "federated-token", "--name", mi.name);
    assert.equal(r.code, 0, r.stderr);
    const jwt = r.stdout.trim();
    assert.equal(jwtClaims(jwt).aud, "api://AzureADTokenExchange");
    const file = join(emu.dir, "federated.jwt");
    writeFileSync(file, jwt);
    const cred = new WorkloadIdentityCredential({
      tenantId: emu.info.tenant_id, clientId: mi.clientId, tokenFilePath: file,
      authorityHost: emu.info.authority_host, disableInstanceDiscovery: true,
    });
    const t = await cred.getToken(VAULT_SCOPE);
    assertVaultToken(t.token, { oid: mi.principalId, appid: mi.clientId });
    assert.equal((await keyClient(vaultUrl, cred).getKey(keyName)).name, keyName);
  });
});
