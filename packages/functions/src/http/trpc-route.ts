import { describeError, type Deps } from "@authlith/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { HttpConfig } from "../config";
import { isUnavailable, type Context } from "../trpc";
import type { OriginCheck } from "./cors";
import { parseCookies } from "./cookies";
import { requestHeaders, ResponseHeaders } from "./headers";
import { trpcStyleError } from "./responses";
import { createTransport, trpcResponseHeaders, type TrpcTransport, type TrpcTransportOptions } from "./trpc-transport";

const MAX_USER_AGENT = 512;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UNSAFE_HEADER_CHARACTER = /[^\t\x20-\x7e\x80-\xff]/;
const UNSAFE_HEADER_CHARACTERS = /[^\t\x20-\x7e\x80-\xff]/g;

/**
 * Headers as procedures see them: names that are valid tokens (lower-cased), values within
 * Latin-1 with control characters replaced, so nothing a client sends can forge a log line or a
 * header downstream.
 */
export function sanitiseHeaders(headers: APIGatewayProxyEventV2["headers"]): Record<string, string> {
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
 * `/trpc/*`: the checks every tRPC request passes first (origin, size, streaming, method and
 * content type), the request context, then the configured transport.
 */
export function createTrpcRoute(deps: Deps, http: HttpConfig) {
  const { log } = deps;
  const options: TrpcTransportOptions = {
    maxBatchSize: http.maxBatchSize,
    responseHeaders: trpcResponseHeaders,
    onError: ({ error, path, ctx }) => {
      if (isUnavailable(error)) log.warn("request.unavailable", { requestId: ctx?.meta.requestId, path });
      else if (error.code === "INTERNAL_SERVER_ERROR") log.error("request.failed", { requestId: ctx?.meta.requestId, path, ...describeError(error.cause) });
    },
  };
  let transport: Promise<TrpcTransport> | undefined;

  return async (event: APIGatewayProxyEventV2, method: string, path: string, origin: OriginCheck): Promise<APIGatewayProxyStructuredResultV2> => {
    if (origin.value !== null && !origin.allowed) return trpcStyleError(403, "FORBIDDEN", "Origin not allowed", "ORIGIN_NOT_ALLOWED");
    if (bodyBytes(event) > http.maxBodyBytes) return trpcStyleError(413, "PAYLOAD_TOO_LARGE", "Request body too large");
    // Streamed answers (httpBatchStreamLink) would send their headers before the procedure set
    // its cookies; they are refused plainly rather than answered in a shape that link cannot read.
    if (event.headers?.["trpc-accept"]?.trim().toLowerCase() === "application/jsonl") {
      return trpcStyleError(400, "BAD_REQUEST", "Streamed responses are not served: use httpLink or httpBatchLink", "STREAMING_NOT_SUPPORTED");
    }
    if (method === "POST") {
      const contentType = event.headers?.["content-type"]?.split(";")[0]?.trim().toLowerCase();
      if (contentType !== "application/json") return trpcStyleError(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
    } else if (method !== "GET") {
      return trpcStyleError(405, "METHOD_NOT_SUPPORTED", "Method not supported");
    }

    const headers = sanitiseHeaders(event.headers);
    const ctx: Context = {
      deps,
      http,
      meta: { ip: event.requestContext.http.sourceIp, userAgent: headers["user-agent"]?.slice(0, MAX_USER_AGENT) ?? null, requestId: event.requestContext.requestId },
      headers: requestHeaders(headers),
      cookies: parseCookies(event.cookies?.join("; ")),
      origin,
      responseHeaders: new ResponseHeaders(),
    };
    transport ??= createTransport(http.trpcAdapter, options);
    return (await transport)({ event, method, path, headers }, ctx);
  };
}
