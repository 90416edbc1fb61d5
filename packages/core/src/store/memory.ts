import type { Clock } from "../clock";
import { systemClock } from "../clock";
import type { CounterRequest, CounterState, EphemeralStore } from "./types";

interface Entry {
  value: string;
  expiresAt: number;
}

/**
 * The in-process store for `npm run dev` and the default test run: one process, no Redis.
 * Bounded: past `maxEntries` expired entries are swept, then the oldest are dropped.
 */
export function createMemoryStore(options: { clock?: Clock; maxEntries?: number } = {}): EphemeralStore {
  const clock = options.clock ?? systemClock;
  const maxEntries = options.maxEntries ?? 100_000;
  const entries = new Map<string, Entry>();

  const read = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= now) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };

  const write = (key: string, entry: Entry, now: number) => {
    entries.delete(key);
    entries.set(key, entry);
    if (entries.size > maxEntries) {
      for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
      for (const k of entries.keys()) {
        if (entries.size <= maxEntries) break;
        entries.delete(k);
      }
    }
  };

  return {
    async increment(counters: readonly CounterRequest[]): Promise<CounterState[]> {
      const now = clock.now();
      return counters.map(({ key, by, windowMs }) => {
        const entry = read(key, now) ?? { value: "0", expiresAt: now + windowMs };
        const count = Number(entry.value) + by;
        write(key, { value: String(count), expiresAt: entry.expiresAt }, now);
        return { count, resetInMs: entry.expiresAt - now };
      });
    },
    async consume(counters) {
      const now = clock.now();
      const states: CounterState[] = [];
      for (const [index, { key, by, windowMs, limit, always }] of counters.entries()) {
        const entry = read(key, now) ?? { value: "0", expiresAt: now + windowMs };
        const current = Number(entry.value);
        const fits = current + by <= limit;
        const count = fits || always ? current + by : current;
        if (fits || always) write(key, { value: String(count), expiresAt: entry.expiresAt }, now);
        states.push({ count, resetInMs: entry.expiresAt - now });
        if (!fits) return { refusedAt: index, states };
      }
      return { refusedAt: null, states };
    },
    async getMany(keys) {
      const now = clock.now();
      return keys.map((key) => read(key, now)?.value ?? null);
    },
    async setMany(list) {
      const now = clock.now();
      for (const { key, value, ttlMs } of list) write(key, { value, expiresAt: now + ttlMs }, now);
    },
    async setIfAbsent(key, value, ttlMs) {
      const now = clock.now();
      if (read(key, now)) return false;
      write(key, { value, expiresAt: now + ttlMs }, now);
      return true;
    },
    async delete(keys) {
      for (const key of keys) entries.delete(key);
    },
    async ping() {},
    async close() {
      entries.clear();
    },
  };
}
