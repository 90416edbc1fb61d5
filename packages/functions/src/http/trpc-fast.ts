import {
  callTRPCProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  TRPCError,
  type AnyTRPCRouter,
  type TRPCDefaultErrorShape,
  type TRPCErrorShape,
  type TRPCProcedureType,
  type TRPCRootConfig,
} from "@trpc/server";
import { getHTTPStatusCode } from "@trpc/server/http";

/**
 * tRPC's HTTP protocol (the non-streaming JSON that `@trpc/client`'s `httpLink` and
 * `httpBatchLink` speak) served from an already-read request, on tRPC's public API only:
 * `callTRPCProcedure` runs each call (middleware, input parsing and all), `getErrorShape` shapes
 * errors with the router's formatter, `getHTTPStatusCode` picks the status. It answers exactly as
 * tRPC's own AWS Lambda adapter does (test/trpc-differential.test.ts runs the real router through
 * both) without building Fetch API objects: docs/decisions/0001-trpc-fast-path.md says what that
 * saves and what dropping it would take.
 *
 * Not served, as the router has none of them: streaming (`trpc-accept: application/jsonl`, refused
 * before this point), subscriptions, form data, method override, data transformers.
 */
export interface TrpcRequest {
  method: "GET" | "POST";
  /** The procedure path(s), still URL-encoded; comma-separated when batched. */
  path: string;
  query: URLSearchParams;
  /** The request body as text (POST), or undefined. */
  body: string | undefined;
}

export interface TrpcResult {
  status: number;
  body: string;
  /** Every failed call's error, in call order (for Retry-After and WWW-Authenticate). */
  errors: TRPCError[];
  /** Set when a call reached a procedure of the other type: the method that procedure takes. */
  allow?: string;
}

export interface TrpcErrorInfo<TContext> {
  error: TRPCError;
  path: string | undefined;
  type: TRPCProcedureType | "unknown";
  ctx: TContext | undefined;
}

export interface FastTrpcOptions<TContext extends object> {
  router: AnyTRPCRouter;
  /** Path → type of every procedure (procedures.ts), checked against the router at compile time. */
  typeOf: (path: string) => TRPCProcedureType | null;
  /** The root config's error-shaping part: the same formatter the router was created with. */
  errorConfig: TRPCRootConfig<{ ctx: TContext; meta: object; errorShape: TRPCDefaultErrorShape; transformer: false }>;
  maxBatchSize: number;
  onError?: (info: TrpcErrorInfo<TContext>) => void;
}

const METHOD_OF: Record<TRPCProcedureType, "GET" | "POST"> = { query: "GET", mutation: "POST", subscription: "GET" };

type Envelope = { result: { data: unknown } } | { error: TRPCErrorShape };

type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };

export function createFastTrpc<TContext extends object>(options: FastTrpcOptions<TContext>) {
  const { router, typeOf, errorConfig, maxBatchSize, onError } = options;
  const errorEnvelope = (error: TRPCError, path: string | undefined, type: TRPCProcedureType | "unknown", ctx: TContext | undefined, input: unknown): Envelope => ({
    error: getErrorShape({ config: errorConfig, error, type, path, input, ctx }),
  });

  return async function handle(request: TrpcRequest, ctx: TContext): Promise<TrpcResult> {
    const isBatch = request.query.get("batch") === "1";
    let type: TRPCProcedureType | "unknown" = "unknown";
    try {
      let decoded: string;
      try {
        decoded = decodeURIComponent(request.path);
      } catch (cause) {
        throw new TRPCError({ code: "BAD_REQUEST", message: `Invalid URL-encoding in path "${request.path}"`, cause });
      }
      const paths = isBatch ? decoded.split(",") : [decoded];
      if (isBatch && paths.length > maxBatchSize) throw new TRPCError({ code: "BAD_REQUEST", message: "Batch call exceeds maximum size" });

      const types = paths.map(typeOf);
      const distinct = new Set(types.filter((t): t is TRPCProcedureType => t !== null));
      if (distinct.size > 1) throw new TRPCError({ code: "BAD_REQUEST", message: `Cannot mix procedure types in call: ${[...distinct].join(", ")}` });
      type = distinct.values().next().value ?? "unknown";

      // Inputs are parsed once, when the first call asks for its own: a malformed body fails
      // inside each call's input step, as a BAD_REQUEST whose cause is the parse error.
      let inputs: Record<number, unknown> | TRPCError | undefined;
      const readInputs = (): Record<number, unknown> => {
        inputs ??= parseInputs(request, isBatch, paths.length);
        if (inputs instanceof TRPCError) throw inputs;
        return inputs;
      };
      const inputOf = (index: number) => (inputs === undefined || inputs instanceof TRPCError ? undefined : inputs[index]);

      let allow: string | undefined;
      const outcomes = await Promise.all(
        paths.map(async (path, index): Promise<Outcome> => {
          const procedureType = types[index] ?? null;
          try {
            if (!procedureType) throw new TRPCError({ code: "NOT_FOUND", message: `No procedure found on path "${path}"` });
            if (METHOD_OF[procedureType] !== request.method) {
              allow = METHOD_OF[procedureType];
              throw new TRPCError({ code: "METHOD_NOT_SUPPORTED", message: `Unsupported ${request.method}-request to ${procedureType} procedure at path "${path}"` });
            }
            const data: unknown = await callTRPCProcedure({
              router,
              path,
              getRawInput: async () => readInputs()[index],
              ctx,
              type: procedureType,
              signal: undefined,
              batchIndex: index,
            });
            return { ok: true, data };
          } catch (cause) {
            const error = getTRPCErrorFromUnknown(cause);
            onError?.({ error, path, type: procedureType ?? "unknown", ctx });
            return { ok: false, error };
          }
        }),
      );

      const envelopes = outcomes.map((outcome, index): Envelope =>
        outcome.ok ? { result: { data: outcome.data } } : errorEnvelope(outcome.error, paths[index], types[index] ?? "unknown", ctx, inputOf(index)),
      );
      const errors = outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
      return {
        status: getHTTPStatusCode(envelopes),
        body: JSON.stringify(isBatch ? envelopes : envelopes[0]),
        errors: errors.filter((error): error is TRPCError => error !== undefined),
        ...(allow ? { allow } : {}),
      };
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      onError?.({ error, path: undefined, type, ctx });
      const envelope = errorEnvelope(error, undefined, type, ctx, undefined);
      return { status: getHTTPStatusCode(envelope), body: JSON.stringify(envelope), errors: [error] };
    }
  };
}

/** The call inputs of a request, by batch index; a TRPCError (BAD_REQUEST) when they cannot be read. */
function parseInputs(request: TrpcRequest, isBatch: boolean, calls: number): Record<number, unknown> | TRPCError {
  const byIndex: Record<number, unknown> = Object.create(null);
  let raw: unknown;
  try {
    const text = request.method === "GET" ? request.query.get("input") : request.body;
    raw = text ? JSON.parse(text) : undefined;
  } catch (cause) {
    return new TRPCError({ code: "BAD_REQUEST", message: cause instanceof Error ? cause.message : "Invalid input", cause });
  }
  if (raw === undefined) return byIndex;
  if (!isBatch) {
    byIndex[0] = raw;
    return byIndex;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return new TRPCError({ code: "BAD_REQUEST", message: '"input" needs to be an object when doing a batch call' });
  }
  for (let index = 0; index < calls; index++) {
    const value = (raw as Record<string, unknown>)[index];
    if (value !== undefined) byIndex[index] = value;
  }
  return byIndex;
}
