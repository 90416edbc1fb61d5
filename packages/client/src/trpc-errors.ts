import { TRPCClientError } from "@trpc/client";
import { errorFromResponse, networkError, type AuthClientError } from "./errors.js";

/**
 * Any failure of a tRPC call (authlith's, through `auth.trpc`, or an API of the app's own) as an
 * AuthClientError with its `kind`, `reason`, `retryAfterSeconds` and `fieldErrors`: one way to
 * show errors, whichever client made the call. `signal`: the call's own timeout, if it had one.
 */
export function toAuthClientError(error: unknown, signal?: AbortSignal): AuthClientError {
  if (!(error instanceof TRPCClientError)) return networkError(error);
  const meta = error.meta as { response?: Response; responseJSON?: unknown } | undefined;
  const response = meta?.response;
  if (!response) {
    // No answer: offline, refused, CORS, or this call's timeout.
    const cause = signal?.aborted ? signal.reason : (error.cause ?? error);
    return networkError(cause);
  }
  // This call's own error envelope (a batch's answer holds one per call).
  return errorFromResponse(response.status, error.shape ? { error: error.shape } : meta.responseJSON, response.headers.get("retry-after"));
}
