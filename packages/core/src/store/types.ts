/**
 * The ephemeral store in front of Redis: counters with windows, short-lived flags, a lock.
 * Nothing in it is the only copy of anything that matters; Postgres is the record.
 * Implementations: Redis (ioredis) for AWS and shared test runs, in-process for one laptop process.
 */
export interface EphemeralStore {
  /**
   * For each key, atomically add `by` (0 reads without counting) to a counter that expires
   * `windowMs` after it was first touched. All keys in one round trip.
   */
  increment(counters: readonly CounterRequest[]): Promise<CounterState[]>;
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
