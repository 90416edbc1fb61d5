import { describe, expect, it } from "vitest";
import { envFromLinkedResources, parseDatabaseConfig, parseEnvConfig, parsePurgeConfig } from "./config";
import { migrationConnection } from "./migrate-handler";

const base = {
  AUTHLITH_ISSUER: "https://auth.example.com/",
  AUTHLITH_SIGNING_KEYS: JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", alg: "ES256", kid: "k", d: "d", x: "x", y: "y" }] }),
  AUTHLITH_HMAC_SECRET: "a".repeat(43),
};

describe("parseEnvConfig", () => {
  it("applies the documented defaults", () => {
    const config = parseEnvConfig(base);
    expect(config.auth).toMatchObject({ issuer: "https://auth.example.com/", audience: "authlith", signingAlg: "ES256", accessTokenTtlSeconds: 900, refreshGraceSeconds: 10 });
    expect(config.http.allowedOrigins).toEqual(["https://auth.example.com"]);
    expect(config.http.cookie).toEqual({ name: "__Host-authlith_rt", sameSite: "Lax", deviceName: "__Host-authlith_device" });
    expect(config.http.maxBodyBytes).toBe(16 * 1024);
    expect(config.database).toBeNull();
    expect(config.redis).toBeNull();
  });

  it("reads connections, origins and limits", () => {
    const config = parseEnvConfig({
      ...base,
      DATABASE_URL: "postgres://u:p@db:5432/auth",
      DATABASE_SSL: "require",
      REDIS_URL: "rediss://:secret@cache:6379",
      AUTHLITH_ALLOWED_ORIGINS: "https://app.example.com, http://localhost:5173/",
      AUTHLITH_REFRESH_GRACE_SECONDS: "3",
    });
    expect(config.database).toMatchObject({ url: "postgres://u:p@db:5432/auth", ssl: "require", maxConnections: 2, prepare: true });
    expect(config.redis).toEqual({ url: "rediss://:secret@cache:6379", keyPrefix: "authlith:", tls: true });
    expect(config.http.allowedOrigins).toEqual(["https://auth.example.com", "https://app.example.com", "http://localhost:5173"]);
    expect(config.auth.refreshGraceSeconds).toBe(3);
  });

  it("binds passkeys to the app's host, or to a parent domain named by AUTHLITH_RP_ID, with the allowed origins on it", () => {
    const origins = { AUTHLITH_ALLOWED_ORIGINS: "https://app.example.com,https://admin.example.com,https://partner.example.net" };
    expect(parseEnvConfig({ ...base, ...origins }).auth.passkeys).toEqual({ rpId: "app.example.com", rpName: "authlith", origins: ["https://app.example.com"] });
    expect(parseEnvConfig({ ...base, ...origins, AUTHLITH_RP_ID: "example.com", AUTHLITH_SERVICE_NAME: "Acme" }).auth.passkeys).toEqual({
      rpId: "example.com",
      rpName: "Acme",
      origins: ["https://app.example.com", "https://admin.example.com"],
    });
    expect(() => parseEnvConfig({ ...base, ...origins, AUTHLITH_RP_ID: "example.net" })).toThrow(/AUTHLITH_RP_ID: the app \(https:\/\/app\.example\.com\) must be on this domain/);
    expect(() => parseEnvConfig({ ...base, AUTHLITH_RP_ID: "Example.COM" })).toThrow(/AUTHLITH_RP_ID/);
  });

  it("takes the keys that encrypt TOTP secrets, newest first, without echoing them", () => {
    expect(parseEnvConfig(base).secrets.mfaSecrets).toBeUndefined();
    const keys = ["b".repeat(43), "c".repeat(44)];
    expect(parseEnvConfig({ ...base, AUTHLITH_MFA_SECRETS: keys.join(" , ") }).secrets.mfaSecrets).toEqual(keys);
    const short = "short-secret-value";
    expect(() => parseEnvConfig({ ...base, AUTHLITH_MFA_SECRETS: short })).toThrow(/AUTHLITH_MFA_SECRETS/);
    try {
      parseEnvConfig({ ...base, AUTHLITH_MFA_SECRETS: short });
    } catch (error) {
      expect(String(error)).not.toContain(short);
    }
  });

  it("fails fast, naming the variables but never echoing their values", () => {
    const secret = "not-long-enough-secret";
    let message = "";
    try {
      parseEnvConfig({ ...base, AUTHLITH_HMAC_SECRET: secret, AUTHLITH_SIGNING_KEYS: "{oops", AUTHLITH_REFRESH_GRACE_SECONDS: "60" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("AUTHLITH_HMAC_SECRET");
    expect(message).toContain("AUTHLITH_SIGNING_KEYS");
    expect(message).toContain("AUTHLITH_REFRESH_GRACE_SECONDS");
    expect(message).not.toContain(secret);
    expect(message).not.toContain("{oops");
    expect(() => parseEnvConfig({})).toThrow(/AUTHLITH_ISSUER/);
    expect(() => parseEnvConfig({ ...base, AUTHLITH_ACCESS_TOKEN_TTL_SECONDS: "30" })).toThrow(/AUTHLITH_ACCESS_TOKEN_TTL_SECONDS/);
    expect(() => parseEnvConfig({ ...base, AUTHLITH_ACCESS_TOKEN_TTL_SECONDS: "7200" })).toThrow(/AUTHLITH_ACCESS_TOKEN_TTL_SECONDS/);
    // A key set of the wrong shape is named at parse time, with the secret it comes from.
    expect(() => parseEnvConfig({ ...base, AUTHLITH_SIGNING_KEYS: '{"keys":[]}' })).toThrow(/AUTHLITH_SIGNING_KEYS\.keys \(SST secret SigningKeys\)/);
    const p384 = JSON.stringify({ keys: [{ kty: "EC", crv: "P-384", alg: "ES256", kid: "k", d: "secret-d-value", x: "x", y: "y" }] });
    let keyMessage = "";
    try {
      parseEnvConfig({ ...base, AUTHLITH_SIGNING_KEYS: p384 });
    } catch (error) {
      keyMessage = (error as Error).message;
    }
    expect(keyMessage).toMatch(/AUTHLITH_SIGNING_KEYS\.keys\.0 \(SST secret SigningKeys\): ES256 keys must be EC P-256/);
    expect(keyMessage).not.toContain("secret-d-value");
    expect(() => parseEnvConfig({ ...base, DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL/);
  });
});

describe("envFromLinkedResources", () => {
  it("builds URLs from SST's linked Postgres and Redis, with TLS for AWS and the secrets' values", () => {
    const env = envFromLinkedResources(
      {
        Database: { host: "db.cluster.rds.amazonaws.com", port: 5432, username: "app", password: "p@ss/word", database: "authlith" },
        Redis: { host: "master.cache.amazonaws.com", port: 6379, username: "default", password: "t0ken" },
        SigningKeys: { value: base.AUTHLITH_SIGNING_KEYS },
        HmacSecret: { value: "h".repeat(43) },
      },
      { AUTHLITH_ISSUER: "https://x.example" },
    );
    expect(env.DATABASE_URL).toBe("postgres://app:p%40ss%2Fword@db.cluster.rds.amazonaws.com:5432/authlith");
    // RDS: verified TLS, against the RDS CA bundle (every region's CA and the roots RDS Proxy uses).
    expect(env.DATABASE_SSL).toBe("verify-full");
    expect(env.REDIS_URL).toBe("rediss://default:t0ken@master.cache.amazonaws.com:6379");
    expect(env.AUTHLITH_SIGNING_KEYS).toBe(base.AUTHLITH_SIGNING_KEYS);
    expect(env.AUTHLITH_HMAC_SECRET).toBe("h".repeat(43));
    const config = parseEnvConfig(env);
    expect(config.database?.url).toContain("db.cluster.rds.amazonaws.com");
    const ssl = config.database?.ssl as { ca: string[]; rejectUnauthorized: boolean };
    expect(ssl.rejectUnauthorized).toBe(true);
    expect(ssl.ca.length).toBeGreaterThan(100);
    expect(ssl.ca.every((pem) => pem.startsWith("-----BEGIN CERTIFICATE-----"))).toBe(true);
  });

  it("uses plain connections for local resources (sst dev) and leaves the environment alone otherwise", () => {
    const env = envFromLinkedResources(
      { Database: { host: "localhost", port: 5432, username: "postgres", password: "pw", database: "authlith" }, Redis: { host: "localhost", port: 6379 } },
      { REDIS_URL: "redis://ignored", LOG_LEVEL: "debug" },
    );
    expect(env.DATABASE_SSL).toBe("disable");
    expect(env.REDIS_URL).toBe("redis://localhost:6379");
    expect(env.LOG_LEVEL).toBe("debug");
    expect(envFromLinkedResources({}, { REDIS_URL: "redis://kept" }).REDIS_URL).toBe("redis://kept");
    // A local Redis under another host name (a container called "redis"): TLS off on request.
    expect(envFromLinkedResources({ Redis: { host: "redis", port: 6379 } }, {}).REDIS_URL).toBe("rediss://redis:6379");
    expect(envFromLinkedResources({ Redis: { host: "redis", port: 6379 } }, { REDIS_TLS: "false" }).REDIS_URL).toBe("redis://redis:6379");
    expect(envFromLinkedResources({ Redis: { host: "localhost", port: 6380 } }, { REDIS_TLS: "true" }).REDIS_URL).toBe("rediss://localhost:6380");
  });
});

describe("mail configuration", () => {
  it("takes the sender from SST's linked Email: an address as it is, a domain as no-reply@ it; a name set by hand wins", () => {
    expect(envFromLinkedResources({ Email: { sender: "auth@example.com" } }, {}).AUTHLITH_MAIL_FROM).toBe("auth@example.com");
    expect(envFromLinkedResources({ Email: { sender: "example.com" } }, {}).AUTHLITH_MAIL_FROM).toBe("no-reply@example.com");
    const named = envFromLinkedResources({ Email: { sender: "example.com" } }, { AUTHLITH_MAIL_FROM: "Example <no-reply@example.com>" });
    expect(parseEnvConfig({ ...base, ...named }).mail).toEqual({ from: "Example <no-reply@example.com>" });
  });

  it("points mail links at the app: AUTHLITH_APP_URL, else the first allowed origin that is not the API", () => {
    expect(parseEnvConfig(base).auth.mail).toEqual({ appUrl: "https://auth.example.com", serviceName: "authlith" });
    const withOrigins = { ...base, AUTHLITH_ALLOWED_ORIGINS: "https://app.example.com,https://admin.example.com" };
    expect(parseEnvConfig(withOrigins).auth.mail?.appUrl).toBe("https://app.example.com");
    expect(parseEnvConfig({ ...withOrigins, AUTHLITH_APP_URL: "https://example.com/account" }).auth.mail?.appUrl).toBe("https://example.com/account");
    expect(() => parseEnvConfig({ ...base, AUTHLITH_MAIL_FROM: "not an address" })).toThrow(/AUTHLITH_MAIL_FROM/);
  });
});

describe("one reader of configuration for every function", () => {
  it("requires Redis on Lambda, where an in-process store would give each container its own limits", () => {
    expect(() => parseEnvConfig(base, { lambda: true })).toThrow(/REDIS_URL: required on Lambda/);
    expect(parseEnvConfig({ ...base, REDIS_URL: "rediss://cache:6379" }, { lambda: true }).redis?.tls).toBe(true);
    expect(parseEnvConfig(base).redis).toBeNull();
  });

  it("chooses how tRPC is served: the fast path unless told otherwise", () => {
    expect(parseEnvConfig(base).http.trpcAdapter).toBe("fast");
    expect(parseEnvConfig({ ...base, AUTHLITH_TRPC_ADAPTER: "official" }).http.trpcAdapter).toBe("official");
    expect(() => parseEnvConfig({ ...base, AUTHLITH_TRPC_ADAPTER: "express" })).toThrow(/AUTHLITH_TRPC_ADAPTER/);
  });

  it("reads the database alone for the migrator and the purge, by the same rules", () => {
    expect(parseDatabaseConfig({ DATABASE_URL: "postgres://u:p@db/auth", DATABASE_SSL: "require", DATABASE_PREPARE: "false" })).toEqual({
      url: "postgres://u:p@db/auth",
      maxConnections: 2,
      prepare: false,
      ssl: "require",
    });
    expect(() => parseDatabaseConfig({})).toThrow(/DATABASE_URL: required/);
    expect(() => parseDatabaseConfig({ DATABASE_URL: "postgres://db/auth", DATABASE_SSL: "maybe" })).toThrow(/DATABASE_SSL/);
    expect(migrationConnection({ DATABASE_URL: "postgres://u:p@localhost/auth" })).toEqual({ url: "postgres://u:p@localhost/auth", ssl: false });
    // The migrator goes to the instance itself, not through RDS Proxy, when told its host, with the same verified TLS.
    const migrator = migrationConnection({
      DATABASE_URL: "postgres://u:p@proxy.example:5432/auth",
      DATABASE_SSL: "verify-full",
      AUTHLITH_MIGRATION_HOST: "db-instance.example",
    });
    expect(migrator.url).toBe("postgres://u:p@db-instance.example:5432/auth");
    expect(migrator.ssl).toMatchObject({ rejectUnauthorized: true });
    // A CA file of one's own (a self-hosted Postgres, the tests), refused clearly when unreadable.
    expect(() => parseDatabaseConfig({ DATABASE_URL: "postgres://db/auth", DATABASE_SSL: "verify-full", DATABASE_SSL_CA: "/nonexistent.pem" })).toThrow(
      /DATABASE_SSL_CA: cannot be read/,
    );
  });

  it("reads the purge's retention overrides, refusing what is not a positive whole number", () => {
    expect(parsePurgeConfig({})).toEqual({ sessionRetentionSeconds: undefined, auditRetentionSeconds: undefined });
    expect(parsePurgeConfig({ AUTHLITH_PURGE_SESSION_RETENTION_SECONDS: "3600", AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS: "86400" })).toEqual({
      sessionRetentionSeconds: 3600,
      auditRetentionSeconds: 86400,
    });
    for (const bad of ["0", "-5", "1.5", "soon"]) {
      expect(() => parsePurgeConfig({ AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS: bad }), bad).toThrow(/AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS/);
    }
  });
});
