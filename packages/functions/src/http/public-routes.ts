import type { Deps } from "@authlith/core";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { sql } from "drizzle-orm";
import { json } from "./responses";

type Answer = APIGatewayProxyStructuredResultV2;

const HEALTH_CHECK_TIMEOUT_MS = 1500;

/**
 * The routes outside tRPC: `/health` and the public keys (`/.well-known/*`). Returns null for any
 * other path.
 */
export function createPublicRoutes(deps: Deps): (method: string, path: string) => Promise<Answer> | Answer | null {
  const health = async (): Promise<Answer> => {
    const [postgres, redis] = await Promise.all([timedCheck(() => deps.db.execute(sql`select 1`)), timedCheck(() => deps.store.ping())]);
    const status = postgres.ok && redis.ok ? "ok" : postgres.ok ? "degraded" : "unavailable";
    const headers: Record<string, string> = { "cache-control": "no-store" };
    if (status === "unavailable") headers["retry-after"] = "2"; // as every other 503 (trpc.ts)
    return json(status === "unavailable" ? 503 : 200, { status, checks: { postgres, redis } }, headers);
  };

  const wellKnown = (path: string): Answer => {
    const cache = { "cache-control": "public, max-age=300", "access-control-allow-origin": "*" };
    if (path === "/.well-known/jwks.json") return json(200, deps.keys.publicJwks(deps.clock.now()), cache);
    if (path === "/.well-known/openid-configuration") {
      const issuer = deps.config.issuer;
      const document = {
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: deps.keys.algorithms,
      };
      return json(200, document, cache);
    }
    return json(404, { error: "not_found" });
  };

  return (method, path) => {
    if (path !== "/health" && !path.startsWith("/.well-known/")) return null;
    if (method !== "GET") return json(405, { error: "method_not_allowed" }, { allow: "GET" });
    return path === "/health" ? health() : wellKnown(path);
  };
}

/** Runs a dependency check with a deadline; its latency when it answers. */
async function timedCheck(check: () => Promise<unknown>): Promise<{ ok: true; latencyMs: number } | { ok: false }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), HEALTH_CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
  } catch {
    return { ok: false };
  } finally {
    clearTimeout(timer);
  }
}
