import { TRPCClientError } from "@trpc/client";

/** What went wrong, as a value a UI can switch on without parsing messages. */
export type AuthErrorKind =
  | "invalid_credentials"
  | "unauthorized"
  | "rate_limited"
  | "validation"
  | "conflict"
  | "forbidden"
  | "not_found"
  | "unavailable"
  | "network"
  | "unknown";

export class AuthClientError extends Error {
  readonly kind: AuthErrorKind;
  /** HTTP status when the server answered; undefined for network failures. */
  readonly status: number | undefined;
  /** The server's precise reason code (e.g. TOKEN_EXPIRED, INVALID_REFRESH_TOKEN), when given. */
  readonly reason: string | undefined;
  /** Seconds to wait before retrying (rate limits, unavailability). */
  readonly retryAfterSeconds: number | undefined;
  /** Validation messages per input field. */
  readonly fieldErrors: Record<string, string[]>;

  constructor(
    kind: AuthErrorKind,
    message: string,
    details: { status?: number; reason?: string; retryAfterSeconds?: number; fieldErrors?: Record<string, string[]>; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = "AuthClientError";
    this.kind = kind;
    this.status = details.status;
    this.reason = details.reason;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.fieldErrors = details.fieldErrors ?? {};
  }
}

interface ServerErrorData {
  code?: string;
  httpStatus?: number;
  reason?: string;
  retryAfterSeconds?: number;
  fieldErrors?: Record<string, string[]>;
}

const KIND_BY_CODE: Record<string, AuthErrorKind> = {
  UNAUTHORIZED: "unauthorized",
  TOO_MANY_REQUESTS: "rate_limited",
  BAD_REQUEST: "validation",
  PARSE_ERROR: "validation",
  PAYLOAD_TOO_LARGE: "validation",
  CONFLICT: "conflict",
  FORBIDDEN: "forbidden",
  NOT_FOUND: "not_found",
  SERVICE_UNAVAILABLE: "unavailable",
};

/** Turns whatever a call threw into an AuthClientError. */
export function toAuthClientError(error: unknown): AuthClientError {
  if (error instanceof AuthClientError) return error;
  if (error instanceof TRPCClientError) {
    const data = (error.data ?? undefined) as ServerErrorData | undefined;
    if (!data?.code) {
      // No tRPC error body: the request never got a well-formed answer.
      return new AuthClientError("network", "Network error", { cause: error });
    }
    const kind = data.reason === "INVALID_CREDENTIALS" ? "invalid_credentials" : (KIND_BY_CODE[data.code] ?? "unknown");
    return new AuthClientError(kind, error.message, {
      status: data.httpStatus,
      reason: data.reason,
      retryAfterSeconds: data.retryAfterSeconds,
      fieldErrors: data.fieldErrors,
      cause: error,
    });
  }
  return new AuthClientError("unknown", error instanceof Error ? error.message : "Unknown error", { cause: error });
}
