import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { TRANSPORT_HEADER } from "../transport";

/** `Origin` of the request when sent, and whether it is one of the configured origins. */
export interface OriginCheck {
  value: string | null;
  allowed: boolean;
}

const ALLOWED_REQUEST_HEADERS = ["content-type", "authorization", "x-trpc-source", TRANSPORT_HEADER];

export function checkOrigin(event: APIGatewayProxyEventV2, allowedOrigins: readonly string[]): OriginCheck {
  const value = event.headers?.origin ?? null;
  return { value, allowed: value !== null && allowedOrigins.includes(value) };
}

/** A CORS preflight: granted to configured origins only (a foreign one gets a bare 403). */
export function preflight(origin: OriginCheck): APIGatewayProxyStructuredResultV2 {
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

/**
 * Headers every answer carries: the request id, nosniff, and for a configured origin the CORS
 * grant with credentials (the refresh cookie). `Vary: Origin` always, since the answer depends on it.
 */
export function withCommonHeaders(
  result: APIGatewayProxyStructuredResultV2,
  requestId: string,
  origin: OriginCheck,
): APIGatewayProxyStructuredResultV2 {
  const headers: Record<string, string> = {
    ...(result.headers as Record<string, string> | undefined),
    "x-request-id": requestId,
    "x-content-type-options": "nosniff",
  };
  if (origin.allowed) {
    headers["access-control-allow-origin"] = origin.value!;
    headers["access-control-allow-credentials"] = "true";
    headers["access-control-expose-headers"] = "retry-after, x-request-id";
  }
  headers.vary = headers.vary ? `${headers.vary}, origin` : "origin";
  return { ...result, headers };
}
