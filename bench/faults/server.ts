/**
 * One server process of the fault suite: the Lambda handler behind the local HTTP server, with the
 * production configuration parsed from the environment the suite passes (real rate limits, real
 * timeouts), as `npm run dev` serves it against DATABASE_URL and REDIS_URL. Prints `READY <port>`.
 */
import { parseEnvConfig } from "../../packages/functions/src/config";
import { createLocalServer } from "../../packages/functions/src/local-server";
import { createRuntime } from "../../packages/functions/src/runtime";

const runtime = await createRuntime(parseEnvConfig(process.env));
const server = createLocalServer(runtime.handle, (error) => process.stderr.write(`local server: ${String(error)}\n`));
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`READY ${(server.address() as { port: number }).port}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  void runtime.close().finally(() => process.exit(0));
});
