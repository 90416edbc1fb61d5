import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { PRODUCTION_STAGES } from "../src/settings";
import { ROOT } from "../tests/support/graph";

/**
 * What the SST CLI demands of sst.config.ts before it evaluates anything, checked without SST:
 * it refuses top-level imports (app() is evaluated on its own), so app() carries its own list of
 * production stages, which must match the one run() uses.
 */
const source = readFileSync(join(ROOT, "sst.config.ts"), "utf8");
const file = ts.createSourceFile("sst.config.ts", source, ts.ScriptTarget.ES2022, true);

describe("sst.config.ts", () => {
  it("has no top-level import (the SST CLI refuses them)", () => {
    const imports = file.statements.filter((s) => ts.isImportDeclaration(s) || ts.isImportEqualsDeclaration(s)).map((s) => s.getText());
    expect(imports).toEqual([]);
  });

  it("names the same production stages in app() as in the settings run() reads", () => {
    const declaration = file.statements
      .filter(ts.isVariableStatement)
      .flatMap((s) => s.declarationList.declarations)
      .find((d) => d.name.getText() === "PRODUCTION_STAGES");
    expect(declaration?.initializer && ts.isArrayLiteralExpression(declaration.initializer)).toBe(true);
    const stages = (declaration!.initializer as ts.ArrayLiteralExpression).elements.map((e) => (e as ts.StringLiteral).text);
    expect(stages).toEqual([...PRODUCTION_STAGES]);
  });
});
