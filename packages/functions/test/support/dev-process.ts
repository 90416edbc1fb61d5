import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface DevServerProcess {
  url: string;
  process: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `npm run dev`'s entry point in its own process, as a newcomer runs it (its clock is the real
 * one, whatever a test does to its own): PGlite and the in-process store in `dataDir`, whatever
 * the caller's environment says about databases. Started again on the same data directory it
 * keeps its users, sessions and keys, unless `env` brings other keys.
 */
export async function startDevServerProcess(dataDir: string, port: number, env: Record<string, string> = {}): Promise<DevServerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), AUTHLITH_DATA_DIR: dataDir, ...env };
  for (const name of ["DATABASE_URL", "REDIS_URL", "AUTHLITH_SIGNING_KEYS", "AUTHLITH_HMAC_SECRET", "AUTHLITH_ISSUER"]) {
    if (!(name in env)) delete childEnv[name];
  }
  const child = spawn(process.execPath, ["--import", "tsx", "packages/functions/src/dev-server.ts"], { cwd: ROOT, env: childEnv });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += String(chunk)));
  child.stderr!.on("data", (chunk) => (output += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev server did not start:\n${output}`)), 60_000);
    child.stdout!.on("data", () => {
      const match = /READY (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`dev server exited (${code}):\n${output}`)));
  });
  return {
    url,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The token in the last mail of `kind` to `email`, from a dev server's outbox (GET /dev/mail). */
export async function mailedToken(serverUrl: string, email: string, kind = "email_verification"): Promise<string> {
  const { mails } = (await (await fetch(`${serverUrl}/dev/mail`)).json()) as { mails: { to: string; kind: string; link?: string }[] };
  // Newest first.
  const mail = mails.find((m) => m.to.toLowerCase() === email.toLowerCase() && m.kind === kind);
  if (!mail?.link) throw new Error(`no ${kind} mail to ${email} in the dev outbox`);
  return decodeURIComponent(mail.link.split("#token=")[1]!);
}

/**
 * A sign-in's answer as a session: `@authlith/client`'s `login()` answers `{ status: "mfa_required" }`
 * for an account with a second factor, which the accounts of these tests do not have.
 */
export function expectSignedIn<Result extends { status: string }>(result: Result): Extract<Result, { status: "signed_in" }> {
  if (result.status !== "signed_in") throw new Error(`expected a session, got ${result.status}`);
  return result as Extract<Result, { status: "signed_in" }>;
}

interface SigningUpClient<Result extends { status: string }> {
  register(input: { email: string; password: string; name?: string }): Promise<{ status: "signed_in" | "verification_required" }>;
  verifyEmail(input: { token: string; password: string }): Promise<unknown>;
  login(input: { email: string; password: string }): Promise<Result>;
}

/**
 * Signs up as a user of the dev server does with email verification on (its default): register,
 * follow the link from the outbox, sign in. Resolves to the session the sign-in answered.
 */
export async function signUp<Result extends { status: string }>(
  client: SigningUpClient<Result>,
  serverUrl: string,
  input: { email: string; password: string; name?: string },
): Promise<Extract<Result, { status: "signed_in" }>> {
  const registered = await client.register(input);
  if (registered.status !== "verification_required") throw new Error(`expected verification_required, got ${registered.status}`);
  await client.verifyEmail({ token: await mailedToken(serverUrl, input.email), password: input.password });
  return expectSignedIn(await client.login({ email: input.email, password: input.password }));
}
