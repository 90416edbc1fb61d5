import { accessTokenTimes } from "./access-token.js";
import { AuthClientError, networkError, notSignedIn } from "./errors.js";
import { createTRPCClient, type TRPCClient } from "@trpc/client";
import { authLink } from "./link.js";
import type { AppRouter } from "./router.js";
import type { MfaSettings, MfaSignIn } from "./mfa.js";
import { createMfaSettings, createMfaSignIn } from "./mfa-client.js";
import { authlithHttpLink, createRpc } from "./rpc.js";
import { memoryStorage, type TokenStorage } from "./storage.js";
import { createTabs, noTabs, type HeldToken } from "./tabs.js";
import type { LoginInput, LoginResult, Me, RegisterInput, RegisterResult, SessionInfo, SignedIn, TokenResponse, User } from "./types.js";

/** Why a session ended: `logout` (here or in another tab), `revoked` (from another device), `expired`. */
export type SignedOutReason = "logout" | "expired" | "revoked";

export type SessionEvent =
  /** This client has a session now: sign-up, sign-in, restored after a reload, or another tab signed in. */
  | { type: "signed_in"; user: User }
  /** A new access token (this tab rotated, or another tab handed its new one over). */
  | { type: "refreshed"; user: User }
  /** The session ended: `logout` here or in another tab, `revoked` elsewhere, or `expired`. */
  | { type: "signed_out"; reason: SignedOutReason };

export interface AuthClientOptions {
  /** Base URL of the authlith service, e.g. https://auth.example.com. */
  url: string;
  /**
   * "cookie" (the default in browsers): the refresh token lives in an HttpOnly cookie that page
   * scripts cannot read. "token" (the default elsewhere): the client keeps it in `storage`.
   */
  transport?: "cookie" | "token";
  /** Token transport: where the refresh token is kept. Default: memory. */
  storage?: TokenStorage;
  /**
   * Token transport: where the known-device token is kept (browsers get it as a cookie). Sent back
   * on sign-in, so an attacker locking the account elsewhere does not lock this device out. Keep
   * it as long as the app is installed; logout does not clear it. Default: memory.
   */
  deviceStorage?: TokenStorage;
  /** Refresh this many seconds before the access token expires. Default: 60, or half its life if shorter. */
  refreshMarginSeconds?: number;
  /** Give up on a request after this long (error kind "network", reason TIMEOUT). Default 30. */
  timeoutSeconds?: number;
  /** Cookie transport: coordinate with the other tabs of this origin (Web Locks, BroadcastChannel). Default true. */
  crossTab?: boolean;
  fetch?: typeof globalThis.fetch;
}

/** The session state for UIs: see `AuthClient.getSnapshot`. */
export interface AuthSnapshot {
  status: "loading" | "signed_in" | "signed_out";
  user: User | null;
  error: AuthClientError | null;
}

/** A session as the client holds it: the access token lives in memory only. */
export interface AuthSession {
  user: User;
  accessToken: string;
  /** When the access token expires, by this device's clock. */
  accessTokenExpiresAt: Date;
}

