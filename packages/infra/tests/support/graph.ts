import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { generateSigningKey } from "@authlith/core";

export const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const EVALUATE = fileURLToPath(new URL("../../harness/evaluate.mjs", import.meta.url));

export interface GraphResource {
  type: string;
  name: string;
  inputs: Record<string, any>;
}

export interface Registration {
  type: string;
  name: string;
  parent?: string;
  dependsOn: string[];
  retainOnDelete: boolean;
  protect: boolean;
}

export interface RpcCall {
  method: string;
  input: any;
}

/** What harness/evaluate.mjs writes: one evaluation of sst.config.ts's run() under Pulumi mocks. */
export interface Graph {
  stage: string;
  dev: boolean;
  app: { name: string; stage: string; removal: string; protect: boolean };
  error?: string;
  outputs?: Record<string, unknown>;
  resources: GraphResource[];
  registrations: Registration[];
  /** `sst dev` commands: name, command, environment, autostart. */
  devCommands: { name: string; command?: string; environment?: Record<string, string>; autostart: boolean }[];
  rpc: RpcCall[];
}

/** Secrets as `sst secret set` would provide them: generated here, never committed. */
export async function testSecrets(): Promise<Record<string, string>> {
  const keys = { keys: [await generateSigningKey("ES256")] };
  return {
    SST_SECRET_SigningKeys: JSON.stringify(keys),
    SST_SECRET_HmacSecret: randomBytes(32).toString("base64url"),
  };
}

/**
 * Evaluates the app for a stage (in `sst dev` mode with `dev`) in a fresh Node process. `env`
 * replaces the deploy-time variables the app reads; variables left undefined are removed.
 */
export async function evaluateApp(options: { stage: string; dev?: boolean; env?: Record<string, string | undefined> }): Promise<Graph> {
  const dir = await mkdtemp(join(tmpdir(), "authlith-graph-"));
  const out = join(dir, "graph.json");
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("SST_SECRET_") || key.startsWith("AUTHLITH_")) delete env[key];
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  try {
    const args = [EVALUATE, "--stage", options.stage, ...(options.dev ? ["--dev"] : []), "--out", out];
    const run = await promisify(execFile)(process.execPath, args, { cwd: ROOT, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }).catch(
      // After a failed evaluation Pulumi's exit hook reports leaked promises and changes the exit
      // code: the graph file (with its error) is what counts.
      (error: { stderr?: string }) => error,
    );
    const text = await readFile(out, "utf8").catch(() => {
      throw new Error(`evaluate.mjs wrote no graph for ${options.stage}:\n${"stderr" in run ? run.stderr : ""}`);
    });
    return JSON.parse(text) as Graph;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- queries ----------------------------------------------------------------------------------

export const ofType = (graph: Graph, type: string): GraphResource[] => graph.resources.filter((r) => r.type === type);

export function resource(graph: Graph, type: string, name: string): GraphResource {
  const found = graph.resources.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no ${type} named ${name}; have: ${ofType(graph, type).map((r) => r.name).join(", ") || "none"}`);
  return found;
}

export function registration(graph: Graph, type: string, name: string): Registration {
  const found = graph.registrations.find((r) => r.type === type && r.name === name);
  if (!found) throw new Error(`no registration of ${type} ${name}`);
  return found;
}

/** What SST's CLI was asked to build for a function: handler, links, copyFiles, nodejs properties. */
export function buildInput(graph: Graph, functionId: string): any {
  const call = graph.rpc.find((c) => (c.method === "Runtime.Build" || c.method === "Runtime.AddTarget") && c.input?.functionID === functionId);
  if (!call) throw new Error(`function ${functionId} was not built; built: ${graph.rpc.filter((c) => c.input?.functionID).map((c) => c.input.functionID).join(", ")}`);
  return call.input;
}

/** Pulumi mocks keep secret-wrapped values as { <sig>: ..., value }: unwrap them. */
export function plain(value: any): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    if ("4dabf18193072939515e22adb298388d" in value) return plain(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A mocked resource's id and ARN, as the harness's mocks make them. */
export const mockId = (name: string): string => `${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-id`;
export const mockArn = (name: string): string => `arn:aws:mock:us-east-1:123456789012:${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
