// Installs SST's platform (.sst/platform: component sources, config.d.ts and their npm packages)
// offline-safe, as ../../shared/SST.md describes: no pulumi CLI download, no bun, no telemetry.
// Skipped when the installed platform already matches the sst package in node_modules.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const wanted = JSON.parse(readFileSync(join(root, "node_modules/sst/package.json"), "utf8")).version;
const versionFile = join(root, ".sst/platform/version");
const installed = existsSync(versionFile) ? readFileSync(versionFile, "utf8").trim() : null;
const complete = existsSync(join(root, ".sst/platform/node_modules/@pulumi/pulumi/package.json"));

if (installed === wanted && complete) {
  console.log(`sst platform ${installed} already installed`);
  process.exit(0);
}

console.log(`installing sst platform ${wanted} into .sst/platform (was: ${installed ?? "none"})`);
const started = Date.now();
const result = spawnSync(join(root, "node_modules/.bin/sst"), ["install", "--stage", "ci"], {
  cwd: root,
  stdio: "inherit",
  env: {
    ...process.env,
    SST_SKIP_DEPENDENCY_CHECK: "1",
    SST_TELEMETRY_DISABLED: "1",
    SST_NO_BUN: "1",
    // Deploy-time configuration is validated when sst.config.ts is evaluated; any valid value will do here.
    AUTHLITH_ALLOWED_ORIGINS: process.env.AUTHLITH_ALLOWED_ORIGINS ?? "",
  },
});
if (result.status !== 0 || !existsSync(join(root, ".sst/platform/node_modules/@pulumi/pulumi/package.json"))) {
  console.error(`sst install failed (exit ${result.status ?? result.signal})`);
  process.exit(1);
}
console.log(`sst platform installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
