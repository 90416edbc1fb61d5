import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SigningKeySetSchema } from "@authlith/core";
import { ROOT } from "../tests/support/graph";

/**
 * `npm run keys:generate` prints the commands that store the secrets for a stage. The commands
 * are run here through bash with a stand-in for `npx`, to prove that the shell hands
 * `sst secret set` exactly the generated values.
 */
const run = promisify(execFile);
const TSX = join(ROOT, "node_modules/.bin/tsx");
const SCRIPT = join(ROOT, "packages/functions/src/scripts/generate-keys.ts");

async function generate(...args: string[]): Promise<string[]> {
  const { stdout } = await run(TSX, [SCRIPT, ...args], { cwd: ROOT, timeout: 30_000 });
  return stdout.split("\n");
}

/** What `npx <args>` would receive for a printed line, as bash parses it. */
async function argvOf(line: string): Promise<string[]> {
  const { stdout } = await run("bash", ["-c", `npx() { printf '%s\\0' "$@"; }; ${line}`]);
  return stdout.split("\0").slice(0, -1);
}

describe("npm run keys:generate", () => {
  it("prints the sst secret set commands for the stage, with values bash passes through unchanged", async () => {
    const lines = await generate("--stage", "alice");
    const signing = lines.find((l) => l.startsWith("npx sst secret set SigningKeys "))!;
    const hmac = lines.find((l) => l.startsWith("npx sst secret set HmacSecret "))!;
    expect(signing).toMatch(/ --stage alice$/);
    expect(hmac).toMatch(/ --stage alice$/);

    const [sst, secret, set, name, value, stageFlag, stage] = await argvOf(signing);
    expect([sst, secret, set, name, stageFlag, stage]).toEqual(["sst", "secret", "set", "SigningKeys", "--stage", "alice"]);
    const keySet = SigningKeySetSchema.parse(JSON.parse(value!));
    expect(keySet.keys).toHaveLength(1);
    expect(keySet.keys[0]).toMatchObject({ alg: "ES256", kty: "EC" });
    expect(keySet.keys[0]!.d).toBeTruthy();

    const hmacArgs = await argvOf(hmac);
    expect(hmacArgs.slice(0, 4)).toEqual(["sst", "secret", "set", "HmacSecret"]);
    expect(Buffer.from(hmacArgs[4]!, "base64url").length).toBeGreaterThanOrEqual(32);
    // The same values for npm run dev.
    expect(lines).toContain(`AUTHLITH_HMAC_SECRET=${hmacArgs[4]}`);
  });

  it("defaults to prod and rotates by publishing the next key before it signs", async () => {
    const first = await generate();
    const current = (await argvOf(first.find((l) => l.startsWith("npx sst secret set SigningKeys "))!))[4]!;
    expect(first.find((l) => l.startsWith("npx sst secret set HmacSecret "))).toMatch(/ --stage prod$/);

    const before = Math.floor(Date.now() / 1000);
    const rotated = await generate("--rotate", current, "--activate-in", "7200", "--stage", "prod");
    expect(rotated.some((l) => l.startsWith("npx sst secret set HmacSecret"))).toBe(false);
    expect(rotated).toContain("npx sst deploy --stage prod");
    const args = await argvOf(rotated.find((l) => l.startsWith("npx sst secret set SigningKeys "))!);
    const keySet = SigningKeySetSchema.parse(JSON.parse(args[4]!));
    const old = SigningKeySetSchema.parse(JSON.parse(current)).keys[0]!;
    expect(keySet.keys).toHaveLength(2);
    expect(keySet.keys[0]).toEqual(old);
    expect(keySet.keys[1]!.kid).not.toBe(old.kid);
    expect(keySet.keys[1]!.active_from).toBeGreaterThanOrEqual(before + 7200);
    expect(keySet.keys[1]!.active_from).toBeLessThan(before + 7200 + 60);
  });
});
