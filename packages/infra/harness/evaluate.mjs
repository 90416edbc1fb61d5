// Evaluates sst.config.ts's run() the way `sst deploy` / `sst dev` does, but under Pulumi mocks:
// no pulumi CLI, no AWS. Writes the resource graph as JSON for the tests to assert on.
//
//   node packages/infra/harness/evaluate.mjs --stage prod [--dev] --out graph.json
//
// Secrets come from SST_SECRET_<Name>, deploy-time settings from AUTHLITH_* (as with `sst deploy`).
// AUTHLITH_EVAL_TRACE=1 prints progress; AUTHLITH_EVAL_KEEP=1 keeps the bundled config.
//
// What it takes (see ../../shared/SST.md): bundle sst.config.ts as the CLI does (SST's own esbuild,
// the shim injected, `aws` and `sst` as globals, @pulumi/* external, output inside .sst/platform),
// set mocks on the platform's copy of @pulumi/pulumi, fake the CLI's RPC server, run inside the
// Pulumi stack, and wait until nothing is left registering.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    stage: { type: "string" },
    dev: { type: "boolean", default: false },
    out: { type: "string" },
    root: { type: "string" },
  },
});
if (!args.stage || !args.out) throw new Error("usage: evaluate.mjs --stage <stage> [--dev] --out <file.json>");

const root = resolve(args.root ?? join(dirname(fileURLToPath(import.meta.url)), "../../.."));
const platform = join(root, ".sst", "platform");
const platformRequire = createRequire(join(platform, "package.json"));
const pulumi = platformRequire("@pulumi/pulumi");
const esbuild = platformRequire("esbuild");

const scratch = mkdtempSync(join(tmpdir(), "authlith-eval-"));
const rpcCalls = [];
const resources = [];
const registrations = [];
const invokes = [];

// ---- the CLI's RPC server -------------------------------------------------------------------
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const { method, params } = JSON.parse(body);
    const input = params?.[0];
    rpcCalls.push({ method, input });
    let result;
    let error = null;
    switch (method) {
      case "Provider.Aws.Bootstrap":
        result = {
          asset: "sst-asset-mock",
          assetEcrRegistryId: "123456789012",
          assetEcrUrl: "123456789012.dkr.ecr.us-east-1.amazonaws.com/sst-asset",
          state: "sst-state-mock",
          appsyncHttp: "mock.appsync-api.us-east-1.amazonaws.com",
          appsyncRealtime: "mock.appsync-realtime-api.us-east-1.amazonaws.com",
        };
        break;
      case "Provider.Aws.Appsync":
        result = { http: "mock.appsync-api.us-east-1.amazonaws.com", realtime: "mock.appsync-realtime-api.us-east-1.amazonaws.com" };
        break;
      case "Runtime.Build": {
        // The real CLI bundles here (the bundle test does that part); a placeholder is enough to zip.
        const out = join(scratch, "artifacts", input.functionID);
        mkdirSync(out, { recursive: true });
        writeFileSync(join(out, "index.mjs"), "export const handler = async () => ({});\n");
        result = { handler: "index.handler", out, errors: [], sourcemaps: [] };
        break;
      }
      case "Runtime.AddTarget":
        result = {};
        break;
      default:
        error = `rpc: can't find method ${method}`;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: null, result: result ?? null, error }));
  });
});
await new Promise((done) => server.listen(0, "127.0.0.1", done));
process.env.SST_SERVER = `http://127.0.0.1:${server.address().port}`;
process.env.SST_AWS_REGION = "us-east-1";

// ---- Pulumi mocks ----------------------------------------------------------------------------
const region = "us-east-1";
const account = "123456789012";
const slug = (name) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-");

