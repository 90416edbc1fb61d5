import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** What the code cites in docs/ exists: requirement numbers in docs/security.md, decision records. */
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

function sources(): string[] {
  const out: string[] = [join(ROOT, "sst.config.ts"), join(ROOT, "README.md")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|tsx|md)$/.test(name)) out.push(path);
    }
  };
  walk(join(ROOT, "packages"));
  walk(join(ROOT, "bench"));
  walk(join(ROOT, "docs"));
  return out;
}

describe("references into docs/", () => {
  const security = readFileSync(join(ROOT, "docs/security.md"), "utf8");
  const numbered = new Set([...security.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1])));

  it("docs/security.md numbers its requirements from 1 without gaps", () => {
    expect(numbered.size).toBeGreaterThanOrEqual(36);
    expect([...numbered].sort((a, b) => a - b)).toEqual(Array.from({ length: numbered.size }, (_, i) => i + 1));
  });

  it("every `docs/security.md §n` cited exists, and every cited doc file exists", () => {
    const broken: string[] = [];
    for (const file of sources()) {
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/docs\/security\.md §(\d+)(?:–(\d+))?/g)) {
        for (const n of [Number(match[1]), ...(match[2] ? [Number(match[2])] : [])]) {
          if (!numbered.has(n)) broken.push(`${relative(ROOT, file)}: §${n}`);
        }
      }
      for (const match of text.matchAll(/docs\/(?:decisions\/)?[\w.-]+\.md/g)) {
        if (!existsSync(join(ROOT, match[0]))) broken.push(`${relative(ROOT, file)}: ${match[0]}`);
      }
      if (/\bSECURITY \d+/.test(text) && !file.endsWith("docs-links.test.ts")) broken.push(`${relative(ROOT, file)}: cites "SECURITY n" instead of docs/security.md §n`);
    }
    expect(broken).toEqual([]);
  });
});
