import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { createDevOutbox, generateSigningKey, type Db, type DevOutbox, type SigningAlgorithm } from "@authlith/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import type { Server } from "node:http";
import type { ApiHandler } from "./app";
import { parseEnvConfig, type Env, type RuntimeConfig } from "./config";
import { createLocalServer } from "./local-server";
import { createRuntime, type Runtime } from "./runtime";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../../drizzle", import.meta.url));

/** Reads a file, or creates it with `make()` (mode 0600: it holds development secrets). */
async function readOrCreate(path: string, make: () => Promise<string>): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    const content = await make();
    await writeFile(path, content, { mode: 0o600 });
    await chmod(path, 0o600);
    return content;
  }
}

/** The environment with the development key set and HMAC secret of `dataDir` (made on first use). */
export async function withDevSecrets(env: Env, dataDir: string): Promise<Env> {
  const alg = (env.AUTHLITH_SIGNING_ALG ?? "ES256") as SigningAlgorithm;
  const devEnv: Env = { ...env };
  devEnv.AUTHLITH_SIGNING_KEYS ??= await readOrCreate(join(dataDir, `dev-keys-${alg.toLowerCase()}.json`), async () =>
    JSON.stringify({ keys: [await generateSigningKey(alg)] }, null, 2),
  );
  devEnv.AUTHLITH_HMAC_SECRET ??= (
    await readOrCreate(join(dataDir, "dev-hmac-secret"), async () => randomBytes(32).toString("base64url"))
  ).trim();
  return devEnv;
}

/**
 * `npm run dev`: the Lambda handler on a local port. Without DATABASE_URL, PGlite under the data
 * directory (migrations applied at start); without REDIS_URL, the in-process store; a development
 * key set and HMAC secret are generated once and kept in the data directory.
 */
export async function startDevServer(env: Env = process.env) {
  const port = Number(env.PORT ?? 3000);
  const dataDir = resolve(env.AUTHLITH_DATA_DIR ?? ".data");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const devEnv = await withDevSecrets(env, dataDir);
  // Bind first, so that PORT=0 (any free port) still gives a correct issuer and URL; requests
  // that arrive before the runtime is ready wait for it.
  let resolveReady!: (handle: ApiHandler) => void;
  let rejectReady!: (error: unknown) => void;
  const ready = new Promise<ApiHandler>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {}); // a failed start is reported by startDevServer itself
  // The development outbox: every mail printed as one line with its link, and listed at
  // GET /dev/mail (this server only; the Lambda has no such route).
  const outbox = createDevOutbox({ print: (line) => process.stdout.write(`${line}\n`) });
  const server = createLocalServer(
    async (event, context) => (event.rawPath === "/dev/mail" ? devMail(event, outbox) : (await ready)(event, context)),
    (error) => process.stderr.write(`dev server: ${String(error)}\n`),
  );
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(port, env.HOST ?? "127.0.0.1", () => resolveListen());
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;

  try {
    devEnv.AUTHLITH_ISSUER ??= `http://localhost:${actualPort}`;
    devEnv.AUTHLITH_ALLOWED_ORIGINS ??= "http://localhost:5173,http://127.0.0.1:5173";
    const config = parseEnvConfig(devEnv);
    let embedded: { db: Db; close(): Promise<void> } | undefined;
    if (!config.database) {
      // Imported only here: PGlite never reaches the Lambda bundle.
      const { createPgliteDb } = await import("@authlith/core/db/pglite");
      const pglite = await createPgliteDb({ dataDir: join(dataDir, "pglite"), migrationsFolder: MIGRATIONS_FOLDER });
      embedded = { db: pglite.db, close: pglite.close };
    }
    const runtime = await createRuntime(config, { ...(embedded ? { db: embedded } : {}), ...(config.mail ? {} : { outbox }) });
    resolveReady(runtime.handle);
    return devServer(server, runtime, config, actualPort, dataDir);
  } catch (error) {
    rejectReady(error);
    server.close();
    throw error;
  }
}

/** GET /dev/mail: the outbox, newest first. */
function devMail(event: APIGatewayProxyEventV2, outbox: DevOutbox): APIGatewayProxyStructuredResultV2 {
  if (event.requestContext.http.method !== "GET") return { statusCode: 405, headers: { allow: "GET" }, body: "" };
  const mails = outbox.list().reverse().map(({ to, subject, kind, link, text, sentAt }) => ({ sentAt, kind, to, subject, link, text }));
  return { statusCode: 200, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify({ mails }) };
}

function devServer(server: Server, runtime: Runtime, config: RuntimeConfig, actualPort: number, dataDir: string) {
  return {
    url: `http://localhost:${actualPort}`,
    port: actualPort,
    config,
    description: {
      database: config.database ? "Postgres (DATABASE_URL)" : `PGlite (${join(dataDir, "pglite")})`,
      store: config.redis ? "Redis (REDIS_URL)" : "in-process",
      dataDir,
    },
    async close() {
      await new Promise<void>((done) => server.close(() => done()));
      await runtime.close();
    },
  };
}

async function main() {
  const dev = await startDevServer();
  const { url } = dev;
  process.stdout.write(
    [
      ``,
      `authlith dev server listening on ${url}`,
      `  database: ${dev.description.database}`,
      `  store:    ${dev.description.store}`,
      `  issuer:   ${dev.config.auth.issuer}`,
      `  origins:  ${dev.config.http.allowedOrigins.join(", ")}`,
      ``,
      `Try it:`,
      `  curl -s ${url}/health`,
      `  curl -s ${url}/.well-known/jwks.json`,
      `  curl -s -X POST ${url}/trpc/auth.register -H 'content-type: application/json' \\`,
      `       -d '{"email":"ada@example.com","password":"correct horse battery staple"}'`,
      `  # the verification link is printed here as "mail email_verification to ...": its #token=`,
      `  curl -s -X POST ${url}/trpc/account.verifyEmail -H 'content-type: application/json' -d '{"token":"<token>","password":"correct horse battery staple"}'`,
      `  curl -s -X POST ${url}/trpc/auth.login -H 'content-type: application/json' -H 'x-authlith-transport: token' \\`,
      `       -d '{"email":"ada@example.com","password":"correct horse battery staple"}'`,
      `  curl -s ${url}/trpc/auth.me -H "authorization: Bearer <accessToken from above>"`,
      `  curl -s ${url}/dev/mail      # mails this server "sent" (printed here too)`,
      ...(dev.config.auth.requireEmailVerification === false ? [`  (email verification is off: register signs in at once)`] : []),
      ``,
      `READY ${url}`,
      ``,
    ].join("\n"),
  );
  const stop = async () => {
    await dev.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
