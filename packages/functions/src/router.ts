import { accountRouter } from "./routers/account";
import { authRouter } from "./routers/auth";
import { mfaRouter } from "./routers/mfa";
import { sessionRouter } from "./routers/session";
import { systemRouter } from "./routers/system";
import { router } from "./trpc";

export const appRouter = router({
  account: accountRouter,
  auth: authRouter,
  mfa: mfaRouter,
  session: sessionRouter,
  system: systemRouter,
});

/** The API's type: what `@authlith/client` imports (type-only) to be typed end to end. */
export type AppRouter = typeof appRouter;
