/**
 * The ephemeral store in front of Redis: counters with windows, short-lived flags, a lock.
 * Nothing in it is the only copy of anything that matters; Postgres is the record.
 * Implementations: Redis (store/redis.ts, on ioredis) for AWS and shared test runs, in-process
 * for one laptop process.
 */
export interface EphemeralStore {
  /**
   * For each key, atomically add `by` (0 reads without counting) to a counter that expires
   * `windowMs` after it was first touched. All keys in one round trip.
   */
  increment(counters: readonly CounterRequest[]): Promise<CounterState[]>;
  /**
   * Takes from several fixed-window budgets in order, atomically, in one round trip: each counter
   * is increased by `by` only if it stays within `limit` (or if `always`), and the first counter
   * that would go over stops the walk, leaving the later ones untouched. So an attempt refused by
   * an earlier budget never spends a later one.
   */
  consume(counters: readonly ConsumeRequest[]): Promise<ConsumeResult>;
  /** Values of several keys in one round trip; `null` where absent or expired. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** Sets several keys, each with its own time to live, in one round trip. */
  setMany(entries: readonly { key: string; value: string; ttlMs: number }[]): Promise<void>;
  /** Sets the key only if absent: a lock or a once-only marker. True when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  delete(keys: readonly string[]): Promise<void>;
  /** Resolves when the store answers; rejects (within its timeout) when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface CounterRequest {
  key: string;
  by: number;
  windowMs: number;
}

export interface CounterState {
  count: number;
  /** Milliseconds until the window resets. */
  resetInMs: number;
}

export interface ConsumeRequest extends CounterRequest {
  limit: number;
  /** Count this call even when it goes over (e.g. per-IP attempts): it still stops the walk. */
  always?: boolean;
}

export interface ConsumeResult {
  /** Index of the counter that refused, or null when every counter had room. */
  refusedAt: number | null;
  /** States of the counters walked (up to and including the refusing one). */
  states: CounterState[];
}
