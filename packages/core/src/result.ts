/**
 * Expected outcomes are values, not exceptions: a wrong password or a reused refresh token is part
 * of the domain. Each failure carries a stable SCREAMING_SNAKE code that callers switch on; the
 * transport maps codes to HTTP/tRPC errors in exactly one place.
 */
export type Failure<C extends string> = {
  ok: false;
  code: C;
  /** Seconds until a retry can succeed (rate limits, lockouts). */
  retryAfterSeconds?: number;
};
export type Success<T> = { ok: true; value: T };
export type Result<T, C extends string> = Success<T> | Failure<C>;

export const ok = <T>(value: T): Success<T> => ({ ok: true, value });
export const fail = <C extends string>(code: C, retryAfterSeconds?: number): Failure<C> =>
  retryAfterSeconds === undefined ? { ok: false, code } : { ok: false, code, retryAfterSeconds };

/** Every failure code core can return. */
export type AuthErrorCode =
  | "INVALID_CREDENTIALS"
  | "EMAIL_TAKEN"
  | "WEAK_PASSWORD"
  | "RATE_LIMITED"
  | "INVALID_TOKEN"
  | "TOKEN_EXPIRED"
  | "SESSION_REVOKED"
  | "INVALID_REFRESH_TOKEN"
  | "REFRESH_TOKEN_REUSED"
  | "SESSION_NOT_FOUND";

/**
 * A dependency (Postgres, Redis) did not answer in time or refused: the request can be retried.
 * Thrown, because it is not an outcome of the domain.
 */
export class ServiceUnavailableError extends Error {
  /** `deadline`: the request ran out of time waiting on one of them (or on the hashing queue). */
  readonly dependency: "postgres" | "redis" | "deadline";
  constructor(dependency: "postgres" | "redis" | "deadline", options?: { cause?: unknown }) {
    super(`${dependency} unavailable`, options);
    this.name = "ServiceUnavailableError";
    this.dependency = dependency;
  }
}

// SQLSTATE classes meaning "the server can't serve this now", not "your query is wrong":
// 08 connection exception, 53 insufficient resources, 57 operator intervention (admin shutdown,
// statement/lock timeout 57014, cannot connect now 57P03), 55P03 lock not available, 40001/40P01.
// 25P03: a transaction killed by idle_in_transaction_session_timeout (a login's, if its hash
// ever took that long): transient, like a lock or statement timeout.
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)|^55P03$|^40001$|^40P01$|^25P03$/;
const UNAVAILABLE_NODE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/**
 * Whether an error (or anything in its `cause` chain: drizzle wraps driver errors) means Postgres
 * is unreachable or overloaded, so the client should get 503 + Retry-After rather than 500.
 */
export function isServiceUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ServiceUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) {
      return true;
    }
  }
  return false;
}
