import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { lambdaEnv, parseEnvConfig } from "./config";
import { createRuntime, type Runtime } from "./runtime";

let runtime: Promise<Runtime> | undefined;

/** Reads configuration and builds clients once per container (cold start), not per request. */
function getRuntime(): Promise<Runtime> {
  runtime ??= (async () => {
    const env = lambdaEnv(["Database", "DatabaseApp", "Redis", "SigningKeys", "HmacSecret", "Email"]);
    return createRuntime(parseEnvConfig(env, { lambda: Boolean(env.AWS_LAMBDA_FUNCTION_NAME) }));
  })().catch((error: unknown) => {
    runtime = undefined; // let the next invocation try again instead of caching the failure
    throw error;
  });
  return runtime;
}

/** The Lambda entry point (API Gateway HTTP API, payload format 2.0). */
export async function handler(event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> {
  const { handle } = await getRuntime();
  return handle(event, context);
}
