import { sign, type KeyObject } from "node:crypto";
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { toBase64Url, randomSecret } from "./crypto";
import type { AuthConfig } from "./config";
import type { KeySet, SigningAlgorithm } from "./keys";
import { fail, ok, type Result } from "./result";
import { UUID_PATTERN } from "./ids";

export const ACCESS_TOKEN_TYPE = "at+jwt";
/** Real tokens are well under 1 KiB; anything much larger is refused before any parsing. */
const MAX_TOKEN_LENGTH = 4096;
const REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "jti", "iat", "exp"];
// Header members that would make a verifier fetch or trust key material named by the token itself.
const FORBIDDEN_HEADER_MEMBERS = ["jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256"];

/** The access-token settings of a configuration. */
export const accessTokenOptions = (config: AuthConfig): AccessTokenOptions => ({
  issuer: config.issuer,
  audience: config.audience,
  ttlSeconds: config.accessTokenTtlSeconds,
  clockToleranceSeconds: config.clockToleranceSeconds,
});

export interface AccessTokenOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** Allowed clock skew when checking exp/nbf/iat; at most 30 s (docs/security.md §13). */
  clockToleranceSeconds: number;
}

export interface AccessTokenClaims {
  userId: string;
  sessionId: string;
  email: string;
  emailVerified: boolean;
  /** When the session's user last proved who they are (sign-in), ms; 0 when the token does not say. */
  authTime: number;
  /** How they proved it (RFC 8176: `pwd`, `otp`, `hwk`, `swk`, `mfa`); `["pwd"]` when the token does not say. */
  amr: string[];
  issuedAt: number;
  expiresAt: number;
}

const encodedHeaders = new Map<string, string>();

/** The protected header of a key's tokens, encoded once per key. */
function encodedHeader(alg: string, kid: string): string {
  const cacheKey = `${alg}\0${kid}`;
  let header = encodedHeaders.get(cacheKey);
  if (!header) {
    header = Buffer.from(JSON.stringify({ alg, kid, typ: ACCESS_TOKEN_TYPE })).toString("base64url");
    encodedHeaders.set(cacheKey, header);
  }
  return header;
}

/**
 * A compact JWS over `header.payload`, signed with node:crypto: synchronous, so a sign-in or
 * refresh does not wait a thread-pool round trip for it (WebCrypto's `subtle.sign` does).
 * ES256 signatures are raw r‖s (IEEE P1363), as JWS requires, not DER.
 */
export function signCompact(key: KeyObject, alg: SigningAlgorithm, signingInput: string): string {
  const signature = sign("sha256", Buffer.from(signingInput), alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key);
  return `${signingInput}.${signature.toString("base64url")}`;
}

/** Signs a JWT access token (RFC 9068 profile) for one session. */
export async function signAccessToken(
  keys: KeySet,
  options: AccessTokenOptions,
  subject: { userId: string; sessionId: string; email: string; emailVerified: boolean; authTime: number; amr?: readonly string[] },
  nowMs: number,
): Promise<{ token: string; expiresAt: number }> {
  const { kid, alg, key } = keys.signingKey(nowMs);
  const iat = Math.floor(nowMs / 1000);
  const exp = iat + options.ttlSeconds;
  const payload = {
    iss: options.issuer,
    aud: options.audience,
    sub: subject.userId,
    sid: subject.sessionId,
    email: subject.email,
    email_verified: subject.emailVerified,
    // OpenID Connect's claim: when the user signed in to this session (a refresh keeps it).
    auth_time: Math.floor(subject.authTime / 1000),
    // RFC 8176 authentication methods: what a resource server checks before a sensitive action.
    amr: subject.amr ?? ["pwd"],
    jti: toBase64Url(randomSecret(16)),
    iat,
    exp,
  };
  const token = signCompact(key, alg, `${encodedHeader(alg, kid)}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`);
  return { token, expiresAt: exp * 1000 };
}

