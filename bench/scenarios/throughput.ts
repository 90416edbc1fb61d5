import autocannon from "autocannon";
import { startServer, type ServerProcess } from "../lib/processes";
import { summarize, type Summary } from "../lib/stats";

export interface LoadOptions {
  durationSeconds: number;
  connections: number;
}

interface LoadResult {
  requestsPerSecond: number;
  latencyMedianMs: number;
  non2xx: number;
  errors: number;
}

/** Drives one URL with autocannon; fails the run if any answer was not a 2xx. */
async function load(
  url: string,
  options: LoadOptions,
  extra: Partial<autocannon.Options> = {},
): Promise<LoadResult> {
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.durationSeconds,
    pipelining: 1,
    ...extra,
  });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`load on ${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  return {
    requestsPerSecond: result.requests.average,
    latencyMedianMs: result.latency.p50,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/**
 * Throughput of `auth.me` (token verification and the Redis revocation check) against a no-op
 * procedure through the same stack (HTTP server → API Gateway v2 event → handler → tRPC), one
 * server process, loopback, alternating rounds.
 */
export async function measureMeVsNoop(
  env: Record<string, string>,
  accessToken: string,
  rounds: number,
  options: LoadOptions,
) {
  // The server on core 0; autocannon (this process) and the databases share the rest.
  const server = await startServer(env, 0);
  try {
    const noop = () => load(`${server.url}/trpc/system.ping`, options);
    const me = () => load(`${server.url}/trpc/auth.me`, options, { headers: { authorization: `Bearer ${accessToken}` } });
    await load(`${server.url}/trpc/system.ping`, { ...options, durationSeconds: 1 }); // warm-up
    const noopRates: number[] = [];
    const meRates: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternate the order so that drift within a round favours neither side.
      if (round % 2 === 0) {
        noopRates.push((await noop()).requestsPerSecond);
        meRates.push((await me()).requestsPerSecond);
      } else {
        meRates.push((await me()).requestsPerSecond);
        noopRates.push((await noop()).requestsPerSecond);
      }
    }
    // The ratio of each round's adjacent pair: robust to the machine's speed drifting between rounds.
    const ratios = meRates.map((rate, i) => rate / noopRates[i]!);
    return { noop: summarize(noopRates), me: summarize(meRates), ratio: summarize(ratios) };
  } finally {
    await server.stop();
  }
}

/**
 * Throughput of `auth.me` and of `auth.refresh` with 1, 2 and 4 server processes sharing one
 * Postgres and Redis, as Lambda instances would. Each refresh connection holds its own session and
 * follows its own rotations.
 */
export async function measureProcessScaling(
  env: Record<string, string>,
  accessToken: string,
  refreshTokens: () => Promise<string[]>,
  processCounts: number[],
  options: LoadOptions,
) {
  const results: { processes: number; meRps: number; refreshRps: number }[] = [];
  for (const count of processCounts) {
    const servers: ServerProcess[] = [];
    try {
      for (let i = 0; i < count; i++) servers.push(await startServer(env, 0));
      const perServer = { ...options, connections: Math.max(2, Math.round(options.connections / count)) };
      const meRuns = await Promise.all(
        servers.map((s) => load(`${s.url}/trpc/auth.me`, perServer, { headers: { authorization: `Bearer ${accessToken}` } })),
      );
      const tokens = await refreshTokens();
      const refreshRuns = await Promise.all(
        servers.map((s, index) => {
          const pool = tokens.filter((_, i) => i % count === index);
          return load(`${s.url}/trpc/auth.refresh`, perServer, {
            requests: [
              {
                method: "POST",
                headers: { "content-type": "application/json" },
                // autocannon resets its per-connection context after every request, so tokens
                // circulate through a shared queue: taken for a request, its successor put back.
                setupRequest: (request: autocannon.Request) => {
                  const token = pool.shift();
                  if (!token) throw new Error("refresh token pool ran dry");
                  return { ...request, body: JSON.stringify({ refreshToken: token }) };
                },
                onResponse: (status: number, body: string) => {
                  if (status === 200) pool.push(JSON.parse(body).result.data.refreshToken);
                },
              },
            ],
          } as Partial<autocannon.Options>);
        }),
      );
      results.push({
        processes: count,
        meRps: meRuns.reduce((sum, r) => sum + r.requestsPerSecond, 0),
        refreshRps: refreshRuns.reduce((sum, r) => sum + r.requestsPerSecond, 0),
      });
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  }
  return results;
}

export type ThroughputSummary = { noop: Summary; me: Summary; ratio: Summary };
