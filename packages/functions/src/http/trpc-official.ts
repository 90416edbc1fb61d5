import { awsLambdaRequestHandler } from "@trpc/server/adapters/aws-lambda";
import type { APIGatewayProxyEventV2, Context as LambdaContext } from "aws-lambda";
import { appRouter } from "../router";
import type { Context } from "../trpc";
import type { TrpcTransport, TrpcTransportOptions } from "./trpc-transport";

/**
 * tRPC's own AWS Lambda adapter behind the same interface as the fast path: the reference the
 * differential test compares against, and the way back should the fast path ever have to go
 * (AUTHLITH_TRPC_ADAPTER=official; docs/decisions/0001-trpc-fast-path.md). It is imported only
 * when chosen, so the Fetch API classes it needs are loaded only then.
 */
export function createOfficialTransport(options: TrpcTransportOptions): TrpcTransport {
  // The adapter builds the context from the event; the dispatcher has already built it.
  const contexts = new WeakMap<APIGatewayProxyEventV2, Context>();
  const handler = awsLambdaRequestHandler<typeof appRouter, APIGatewayProxyEventV2>({
    router: appRouter,
    maxBatchSize: options.maxBatchSize,
    createContext: ({ event }) => contexts.get(event)!,
    onError: ({ error, path, type, ctx }) => options.onError({ error, path, type, ctx }),
    responseMeta: ({ errors, ctx }) => {
      const { headers, cookies } = options.responseHeaders(errors, ctx);
      return { headers: { ...headers, ...(cookies.length ? { "set-cookie": cookies } : {}) } };
    },
  });
  // No procedure reads the Lambda context; the adapter only passes it to createContext.
  const lambdaContext = {} as LambdaContext;

  return async ({ event, path, headers }, ctx) => {
    // The procedure path goes through as `rawPath` of a `$default` route (still URL-encoded, as
    // the fast path gets it), with the headers the dispatcher sanitised.
    const routed: APIGatewayProxyEventV2 = { ...event, routeKey: "$default", rawPath: `/${path}`, pathParameters: undefined, headers };
    contexts.set(routed, ctx);
    const result = await handler(routed, lambdaContext);
    const answerHeaders = Object.fromEntries(Object.entries(result.headers ?? {}).map(([name, value]) => [name, String(value)]));
    // The adapter labels an error answered before any call (a bad path, an oversized or mixed
    // batch) text/plain; its body is the same JSON envelope as any other, and is labelled so.
    answerHeaders["content-type"] = "application/json";
    return {
      statusCode: result.statusCode ?? 200,
      headers: answerHeaders,
      body: result.body ?? "",
      ...(result.cookies?.length ? { cookies: result.cookies } : {}),
    };
  };
}
