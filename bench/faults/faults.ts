import type { ReservedSql } from "postgres";
import type { Environment } from "./env";
import type { ProxyMode } from "./proxy";

/**
 * One fault: `apply` starts it (during load), `heal` ends it after `hold` ms. `repeat` is called
 * every 500 ms while it holds, for faults that are events rather than states (killing every
 * connection once leaves a pool that reconnects at once; killing them again and again does not).
 */
export interface Fault {
  name: string;
  dependency: "postgres" | "redis";
  apply(env: Environment, holdMs: number): Promise<void>;
  repeat?(env: Environment): Promise<void>;
  heal(env: Environment): Promise<void>;
}

const terminateAppConnections = (env: Environment) =>
  env.sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${env.appRole}`.then(() => {});

let lockHolder: ReservedSql | null = null;

/** A fault at the proxy in front of `dependency`: `mode` while it holds, then back to passing. */
const atProxy = (name: string, dependency: Fault["dependency"], mode: ProxyMode): Fault => ({
  name,
  dependency,
  apply: async (e) => (dependency === "postgres" ? e.pgProxy : e.redisProxy).set(mode),
  heal: async (e) => (dependency === "postgres" ? e.pgProxy : e.redisProxy).set({ kind: "pass" }),
});

/** Every connection through the proxy in front of `dependency` reset, again and again while it holds. */
const resets = (name: string, dependency: Fault["dependency"]): Fault => {
  const reset = async (e: Environment) => (dependency === "postgres" ? e.pgProxy : e.redisProxy).resetAll();
  return { name, dependency, apply: reset, repeat: reset, heal: async () => {} };
};

export function faults(env: Environment): Fault[] {
  const restart = env.restartPostgres;
  const list: Fault[] = [
    {
      name: "Postgres: pg_terminate_backend of every connection",
      dependency: "postgres",
      apply: terminateAppConnections,
      repeat: terminateAppConnections,
      heal: async () => {},
    },
    restart
      ? {
          name: "Postgres: restart (pg_ctlcluster, fast shutdown)",
          dependency: "postgres",
          apply: restart,
          heal: async () => {},
        }
      : {
          name: "Postgres: restart (emulated: every connection reset, new ones refused)",
          dependency: "postgres",
          apply: async (e) => {
            e.pgProxy.set({ kind: "refuse" });
            e.pgProxy.resetAll();
          },
          heal: async (e) => e.pgProxy.set({ kind: "pass" }),
        },
    {
      name: "Postgres: the role's connection limit reached",
      dependency: "postgres",
      apply: async (e) => {
        await e.sql.unsafe(`ALTER ROLE ${e.appRole} CONNECTION LIMIT 0`);
        await terminateAppConnections(e);
      },
      heal: async (e) => {
        await e.sql.unsafe(`ALTER ROLE ${e.appRole} CONNECTION LIMIT -1`);
      },
    },
    {
      name: "Postgres: statements slowed (sessions table locked)",
      dependency: "postgres",
      apply: async (e) => {
        lockHolder = await e.sql.reserve();
        await lockHolder`begin`;
        await lockHolder`lock table sessions in access exclusive mode`;
      },
      heal: async () => {
        const holder = lockHolder;
        lockHolder = null;
        if (!holder) return;
        await holder`rollback`;
        holder.release();
      },
    },
    atProxy("Postgres: network partition (proxy blackhole)", "postgres", { kind: "blackhole" }),
    atProxy("Postgres: 250 ms added each way (proxy latency)", "postgres", { kind: "latency", ms: 250 }),
    resets("Postgres: connections reset (proxy)", "postgres"),
    {
      name: "Redis: CLIENT PAUSE",
      dependency: "redis",
      // The pause ends by itself (the suite's own client is paused too, so it could not lift it).
      apply: async (e, holdMs) => {
        await e.redis.client.call("CLIENT", "PAUSE", String(holdMs), "ALL");
      },
      heal: async (e) => {
        await e.redis.client.ping();
      },
    },
    {
      name: "Redis: stopped (SIGKILL), then started empty",
      dependency: "redis",
      apply: async (e) => e.redis.stop(),
      heal: async (e) => e.redis.start(),
    },
    {
      name: "Redis: FLUSHALL",
      dependency: "redis",
      apply: async (e) => {
        await e.redis.client.flushall();
      },
      heal: async () => {},
    },
    {
      name: "Redis: maxmemory reached (noeviction)",
      dependency: "redis",
      apply: async (e) => {
        await e.redis.client.config("SET", "maxmemory-policy", "noeviction");
        await e.redis.client.config("SET", "maxmemory", "1");
      },
      heal: async (e) => {
        await e.redis.client.config("SET", "maxmemory", "0");
      },
    },
    atProxy("Redis: network partition (proxy blackhole)", "redis", { kind: "blackhole" }),
    resets("Redis: connections reset (proxy)", "redis"),
  ];
  return list;
}
