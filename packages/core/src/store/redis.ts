import { RedisReplyError, RespClient, type RespClientOptions, type RespValue } from "./resp";
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

export interface RedisStoreOptions {
  url: string;
  /** Prefix for every key, e.g. the stage name, so several deployments can share one Redis. */
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** TLS: by default from the URL scheme (rediss://); true/false or options override it. */
  tls?: RespClientOptions["tls"];
}

/**
 * The Redis store. Bounded waits (SECURITY 33): every command has a timeout, and with no offline
 * queue a command issued while Redis is away fails at once instead of piling up; callers then
 * take their documented fallback. The client keeps reconnecting in the background.
 */
export function createRedisStore(options: RedisStoreOptions): EphemeralStore {
  const client = new RespClient({
    url: options.url,
    tls: options.tls,
    commandTimeoutMs: options.commandTimeoutMs ?? 500,
    connectTimeoutMs: options.connectTimeoutMs ?? 1000,
  });
  const prefix = options.keyPrefix ?? "authlith:";
  const k = (key: string) => prefix + key;

  // The first connection is waited for (bounded by the connect timeout), and so is a reconnection
  // whose backoff has passed; inside the backoff, an outage fails fast.
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      if (client.status !== "ready") await client.ready();
      return await command();
    } catch (error) {
      throw new ServiceUnavailableError("redis", { cause: error });
    }
  };
  const check = <T extends RespValue>(reply: RespValue | undefined): T => {
    if (reply instanceof RedisReplyError) throw reply;
    return reply as T;
  };

  return {
    increment: (counters: readonly CounterRequest[]) =>
      run(async (): Promise<CounterState[]> => {
        const commands = counters.flatMap(({ key, by, windowMs }) => [
          ["INCRBY", k(key), by],
          ["PEXPIRE", k(key), Math.max(1, Math.ceil(windowMs)), "NX"],
          ["PTTL", k(key)],
        ]);
        const replies = await client.pipeline([["MULTI"], ...commands, ["EXEC"]]);
        const executed = check<RespValue[] | null>(replies[replies.length - 1]);
        if (!executed) throw new RedisReplyError("EXECABORT transaction discarded");
        return counters.map((_, i) => {
          const count = check<number>(executed[i * 3]);
          const ttl = check<number>(executed[i * 3 + 2]);
          return { count: Number(count), resetInMs: Math.max(0, Number(ttl)) };
        });
      }),
    consume: (counters) =>
      run(async () => {
        if (counters.length === 0) return { refusedAt: null, states: [] };
        const args = counters.flatMap(({ by, windowMs, limit, always }) => [by, Math.max(1, Math.ceil(windowMs)), limit, always ? 1 : 0]);
        const [refused, ...flat] = (await client.evalScript(CONSUME_SCRIPT, counters.map((c) => k(c.key)), args)) as number[];
        const states: CounterState[] = [];
        for (let i = 0; i < flat.length; i += 2) states.push({ count: flat[i]!, resetInMs: Math.max(0, flat[i + 1]!) });
        return { refusedAt: refused === 0 ? null : refused! - 1, states };
      }),
    getMany: (keys) =>
      run(async () => (keys.length ? ((await client.command(["MGET", ...keys.map(k)])) as (string | null)[]) : [])),
    setMany: (entries) =>
      run(async () => {
        if (entries.length === 0) return;
        const replies = await client.pipeline(entries.map(({ key, value, ttlMs }) => ["SET", k(key), value, "PX", Math.max(1, Math.ceil(ttlMs))]));
        for (const reply of replies) check(reply);
      }),
    setIfAbsent: (key, value, ttlMs) =>
      run(async () => (await client.command(["SET", k(key), value, "PX", Math.max(1, Math.ceil(ttlMs)), "NX"])) === "OK"),
    delete: (keys) =>
      run(async () => {
        if (keys.length) await client.command(["DEL", ...keys.map(k)]);
      }),
    ping: () =>
      run(async () => {
        await client.command(["PING"]);
      }),
    close: async () => {
      client.close();
    },
  };
}
