import {
  getErrorShape,
  getHTTPStatusCode,
  getProcedureAtPath,
  getTRPCErrorFromUnknown,
  TRPCError,
  urlPathToProcedurePath,
  type AnyProcedure,
  type AnyRouter,
  type ProcedureType,
} from "@trpc/server/unstable-core-do-not-import";

/**
 * tRPC's HTTP protocol (the non-streaming JSON part that `@trpc/client`'s `httpLink` and
 * `httpBatchLink` speak) served straight from an API Gateway v2 event.
 *
 * Why not tRPC's own AWS Lambda adapter: it turns each event into a Fetch API `Request`, the
 * answer into a `Response`, and reads both bodies back through web streams. On Node that loads
 * undici's Fetch classes on the first request of every container (≈ 15–25 ms of a cold start,
 * where the whole budget is 80) and costs a few hundred microseconds per call in stream
 * plumbing. The procedures, their middleware, input parsing, error shapes and status codes are
 * still tRPC's own (`getProcedureAtPath`, `getErrorShape`, `getHTTPStatusCode`); this file only
 * reads the request and writes the envelope, as `resolveResponse` does for a non-streaming call.
 * Streaming (`trpc-accept: application/jsonl`), subscriptions, form data and method override are
 * not served: the router has none of them, and a streamed answer would send its headers before
 * the procedure had set its cookies.
 */
export interface TrpcHttpRequest {
  method: "GET" | "POST";
  /** The procedure path(s) after `/trpc/`, still URL-encoded; comma-separated when batched. */
  path: string;
  query: URLSearchParams;
  /** The request body as text (POST), or undefined. */
  body: string | undefined;
}

export interface TrpcHttpResult {
  status: number;
  body: string;
  /** Every call's error, for response metadata (Retry-After, WWW-Authenticate). */
  errors: TRPCError[];
  /** Set when a call reached a procedure of the wrong type: the methods that procedure takes. */
  allow?: string;
}

export interface TrpcHttpOptions<TRouter extends AnyRouter, TContext> {
  router: TRouter;
  maxBatchSize: number;
  /** Rewrites a call's error before it is reported and shaped (e.g. an outage into a 503). */
  mapError?: (error: TRPCError) => TRPCError;
  onError?: (opts: { error: TRPCError; path: string | undefined; type: ProcedureType | "unknown"; ctx: TContext | undefined }) => void;
}

const METHOD_OF: Record<ProcedureType, "GET" | "POST"> = { query: "GET", mutation: "POST", subscription: "GET" };

type Outcome = { ok: true; data: unknown } | { ok: false; error: TRPCError };

