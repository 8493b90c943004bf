// SPDX-License-Identifier: Apache-2.0
//
// Launcher for the SDK conformance tests: `node run.mjs TEST_FILE...`.
//
// Node reads NODE_EXTRA_CA_CERTS only at start-up, and the emulator makes its
// CA on first start, so this script starts akv-emulator once in a seed
// directory (which creates ca.pem/server.pem/server-key.pem), stops it, and
// then runs `node --test` on the given files with NODE_EXTRA_CA_CERTS pointing
// at the seed CA. Each test file starts its own emulator(s) through
// lib/emulator.mjs, which copies the seed's TLS files into the new directory
// so that every emulator of the run presents a certificate from the same CA
// (protocol.md §6: the SDK needs the CA in NODE_EXTRA_CA_CERTS).
//
// Exit status: the test runner's; 77 (ctest SKIP_RETURN_CODE) when
// node_modules or the emulator binary is missing.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { startEmulator } from "./lib/emulator.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node run.mjs TEST_FILE...");
  process.exit(2);
}
if (!existsSync(join(here, "node_modules", "@azure", "keyvault-keys"))) {
  console.log("SKIP: tests/sdk/node_modules missing (run `npm ci` in tests/sdk)");
  process.exit(77);
}
if (!process.env.AKV_EMULATOR || !existsSync(process.env.AKV_EMULATOR)) {
  console.log("SKIP: AKV_EMULATOR is not set to the akv-emulator binary");
  process.exit(77);
}

const seed = mkdtempSync(join(tmpdir(), "akv-sdk-seed."));
let rc = 1;
try {
  const emu = await startEmulator({ dir: seed, seed: null });
  await emu.stop({ keepDir: true });
  const env = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: join(seed, "ca.pem"),
    AKV_EMU_TLS_SEED: seed,
  };
  const args = ["--test", "--test-reporter=spec", ...files.map((f) => resolve(f))];
  rc = await new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env, stdio: "inherit", cwd: here });
    child.on("exit", (code, sig) => resolve(code ?? (sig ? 1 : 0)));
  });
} finally {
  if (process.env.AKV_KEEP_TMP !== "1") {
    rmSync(seed, { recursive: true, force: true });
  }
}
process.exit(rc);
