import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

const SERVER_CHILD = fileURLToPath(new URL("./server-child.ts", import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `taskset` from util-linux, when the machine has it. */
const TASKSET = existsSync("/usr/bin/taskset") ? "/usr/bin/taskset" : null;

/**
 * Starts a server process and waits until it listens. With `cpu`, the process is pinned to that
 * core (Linux, taskset), so the load generator in this process does not share its core.
 */
export async function startServer(env: Record<string, string>, cpu?: number): Promise<ServerProcess> {
  const node = [process.execPath, "--import", "tsx", SERVER_CHILD];
  const [command, ...args] = cpu !== undefined && TASKSET && cpus().length > 1 ? [TASKSET, "-c", String(cpu), ...node] : node;
  const child = spawn(command!, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr!.on("data", (chunk) => (output += String(chunk)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      output += String(chunk);
      const match = /READY (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`bench server exited (${code}): ${output.slice(0, 2000)}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
