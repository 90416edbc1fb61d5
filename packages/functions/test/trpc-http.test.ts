import { initTRPC, TRPCError } from "@trpc/server";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { createTrpcHttpHandler, type TrpcHttpRequest } from "../src/http/trpc-http";

/**
 * The Fetch-free tRPC handler against tRPC's own (`fetchRequestHandler`, which the AWS Lambda
 * adapter wraps): for the same router and request, the same status, body and Allow header.
 */
interface Ctx {
  user: string | null;
}
const t = initTRPC.context<Ctx>().create({ isDev: false });
const router = t.router({
  greet: t.procedure.input(z.object({ name: z.string() })).query(({ input }) => `hello ${input.name}`),
  noInput: t.procedure.query(() => ({ at: 1 })),
  whoami: t.procedure.query(({ ctx }) => {
    if (!ctx.user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in" });
    return ctx.user;
  }),
  add: t.procedure.input(z.strictObject({ a: z.number(), b: z.number() })).mutation(({ input }) => input.a + input.b),
  limited: t.procedure.mutation(() => {
    throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: "slow down" });
  }),
  broken: t.procedure.mutation(() => {
    throw new Error("database said: relation users does not exist");
  }),
  nested: t.router({ deep: t.procedure.query(() => "deep") }),
});

const MAX_BATCH = 3;
const ours = createTrpcHttpHandler<typeof router, Ctx>({ router, maxBatchSize: MAX_BATCH });

async function both(request: TrpcHttpRequest, ctx: Ctx = { user: null }) {
  const url = `http://localhost/trpc/${request.path}${request.query.size ? `?${request.query}` : ""}`;
  const reference = await fetchRequestHandler({
    endpoint: "/trpc",
    router,
    maxBatchSize: MAX_BATCH,
    createContext: () => ctx,
    req: new Request(url, {
      method: request.method,
      headers: request.method === "POST" ? { "content-type": "application/json" } : {},
      ...(request.body !== undefined ? { body: request.body } : {}),
    }),
  });
  const mine = await ours(request, ctx);
  return {
    reference: { status: reference.status, body: JSON.parse(await reference.text()), allow: reference.headers.get("allow") ?? undefined },
    mine: { status: mine.status, body: JSON.parse(mine.body), allow: mine.allow },
    errors: mine.errors,
  };
}

const get = (path: string, query: Record<string, string> = {}): TrpcHttpRequest => ({
  method: "GET",
  path,
  query: new URLSearchParams(query),
  body: undefined,
});
const post = (path: string, body: string | undefined, query: Record<string, string> = {}): TrpcHttpRequest => ({
  method: "POST",
  path,
  query: new URLSearchParams(query),
  body,
});

describe("tRPC over API Gateway without the Fetch API", () => {
  const cases: [string, TrpcHttpRequest, Ctx?][] = [
    ["a query with input", get("greet", { input: JSON.stringify({ name: "ada" }) })],
    ["a query without input", get("noInput")],
    ["a nested procedure", get("nested.deep")],
    ["a URL-encoded path", get("nested%2Edeep")],
    ["a mutation", post("add", JSON.stringify({ a: 2, b: 3 }))],
    ["invalid input", post("add", JSON.stringify({ a: "2", b: 3, c: 1 }))],
    ["malformed JSON", post("add", "{not json")],
    ["malformed JSON in a query", get("greet", { input: "{nope" })],
    ["an empty mutation body", post("add", undefined)],
    ["a thrown TRPCError", post("limited", "")],
    ["an unexpected error", post("broken", "")],
    ["an unknown procedure", get("nope")],
    ["a mutation by GET", get("add", { input: "{}" })],
    ["a query by POST", post("greet", JSON.stringify({ name: "x" }))],
    ["a context-dependent error", get("whoami")],
    ["a context-dependent answer", get("whoami"), { user: "u1" }],
    ["a batch of queries", get("greet,noInput,whoami", { batch: "1", input: JSON.stringify({ 0: { name: "b" } }) })],
    ["a batch with mixed outcomes", get("noInput,whoami", { batch: "1" })],
    ["a batch with the same error", get("whoami,whoami", { batch: "1" })],
    ["a batch of mutations", post("add,limited", JSON.stringify({ 0: { a: 1, b: 1 } }), { batch: "1" })],
    ["a batch whose input is not an object", post("add,add", "[1,2]", { batch: "1" })],
    ["a batch over the limit", get("noInput,noInput,noInput,noInput", { batch: "1" })],
    ["a batch mixing queries and mutations", post("noInput,add", "{}", { batch: "1" })],
    ["a batch with an unknown procedure", get("noInput,missing", { batch: "1" })],
    ["a malformed path encoding", get("greet%E0%A4%A")],
  ];

  it.each(cases)("answers %s as tRPC's own adapter does", async (_name, request, ctx) => {
    const { reference, mine } = await both(request, ctx);
    expect(mine).toEqual(reference);
  });

  it("reports every call's error, for Retry-After and WWW-Authenticate", async () => {
    const { errors } = await both(post("add,limited", JSON.stringify({ 0: { a: 1, b: 1 } }), { batch: "1" }));
    expect(errors.map((e) => e.code)).toEqual(["TOO_MANY_REQUESTS"]);
  });

  it("lets the caller rewrite a call's error before it is reported and shaped", async () => {
    const seen: string[] = [];
    const mapped = createTrpcHttpHandler<typeof router, Ctx>({
      router,
      maxBatchSize: MAX_BATCH,
      mapError: (error) => (error.code === "INTERNAL_SERVER_ERROR" ? new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "later" }) : error),
      onError: ({ error }) => seen.push(error.code),
    });
    const result = await mapped(post("broken", ""), { user: null });
    expect(result.status).toBe(503);
    expect(JSON.parse(result.body).error.data.code).toBe("SERVICE_UNAVAILABLE");
    expect(seen).toEqual(["SERVICE_UNAVAILABLE"]);
    // Other errors pass through untouched.
    expect((await mapped(post("limited", ""), { user: null })).status).toBe(429);
  });

  it("reads the request body only once for a batch", async () => {
    let reads = 0;
    const request = post("add,add", undefined, { batch: "1" });
    Object.defineProperty(request, "body", {
      get: () => {
        reads += 1;
        return JSON.stringify({ 0: { a: 1, b: 2 }, 1: { a: 3, b: 4 } });
      },
    });
    const result = await ours(request, { user: null });
    expect(JSON.parse(result.body)).toEqual([{ result: { data: 3 } }, { result: { data: 7 } }]);
    expect(reads).toBe(1);
  });
});