export interface AuthClient extends MfaSignIn {
  readonly transport: "cookie" | "token";
  /**
   * The typed tRPC client (`@trpc/client`) for every procedure of authlith's router, including
   * ones added after this package: the access token attached and refreshed as for the methods
   * below. Its errors are `TRPCClientError`s. Sign in and out with the methods, not through it
   * (they are what keep the session).
   */
  readonly trpc: TRPCClient<AppRouter>;
  /**
   * Creates an account. With email verification on (the server's default) it resolves to
   * `{ status: "verification_required" }`: a link was mailed, nobody is signed in. With it off,
   * to `{ status: "signed_in", ... }` and the client holds the session.
   */
  register(input: RegisterInput): Promise<RegisterResult>;
  /**
   * Signs in: `{ status: "signed_in", ... }`, or for an account with a second factor
   * `{ status: "mfa_required", challengeId, methods, ... }`, and no session until `verifyMfa` or
   * `verifyMfaWithPasskey` finishes it. Fails with kind "invalid_credentials" (wrong pair, locked,
   * disabled: one answer), "rate_limited", or, for the right password of an account whose address
   * is not confirmed yet, kind "forbidden" reason EMAIL_NOT_VERIFIED (a fresh link was mailed).
   */
  login(input: LoginInput): Promise<LoginResult>;
  /**
   * Confirms the address with the token from a verification link (the app reads it from the
   * link's `#token=`) and the account's password (the link proves the inbox, the password that the
   * account is its owner's). Does not sign in; a signed-in client refreshes so `emailVerified` is
   * current. Fails with kind "validation", reason INVALID_TOKEN (used, expired, superseded), or
   * kind "forbidden", reason INVALID_PASSWORD (the token stays usable).
   */
  verifyEmail(input: { token: string; password: string }): Promise<{ email: string }>;
  /** Mails the signed-in user a fresh verification link; `alreadyVerified` when there is nothing to do. */
  requestVerification(): Promise<{ alreadyVerified: boolean }>;
  /**
   * Starts a password reset: mails a link to the address if it has an account. The answer is the
   * same either way (it never tells whether the address is registered); only rate limits refuse.
   */
  requestPasswordReset(input: { email: string }): Promise<void>;
  /**
   * Sets a new password with the token from a reset link (the app reads it from the link's
   * `#token=` fragment and calls this). Every session of the account ends; nobody is signed in.
   * Fails with kind "validation": reason INVALID_TOKEN (used, expired, superseded) or
   * `fieldErrors.newPassword` (the password policy).
   */
  resetPassword(input: { token: string; newPassword: string }): Promise<void>;
  /**
   * Changes the password, proven by the current one. This session stays; every other one ends.
   * Fails with kind "forbidden" reason INVALID_PASSWORD, or "validation" (`fieldErrors.newPassword`).
   */
  changePassword(input: { currentPassword: string; newPassword: string }): Promise<{ revokedSessions: number }>;
  /**
   * Asks to move the account to `newEmail`, proven by the password: a link goes to the new address,
   * and nothing changes until it is followed (then `confirmEmailChange`). The answer never says
   * whether the new address has an account. Fails like changePassword.
   */
  changeEmail(input: { password: string; newEmail: string }): Promise<void>;
  /** Confirms an email change with the token from the link mailed to the new address. */
  confirmEmailChange(input: { token: string }): Promise<{ email: string }>;
  /** Deletes the account, proven by its password, and signs out everywhere. Fails like changePassword. */
  deleteAccount(input: { password: string }): Promise<void>;
  /** Picks up an existing session (after a page reload, from another tab or the cookie): the user, or null. */
  restore(): Promise<User | null>;
  me(): Promise<Me>;
  sessions: {
    list(): Promise<SessionInfo[]>;
    /** Ends one of the user's sessions (another device): it is signed out on its next call. */
    revoke(sessionId: string): Promise<void>;
    /**
     * Signs out every other device of this user. Needs a recent sign-in (AUTHLITH_REAUTH_SECONDS)
     * or the password: otherwise it fails with kind "forbidden", reason REAUTHENTICATION_REQUIRED.
     */
    revokeOthers(input?: { password?: string }): Promise<{ revokedSessions: number }>;
  };
  /** The signed-in user's second factors: authenticator app, recovery codes, passkeys. */
  readonly mfa: MfaSettings;
  /** Ends this session, here and in every other tab. */
  logout(): Promise<void>;
  /** Ends every session of the user, this one included. */
  logoutAll(): Promise<{ revokedSessions: number }>;
  /**
   * A usable access token (refreshed if needed), for calling your own APIs; null when signed out.
   * After your API refused a token, pass it as `rejected`: the client renews only if that token
   * is still the one it holds (concurrent refusals share one refresh, and a token already
   * replaced costs nothing). `reason`: the refusal's reason code, if the API gave one
   * (SESSION_REVOKED makes a sign-out that follows say `revoked`).
   */
  getAccessToken(options?: { rejected?: string; reason?: string }): Promise<string | null>;
  /**
   * `fetch` with the access token attached (`Authorization: Bearer`), for your own HTTP APIs.
   * After a 401 it renews the token as `getAccessToken({ rejected })` does and retries once. With
   * no session it sends the request without a token.
   */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Rotates the refresh token now (or joins the refresh in progress); null when there is no session. */
  refresh(): Promise<AuthSession | null>;
  /**
   * The session state as a value that changes only when the state does (the same object until
   * then), for `useSyncExternalStore` and any framework's store: `loading` until the first
   * restore, sign-in or sign-out settles. `error`: why the last restore failed (offline, ...).
   */
  getSnapshot(): AuthSnapshot;
  /** Calls `listener` (no arguments) whenever `getSnapshot()` changes; the first subscriber starts a restore. */
  subscribe(listener: () => void): () => void;
  /** The signed-in user as last known, without a request; null when signed out. */
  getUser(): User | null;
  /** Calls `listener` on every sign-in, refresh and sign-out; returns the unsubscribe function. */
  onSessionChange(listener: (event: SessionEvent) => void): () => void;
  /** Stops talking to other tabs (for tests and teardown); the client still works on its own. */
  close(): void;
}

