import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface DevServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * `npm run dev`'s entry point in its own process (its clock is the real one, whatever the test
 * does to its own), on PGlite in `dataDir`. Started again on the same data directory it keeps its
 * users, sessions and keys, unless `env` brings other keys.
 */
export async function startDevServer(dataDir: string, port: number, env: Record<string, string> = {}): Promise<DevServer> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), AUTHLITH_DATA_DIR: dataDir, LOG_LEVEL: "warn", ...env };
  for (const name of ["DATABASE_URL", "REDIS_URL", "AUTHLITH_ISSUER"]) delete childEnv[name];
  if (!env.AUTHLITH_SIGNING_KEYS) delete childEnv.AUTHLITH_SIGNING_KEYS;
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "packages/functions/src/dev-server.ts"], { cwd: ROOT, env: childEnv });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += String(chunk)));
  child.stderr!.on("data", (chunk) => (output += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev server did not start:\n${output}`)), 60_000);
    child.stdout!.on("data", () => {
      const match = /READY (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`dev server exited (${code}):\n${output}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Observes every request a client sends and the status it gets back; changes nothing. */
export function observedFetch() {
  const calls: { procedure: string; status: number | null }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const call = { procedure: new URL(String(input)).pathname.replace(/^\/trpc\//, ""), status: null as number | null };
    calls.push(call);
    const response = await globalThis.fetch(input, init);
    call.status = response.status;
    return response;
  };
  return { fetch, calls, count: (procedure: string) => calls.filter((c) => c.procedure === procedure).length };
}

export const PASSWORD = "correct horse battery staple";
let emails = 0;
export const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${++emails}@example.com`;

/** The generation in a refresh token (packages/core/src/refresh-token.ts: sid ‖ generation ‖ ...). */
export const refreshGeneration = (token: string) => Buffer.from(token, "base64url").readUInt32BE(16);
