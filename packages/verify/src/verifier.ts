import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from "jose";

/**
 * Verifies authlith access tokens in an app's own backend (Node, Lambda, edge runtimes, Next.js
 * middleware: anything with `fetch` and Web Crypto). The keys come from the issuer's JWKS, found
 * through its discovery document, cached as its `Cache-Control` says and fetched again, at most
 * every 30 seconds, when a token names a key the cache does not have (a rotation).
 */

export type AccessTokenErrorCode =
  /** No token was presented. */
  | "MISSING_TOKEN"
  /** Malformed, tampered, signed by another key or algorithm, wrong `typ`, `iss` or `aud`, not yet valid. */
  | "INVALID_TOKEN"
  | "TOKEN_EXPIRED"
  /** The session was ended in authlith (only with the revocation check on). */
  | "SESSION_REVOKED"
  /** The keys (or, with the revocation check, authlith) could not be reached: answer 503, not 401. */
  | "VERIFIER_UNAVAILABLE";

const BRAND = Symbol.for("authlith.AccessTokenError");

/** Why a token was refused. `status` is what an HTTP API should answer: 401, or 503 for VERIFIER_UNAVAILABLE. */
export class AccessTokenError extends Error {
  readonly code: AccessTokenErrorCode;
  readonly status: 401 | 503;

  constructor(code: AccessTokenErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "AccessTokenError";
    this.code = code;
    this.status = code === "VERIFIER_UNAVAILABLE" ? 503 : 401;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Like `instanceof`, also across two copies of this package. */
  static is(error: unknown, code?: AccessTokenErrorCode): error is AccessTokenError {
    return (
      typeof error === "object" &&
      error !== null &&
      (error as Record<symbol, unknown>)[BRAND] === true &&
      (code === undefined || (error as AccessTokenError).code === code)
    );
  }
}

/** What a verified access token says. */
export interface AccessTokenClaims {
  /** `sub`: the user's id. */
  userId: string;
  /** `sid`: the session the token belongs to. */
  sessionId: string;
  email: string;
  emailVerified: boolean;
  /** `auth_time`: when the user signed in to this session (kept across refreshes). */
  authTime: Date | null;
  issuedAt: Date;
  expiresAt: Date;
  /** `jti`. */
  tokenId: string;
  /** Every claim as signed, for claims this version does not name. */
  payload: JWTPayload;
}

export interface VerifierOptions {
  /** authlith's issuer (AUTHLITH_ISSUER): the service's public base URL. */
  issuer: string;
  /** The audience tokens must carry (AUTHLITH_AUDIENCE, default "authlith"). */
  audience: string;
  /** Accepted signature algorithms. Default: ES256 and RS256, what authlith signs with. */
  algorithms?: readonly ("ES256" | "RS256")[];
  /** Leeway for `exp`, `nbf` and `iat` between clocks. Default 5 seconds. */
  clockToleranceSeconds?: number;
  /** The JWKS URL, if not from discovery (`<issuer>/.well-known/openid-configuration`). */
  jwksUrl?: string;
  /**
   * Ask authlith whether the session still exists. Off by default: a token is then good until it
   * expires (15 minutes), even after a logout, a revoke or a disable, which authlith itself
   * refuses at once. On, each token is checked against authlith (its `auth.me`, one Redis read
   * there) and an answer that it is live is remembered for `maxAgeSeconds` (default 10): a revoked
   * session is refused within that time, at the cost of one request per token per window, and a
   * 503 when authlith cannot be reached (the check fails closed).
   */
  revocation?: false | { maxAgeSeconds?: number };
  fetch?: typeof globalThis.fetch;
  /** Give up on fetching keys or asking authlith after this long. Default 5000 ms. */
  timeoutMs?: number;
  /** The time, for tests. Default `Date.now`. */
  now?: () => number;
}

export interface Verifier {
  /** The claims of a valid token; throws `AccessTokenError` otherwise. */
  verify(token: string | null | undefined): Promise<AccessTokenClaims>;
  /** The same, from an `Authorization: Bearer <token>` header value. */
  verifyAuthorization(header: string | null | undefined): Promise<AccessTokenClaims>;
}

const DEFAULT_MAX_AGE_SECONDS = 300;
const MIN_MAX_AGE_SECONDS = 30;
const MAX_MAX_AGE_SECONDS = 24 * 60 * 60;
const UNKNOWN_KEY_COOLDOWN_MS = 30_000;
/** With no keys at all, how long a failed fetch is remembered before the next try. */
const FAILED_COOLDOWN_MS = 5_000;
const REVOCATION_CACHE_LIMIT = 10_000;

/** `max-age` of a Cache-Control header, clamped; the default when there is none. */
function maxAgeSeconds(cacheControl: string | null): number {
  const match = /(?:^|,)\s*max-age\s*=\s*(\d+)/i.exec(cacheControl ?? "");
  const seconds = match ? Number(match[1]) : DEFAULT_MAX_AGE_SECONDS;
  return Math.min(MAX_MAX_AGE_SECONDS, Math.max(MIN_MAX_AGE_SECONDS, seconds));
}

export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = options.issuer.replace(/\/+$/, "");
  const now = options.now ?? Date.now;
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const timeoutMs = options.timeoutMs ?? 5000;
  const algorithms = [...(options.algorithms ?? ["ES256", "RS256"])];
  const revocation = options.revocation ? { maxAgeMs: (options.revocation.maxAgeSeconds ?? 10) * 1000 } : null;