export function createTrpcHttpHandler<TRouter extends AnyRouter, TContext>(options: TrpcHttpOptions<TRouter, TContext>) {
  const { router, maxBatchSize, onError } = options;
  const toError = (cause: unknown): TRPCError => {
    const error = getTRPCErrorFromUnknown(cause);
    return options.mapError ? options.mapError(error) : error;
  };
  const config = router._def._config;

  // What `transformTRPCResponse` produces, built directly: its generic object copies cost more
  // than the rest of a cached `auth.me`.
  const serialize = (value: unknown): unknown => config.transformer.output.serialize(value);
  const errorEnvelope = (error: TRPCError, path: string | undefined, type: ProcedureType | "unknown", ctx: TContext | undefined, input: unknown) => ({
    error: getErrorShape({ config, error, type, path, input, ctx }),
  });
  const wire = (envelope: { result: { data: unknown } } | { error: unknown }) =>
    "error" in envelope ? { error: serialize(envelope.error) } : { result: { data: serialize(envelope.result.data) } };

  /** Serves one request with its context (built by the caller: it cannot fail). */
  return async function handle(request: TrpcHttpRequest, ctx: TContext): Promise<TrpcHttpResult> {
    const isBatch = request.query.get("batch") === "1";
    let type: ProcedureType | "unknown" = "unknown";
    try {
      let decoded: string;
      try {
        decoded = decodeURIComponent(request.path);
      } catch (cause) {
        throw new TRPCError({ code: "BAD_REQUEST", message: `Invalid URL-encoding in path "${request.path}"`, cause });
      }
      const paths = isBatch ? urlPathToProcedurePath(decoded, config.pathSeparator).split(",") : [urlPathToProcedurePath(decoded, config.pathSeparator)];
      if (isBatch && paths.length > maxBatchSize) throw new TRPCError({ code: "BAD_REQUEST", message: "Batch call exceeds maximum size" });

      // Inputs are read once, when the first procedure asks for its own: a malformed body fails
      // inside each call's input step, as a BAD_REQUEST whose cause is the parse error.
      let inputs: Record<number, unknown> | TRPCError | undefined;
      const parseInputs = (): Record<number, unknown> => {
        const text = request.method === "GET" ? request.query.get("input") : request.body;
        const raw: unknown = text ? JSON.parse(text) : undefined;
        const acc: Record<number, unknown> = Object.create(null);
        if (raw === undefined) return acc;
        if (!isBatch) {
          acc[0] = config.transformer.input.deserialize(raw);
          return acc;
        }
        if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
          throw new TRPCError({ code: "BAD_REQUEST", message: '"input" needs to be an object when doing a batch call' });
        }
        const byIndex = raw as Record<string, unknown>;
        paths.forEach((_, index) => {
          if (byIndex[index] !== undefined) acc[index] = config.transformer.input.deserialize(byIndex[index]);
        });
        return acc;
      };
      const readInputs = (): Record<number, unknown> => {
        if (inputs === undefined) {
          try {
            inputs = parseInputs();
          } catch (cause) {
            inputs = cause instanceof TRPCError ? cause : new TRPCError({ code: "BAD_REQUEST", message: cause instanceof Error ? cause.message : "Invalid input", cause });
          }
        }
        if (inputs instanceof TRPCError) throw inputs;
        return inputs;
      };
      const inputOf = (index: number) => (inputs === undefined || inputs instanceof TRPCError ? undefined : inputs[index]);

      const procedures = (await Promise.all(paths.map((path) => getProcedureAtPath(router, path)))) as (AnyProcedure | null)[];
      const types = new Set(procedures.flatMap((p) => (p ? [p._def.type as ProcedureType] : [])));
      if (types.size > 1) throw new TRPCError({ code: "BAD_REQUEST", message: `Cannot mix procedure types in call: ${[...types].join(", ")}` });
      type = types.values().next().value ?? "unknown";

      let allow: string | undefined;
      const outcomes = await Promise.all(
        paths.map(async (path, index): Promise<Outcome> => {
          const procedure = procedures[index];
          try {
            if (!procedure) throw new TRPCError({ code: "NOT_FOUND", message: `No procedure found on path "${path}"` });
            const procedureType = procedure._def.type as ProcedureType;
            if (procedureType === "subscription") throw new TRPCError({ code: "METHOD_NOT_SUPPORTED", message: "Subscriptions are not served" });
            if (METHOD_OF[procedureType] !== request.method) {
              allow = METHOD_OF[procedureType];
              throw new TRPCError({
                code: "METHOD_NOT_SUPPORTED",
                message: `Unsupported ${request.method}-request to ${procedureType} procedure at path "${path}"`,
              });
            }
            const data: unknown = await procedure({
              path,
              getRawInput: async () => readInputs()[index],
              ctx,
              type: procedureType,
              signal: undefined,
              batchIndex: index,
            });
            return { ok: true, data };
          } catch (cause) {
            const error = toError(cause);
            onError?.({ error, path, type: (procedure?._def.type as ProcedureType | undefined) ?? "unknown", ctx });
            return { ok: false, error };
          }
        }),
      );

      const envelopes = outcomes.map((outcome, index) =>
        outcome.ok
          ? { result: { data: outcome.data } }
          : errorEnvelope(outcome.error, paths[index], (procedures[index]?._def.type as ProcedureType | undefined) ?? "unknown", ctx, inputOf(index)),
      );
      const errors = outcomes.map((outcome) => (outcome.ok ? undefined : outcome.error));
      return {
        status: getHTTPStatusCode(envelopes, errors),
        body: JSON.stringify(isBatch ? envelopes.map(wire) : wire(envelopes[0]!)),
        errors: errors.filter((error): error is TRPCError => error !== undefined),
        ...(allow ? { allow } : {}),
      };
    } catch (cause) {
      const error = toError(cause);
      onError?.({ error, path: undefined, type, ctx });
      const envelope = errorEnvelope(error, undefined, type, ctx, undefined);
      return {
        status: getHTTPStatusCode(envelope, [error]),
        body: JSON.stringify(wire(envelope)),
        errors: [error],
      };
    }
  };
}
