import { randomBytes } from "node:crypto";
import { generateSigningKey } from "@authlith/core";
import { parseEnvConfig, type RuntimeConfig } from "../../packages/functions/src/config";
import { createRuntime, type Runtime } from "../../packages/functions/src/runtime";
import { REDIS_URL } from "./services";

export const BENCH_ISSUER = "https://auth.bench.test";

/** Environment for a benchmarked instance: generated keys, real Postgres and Redis. */
export async function benchEnv(databaseUrl: string, redisPrefix: string): Promise<Record<string, string>> {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix,
    AUTHLITH_ISSUER: BENCH_ISSUER,
    AUTHLITH_SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningKey("ES256")] }),
    AUTHLITH_HMAC_SECRET: randomBytes(32).toString("base64url"),
    LOG_LEVEL: "error",
    // The scenarios start from signed-in users: they sign up signed in. Sign-up with verification
    // on (the default) is measured by its own runtime (scenarios/enumeration.ts).
    AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false",
  };
}

/**
 * The benchmark measures the work of each operation, not the rate limiter saying no: limits are
 * raised far above what the run sends (the counters are still incremented on every call).
 */
export function benchConfig(env: Record<string, string>): RuntimeConfig {
  const config = parseEnvConfig(env);
  const high = { limit: 1_000_000_000, windowSeconds: 60 };
  config.auth.rateLimits = {
    loginPerIp: high,
    loginFailuresPerAccount: high,
    loginConsecutiveFailures: high,
    registerPerIp: high,
    registerPerAddress: high,
    refreshFailuresPerIp: high,
    refreshPerSession: high,
    resetRequestPerAccount: high,
    resetRequestPerIp: high,
    tokenRedeemPerIp: high,
    verificationMailPerAccount: high,
  };
  return config;
}

export async function startBenchRuntime(env: Record<string, string>): Promise<Runtime> {
  return createRuntime(benchConfig(env));
}
