import { createContext, createElement, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { AuthClient, AuthSnapshot } from "./client.js";

/**
 * React bindings (`@authlith/client/react`): the client in context, and the session as state.
 * Built on `useSyncExternalStore` over the client's `subscribe`/`getSnapshot`, the same pair any
 * other framework's store can use. React is an optional peer dependency of the package.
 */

const AuthContext = createContext<AuthClient | null>(null);

/** Makes `client` available to `useAuth` and `useSession` below it. */
export function AuthProvider(props: { client: AuthClient; children?: ReactNode }) {
  return createElement(AuthContext.Provider, { value: props.client }, props.children);
}

/** The client from the nearest `<AuthProvider>`: sign in and out, `fetch`, `trpc`, ... */
export function useAuth(): AuthClient {
  const client = useContext(AuthContext);
  if (!client) throw new Error("useAuth and useSession need an <AuthProvider client={...}> above them");
  return client;
}

/** On the server (SSR) the session is not known: loading, until the browser restores it. */
const SERVER_SNAPSHOT: AuthSnapshot = Object.freeze({ status: "loading", user: null, error: null });
const serverSnapshot = () => SERVER_SNAPSHOT;

/**
 * The session: `{ status: "loading" | "signed_in" | "signed_out", user, error }`. The first
 * component that uses it starts the restore (from the cookie, another tab or storage); it
 * re-renders on every sign-in, refresh and sign-out, in this tab or another.
 */
export function useSession(): AuthSnapshot {
  const client = useAuth();
  return useSyncExternalStore(client.subscribe, client.getSnapshot, serverSnapshot);
}
