import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { builtinModules } from "node:module";
import { cp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { build, type Metafile } from "esbuild";
import { ROOT } from "./graph";

/** What SST forces external besides `nodejs.install` (pkg/runtime/node/build.go). */
const FORCE_EXTERNAL = ["sharp", "pg-native"];

export interface BundleOptions {
  /** As in sst.config.ts: "packages/functions/src/handler.handler". */
  handler: string;
  /** Output directory: the function package's root (/var/task on Lambda). Keep it outside the repo. */
  out: string;
  install?: readonly string[];
  /** Left out of the bundle and not installed: the runtime provides them (RUNTIME_PROVIDED). */
  external?: readonly string[];
  copyFiles?: { from: string; to: string }[];
  /**
   * `nodejs.splitting` (as sst.config.ts sets it for the API): a dynamically imported module goes
   * to a chunk of its own, loaded on first use, not parsed at cold start.
   */
  splitting?: boolean;
}

export interface Bundle {
  dir: string;
  /** The ES module Lambda imports, relative to `dir`. */
  file: string;
  exportName: string;
  /** What a cold start loads: the entry and the chunks it imports statically. */
  bytes: number;
  /** Every file written, lazily loaded chunks included. */
  totalBytes: number;
  /** The output files a cold start loads (metafile paths). */
  eager: string[];
  metafile: Metafile;
  /** Imports left to the runtime: Node built-ins and installed packages. */
  externals: string[];
}

/**
 * Bundles a handler as SST's Node runtime does for `sst deploy`: esbuild, ESM, platform node, target
 * esnext, keepNames, minified, no source map, `require`/`__filename`/`__dirname` provided by a banner,
 * native packages external; the file keeps its path under the package root. Then copies `copyFiles`
 * and writes the package.json SST writes for `nodejs.install`.
 */
export async function bundleFunction(options: BundleOptions): Promise<Bundle> {
  const exportName = options.handler.slice(options.handler.lastIndexOf(".") + 1);
  const source = options.handler.slice(0, options.handler.lastIndexOf("."));
  const file = `${source}.mjs`;
  const outfile = join(options.out, file);
  const result = await build({
    entryPoints: [join(ROOT, `${source}.ts`)],
    // Metafile inputs relative to the repository root, as SST (run from the root) sees them.
    absWorkingDir: ROOT,
    ...(options.splitting
      ? {
          splitting: true,
          outdir: join(options.out, dirname(file)),
          entryNames: "[name]",
          chunkNames: "chunks/[name]-[hash]",
          outExtension: { ".js": ".mjs" },
        }
      : { outfile }),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "esnext",
    keepNames: true,
    minify: true,
    sourcemap: false,
    metafile: true,
    mainFields: ["module", "main"],
    external: [...FORCE_EXTERNAL, ...(options.install ?? []), ...(options.external ?? [])],
    banner: {
      js: [
        `import { createRequire as topLevelCreateRequire } from 'module';`,
        `const require = topLevelCreateRequire(import.meta.url);`,
        `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
        `const __filename = topLevelFileUrlToPath(import.meta.url)`,
        `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
      ].join("\n"),
    },
    logLevel: "error",
  });
  for (const copy of options.copyFiles ?? []) await cp(join(ROOT, copy.from), join(options.out, copy.to), { recursive: true });
  if (options.install?.length) {
    const functionsPackage = JSON.parse(await readFile(join(ROOT, "packages/functions/package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const dependencies = Object.fromEntries(options.install.map((name) => [name, functionsPackage.dependencies[name] ?? "*"]));
    await writeFile(join(options.out, "package.json"), JSON.stringify({ dependencies }));
  }
  const externals = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) if (imported.external) externals.add(imported.path);
  }
  // The entry's own bytes and those of every chunk it imports statically, transitively.
  const outputs = result.metafile.outputs;
  const entry = Object.keys(outputs).find((path) => outputs[path]!.entryPoint)!;
  const eager = new Set<string>();
  const visit = (path: string) => {
    if (eager.has(path)) return;
    eager.add(path);
    for (const imported of outputs[path]!.imports) if (imported.kind === "import-statement" && outputs[imported.path]) visit(imported.path);
  };
  visit(entry);
  const sizeOf = async (path: string) => (await stat(join(ROOT, path))).size;
  const bytes = (await Promise.all([...eager].map(sizeOf))).reduce((a, b) => a + b, 0);
  const totalBytes = (await Promise.all(Object.keys(outputs).map(sizeOf))).reduce((a, b) => a + b, 0);
  return { dir: options.out, file, exportName, bytes, totalBytes, eager: [...eager], metafile: result.metafile, externals: [...externals].sort() };
}

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** The package an import specifier names ("@scope/pkg/sub" → "@scope/pkg"), or null for a built-in. */
export function packageOf(specifier: string): string | null {
  // "<runtime>" is esbuild's own helper module, never a package.
  if (specifier.startsWith("<") || BUILTINS.has(specifier) || BUILTINS.has(specifier.split("/")[0]!)) return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/**
 * The offline stand-in for SST's `npm install --os=linux --cpu=<arch>` in the bundle directory,
 * for this machine: copies each package, and the dependencies and optional (platform) packages
 * that are installed here, from the workspace's node_modules.
 */
export async function installFromWorkspace(dir: string, names: readonly string[]): Promise<string[]> {
  const copied = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (copied.has(name)) return;
    const from = join(ROOT, "node_modules", name);
    const manifest = await readFile(join(from, "package.json"), "utf8").catch(() => null);
    if (manifest === null) return; // an optional package for another platform
    copied.add(name);
    await mkdir(dirname(join(dir, "node_modules", name)), { recursive: true });
    await cp(from, join(dir, "node_modules", name), { recursive: true, dereference: true });
    const pkg = JSON.parse(manifest) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) await visit(dep);
  };
  for (const name of names) await visit(name);
  return [...copied].sort();
}

/**
 * Encrypts linked resources the way SST ships them in a deployed function: `resource.enc` in the
 * package root, AES-256-GCM with a zero nonce, the key in SST_KEY. Returns the environment to run with.
 */
export async function writeLinkedResources(dir: string, links: Record<string, unknown>): Promise<Record<string, string>> {
  const key = randomBytes(32);
  const cipher = createCipheriv("aes-256-gcm", key, Buffer.alloc(12, 0));
  const encrypted = Buffer.concat([cipher.update(JSON.stringify(links)), cipher.final(), cipher.getAuthTag()]);
  await writeFile(join(dir, "resource.enc"), encrypted);
  return { SST_KEY: key.toString("base64"), SST_KEY_FILE: "resource.enc" };
}

export interface Invocation {
  /** A payload format 2.0 event, or anything the handler takes. */
  event: unknown;
}

/**
 * Starts a fresh Node process in the bundle directory (as Lambda does in /var/task), imports the
 * bundle, calls its handler once per event in order, and returns the results, the time to the
 * first result and the process's own output.
 */
export async function invokeBundle(
  bundle: Bundle,
  events: unknown[],
  env: Record<string, string>,
): Promise<{ results: { ok: boolean; value?: any; error?: string }[]; coldStartMs: number; stderr: string; stdout: string }> {
  const runner = join(bundle.dir, "__invoke.mjs");
  await writeFile(
    runner,
    [
      `const started = performance.now();`,
      `const mod = await import(${JSON.stringify(`./${bundle.file}`)});`,
      `const handler = mod[${JSON.stringify(bundle.exportName)}];`,
      `const events = JSON.parse(process.env.__EVENTS);`,
      `const results = [];`,
      `let coldStartMs;`,
      `for (const event of events) {`,
      `  try { results.push({ ok: true, value: await handler(event, { awsRequestId: "local", functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, getRemainingTimeInMillis: () => 10000 }) }); }`,
      `  catch (error) { results.push({ ok: false, error: String(error?.stack ?? error) }); }`,
      `  coldStartMs ??= performance.now() - started;`,
      `}`,
      `process.stdout.write("\\n__RESULT__" + JSON.stringify({ results, coldStartMs }) + "\\n");`,
      `process.exit(0);`,
    ].join("\n"),
  );
  const child = spawn(process.execPath, [runner], {
    cwd: bundle.dir,
    // Only what Lambda would provide: no NODE_PATH, nothing from this test process.
    env: { PATH: process.env.PATH ?? "", LAMBDA_TASK_ROOT: bundle.dir, __EVENTS: JSON.stringify(events), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.on("close", done));
  const marker = stdout.lastIndexOf("__RESULT__");
  if (marker < 0) throw new Error(`the bundle's process exited with ${code} and no result:\n${stderr}\n${stdout}`);
  const { results, coldStartMs } = JSON.parse(stdout.slice(marker + "__RESULT__".length)) as {
    results: { ok: boolean; value?: any; error?: string }[];
    coldStartMs: number;
  };
  return { results, coldStartMs, stderr, stdout: stdout.slice(0, marker) };
}

/** An API Gateway HTTP API (payload format 2.0) event, as the `ANY /trpc/{proxy+}` style routes send. */
export function apiEvent(request: {
  method?: string;
  path: string;
  query?: string;
  headers?: Record<string, string>;
  body?: unknown;
  routeKey?: string;
}) {
  const method = request.method ?? "GET";
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  return {
    version: "2.0",
    routeKey: request.routeKey ?? `${method} ${request.path}`,
    rawPath: request.path,
    rawQueryString: request.query ?? "",
    headers: {
      host: "mockapi.execute-api.us-east-1.amazonaws.com",
      "user-agent": "authlith-infra-test",
      ...(body ? { "content-type": "application/json" } : {}),
      ...request.headers,
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "mockapi",
      domainName: "mockapi.execute-api.us-east-1.amazonaws.com",
      domainPrefix: "mockapi",
      http: { method, path: request.path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "authlith-infra-test" },
      requestId: `req-${randomBytes(6).toString("hex")}`,
      routeKey: request.routeKey ?? `${method} ${request.path}`,
      stage: "$default",
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: false,
  };
}