function outputsFor(type, name, inputs) {
  const id = `${slug(name)}-id`;
  const arn = `arn:aws:mock:${region}:${account}:${slug(name)}`;
  const base = { ...inputs, id, arn, name: inputs.name ?? `${slug(name)}-name` };
  switch (type) {
    case "aws:rds/instance:Instance":
      return { ...base, identifier: slug(name), address: `${slug(name)}.mock.${region}.rds.amazonaws.com`, endpoint: `${slug(name)}.mock.${region}.rds.amazonaws.com:5432`, port: 5432 };
    case "aws:rds/proxy:Proxy":
      return { ...base, endpoint: `${slug(name)}.proxy-mock.${region}.rds.amazonaws.com` };
    case "aws:elasticache/replicationGroup:ReplicationGroup":
      return { ...base, clusterEnabled: false, primaryEndpointAddress: `master.${slug(name)}.mock.use1.cache.amazonaws.com`, configurationEndpointAddress: "", port: 6379 };
    case "aws:apigatewayv2/api:Api":
      return { ...base, apiEndpoint: "https://mockapi.execute-api.us-east-1.amazonaws.com", executionArn: `arn:aws:execute-api:${region}:${account}:mockapi` };
    case "aws:apigatewayv2/domainName:DomainName":
      return { ...base, domainNameConfiguration: { targetDomainName: "d-mock.execute-api.us-east-1.amazonaws.com", hostedZoneId: "Z2MOCK" } };
    case "aws:lambda/function:Function":
      return { ...base, invokeArn: `arn:aws:apigateway:${region}:lambda:path/functions/${arn}/invocations`, qualifiedArn: `${arn}:$LATEST` };
    case "random:index/randomPassword:RandomPassword":
      return { ...base, result: `mock-password-${slug(name)}` };
    case "random:index/randomBytes:RandomBytes":
      return { ...base, base64: Buffer.alloc(inputs.length ?? 32, 7).toString("base64"), hex: Buffer.alloc(inputs.length ?? 32, 7).toString("hex") };
    default:
      return base;
  }
}

await pulumi.runtime.setMocks(
  {
    newResource(resource) {
      const state = outputsFor(resource.type, resource.name, resource.inputs);
      resources.push({ type: resource.type, name: resource.name, inputs: resource.inputs });
      return { id: state.id, state };
    },
    call(call) {
      invokes.push(call.token);
      switch (call.token) {
        case "aws:index/getRegion:getRegion":
          return { name: region, region, id: region, description: "mock" };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { accountId: account, arn: `arn:aws:iam::${account}:user/mock`, userId: "mock", id: account };
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
          return { names: [`${region}a`, `${region}b`, `${region}c`], zoneIds: ["use1-az1", "use1-az2", "use1-az3"], id: region };
        case "aws:iam/getPolicyDocument:getPolicyDocument":
          return { json: JSON.stringify({ Version: "2012-10-17", Statement: call.inputs.statements ?? [] }), id: "policy" };
        case "aws:ec2/getAmi:getAmi":
          return { id: "ami-mock", imageId: "ami-mock", architecture: "arm64" };
        default:
          return call.inputs;
      }
    },
  },
  "authlith",
  args.stage,
  false,
);

// Dependencies, parents and retention are not in the mock's arguments: keep each registration's
// options (SST's own transformations mutate them in place) and read them once all is registered.
// Dev commands keep their settings in component outputs, which mocks do not see: record them.
const devCommands = [];
const registerOutputs = pulumi.ComponentResource.prototype.registerOutputs;
pulumi.ComponentResource.prototype.registerOutputs = function (outputs) {
  if (this.__pulumiType === "sst:sst:DevCommand" && outputs) {
    const name = this.__name;
    devCommands.push(new Promise((done) => pulumi.output(outputs).apply((value) => done({ name, ...value._dev }))));
  }
  return registerOutputs.call(this, outputs);
};
const recordRegistrations = () =>
  pulumi.runtime.registerStackTransformation((t) => {
    registrations.push({ type: t.type, name: t.name, opts: t.opts });
    return undefined;
  });
const describeRegistration = ({ type, name, opts }) => ({
  type,
  name,
  parent: opts.parent?.__name,
  dependsOn: [opts.dependsOn].flat().filter(Boolean).map((r) => r.__name),
  retainOnDelete: opts.retainOnDelete ?? false,
  protect: opts.protect ?? false,
});

