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

/**
 * KEYS: the counters. ARGV, two per counter: by, window (ms).
 * Returns { count1, ttl1, count2, ttl2, ... }.
 */
const INCREMENT_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call("INCRBY", key, ARGV[i * 2 - 1])
  redis.call("PEXPIRE", key, ARGV[i * 2], "NX")
  local ttl = redis.call("PTTL", key)
  if ttl < 0 then ttl = tonumber(ARGV[i * 2]) end
  table.insert(out, count)
  table.insert(out, ttl)
end
return out
`;

/** The scripts, registered with ioredis's defineCommand (EVALSHA, falling back to EVAL once). */
interface ScriptCommands {
  authlithConsume(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
  authlithIncrement(numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
}

export interface RedisStoreOptions {
  url: string;
  /** Prefix for every key, e.g. the stage name, so several deployments can share one Redis. */
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** TLS: by default from the URL scheme (rediss://); true forces it, options are passed to tls.connect. */
  tls?: boolean | RedisOptions["tls"];
  /** Delay before reconnection attempt `n` (1-based); default: jittered exponential backoff. */
  retryDelayMs?: (attempt: number) => number;
}

/** Exponential backoff from 50 ms capped at 2 s, with "equal jitter" so containers do not reconnect in step. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(50 * 2 ** Math.max(0, attempt - 1), 2000);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * ioredis options for one client per container (docs/decisions/0002-redis-on-ioredis.md). Every wait is bounded: no
 * offline queue (a command issued while Redis is away fails at once), a command timeout, and a
 * socket timeout that drops a connection that has gone silent (e.g. after a Lambda freeze) so the
 * next attempt gets a fresh one. Commands in flight when a connection drops are failed, never
 * resent: a counter may have been incremented, and the caller has already taken its fallback.
 * RESP2 without the ready check or CLIENT SETINFO: the handshake is at most AUTH and SELECT.
 */
export function redisClientOptions(options: RedisStoreOptions): RedisOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    // Never repeat the URL: it may hold the password.
    throw new Error("authlith: the Redis URL is not a valid redis:// or rediss:// URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new Error("authlith: the Redis URL must start with redis:// or rediss://");
  }
  const commandTimeout = options.commandTimeoutMs ?? 500;
  const tls = options.tls === true ? {} : options.tls === false ? undefined : (options.tls ?? (url.protocol === "rediss:" ? {} : undefined));
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    protocol: 2,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout,
    socketTimeout: commandTimeout,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    retryStrategy: options.retryDelayMs ?? reconnectDelayMs,
    ...(tls ? { tls } : {}),
  };
}

/**
 * The Redis store. Callers see one kind of failure, ServiceUnavailableError("redis"), within the
 * command timeout (or the connect timeout for the very first connection), and then take their
 * documented fallback; the client keeps reconnecting in the background.
 */
export function createRedisStore(options: RedisStoreOptions): EphemeralStore {
  const client = new Redis(options.url, redisClientOptions(options)) as Redis & ScriptCommands;
  client.defineCommand("authlithConsume", { lua: CONSUME_SCRIPT });
  client.defineCommand("authlithIncrement", { lua: INCREMENT_SCRIPT });
  // Errors reach callers through their commands; without a listener ioredis would print each one.
  client.on("error", () => {});
  const prefix = options.keyPrefix ?? "authlith:";
  const k = (key: string) => prefix + key;
  const ms = (value: number) => Math.max(1, Math.ceil(value));

  // The first connection is waited for (bounded by the connect timeout); later, while ioredis
  // reconnects in the background, commands fail at once.
  let firstConnect: Promise<void> | null = null;
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      if (client.status === "wait") firstConnect ??= client.connect();
      if (firstConnect && client.status !== "ready") await firstConnect;
      return await command();
    } catch (error) {
      throw new ServiceUnavailableError("redis", { cause: error });
    }
  };
  const states = (flat: readonly number[]): CounterState[] => {
    const out: CounterState[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ count: Number(flat[i]), resetInMs: Math.max(0, Number(flat[i + 1])) });
    return out;
  };

  return {
    increment: (counters: readonly CounterRequest[]) =>
      run(async () => {
        if (counters.length === 0) return [];
        const args = counters.flatMap(({ by, windowMs }) => [by, ms(windowMs)]);
        return states(await client.authlithIncrement(counters.length, ...counters.map((c) => k(c.key)), ...args));
      }),
    consume: (counters) =>
      run(async () => {
        if (counters.length === 0) return { refusedAt: null, states: [] };
        const args = counters.flatMap(({ by, windowMs, limit, always }) => [by, ms(windowMs), limit, always ? 1 : 0]);
        const [refused, ...flat] = await client.authlithConsume(counters.length, ...counters.map((c) => k(c.key)), ...args);
        return { refusedAt: refused === 0 ? null : Number(refused) - 1, states: states(flat) };
      }),
    getMany: (keys) => run(async () => (keys.length ? await client.mget(keys.map(k)) : [])),
    setMany: (entries) =>
      run(async () => {
        if (entries.length === 0) return;
        const pipeline = client.pipeline();
        for (const { key, value, ttlMs } of entries) pipeline.set(k(key), value, "PX", ms(ttlMs));
        const replies = (await pipeline.exec()) ?? [];
        for (const [error] of replies) if (error) throw error;
      }),
    setIfAbsent: (key, value, ttlMs) => run(async () => (await client.set(k(key), value, "PX", ms(ttlMs), "NX")) === "OK"),
    delete: (keys) =>
      run(async () => {
        if (keys.length) await client.del(...keys.map(k));
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
