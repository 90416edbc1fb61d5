import { randomBytes } from "node:crypto";
import { summarize, type Summary } from "../lib/stats";
import { SETTINGS, type Environment } from "./env";
import { caller, loopback, type Answer } from "./http";
import { makeClients, Recorder, sleep, type SimClient } from "./load";

/** Runs `tasks` with at most `width` in flight. */
async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

const shuffle = <T>(items: T[]): T[] => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
};

export interface StuffingResult {
  attackerPairs: number;
  attackerAddresses: number;
  attackerSuccesses: number;
  attackerByStatus: Record<string, number>;
  realAttempts: number;
  realSuccesses: number;
  realSuccessRate: number;
  /** Owners of attacked accounts signing in afterwards from a new device (no device token): how many got in. */
  realWithoutDeviceSucceeded: number;
  realWithoutDeviceTried: number;
  durationMs: number;
  violations: string[];
  pass: boolean;
}

/**
 * Credential stuffing: wrong pairs from a few hundred addresses, half of them aimed at real users'
 * accounts (so those lock), mixed with the real users (5 % of the attempts) signing in with their
 * right passwords from their own devices, which carry the device token an earlier sign-in gave.
 */
export async function credentialStuffing(env: Environment, sizes: { users: number; pairs: number; addresses: number }): Promise<StuffingResult> {
  const recorder = new Recorder();
  const urls = env.servers.map((s) => s.url);
  const users = makeClients(sizes.users, 20, urls, "stuffed");
  // Owners who sign in only after the attack, from a device that never signed in before.
  const absent = makeClients(20, 21, urls, "absent");
  await pool([...users, ...absent].map((u) => () => u.register(recorder)), 8);
  for (const owner of absent) owner.deviceToken = undefined; // a new device: no device token
  const realAttempts = Math.round((sizes.pairs * 0.05) / 0.95);
  const attackers = Array.from({ length: sizes.addresses }, (_, i) => caller(urls[i % urls.length]!, loopback(30, i + 1)));
  type Attempt = { kind: "attacker"; answer: Answer } | { kind: "real"; answer: Answer };
  const tasks: (() => Promise<Attempt>)[] = [];
  for (let i = 0; i < sizes.pairs; i++) {
    const roll = Math.random();
    const target =
      roll < 0.45
        ? users[Math.floor(Math.random() * users.length)]!.email
        : roll < 0.5
          ? absent[i % absent.length]!.email
          : `nobody-${randomBytes(6).toString("hex")}@faults.test`;
    const http = attackers[i % attackers.length]!;
    tasks.push(async () => ({ kind: "attacker", answer: recorder.record("login (attacker)", await http.mutate("auth.login", { email: target, password: `Summer${randomBytes(3).toString("hex")}!` })) }));
  }
  for (let i = 0; i < realAttempts; i++) {
    const user = users[i % users.length]!;
    tasks.push(async () => ({ kind: "real", answer: await user.login(recorder) }));
  }
  const started = performance.now();
  const results = await pool(shuffle(tasks), 24);
  const durationMs = performance.now() - started;

  const attackerByStatus: Record<string, number> = {};
  let attackerSuccesses = 0;
  let realSuccesses = 0;
  for (const result of results) {
    if (result.kind === "attacker") {
      attackerByStatus[result.answer.status] = (attackerByStatus[result.answer.status] ?? 0) + 1;
      if (result.answer.status === 200) attackerSuccesses++;
    } else if (result.answer.status === 200) realSuccesses++;
  }
  // Owners of attacked accounts who were not signing in during the attack, now from a new device:
  // the account lock (its window not over) keeps them out too; that is the lock's cost, and why
  // the device token matters. (An owner who did sign in with one ended the lock by doing so.)
  let realWithoutDeviceSucceeded = 0;
  for (const owner of absent) if ((await owner.login(recorder, { deviceToken: false })).status === 200) realWithoutDeviceSucceeded++;

  for (const http of attackers) http.close();
  for (const user of [...users, ...absent]) user.close();
  const realSuccessRate = realSuccesses / realAttempts;
  if (attackerSuccesses > 0) recorder.violate(`${attackerSuccesses} attacker sign-ins succeeded`);
  if (realSuccessRate < 0.99) recorder.violate(`only ${(realSuccessRate * 100).toFixed(1)} % of real users' sign-ins succeeded`);
  return {
    attackerPairs: sizes.pairs,
    attackerAddresses: sizes.addresses,
    attackerSuccesses,
    attackerByStatus,
    realAttempts,
    realSuccesses,
    realSuccessRate,
    realWithoutDeviceSucceeded,
    realWithoutDeviceTried: absent.length,
    durationMs,
    violations: recorder.summary(),
    pass: recorder.violations.length === 0,
  };
}

export interface FloodResult {
  flooders: number;
  floodLogins: number;
  floodLoginsPerSecond: number;
  floodByStatus: Record<string, number>;
  quiet: { me: Summary; refresh: Summary };
  flooded: { me: Summary; refresh: Summary };
  violations: string[];
  pass: boolean;
}

/**
 * A login flood that keeps every hashing thread of one process busy, from many addresses (so the
 * per-IP limit does not stop it first), while one user calls `me` and refreshes on the same
 * process: their p99 without and with the flood.
 */
