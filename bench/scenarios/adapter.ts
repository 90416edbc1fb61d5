import type { Runtime } from "../../packages/functions/src/runtime";
import { alternate, summarize } from "../lib/stats";
import { benchClient } from "./latency";

/**
 * The fast path against tRPC's own AWS Lambda adapter, per request: the same service twice (one
 * with AUTHLITH_TRPC_ADAPTER=official), each answering `auth.me` and `system.ping` with events
 * built beforehand, alternated. What the fast path saves on every warm call.
 */
export async function measureAdapters(fast: Runtime, official: Runtime, accessToken: string, iterations: number, warmup: number) {
  const timeCall = (runtime: Runtime, path: string, headers: Record<string, string> = {}) => {
    const client = benchClient(runtime);
    return async () => {
      const event = client.event({ path: `/trpc/${path}`, headers });
      const start = performance.now();
      const result = await runtime.handle(event);
      const ms = performance.now() - start;
      if (result.statusCode !== 200) throw new Error(`${path} answered ${result.statusCode}: ${String(result.body).slice(0, 200)}`);
      return ms;
    };
  };
  const me = { authorization: `Bearer ${accessToken}` };
  await alternate(warmup, timeCall(fast, "auth.me", me), timeCall(official, "auth.me", me));
  const meSamples = await alternate(iterations, timeCall(fast, "auth.me", me), timeCall(official, "auth.me", me));
  const pingSamples = await alternate(iterations, timeCall(fast, "system.ping"), timeCall(official, "system.ping"));
  return {
    me: { fast: summarize(meSamples.a), official: summarize(meSamples.b) },
    ping: { fast: summarize(pingSamples.a), official: summarize(pingSamples.b) },
  };
}
