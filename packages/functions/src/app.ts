import { describeError, type Deps } from "@authlith/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import { sql } from "drizzle-orm";
import type { HttpConfig } from "./config";
import { parseCookies } from "./http/cookies";
import { requestHeaders, ResponseHeaders } from "./http/headers";
import { json, trpcStyleError } from "./http/responses";
import { createTrpcHttpHandler } from "./http/trpc-http";
import { appRouter } from "./router";
import { TRANSPORT_HEADER } from "./transport";
import { mapUnavailable, PublicError, type Context } from "./trpc";

export type ApiHandler = (
  event: APIGatewayProxyEventV2,
  context?: LambdaContext,
) => Promise<APIGatewayProxyStructuredResultV2>;

const TRPC_PREFIX = "/trpc/";
const MAX_USER_AGENT = 512;
const ALLOWED_REQUEST_HEADERS = ["content-type", "authorization", "x-trpc-source", TRANSPORT_HEADER];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UNSAFE_HEADER_CHARACTER = /[^\t\x20-\x7e\x80-\xff]/;
const UNSAFE_HEADER_CHARACTERS = /[^\t\x20-\x7e\x80-\xff]/g;

/**
 * Headers as procedures see them: names that are valid tokens (lower-cased), values within
 * Latin-1 with control characters replaced, so nothing a client sends can forge a log line or a
 * header downstream.
 */
function sanitiseHeaders(headers: APIGatewayProxyEventV2["headers"]): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined || !HEADER_NAME.test(name)) continue;
    clean[name.toLowerCase()] = UNSAFE_HEADER_CHARACTER.test(value) ? value.replace(UNSAFE_HEADER_CHARACTERS, "?") : value;
  }
  return clean;
}

/** Decoded size of the body, without reading it: base64 is 3 bytes per 4 characters, less padding. */
function bodyBytes(event: APIGatewayProxyEventV2): number {
  if (!event.body) return 0;
  if (!event.isBase64Encoded) return Buffer.byteLength(event.body);
  const padding = event.body.endsWith("==") ? 2 : event.body.endsWith("=") ? 1 : 0;
  return Math.floor((event.body.length * 3) / 4) - padding;
}

/**
 * The whole HTTP surface as one function of an API Gateway v2 event: CORS, the public key routes,
 * health, and the tRPC router. The Lambda handler and the local dev server both call this, so
 * local behaviour is Lambda behaviour.
 */