export async function loginFlood(env: Environment, sizes: { samples: number; flooders: number }): Promise<FloodResult> {
  const recorder = new Recorder();
  const floodRecorder = new Recorder();
  const target = env.servers[0]!;
  // Enough sessions that none comes near the per-session refresh limit (30 a minute) over both runs.
  const users = makeClients(Math.ceil(sizes.samples / 10), 41, [target.url], "flooded");
  await pool(users.map((u) => () => u.register(recorder)), 4);

  const measure = async (): Promise<{ me: Summary; refresh: Summary }> => {
    const me: number[] = [];
    const refresh: number[] = [];
    for (let i = 0; i < sizes.samples; i++) {
      const user = users[i % users.length]!;
      const before = recorder.answers.length;
      await user.me(recorder);
      await user.refresh(recorder);
      for (const answer of recorder.answers.slice(before)) {
        if (answer.status !== 200) recorder.violate(`${answer.procedure} answered ${answer.status} beside the flood`);
        (answer.procedure === "me" ? me : refresh).push(answer.ms);
      }
      await sleep(20);
    }
    return { me: summarize(me), refresh: summarize(refresh) };
  };
  const quiet = await measure();

  let flooding = true;
  let floodLogins = 0;
  const floodByStatus: Record<string, number> = {};
  const floodStarted = performance.now();
  const flooders = Array.from({ length: sizes.flooders }, async (_, f) => {
    for (let i = 0; flooding; i++) {
      // A new address every few attempts: far below the per-IP limit, as a botnet would.
      const http = caller(target.url, loopback(42 + (f % 8), ((f * 997 + i) % 60_000) + 1));
      const answer = await http.mutate("auth.login", { email: `flood-${randomBytes(5).toString("hex")}@faults.test`, password: "not the password at all" });
      http.close();
      floodRecorder.record("login (flood)", answer);
      floodByStatus[answer.status] = (floodByStatus[answer.status] ?? 0) + 1;
      floodLogins++;
    }
  });
  await sleep(1000); // the hashing queue fills
  const flooded = await measure();
  flooding = false;
  await Promise.all(flooders);
  const floodSeconds = (performance.now() - floodStarted) / 1000;
  // Not starved: the flood may cost them CPU time, never a wait behind the hashes.
  for (const kind of ["me", "refresh"] as const) {
    const bound = quiet[kind].p99 * 5 + 50;
    if (flooded[kind].p99 > bound) recorder.violate(`${kind} p99 ${flooded[kind].p99.toFixed(1)} ms beside the flood, over ${bound.toFixed(0)} ms (5 × ${quiet[kind].p99.toFixed(1)} + 50)`);
  }
  for (const user of users) user.close();
  return {
    flooders: sizes.flooders,
    floodLogins,
    floodLoginsPerSecond: floodLogins / floodSeconds,
    floodByStatus,
    quiet,
    flooded,
    violations: [...recorder.summary(), ...floodRecorder.summary()],
    pass: recorder.violations.length === 0 && floodRecorder.violations.length === 0,
  };
}

export interface SpikeResult {
  processes: number;
  requests: number;
  byStatus: Record<string, number>;
  p99Ms: number;
  maxConnections: number;
  connectionCap: number;
  violations: string[];
  pass: boolean;
}

/**
 * 200 concurrent first requests (sign-ins and refreshes) against processes started just now: the
 * role's connections to Postgres, sampled throughout, stay within processes × DATABASE_POOL_MAX.
 */
export async function firstRequestSpike(env: Environment, clients: SimClient[], fresh = 2, requests = 200): Promise<SpikeResult> {
  const recorder = new Recorder();
  const started = await Promise.all(Array.from({ length: fresh }, () => env.startServer()));
  const everyProcess = env.servers.length + started.length;
  const connectionCap = everyProcess * SETTINGS.poolMax;
  let maxConnections = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [row] = await env.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where usename = ${env.appRole}`;
      maxConnections = Math.max(maxConnections, row?.n ?? 0);
      await sleep(10);
    }
  })();
  const urls = started.map((s) => s.url);
  const withSessions = clients.filter((c) => c.session);
  const tasks = Array.from({ length: requests }, (_, i) => {
    const client = withSessions[i % withSessions.length]!;
    const http = caller(urls[i % urls.length]!, loopback(60, i + 1));
    return async () => {
      const answer =
        i % 2 === 0
          ? await http.mutate("auth.login", { email: `spike-${i}@faults.test`, password: "not the password, spike" })
          : await http.query("auth.me", { authorization: `Bearer ${client.session!.accessToken}` });
      http.close();
      recorder.record(i % 2 === 0 ? "login (spike)" : "me (spike)", answer);
    };
  });
  await Promise.all(tasks.map((task) => task()));
  await sleep(200);
  sampling = false;
  await sampler;
  await Promise.all(started.map((server) => server.stop()));
  const byStatus: Record<string, number> = {};
  for (const answer of recorder.answers) byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
  if (maxConnections > connectionCap) recorder.violate(`${maxConnections} connections, over the cap of ${connectionCap}`);
  return {
    processes: everyProcess,
    requests,
    byStatus,
    p99Ms: summarize(recorder.answers.map((a) => a.ms)).p99,
    maxConnections,
    connectionCap,
    violations: recorder.summary(),
    pass: recorder.violations.length === 0,
  };
}
