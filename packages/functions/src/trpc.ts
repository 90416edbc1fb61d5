import {
  isServiceUnavailable,
  type AccessTokenClaims,
  type Deps,
  type RequestMeta,
} from "@authlith/core";
import { initTRPC, TRPCError, type TRPC_ERROR_CODE_KEY } from "@trpc/server";
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

const t = initTRPC.context<Context>().create({
  isDev: false,
  /**
   * The only place errors are shaped for the wire. Messages the code wrote for clients
   * (PublicError) pass through; validation errors carry zod's field errors; everything else gets
   * a fixed message per code, so no driver message, SQL, path or stack can reach a client.
   */
  errorFormatter({ shape, error }) {
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
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * Postgres or Redis not answering is a 503 with Retry-After, not a 500 (SECURITY 32). Applied by
 * the HTTP handler to every call's error, rather than as a middleware: each middleware level
 * costs tRPC two copies of the call's options, on every call.
 */
export function mapUnavailable(error: TRPCError): TRPCError {
  if (error.code === "INTERNAL_SERVER_ERROR" && isServiceUnavailable(error.cause)) {
    return publicError("SERVICE_UNAVAILABLE", "Service temporarily unavailable", { retryAfterSeconds: 2 });
  }
  return error;
}

export const publicProcedure = t.procedure;

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
export const authedProcedure = t.procedure.use(async ({ ctx, next }) => {
  const result = await authenticate(ctx);
  if (!result.ok) throw publicError("UNAUTHORIZED", "Authentication required", { reason: result.reason });
  return next({ ctx: { auth: result.claims } });
});
