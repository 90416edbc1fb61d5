import { createLogger, type AuthConfigInput, type Clock } from "@authlith/core";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { randomUUID } from "node:crypto";
import { parseEnvConfig, type Env } from "../../src/config";
import { createRuntime, type Runtime } from "../../src/runtime";
import { manualClock, testHmacSecret, testSigningKeys, type Backend, type BackendInstance, type ManualClock } from "../../../core/test/support";
import type { ApiHandler } from "../../src/app";
import { afterAll, beforeAll } from "vitest";

export const ISSUER = "https://auth.example.test";
export const APP_ORIGIN = "https://app.example.test";
export const COOKIE_NAME = "__Host-authlith_rt";

export interface TestApp {
  runtime: Runtime;
  backend: BackendInstance;
  clock: ManualClock;
  /** The environment the service was configured from (for a second instance of it). */
  env: Env;
  /** Every log line the service wrote, as parsed JSON (a line that is not JSON fails the test). */
  logs: Record<string, unknown>[];
  client(options?: ClientOptions): TestClient;
  close(): Promise<void>;
}

/** A running service over the given backend, with a manual clock and captured logs. */
export async function startTestApp(
  backend: Backend,
  env: Env = {},
  /** Settings the environment does not carry (e.g. rate limits), merged into the parsed config. */
  auth: Partial<AuthConfigInput> = {},
): Promise<TestApp> {
  const clock = manualClock();
  const instance = await backend.setup({ clock });
  const fullEnv: Env = {
    AUTHLITH_ISSUER: ISSUER,
    AUTHLITH_ALLOWED_ORIGINS: APP_ORIGIN,
    AUTHLITH_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
    AUTHLITH_HMAC_SECRET: testHmacSecret(),
    // Most suites are about sessions, limits and faults, and start from a signed-in user: they
    // sign up with verification off. The default (on) is what email-verification.test.ts, the
    // dev-server e2e test and the browser tests run; a suite passes "true" to get it.
    AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false",
    ...env,
  };
  const config = parseEnvConfig(fullEnv);
  config.auth = { ...config.auth, ...auth };
  const logs: Record<string, unknown>[] = [];
  // What the service writes, as it would reach a log file: each write split into lines, so a
  // value that smuggled a line break in would show up as a line of its own.
  const raw: string[] = [];
  const log = createLogger({
    level: "debug",
    write: (chunk) => {
      for (const line of `${chunk}\n`.split(/\r\n|\r|\n|\u2028|\u2029/)) {
        if (line === "") continue;
        raw.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
    },
  });
  const runtime = await createRuntime(config, { db: instance.db, store: instance.store, clock, log });
  return {
    runtime,
    backend: instance,
    clock,
    env: fullEnv,
    logs,
    client: (options) => new TestClient(runtime.handle, options),
    async close() {
      await runtime.close();
      await instance.cleanup();
    },
  };
}

export interface ClientOptions {
  ip?: string;
  origin?: string | null;
  userAgent?: string;
  headers?: Record<string, string>;
  clock?: Clock;
}

export interface Reply {
  status: number;
  headers: Record<string, string>;
  cookies: string[];
  raw: string;
  body: any;
}

export interface RequestOptions {
  method?: string;
  path: string;
  query?: string;
  body?: string;
  base64?: boolean;
  headers?: Record<string, string>;
  cookies?: string[];
}

/** Sends API Gateway v2 events to the handler, like API Gateway would; keeps a cookie jar. */
export class TestClient {
  readonly jar = new Map<string, string>();
  private readonly handle: ApiHandler;
  private readonly options: ClientOptions;

  constructor(handle: ApiHandler, options: ClientOptions = {}) {
    this.handle = handle;
    this.options = options;
  }

  event(request: RequestOptions): APIGatewayProxyEventV2 {
    const headers: Record<string, string> = {
      host: "auth.example.test",
      "user-agent": this.options.userAgent ?? "vitest",
      ...(this.options.origin === undefined ? { origin: APP_ORIGIN } : this.options.origin === null ? {} : { origin: this.options.origin }),
      ...this.options.headers,
      ...request.headers,
    };
    const cookies = request.cookies ?? [...this.jar].map(([name, value]) => `${name}=${value}`);
    const method = request.method ?? "GET";
    return {
      version: "2.0",
      routeKey: "$default",
      rawPath: request.path,
      rawQueryString: request.query ?? "",
      ...(cookies.length ? { cookies } : {}),
      headers,
      requestContext: {
        accountId: "123456789012",
        apiId: "api",
        domainName: "auth.example.test",
        domainPrefix: "auth",
        http: { method, path: request.path, protocol: "HTTP/1.1", sourceIp: this.options.ip ?? "203.0.113.10", userAgent: headers["user-agent"]! },
        requestId: randomUUID(),
        routeKey: "$default",
        stage: "$default",
        time: new Date().toUTCString(),
        timeEpoch: Date.now(),
      },
      ...(request.body === undefined
        ? {}
        : { body: request.base64 ? Buffer.from(request.body).toString("base64") : request.body }),
      isBase64Encoded: Boolean(request.base64 && request.body !== undefined),
    };
  }

  async request(request: RequestOptions): Promise<Reply> {
    const result = await this.handle(this.event(request));
    for (const cookie of result.cookies ?? []) {
      const [pair] = cookie.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0/i.test(cookie) || value === "") this.jar.delete(name);
      else this.jar.set(name, value);
    }
    const raw = result.body ?? "";
    let body: unknown = undefined;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = undefined;
    }
    return {
      status: result.statusCode ?? 200,
      headers: Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)])),
      cookies: result.cookies ?? [],
      raw,
      body,
    };
  }

  /** A tRPC mutation (POST, JSON body). */
  mutate(procedure: string, input?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request({
      method: "POST",
      path: `/trpc/${procedure}`,
      headers: { "content-type": "application/json", ...headers },
      ...(input === undefined ? {} : { body: JSON.stringify(input) }),
    });
  }

  /** A tRPC query (GET, input in the query string). */
  query(procedure: string, input?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request({
      path: `/trpc/${procedure}`,
      headers,
      ...(input === undefined ? {} : { query: `input=${encodeURIComponent(JSON.stringify(input))}` }),
    });
  }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
