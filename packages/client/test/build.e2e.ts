import { startDevServer } from "@authlith/functions/dev-server";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildClient, type BuildResult } from "../scripts/build";

// The published package, as an app outside this repository gets it: built into a scratch
// project's node_modules, typechecked by a consumer with the strictest module settings, and run
// in plain Node against the dev server.

const CONSUMER = `
import { AuthClientError, createAuthClient, memoryStorage, type AuthClient, type SessionEvent, type SessionInfo, type User } from "@authlith/client";

export async function demo(): Promise<string> {
  const auth: AuthClient = createAuthClient({ url: "https://auth.example.com", transport: "token", storage: memoryStorage() });
  const registered = await auth.register({ email: "ada@example.com", password: "correct horse battery staple", name: "Ada" });
  // @ts-expect-error no user before narrowing: with verification on, nobody is signed in yet
  void registered.user;
  if (registered.status === "verification_required") {
    const { email }: { email: string } = await auth.verifyEmail({ token: "from the link's #token=" });
    void email;
  }
  const user: User = (await auth.login({ email: "ada@example.com", password: "correct horse battery staple" })).user;
  const me = await auth.me();
  const sessions: SessionInfo[] = await auth.sessions.list();
  auth.onSessionChange((event: SessionEvent) => {
    if (event.type === "signed_out") {
      const reason: "logout" | "expired" | "revoked" = event.reason;
      void reason;
    }
  });
  try {
    await auth.login({ email: user.email, password: "guess" });
  } catch (error) {
    if (AuthClientError.is(error, "rate_limited")) return String(error.retryAfterSeconds);
    if (error instanceof AuthClientError && error.kind === "validation") return Object.keys(error.fieldErrors).join();
  }
  // @ts-expect-error the password is required
  await auth.login({ email: "ada@example.com" });
  // @ts-expect-error unknown fields are refused by the types, as by the server
  await auth.register({ email: "ada@example.com", password: "correct horse battery staple", admin: true });
  // @ts-expect-error session ids are strings
  await auth.sessions.revoke(42);
  // @ts-expect-error no such method
  await auth.deleteEverything();
  // @ts-expect-error me() has no password
  void me.user.password;
  // @ts-expect-error not an error kind
  if (AuthClientError.is(null, "teapot")) return "";
  return [me.user.email, sessions.length, user.createdAt].join(" ");
}
`;

const RUN = `
import { createAuthClient } from "@authlith/client";
const auth = createAuthClient({ url: process.env.API_URL });
const email = "node-" + Date.now() + "@example.com";
const registered = await auth.register({ email, password: "correct horse battery staple" });
// Email verification is on (the server's default): the link is in the dev server's outbox.
const { mails } = await (await fetch(process.env.API_URL + "/dev/mail")).json();
const link = mails.find((mail) => mail.to === email && mail.kind === "email_verification").link;
await auth.verifyEmail({ token: decodeURIComponent(link.split("#token=")[1]) });
await auth.login({ email, password: "correct horse battery staple" });
const me = await auth.me();
const sessions = await auth.sessions.list();
await auth.logout();
const after = await auth.me().then(() => "still signed in", (error) => error.kind + " " + error.reason);
console.log(JSON.stringify({ registered: registered.status, verified: me.user.emailVerified, transport: auth.transport, same: me.user.email === email, sessions: sessions.length, after }));
`;


describe("the published @authlith/client", () => {
  let project: string;
  let built: BuildResult;

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), "authlith-consumer-"));
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
    built = await buildClient({ outDir: join(project, "node_modules/@authlith/client") });
  }, 120_000);
  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("is one self-contained ESM file with declarations that need no server types", async () => {
    const files = (await readdir(built.outDir)).sort();
    expect(files).toEqual([...built.files].sort());
    const code = await readFile(join(built.outDir, "index.js"), "utf8");
    expect(code).not.toMatch(/^\s*import\s|\brequire\(/m); // no dependency at run time
    for (const file of files.filter((f) => f.endsWith(".d.ts"))) {
      const text = await readFile(join(built.outDir, file), "utf8");
      expect(text, file).not.toMatch(/@authlith\/|@trpc\/|from "(?!\.\/)/);
    }
    const manifest = JSON.parse(await readFile(join(built.outDir, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@authlith/client", type: "module", sideEffects: false });
    expect(manifest.dependencies).toBeUndefined();
    expect(built.size.gzipBytes).toBeLessThan(5 * 1024);
  });

  it("types an app end to end under strict NodeNext settings, and refuses wrong calls", async () => {
    const file = join(project, "consumer.ts");
    await writeFile(file, CONSUMER);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: [],
      skipLibCheck: false,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    expect(problems).toEqual([]);
  }, 60_000);

  it("runs in plain Node (token transport by default) against the dev server", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "authlith-consumer-api-"));
    const api = await startDevServer({ PORT: "0", AUTHLITH_DATA_DIR: dataDir, LOG_LEVEL: "warn" });
    try {
      await mkdir(project, { recursive: true });
      await writeFile(join(project, "run.mjs"), RUN);
      const { stdout } = await promisify(execFile)(process.execPath, ["run.mjs"], {
        cwd: project,
        env: { PATH: process.env.PATH, API_URL: api.url },
      });
      expect(JSON.parse(stdout)).toEqual({
        registered: "verification_required",
        verified: true,
        transport: "token",
        same: true,
        sessions: 1,
        after: "unauthorized NOT_SIGNED_IN",
      });
    } finally {
      await api.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
