import { SIGNING_ALGORITHMS } from "./keys";
import { DEFAULT_ARGON2 } from "./password";
import { DEFAULT_PASSWORD_POLICY, PASSWORD_LENGTH } from "./password-policy";
import * as z from "zod/mini";
import "./zod";

/** An integer within [min, max], `fallback` when absent. */
const int = (min: number, max: number, fallback: number) =>
  z._default(z.int().check(z.minimum(min), z.maximum(max)), fallback);

const DAY = 24 * 60 * 60;
const FOREVER = Number.MAX_SAFE_INTEGER;

const positive = z.int().check(z.positive());
const limit = (fallback: { limit: number; windowSeconds: number }) =>
  z._default(z.object({ limit: positive, windowSeconds: positive }), fallback);


const RATE_LIMIT_DEFAULTS = {
  loginPerIp: { limit: 30, windowSeconds: 60 },
  loginFailuresPerAccount: { limit: 10, windowSeconds: 15 * 60 },
  loginConsecutiveFailures: { limit: 100, windowSeconds: DAY },
  registerPerIp: { limit: 10, windowSeconds: 10 * 60 },
  registerPerAddress: { limit: 5, windowSeconds: 60 * 60 },
  refreshFailuresPerIp: { limit: 60, windowSeconds: 60 },
  refreshPerSession: { limit: 30, windowSeconds: 60 },
  resetRequestPerAccount: { limit: 3, windowSeconds: 60 * 60 },
  resetRequestPerIp: { limit: 10, windowSeconds: 60 * 60 },
  tokenRedeemPerIp: { limit: 20, windowSeconds: 10 * 60 },
  verificationMailPerAccount: { limit: 5, windowSeconds: 60 * 60 },
  mfaFailuresPerAccount: { limit: 10, windowSeconds: 15 * 60 },
  passkeyChallengesPerIp: { limit: 30, windowSeconds: 60 },
};

/**
 * Everything core needs to know that is not a secret or a connection. Parsed once per cold start;
 * every value has a safe default except who we are (issuer, audience).
 */
