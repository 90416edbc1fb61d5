/**
 * One "Lambda instance" for the cross-process refresh test: builds its own runtime (own
 * postgres.js pool, own Redis connection) from the environment, says READY, waits for GO on
 * stdin, then refreshes the token it was given and prints the outcome as one JSON line.
 */
import { createInterface } from "node:readline";
import { parseEnvConfig } from "../../src/config";
import { createRuntime } from "../../src/runtime";
import { TestClient } from "./app";

const runtime = await createRuntime(parseEnvConfig(process.env));
const client = new TestClient(runtime.handle, { origin: null, ip: `10.0.0.${process.pid % 250}` });
// Warm the connections so that GO measures the race, not connection set-up.
await runtime.deps.db.execute("select 1" as never).catch(() => {});
await runtime.deps.store.ping();
process.stdout.write("READY\n");

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== "GO") continue;
  const reply = await client.mutate("auth.refresh", { refreshToken: process.env.REFRESH_TOKEN });
  const result = reply.body?.result?.data;
  process.stdout.write(`${JSON.stringify({ status: reply.status, refreshToken: result?.refreshToken ?? null })}\n`);
  break;
}
lines.close();
await runtime.close();
