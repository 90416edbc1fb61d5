import type { AuthConfigInput, LogLevel, PostgresOptions } from "@authlith/core";
import { z } from "zod";

/**
 * Runtime configuration, parsed by zod once per cold start. In AWS it comes from SST's linked
 * resources (Database, Redis, the SigningKeys and HmacSecret secrets) plus plain environment
 * variables set by sst.config.ts; anywhere else from the environment alone. Missing or malformed
 * values stop the cold start with a message naming the variable, never a default secret.
 */
export interface RuntimeConfig {
  auth: AuthConfigInput;
  http: HttpConfig;
  /** Null when no DATABASE_URL is set: only valid where a database is supplied (dev server, tests). */
  database: PostgresOptions | null;
  redis: { url: string; keyPrefix: string; tls: boolean } | null;
  secrets: { signingKeys: unknown; hmacSecret: string };
  logLevel: LogLevel;
}

export interface HttpConfig {
  /** Origins allowed to call with credentials (CORS) and to use the refresh cookie. */
  allowedOrigins: string[];
  cookie: { name: string; sameSite: "Lax" | "Strict" };
  maxBodyBytes: number;
  /** Largest tRPC batch accepted. */
  maxBatchSize: number;
}

const origin = z
  .url({ protocol: /^https?$/ })
  .transform((url) => new URL(url).origin);

const originList = z
  .string()
  .transform((value) => value.split(",").map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(origin));

const intFrom = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "must be JSON" });
    return z.NEVER;
  }
});

const EnvSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  DATABASE_POOL_MAX: intFrom(2),
  DATABASE_PREPARE: z.enum(["true", "false"]).default("true"),
  DATABASE_SSL: z.enum(["disable", "require", "prefer"]).default("disable"),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional(),
  REDIS_KEY_PREFIX: z.string().max(64).default("authlith:"),
  AUTHLITH_ISSUER: z.url({ protocol: /^https?$/ }),
  AUTHLITH_AUDIENCE: z.string().min(1).default("authlith"),
  AUTHLITH_SIGNING_ALG: z.enum(["ES256", "RS256"]).default("ES256"),
  AUTHLITH_SIGNING_KEYS: json,
  AUTHLITH_HMAC_SECRET: z.string().regex(/^[A-Za-z0-9_-]{43,}$/, "must be at least 32 bytes, base64url"),
  AUTHLITH_ALLOWED_ORIGINS: originList.default([]),
  AUTHLITH_COOKIE_SAMESITE: z.enum(["Lax", "Strict"]).default("Lax"),
  AUTHLITH_ACCESS_TOKEN_TTL_SECONDS: intFrom(900),
  AUTHLITH_REFRESH_GRACE_SECONDS: z.coerce.number().int().min(0).max(10).default(10),
  AUTHLITH_SESSION_IDLE_TTL_SECONDS: intFrom(7 * 24 * 3600),
  AUTHLITH_SESSION_ABSOLUTE_TTL_SECONDS: intFrom(30 * 24 * 3600),
  AUTHLITH_REVOCATION_RESYNC_SECONDS: z.coerce.number().int().min(1).max(300).default(30),
  AUTHLITH_PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(64).default(8),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type Env = Record<string, string | undefined>;

/** Formats zod issues as "NAME: problem" lines, never echoing values (they may be secrets). */
function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`).join("\n");
}

export function parseEnvConfig(env: Env): RuntimeConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`authlith: invalid configuration\n${describeIssues(parsed.error)}`);
  const e = parsed.data;
  const issuerOrigin = new URL(e.AUTHLITH_ISSUER).origin;
  return {
    auth: {
      issuer: e.AUTHLITH_ISSUER,
      audience: e.AUTHLITH_AUDIENCE,
      signingAlg: e.AUTHLITH_SIGNING_ALG,
      accessTokenTtlSeconds: e.AUTHLITH_ACCESS_TOKEN_TTL_SECONDS,
      refreshGraceSeconds: e.AUTHLITH_REFRESH_GRACE_SECONDS,
      sessionIdleTtlSeconds: e.AUTHLITH_SESSION_IDLE_TTL_SECONDS,
      sessionAbsoluteTtlSeconds: e.AUTHLITH_SESSION_ABSOLUTE_TTL_SECONDS,
      revocationResyncSeconds: e.AUTHLITH_REVOCATION_RESYNC_SECONDS,
      password: { minLength: e.AUTHLITH_PASSWORD_MIN_LENGTH, maxLength: 256 },
    },
    http: {
      allowedOrigins: [...new Set([issuerOrigin, ...e.AUTHLITH_ALLOWED_ORIGINS])],
      cookie: { name: "__Host-authlith_rt", sameSite: e.AUTHLITH_COOKIE_SAMESITE },
      maxBodyBytes: 16 * 1024,
      maxBatchSize: 10,
    },
    database: e.DATABASE_URL
      ? {
          url: e.DATABASE_URL,
          maxConnections: e.DATABASE_POOL_MAX,
          prepare: e.DATABASE_PREPARE === "true",
          ssl: e.DATABASE_SSL === "disable" ? false : e.DATABASE_SSL,
        }
      : null,
    redis: e.REDIS_URL ? { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, tls: e.REDIS_URL.startsWith("rediss:") } : null,
    secrets: { signingKeys: e.AUTHLITH_SIGNING_KEYS, hmacSecret: e.AUTHLITH_HMAC_SECRET },
    logLevel: e.LOG_LEVEL,
  };
}

/** The shape of SST's linked resources this function reads (see sst.config.ts). */
export interface LinkedResources {
  Database?: { host: string; port: number; username: string; password: string; database: string };
  Redis?: { host: string; port: number; username?: string; password?: string };
  SigningKeys?: { value: string };
  HmacSecret?: { value: string };
}

/**
 * Turns linked resources into the environment variables `parseEnvConfig` reads, so there is one
 * parser and one set of rules. Linked values win over the environment for what they provide.
 */
export function envFromLinkedResources(resources: LinkedResources, env: Env): Env {
  const merged: Env = { ...env };
  const { Database: db, Redis: redis, SigningKeys: keys, HmacSecret: hmac } = resources;
  if (db) {
    const auth = `${encodeURIComponent(db.username)}:${encodeURIComponent(db.password)}`;
    merged.DATABASE_URL = `postgres://${auth}@${db.host}:${db.port}/${encodeURIComponent(db.database)}`;
    merged.DATABASE_SSL ??= db.host === "localhost" || db.host === "127.0.0.1" ? "disable" : "require";
  }
  if (redis) {
    const local = redis.host === "localhost" || redis.host === "127.0.0.1";
    const auth = redis.password
      ? `${encodeURIComponent(redis.username ?? "default")}:${encodeURIComponent(redis.password)}@`
      : "";
    merged.REDIS_URL = `${local ? "redis" : "rediss"}://${auth}${redis.host}:${redis.port}`;
  }
  if (keys) merged.AUTHLITH_SIGNING_KEYS = keys.value;
  if (hmac) merged.AUTHLITH_HMAC_SECRET = hmac.value;
  return merged;
}
