/** Time source passed into core, so tests can freeze or move time. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Reads `Date.now()` on every call, which `vi.setSystemTime` also controls in tests. */
export const systemClock: Clock = { now: () => Date.now() };

export const toIso = (ms: number): string => new Date(ms).toISOString();
export const toEpochSeconds = (ms: number): number => Math.floor(ms / 1000);
