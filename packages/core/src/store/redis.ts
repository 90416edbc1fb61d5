import { Redis, type RedisOptions } from "ioredis";
import { ServiceUnavailableError } from "../result";
import type { CounterRequest, CounterState, EphemeralStore } from "./types";

/**
 * KEYS: the counters. ARGV, four per counter: by, window (ms), limit, always (1/0).
 * Returns { refused counter's 1-based index or 0, count1, ttl1, count2, ttl2, ... }.
 */
const CONSUME_SCRIPT = `
local out = {0}
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local by = tonumber(ARGV[base + 1])
  local window = tonumber(ARGV[base + 2])
  local limit = tonumber(ARGV[base + 3])
  local always = ARGV[base + 4] == "1"
  local count = tonumber(redis.call("GET", key) or "0")
  local fits = count + by <= limit
  if fits or always then
    count = redis.call("INCRBY", key, by)
    redis.call("PEXPIRE", key, window, "NX")
  end
  local ttl = redis.call("PTTL", key)
  if ttl < 0 then ttl = window end
  table.insert(out, count)
  table.insert(out, ttl)
  if not fits then
    out[1] = i
    return out
  end
end
return out
`;

interface ConsumeCommand {
  authlithConsume(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
}

export interface RedisStoreOptions {
  url: string;
  /** Prefix for every key, e.g. the stage name, so several deployments can share one Redis. */
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Extra ioredis options (TLS, username/password when not in the URL). */
  redis?: RedisOptions;
}

/**
 * The Redis store. Bounded waits (SECURITY 33): every command has a timeout, and with no offline
 * queue a command issued while Redis is away fails at once instead of piling up; callers then
 * take their documented fallback. ioredis keeps reconnecting in the background.
 */
export function createRedisStore(options: RedisStoreOptions): EphemeralStore & { client: Redis } {
  const client = new Redis(options.url, {
    keyPrefix: options.keyPrefix ?? "authlith:",
    commandTimeout: options.commandTimeoutMs ?? 500,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    // Commands issued in the same tick (many concurrent requests on one server) share one write.
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    ...options.redis,
  });
  // Connection errors surface on commands; without a listener ioredis would log each retry.
  client.on("error", () => {});
  // consume(): the walk over budgets, atomic on the server (EVALSHA, loaded on first use).
  client.defineCommand("authlithConsume", { lua: CONSUME_SCRIPT });

  // Commands before the first connection would fail without an offline queue: wait for it once,
  // bounded by connectTimeout. Later outages fail fast (ioredis reconnects on its own).
  let connecting: Promise<void> | null = null;
  const ready = async (): Promise<void> => {
    if (client.status === "ready") return;
    if (client.status === "wait") connecting ??= client.connect().finally(() => (connecting = null));
    if (connecting) {
      await connecting.catch((error: unknown) => {
        throw new ServiceUnavailableError("redis", { cause: error });
      });
      return;
    }
    if ((client.status as string) !== "ready") throw new ServiceUnavailableError("redis");
  };

  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    if (client.status !== "ready") await ready();
    try {
      return await command();
    } catch (error) {
      throw new ServiceUnavailableError("redis", { cause: error });
    }
  };

  return {
    client,
    increment: (counters: readonly CounterRequest[]) =>
      run(async (): Promise<CounterState[]> => {
        const tx = client.multi();
        for (const { key, by, windowMs } of counters) {
          tx.incrby(key, by);
          tx.pexpire(key, windowMs, "NX");
          tx.pttl(key);
        }
        const replies = (await tx.exec()) ?? [];
        return counters.map((_, i) => {
          const [countError, count] = replies[i * 3] ?? [];
          const [ttlError, ttl] = replies[i * 3 + 2] ?? [];
          if (countError || ttlError) throw countError ?? ttlError;
          return { count: Number(count), resetInMs: Math.max(0, Number(ttl)) };
        });
      }),
    consume: (counters) =>
      run(async () => {
        if (counters.length === 0) return { refusedAt: null, states: [] };
        const args = counters.flatMap(({ by, windowMs, limit, always }) => [by, Math.max(1, Math.ceil(windowMs)), limit, always ? 1 : 0]);
        const [refused, ...flat] = (await (client as unknown as ConsumeCommand).authlithConsume(
          counters.length,
          ...counters.map((c) => c.key),
          ...args,
        )) as number[];
        const states: CounterState[] = [];
        for (let i = 0; i < flat.length; i += 2) states.push({ count: flat[i]!, resetInMs: Math.max(0, flat[i + 1]!) });
        return { refusedAt: refused === 0 ? null : refused! - 1, states };
      }),
    getMany: (keys) => run(() => (keys.length ? client.mget(...keys) : Promise.resolve([]))),
    setMany: (entries) =>
      run(async () => {
        if (entries.length === 0) return;
        const pipeline = client.pipeline();
        for (const { key, value, ttlMs } of entries) pipeline.set(key, value, "PX", Math.max(1, Math.ceil(ttlMs)));
        const replies = (await pipeline.exec()) ?? [];
        const failed = replies.find(([error]) => error);
        if (failed) throw failed[0];
      }),
    setIfAbsent: (key, value, ttlMs) =>
      run(async () => (await client.set(key, value, "PX", Math.max(1, Math.ceil(ttlMs)), "NX")) === "OK"),
    delete: (keys) =>
      run(async () => {
        if (keys.length) await client.del(...keys);
      }),
    ping: () =>
      run(async () => {
        await client.ping();
      }),
    close: async () => {
      client.disconnect();
    },
  };
}