export function createApiHandler(deps: Deps, http: HttpConfig): ApiHandler {
  const { log } = deps;

  const trpc = createTrpcHttpHandler<typeof appRouter, Context>({
    router: appRouter,
    maxBatchSize: http.maxBatchSize,
    mapError: mapUnavailable,
    onError: ({ error, path, ctx }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") {
        log.error("request.failed", { requestId: ctx?.meta.requestId, path, ...describeError(error.cause) });
      } else if (error.code === "SERVICE_UNAVAILABLE") {
        log.warn("request.unavailable", { requestId: ctx?.meta.requestId, path });
      }
    },
  });

  const health = async (): Promise<APIGatewayProxyStructuredResultV2> => {
    const timed = async (check: () => Promise<unknown>) => {
      const started = performance.now();
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 1500).unref()),
        ]);
        return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
      } catch {
        return { ok: false };
      }
    };
    const [postgres, redis] = await Promise.all([
      timed(() => deps.db.execute(sql`select 1`)),
      timed(() => deps.store.ping()),
    ]);
    const status = postgres.ok && redis.ok ? "ok" : postgres.ok ? "degraded" : "unavailable";
    return json(status === "unavailable" ? 503 : 200, { status, checks: { postgres, redis } }, {
      "cache-control": "no-store",
    });
  };

  const wellKnown = (path: string): APIGatewayProxyStructuredResultV2 | null => {
    const cache = { "cache-control": "public, max-age=300", "access-control-allow-origin": "*" };
    if (path === "/.well-known/jwks.json") return json(200, deps.keys.publicJwks(deps.clock.now()), cache);
    if (path === "/.well-known/openid-configuration") {
      const issuer = deps.config.issuer;
      return json(
        200,
        {
          issuer,
          jwks_uri: `${issuer}/.well-known/jwks.json`,
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: deps.keys.algorithms,
        },
        cache,
      );
    }
    return null;
  };

  const route = async (
    event: APIGatewayProxyEventV2,
    origin: { value: string | null; allowed: boolean },
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath;

    if (method === "OPTIONS") {
      if (!origin.allowed) return { statusCode: 403, headers: {}, body: "" };
      return {
        statusCode: 204,
        headers: {
          "access-control-allow-methods": "GET, POST",
          "access-control-allow-headers": ALLOWED_REQUEST_HEADERS.join(", "),
          "access-control-max-age": "600",
        },
        body: "",
      };
    }
    if (path === "/health" || path.startsWith("/.well-known/")) {
      if (method !== "GET") return json(405, { error: "method_not_allowed" }, { allow: "GET" });
      return path === "/health" ? health() : (wellKnown(path) ?? json(404, { error: "not_found" }));
    }
    if (!path.startsWith(TRPC_PREFIX)) return json(404, { error: "not_found" });

    if (origin.value !== null && !origin.allowed) {
      return trpcStyleError(403, "FORBIDDEN", "Origin not allowed", "ORIGIN_NOT_ALLOWED");
    }
    if (bodyBytes(event) > http.maxBodyBytes) return trpcStyleError(413, "PAYLOAD_TOO_LARGE", "Request body too large");
    // Streamed answers (httpBatchStreamLink) would send their headers before the procedure set
    // its cookies; they are refused plainly rather than answered in a shape that link cannot read.
    if (event.headers?.["trpc-accept"]?.trim().toLowerCase() === "application/jsonl") {
      return trpcStyleError(400, "BAD_REQUEST", "Streamed responses are not served: use httpLink or httpBatchLink", "STREAMING_NOT_SUPPORTED");
    }
    if (method === "POST") {
      const contentType = event.headers?.["content-type"]?.split(";")[0]?.trim().toLowerCase();
      if (contentType !== "application/json") {
        return trpcStyleError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
      }
    } else if (method !== "GET") {
      return trpcStyleError(405, "METHOD_NOT_SUPPORTED", "Method not supported");
    }

    // Whatever route API Gateway matched ($default or /trpc/{proxy+}), the procedure path is what
    // follows /trpc/ (still URL-encoded: it is decoded once, as tRPC does). A GET carries no body.
    const headers = sanitiseHeaders(event.headers);
    const ctx: Context = {
      deps,
      http,
      meta: {
        ip: event.requestContext.http.sourceIp,
        userAgent: headers["user-agent"]?.slice(0, MAX_USER_AGENT) ?? null,
        requestId: event.requestContext.requestId,
      },
      headers: requestHeaders(headers),
      cookies: parseCookies(event.cookies?.join("; ")),
      origin,
      responseHeaders: new ResponseHeaders(),
    };
    const body = method === "POST" && event.body ? (event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body) : undefined;
    const result = await trpc(
      { method, path: path.slice(TRPC_PREFIX.length), query: new URLSearchParams(event.rawQueryString ?? ""), body },
      ctx,
    );

    const responseHeaders: Record<string, string> = {
      ...ctx.responseHeaders.toRecord(),
      "content-type": "application/json",
      "cache-control": "no-store",
      pragma: "no-cache",
    };
    const retryAfter = Math.max(0, ...result.errors.map((e) => (e.cause instanceof PublicError ? (e.cause.data.retryAfterSeconds ?? 0) : 0)));
    if (retryAfter > 0) responseHeaders["retry-after"] = String(retryAfter);
    if (result.errors.some((e) => e.code === "UNAUTHORIZED")) responseHeaders["www-authenticate"] = 'Bearer realm="authlith"';
    if (result.allow) responseHeaders.allow = result.allow;
    return {
      statusCode: result.status,
      headers: responseHeaders,
      body: result.body,
      ...(ctx.responseHeaders.cookies.length ? { cookies: ctx.responseHeaders.cookies } : {}),
    };
  };

  return async (event) => {
    const originHeader = event.headers?.origin ?? null;
    const origin = { value: originHeader, allowed: originHeader !== null && http.allowedOrigins.includes(originHeader) };
    let result: APIGatewayProxyStructuredResultV2;
    try {
      result = await route(event, origin);
    } catch (error) {
      // Only reachable through a bug outside tRPC's own error handling; still never a stack trace.
      log.error("handler.failed", { requestId: event.requestContext?.requestId, ...describeError(error) });
      result = trpcStyleError(500, "INTERNAL_SERVER_ERROR", "Internal server error");
    }
    const headers: Record<string, string> = {
      ...(result.headers as Record<string, string> | undefined),
      "x-request-id": event.requestContext.requestId,
      "x-content-type-options": "nosniff",
    };
    if (origin.allowed) {
      headers["access-control-allow-origin"] = origin.value!;
      headers["access-control-allow-credentials"] = "true";
      headers["access-control-expose-headers"] = "retry-after, x-request-id";
    }
    headers.vary = headers.vary ? `${headers.vary}, origin` : "origin";
    return { ...result, headers };
  };
}
