import { TRPCClientError, type HTTPHeaders, type Operation, type TRPCLink } from "@trpc/client";
import type { AnyRouter } from "@trpc/server";
import { observable, type Unsubscribable } from "@trpc/server/observable";

/** The operation context key under which a call carries its access token to the HTTP link. */
export const TOKEN_CONTEXT = "authlithAccessToken";

/**
 * The `headers` of a terminating link (httpLink or httpBatchLink) after `authLink`: the access
 * token the operation (or the batch's first operation) carries, as `Authorization: Bearer`.
 */
export function authHeaders(opts: { op: Operation } | { opList: readonly Operation[] }): HTTPHeaders {
  const op = "op" in opts ? opts.op : opts.opList[0];
  const token = op?.context[TOKEN_CONTEXT];
  return typeof token === "string" ? { authorization: `Bearer ${token}` } : {};
}

/** What `authLink` needs of the client: a token, and a way to report one that was refused. */
export interface AccessTokenSource {
  getAccessToken(options?: { rejected?: string; reason?: string }): Promise<string | null>;
}

const isUnauthorized = (error: unknown): boolean => {
  if (!(error instanceof TRPCClientError)) return false;
  const data = error.data as { httpStatus?: unknown; code?: unknown } | undefined;
  const response = (error.meta as { response?: { status?: number } } | undefined)?.response;
  return data?.httpStatus === 401 || data?.code === "UNAUTHORIZED" || response?.status === 401;
};

/**
 * A tRPC link that signs calls in with the user's access token, for any router: authlith's
 * (`auth.trpc` uses it) or an app's own tRPC API on another URL. Each call waits for a usable
 * token (one shared refresh when it is due); after an UNAUTHORIZED answer the call is retried
 * once, with a new token only if the refused one is still the current one
 * (`getAccessToken({ rejected })`), so many refusals at once cost one refresh.
 *
 * The token travels in the operation's context; the terminating link puts it in the header:
 *
 *   links: [authLink(auth), httpBatchLink({ url, headers: authHeaders })]
 *
 * Without a session a call goes out without a token (public procedures still work).
 */
export function authLink<TRouter extends AnyRouter = AnyRouter>(auth: AccessTokenSource): TRPCLink<TRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        let subscription: Unsubscribable | undefined;
        let stopped = false;
        const attempt = (token: string | null, retried: boolean) => {
          if (stopped) return;
          const context = { ...op.context, [TOKEN_CONTEXT]: token ?? undefined };
          subscription = next({ ...op, context }).subscribe({
            next: (value) => observer.next(value),
            complete: () => observer.complete(),
            error: (error) => {
              if (retried || !token || !isUnauthorized(error)) return observer.error(error);
              const reason = (error.data as { reason?: unknown } | undefined)?.reason;
              auth.getAccessToken({ rejected: token, ...(typeof reason === "string" ? { reason } : {}) }).then(
                (renewed) => (renewed && renewed !== token ? attempt(renewed, true) : observer.error(error)),
                () => observer.error(error),
              );
            },
          });
        };
        auth.getAccessToken().then(
          (token) => attempt(token, false),
          (error: unknown) => observer.error(TRPCClientError.from(error instanceof Error ? error : new Error(String(error)))),
        );
        return () => {
          stopped = true;
          subscription?.unsubscribe();
        };
      });
}
