import { isIPv4, isIPv6 } from "node:net";
import type { RateLimit } from "./config";
import type { Deps } from "./deps";
import { ServiceUnavailableError } from "./result";

export interface LimitCheck {
  key: string;
  limit: RateLimit;
  /** 1 counts this call; 0 only reads (e.g. a failure counter checked before trying). */
  by: 0 | 1;
}

export type LimitOutcome =
  /** Counts after this call, in the order of the checks. */
  | { state: "ok"; counts: number[] }
  | { state: "limited"; retryAfterSeconds: number; counts: number[] }
  /** The store did not answer: the caller applies its own failure policy. */
  | { state: "unavailable" };

/**
 * Fixed-window counters in the ephemeral store, all checks in one round trip, atomic across
 * Lambda instances. A counting check trips when the count passes the limit; a reading check
 * (`by: 0`) trips once the count has reached it.
 */
export async function checkLimits(deps: Deps, checks: readonly LimitCheck[]): Promise<LimitOutcome> {
  let states;
  try {
    states = await deps.store.increment(
      checks.map((c) => ({ key: `rl:${c.key}`, by: c.by, windowMs: c.limit.windowSeconds * 1000 })),
    );
  } catch (error) {
    if (error instanceof ServiceUnavailableError) return { state: "unavailable" };
    throw error;
  }
  let retryAfterMs = -1;
  checks.forEach((check, i) => {
    const { count, resetInMs } = states[i]!;
    const tripped = check.by > 0 ? count > check.limit.limit : count >= check.limit.limit;
    if (tripped) retryAfterMs = Math.max(retryAfterMs, resetInMs);
  });
  const counts = states.map((s) => s.count);
  return retryAfterMs < 0
    ? { state: "ok", counts }
    : { state: "limited", retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)), counts };
}

export interface BudgetCheck {
  key: string;
  limit: RateLimit;
  /** Counted even when over the limit (attempts per IP); otherwise only attempts that fit count. */
  always?: boolean;
}

export type BudgetOutcome =
  | { state: "ok" }
  | { state: "limited"; retryAfterSeconds: number; refusedAt: number }
  | { state: "unavailable" };

/**
 * Spends one unit from each budget in order, atomically across Lambda instances: the first budget
 * without room refuses the call and the later ones are not touched, so an attempt refused by the
 * per-IP limit does not count against the account, and one refused by the account's window does
 * not count towards its ceiling.
 */
export async function spendBudgets(deps: Deps, checks: readonly BudgetCheck[]): Promise<BudgetOutcome> {
  let result;
  try {
    result = await deps.store.consume(
      checks.map((c) => ({ key: `rl:${c.key}`, by: 1, windowMs: c.limit.windowSeconds * 1000, limit: c.limit.limit, always: c.always })),
    );
  } catch (error) {
    if (error instanceof ServiceUnavailableError) return { state: "unavailable" };
    throw error;
  }
  if (result.refusedAt === null) return { state: "ok" };
  const { resetInMs } = result.states[result.refusedAt]!;
  return { state: "limited", retryAfterSeconds: Math.max(1, Math.ceil(resetInMs / 1000)), refusedAt: result.refusedAt };
}

/** True the first time it is called for `key` within `ttlSeconds` (e.g. to record a lock once). */
export async function firstTime(deps: Deps, key: string, ttlSeconds: number): Promise<boolean> {
  try {
    return await deps.store.setIfAbsent(`rl:once:${key}`, "1", ttlSeconds * 1000);
  } catch (error) {
    if (error instanceof ServiceUnavailableError) return false;
    throw error;
  }
}

/** Adds one to a counter after the fact (a failed refresh). Best effort. */
export async function countFailure(deps: Deps, key: string, limit: RateLimit): Promise<void> {
  await bestEffort(deps.store.increment([{ key: `rl:${key}`, by: 1, windowMs: limit.windowSeconds * 1000 }]));
}

/** Clears counters (failures, after a successful sign-in). Best effort. */
export async function resetCounters(deps: Deps, keys: readonly string[]): Promise<void> {
  await bestEffort(deps.store.delete(keys.map((key) => `rl:${key}`)));
}

async function bestEffort(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (!(error instanceof ServiceUnavailableError)) throw error;
  }
}

/**
 * The address a per-IP limit counts: IPv4 as it is (an IPv4-mapped IPv6 address, as a dual-stack
 * socket reports one, is its IPv4 address), other IPv6 by its /64 (one customer's network; a
 * single host can rotate through 2^64 addresses of its own prefix). Anything that is not an IP
 * address counts as itself.
 */
export function rateLimitIp(ip: string): string {
  const address = ip.split("%")[0]!; // a zone index (fe80::1%eth0) names an interface, not a host
  if (isIPv4(address) || !isIPv6(address)) return ip;
  // WHATWG URL parsing writes an IPv6 address canonically (lower case, hex, "::" for the longest
  // run of zeros), the embedded IPv4 notation included; what is left is to fill the "::" in.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = "", tail = ""] = canonical.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = canonical.includes("::") ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right] : left;
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") {
    const [high, low] = [parseInt(groups[6]!, 16), parseInt(groups[7]!, 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join(".");
  }
  return `${groups.slice(0, 4).join(":")}::/64`;
}
