import {
  isServiceUnavailable,
  ServiceUnavailableError,
  type AccessTokenClaims,
  type Deps,
  type RequestMeta,
} from "@authlith/core";
import { initTRPC, TRPCError, type TRPC_ERROR_CODE_KEY, type TRPC_ERROR_CODE_NUMBER, type TRPCErrorFormatter } from "@trpc/server";
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import * as z from "zod/mini";
import { $ZodError } from "zod/v4/core";
import "@authlith/core/zod";
import type { HttpConfig } from "./config";
import type { RequestHeaders, ResponseHeaders } from "./http/headers";

/** Per-request context: dependencies, who is asking, and the response headers procedures may set. */
export interface Context {
  deps: Deps;
  http: HttpConfig;
  meta: RequestMeta;
  headers: RequestHeaders;
  cookies: Map<string, string>;
  /** `Origin` of the request when sent, and whether it is an allowed one. */
  origin: { value: string | null; allowed: boolean };
  /** Response headers a procedure sets (Set-Cookie). */
  responseHeaders: ResponseHeaders;
}

/** Details a client may see, attached to a TRPCError as its cause. Anything else stays server-side. */
export class PublicError extends Error {
  readonly data: PublicErrorData;
  constructor(message: string, data: PublicErrorData = {}) {
    super(message);
    this.name = "PublicError";
    this.data = data;
  }
}

export interface PublicErrorData {
  /** A stable code more precise than the tRPC code, e.g. TOKEN_EXPIRED, INVALID_CREDENTIALS. */
  reason?: string;
  retryAfterSeconds?: number;
  fieldErrors?: Record<string, string[]>;
  /** Second-factor codes the sign-in's challenge still takes after a wrong one (0: sign in again). */
  attemptsLeft?: number;
}

export function publicError(code: TRPC_ERROR_CODE_KEY, message: string, data?: PublicErrorData): TRPCError {
  return new TRPCError({ code, message, cause: new PublicError(message, data) });
}

const GENERIC_MESSAGES: Partial<Record<TRPC_ERROR_CODE_KEY, string>> = {
  PARSE_ERROR: "Malformed request body",
  BAD_REQUEST: "Invalid request",
  NOT_FOUND: "Not found",
  METHOD_NOT_SUPPORTED: "Method not supported",
  UNSUPPORTED_MEDIA_TYPE: "Unsupported content type",
  PAYLOAD_TOO_LARGE: "Request body too large",
  SERVICE_UNAVAILABLE: "Service temporarily unavailable",
  INTERNAL_SERVER_ERROR: "Internal server error",
};

/**
 * Field errors keyed by the top-level input field (`_input` for the input as a whole). An unknown
 * key is reported against its own name, so a client sees which field it should not have sent.
 */
export function fieldErrorsOf(error: $ZodError): Record<string, string[]> {
  // Keys come from the client ("__proto__" included): a null-prototype object, bounded in size.
  const fields: Record<string, string[]> = Object.create(null);
  const add = (field: string, message: string) => {
    const key = field.slice(0, 64);
    if (Object.keys(fields).length >= 20 && !(key in fields)) return;
    (fields[key] ??= []).push(message);
  };
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
      for (const key of issue.keys) add(key, "Unknown field");
    } else {
      add(issue.path.length ? String(issue.path[0]) : "_input", issue.message);
    }
  }
  return fields;
}

/** Seconds a client should wait before retrying, when the error says (Retry-After). */
export function retryAfterSeconds(error: TRPCError): number {
  if (error.cause instanceof PublicError) return error.cause.data.retryAfterSeconds ?? 0;
  return isUnavailable(error) ? UNAVAILABLE_RETRY_AFTER_SECONDS : 0;
}

/** Postgres or Redis not answering (a ServiceUnavailableError thrown inside a procedure). */
export function isUnavailable(error: TRPCError): boolean {
  return error.code === "INTERNAL_SERVER_ERROR" && isServiceUnavailable(error.cause);
}

const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/**
 * The only place errors are shaped for the wire. Messages the code wrote for clients
 * (PublicError) pass through; validation errors carry zod's field errors; a dependency that does
 * not answer is a 503 with Retry-After, not a 500 (docs/security.md §32); everything else
 * gets a fixed message per code, so no driver message, SQL, path or stack can reach a client.
 * The HTTP status is read from `data.httpStatus`, by tRPC's adapter and the fast path alike.
 */
