/**
 * `npm run bench [-- --quick]`: authlith against the physical floor of each operation and against
 * a peer (Better Auth), side by side in one run, on the Postgres and Redis of this machine.
 * Writes bench/results/<timestamp>.json (with a `summary`), bench/results/<timestamp>.svg and
 * bench/results/latest.{json,svg,md}, and prints a table. No timing assertions: it reports.
 */
import { hash } from "@node-rs/argon2";
import { cpus, loadavg, totalmem, release } from "node:os";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { benchEnv, startBenchRuntime } from "./lib/app";
import { renderChart } from "./lib/chart";
import { createBenchDatabase, deleteRedisPrefix, REDIS_URL, requireServices } from "./lib/services";
import { round, type Summary } from "./lib/stats";
import { measureAdapters } from "./scenarios/adapter";
import { measureColdStart } from "./scenarios/cold-start";
import { costModel } from "./scenarios/cost";
import { measureLoginEnumeration, measureRegisterEnumeration, measureResetEnumeration } from "./scenarios/enumeration";
import { measureLogin, measureRefresh, PASSWORD, ratio, registerBenchUser } from "./scenarios/latency";
import { measurePasswordPolicy } from "./scenarios/password-policy";
import { measurePeer } from "./scenarios/peer";
import { measureScale, seedUsers } from "./scenarios/scale";
import { measureMeVsNoop, measureProcessScaling } from "./scenarios/throughput";

const { values } = parseArgs({
  options: { quick: { type: "boolean", default: false }, readme: { type: "boolean", default: false } },
});
const quick = values.quick!;
const plan = quick
  ? { login: 40, refresh: 200, warmup: 10, rounds: 3, seconds: 2, coldRuns: 3, largeUsers: 100_000, peer: 60, scaleIterations: 100, processes: [1, 2, 4] }
  : { login: 200, refresh: 1000, warmup: 30, rounds: 7, seconds: 4, coldRuns: 10, largeUsers: 1_000_000, peer: 300, scaleIterations: 400, processes: [1, 2, 4] };

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const started = new Date();
const log = (message: string) => process.stdout.write(`[${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s] ${message}\n`);

