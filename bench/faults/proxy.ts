import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP fault proxy in front of Postgres or Redis: passes bytes both ways, or, on command, adds
 * latency, holds everything (a blackhole: the connection stays open, nothing arrives until it heals), resets
 * every connection, or refuses new ones. Small on purpose; what it does to a connection is what a
 * network partition, a congested link or a restarting server does to a client.
 */
/**
 * `blackhole`: a partition. Connections stay open and nothing arrives either way; what was sent is
 * held and delivered when the partition heals, as TCP's retransmissions would (a proxy that
 * dropped bytes would corrupt the stream, which no network does).
 */
export type ProxyMode = { kind: "pass" } | { kind: "latency"; ms: number } | { kind: "blackhole" } | { kind: "refuse" };

export interface FaultProxy {
  port: number;
  set(mode: ProxyMode): void;
  /** Resets (RST) every open connection; new ones pass unless the mode says otherwise. */
  resetAll(): void;
  /** Connections currently open through the proxy. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string; port: number }): Promise<FaultProxy> {
  let mode: ProxyMode = { kind: "pass" };
  const pairs = new Set<{ client: Socket; server: Socket }>();

  /** Chunks held by a blackhole, in order, per direction; delivered when it ends. */
  const held: { to: Socket; chunk: Buffer }[] = [];
  const release = () => {
    for (const { to, chunk } of held.splice(0)) if (!to.destroyed) to.write(chunk);
  };
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk: Buffer) => {
      if (mode.kind === "blackhole") {
        held.push({ to, chunk });
        return;
      }
      if (mode.kind === "latency") {
        from.pause();
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
          from.resume();
        }, mode.ms);
        return;
      }
      if (!to.destroyed) to.write(chunk);
    });
  };

  const server: Server = createServer((client) => {
    if (mode.kind === "refuse") {
      client.resetAndDestroy();
      return;
    }
    const upstreamSocket = createConnection(upstream);
    const pair = { client, server: upstreamSocket };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      if (!client.destroyed) client.destroy();
      if (!upstreamSocket.destroyed) upstreamSocket.destroy();
    };
    client.on("error", end).on("close", end);
    upstreamSocket.on("error", end).on("close", end);
    forward(client, upstreamSocket);
    forward(upstreamSocket, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    set(next) {
      mode = next;
      if (next.kind !== "blackhole") release();
    },
    resetAll() {
      held.length = 0;
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.server.resetAndDestroy();
      }
    },
    get open() {
      return pairs.size;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
