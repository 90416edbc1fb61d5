import type { TRPCError, TRPCProcedureType } from "@trpc/server";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { procedureTypeOf } from "../procedures";
import { appRouter } from "../router";
import { retryAfterSeconds, rootOptions, type Context } from "../trpc";
import { createFastTrpc } from "./trpc-fast";

/** One tRPC request, checked by the dispatcher (origin, size, method, content type). */
export interface TrpcCall {
  event: APIGatewayProxyEventV2;
  method: "GET" | "POST";
  /** The procedure path(s) after `/trpc/`, still URL-encoded. */
  path: string;
  /** The request headers, sanitised (what procedures see). */
  headers: Record<string, string>;
}

export type TrpcTransport = (call: TrpcCall, ctx: Context) => Promise<APIGatewayProxyStructuredResultV2>;

export interface TrpcTransportOptions {
  maxBatchSize: number;
  onError(info: { error: TRPCError; path: string | undefined; type: TRPCProcedureType | "unknown"; ctx: Context | undefined }): void;
  /** `ctx` is undefined when the request failed before its context was made (tRPC's adapter). */
  responseHeaders(errors: readonly TRPCError[], ctx: Context | undefined): { headers: Record<string, string>; cookies: string[] };
}

/**
 * Headers of every tRPC answer, whichever transport serves it: never cached, the cookies
 * procedures set, Retry-After when a call was refused for a while, WWW-Authenticate when one
 * needed a token (RFC 6750).
 */
export function trpcResponseHeaders(errors: readonly TRPCError[], ctx: Context | undefined): { headers: Record<string, string>; cookies: string[] } {
  const headers: Record<string, string> = { ...ctx?.responseHeaders.toRecord(), "cache-control": "no-store", pragma: "no-cache" };
  const retryAfter = Math.max(0, ...errors.map(retryAfterSeconds));
  if (retryAfter > 0) headers["retry-after"] = String(retryAfter);
  if (errors.some((error) => error.code === "UNAUTHORIZED")) headers["www-authenticate"] = 'Bearer realm="authlith"';
  return { headers, cookies: ctx?.responseHeaders.cookies ?? [] };
}

/** The fast path (http/trpc-fast.ts) as a transport. */
export function createFastTransport(options: TrpcTransportOptions): TrpcTransport {
  const errorConfig = {
    ...rootOptions,
    // tRPC's defaults for what rootOptions leaves out; no transformer (plain JSON).
    transformer: { input: { serialize: identity, deserialize: identity }, output: { serialize: identity, deserialize: identity } },
    pathSeparator: "." as const,
    allowOutsideOfServer: false,
    isServer: true,
    $types: undefined as never,
  };
  const trpc = createFastTrpc<Context>({ router: appRouter, typeOf: procedureTypeOf, errorConfig, maxBatchSize: options.maxBatchSize, onError: options.onError });
  return async ({ event, method, path }, ctx) => {
    const body = method === "POST" && event.body ? (event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body) : undefined;
    const result = await trpc({ method, path, query: new URLSearchParams(event.rawQueryString ?? ""), body }, ctx);
    const { headers, cookies } = options.responseHeaders(result.errors, ctx);
    return {
      statusCode: result.status,
      // As tRPC's adapter answers: the answer's shape depends on the trpc-accept and accept headers.
      headers: { ...headers, "content-type": "application/json", vary: "trpc-accept, accept", ...(result.allow ? { allow: result.allow } : {}) },
      body: result.body,
      ...(cookies.length ? { cookies } : {}),
    };
  };
}

const identity = <T>(value: T): T => value;

/** The transport configured: the fast path, or tRPC's own adapter (imported only then). */
export async function createTransport(adapter: "fast" | "official", options: TrpcTransportOptions): Promise<TrpcTransport> {
  if (adapter === "fast") return createFastTransport(options);
  const { createOfficialTransport } = await import("./trpc-official");
  return createOfficialTransport(options);
}