/** The function's memory size as declared in sst.config.ts, so the cost model prices what deploys. */
async function declaredMemoryMb(): Promise<number> {
  try {
    const config = await readFile(fileURLToPath(new URL("../sst.config.ts", import.meta.url)), "utf8");
    const match = /memory:\s*["'`](\d+)\s*MB["'`]/.exec(config);
    return match ? Number(match[1]) : 1024;
  } catch {
    return 1024;
  }
}

async function main() {
  let versions: Awaited<ReturnType<typeof requireServices>>;
  try {
    versions = await requireServices();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    postgres: versions.postgresVersion,
    redis: versions.redisVersion,
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
  };
  log(`${quick ? "quick" : "full"} run on ${machine.cores} × ${machine.cpu}, Node ${machine.node}, Postgres ${machine.postgres}, Redis ${machine.redis}`);

  const prefixes: string[] = [];
  const databases: { drop(): Promise<void> }[] = [];
  const cleanup = async () => {
    for (const db of databases) await db.drop().catch(() => {});
    for (const prefix of prefixes) await deleteRedisPrefix(prefix).catch(() => {});
  };
  try {
    const main = await createBenchDatabase("main");
    databases.push(main);
    const prefix = `authlith-bench:${Date.now()}:main:`;
    prefixes.push(prefix);
    const env = await benchEnv(main.url, prefix);
    const runtime = await startBenchRuntime(env);

    log("login vs one argon2id verification");
    const login = await measureLogin(runtime, plan.login, plan.warmup, main.url, REDIS_URL);
    log("refresh vs its floor (update+insert round trip + ES256 signature)");
    const refresh = await measureRefresh(runtime, main.url, plan.refresh, plan.warmup);

    const meUserEmail = `me-${Date.now()}@bench.test`;
    const meUser = await registerBenchUser(runtime, meUserEmail);
    log("auth.me vs a no-op procedure over HTTP");
    // Enough connections that both sides keep the server's core busy: the ratio is then one of CPU
    // cost per request, not of how long each request waits on Redis.
    const throughput = await measureMeVsNoop(env, meUser.accessToken, plan.rounds, { durationSeconds: plan.seconds, connections: 64 });
    log("fast path vs tRPC's Lambda adapter, per request");
    const officialRuntime = await startBenchRuntime({ ...env, AUTHLITH_TRPC_ADAPTER: "official" });
    const adapters = await measureAdapters(runtime, officialRuntime, meUser.accessToken, plan.refresh, plan.warmup);
    await officialRuntime.close();
    log("cold start of the bundled handler, its library floor, tRPC's adapter and Better Auth");
    const cold = await measureColdStart(env, meUser.accessToken, meUserEmail, plan.coldRuns);

    log("throughput with 1, 2 and 4 server processes");
    const refreshPool = async () => {
      const tokens: string[] = [];
      for (let i = 0; i < 96; i++) tokens.push((await registerBenchUser(runtime, `pool-${Date.now()}-${i}@bench.test`)).refreshToken);
      return tokens;
    };
    const processes = await measureProcessScaling(env, meUser.accessToken, refreshPool, plan.processes, {
      durationSeconds: plan.seconds,
      connections: 16,
    });

    log("enumeration: password-reset requests, existing vs unknown address");
    const resetEnumeration = await measureResetEnumeration(runtime, quick ? 60 : 300, plan.warmup);
    log("enumeration: sign-ups with verification on, existing vs new address");
    const verifyingRuntime = await startBenchRuntime({ ...env, AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "true" });
    const registerEnumeration = await measureRegisterEnumeration(verifyingRuntime, quick ? 40 : 200, plan.warmup);
    await verifyingRuntime.close();
    log("enumeration: failed sign-ins, existing vs unknown address");
    const loginEnumeration = await measureLoginEnumeration(runtime, quick ? 40 : 150, plan.warmup);

    log("peer: Better Auth on the same Postgres");
    const peer = await measurePeer(runtime, plan.peer, plan.warmup);
    await runtime.close();

    log(`scale: seeding ${plan.largeUsers.toLocaleString("en")} users`);
    const large = await createBenchDatabase("large");
    databases.push(large);
    const small = await createBenchDatabase("small");
    databases.push(small);
    const sharedHash = await hash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    const seedMs = await seedUsers(large.url, plan.largeUsers, sharedHash);
    await seedUsers(small.url, 9, sharedHash);
    const smallPrefix = `authlith-bench:${Date.now()}:small:`;
    const largePrefix = `authlith-bench:${Date.now()}:large:`;
    prefixes.push(smallPrefix, largePrefix);
    const smallRuntime = await startBenchRuntime(await benchEnv(small.url, smallPrefix));
    const largeRuntime = await startBenchRuntime(await benchEnv(large.url, largePrefix));
    log("scale: login and refresh latency, small vs large table");
    const scale = await measureScale(smallRuntime, largeRuntime, plan.largeUsers, plan.scaleIterations);
    await smallRuntime.close();
    await largeRuntime.close();

    log("password policy: check time and bundle bytes");
    const passwordPolicy = await measurePasswordPolicy(plan.refresh);

    const memoryMb = await declaredMemoryMb();
    const cost = costModel({ login: login.login.median, refresh: refresh.refresh.median, me: peer.authlith.me.median }, memoryMb);

    const summary = {
      loginOverArgon2: round(ratio(login.login, login.argon2)),
      loginFloorOverArgon2: round(ratio(login.floor, login.argon2)),
      refreshOverFloor: round(ratio(refresh.refresh, refresh.floor)),
      meOverNoop: round(throughput.ratio.median),
      coldStartMs: round(cold.overhead.median, 1),
      coldStartFloorMs: round(cold.floor.median, 1),
      coldStartOverFloor: round(cold.overhead.median / cold.floor.median),
      coldStartOfficialAdapterMs: round(cold.officialAdapter.median, 1),
      coldStartVsBetterAuth: round(cold.overhead.median / cold.betterAuth.median),
      meFastPathSavingMs: round(adapters.me.official.median - adapters.me.fast.median),
      bundleBytes: cold.bundleBytes,
      bundleTotalBytes: cold.bundleTotalBytes,
      loginPeakRssMb: round(cold.peakRssMb.median, 1),
      loginVsBetterAuth: round(peer.authlith.login.median / peer.betterAuth.signIn.median),
      sessionCheckVsBetterAuth: round(peer.authlith.me.median / peer.betterAuth.getSession.median),
      refreshVsBetterAuthSessionCheck: round(peer.authlith.refresh.median / peer.betterAuth.getSession.median),
      resetRequestExistingMinusUnknownMs: round(resetEnumeration.medianDifferenceMs, 2),
      failedLoginExistingMinusUnknownMs: round(loginEnumeration.medianDifferenceMs, 2),
      registerExistingMinusNewMs: round(registerEnumeration.medianDifferenceMs, 2),
      passwordPolicyCheckUs: round(passwordPolicy.checkUs.median, 1),
      passwordPolicyBundleBytes: passwordPolicy.bundleBytes,
      largeOverSmallLogin: round(scale.large.login.median / scale.small.login.median),
      largeOverSmallRefresh: round(scale.large.refresh.median / scale.small.refresh.median),
    };
    const targets = {
      loginOverArgon2: { max: 1.3, met: summary.loginOverArgon2 <= 1.3 },
      refreshOverFloor: { max: 2.0, met: summary.refreshOverFloor <= 2.0 },
      meOverNoop: { min: 0.8, met: summary.meOverNoop >= 0.8 },
      coldStartOverFloor: { max: 1.3, met: summary.coldStartOverFloor <= 1.3 },
      coldStartMs: { max: 90, met: summary.coldStartMs <= 90 },
      loginPeakRssMb: { max: 128, met: summary.loginPeakRssMb <= 128 },
      resetRequestExistingMinusUnknownMs: { max: 2, met: Math.abs(summary.resetRequestExistingMinusUnknownMs) <= 2 },
      failedLoginExistingMinusUnknownMs: { max: 10, met: Math.abs(summary.failedLoginExistingMinusUnknownMs) <= 10 },
      registerExistingMinusNewMs: { max: 2, met: Math.abs(summary.registerExistingMinusNewMs) <= 2 },
    };
    machine.loadAverageAtStart = machine.loadAverageAtStart;
    const result = {
      timestamp: started.toISOString(),
      mode: quick ? "quick" : "full",
      durationSeconds: round((Date.now() - started.getTime()) / 1000, 1),
      machine: { ...machine, loadAverageAtEnd: loadavg().map((l) => round(l, 2)) },
      summary,
      targets,
      login,
      refresh,
      throughput: { meVsNoop: throughput, processes },
      coldStart: cold,
      adapters,
      scale: { ...scale, seedSeconds: round(seedMs / 1000, 1) },
      passwordPolicy,
      enumeration: { passwordReset: resetEnumeration, failedLogin: loginEnumeration, register: registerEnumeration },
      peer,
      cost,
      plan,
    };

    await mkdir(RESULTS, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, "-");
    const svg = renderChart(
      `authlith benchmark (${result.mode})`,
      `${started.toISOString()} · ${machine.cores} × ${machine.cpu} · Node ${machine.node} · Postgres ${machine.postgres} · Redis ${machine.redis}`,
      [
        { label: "login ÷ one argon2id verify", value: summary.loginOverArgon2, unit: "×", target: 1.3, kind: "max" },
        { label: "refresh ÷ floor", value: summary.refreshOverFloor, unit: "×", target: 2, kind: "max" },
        { label: "me ÷ no-op throughput", value: summary.meOverNoop, unit: "×", target: 0.8, kind: "min" },
        { label: "cold start ÷ library floor", value: summary.coldStartOverFloor, unit: "×", target: 1.3, kind: "max" },
        { label: "cold start over bare Node", value: summary.coldStartMs, unit: "ms", target: 90, kind: "max" },
        { label: "peak RSS during a login", value: summary.loginPeakRssMb, unit: "MB", target: 128, kind: "max" },
      ],
      [
        {
          title: "Against Better Auth (median, in-process, same Postgres)",
          rows: [
            { label: "sign-in", unit: "ms", values: [{ name: "authlith login", value: peer.authlith.login.median }, { name: "Better Auth sign-in", value: peer.betterAuth.signIn.median }] },
            {
              label: "session check",
              unit: "ms",
              values: [
                { name: "authlith me", value: peer.authlith.me.median },
                { name: "authlith refresh", value: peer.authlith.refresh.median },
                { name: "Better Auth get-session", value: peer.betterAuth.getSession.median },
              ],
            },
          ],
        },
        {
          title: "Against the floor (median)",
          rows: [
            {
              label: "login",
              unit: "ms",
              values: [
                { name: "argon2id verify", value: login.argon2.median },
                { name: "floor (bare round trips)", value: login.floor.median },
                { name: "login", value: login.login.median },
              ],
            },
            { label: "refresh", unit: "ms", values: [{ name: "floor", value: refresh.floor.median }, { name: "refresh", value: refresh.refresh.median }] },
            { label: "HTTP throughput", unit: "req/s", values: [{ name: "no-op", value: throughput.noop.median }, { name: "me", value: throughput.me.median }] },
          ],
        },
        {
          title: `Scale (${plan.largeUsers.toLocaleString("en")} users vs 10) and server processes`,
          rows: [
            { label: "login", unit: "ms", values: [{ name: "10 users", value: scale.small.login.median }, { name: "large", value: scale.large.login.median }] },
            { label: "refresh", unit: "ms", values: [{ name: "10 users", value: scale.small.refresh.median }, { name: "large", value: scale.large.refresh.median }] },
            { label: "me throughput", unit: "req/s", values: processes.map((p) => ({ name: `${p.processes} proc`, value: p.meRps })) },
            { label: "refresh throughput", unit: "req/s", values: processes.map((p) => ({ name: `${p.processes} proc`, value: p.refreshRps })) },
          ],
        },
      ],
    );
    const table = renderTable(result);
    await writeFile(`${RESULTS}${stamp}.json`, `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(`${RESULTS}${stamp}.svg`, svg);
    await writeFile(`${RESULTS}latest.json`, `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(`${RESULTS}latest.svg`, svg);
    await writeFile(`${RESULTS}latest.md`, `${table}\n`);
    if (values.readme) await updateReadme(result, table);
    process.stdout.write(`\n${table}\n\nwrote bench/results/${stamp}.json and .svg (also latest.*) in ${result.durationSeconds} s\n`);
  } finally {
    await cleanup();
  }
}

/** Replaces the table between the bench markers in README.md with this run's. */
async function updateReadme(result: { timestamp: string; mode: string; machine: Record<string, unknown> }, table: string) {
  const path = fileURLToPath(new URL("../README.md", import.meta.url));
  const readme = await readFile(path, "utf8");
  const m = result.machine as { cores: number; cpu: string; memoryGb: number; node: string; postgres: string; redis: string };
  const heading = `Latest ${result.mode} run, ${result.timestamp.slice(0, 16).replace("T", " ")} UTC, on ${m.cores} × ${m.cpu} (${m.memoryGb} GiB), Node ${m.node}, Postgres ${m.postgres.split(" ")[0]} and Redis ${m.redis} on the same machine:`;
  const updated = readme.replace(
    /<!-- bench:start -->[\s\S]*<!-- bench:end -->/,
    `<!-- bench:start -->\n${heading}\n\n${table}\n<!-- bench:end -->`,
  );
  await writeFile(path, updated);
}

const ms = (s: Summary) => `${fmt(s.median)} ms (${fmt(s.min)}–${fmt(s.max)})`;
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

function renderTable(r: any): string {
  const s = r.summary;
  const t = r.targets;
  const mark = (met: boolean) => (met ? "meets" : "misses");
  const rows: string[][] = [
    ["login ÷ argon2id verify", `${s.loginOverArgon2}×`, `≤ 1.3 (${mark(t.loginOverArgon2.met)})`, `login ${ms(r.login.login)}, p99 ${fmt(r.login.login.p99)}; argon2 ${ms(r.login.argon2)}`],
    ["login floor ÷ argon2id verify", `${s.loginFloorOverArgon2}×`, "report", `the same round trips around the hash by bare clients: ${ms(r.login.floor)}`],
    ["refresh ÷ floor", `${s.refreshOverFloor}×`, `≤ 2.0 (${mark(t.refreshOverFloor.met)})`, `refresh ${ms(r.refresh.refresh)}, p99 ${fmt(r.refresh.refresh.p99)}; floor ${ms(r.refresh.floor)}`],
    ["me ÷ no-op throughput", `${s.meOverNoop}×`, `≥ 0.8 (${mark(t.meOverNoop.met)})`, `median of ${r.throughput.meVsNoop.ratio.n} paired rounds (${fmt(r.throughput.meVsNoop.ratio.min)}–${fmt(r.throughput.meVsNoop.ratio.max)}); me ${fmt(r.throughput.meVsNoop.me.median)} req/s, no-op ${fmt(r.throughput.meVsNoop.noop.median)} req/s`],
    ["cold start (over bare Node)", `${s.coldStartMs} ms`, `≤ 90 (${mark(t.coldStartMs.met)})`, `over bare ${ms(r.coldStart.overhead)}; bare node ${ms(r.coldStart.bareNode)}; import ${ms(r.coldStart.phases.handler.importMs)}, first answer ${ms(r.coldStart.phases.handler.firstRequestMs)}`],
    ["cold start ÷ library floor", `${s.coldStartOverFloor}×`, `≤ 1.3 (${mark(t.coldStartOverFloor.met)})`, `floor (the same libraries, connections, one trivial call) ${ms(r.coldStart.floor)} over bare`],
    ["cold start, tRPC's Lambda adapter", `${s.coldStartOfficialAdapterMs} ms`, "report", `the same handler with AUTHLITH_TRPC_ADAPTER=official: ${ms(r.coldStart.officialAdapter)} over bare; first answer ${ms(r.coldStart.phases.official.firstRequestMs)}`],
    ["me: tRPC's adapter − fast path", `${s.meFastPathSavingMs} ms`, "report", `per warm call, in-process: fast ${ms(r.adapters.me.fast)}, tRPC's adapter ${ms(r.adapters.me.official)}; system.ping ${ms(r.adapters.ping.fast)} vs ${ms(r.adapters.ping.official)}`],
    ["cold start vs Better Auth", `${s.coldStartVsBetterAuth}×`, "report", `Better Auth's first get-session ${ms(r.coldStart.betterAuth)} over bare (bundle ${(r.coldStart.betterAuthBundleBytes / 1024).toFixed(0)} KiB)`],
    ["bundle size", `${(s.bundleBytes / 1024).toFixed(0)} KiB`, "report", `minified ESM, argon2 external; what a cold start loads (${(s.bundleTotalBytes / 1024).toFixed(0)} KiB with the chunks loaded on first use: WebAuthn)`],
    ["peak RSS during a login", `${s.loginPeakRssMb} MB`, `≤ 128 (${mark(t.loginPeakRssMb.met)})`, "fresh process: cold start, me, login"],
    ["login vs Better Auth sign-in", `${s.loginVsBetterAuth}×`, "report", `authlith ${ms(r.peer.authlith.login)}; Better Auth ${ms(r.peer.betterAuth.signIn)}`],
    ["me vs Better Auth get-session", `${s.sessionCheckVsBetterAuth}×`, "report", `authlith me ${ms(r.peer.authlith.me)}, refresh ${ms(r.peer.authlith.refresh)}; Better Auth ${ms(r.peer.betterAuth.getSession)}`],
    ["sign-up (verification on): existing − new address", `${s.registerExistingMinusNewMs} ms`, `|Δ| ≤ 2 (${mark(t.registerExistingMinusNewMs.met)})`, `median of alternated sign-ups, each address once, both answering verification_required: existing ${ms(r.enumeration.register.existing)}, new ${ms(r.enumeration.register.unknown)}`],
    ["reset request: existing − unknown address", `${s.resetRequestExistingMinusUnknownMs} ms`, `|Δ| ≤ 2 (${mark(t.resetRequestExistingMinusUnknownMs.met)})`, `median of alternated requests, each address once: existing ${ms(r.enumeration.passwordReset.existing)}, unknown ${ms(r.enumeration.passwordReset.unknown)}`],
    ["failed sign-in: existing − unknown address", `${s.failedLoginExistingMinusUnknownMs} ms`, `|Δ| ≤ 10 (${mark(t.failedLoginExistingMinusUnknownMs.met)})`, `median of alternated attempts: wrong password ${ms(r.enumeration.failedLogin.existing)}, unknown address ${ms(r.enumeration.failedLogin.unknown)}`],
    ["password policy per sign-up", `${s.passwordPolicyCheckUs} µs`, "report", `length, surrogates, blocklist (Bloom filter, 49,233 passwords) and context words: ${fmt(r.passwordPolicy.checkUs.median)} µs (${fmt(r.passwordPolicy.checkUs.min)}–${fmt(r.passwordPolicy.checkUs.max)}); first check ${fmt(r.passwordPolicy.firstCheckMs)} ms (decodes the filter); ${(s.passwordPolicyBundleBytes / 1024).toFixed(0)} KiB of bundle`],
    ["scale: login, large ÷ 10 users", `${s.largeOverSmallLogin}×`, "flat", `${r.scale.large.users.toLocaleString("en")} users: ${ms(r.scale.large.login)}; 10 users: ${ms(r.scale.small.login)}`],
    ["scale: refresh, large ÷ 10 users", `${s.largeOverSmallRefresh}×`, "flat", `${ms(r.scale.large.refresh)} vs ${ms(r.scale.small.refresh)}`],
    ...r.throughput.processes.map((p: any) => [`${p.processes} server process(es)`, `${fmt(p.meRps)} / ${fmt(p.refreshRps)} req/s`, "report", "me / refresh, shared Postgres + Redis"]),
  ];
  const costRows = r.cost.tiers.map((tier: any) => [
    `${tier.requests.toLocaleString("en")} requests/month`,
    `$${tier.authlith.total.toFixed(2)}`,
    "report",
    `Lambda ${r.cost.memoryMb} MB arm64 at ${fmt(tier.authlithPerRequestMs)} ms billed/request + HTTP API; a 500 ms/request service: $${tier.typicalLambdaAt500ms.total.toFixed(2)}; Cognito Essentials at ${tier.cognitoEssentials.mau.toLocaleString("en")} MAU: $${tier.cognitoEssentials.total.toFixed(2)}`,
  ]);
  costRows.push(["fixed infrastructure/month", `$${r.cost.fixed.personal.total.toFixed(0)} personal, $${r.cost.fixed.prod.total.toFixed(0)} prod`, "report", "RDS, ElastiCache, NAT, bastion, RDS Proxy (prod); dominates at low traffic"]);
  const all = [["measure", "value", "target", "detail (median, min–max)"], ...rows, ...costRows];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(all[0]!), line(all[0]!.map(() => "---")), ...all.slice(1).map(line)].join("\n");
}

await main();
process.exit(0);
