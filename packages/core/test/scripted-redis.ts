import * as net from "node:net";
import * as tls from "node:tls";

/**
 * Just enough of a Redis server to test how the store's client behaves at the edges: it reads
 * commands (RESP arrays of bulk strings) and answers each with whatever `answer` returns for it,
 * or nothing at all (`null`): a Redis that hangs. It can drop every client, and speak TLS.
 */
export interface ScriptedRedis {
  port: number;
  url: string;
  /** Every command received, with the 1-based number of the connection it came on. */
  received: { connection: number; args: string[] }[];
  connections(): number;
  dropClients(): void;
  close(): Promise<void>;
}

export type Answer = (args: string[], connection: number) => string | null;

/** Answers PING with PONG and everything else with OK. */
export const pong: Answer = (args) => (args[0]?.toUpperCase() === "PING" ? "+PONG\r\n" : "+OK\r\n");

/** Parses complete commands from the front of the buffer; returns them and what is left. */
function parseCommands(buffer: Buffer): { commands: string[][]; rest: Buffer } {
  const commands: string[][] = [];
  let offset = 0;
  const line = (from: number): { text: string; next: number } | null => {
    const end = buffer.indexOf("\r\n", from);
    return end === -1 ? null : { text: buffer.toString("latin1", from, end), next: end + 2 };
  };
  for (;;) {
    const head = line(offset);
    if (!head || head.text[0] !== "*") break;
    let position = head.next;
    const args: string[] = [];
    let complete = true;
    for (let i = 0; i < Number(head.text.slice(1)); i++) {
      const size = line(position);
      if (!size) {
        complete = false;
        break;
      }
      const length = Number(size.text.slice(1));
      if (buffer.length < size.next + length + 2) {
        complete = false;
        break;
      }
      args.push(buffer.toString("utf8", size.next, size.next + length));
      position = size.next + length + 2;
    }
    if (!complete) break;
    commands.push(args);
    offset = position;
  }
  return { commands, rest: buffer.subarray(offset) };
}

export async function scriptedRedis(answer: Answer, options: { tls?: { key: string; cert: string } } = {}): Promise<ScriptedRedis> {
  const sockets = new Set<net.Socket>();
  const received: ScriptedRedis["received"] = [];
  let connections = 0;
  const onSocket = (socket: net.Socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let buffer: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      const parsed = parseCommands(Buffer.concat([buffer, chunk]));
      buffer = parsed.rest;
      for (const args of parsed.commands) {
        received.push({ connection, args });
        const reply = answer(args, connection);
        if (reply !== null) socket.write(reply);
      }
    });
  };
  const server = options.tls ? tls.createServer(options.tls, onSocket) : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    received,
    connections: () => connections,
    dropClients: () => {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
