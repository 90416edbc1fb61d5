import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";

/**
 * An error answered before tRPC runs (oversized body, wrong content type, foreign origin), in the
 * same envelope tRPC uses, so `@trpc/client` turns it into a typed TRPCClientError.
 */
export function trpcStyleError(
  status: number,
  code: TRPC_ERROR_CODE_KEY,
  message: string,
  reason?: string,
): APIGatewayProxyStructuredResultV2 {
  const data = { code, httpStatus: status, ...(reason ? { reason } : {}) };
  return json(status, { error: { message, code: TRPC_ERROR_CODES_BY_KEY[code], data } });
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}
