/**
 * The cold-start floor: every runtime library authlith's handler loads on its way to a first
 * answer (postgres and drizzle-orm over it, ioredis, jose, @trpc/server, zod, sst's Resource),
 * each imported and used, both connections opened, and one trivial request answered through a
 * tRPC procedure with a zod input. Bundled exactly as the handler is; what the handler takes
 * beyond this is authlith's own cost. (@node-rs/argon2 is not here: the handler loads it on the
 * first password hash, not on a cold start.)
 */
import { initTRPC } from "@trpc/server";
import { sql as raw } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import { Redis } from "ioredis";
import { decodeProtectedHeader } from "jose";
import postgres from "postgres";
import { Resource } from "sst/resource";
import * as z from "zod/mini";

interface Event {
  headers?: Record<string, string | undefined>;
}

const t = initTRPC.create();
const router = t.router({
  header: t.procedure.input(z.object({ token: z.string() })).query(({ input }) => decodeProtectedHeader(input.token)),
});

async function connect() {
  const linked = "Database" in (Resource as object); // false here: the bench passes plain URLs
  const db = drizzle(postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} }));
  const redis = new Redis(process.env.REDIS_URL!, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await redis.connect();
  await Promise.all([db.execute(raw`select ${linked}`), redis.ping()]);
  return t.createCallerFactory(router)({});
}

let caller: ReturnType<typeof connect> | undefined;

export async function handler(event: Event) {
  caller ??= connect();
  const token = (event.headers?.authorization ?? "").replace(/^Bearer /, "");
  const data = await (await caller).header({ token });
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ result: { data } }) };
}
