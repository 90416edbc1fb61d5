import { createTRPCClient, httpLink } from "@trpc/client";
import type { AppRouter } from "@authlith/functions/router";
import type { inferRouterOutputs } from "@trpc/server";
import { AuthClientError, toAuthClientError } from "./errors";

export { AuthClientError, type AuthErrorKind } from "./errors";
export type { AppRouter };

type Outputs = inferRouterOutputs<AppRouter>;
export type TokenResponse = Outputs["auth"]["login"];
export type User = TokenResponse["user"];
export type Me = Outputs["auth"]["me"];
export type SessionInfo = Outputs["session"]["list"]["sessions"][number];

/**
 * Where the token transport keeps the refresh token (Node, React Native, servers). Browsers use
 * the cookie transport and never see a refresh token.
 */
export interface TokenStorage {
  get(): string | null | Promise<string | null>;
  set(token: string | null): void | Promise<void>;
}

export const memoryStorage = (): TokenStorage => {
  let value: string | null = null;
  return { get: () => value, set: (token) => void (value = token) };
};

export type SessionEvent =
  | { type: "signed_in"; user: User }
  | { type: "refreshed"; user: User }
  | { type: "signed_out"; reason: "logout" | "expired" | "revoked" };

export interface AuthClientOptions {
  /** Base URL of the authlith service, e.g. https://auth.example.com. */
  url: string;
  /** "cookie" (default in browsers) keeps the refresh token in an HttpOnly cookie; "token" (default elsewhere) in `storage`. */
  transport?: "cookie" | "token";
  /** Token transport only: where the refresh token is kept. Default: memory. */
  storage?: TokenStorage;
  /** Refresh this many seconds before the access token expires. Default 60. */
  refreshMarginSeconds?: number;
  fetch?: typeof globalThis.fetch;
}

const isBrowser = () => typeof window !== "undefined" && typeof document !== "undefined";

/**
 * The client a frontend imports. It keeps the access token in memory, attaches it, refreshes it
 * shortly before it expires and once on UNAUTHORIZED (retrying the call once), and shares one
 * refresh between concurrent calls.
 */
export function createAuthClient(options: AuthClientOptions) {
  const transport = options.transport ?? (isBrowser() ? "cookie" : "token");
  const storage = options.storage ?? memoryStorage();
  const marginMs = (options.refreshMarginSeconds ?? 60) * 1000;
  const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const listeners = new Set<(event: SessionEvent) => void>();

  let access: { token: string; expiresAt: number } | null = null;
  let refreshing: Promise<TokenResponse | null> | null = null;

  const trpc = createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${options.url.replace(/\/+$/, "")}/trpc`,
        fetch: (url, init) => baseFetch(url, { ...(init as RequestInit), credentials: transport === "cookie" ? "include" : "omit" }),
        headers: ({ op }) => {
          const headers: Record<string, string> = {};
          if (transport === "token") headers["x-authlith-transport"] = "token";
          const token = (op.context as { accessToken?: string }).accessToken;
          if (token) headers.authorization = `Bearer ${token}`;
          return headers;
        },
      }),
    ],
  });

  const emit = (event: SessionEvent) => {
    for (const listener of listeners) listener(event);
  };

  async function accept(result: TokenResponse, event: "signed_in" | "refreshed") {
    access = { token: result.accessToken, expiresAt: Date.parse(result.accessTokenExpiresAt) };
    if (transport === "token" && result.refreshToken) await storage.set(result.refreshToken);
    emit({ type: event, user: result.user });
    return result;
  }

  async function forget(reason: "logout" | "expired" | "revoked") {
    const wasSignedIn = access !== null;
    access = null;
    if (transport === "token") await storage.set(null);
    if (wasSignedIn || reason === "logout") emit({ type: "signed_out", reason });
  }

  /** One refresh at a time: concurrent callers share it. Null when there is no session. */
  function refresh(): Promise<TokenResponse | null> {
    refreshing ??= (async () => {
      try {
        const refreshToken = transport === "token" ? await storage.get() : undefined;
        if (transport === "token" && !refreshToken) return null;
        const result = await trpc.auth.refresh.mutate(refreshToken ? { refreshToken } : undefined);
        return await accept(result, "refreshed");
      } catch (error) {
        const failure = toAuthClientError(error);
        if (failure.kind === "unauthorized" || failure.kind === "forbidden") {
          await forget("expired");
          return null;
        }
        throw failure;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function accessToken(): Promise<string | null> {
    if (access && access.expiresAt - marginMs > Date.now()) return access.token;
    return (await refresh())?.accessToken ?? null;
  }

  /** Runs an authenticated call; on UNAUTHORIZED refreshes once and retries once. */
  async function authed<T>(call: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await accessToken();
    if (!token) throw new AuthClientError("unauthorized", "Not signed in", { status: 401, reason: "NOT_SIGNED_IN" });
    try {
      return await call(token);
    } catch (error) {
      const failure = toAuthClientError(error);
      if (failure.kind !== "unauthorized") throw failure;
      if (access?.token === token) access = null;
      const fresh = await accessToken();
      if (!fresh) throw failure;
      try {
        return await call(fresh);
      } catch (retryError) {
        throw toAuthClientError(retryError);
      }
    }
  }

  const ctx = (accessToken: string) => ({ context: { accessToken } });
  const wrap = async <T>(promise: Promise<T>): Promise<T> => {
    try {
      return await promise;
    } catch (error) {
      throw toAuthClientError(error);
    }
  };

  return {
    transport,
    async register(input: { email: string; password: string; name?: string }) {
      return accept(await wrap(trpc.auth.register.mutate(input)), "signed_in");
    },
    async login(input: { email: string; password: string }) {
      return accept(await wrap(trpc.auth.login.mutate(input)), "signed_in");
    },
    /** Picks up an existing session (e.g. after a page reload): the user, or null if signed out. */
    async restore(): Promise<User | null> {
      return (await refresh())?.user ?? null;
    },
    me: () => authed((token) => trpc.auth.me.query(undefined, ctx(token))),
    sessions: {
      list: () => authed((token) => trpc.session.list.query(undefined, ctx(token))).then((r) => r.sessions),
      revoke: (sessionId: string) => authed((token) => trpc.session.revoke.mutate({ sessionId }, ctx(token))),
      /** Signs out every other device of this user. */
      revokeOthers: () => authed((token) => trpc.session.revokeOthers.mutate(undefined, ctx(token))),
    },
    async logout() {
      const refreshToken = transport === "token" ? ((await storage.get()) ?? undefined) : undefined;
      try {
        await wrap(trpc.auth.logout.mutate(refreshToken ? { refreshToken } : undefined, access ? ctx(access.token) : undefined));
      } finally {
        await forget("logout");
      }
    },
    async logoutAll() {
      try {
        return await authed((token) => trpc.auth.logoutAll.mutate(undefined, ctx(token)));
      } finally {
        await forget("logout");
      }
    },
    /** The current access token (refreshed if needed), for calling your own APIs. */
    getAccessToken: accessToken,
    refresh,
    onSessionChange(listener: (event: SessionEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export type AuthClient = ReturnType<typeof createAuthClient>;
