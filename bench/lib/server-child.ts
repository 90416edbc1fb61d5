/**
 * One benchmarked server process: the Lambda handler behind the local HTTP server (as
 * `npm run dev`), on real Postgres and Redis, configured from the environment the parent passes.
 */
import { createLocalServer } from "../../packages/functions/src/local-server";
import { startBenchRuntime } from "./app";

const runtime = await startBenchRuntime(process.env as Record<string, string>);
const server = createLocalServer(runtime.handle);
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address() as { port: number };
  process.stdout.write(`READY ${address.port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  void runtime.close().finally(() => process.exit(0));
});