  const get = async (url: string, headers: Record<string, string> = {}) => {
    const signal = typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(timeoutMs) : undefined;
    return fetchImpl(url, { headers: { accept: "application/json", ...headers }, ...(signal ? { signal } : {}) });
  };

  let jwksUrl: string | null = options.jwksUrl ?? null;
  async function discover(): Promise<string> {
    const response = await get(`${issuer}/.well-known/openid-configuration`);
    if (!response.ok) throw new Error(`discovery answered ${response.status}`);
    const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // The document must be the issuer's own (OpenID Connect Discovery 1.0, section 4.3).
    if (metadata.issuer !== issuer || typeof metadata.jwks_uri !== "string") throw new Error("discovery document does not match the issuer");
    return metadata.jwks_uri;
  }

  interface Keys {
    set: JWTVerifyGetKey;
    fetchedAt: number;
    expiresAt: number;
  }
  let keys: Keys | null = null;
  let loading: Promise<Keys> | null = null;
  /** When keys were last asked for, successfully or not: failures back off too. */
  let lastAttempt = Number.NEGATIVE_INFINITY;

  async function load(): Promise<Keys> {
    jwksUrl ??= await discover();
    const response = await get(jwksUrl);
    if (!response.ok) throw new Error(`JWKS answered ${response.status}`);
    const jwks = (await response.json()) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new Error("JWKS has no keys");
    const fetchedAt = now();
    return { set: createLocalJWKSet(jwks), fetchedAt, expiresAt: fetchedAt + maxAgeSeconds(response.headers.get("cache-control")) * 1000 };
  }

  /** The key set: cached; fetched again when stale, or (`unknownKey`) when a token names a key it lacks. */
  async function keySet(unknownKey: boolean): Promise<Keys> {
    const current = keys;
    const recentlyAsked = now() - lastAttempt < UNKNOWN_KEY_COOLDOWN_MS;
    if (current) {
      const fresh = now() < current.expiresAt;
      if (!unknownKey && fresh) return current;
      // A key the set lacks, or a stale set: asked again at most every 30 s, whatever the last answer was.
      if (recentlyAsked && !loading) return current;
    } else if (now() - lastAttempt < FAILED_COOLDOWN_MS && !loading) {
      throw new AccessTokenError("VERIFIER_UNAVAILABLE", "The issuer's keys could not be fetched");
    }
    if (!loading) lastAttempt = now();
    loading ??= load()
      .then((loaded) => (keys = loaded))
      .finally(() => (loading = null));
    try {
      return await loading;
    } catch (error) {
      // Keys that went stale still verify what they signed while the issuer cannot be reached.
      if (current) return current;
      throw new AccessTokenError("VERIFIER_UNAVAILABLE", "The issuer's keys could not be fetched", { cause: error });
    }
  }

