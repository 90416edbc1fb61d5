import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { Resource } from "sst/resource";
import { envFromLinkedResources, parseEnvConfig, type LinkedResources } from "./config";
import { createRuntime, type Runtime } from "./runtime";

const LINKED = ["Database", "Redis", "SigningKeys", "HmacSecret"] as const;

/** SST's linked resources when deployed or under `sst dev`; nothing elsewhere (never throws). */
function linkedResources(): LinkedResources {
  const resources: Record<string, unknown> = {};
  const source = Resource as unknown as Record<string, unknown>;
  for (const name of LINKED) if (name in source) resources[name] = source[name];
  return resources as LinkedResources;
}

let runtime: Promise<Runtime> | undefined;

/** Reads configuration and builds clients once per container (cold start), not per request. */
function getRuntime(): Promise<Runtime> {
  runtime ??= (async () => {
    const config = parseEnvConfig(envFromLinkedResources(linkedResources(), process.env));
    if (!config.redis && process.env.AWS_LAMBDA_FUNCTION_NAME) {
      throw new Error("authlith: REDIS_URL (or a linked Redis) is required on Lambda");
    }
    return createRuntime(config);
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
