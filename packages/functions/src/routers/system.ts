import { publicProcedure, router } from "../trpc";

export const systemRouter = router({
  /** A no-op through the whole stack (HTTP, tRPC, context): liveness for clients, baseline for the benchmark. */
  ping: publicProcedure.query(() => ({ pong: true as const })),
});
