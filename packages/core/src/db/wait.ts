import postgres from "postgres";
import type { PostgresSsl } from "./client";

/**
 * Waits until Postgres accepts a connection and answers, for the deploy-time migrator: on a fresh
 * account RDS (and RDS Proxy's target) can still be coming up when the first deploy invokes it.
 * Bounded: jittered exponential backoff (full jitter) until `deadlineMs`, each attempt with its
 * own connect timeout. Failures that waiting cannot fix (a wrong password, a missing database)
 * fail at once.
 */
export interface WaitForPostgresOptions {
  /** Give up after this long in total. */
  deadlineMs: number;
  /** TLS, as for the service's own connections (verified against the RDS CA bundle in AWS). */
  ssl?: PostgresSsl;
  /** First backoff ceiling; doubles per attempt up to `maxDelayMs`. Default 500 ms. */
  baseDelayMs?: number;
  /** Default 15 s. */
  maxDelayMs?: number;
  /** Per attempt. Default 10 s (less when the deadline is nearer). */
  connectTimeoutSeconds?: number;
  /** Called before each wait: which attempt failed, why (a code, never a message with secrets), how long until the next. */
  onRetry?: (event: { attempt: number; code: string; delayMs: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** Connection-level failures that a database still starting (or a proxy without a target yet) gives. */
const TRANSIENT = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P03", // cannot_connect_now: the database system is starting up
  "53300", // too_many_connections
  "08000",
  "08001",
  "08006",
]);

const codeOf = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : (error as { name?: string } | null)?.name ?? "UNKNOWN";
};

export async function waitForPostgres(url: string, options: WaitForPostgresOptions): Promise<{ attempts: number; waitedMs: number }> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const base = options.baseDelayMs ?? 500;
  const cap = options.maxDelayMs ?? 15_000;
  const started = now();
  const deadline = started + options.deadlineMs;
  for (let attempt = 1; ; attempt++) {
    const remainingSeconds = Math.max(1, Math.floor((deadline - now()) / 1000));
    const client = postgres(url, {
      max: 1,
      connect_timeout: Math.min(options.connectTimeoutSeconds ?? 10, remainingSeconds),
      idle_timeout: 1,
      onnotice: () => {},
      ...(options.ssl ? { ssl: options.ssl } : {}),
    });
    try {
      await client`select 1`;
      return { attempts: attempt, waitedMs: now() - started };
    } catch (error) {
      const code = codeOf(error);
      if (!TRANSIENT.has(code)) throw error;
      const remaining = deadline - now();
      if (remaining <= 0) {
        throw new Error(`Postgres did not become reachable within ${Math.round(options.deadlineMs / 1000)} s (${attempt} attempts, last: ${code})`, {
          cause: error,
        });
      }
      const delayMs = Math.min(remaining, Math.round(random() * Math.min(cap, base * 2 ** (attempt - 1))));
      options.onRetry?.({ attempt, code, delayMs });
      await sleep(delayMs);
    } finally {
      await client.end({ timeout: 1 }).catch(() => {});
    }
  }
}
