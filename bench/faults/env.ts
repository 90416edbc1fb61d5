import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Redis } from "ioredis";
import { ensureAppRole, generateSigningKey, migratePostgres } from "@authlith/core";
import { freePort } from "../../packages/functions/test/support/dev-process";
import { startFaultProxy, type FaultProxy } from "./proxy";

const MIGRATIONS = fileURLToPath(new URL("../../drizzle", import.meta.url));
const SERVER = fileURLToPath(new URL("./server.ts", import.meta.url));

/** Where the suite finds Postgres (a role that may create databases and roles) and the Redis binary. */
export const ADMIN_URL = process.env.FAULTS_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const DATABASE = "authlith_faults";
const APP_ROLE = "authlith_faults_app";

/** The settings every server process runs with: production defaults except where named. */
export const SETTINGS = {
  /** Connections per process (DATABASE_POOL_MAX), as on Lambda. */
  poolMax: 2,
  /** The request deadline (AUTHLITH_REQUEST_TIMEOUT_MS): the suite's latency bound is this plus a margin. */
  requestTimeoutMs: 4000,
  latencyMarginMs: 1500,
};

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Log lines at warn and above that it printed (JSON), for the suite's error count. */
  logs: string[];
  readonly alive: boolean;
  stop(): Promise<void>;
}

export interface Environment {
  adminUrl: string;
  /** The suite's database, as its owner (for checks and faults). */
  databaseUrl: string;
  sql: postgres.Sql;
  appRole: string;
  pgProxy: FaultProxy;
  redis: { port: number; client: Redis; stop(): Promise<void>; start(): Promise<void> };
  redisProxy: FaultProxy;
  hmacKey: Buffer;
  serverEnv: Record<string, string>;
  servers: ServerProcess[];
  startServer(extra?: Record<string, string>): Promise<ServerProcess>;
  /** The real Postgres restart, when this machine lets the suite do it (pg_ctlcluster as root). */
  restartPostgres: (() => Promise<void>) | null;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function which(binary: string): string | null {
  const found = spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : null;
}

/** A Redis server of the suite's own, so stopping it, flushing it and filling it harm nothing else. */
async function startRedis(): Promise<Environment["redis"]> {
  const binary = process.env.FAULTS_REDIS_SERVER ?? which("redis-server");
  if (!binary) throw new Error("npm run test:faults needs redis-server on the PATH (or FAULTS_REDIS_SERVER)");
  const port = await freePort();
  let child: ChildProcess | null = null;
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  client.on("error", () => {});
  const start = async () => {
    child = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      try {
        if (client.status === "wait" || client.status === "end") await client.connect();
        if ((await client.ping()) === "PONG") return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error("the suite's redis-server did not start");
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL"); // as a crash or a node replaced under it: nothing is flushed
    await exited;
  };
  await start();
  return { port, client, start, stop };
}

function postgresRestart(): (() => Promise<void>) | null {
  if (process.env.FAULTS_PG_RESTART === "0") return null;
  const ctl = which("pg_ctlcluster");
  if (!ctl || process.getuid?.() !== 0 || !existsSync("/etc/postgresql")) return null;
  const version = readdirSync("/etc/postgresql").sort().at(-1);
  if (!version) return null;
  return async () => {
    const result = spawnSync(ctl, ["--skip-systemctl-redirect", version, "main", "restart", "--", "-m", "fast"], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`pg_ctlcluster restart failed: ${result.stderr}`);
  };
}

/**
 * A fresh database with the service's schema and a login role of its own (not a superuser, so a
 * connection limit applies to it), a Redis server of its own, a fault proxy in front of each, and
 * `servers` server processes that share them through the proxies, as Lambda instances would.
 */
export async function startEnvironment(servers: number): Promise<Environment> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end({ timeout: 2 });
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DATABASE}`;
  const databaseUrl = url.toString();
  await migratePostgres(databaseUrl, MIGRATIONS);
  const password = randomBytes(24).toString("base64url");
  await ensureAppRole(databaseUrl, { name: APP_ROLE, password });
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5 });
  await sql.unsafe(`ALTER ROLE ${APP_ROLE} CONNECTION LIMIT -1`);

  const pgProxy = await startFaultProxy({ host: url.hostname, port: Number(url.port || 5432) });
  const redis = await startRedis();
  const redisProxy = await startFaultProxy({ host: "127.0.0.1", port: redis.port });

  const hmacSecret = randomBytes(32).toString("base64url");
  const appUrl = new URL(databaseUrl);
  appUrl.username = APP_ROLE;
  appUrl.password = password;
  appUrl.host = `127.0.0.1:${pgProxy.port}`;
  const serverEnv: Record<string, string> = {
    DATABASE_URL: appUrl.toString(),
    DATABASE_POOL_MAX: String(SETTINGS.poolMax),
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    AUTHLITH_ISSUER: "https://auth.faults.test",
    AUTHLITH_SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningKey("ES256")] }),
    AUTHLITH_HMAC_SECRET: hmacSecret,
    AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false",
    AUTHLITH_REQUEST_TIMEOUT_MS: String(SETTINGS.requestTimeoutMs),
    LOG_LEVEL: "warn",
  };

  const processes: ServerProcess[] = [];
  const startServer = async (extra: Record<string, string> = {}): Promise<ServerProcess> => {
    const child = spawn(process.execPath, ["--import", "tsx", SERVER], {
      env: { ...process.env, ...serverEnv, ...extra },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const logs: string[] = [];
    let pending = "";
    const collect = (chunk: Buffer) => {
      pending += String(chunk);
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) if (line.startsWith("{")) logs.push(line);
    };
    let started = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      started = (started + String(chunk)).slice(-20_000);
      collect(chunk);
    });
    let stopping = false;
    child.once("exit", (code, signal) => {
      // A server that dies under a fault is the worst outcome there is: say so, with its last words.
      if (!stopping) process.stderr.write(`\nfault-suite server ${child.pid} exited (${code ?? signal}):\n${started.slice(-4000)}\n`);
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (chunk: Buffer) => {
        started = (started + String(chunk)).slice(-20_000);
        collect(chunk);
        const match = /READY (\d+)/.exec(started);
        if (match) resolve(Number(match[1]));
      });
      child.once("exit", (code) => reject(new Error(`fault-suite server exited (${code}): ${started.slice(0, 2000)}`)));
    });
    const server: ServerProcess = {
      url: `http://127.0.0.1:${port}`,
      child,
      logs,
      get alive() {
        return child.exitCode === null && child.signalCode === null;
      },
      async stop() {
        stopping = true;
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await Promise.race([exited, sleep(3000).then(() => child.kill("SIGKILL"))]);
      },
    };
    processes.push(server);
    return server;
  };
  const initial = await Promise.all(Array.from({ length: servers }, () => startServer()));

  return {
    adminUrl: ADMIN_URL,
    databaseUrl,
    sql,
    appRole: APP_ROLE,
    pgProxy,
    redis,
    redisProxy,
    hmacKey: Buffer.from(hmacSecret, "base64url"),
    serverEnv,
    servers: initial,
    startServer,
    restartPostgres: postgresRestart(),
    async close() {
      await Promise.allSettled(processes.map((p) => p.stop()));
      await Promise.allSettled([pgProxy.close(), redisProxy.close()]);
      redis.client.disconnect();
      await redis.stop();
      await sql.end({ timeout: 2 }).catch(() => {});
      const cleanup = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      await cleanup.unsafe(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`).catch(() => {});
      await cleanup.end({ timeout: 2 });
    },
  };
}
