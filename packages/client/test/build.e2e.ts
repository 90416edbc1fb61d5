import { startDevServer } from "@authlith/functions/dev-server";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildClient, type BuildResult } from "../scripts/build";

// The published package, as an app outside this repository gets it: built into a scratch
// project's node_modules, typechecked by a consumer with the strictest module settings, and run
// in plain Node against the dev server.

const REPO = fileURLToPath(new URL("../../..", import.meta.url));

const CONSUMER = `
import { AuthClientError, authHeaders, authLink, createAuthClient, memoryStorage, type AuthClient, type LoginResult, type MfaChallenge, type MfaMethod, type MfaStatus, type PasskeyInfo, type SessionEvent, type SessionInfo, type SignedIn, type StepUpProof, type User } from "@authlith/client";
import type { AppRouter } from "@authlith/client/router";
import { AuthProvider, useAuth, useSession } from "@authlith/client/react";
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { QueryClient } from "@tanstack/react-query";
import { createElement } from "react";

export async function demo(): Promise<string> {
  const auth: AuthClient = createAuthClient({ url: "https://auth.example.com", transport: "token", storage: memoryStorage() });
  const registered = await auth.register({ email: "ada@example.com", password: "correct horse battery staple", name: "Ada" });
  // @ts-expect-error no user before narrowing: with verification on, nobody is signed in yet
  void registered.user;
  if (registered.status === "verification_required") {
    const { email }: { email: string } = await auth.verifyEmail({ token: "from the link's #token=", password: "correct horse battery staple" });
    void email;
  }
  const answer: LoginResult = await auth.login({ email: "ada@example.com", password: "correct horse battery staple" });
  // @ts-expect-error no user before narrowing: an account with a second factor is not signed in yet
  void answer.user;
  const signedIn: SignedIn = answer.status === "mfa_required" ? await secondFactor(auth, answer) : answer;
  const user: User = signedIn.user;
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
  // Every procedure, typed, through the client's own tRPC proxy.
  const listed: { id: string; current: boolean }[] = (await auth.trpc.session.list.query()).sessions;
  void listed;
  return [me.user.email, sessions.length, user.createdAt].join(" ");
}

// The second step of a sign-in, and the account's second factors.
async function secondFactor(auth: AuthClient, challenge: MfaChallenge): Promise<SignedIn> {
  const methods: MfaMethod[] = challenge.methods;
  const expiresAt: string = challenge.expiresAt;
  void expiresAt;
  try {
    if (challenge.passkeyOptions) return await auth.verifyMfaWithPasskey(challenge);
  } catch (error) {
    if (!AuthClientError.is(error, "cancelled") && !AuthClientError.is(error, "passkey")) throw error;
  }
  // @ts-expect-error a code or a recovery code, not both missing
  await auth.verifyMfa({ challengeId: challenge.challengeId });
  if (methods.includes("recovery_code")) return auth.verifyMfa({ challengeId: challenge.challengeId, recoveryCode: "abcde-12345" });
  return auth.verifyMfa({ challengeId: challenge.challengeId, code: "123456" });
}
export async function settings(auth: AuthClient): Promise<number> {
  const passkeyUser: SignedIn = await auth.signInWithPasskey();
  void passkeyUser;
  const status: MfaStatus = await auth.mfa.status();
  const { qrCode, secret }: { qrCode: string; secret: string; uri: string } = await auth.mfa.totp.enroll();
  void qrCode;
  void secret;
  const first: string[] | null = (await auth.mfa.totp.confirm("123456")).recoveryCodes;
  const fresh: string[] = await auth.mfa.recoveryCodes.regenerate({ password: "correct horse battery staple", code: "123456" });
  const added: { passkey: PasskeyInfo; recoveryCodes: string[] | null } = await auth.mfa.passkeys.add({ name: "Laptop" });
  const listed: PasskeyInfo[] = await auth.mfa.passkeys.list();
  await auth.mfa.passkeys.rename(added.passkey.id, "Work laptop");
  const proof: StepUpProof = { password: "correct horse battery staple", passkey: true };
  const { mfaEnabled }: { mfaEnabled: boolean } = await auth.mfa.passkeys.delete(added.passkey.id, proof);
  await auth.mfa.totp.disable({ recoveryCode: fresh[0]! });
  // @ts-expect-error removing a factor takes a proof
  await auth.mfa.totp.disable();
  // @ts-expect-error a passkey proof is just true: the client runs the prompt
  await auth.mfa.totp.disable({ passkey: { challengeId: "", response: {} } });
  return status.passkeys.length + (first?.length ?? 0) + listed.length + Number(mfaEnabled);
}

// The published router type, with tRPC's own client and any API of the app's own behind authLink.
export async function withTRPC(auth: AuthClient) {
  const trpc = createTRPCClient<AppRouter>({
    links: [authLink(auth), httpBatchLink({ url: "https://auth.example.com/trpc", headers: authHeaders })],
  });
  const signedIn = await trpc.auth.login.mutate({ email: "ada@example.com", password: "correct horse battery staple" });
  // @ts-expect-error a second factor may be due: no tokens before narrowing
  void signedIn.accessTokenExpiresAt;
  const expires: string = "mfaRequired" in signedIn ? signedIn.expiresAt : signedIn.accessTokenExpiresAt;
  // Nested routers, typed.
  const enrolment: { secret: string; uri: string; qrCode: string } = await trpc.mfa.totp.enroll.mutate({ password: "correct horse battery staple" });
  const codesLeft: number = (await trpc.mfa.status.query()).recoveryCodesLeft;
  void enrolment;
  void codesLeft;
  // @ts-expect-error a code is a string
  await trpc.mfa.totp.confirm.mutate({ code: 123456 });
  const me: { id: string; email: string; emailVerified: boolean } = (await trpc.auth.me.query()).user;
  const registered = await trpc.auth.register.mutate({ email: "grace@example.com", password: "another long passphrase" });
  if ("status" in registered) {
    const pending: "verification_required" = registered.status;
    void pending;
  }
  // @ts-expect-error the password is required
  await trpc.auth.login.mutate({ email: "ada@example.com" });
  // @ts-expect-error me is a query
  await trpc.auth.me.mutate();
  // @ts-expect-error no such procedure
  await trpc.auth.deleteEverything.mutate();
  try {
    await trpc.session.revoke.mutate({ sessionId: "0190a0a0-0000-7000-8000-000000000000" });
  } catch (error) {
    if (error instanceof TRPCClientError) {
      const typed = error as TRPCClientError<AppRouter>;
      const reason: string | undefined = typed.data?.reason;
      const fields: Record<string, string[]> | undefined = typed.data?.fieldErrors;
      void reason;
      void fields;
    }
  }
  return [expires, me.email].join(" ");
}

// React: the provider, the session as state, and tRPC's TanStack Query integration on auth.trpc.
export function App(props: { auth: AuthClient }) {
  return createElement(AuthProvider, { client: props.auth }, createElement(Status));
}
function Status() {
  const session = useSession();
  const status: "loading" | "signed_in" | "signed_out" = session.status;
  const trpc = createTRPCOptionsProxy<AppRouter>({ client: useAuth().trpc, queryClient: new QueryClient() });
  const me = trpc.auth.me.queryOptions();
  const sessions = trpc.session.list.queryOptions();
  const factors = trpc.mfa.passkey.list.queryOptions();
  void factors;
  // @ts-expect-error no such procedure
  void trpc.auth.nothing;
  void me;
  void sessions;
  return session.user ? session.user.email : status;
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
await auth.verifyEmail({ token: decodeURIComponent(link.split("#token=")[1]), password: "correct horse battery staple" });
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
    // The client's dependency and its peer, as npm would install them beside it.
    await symlink(join(REPO, "node_modules/@trpc"), join(project, "node_modules/@trpc"), "dir");
    // What a React app with TanStack Query has installed.
    await mkdir(join(project, "node_modules/@types"), { recursive: true });
    await symlink(join(REPO, "node_modules/@simplewebauthn"), join(project, "node_modules/@simplewebauthn"), "dir");
    for (const name of ["react", "@types/react", "@tanstack"]) await symlink(join(REPO, "node_modules", name), join(project, "node_modules", name), "dir");
  }, 120_000);
  afterAll(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("is one self-contained ESM file with declarations that need no server types", async () => {
    const files = (await readdir(built.outDir)).sort();
    expect(files).toEqual([...built.files].sort());
    const code = await readFile(join(built.outDir, "index.js"), "utf8");
    // At run time it needs @trpc/client (a dependency) and its peer @trpc/server, nothing else;
    // @simplewebauthn/browser (a dependency) only when a passkey method runs.
    const imported = [...code.matchAll(/^\s*import\s[^"']*["']([^"']+)["']/gm)].map((m) => m[1]!);
    expect(new Set(imported)).toEqual(new Set(["@trpc/client", "@trpc/server/observable"]));
    const loaded = [...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]!);
    expect(new Set(loaded)).toEqual(new Set(["@simplewebauthn/browser"]));
    expect(await readFile(join(built.outDir, "react.js"), "utf8")).toMatch(/from "react"/);
    expect(code).not.toMatch(/\brequire\(/);
    for (const file of files.filter((f) => f.endsWith(".d.ts"))) {
      const text = await readFile(join(built.outDir, file), "utf8");
      expect(text, file).not.toMatch(/@authlith\/|from "(?!\.\/|@trpc\/client"|@trpc\/server"|react")/);
    }
    const manifest = JSON.parse(await readFile(join(built.outDir, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@authlith/client", type: "module", sideEffects: false });
    expect(manifest.dependencies).toEqual({ "@simplewebauthn/browser": "^14.0.0", "@trpc/client": "11.22.1" });
    expect(manifest.peerDependencies).toEqual({ "@trpc/server": "11.22.1", react: ">=18" });
    expect(manifest.exports["./router"]).toEqual({ types: "./router.d.ts", default: "./router.js" });
    expect(manifest.exports["./react"]).toEqual({ types: "./react.d.ts", default: "./react.js" });
    expect(manifest.peerDependenciesMeta).toEqual({ react: { optional: true } });
    // With the parts of @trpc/client it uses, as a browser downloads it: the budget.
    expect(built.size.gzipBytes).toBeLessThan(12 * 1024);
    // The passkey library, split off by the app's bundler and loaded on first use: its own budget.
    expect(built.lazySize.gzipBytes).toBeGreaterThan(0);
    expect(built.lazySize.gzipBytes).toBeLessThan(6 * 1024);
  });

  it.each([
    ["NodeNext", ts.ModuleKind.NodeNext, ts.ModuleResolutionKind.NodeNext],
    ["Bundler (a browser app)", ts.ModuleKind.ESNext, ts.ModuleResolutionKind.Bundler],
  ])("types an app end to end under strict %s settings with no ambient types, and refuses wrong calls", async (_name, module, moduleResolution) => {
    const file = join(project, "consumer.ts");
    await writeFile(file, CONSUMER);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module,
      moduleResolution,
      // @trpc/server's own declarations use Disposable (tRPC v11), hence esnext.disposable; every
      // declaration is checked (skipLibCheck off), ours and theirs.
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.esnext.disposable.d.ts"],
      types: [],
      skipLibCheck: false,
    });
    // Every declaration is checked (skipLibCheck off), but only problems in the app and in this
    // package count: tRPC's own declarations also reach for Node's `http` and `ws` types when the
    // TanStack integration is loaded, which an app with skipLibCheck (Vite's and Next's default) never sees.
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => !d.file || !/node_modules\/(@trpc|@tanstack)\//.test(d.file.fileName))
      .map((d) => `${d.file ? relative(project, d.file.fileName) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
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
