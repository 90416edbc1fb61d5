/** What went wrong, as a value a UI can switch on without parsing messages. */
export type AuthErrorKind =
  /** Wrong email or password (the same answer for unknown emails and disabled accounts). */
  | "invalid_credentials"
  /** Not signed in, or the session ended (see `reason`: SESSION_REVOKED, NOT_SIGNED_IN, ...). */
  | "unauthorized"
  /** Too many attempts: wait `retryAfterSeconds`. */
  | "rate_limited"
  /** The input was refused: `fieldErrors` says why, per field. */
  | "validation"
  /** E.g. an account with this email already exists. */
  | "conflict"
  /** E.g. this page's origin is not allowed to use the refresh cookie (ORIGIN_NOT_ALLOWED). */
  | "forbidden"
  | "not_found"
  /** The service answered that it is temporarily unavailable: retry after `retryAfterSeconds`. */
  | "unavailable"
  /** No answer: offline, DNS, CORS refusal, connection reset, or `reason` TIMEOUT. */
  | "network"
  /** The user dismissed the browser's passkey prompt, or let it time out (reason PASSKEY_CANCELLED). */
  | "cancelled"
  /**
   * The browser could not run a passkey ceremony: `reason` PASSKEY_UNSUPPORTED (no WebAuthn
   * here), PASSKEY_ALREADY_REGISTERED (this authenticator already holds one for the account),
   * PASSKEY_NOT_OFFERED (the sign-in offers no passkey), or PASSKEY_FAILED (see `cause`).
   */
  | "passkey"
  | "unknown";

const BRAND = Symbol.for("authlith.AuthClientError");

/** Every failure the client reports. Switch on `kind`; `reason` is the server's precise code. */
export class AuthClientError extends Error {
  readonly kind: AuthErrorKind;
  /** HTTP status when the server answered; undefined when it did not (network, not signed in). */
  readonly status: number | undefined;
  /** The server's stable reason code (e.g. TOKEN_EXPIRED, INVALID_REFRESH_TOKEN), when given. */
  readonly reason: string | undefined;
  /** Seconds to wait before retrying (rate limits, unavailability). */
  readonly retryAfterSeconds: number | undefined;
  /** Validation messages per input field, e.g. `{ email: ["Invalid email address"] }`. */
  readonly fieldErrors: Record<string, string[]>;

  constructor(
    kind: AuthErrorKind,
    message: string,
    details: {
      status?: number;
      reason?: string;
      retryAfterSeconds?: number;
      fieldErrors?: Record<string, string[]>;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = "AuthClientError";
    this.kind = kind;
    this.status = details.status;
    this.reason = details.reason;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.fieldErrors = details.fieldErrors ?? {};
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** Like `instanceof`, but also true across two copies of this package in one bundle. */
  static is(error: unknown, kind?: AuthErrorKind): error is AuthClientError {
    return (
      typeof error === "object" &&
      error !== null &&
      (error as Record<symbol, unknown>)[BRAND] === true &&
      (kind === undefined || (error as AuthClientError).kind === kind)
    );
  }
}

/** The `data` of a tRPC error envelope, as authlith's error formatter fills it. */
interface ServerErrorData {
  code?: unknown;
  httpStatus?: unknown;
  reason?: unknown;
  retryAfterSeconds?: unknown;
  fieldErrors?: unknown;
}

const KIND_BY_CODE: Record<string, AuthErrorKind> = {
  UNAUTHORIZED: "unauthorized",
  TOO_MANY_REQUESTS: "rate_limited",
  BAD_REQUEST: "validation",
  PARSE_ERROR: "validation",
  PAYLOAD_TOO_LARGE: "validation",
  UNSUPPORTED_MEDIA_TYPE: "validation",
  CONFLICT: "conflict",
  FORBIDDEN: "forbidden",
  NOT_FOUND: "not_found",
  SERVICE_UNAVAILABLE: "unavailable",
  GATEWAY_TIMEOUT: "unavailable",
  BAD_GATEWAY: "unavailable",
};

/** For answers without a tRPC envelope (API Gateway errors, proxies): judged by status alone. */
function kindOfStatus(status: number): AuthErrorKind {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "rate_limited";
  if (status === 400 || status === 413 || status === 415) return "validation";
  if (status === 502 || status === 503 || status === 504) return "unavailable";
  return "unknown";
}

const isStringArrayRecord = (value: unknown): value is Record<string, string[]> =>
  typeof value === "object" &&
  value !== null &&
  Object.values(value).every((v) => Array.isArray(v) && v.every((m) => typeof m === "string"));

/** `Retry-After` as seconds: a number of seconds or an HTTP date. */
function parseRetryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Turns an error answer (parsed body, if any) into an AuthClientError. */
export function errorFromResponse(status: number, body: unknown, retryAfterHeader: string | null): AuthClientError {
  const envelope = (body as { error?: { message?: unknown; data?: ServerErrorData } } | undefined)?.error;
  const data = envelope?.data;
  const code = typeof data?.code === "string" ? data.code : undefined;
  const reason = typeof data?.reason === "string" ? data.reason : undefined;
  const kind = reason === "INVALID_CREDENTIALS" ? "invalid_credentials" : code ? (KIND_BY_CODE[code] ?? kindOfStatus(status)) : kindOfStatus(status);
  const retryAfterSeconds =
    typeof data?.retryAfterSeconds === "number" ? data.retryAfterSeconds : parseRetryAfter(retryAfterHeader);
  const message = typeof envelope?.message === "string" ? envelope.message : `Request failed with status ${status}`;
  return new AuthClientError(kind, message, {
    status,
    ...(reason ? { reason } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    ...(isStringArrayRecord(data?.fieldErrors) ? { fieldErrors: data.fieldErrors } : {}),
  });
}

/** A request that got no answer: `fetch` threw (offline, refused, CORS) or the timeout fired. */
export function networkError(cause: unknown): AuthClientError {
  const timedOut = (cause as { name?: unknown } | null)?.name === "TimeoutError";
  return new AuthClientError("network", timedOut ? "The request timed out" : "Network error", {
    cause,
    ...(timedOut ? { reason: "TIMEOUT" } : {}),
  });
}

export const notSignedIn = (): AuthClientError =>
  new AuthClientError("unauthorized", "Not signed in", { reason: "NOT_SIGNED_IN" });