// ---- bundle sst.config.ts as the CLI does ---------------------------------------------------
const outfile = join(platform, `.authlith-eval-${process.pid}.mjs`);
await esbuild.build({
  stdin: {
    contents: [
      // The CLI's provider shim: \`aws\` and \`sst\` are globals of sst.config.ts.
      `import * as aws from "@pulumi/aws";`,
      `import * as sst from ${JSON.stringify(join(platform, "src/components/index.ts"))};`,
      `globalThis.aws = aws;`,
      `globalThis.sst = sst;`,
      `import { run } from ${JSON.stringify(join(platform, "src/auto/run.ts"))};`,
      `import mod from ${JSON.stringify(join(root, "sst.config.ts"))};`,
      `export const app = mod.app;`,
      `export const program = () => run(mod.run);`,
    ].join("\n"),
    resolveDir: root,
    sourcefile: "eval.ts",
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  platform: "node",
  outfile,
  // esbuild stays external: bundled, its worker thread would re-run this very file.
  external: ["@pulumi/*", "@aws-sdk/*", "esbuild"],
  mainFields: ["module", "main"],
  inject: [join(platform, "src/shim/run.js")],
  define: { $app: "globalThis.__sstApp", $cli: "globalThis.__sstCli", $dev: "globalThis.__sstDev" },
  banner: {
    js: [
      `import { createRequire as topLevelCreateRequire } from "module";`,
      `const require = topLevelCreateRequire(import.meta.url);`,
    ].join("\n"),
  },
  logLevel: "error",
});

// Components read $app at module load; app() (from the same bundle) refines it just below, as the
// CLI's separate evaluation of app() does before it builds run().
globalThis.__sstApp = { name: "authlith", stage: args.stage, removal: "retain", protect: false, providers: { aws: {} } };
// Errors thrown inside apply callbacks (a missing secret, say) surface as unhandled rejections:
// Pulumi would fail the deploy with them, so they are the evaluation's error.
const asyncFailures = [];
process.on("unhandledRejection", (error) => asyncFailures.push(error));
process.on("uncaughtException", (error) => asyncFailures.push(error));
let graph;
if (process.env.AUTHLITH_EVAL_TRACE) console.error("[eval] built", outfile);
try {
  const mod = await import(pathToFileURL(outfile).href);
  const app = await mod.app({ stage: args.stage });
  globalThis.__sstApp = { name: app.name, stage: args.stage, removal: app.removal ?? "retain", protect: app.protect ?? false, providers: app.providers ?? { aws: {} }, home: app.home };
  globalThis.__sstDev = args.dev;
  globalThis.__sstCli = {
    command: args.dev ? "dev" : "deploy",
    rpc: process.env.SST_SERVER,
    paths: { home: join(scratch, "home"), root, work: join(scratch, "work"), platform },
    state: { version: {} },
  };

  let outputs;
  let failure;
  const trace = process.env.AUTHLITH_EVAL_TRACE ? (...m) => console.error("[eval]", ...m) : () => {};
  trace("running program");
  await pulumi.runtime.runInPulumiStack(async () => {
    try {
      recordRegistrations();
      outputs = await mod.program();
    } catch (error) {
      failure = error;
    }
    return outputs;
  });
  trace("program returned", failure?.message, resources.length);
  // Components create resources inside apply callbacks: wait until registrations stop.
  let last = -1;
  // A failed apply leaves its dependents waiting for ever: bound every wait.
  const bounded = (promise, ms) => Promise.race([promise, new Promise((done) => setTimeout(done, ms))]);
  // Settled: the count held through two rounds of waiting (a busy CI machine is slow to apply).
  for (let i = 0, stable = 0; i < 200 && stable < 2 && asyncFailures.length === 0; i++) {
    stable = last === resources.length ? stable + 1 : 0;
    last = resources.length;
    await bounded(pulumi.runtime.waitForRPCs(), 3000);
    await new Promise((done) => setTimeout(done, 150));
  }
  const devCommandSettings = await bounded(Promise.all(devCommands), 5000);
  trace("settled", resources.length);
  failure ??= asyncFailures[0];
  const resolved = failure || !outputs ? undefined : await new Promise((done) => pulumi.output(outputs).apply(done));
  graph = {
    stage: args.stage,
    dev: args.dev,
    app: globalThis.__sstApp,
    error: failure ? String(failure.message ?? failure) : undefined,
    outputs: resolved,
    resources,
    registrations: registrations.map(describeRegistration),
    devCommands: devCommandSettings ?? [],
    rpc: rpcCalls,
    invokes: [...new Set(invokes)],
  };
} catch (error) {
  graph = { stage: args.stage, dev: args.dev, error: String(error?.stack ?? error), resources, registrations: registrations.map(describeRegistration), rpc: rpcCalls };
} finally {
  if (!process.env.AUTHLITH_EVAL_KEEP) rmSync(outfile, { force: true });
  server.close();
}
writeFileSync(args.out, JSON.stringify(graph, null, 1));
rmSync(scratch, { recursive: true, force: true });
process.exit(0);
