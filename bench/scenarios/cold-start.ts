import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleFunction, installFromWorkspace } from "../../packages/infra/tests/support/bundle";
import { TestClient } from "../../packages/functions/test/support/app";
import { summarize } from "../lib/stats";
import { PASSWORD } from "./latency";

const COLD_CHILD = fileURLToPath(new URL("../lib/cold-child.mjs", import.meta.url));

/** Spawns a process and resolves with the wall time until it prints "FIRST", plus all its output. */
function timeToFirst(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; output: string }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let firstAt = 0;
    child.stdout.on("data", (chunk) => {
      output += String(chunk);
      if (!firstAt && output.includes("FIRST")) firstAt = performance.now() - start;
    });
    child.stderr.on("data", (chunk) => (output += String(chunk)));
    child.once("exit", (code) => {
      if (code !== 0 || !firstAt) reject(new Error(`cold-start child failed (${code}): ${output.slice(0, 2000)}`));
      else resolve({ ms: firstAt, output });
    });
  });
}

/**
 * Cold start: a fresh Node process loading the bundled handler and answering its first `auth.me`
 * (config parse, key import, Redis connection, token verification, revocation check), against a
 * bare Node process loading an empty ES module and printing the same line (Lambda's Node runtime
 * imports handlers as ES modules, so the module loader is part of bare start-up), alternated. The
 * bundle is built and laid out as SST deploys it (packages/infra's bundler, argon2 installed
 * beside it). Also the bundle size and the peak RSS of that process after one sign-in.
 */
export async function measureColdStart(env: Record<string, string>, accessToken: string, email: string, runs: number) {
  const dir = await mkdtemp(join(tmpdir(), "authlith-cold-"));
  try {
    return await measureIn(dir, env, accessToken, email, runs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureIn(dir: string, env: Record<string, string>, accessToken: string, email: string, runs: number) {
  const bundle = await bundleFunction({ handler: "packages/functions/src/handler.handler", out: dir, install: ["@node-rs/argon2"] });
  await installFromWorkspace(dir, ["@node-rs/argon2"]);
  const bareModule = join(dir, "bare.mjs");
  await writeFile(bareModule, "process.stdout.write('FIRST 200\\n');\n");
  const events = new TestClient(async () => ({ statusCode: 200 }), { origin: null });
  const meEvent = events.event({ path: "/trpc/auth.me", headers: { authorization: `Bearer ${accessToken}` } });
  const loginEvent = events.event({
    method: "POST",
    path: "/trpc/auth.login",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const childEnv = {
    PATH: process.env.PATH,
    ...env,
    BENCH_BUNDLE: join(dir, bundle.file),
    BENCH_ME_EVENT: JSON.stringify(meEvent),
    BENCH_LOGIN_EVENT: JSON.stringify(loginEvent),
  };
  const bare: number[] = [];
  const cold: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const baseline = await timeToFirst([bareModule], { PATH: process.env.PATH });
    const handler = await timeToFirst([COLD_CHILD], childEnv);
    const report = JSON.parse(handler.output.split("\n").find((line) => line.startsWith("{"))!);
    if (report.firstStatus !== 200 || report.loginStatus !== 200) throw new Error(`cold start answered ${handler.output}`);
    if (i === 0) continue; // the first pair warms the OS file cache
    bare.push(baseline.ms);
    cold.push(handler.ms);
    rss.push(report.maxRssKb / 1024);
  }
  const overhead = cold.map((ms, i) => ms - bare[i]!);
  return { bundleBytes: bundle.bytes, bareNode: summarize(bare), handler: summarize(cold), overhead: summarize(overhead), peakRssMb: summarize(rss) };
}