  const verifyOptions = () => ({
    issuer,
    audience: options.audience,
    algorithms,
    typ: "at+jwt",
    clockTolerance: options.clockToleranceSeconds ?? 5,
    requiredClaims: ["sub", "sid", "jti", "iat", "exp"],
    currentDate: new Date(now()),
  });

  async function signedPayload(token: string): Promise<JWTPayload> {
    try {
      try {
        return (await jwtVerify(token, (await keySet(false)).set, verifyOptions())).payload;
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
        return (await jwtVerify(token, (await keySet(true)).set, verifyOptions())).payload;
      }
    } catch (error) {
      if (AccessTokenError.is(error)) throw error;
      if (error instanceof errors.JWTExpired) throw new AccessTokenError("TOKEN_EXPIRED", "The access token has expired", { cause: error });
      throw new AccessTokenError("INVALID_TOKEN", "The access token is not valid", { cause: error });
    }
  }

  /** Token ids authlith said were live, until when. */
  const live = new Map<string, number>();
  async function checkRevocation(token: string, claims: AccessTokenClaims) {
    if (!revocation) return;
    const until = live.get(claims.tokenId);
    if (until !== undefined && until > now()) return;
    let response: Response;
    try {
      response = await get(`${issuer}/trpc/auth.me`, { authorization: `Bearer ${token}` });
    } catch (error) {
      throw new AccessTokenError("VERIFIER_UNAVAILABLE", "authlith could not be asked about the session", { cause: error });
    }
    if (response.status === 401) {
      const body = (await response.json().catch(() => null)) as { error?: { data?: { reason?: string } } } | null;
      const reason = body?.error?.data?.reason;
      if (reason === "TOKEN_EXPIRED") throw new AccessTokenError("TOKEN_EXPIRED", "The access token has expired");
      throw new AccessTokenError("SESSION_REVOKED", "The session has ended");
    }
    if (!response.ok) throw new AccessTokenError("VERIFIER_UNAVAILABLE", `authlith answered ${response.status}`);
    if (live.size >= REVOCATION_CACHE_LIMIT) live.delete(live.keys().next().value!);
    live.set(claims.tokenId, Math.min(now() + revocation.maxAgeMs, claims.expiresAt.getTime()));
  }

  async function verify(token: string | null | undefined): Promise<AccessTokenClaims> {
    if (!token) throw new AccessTokenError("MISSING_TOKEN", "No access token");
    const payload = await signedPayload(token);
    const { sub, sid, jti, iat, exp, email, email_verified: emailVerified, auth_time: authTime } = payload as Record<string, unknown>;
    if (
      typeof sub !== "string" ||
      typeof sid !== "string" ||
      typeof jti !== "string" ||
      typeof iat !== "number" ||
      typeof exp !== "number" ||
      typeof email !== "string" ||
      typeof emailVerified !== "boolean" ||
      (authTime !== undefined && typeof authTime !== "number")
    ) {
      throw new AccessTokenError("INVALID_TOKEN", "The access token is missing claims");
    }
    const claims: AccessTokenClaims = {
      userId: sub,
      sessionId: sid,
      email,
      emailVerified,
      authTime: typeof authTime === "number" ? new Date(authTime * 1000) : null,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000),
      tokenId: jti,
      payload,
    };
    await checkRevocation(token, claims);
    return claims;
  }

  return {
    verify,
    verifyAuthorization(header) {
      const match = /^Bearer +([^\s]+) *$/i.exec(header ?? "");
      return verify(match?.[1]);
    },
  };
}
