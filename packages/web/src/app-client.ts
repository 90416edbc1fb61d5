import { createAuthClient } from "@authlith/client";
import type { AppRouter } from "@authlith/client/router";
import { QueryClient } from "@tanstack/react-query";
import { createTRPCContext } from "@trpc/tanstack-react-query";

// The API on this page's host name (port 3000) unless VITE_AUTHLITH_URL says otherwise: the
// refresh cookie is first-party only when the page and the API are on the same site.
const apiUrl =
  import.meta.env.VITE_AUTHLITH_URL || `${location.protocol}//${location.hostname}:${import.meta.env.VITE_AUTHLITH_PORT || 3000}`;

// In a browser the client uses the cookie transport: the refresh token stays in an HttpOnly
// cookie, the access token in memory; tabs of this origin share refreshes and sign-outs.
export const auth = createAuthClient({ url: apiUrl });

export const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false, staleTime: Infinity } } });

// authlith's procedures through tRPC's TanStack Query integration, over auth.trpc (authLink inside).
export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

// Query results belong to one user: a new sign-in starts from scratch, a sign-out forgets them.
auth.onSessionChange((event) => {
  if (event.type === "signed_in") void queryClient.resetQueries();
  if (event.type === "signed_out") queryClient.clear();
});
