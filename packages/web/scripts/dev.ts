import { startDevServer } from "@authlith/functions/dev-server";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createServer, type ViteDevServer } from "vite";
import { createNotesApi } from "../src/api/notes";

export const WEB_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The example app on `port`, talking to the API at `apiUrl`, or else on the page's own host name
 * at `apiPort` (so the app opened as localhost or as 127.0.0.1 stays on the API's site).
 */
export async function startWebServer(options: {
  port: number;
  apiUrl?: string;
  apiPort?: number;
  host?: string;
  /** The app's own API at /api (src/api/notes.ts): authlith's issuer, and how long a live answer of the revocation check counts. */
  notesApi?: { issuer: string; revocationMaxAgeSeconds: number | null };
}): Promise<ViteDevServer> {
  const define: Record<string, string> = {};
  if (options.apiUrl) define["import.meta.env.VITE_AUTHLITH_URL"] = JSON.stringify(options.apiUrl);
  if (options.apiPort) define["import.meta.env.VITE_AUTHLITH_PORT"] = JSON.stringify(String(options.apiPort));
  const notes = options.notesApi ? createNotesApi(options.notesApi) : null;
  const server = await createServer({
    configFile: `${WEB_ROOT}vite.config.ts`,
    logLevel: "warn",
    server: { port: options.port, strictPort: true, host: options.host ?? "127.0.0.1" },
    define,
    plugins: notes
      ? [{ name: "notes-api", configureServer: (vite) => void vite.middlewares.use("/api", (req, res) => notes.handler(req, res)) }]
      : [],
  });
  await server.listen();
  return server;
}

/**
 * `npm run dev:web`: the API (as `npm run dev` starts it: PGlite and the in-process store unless
 * DATABASE_URL / REDIS_URL say otherwise) and the example app beside it, on http://localhost:5173.
 * The app calls the API on its own host name, so the refresh cookie stays first-party.
 */
async function main() {
  const apiPort = Number(process.env.PORT ?? 3000);
  const webPort = Number(process.env.WEB_PORT ?? 5173);
  const api = await startDevServer({
    ...process.env,
    PORT: String(apiPort),
    AUTHLITH_ALLOWED_ORIGINS: process.env.AUTHLITH_ALLOWED_ORIGINS ?? `http://localhost:${webPort},http://127.0.0.1:${webPort}`,
  });
  const web = await startWebServer({
    port: webPort,
    apiUrl: process.env.VITE_AUTHLITH_URL,
    apiPort: api.port,
    notesApi: { issuer: api.url, revocationMaxAgeSeconds: 10 },
  });
  const appUrl = `http://localhost:${webPort}`;
  process.stdout.write(
    [
      ``,
      `authlith API     ${api.url}   (${api.description.database}, ${api.description.store} store)`,
      `example app      ${appUrl}   (its own API at ${appUrl}/api, verifying authlith's tokens)`,
      `allowed origins  ${api.config.http.allowedOrigins.join(", ")}`,
      ``,
      `READY ${appUrl}`,
      ``,
    ].join("\n"),
  );
  const stop = async () => {
    await web.close();
    await api.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
