import { describeError, type Deps } from "@authlith/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context as LambdaContext } from "aws-lambda";
import type { HttpConfig } from "./config";
import { checkOrigin, preflight, withCommonHeaders, type OriginCheck } from "./http/cors";
import { createPublicRoutes } from "./http/public-routes";
import { json, trpcStyleError } from "./http/responses";
import { createTrpcRoute } from "./http/trpc-route";

export type ApiHandler = (event: APIGatewayProxyEventV2, context?: LambdaContext) => Promise<APIGatewayProxyStructuredResultV2>;

const TRPC_PREFIX = "/trpc/";

/**
 * The whole HTTP surface as one function of an API Gateway v2 event: CORS, health and the public
 * keys, and the tRPC router. The Lambda handler and the local dev server both call this, so local
 * behaviour is Lambda behaviour.
 */
export function createApiHandler(deps: Deps, http: HttpConfig): ApiHandler {
  const publicRoute = createPublicRoutes(deps);
  const trpc = createTrpcRoute(deps, http);

  const route = async (event: APIGatewayProxyEventV2, origin: OriginCheck): Promise<APIGatewayProxyStructuredResultV2> => {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath;
    if (method === "OPTIONS") return preflight(origin);
    const answer = publicRoute(method, path);
    if (answer) return answer;
    // Whatever route API Gateway matched ($default or /trpc/{proxy+}), the procedure path is what
    // follows /trpc/, still URL-encoded: it is decoded once, as tRPC does.
    if (path.startsWith(TRPC_PREFIX)) return trpc(event, method, path.slice(TRPC_PREFIX.length), origin);
    return json(404, { error: "not_found" });
  };

  return async (event) => {
    const origin = checkOrigin(event, http.allowedOrigins);
    let result: APIGatewayProxyStructuredResultV2;
    try {
      result = await route(event, origin);
    } catch (error) {
      // Only reachable through a bug outside tRPC's own error handling; still never a stack trace.
      deps.log.error("handler.failed", { requestId: event.requestContext?.requestId, ...describeError(error) });
      result = trpcStyleError(500, "INTERNAL_SERVER_ERROR", "Internal server error");
    }
    return withCommonHeaders(result, event.requestContext.requestId, origin);
  };
}
