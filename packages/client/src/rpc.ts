import type { ProcedureTypes } from "@authlith/functions/procedures";
import type { AppRouter } from "@authlith/functions/router";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import { errorFromResponse, networkError } from "./errors.js";

// Types only: the server's router types every call; no server code reaches the bundle.
type Inputs = inferRouterInputs<AppRouter>;
type Outputs = inferRouterOutputs<AppRouter>;
type Kinds = ProcedureTypes<AppRouter>;
export type Namespace = keyof Inputs & keyof Outputs & string;
export type MethodOf<N extends Namespace> = keyof Inputs[N] & keyof Outputs[N] & string;
export type InputOf<N extends Namespace, M extends MethodOf<N>> = Inputs[N][M];
export type OutputOf<N extends Namespace, M extends MethodOf<N>> = Outputs[N][M];
/** "query" or "mutation", as the router declares it: a call with the wrong kind does not compile. */
export type KindOf<N extends Namespace, M extends MethodOf<N>> = `${N}.${M}` extends keyof Kinds ? Kinds[`${N}.${M}`] : never;

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

export type Rpc = <N extends Namespace, M extends MethodOf<N>>(
  kind: KindOf<N, M>,
  namespace: N,
  method: M,
  input: InputOf<N, M>,
  accessToken?: string,
) => Promise<OutputOf<N, M>>;

/**
 * tRPC's HTTP protocol, unbatched, without a transformer (what the server speaks): a query is
 * `GET /trpc/<path>?input=<JSON>`, a mutation `POST /trpc/<path>` with a JSON body; the answer is
 * `{ result: { data } }` or `{ error: { message, data } }`. About 40 lines instead of
 * `@trpc/client`'s links and observables, so the browser bundle stays a few kilobytes.
 */
export function createRpc(options: RpcOptions): Rpc {
  return async (kind, namespace, method, input, accessToken) => {
    const headers: Record<string, string> = { ...options.headers };
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    let url = `${options.url}/trpc/${namespace}.${method}`;
    const init: RequestInit = { headers, credentials: options.credentials };
    if (typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function") {
      init.signal = AbortSignal.timeout(options.timeoutMs);
    }
    if (kind === "query") {
      init.method = "GET";
      if (input !== undefined) url += `?input=${encodeURIComponent(JSON.stringify(input))}`;
    } else {
      init.method = "POST";
      headers["content-type"] = "application/json";
      if (input !== undefined) init.body = JSON.stringify(input);
    }

    let response: Response;
    let text: string;
    try {
      response = await options.fetch(url, init);
      text = await response.text();
    } catch (error) {
      throw networkError(error); // no answer at all, or one cut off
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined; // not JSON (a proxy's error page): judged by its status
    }
    const result = (body as { result?: { data?: unknown } } | undefined)?.result;
    if (response.ok && result) return result.data as OutputOf<typeof namespace, typeof method>;
    throw errorFromResponse(response.status, body, response.headers.get("retry-after"));
  };
}
