import { Agent, request } from "node:http";

/** One answer as the suite sees it. */
export interface Answer {
  status: number;
  /** 0: no answer (connection refused or reset, or the suite's own deadline). */
  ms: number;
  body: any;
  retryAfter: string | undefined;
  setCookies: string[];
}

/** The longest the suite waits for any answer; a request still open then counts as a failure. */
export const CLIENT_DEADLINE_MS = 30_000;

/**
 * An HTTP caller bound to one source address (127.x.y.z: every loopback address reaches the
 * server, and the server sees each simulated client as its own IP), keeping its connections alive.
 */
export function caller(baseUrl: string, localAddress: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 4, localAddress });
  const url = new URL(baseUrl);
  const send = (method: "GET" | "POST", path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve) => {
      const started = performance.now();
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          headers: { ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = text;
            }
            const setCookie = res.headers["set-cookie"];
            resolve({
              status: res.statusCode ?? 0,
              ms: performance.now() - started,
              body: parsed,
              retryAfter: res.headers["retry-after"] as string | undefined,
              setCookies: Array.isArray(setCookie) ? setCookie : [],
            });
          });
          res.on("error", () => resolve({ status: 0, ms: performance.now() - started, body: undefined, retryAfter: undefined, setCookies: [] }));
        },
      );
      req.setTimeout(CLIENT_DEADLINE_MS, () => req.destroy(new Error("deadline")));
      req.on("error", () => resolve({ status: 0, ms: performance.now() - started, body: undefined, retryAfter: undefined, setCookies: [] }));
      req.end(payload);
    });
  return {
    mutate: (procedure: string, input: unknown, headers: Record<string, string> = {}) =>
      send("POST", `/trpc/${procedure}`, input ?? {}, { "x-authlith-transport": "token", ...headers }),
    query: (procedure: string, headers: Record<string, string> = {}) => send("GET", `/trpc/${procedure}`, undefined, headers),
    get: (path: string) => send("GET", path),
    close: () => agent.destroy(),
  };
}

export type Caller = ReturnType<typeof caller>;

/** The data of a tRPC success. */
export const dataOf = (answer: Answer): any => answer.body?.result?.data;
/** The error reason of a tRPC failure. */
export const reasonOf = (answer: Answer): string | undefined => answer.body?.error?.data?.reason;

/** The n-th loopback address of a block (127.<block>.x.y), n ≥ 1. */
export const loopback = (block: number, n: number) => `127.${block}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
