import { z } from "zod";
import { SIGNING_ALGORITHMS } from "./keys";
import { DEFAULT_ARGON2, DEFAULT_PASSWORD_POLICY } from "./password";

const limit = (limit: number, windowSeconds: number) =>
  z
    .object({ limit: z.number().int().positive(), windowSeconds: z.number().int().positive() })
    .default({ limit, windowSeconds });

const DAY = 24 * 60 * 60;

/**
 * Everything core needs to know that is not a secret or a connection. Parsed once per cold start;
 * every value has a safe default except who we are (issuer, audience).
 */
export const AuthConfigSchema = z.object({
  /** Public base URL of this service; the `iss` of every token and the base of the JWKS URL. */
  issuer: z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, "")),
  /** The `aud` of every access token: what resource servers check. */
  audience: z.string().min(1).max(200),
  signingAlg: z.enum(SIGNING_ALGORITHMS).default("ES256"),
  accessTokenTtlSeconds: z.number().int().min(60).max(3600).default(900),
  clockToleranceSeconds: z.number().int().min(0).max(30).default(5),
  /** Concurrent refreshes of one token within this window all get the same new token (≤ 10 s). */
  refreshGraceSeconds: z.number().int().min(0).max(10).default(10),
  /**
   * How often the Redis revocation list is re-checked against Postgres: the longest an entry lost
   * in Redis (flush, failover, a write while Redis was unreachable) can go unnoticed.
   */
  revocationResyncSeconds: z.number().int().min(1).max(300).default(30),
  sessionIdleTtlSeconds: z.number().int().positive().default(7 * DAY),
  sessionAbsoluteTtlSeconds: z.number().int().positive().default(30 * DAY),
  argon2: z
    .object({
      memoryCost: z.number().int().min(8192),
      timeCost: z.number().int().min(1),
      parallelism: z.number().int().min(1),
    })
    .default(DEFAULT_ARGON2),
  password: z
    .object({ minLength: z.number().int().min(8).max(64), maxLength: z.number().int().min(64).max(1024) })
    .default(DEFAULT_PASSWORD_POLICY),
  rateLimits: z
    .object({
      loginPerIp: limit(30, 60),
      /** Failed sign-ins per account (known or not) before it is locked for the window. */
      loginFailuresPerAccount: limit(10, 15 * 60),
      registerPerIp: limit(10, 10 * 60),
      refreshPerIp: limit(300, 60),
      refreshPerSession: limit(30, 60),
    })
    .default({
      loginPerIp: { limit: 30, windowSeconds: 60 },
      loginFailuresPerAccount: { limit: 10, windowSeconds: 15 * 60 },
      registerPerIp: { limit: 10, windowSeconds: 10 * 60 },
      refreshPerIp: { limit: 300, windowSeconds: 60 },
      refreshPerSession: { limit: 30, windowSeconds: 60 },
    }),
});

export type AuthConfig = z.infer<typeof AuthConfigSchema>;
export type AuthConfigInput = z.input<typeof AuthConfigSchema>;
export type RateLimit = AuthConfig["rateLimits"]["loginPerIp"];
