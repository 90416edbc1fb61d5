import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { Pool } from "pg";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleFunction, installFromWorkspace } from "../../packages/infra/tests/support/bundle";
import { RUNTIME_PROVIDED } from "../../packages/infra/src/settings";
import { TestClient } from "../../packages/functions/test/support/app";
import { summarize } from "../lib/stats";
import { PASSWORD } from "./latency";
import { createBenchDatabase } from "../lib/services";

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
 * Cold start: a fresh Node process loading a bundle and answering its first request, against a
 * bare Node process loading an empty ES module and printing the same line (Lambda's Node runtime
 * imports handlers as ES modules, so the module loader is part of bare start-up). In each round,
 * in turn:
 * - bare Node;
 * - the floor (bench/lib/cold-floor.ts): the runtime libraries the handler uses, connections
 *   opened, one trivial tRPC call;
 * - the handler answering `auth.me` (config parse, key import, Redis connection, token
 *   verification, revocation check), then signing in once for the peak RSS;
 * - the same handler serving tRPC through tRPC's own AWS Lambda adapter;
 * - Better Auth (bench/lib/cold-better-auth.ts) answering a get-session.
 * Every bundle is built and laid out as SST deploys the handler (packages/infra's bundler,
 * minified ESM; argon2 installed beside it). Each figure is reported over bare Node.
 */
export async function measureColdStart(env: Record<string, string>, accessToken: string, email: string, runs: number) {
  const dir = await mkdtemp(join(tmpdir(), "authlith-cold-"));
  const betterAuth = await prepareBetterAuth();
  try {
    return await measureIn(dir, env, accessToken, email, runs, betterAuth);
  } finally {
    await betterAuth.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A Better Auth database with one signed-in user: its session cookie and the secret that signed it. */
async function prepareBetterAuth() {
  const database = await createBenchDatabase("bacold", { migrate: false });
  const pool = new Pool({ connectionString: database.url, max: 2 });
  const secret = randomBytes(32).toString("hex");
  try {
    const auth = betterAuth({
      database: pool,
      baseURL: "http://localhost:3000",
      secret,
      emailAndPassword: { enabled: true },
      rateLimit: { enabled: false },
      logger: { disabled: true },
      telemetry: { enabled: false },
    });
    await (await getMigrations(auth.options)).runMigrations();
    const signUp = await auth.api.signUpEmail({ body: { email: `cold-${Date.now()}@bench.test`, password: PASSWORD, name: "Cold" }, asResponse: true });
    const cookies = signUp.headers.getSetCookie().map((cookie) => cookie.split(";")[0]!);
    if (!cookies.length) throw new Error("Better Auth set no session cookie");
    return { url: database.url, secret, cookies, drop: () => database.drop() };
  } finally {
    await pool.end();
  }
}

type Subject = "bare" | "floor" | "handler" | "official" | "betterAuth";

async function measureIn(
  dir: string,
  env: Record<string, string>,
  accessToken: string,
  email: string,
  runs: number,
  betterAuth: Awaited<ReturnType<typeof prepareBetterAuth>>,
) {
  const bundle = await bundleFunction({ handler: "packages/functions/src/handler.handler", out: dir, install: ["@node-rs/argon2"], external: RUNTIME_PROVIDED, splitting: true });
  await installFromWorkspace(dir, ["@node-rs/argon2"]);
  const floor = await bundleFunction({ handler: "bench/lib/cold-floor.handler", out: dir });
  const peer = await bundleFunction({ handler: "bench/lib/cold-better-auth.handler", out: dir });
  const bareModule = join(dir, "bare.mjs");
  await writeFile(bareModule, "process.stdout.write('FIRST 200\\n');\n");
  const events = new TestClient(async () => ({ statusCode: 200 }), { origin: null });
  const meEvent = JSON.stringify(events.event({ path: "/trpc/auth.me", headers: { authorization: `Bearer ${accessToken}` } }));
  const loginEvent = JSON.stringify(
    events.event({ method: "POST", path: "/trpc/auth.login", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password: PASSWORD }) }),
  );
  const sessionEvent = JSON.stringify(events.event({ path: "/api/auth/get-session", cookies: betterAuth.cookies }));
  const path = { PATH: process.env.PATH };
  const handlerEnv = { ...path, ...env, BENCH_BUNDLE: join(dir, bundle.file), BENCH_ME_EVENT: meEvent, BENCH_LOGIN_EVENT: loginEvent };
  const commands: Record<Subject, { args: string[]; env: NodeJS.ProcessEnv }> = {
    bare: { args: [bareModule], env: path },
    floor: { args: [COLD_CHILD], env: { ...path, ...env, BENCH_BUNDLE: join(dir, floor.file), BENCH_ME_EVENT: meEvent, BENCH_LOGIN_EVENT: meEvent } },
    handler: { args: [COLD_CHILD], env: handlerEnv },
    official: { args: [COLD_CHILD], env: { ...handlerEnv, AUTHLITH_TRPC_ADAPTER: "official" } },
    betterAuth: {
      args: [COLD_CHILD],
      env: { ...path, BA_DATABASE_URL: betterAuth.url, BA_SECRET: betterAuth.secret, BENCH_BUNDLE: join(dir, peer.file), BENCH_ME_EVENT: sessionEvent, BENCH_LOGIN_EVENT: sessionEvent },
    },
  };
  const order: Subject[] = ["bare", "floor", "handler", "official", "betterAuth"];
  const samples: Record<Subject, number[]> = { bare: [], floor: [], handler: [], official: [], betterAuth: [] };
  const rss: number[] = [];
  // Inside each child: time to import the bundle, and from there to the first answer.
  const phases: Partial<Record<Subject, { importMs: number[]; firstRequestMs: number[] }>> = {};
  for (let i = 0; i < runs + 1; i++) {
    // Rotate the order each round, so that drift and after-effects hit every subject alike.
    for (let j = 0; j < order.length; j++) {
      const subject = order[(i + j) % order.length]!;
      const { args, env: childEnv } = commands[subject];
      const run = await timeToFirst(args, childEnv);
      if (subject !== "bare") {
        const report = JSON.parse(run.output.split("\n").find((line) => line.startsWith("{"))!);
        if (report.firstStatus !== 200 || report.loginStatus !== 200) throw new Error(`${subject} cold start answered ${run.output}`);
        if (subject === "handler" && i > 0) rss.push(report.maxRssKb / 1024);
        if (i > 0) {
          const phase = (phases[subject] ??= { importMs: [], firstRequestMs: [] });
          phase.importMs.push(report.importMs);
          phase.firstRequestMs.push(report.firstRequestMs);
        }
      }
      if (i > 0) samples[subject].push(run.ms); // the first round warms the OS file cache
    }
  }
  const over = (subject: Subject) => summarize(samples[subject].map((ms, i) => ms - samples.bare[i]!));
  return {
    bundleBytes: bundle.bytes,
    bundleTotalBytes: bundle.totalBytes,
    floorBundleBytes: floor.bytes,
    betterAuthBundleBytes: peer.bytes,
    bareNode: summarize(samples.bare),
    handler: summarize(samples.handler),
    overhead: over("handler"),
    floor: over("floor"),
    officialAdapter: over("official"),
    betterAuth: over("betterAuth"),
    peakRssMb: summarize(rss),
    phases: Object.fromEntries(
      Object.entries(phases).map(([subject, phase]) => [subject, { importMs: summarize(phase.importMs), firstRequestMs: summarize(phase.firstRequestMs) }]),
    ),
  };
}
