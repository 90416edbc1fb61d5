import { build, type BuildOptions } from "esbuild";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";

export interface BundleSize {
  minifiedBytes: number;
  /** Each file gzip-compressed (level 9), summed: what a browser downloads. */
  gzipBytes: number;
}

export interface BundlePart extends BundleSize {
  /** The modules in it, relative to the working directory. */
  inputs: string[];
  /** Its minified code. */
  text: string;
}

export interface BrowserBundle {
  /** The entry and every chunk it imports statically: what a page that imports the client loads. */
  main: BundlePart;
  /** The chunks only `import()` reaches, loaded on first use (the passkey ceremonies' library). */
  lazy: BundlePart;
}

/**
 * What an app's bundler makes of an entry: bundled, minified, and split where the code says
 * `import()`, as Vite, webpack and esbuild split it. A bundle without splitting would inline the
 * lazily loaded modules and count them against the main budget.
 */
export async function browserBundle(options: Pick<BuildOptions, "stdin" | "entryPoints" | "nodePaths"> & { absWorkingDir: string }): Promise<BrowserBundle> {
  const result = await build({
    ...options,
    bundle: true,
    minify: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outdir: join(options.absWorkingDir, "browser-bundle"),
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const outputs = result.metafile.outputs;
  const code = new Map(result.outputFiles.map((file) => [relative(options.absWorkingDir, file.path), file.contents]));
  const entry = Object.keys(outputs).find((name) => outputs[name]!.entryPoint !== undefined)!;
  // The entry's static imports, transitively: loaded before the entry runs.
  const main = new Set<string>();
  const visit = (name: string) => {
    if (main.has(name)) return;
    main.add(name);
    for (const imported of outputs[name]!.imports) if (imported.kind === "import-statement" && !imported.external) visit(imported.path);
  };
  visit(entry);
  const part = (names: string[]): BundlePart => {
    const files = names.map((name) => code.get(name)!);
    return {
      inputs: [...new Set(names.flatMap((name) => Object.keys(outputs[name]!.inputs)))],
      text: files.map((file) => new TextDecoder().decode(file)).join("\n"),
      minifiedBytes: files.reduce((sum, file) => sum + file.byteLength, 0),
      gzipBytes: files.reduce((sum, file) => sum + gzipSync(file, { level: 9 }).byteLength, 0),
    };
  };
  const js = Object.keys(outputs).filter((name) => name.endsWith(".js"));
  return { main: part([...main]), lazy: part(js.filter((name) => !main.has(name))) };
}
