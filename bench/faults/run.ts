/**
 * `npm run test:faults`: the service under faults and load, on real Postgres 15 and Redis 7.
 *
 * Two server processes (the Lambda handler, production configuration) share a fresh database and
 * a Redis server of the suite's own, each behind a TCP fault proxy. Simulated clients, each with
 * its own address and refresh-token chain, sign in, call `me`, refresh and sign out while one
 * fault at a time is applied and healed. Every answer and, afterwards, every stored session is
 * checked against the invariants (README "Reliability"). Then credential stuffing, a login flood
 * and a spike of first requests. Prints a table, writes bench/results/faults-<ts>.json, exits 1 if
 * any invariant broke.
 *
 *   --quick   shorter holds and fewer clients (CI, under 3 minutes)
 *   --readme  writes the table into README.md (from a full run)
 *   --only <text>  only the faults whose name contains it, or `abuse` for only the load and abuse runs
 */
import { cpus, totalmem } from "node:os";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { credentialStuffing, firstRequestSpike, loginFlood, type FloodResult, type SpikeResult, type StuffingResult } from "./abuse";
import { SETTINGS, startEnvironment } from "./env";
import { faults } from "./faults";
import { makeClients, Recorder } from "./load";
import { runFault, type FaultResult, type Timing } from "./scenario";

const { values: args } = parseArgs({
  options: { quick: { type: "boolean", default: false }, readme: { type: "boolean", default: false }, only: { type: "string" } },
});
const quick = args.quick!;
const plan = quick
  ? { servers: 2, clients: 40, timing: { warmMs: 800, holdMs: 2500, afterMs: 800 } satisfies Timing, stuffing: { users: 30, pairs: 600, addresses: 100 }, flood: { samples: 80, flooders: 12 } }
  : { servers: 2, clients: 120, timing: { warmMs: 2000, holdMs: 6000, afterMs: 2000 } satisfies Timing, stuffing: { users: 150, pairs: 4000, addresses: 300 }, flood: { samples: 300, flooders: 24 } };

const RESULTS = fileURLToPath(new URL("../results/", import.meta.url));
const started = new Date();
const log = (line: string) => process.stdout.write(`${line}\n`);

const env = await startEnvironment(plan.servers);
let exitCode = 0;
try {
  const urls = env.servers.map((s) => s.url);
  const setup = new Recorder();
  const clients = makeClients(plan.clients, 10, urls, "load");
  for (const client of clients) await client.register(setup);
  const probes = env.servers.map((server, i) => makeClients(1, 11 + i, [server.url], `probe${i}`)[0]!);
  for (const probe of probes) await probe.register(setup);
  const revokers = makeClients(6, 12, urls, "revoked");
  for (const revoker of revokers) await revoker.register(setup);
  log(`fault suite (${quick ? "quick" : "full"}): ${plan.servers} server processes, ${plan.clients} clients, hold ${plan.timing.holdMs} ms; request deadline ${SETTINGS.requestTimeoutMs} ms`);

  const results: FaultResult[] = [];
  const only = args.only?.toLowerCase();
  for (const fault of faults(env).filter((f) => !only || f.name.toLowerCase().includes(only))) {
    const result = await runFault(env, fault, clients, probes, revokers, plan.timing);
    results.push(result);
    log(`${result.pass ? "ok  " : "FAIL"} ${fault.name}: ${result.requests} requests ${JSON.stringify(result.byStatus)}, p99 ${result.p99Ms.toFixed(0)} ms, max ${result.maxMs.toFixed(0)} ms, recovery ${(result.recoveryMs / 1000).toFixed(2)} s, lost ${result.lostSessions} (+${result.lostAfter503} after a 503)`);
    for (const violation of result.violations) log(`       ${violation}`);
    for (const [why, count] of Object.entries(result.lostAfter503Reasons)) log(`       after a 503: ${why} (×${count})`);
  }

  let stuffing: StuffingResult | undefined;
  let flood: FloodResult | undefined;
  let spike: SpikeResult | undefined;
  if (!only || only === "abuse") {
    stuffing = await credentialStuffing(env, plan.stuffing);
    log(`${stuffing.pass ? "ok  " : "FAIL"} credential stuffing: ${stuffing.attackerPairs} pairs from ${stuffing.attackerAddresses} addresses ${JSON.stringify(stuffing.attackerByStatus)}, attackers in: ${stuffing.attackerSuccesses}; real users ${stuffing.realSuccesses}/${stuffing.realAttempts} (${(stuffing.realSuccessRate * 100).toFixed(1)} %); owners of attacked accounts from a new device afterwards: ${stuffing.realWithoutDeviceSucceeded}/${stuffing.realWithoutDeviceTried} in`);
    for (const violation of stuffing.violations) log(`       ${violation}`);
    flood = await loginFlood(env, plan.flood);
    log(`${flood.pass ? "ok  " : "FAIL"} login flood: ${flood.floodLoginsPerSecond.toFixed(0)} logins/s ${JSON.stringify(flood.floodByStatus)}; me p99 ${flood.quiet.me.p99.toFixed(1)} → ${flood.flooded.me.p99.toFixed(1)} ms, refresh p99 ${flood.quiet.refresh.p99.toFixed(1)} → ${flood.flooded.refresh.p99.toFixed(1)} ms`);
    for (const violation of flood.violations) log(`       ${violation}`);
    spike = await firstRequestSpike(env, clients);
    log(`${spike.pass ? "ok  " : "FAIL"} first-request spike: ${spike.requests} requests ${JSON.stringify(spike.byStatus)}, p99 ${spike.p99Ms.toFixed(0)} ms, Postgres connections at most ${spike.maxConnections} (cap ${spike.connectionCap})`);
    for (const violation of spike.violations) log(`       ${violation}`);
  }
  for (const client of [...clients, ...probes, ...revokers]) client.close();

  const pass = results.every((r) => r.pass) && [stuffing, flood, spike].every((r) => !r || r.pass);
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? "?",
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.versions.node,
    postgres: (await env.sql<{ server_version: string }[]>`show server_version`)[0]!.server_version,
    redis: /redis_version:(\S+)/.exec(await env.redis.client.info("server"))?.[1] ?? "?",
  };
  const report = { timestamp: started.toISOString(), mode: quick ? "quick" : "full", only: only ?? null, machine, settings: SETTINGS, plan, pass, faults: results, stuffing, flood, spike };
  await mkdir(RESULTS, { recursive: true });
  // Quick and partial runs are for CI and iterating: written beside the full ones, not kept in git.
  const partial = quick || only !== undefined;
  const file = `${RESULTS}faults-${started.toISOString().replace(/[:.]/g, "-")}${partial ? "-quick" : ""}.json`;
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  const table = renderTable(report);
  log(`\n${table}\n\n${pass ? "every invariant held" : "INVARIANTS BROKEN (above)"}; ${file}`);
  if (args.readme) {
    if (partial) log("--readme takes a full run: README.md not changed");
    else await updateReadme(report, table);
  }
  exitCode = pass ? 0 : 1;
} catch (error) {
  process.stderr.write(`fault suite failed: ${(error as Error).stack ?? String(error)}\n`);
  exitCode = 2;
} finally {
  await env.close();
}
process.exit(exitCode);

