import { AccessTokenError, createVerifier, type AccessTokenClaims } from "@authlith/verify";
import { initTRPC, TRPCError } from "@trpc/server";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import * as z from "zod";

/**
 * The example's "own API": a tRPC router of the app's (notes, per user), protected by
 * @authlith/verify. The dev script serves it beside the app at /api, so the browser calls it
 * with the same access token it uses for authlith, through `authLink`.
 */
export interface NotesApiOptions {
  /** authlith's issuer (the API's URL): where the verifier finds the keys. */
  issuer: string;
  /**
   * Ask authlith whether each token's session is still live, remembering a live answer this long
   * (seconds). Null: tokens are trusted until they expire.
   */
  revocationMaxAgeSeconds: number | null;
}

interface Context {
  claims: AccessTokenClaims | null;
  /** Why the token was refused, if it was. */
  refusal: AccessTokenError | null;
}

export function createNotesApi(options: NotesApiOptions) {
  const verifier = createVerifier({
    issuer: options.issuer,
    audience: "authlith",
    revocation: options.revocationMaxAgeSeconds === null ? false : { maxAgeSeconds: options.revocationMaxAgeSeconds },
  });
  const notes = new Map<string, string[]>();

  const t = initTRPC.context<Context>().create({
    // The refusal's code travels as `data.reason`, as authlith's own errors do: authLink passes
    // it on, so a revoked session signs the page out with the right message.
    errorFormatter: ({ shape, error }) => ({
      ...shape,
      data: { ...shape.data, reason: error.cause instanceof AccessTokenError ? error.cause.code : undefined, stack: undefined },
    }),
  });
  const signedIn = t.procedure.use(({ ctx, next }) => {
    if (!ctx.claims) {
      if (ctx.refusal?.code === "VERIFIER_UNAVAILABLE") throw new TRPCError({ code: "SERVICE_UNAVAILABLE", cause: ctx.refusal });
      throw new TRPCError({ code: "UNAUTHORIZED", message: "Sign in to see your notes", cause: ctx.refusal ?? undefined });
    }
    return next({ ctx: { claims: ctx.claims } });
  });

  const router = t.router({
    notes: t.router({
      list: signedIn.query(({ ctx }) => ({ owner: ctx.claims.email, notes: notes.get(ctx.claims.userId) ?? [] })),
      add: signedIn.input(z.object({ text: z.string().trim().min(1).max(200) })).mutation(({ ctx, input }) => {
        const list = notes.get(ctx.claims.userId) ?? [];
        list.push(input.text);
        notes.set(ctx.claims.userId, list);
        return { notes: list };
      }),
    }),
  });

  const handler = createHTTPHandler({
    router,
    async createContext({ req }): Promise<Context> {
      try {
        return { claims: await verifier.verifyAuthorization(req.headers.authorization), refusal: null };
      } catch (error) {
        return { claims: null, refusal: AccessTokenError.is(error) ? error : null };
      }
    },
  });
  return { router, handler };
}

export type NotesRouter = ReturnType<typeof createNotesApi>["router"];
