// SPDX-License-Identifier: Apache-2.0
//
// SDK-side fixtures: principals, vaults and clients wired to an emulator
// started by lib/emulator.mjs, with the options protocol.md §4.7/§6 says a
// local endpoint needs (https authorityHost + disableInstanceDiscovery for
// @azure/identity, disableChallengeResourceVerification for Key Vault).
import { ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential } from "@azure/identity";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";

export const VAULT_SCOPE = "https://vault.azure.net/.default";
export const ALL_KEY_PERMS = [
  "get", "list", "create", "update", "import", "delete", "recover", "backup", "restore",
  "purge", "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "rotate",
  "getrotationpolicy", "setrotationpolicy", "release",
];

/** Retry options that keep fault tests short but keep the SDK's strategy. */
export const FAST_RETRY = { maxRetries: 3, retryDelayInMs: 50, maxRetryDelayInMs: 200 };

let counter = 0;
export function uniq(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** `ad sp create-for-rbac` → {appId, password, tenant, objectId, fileWithCertAndPrivateKey?}. */
export function createSp(emu, name, { cert = false } = {}) {
  return emu.cli("ad", "sp", "create-for-rbac", "--name", name, ...(cert ? ["--create-cert"] : []));
}

export function secretCredential(emu, sp, extra = {}) {
  return new ClientSecretCredential(emu.info.tenant_id, sp.appId, sp.password, {
    authorityHost: emu.info.authority_host,
    disableInstanceDiscovery: true,
    ...extra,
  });
}

export function certCredential(emu, sp, extra = {}) {
  return new ClientCertificateCredential(
    emu.info.tenant_id,
    sp.appId,
    { certificatePath: sp.fileWithCertAndPrivateKey },
    { authorityHost: emu.info.authority_host, disableInstanceDiscovery: true, ...extra },
  );
}

/** A user-assigned managed identity credential reaching the emulator's IMDS
 * through AZURE_POD_IDENTITY_AUTHORITY_HOST (msal-node Imds.tryCreate). */
export function managedIdentityCredential(emu, clientId) {
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = new URL(emu.info.imds_endpoint).origin;
  return new ManagedIdentityCredential({ clientId });
}

/** Create vault NAME (SKU standard, az's default, unless sku is given) and
 * give OBJECT_ID the key permissions PERMS; returns the vaultUri. */
export async function createVault(emu, name, grants = [], { sku } = {}) {
  const v = await emu.cli("keyvault", "create", "--name", name, ...(sku ? ["--sku", sku] : []));
  for (const [oid, perms] of grants) {
    await emu.cli("keyvault", "set-policy", "--name", name, "--object-id", oid, "--key-permissions", ...perms);
  }
  return v.properties.vaultUri;
}

export function keyClient(vaultUrl, credential, extra = {}) {
  return new KeyClient(vaultUrl, credential, { disableChallengeResourceVerification: true, ...extra });
}

export function cryptoClient(keyOrId, credential, extra = {}) {
  return new CryptographyClient(keyOrId, credential, { disableChallengeResourceVerification: true, ...extra });
}

/** A pipeline policy that records every request URL the SDK sends. */
export function recorder() {
  const seen = [];
  return {
    seen,
    policy: {
      position: "perRetry",
      policy: {
        name: "akv-test-recorder",
        async sendRequest(req, next) {
          seen.push({ method: req.method, url: req.url, auth: req.headers.has("authorization") });
          const res = await next(req);
          seen[seen.length - 1].status = res.status;
          return res;
        },
      },
    },
  };
}

/** The vault's op counters from `akv-emulator stats`. */
export async function stats(emu, reset = false) {
  return emu.cli("stats", ...(reset ? ["--reset"] : []));
}