/**
 * Verifies an access token: only the service's own keys (chosen by `kid` from the local set, never
 * from the token), an algorithm allowlist, exact `iss`/`aud`, `typ: at+jwt`, every required claim.
 * Any malformed input is an `INVALID_TOKEN` value, never an exception.
 */
export async function verifyAccessToken(
  keys: KeySet,
  options: AccessTokenOptions,
  token: string,
  nowMs: number,
): Promise<Result<AccessTokenClaims, "INVALID_TOKEN" | "TOKEN_EXPIRED">> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return fail("INVALID_TOKEN");
  let payload: JWTPayload;
  try {
    const header = decodeProtectedHeader(token);
    if (FORBIDDEN_HEADER_MEMBERS.some((member) => member in header)) return fail("INVALID_TOKEN");
    const result = await jwtVerify(
      token,
      (protectedHeader) => {
        const entry = typeof protectedHeader.kid === "string" ? keys.verificationKey(protectedHeader.kid, nowMs) : undefined;
        if (!entry || entry.alg !== protectedHeader.alg) throw new errors.JWKSNoMatchingKey();
        return entry.key;
      },
      {
        algorithms: keys.algorithms,
        issuer: options.issuer,
        audience: options.audience,
        typ: ACCESS_TOKEN_TYPE,
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: Math.min(options.clockToleranceSeconds, 30),
        // jose applies clockTolerance to this check itself.
        maxTokenAge: options.ttlSeconds,
        currentDate: new Date(nowMs),
      },
    );
    payload = result.payload;
  } catch (error) {
    return fail(error instanceof errors.JWTExpired ? "TOKEN_EXPIRED" : "INVALID_TOKEN");
  }
  const { sub, sid, email, email_verified: emailVerified, auth_time: authTime, amr, iat, exp } = payload;
  if (
    typeof sub !== "string" ||
    !UUID_PATTERN.test(sub) ||
    typeof sid !== "string" ||
    !UUID_PATTERN.test(sid) ||
    typeof email !== "string" ||
    typeof emailVerified !== "boolean" ||
    typeof iat !== "number" ||
    typeof exp !== "number" ||
    (authTime !== undefined && typeof authTime !== "number") ||
    (amr !== undefined && !(Array.isArray(amr) && amr.every((method) => typeof method === "string")))
  ) {
    return fail("INVALID_TOKEN");
  }
  return ok({
    userId: sub,
    sessionId: sid,
    email,
    emailVerified,
    authTime: typeof authTime === "number" ? authTime * 1000 : 0,
    amr: (amr as string[] | undefined) ?? ["pwd"],
    issuedAt: iat * 1000,
    expiresAt: exp * 1000,
  });
}

export interface AccessTokenVerifier {
  verify(token: string, nowMs: number): Promise<Result<AccessTokenClaims, "INVALID_TOKEN" | "TOKEN_EXPIRED">>;
}

/**
 * `verifyAccessToken` with a per-instance cache of tokens that already verified. A client sends
 * the same access token with every call for up to 15 minutes, and an ECDSA verification costs
 * more than the rest of a `me` call; a cache hit is an exact match of the whole token string, so
 * it proves what the first verification proved, and only expiry needs re-checking. Revocation is
 * not cached: callers check it on every request. Bounded (oldest entries evicted first).
 */
export function createAccessTokenVerifier(keys: KeySet, options: AccessTokenOptions, maxEntries = 1000): AccessTokenVerifier {
  const verified = new Map<string, AccessTokenClaims>();
  const toleranceMs = Math.min(options.clockToleranceSeconds, 30) * 1000;
  return {
    async verify(token, nowMs) {
      const hit = verified.get(token);
      if (hit) {
        if (nowMs < hit.expiresAt + toleranceMs) return ok(hit);
        verified.delete(token);
        return fail("TOKEN_EXPIRED");
      }
      const result = await verifyAccessToken(keys, options, token, nowMs);
      if (result.ok) {
        if (verified.size >= maxEntries) verified.delete(verified.keys().next().value!);
        verified.set(token, result.value);
      }
      return result;
    },
  };
}