function renderTable(report: { faults: FaultResult[]; stuffing?: StuffingResult; flood?: FloodResult; spike?: SpikeResult }): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const statuses = (byStatus: Record<string, number>) =>
    ["200", "401", "429", "503"].map((s) => n(byStatus[s] ?? 0)).join(" / ") + (Object.keys(byStatus).some((s) => !["200", "401", "429", "503"].includes(s)) ? " + other!" : "");
  const rows = [
    "| fault (during load) | requests | 200 / 401 / 429 / 503 | p99 | max | recovery | lost sessions (after a 503) | invariants |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...report.faults.map(
      (r) =>
        `| ${r.fault} | ${n(r.requests)} | ${statuses(r.byStatus)} | ${r.p99Ms.toFixed(0)} ms | ${r.maxMs.toFixed(0)} ms | ${Number.isFinite(r.recoveryMs) ? `${(r.recoveryMs / 1000).toFixed(2)} s` : "none"} | ${r.lostSessions} (${r.lostAfter503}) | ${r.pass ? "held" : "BROKEN"} |`,
    ),
  ];
  const { stuffing: s, flood: f, spike: k } = report;
  if (s) {
    rows.push(
      `| credential stuffing: ${n(s.attackerPairs)} wrong pairs from ${s.attackerAddresses} addresses, half at real accounts | ${n(s.attackerPairs + s.realAttempts)} | attackers ${statuses(s.attackerByStatus)} | | | | attackers signed in: ${s.attackerSuccesses}; real users ${s.realSuccesses}/${s.realAttempts} (${(s.realSuccessRate * 100).toFixed(1)} %) from their known devices; owners of attacked accounts from a new device afterwards: ${s.realWithoutDeviceSucceeded}/${s.realWithoutDeviceTried} (the lock) | ${s.pass ? "held" : "BROKEN"} |`,
    );
  }
  if (f) {
    rows.push(
      `| login flood on one process (${f.flooders} in flight, ${f.floodLoginsPerSecond.toFixed(0)} logins/s) | ${n(f.floodLogins)} | flood ${statuses(f.floodByStatus)} | me ${f.quiet.me.p99.toFixed(1)} → ${f.flooded.me.p99.toFixed(1)} ms; refresh ${f.quiet.refresh.p99.toFixed(1)} → ${f.flooded.refresh.p99.toFixed(1)} ms | | | (p99 without → with the flood, same process) | ${f.pass ? "held" : "BROKEN"} |`,
    );
  }
  if (k) {
    rows.push(
      `| spike: ${k.requests} concurrent first requests on fresh processes | ${n(k.requests)} | ${statuses(k.byStatus)} | ${k.p99Ms.toFixed(0)} ms | | | Postgres connections ≤ ${k.maxConnections} (cap ${k.processes} × ${SETTINGS.poolMax} = ${k.connectionCap}) | ${k.pass ? "held" : "BROKEN"} |`,
    );
  }
  return rows.join("\n");
}

async function updateReadme(report: { timestamp: string; machine: Record<string, unknown> }, table: string) {
  const path = fileURLToPath(new URL("../../README.md", import.meta.url));
  const readme = await readFile(path, "utf8");
  const m = report.machine as { cores: number; cpu: string; memoryGb: number; node: string; postgres: string; redis: string };
  const heading = `Latest full run, ${report.timestamp.slice(0, 16).replace("T", " ")} UTC, on ${m.cores} × ${m.cpu} (${m.memoryGb} GiB), Node ${m.node}, Postgres ${m.postgres.split(" ")[0]} and Redis ${m.redis} on the same machine:`;
  if (!/<!-- faults:start -->[\s\S]*<!-- faults:end -->/.test(readme)) throw new Error("README.md has no <!-- faults:start --> … <!-- faults:end --> markers");
  await writeFile(path, readme.replace(/<!-- faults:start -->[\s\S]*<!-- faults:end -->/, `<!-- faults:start -->\n${heading}\n\n${table}\n<!-- faults:end -->`));
}