const errorFormatter: TRPCErrorFormatter<Context, WireErrorShape> = ({ shape, error }) => {
  if (isUnavailable(error)) {
    return {
      code: TRPC_ERROR_CODES_BY_KEY.SERVICE_UNAVAILABLE,
      message: GENERIC_MESSAGES.SERVICE_UNAVAILABLE!,
      data: { code: "SERVICE_UNAVAILABLE", httpStatus: 503, path: shape.data.path, retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS },
    };
  }
  const cause = error.cause;
  let message = GENERIC_MESSAGES[error.code] ?? "Request failed";
  let extra: PublicErrorData = {};
  if (cause instanceof PublicError) {
    message = cause.message;
    extra = cause.data;
  } else if (cause instanceof $ZodError) {
    message = "Invalid input";
    extra = { fieldErrors: fieldErrorsOf(cause) };
  } else if (cause instanceof SyntaxError) {
    message = "Malformed JSON";
  }
  return {
    code: shape.code,
    message,
    data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path, ...extra },
  };
};

/** What a client receives as `error` (TRPCClientError's `shape`). */
export interface WireErrorShape {
  code: TRPC_ERROR_CODE_NUMBER;
  message: string;
  data: PublicErrorData & { code: TRPC_ERROR_CODE_KEY; httpStatus: number; path?: string };
}

/**
 * The root options, shared with the fast HTTP path (http/trpc-fast.ts), which shapes errors with
 * tRPC's public `getErrorShape` and the same formatter. No transformer: the wire is plain JSON,
 * which the fast path relies on (`transformer?: never` makes adding one a type error here).
 */
export const rootOptions = { isDev: false, errorFormatter } satisfies { isDev: boolean; errorFormatter: unknown; transformer?: never; pathSeparator?: never };

const t = initTRPC.context<Context>().create(rootOptions);

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * No call outlives the request deadline (`http.requestTimeoutMs`): past it the caller gets 503 with
 * Retry-After instead of waiting on a dependency that does not answer (a network partition holds
 * a query on a connection that looks alive) or on a queue of hashes in a flood, and before the
 * Lambda's own timeout, which API Gateway answers with a 500. The work itself is not cancelled:
 * what it commits later stays committed, which is why a refresh retried after a 503 inside the
 * grace window gets the same token (bench/faults proves no session is lost that way).
 */
const deadline = t.middleware(async ({ ctx, next }) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ServiceUnavailableError("deadline")), ctx.http.requestTimeoutMs);
  });
  try {
    return await Promise.race([next(), expired]);
  } finally {
    clearTimeout(timer);
  }
});

export const publicProcedure = t.procedure.use(deadline);

/** Reads `Authorization: Bearer <jwt>`; null when absent or not a bearer credential. */
export function bearerToken(headers: RequestHeaders): string | null {
  const value = headers.get("authorization");
  if (!value) return null;
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)$/i.exec(value.trim());
  return match ? match[1]! : null;
}

export type AuthFailureReason = "MISSING_TOKEN" | "INVALID_TOKEN" | "TOKEN_EXPIRED" | "SESSION_REVOKED";

/** Verifies the access token and that its session is not revoked. */
export async function authenticate(ctx: Context): Promise<{ ok: true; claims: AccessTokenClaims } | { ok: false; reason: AuthFailureReason }> {
  const token = bearerToken(ctx.headers);
  if (!token) return { ok: false, reason: "MISSING_TOKEN" };
  const verified = await ctx.deps.accessTokens.verify(token, ctx.deps.clock.now());
  if (!verified.ok) return { ok: false, reason: verified.code };
  if (await ctx.deps.revocations.isRevoked(verified.value.sessionId)) return { ok: false, reason: "SESSION_REVOKED" };
  return { ok: true, claims: verified.value };
}

/** Procedures that need a signed-in user: a valid access token of a session that is not revoked. */
export const authedProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const result = await authenticate(ctx);
  if (!result.ok) throw publicError("UNAUTHORIZED", "Authentication required", { reason: result.reason });
  return next({ ctx: { auth: result.claims } });
});