const DEFAULT_MARGIN_MS = 60_000;
const isBrowser = () => typeof window !== "undefined" && typeof document !== "undefined";

/**
 * The client a frontend imports. It keeps the access token in memory, attaches it, refreshes it
 * shortly before it expires and once after an UNAUTHORIZED answer (retrying the call once), and
 * shares one refresh between concurrent calls, and, in a browser, between tabs.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const transport = options.transport ?? (isBrowser() ? "cookie" : "token");
  const url = options.url.replace(/\/+$/, "");
  const storage = options.storage ?? memoryStorage();
  const deviceStorage = options.deviceStorage ?? memoryStorage();
  const explicitMarginMs = options.refreshMarginSeconds === undefined ? undefined : options.refreshMarginSeconds * 1000;
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const rpcOptions = {
    url,
    fetch: fetchImpl,
    credentials: (transport === "cookie" ? "include" : "omit") as RequestCredentials,
    headers: transport === "token" ? { "x-authlith-transport": "token" } : ({} as Record<string, string>),
    timeoutMs: (options.timeoutSeconds ?? 30) * 1000,
  };
  const rpc = createRpc(rpcOptions);
  const listeners = new Set<(event: SessionEvent) => void>();

  let held: HeldToken | null = null;
  let refreshing: Promise<HeldToken | null> | null = null;
  /** Sessions this client saw end: a late message from another tab cannot bring one back. */
  const ended = new Set<string>();

  const tabs =
    transport === "cookie" && options.crossTab !== false
      ? createTabs(url, {
          onToken(event, token) {
            if (token.sessionId && ended.has(token.sessionId)) return;
            if (held?.accessToken === token.accessToken) return;
            if (held && event === "refreshed" && token.expiresAtMs < held.expiresAtMs) return;
            take(token, event === "signed_in" || held?.user.id !== token.user.id ? "signed_in" : "refreshed");
          },
          onSignedOut: (reason, sessionId) => void forget(reason, sessionId, false),
          current: () => held,
        })
      : noTabs;

  let snapshot: AuthSnapshot = { status: "loading", user: null, error: null };
  const storeListeners = new Set<() => void>();
  function settle(next: AuthSnapshot) {
    if (next.status === snapshot.status && next.user === snapshot.user && next.error === snapshot.error) return;
    snapshot = next;
    for (const listener of storeListeners) listener();
  }

  const emit = (event: SessionEvent) => {
    settle(event.type === "signed_out" ? { status: "signed_out", user: null, error: null } : { status: "signed_in", user: event.user, error: null });
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };

  const isFresh = (token: HeldToken) => {
    const marginMs = explicitMarginMs ?? Math.min(DEFAULT_MARGIN_MS, (token.expiresAtMs - token.receivedAtMs) / 2);
    return token.expiresAtMs - marginMs > Date.now();
  };

  function take(token: HeldToken, event: "signed_in" | "refreshed"): HeldToken {
    held = token;
    emit({ type: event, user: token.user });
    return token;
  }

  /**
   * A token answer from the server: hold it, keep the refresh token, tell the other tabs. An
   * answer for a session that ended meanwhile (a refresh that was in flight when this client or
   * another tab logged out) is dropped: it must not bring the session back.
   */
  async function accept(result: TokenResponse, event: "signed_in" | "refreshed"): Promise<HeldToken | null> {
    const times = accessTokenTimes(result.accessToken, result.accessTokenExpiresAt, Date.now());
    const token: HeldToken = { accessToken: result.accessToken, user: result.user, ...times };
    if (token.sessionId && ended.has(token.sessionId)) return null;
    if (transport === "token") {
      if (result.refreshToken) await storage.set(result.refreshToken);
      if (result.deviceToken) await deviceStorage.set(result.deviceToken);
    }
    take(token, event);
    tabs.announce({ type: "token", event, token });
    return token;
  }

  /** A sign-in's tokens (any way of signing in): the session begins as `accept` takes them. */
  async function signIn(result: TokenResponse): Promise<SignedIn> {
    await accept(result, "signed_in");
    return { status: "signed_in", ...result };
  }

  async function forget(reason: SignedOutReason, sessionId: string | null, announce: boolean) {
    if (!announce && sessionId && held?.sessionId && held.sessionId !== sessionId) {
      ended.add(sessionId); // another tab ended an older session, not the one this client holds
      return;
    }
    // Another tab that held no session found none (its restore was refused): that says nothing
    // about the session this client holds, which may have begun since its request went out.
    if (!announce && sessionId === null && reason !== "logout" && held) return;
    const wasSignedIn = held !== null;
    for (const id of [sessionId, held?.sessionId]) if (id) ended.add(id);
    held = null;
    if (transport === "token") await storage.set(null);
    if (announce && (sessionId !== null || reason === "logout")) tabs.announce({ type: "signed_out", reason, sessionId });
    // A logout here is always worth telling the UI about; news from another tab only if it changes something.
    if (wasSignedIn || (announce && reason === "logout")) emit({ type: "signed_out", reason });
  }

  /** Spends the refresh token. Null when there is no session (the client is then signed out). */
  async function rotate(cause: AuthClientError | null): Promise<HeldToken | null> {
    const refreshToken = transport === "token" ? await storage.get() : undefined;
    if (transport === "token" && !refreshToken) {
      if (held) await forget("expired", held.sessionId, true);
      return null;
    }
    const before = held;
    try {
      const result = await rpc("mutation", "auth.refresh", refreshToken ? { refreshToken } : undefined);
      // A sign-in (here or in another tab) landed while this refresh was out: that session is the
      // current one, and this late answer must not replace it.
      if (held && held !== before && held.sessionId !== accessTokenTimes(result.accessToken, result.accessTokenExpiresAt, Date.now()).sessionId) {
        return held;
      }
      return await accept(result, held ? "refreshed" : "signed_in");
    } catch (error) {
      if (!AuthClientError.is(error, "unauthorized")) throw error; // offline, rate limited: still signed in
      // Another tab handed over a session while this refresh was out (it signed in, or rotated
      // the cookie first): the refusal was about the cookie this request carried, not that session.
      if (held && held !== before && !(held.sessionId && ended.has(held.sessionId))) return held;
      const reason = cause?.reason === "SESSION_REVOKED" ? "revoked" : "expired";
      await forget(reason, before?.sessionId ?? null, true);
      return null;
    }
  }

  /**
   * A usable access token, one refresh at a time per client and per browser: the token another
   * tab handed over while this one waited its turn, or one another tab holds, or a rotation.
   * `rejected` is a token the server just refused; `force` skips straight to rotating.
   */
  function renew(rejected: AuthClientError | null, rejectedToken: string | null, force: boolean) {
    refreshing ??= (async () => {
      try {
        return await tabs.exclusive(async () => {
          if (!force) {
            const usable = (token: HeldToken) => token.accessToken !== rejectedToken && isFresh(token);
            if (held && usable(held)) return held;
            const shared = await tabs.ask(usable);
            if (shared && !(shared.sessionId && ended.has(shared.sessionId))) {
              return take(shared, held && held.user.id === shared.user.id ? "refreshed" : "signed_in");
            }
          }
          return rotate(rejected);
        });
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function accessToken(): Promise<string | null> {
    if (held && isFresh(held)) return held.accessToken;
    return (await renew(null, null, false))?.accessToken ?? null;
  }

  /** An authenticated call; after UNAUTHORIZED, one refresh and one retry. */
  async function authed<T>(call: (accessToken: string) => Promise<T>): Promise<T> {
    const token = await accessToken();
    if (!token) throw notSignedIn();
    try {
      return await call(token);
    } catch (error) {
      if (!AuthClientError.is(error, "unauthorized")) throw error;
      const renewed = await renew(error, token, false);
      if (!renewed) throw error;
      return await call(renewed.accessToken);
    }
  }

  /** The session after a reload (the cookie, another tab, or the stored refresh token); settles `loading`. */
  let restoring: Promise<User | null> | null = null;
  function restore(): Promise<User | null> {
    if (held && isFresh(held)) return Promise.resolve(held.user);
    restoring ??= renew(null, null, false)
      .then(
        (token) => {
          if (!token) settle({ status: "signed_out", user: null, error: null });
          return token?.user ?? null;
        },
        (error: unknown) => {
          if (snapshot.status !== "signed_in") {
            settle({ status: "signed_out", user: null, error: AuthClientError.is(error) ? error : networkError(error) });
          }
          throw error;
        },
      )
      .finally(() => (restoring = null));
    return restoring;
  }

  const toSession = (token: HeldToken): AuthSession => ({
    user: token.user,
    accessToken: token.accessToken,
    accessTokenExpiresAt: new Date(token.expiresAtMs),
  });

  const client: AuthClient = {
    transport,
    get trpc() {
      trpc ??= createTRPCClient<AppRouter>({ links: [authLink(client), authlithHttpLink(rpcOptions)] });
      return trpc;
    },
    async register(input) {
      const result = await rpc("mutation", "auth.register", input);
      if ("status" in result) return { status: result.status };
      return signIn(result);
    },
    async login(input) {
      const deviceToken = input.deviceToken ?? (transport === "token" ? await deviceStorage.get() : null);
      const result = await rpc("mutation", "auth.login", deviceToken ? { ...input, deviceToken } : input);
      if (!("mfaRequired" in result)) return signIn(result);
      const { mfaRequired: _, ...challenge } = result; // a second factor is due: nothing held or stored yet
      return { status: "mfa_required", ...challenge };
    },
    ...createMfaSignIn(rpc, signIn),
    async verifyEmail(input) {
      const { email } = await rpc("mutation", "account.verifyEmail", input);
      // The new claim arrives with the next access token: take it now.
      if (held) await renew(null, null, true).catch(() => null);
      return { email };
    },
    requestVerification: () =>
      authed((token) => rpc("mutation", "account.requestVerification", undefined, token)).then((r) => ({ alreadyVerified: r.alreadyVerified })),
    requestPasswordReset: (input) => rpc("mutation", "account.requestPasswordReset", input).then(() => {}),
    resetPassword: (input) => rpc("mutation", "account.resetPassword", input).then(() => {}),
    changePassword: (input) =>
      authed((token) => rpc("mutation", "account.changePassword", input, token)).then((r) => ({ revokedSessions: r.revokedSessions })),
    changeEmail: (input) => authed((token) => rpc("mutation", "account.changeEmail", input, token)).then(() => {}),
    confirmEmailChange: (input) => rpc("mutation", "account.confirmEmailChange", input).then((r) => ({ email: r.email })),
    async deleteAccount(input) {
      const sessionId = held?.sessionId ?? null;
      await authed((token) => rpc("mutation", "account.delete", input, token));
      await forget("logout", sessionId, true);
    },
    restore,
    me: () => authed((token) => rpc("query", "auth.me", undefined, token)),
    sessions: {
      list: () => authed((token) => rpc("query", "session.list", undefined, token)).then((r) => r.sessions),
      revoke: (sessionId) => authed((token) => rpc("mutation", "session.revoke", { sessionId }, token)).then(() => {}),
      revokeOthers: (input) =>
        authed((token) => rpc("mutation", "session.revokeOthers", input, token)).then((r) => ({
          revokedSessions: r.revokedSessions,
        })),
    },
    mfa: createMfaSettings(rpc, authed),
    async logout() {
      // After this client's own refresh in flight (so the token ended is the newest one), and in
      // turn with the other tabs' refreshes: none of them is rotating the token being ended.
      await refreshing?.catch(() => null);
      await tabs.exclusive(async () => {
        const refreshToken = transport === "token" ? ((await storage.get()) ?? undefined) : undefined;
        const sessionId = held?.sessionId ?? null;
        try {
          await rpc("mutation", "auth.logout", refreshToken ? { refreshToken } : undefined, held?.accessToken);
        } finally {
          await forget("logout", sessionId, true);
        }
      });
    },
    async logoutAll() {
      await refreshing?.catch(() => null);
      const sessionId = held?.sessionId ?? null;
      try {
        const result = await authed((token) => rpc("mutation", "auth.logoutAll", undefined, token));
        return { revokedSessions: result.revokedSessions };
      } finally {
        await forget("logout", sessionId, true);
      }
    },
    async getAccessToken(options) {
      const rejected = options?.rejected;
      if (rejected === undefined || held?.accessToken !== rejected) return accessToken();
      const cause = options?.reason ? new AuthClientError("unauthorized", "Access token refused", { reason: options.reason }) : null;
      return (await renew(cause, rejected, false))?.accessToken ?? null;
    },
    async fetch(input, init) {
      const send = (token: string | null) => {
        const headers = new Headers(init?.headers);
        if (token) headers.set("authorization", `Bearer ${token}`);
        return fetchImpl(input, { ...init, headers });
      };
      const token = await accessToken();
      const response = await send(token);
      if (response.status !== 401 || !token) return response;
      const renewed = held?.accessToken === token ? (await renew(null, token, false))?.accessToken : held?.accessToken;
      if (!renewed || renewed === token) return response;
      return send(renewed);
    },
    getSnapshot: () => snapshot,
    subscribe(listener) {
      storeListeners.add(listener);
      if (snapshot.status === "loading") void restore().catch(() => {});
      return () => void storeListeners.delete(listener);
    },
    async refresh() {
      const token = await renew(null, null, true);
      return token ? toSession(token) : null;
    },
    getUser: () => held?.user ?? null,
    onSessionChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close: () => tabs.close(),
  };
  let trpc: TRPCClient<AppRouter> | undefined;
  return client;
}
