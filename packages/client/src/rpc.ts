import type { ProcedureTypes } from "@authlith/functions/procedures";
import { createTRPCUntypedClient, httpLink } from "@trpc/client";
import { authHeaders, TOKEN_CONTEXT } from "./link.js";
import { toAuthClientError } from "./trpc-errors.js";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "./router.js";

type Inputs = inferRouterInputs<AppRouter>;
type Outputs = inferRouterOutputs<AppRouter>;
type Kinds = ProcedureTypes<AppRouter>;
/** A procedure's dotted path, nested routers included: "auth.login", "mfa.totp.enroll". */
export type ProcedurePath = keyof Kinds & string;
/** The member of `T` at a dotted path. */
type At<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? At<T[Head], Rest>
    : never
  : P extends keyof T
    ? T[P]
    : never;
export type InputOf<P extends ProcedurePath> = At<Inputs, P>;
export type OutputOf<P extends ProcedurePath> = At<Outputs, P>;
/** "query" or "mutation", as the router declares it: a call with the wrong kind does not compile. */
export type KindOf<P extends ProcedurePath> = Kinds[P];

export interface RpcOptions {
  /** Base URL of the service, without a trailing slash. */
  url: string;
  fetch: typeof globalThis.fetch;
  /** "include" for the cookie transport (the refresh cookie), "omit" otherwise. */
  credentials: RequestCredentials;
  /** Sent with every request. */
  headers: Record<string, string>;
  timeoutMs: number;
}

export type Rpc = <P extends ProcedurePath>(kind: KindOf<P>, path: P, input: InputOf<P>, accessToken?: string) => Promise<OutputOf<P>>;

/**
 * `fetch` for the tRPC links: credentials as the transport needs, and an answer that is not JSON
 * (an API Gateway or proxy error page) turned into a tRPC error envelope with its status, so every
 * failure reaches the caller typed, judged by its status.
 */
export function linkFetch(fetchImpl: typeof globalThis.fetch, credentials: RequestCredentials): typeof globalThis.fetch {
  return async (input, init) => {
    const response = await fetchImpl(input, { ...init, credentials });
    const text = await response.text();
    let json = true;
    try {
      JSON.parse(text);
    } catch {
      json = false;
    }
    const body = json
      ? text
      : JSON.stringify({ error: { message: `Request failed with status ${response.status}`, code: -32603, data: { httpStatus: response.status } } });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** The HTTP link every authlith call goes through (this client's own and `auth.trpc`'s). */
export function authlithHttpLink(options: RpcOptions) {
  return httpLink({
    url: `${options.url}/trpc`,
    fetch: linkFetch(options.fetch, options.credentials),
    headers: (opts) => ({ ...options.headers, ...authHeaders(opts) }),
  });
}

/**
 * This client's calls, through `@trpc/client` (an untyped client over the HTTP link; the types
 * come from the server's router, above): a query is `GET /trpc/<path>?input=<JSON>`, a mutation
 * `POST /trpc/<path>`, each in its own request (the refresh cookie's answers must not be batched
 * with other calls), each with its own timeout.
 */
export function createRpc(options: RpcOptions): Rpc {
  const client = createTRPCUntypedClient<AppRouter>({ links: [authlithHttpLink(options)] });
  return async (kind, path, input, accessToken) => {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const opts = { signal, context: accessToken ? { [TOKEN_CONTEXT]: accessToken } : {} };
    // A mutation always has a body (`{}` when it takes nothing): tRPC 11.22.1's own adapter,
    // the server's fallback transport, refuses one without (decision 0003).
    const body = kind === "mutation" && input === undefined ? {} : input;
    try {
      return (await (kind === "query" ? client.query(path, input, opts) : client.mutation(path, body, opts))) as OutputOf<typeof path>;
    } catch (error) {
      throw toAuthClientError(error, signal);
    }
  };
}
