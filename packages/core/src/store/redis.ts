import { Redis, type RedisOptions } from "ioredis";
import { ServiceUnavailableError } from "../result";
import type { CounterRequest, CounterState, EphemeralStore } from "./types";

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
