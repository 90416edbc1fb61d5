/// <reference path="./.sst/platform/config.d.ts" />

/**
 * authlith on AWS: one Lambda behind an API Gateway HTTP API, RDS Postgres, ElastiCache Redis,
 * and the two secrets (signing key set, HMAC key). First version: the production hardening
 * (NAT per stage, RDS Proxy choice, migrations on deploy, purge job, resource-graph tests) is
 * tracked separately.
 */
export default $config({
  app(input) {
    return {
      name: "authlith",
      home: "aws",
      removal: input?.stage === "prod" ? "retain" : "remove",
      protect: input?.stage === "prod",
    };
  },
  async run() {
    const isProd = $app.stage === "prod";
    const vpc = new sst.aws.Vpc("Vpc", { bastion: true, nat: isProd ? "managed" : "ec2" });

    const database = new sst.aws.Postgres("Database", {
      vpc,
      dev: { username: "postgres", password: "postgres", database: "authlith", host: "localhost", port: 5432 },
    });
    const redis = new sst.aws.Redis("Redis", {
      vpc,
      cluster: false,
      dev: { host: "localhost", port: 6379 },
    });
    const signingKeys = new sst.Secret("SigningKeys");
    const hmacSecret = new sst.Secret("HmacSecret");

    const api = new sst.aws.ApiGatewayV2("Api");
    const auth = new sst.aws.Function("Auth", {
      handler: "packages/functions/src/handler.handler",
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: "1024 MB",
      timeout: "10 seconds",
      vpc,
      link: [database, redis, signingKeys, hmacSecret],
      nodejs: { install: ["@node-rs/argon2"], minify: true },
      environment: {
        AUTHLITH_ISSUER: api.url,
        AUTHLITH_ALLOWED_ORIGINS: process.env.AUTHLITH_ALLOWED_ORIGINS ?? "",
        REDIS_KEY_PREFIX: `authlith:${$app.stage}:`,
      },
    });
    api.route("ANY /trpc/{proxy+}", auth.arn);
    api.route("GET /.well-known/{proxy+}", auth.arn);
    api.route("GET /health", auth.arn);

    return {
      api: api.url,
      issuer: api.url,
      jwks: $interpolate`${api.url}/.well-known/jwks.json`,
    };
  },
});
