import { summarize } from "../lib/stats";
import type { Environment } from "./env";
import type { Fault } from "./faults";
import { checkRecords, Recorder, Revoked, rotateAll, runLoad, SimClient, sleep } from "./load";

export interface Timing {
  warmMs: number;
  holdMs: number;
  afterMs: number;
}

export interface FaultResult {
  fault: string;
  requests: number;
  byStatus: Record<string, number>;
  p99Ms: number;
  maxMs: number;
  /** From the fault's end until every server answered `me` and a refresh with 200. */
  recoveryMs: number;
  /** Sessions lost by clients whose last answer was not a 503 (must be 0). */
  lostSessions: number;
  /** Sessions lost by clients whose last answer was a 503 (reported). */
  lostAfter503: number;
  /** How the sessions lost after a 503 were found lost. */
  lostAfter503Reasons: Record<string, number>;
  /** Clients whose current token rotated after the fault. */
  rotatedAfter: number;
  /** Clients whose last answer before the final rotation was a 503. */
  uncertainClients: number;
  revokedProbes: number;
  serverErrors: number;
  violations: string[];
  pass: boolean;
}

/**
 * One fault during load: warm up, apply, hold (probing revoked sessions and repeating the fault
 * where it is an event), heal, measure recovery, settle, stop the load, then check the records
 * and rotate every client's token once more.
 */
export async function runFault(env: Environment, fault: Fault, clients: SimClient[], probes: SimClient[], revokers: SimClient[], timing: Timing): Promise<FaultResult> {
  const recorder = new Recorder();
  const urls = env.servers.map((s) => s.url);
  const logMarks = env.servers.map((s) => s.logs.length);
  for (const client of clients) {
    client.lost = 0;
    client.lostAfter503 = 0;
  }
  const revoked = await Revoked.prepare(revokers, recorder);
  let revokedProbes = await revoked.probe(urls, recorder);
  for (const probe of probes) if (!probe.session) await probe.login(recorder);

  const load = runLoad(clients, recorder);
  await sleep(timing.warmMs);
  await fault.apply(env, timing.holdMs);
  const holdEnds = performance.now() + timing.holdMs;
  while (performance.now() < holdEnds) {
    const [probed] = await Promise.all([revoked.probe(urls, recorder), sleep(500), fault.repeat?.(env)]);
    revokedProbes += probed;
  }
  await fault.heal(env);
  const healed = performance.now();
  const recoveryMs = await awaitRecovery(probes, recorder, healed);
  await sleep(timing.afterMs);
  await load.stop();
  revokedProbes += await revoked.probe(urls, recorder);

  const uncertainClients = clients.filter((c) => c.uncertain).length;
  await checkRecords(env, clients, recorder);
  const { rotated, lost, lostAfter503 } = await rotateAll(clients, recorder);
  await checkRecords(env, clients, recorder);
  for (const client of clients) if (client.session && client.uncertain) recorder.violate("a token still does not rotate after the fault");

  for (const server of env.servers) if (!server.alive) recorder.violate(`a server process died (${server.url})`);
  const serverErrors = env.servers.flatMap((s, i) => s.logs.slice(logMarks[i]).filter((line) => line.includes('"level":"error"')));
  for (const line of serverErrors) {
    const { event, path, errorName, errorCode, causeName, causeCode } = JSON.parse(line);
    recorder.violate(`server logged an error: ${[event, path, errorName, errorCode, causeName, causeCode].filter(Boolean).join(" ")}`);
  }
  const byStatus: Record<string, number> = {};
  for (const answer of recorder.answers) byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
  const latency = summarize(recorder.answers.map((a) => a.ms));
  if (!Number.isFinite(recoveryMs)) recorder.violate("did not recover within 30 s of the fault's end");
  return {
    fault: fault.name,
    requests: recorder.answers.length,
    byStatus,
    p99Ms: latency.p99,
    maxMs: latency.max,
    recoveryMs,
    lostSessions: lost,
    lostAfter503,
    lostAfter503Reasons: recorder.afterUnavailable,
    rotatedAfter: rotated,
    uncertainClients,
    revokedProbes,
    serverErrors: serverErrors.length,
    violations: recorder.summary(),
    pass: recorder.violations.length === 0,
  };
}

/**
 * Polls every server (one probe client each) until `me` and a refresh both answer 200; the time
 * from `since`. A probe that loses its session signs in again (that is counted by the recorder).
 */
async function awaitRecovery(probes: SimClient[], recorder: Recorder, since: number): Promise<number> {
  const deadline = since + 30_000;
  const healthy = new Set<SimClient>();
  while (performance.now() < deadline) {
    await Promise.all(
      probes.map(async (probe) => {
        if (healthy.has(probe)) return;
        if (!probe.session) {
          await probe.login(recorder);
          return;
        }
        const before = recorder.answers.length;
        await probe.refresh(recorder);
        await probe.me(recorder);
        const answers = recorder.answers.slice(before);
        if (answers.length >= 2 && answers.every((a) => a.status === 200)) healthy.add(probe);
      }),
    );
    if (healthy.size === probes.length) return performance.now() - since;
    await sleep(100);
  }
  return Number.POSITIVE_INFINITY;
}
