// SPDX-License-Identifier: Apache-2.0
//
// Test helpers: start a private akv-emulator on free loopback ports, run its
// control commands, build SDK credentials/clients for it, and send raw HTTPS
// requests (for what the SDK cannot express). Used by run.mjs and every test
// file under test/.
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const live = new Set();
process.on("exit", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
});

/** The akv-emulator binary (ctest sets AKV_EMULATOR). */
export function emulatorPath() {
  const p = process.env.AKV_EMULATOR;
  if (!p) {
    throw new Error("AKV_EMULATOR is not set");
  }
  return p;
}

/**
 * Start `akv-emulator serve --dir DIR --port 0 --imds-port 0 ARGS...` and wait
 * for its JSON line. DIR is a new temp dir unless given; the TLS files of the
 * seed dir (AKV_EMU_TLS_SEED, set by run.mjs) are copied in first so the
 * server certificate chains to the CA in NODE_EXTRA_CA_CERTS.
 * Returns an object with info (the JSON line), dir, cli(), stop().
 */
export async function startEmulator({ args = [], dir = null, seed = process.env.AKV_EMU_TLS_SEED } = {}) {
  const ownDir = !dir;
  dir = dir ?? mkdtempSync(join(tmpdir(), "akv-sdk-emu."));
  if (seed) {
    for (const f of ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]) {
      if (existsSync(join(seed, f))) {
        copyFileSync(join(seed, f), join(dir, f));
      }
    }
  }
  const errFd = openSync(join(dir, "serve.err"), "a");
  // Azure completes a delete or recover asynchronously and the SDK pollers
  // rely on seeing it "in progress" first: the SDK tests run the emulator
  // with a realistic delay unless a test sets its own (or
  // AKV_SDK_DELETE_DELAY_MS, e.g. 0, overrides the default).
  const delay = process.env.AKV_SDK_DELETE_DELAY_MS ?? "1000";
  const delayArgs = args.includes("--delete-delay-ms") ? [] : ["--delete-delay-ms", delay];
  const child = spawn(emulatorPath(), ["serve", "--dir", dir, "--port", "0", "--imds-port", "0", ...delayArgs, ...args], {
    stdio: ["ignore", "pipe", errFd],
  });
  closeSync(errFd);
  live.add(child);
  const info = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`emulator not ready in 20 s: ${tail(dir)}`)), 20000);
    const onData = (d) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        child.stdout.resume();
        try {
          resolve(JSON.parse(buf.slice(0, nl)));
        } catch (e) {
          reject(new Error(`bad ready line ${JSON.stringify(buf.slice(0, nl))}: ${e.message}`));
        }
      }
    };
    child.stdout.on("data", onData);
    child.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited (${code ?? sig}) before ready: ${tail(dir)}`));
    });
  });
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.on("exit", resolve));

  const emu = {
    info,
    dir,
    child,
    /** Run a control command; resolves to parsed JSON (or text), rejects on non-zero exit. */
    async cli(...cmd) {
      const r = await emu.cliRaw(...cmd);
      if (r.code !== 0) {
        throw new Error(`akv-emulator ${cmd.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
      }
      try {
        return JSON.parse(r.stdout);
      } catch {
        return r.stdout;
      }
    },
    /** Run a control command; resolves to {code, stdout, stderr}. */
    cliRaw(...cmd) {
      return new Promise((resolve) => {
        execFile(emulatorPath(), ["--dir", dir, ...cmd], { encoding: "utf8" }, (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
        });
      });
    },
    /** SIGTERM and wait; rejects when the emulator did not exit 0 (a crash,
     * or a sanitizer report at exit), with the end of its stderr. */
    async stop({ keepDir = false } = {}) {
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => {
          killed = true;
          child.kill("SIGKILL");
        }, 10000);
        await exited;
        clearTimeout(t);
      }
      live.delete(child);
      const code = child.exitCode;
      const why = code === 0 ? null : `akv-emulator exited ${code ?? child.signalCode}${killed ? " (SIGKILL after 10 s)" : ""}: ${tail(dir)}`;
      if (ownDir && !keepDir && process.env.AKV_KEEP_TMP !== "1") {
        rmSync(dir, { recursive: true, force: true });
      }
      if (why) {
        throw new Error(why);
      }
    },
  };
  return emu;
}

function tail(dir) {
  try {
    return readFileSync(join(dir, "serve.err"), "utf8").slice(-2000);
  } catch {
    return "(no serve.err)";
  }
}

/** Origin of the IMDS listener (for AZURE_POD_IDENTITY_AUTHORITY_HOST). */
export function imdsOrigin(info) {
  return new URL(info.imds_endpoint).origin;
}

/**
 * Send one raw HTTP(S) request. Resolves to {status, headers, text, json};
 * rejects on a transport error (ECONNRESET, timeout after timeoutMs, ...).
 */
export function rawRequest(method, url, { headers = {}, body = undefined, timeoutMs = 15000, agent = undefined } = {}) {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const h = { ...headers };
  if (data !== undefined) {
    h["content-type"] ??= "application/json";
    h["content-length"] = Buffer.byteLength(data);
  }
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers: h, agent: agent ?? false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", reject);
      res.on("aborted", () => reject(Object.assign(new Error("response aborted"), { code: "ECONNRESET" })));
      res.on("end", () => {
        if (!res.complete) {
          reject(Object.assign(new Error("response incomplete"), { code: "ECONNRESET" }));
          return;
        }
        const text = Buffer.concat(chunks).toString("utf8");
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`timeout after ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    if (data !== undefined) {
      req.write(data);
    }
    req.end();
  });
}

/** Decode the claims of a compact JWT (no verification). */
export function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

export function jwtHeader(token) {
  return JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString("utf8"));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