export const tokenTransport = { "x-authlith-transport": "token" };

let counter = 0;
/** A unique email per call, so tests share one app without colliding. */
export const uniqueEmail = (label = "user") => `${label}.${process.pid}.${Date.now()}.${++counter}@example.com`;
export const PASSWORD = "correct horse battery staple";

/** The tRPC result data of a successful reply; fails loudly with the error otherwise. */
export function data<T = any>(reply: Reply): T {
  if (reply.status !== 200 || !reply.body?.result) {
    throw new Error(`expected success, got ${reply.status}: ${reply.raw.slice(0, 500)}`);
  }
  return reply.body.result.data as T;
}

/** The tRPC error `data` of a failed reply. */
export function errorOf(reply: Reply): { code: string; httpStatus: number; reason?: string; retryAfterSeconds?: number; fieldErrors?: Record<string, string[]> } {
  if (!reply.body?.error) throw new Error(`expected an error, got ${reply.status}: ${reply.raw.slice(0, 500)}`);
  return reply.body.error.data;
}

/**
 * For a describe block: a service started before its tests and closed after them, and clients
 * whose requests each come from an address of their own (so per-IP limits do not couple tests).
 */
export function useTestApp(backend: Backend, env: Env = {}): { readonly app: TestApp; client(options?: ClientOptions): TestClient } {
  let app: TestApp | undefined;
  let addresses = 0;
  beforeAll(async () => {
    app = await startTestApp(backend, env);
  });
  afterAll(async () => {
    await app?.close();
  });
  return {
    get app() {
      return app!;
    },
    client: (options = {}) => {
      addresses += 1;
      return app!.client({ origin: null, ip: `198.18.${Math.floor(addresses / 250) % 250}.${(addresses % 250) + 1}`, ...options });
    },
  };
}