export const AuthConfigSchema = z.object({
  /** Public base URL of this service; the `iss` of every token and the base of the JWKS URL. */
  issuer: z.pipe(
    z.url({ protocol: /^https?$/ }),
    z.transform((url: string) => url.replace(/\/+$/, "")),
  ),
  /** The `aud` of every access token: what resource servers check. */
  audience: z.string().check(z.minLength(1), z.maxLength(200)),
  signingAlg: z._default(z.enum(SIGNING_ALGORITHMS), "ES256"),
  accessTokenTtlSeconds: int(60, 3600, 900),
  clockToleranceSeconds: int(0, 30, 5),
  /** Concurrent refreshes of one token within this window all get the same new token (≤ 10 s). */
  refreshGraceSeconds: int(0, 10, 10),
  /**
   * How often the Redis revocation list is re-checked against Postgres: the longest an entry lost
   * in Redis (flush, failover, a write while Redis was unreachable) can go unnoticed.
   */
  revocationResyncSeconds: int(1, 300, 30),
  sessionIdleTtlSeconds: int(1, FOREVER, 7 * DAY),
  /**
   * Whether an account must verify its address before it can sign in (docs/security.md §36). On:
   * sign-up answers the same for a new and a taken address and signs nobody in. Off: sign-up signs
   * in at once and a taken address is refused (which tells that the address has an account).
   */
  requireEmailVerification: z._default(z.boolean(), true),
  /**
   * The least time, in milliseconds, a request that may send a mail takes to answer (sign-up with
   * verification, password reset, email change): long enough for the mail to be handed to the
   * mailer, so a request that sends one cannot be told by its timing from one that does not
   * (docs/security.md §7). 0 with the development outbox (it answers at once); set by the
   * service when mail goes through SES.
   */
  mailAnswerFloorMs: int(0, 5000, 0),
  /** How recent a sign-in must be for sensitive operations done without the password (docs/security.md §22). */
  reauthSeconds: int(60, 3600, 300),
  sessionAbsoluteTtlSeconds: int(1, FOREVER, 30 * DAY),
  /** Second factors (docs/security.md §27–28, §40–42). */
  mfa: z._default(
    z.object({
      /** How long a sign-in waits for its second factor, and a passkey ceremony for its answer. */
      challengeTtlSeconds: int(60, 900, 300),
      /** Codes tried against one challenge before it is spent. */
      challengeAttempts: int(1, 10, 5),
    }),
    { challengeTtlSeconds: 300, challengeAttempts: 5 },
  ),
  /**
   * WebAuthn relying party: the registrable domain passkeys are bound to (the app's host or a
   * parent of it) and the exact origins a ceremony may come from. Unset: the app URL's host and
   * origin.
   */
  passkeys: z.optional(
    z.object({
      rpId: z.string().check(z.minLength(1), z.maxLength(253), z.regex(/^[a-z0-9.-]+$/)),
      rpName: z._default(z.string().check(z.minLength(1), z.maxLength(100)), "authlith"),
      origins: z.array(z.string().check(z.regex(/^https?:\/\/[^/]+$/))).check(z.minLength(1)),
    }),
  ),
  argon2: z._default(
    z.object({
      memoryCost: z.int().check(z.minimum(8192)),
      timeCost: z.int().check(z.minimum(1)),
      parallelism: z.int().check(z.minimum(1)),
    }),
    DEFAULT_ARGON2,
  ),
  password: z._default(
    z.object({ minLength: z.int().check(z.minimum(PASSWORD_LENGTH.min), z.maximum(PASSWORD_LENGTH.configurableMinUpTo)) }),
    DEFAULT_PASSWORD_POLICY,
  ),
  /** What mails say and where their links point (the app, never this API: docs/security.md §25). */
  mail: z._default(
    z.object({
      appUrl: z.pipe(
        z.url({ protocol: /^https?$/ }),
        z.transform((url: string) => url.replace(/\/+$/, "")),
      ),
      serviceName: z._default(z.string().check(z.minLength(1), z.maxLength(100)), "authlith"),
    }),
    { appUrl: "http://localhost:5173", serviceName: "authlith" },
  ),
  rateLimits: z._default(
    z.object({
      loginPerIp: limit(RATE_LIMIT_DEFAULTS.loginPerIp),
      /** Sign-in attempts per account (known or not) before it is locked for the window. */
      loginFailuresPerAccount: limit(RATE_LIMIT_DEFAULTS.loginFailuresPerAccount),
      /**
       * Ceiling on checked attempts without a success (NIST 800-63B 3.2.2: at most 100), per day,
       * per account and, separately, per known device. Cleared by a successful sign-in.
       */
      loginConsecutiveFailures: limit(RATE_LIMIT_DEFAULTS.loginConsecutiveFailures),
      registerPerIp: limit(RATE_LIMIT_DEFAULTS.registerPerIp),
      /**
       * Sign-ups per address (new or taken): with verification on, each one mails that address,
       * so this caps the mail an attacker can aim at somebody's inbox.
       */
      registerPerAddress: limit(RATE_LIMIT_DEFAULTS.registerPerAddress),
      /** Refreshes that failed (expired, revoked, replayed), per IP. Forged tokens fail before any I/O. */
      refreshFailuresPerIp: limit(RATE_LIMIT_DEFAULTS.refreshFailuresPerIp),
      /** Rotations per session, counted in the rotating UPDATE itself. */
      refreshPerSession: limit(RATE_LIMIT_DEFAULTS.refreshPerSession),
      /** Password-reset mails per address (known or not) and per IP. */
      resetRequestPerAccount: limit(RATE_LIMIT_DEFAULTS.resetRequestPerAccount),
      resetRequestPerIp: limit(RATE_LIMIT_DEFAULTS.resetRequestPerIp),
      /** Attempts to redeem a mailed token (reset, verification, email change), per IP. */
      tokenRedeemPerIp: limit(RATE_LIMIT_DEFAULTS.tokenRedeemPerIp),
      /** Verification mails per account (asked for, or sent on a sign-in to an unverified account). */
      verificationMailPerAccount: limit(RATE_LIMIT_DEFAULTS.verificationMailPerAccount),
      /**
       * Second-factor codes (TOTP or recovery) tried per account without a success, across every
       * challenge: someone who has the password cannot open challenge after challenge to guess.
       */
      mfaFailuresPerAccount: limit(RATE_LIMIT_DEFAULTS.mfaFailuresPerAccount),
      /** Passkey sign-in challenges handed out per IP (each one is a row until it expires). */
      passkeyChallengesPerIp: limit(RATE_LIMIT_DEFAULTS.passkeyChallengesPerIp),
    }),
    RATE_LIMIT_DEFAULTS,
  ),
});

export type AuthConfig = z.output<typeof AuthConfigSchema>;
export type AuthConfigInput = z.input<typeof AuthConfigSchema>;
export type RateLimit = AuthConfig["rateLimits"]["loginPerIp"];
