import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ALARMS, VPC_CIDR, LOCAL_POSTGRES, LOCAL_REDIS, NATIVE_PACKAGES, PERSONAL_LIMITS, PRODUCTION_LIMITS } from "../src/settings";
import {
  buildInput,
  evaluateApp,
  mockArn,
  mockId,
  ofType,
  plain,
  registration,
  resource,
  ROOT,
  testSecrets,
  type Graph,
} from "./support/graph";

/**
 * The resource graph of sst.config.ts, evaluated with SST's real components under Pulumi mocks
 * (harness/evaluate.mjs) for a personal stage, for prod, and in `sst dev` mode.
 */
const LAMBDA = "aws:lambda/function:Function";
const functionsPackage = JSON.parse(readFileSync(join(ROOT, "packages/functions/package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const ORIGINS = "https://app.example.com, https://admin.example.com";

let secrets: Record<string, string>;
let personal: Graph;
let prod: Graph;
let dev: Graph;

beforeAll(async () => {
  secrets = await testSecrets();
  [personal, prod, dev] = await Promise.all([
    evaluateApp({ stage: "alice", env: secrets }),
    evaluateApp({ stage: "prod", env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS } }),
    evaluateApp({ stage: "alice", dev: true, env: secrets }),
  ]);
});

/** Properties common to every deployed stage. */
describe.each([
  ["a personal stage", () => personal],
  ["prod", () => prod],
])("deploying %s", (_label, graph) => {
  it("evaluates without error and outputs the API, issuer and JWKS URLs", () => {
    const g = graph();
    expect(g.error).toBeUndefined();
    expect(g.outputs).toMatchObject({
      api: "https://mockapi.execute-api.us-east-1.amazonaws.com",
      issuer: "https://mockapi.execute-api.us-east-1.amazonaws.com",
      jwks: "https://mockapi.execute-api.us-east-1.amazonaws.com/.well-known/jwks.json",
      openidConfiguration: "https://mockapi.execute-api.us-east-1.amazonaws.com/.well-known/openid-configuration",
    });
  });

  it("runs the one API function on Node 22, arm64, 1769 MB, 10 s, in the private subnets", () => {
    const g = graph();
    const auth = plain(resource(g, LAMBDA, "AuthFunction").inputs);
    expect(auth).toMatchObject({ runtime: "nodejs22.x", architectures: ["arm64"], memorySize: 1769, timeout: 10 });
    const privateSubnets = ofType(g, "aws:ec2/subnet:Subnet").filter((s) => s.name.startsWith("VpcPrivateSubnet"));
    const publicSubnets = ofType(g, "aws:ec2/subnet:Subnet").filter((s) => s.name.startsWith("VpcPublicSubnet"));
    expect(privateSubnets).toHaveLength(2);
    expect(privateSubnets.every((s) => !s.inputs.mapPublicIpOnLaunch)).toBe(true);
    expect(auth.vpcConfig.subnetIds).toEqual(privateSubnets.map((s) => mockId(s.name)));
    for (const subnet of publicSubnets) expect(auth.vpcConfig.subnetIds).not.toContain(mockId(subnet.name));
    expect(auth.vpcConfig.securityGroupIds).toHaveLength(1);
  });

  it("links the API function to Postgres, Redis and both secrets, and installs the native addon", () => {
    const g = graph();
    const build = buildInput(g, "Auth");
    expect(build.handler).toBe("packages/functions/src/handler.handler");
    // The service's role and where the database is; never the `Database` link, which carries the
    // owner's credentials (docs/security.md §38).
    expect(Object.keys(build.links).sort()).toEqual(["DatabaseApp", "HmacSecret", "Redis", "SigningKeys"]);
    expect(build.links.DatabaseApp).toMatchObject({ username: "authlith_app", password: "mock-password-databaseapppassword", port: 5432 });
    const ownerPassword = buildInput(graph(), "Migrator").links.Database.password;
    expect(ownerPassword).toBeTruthy();
    expect(JSON.stringify(build.links)).not.toContain(ownerPassword);
    expect(build.links.DatabaseApp).toMatchObject({ database: "authlith", port: 5432 });
    expect(build.links.DatabaseApp.host).toMatch(/\.rds\.amazonaws\.com$/);
    expect(build.links.Redis).toMatchObject({ host: "master.rediscluster.mock.use1.cache.amazonaws.com", port: 6379, username: "default" });
    expect(build.links.Redis.password).toBe("mock-password-redisauthtoken");
    expect(build.links.SigningKeys.value).toBe(secrets.SST_SECRET_SigningKeys);
    expect(build.links.HmacSecret.value).toBe(secrets.SST_SECRET_HmacSecret);
    // nodejs.install: the addon goes to node_modules for the target architecture, at the
    // version the functions package declares; the bundle is minified.
    expect(build.properties).toMatchObject({ minify: true, splitting: true, architecture: "arm64", esbuild: { external: ["@aws-sdk/client-sesv2"] } });
    expect(build.properties.install).toEqual(Object.fromEntries(NATIVE_PACKAGES.map((name) => [name, functionsPackage.dependencies[name]])));
    expect(build.properties.install["@node-rs/argon2"]).toMatch(/^\^?\d/);
  });

  it("routes /trpc/*, the /.well-known documents and /health to that function with payload format 2.0", () => {
    const g = graph();
    const routes = ofType(g, "aws:apigatewayv2/route:Route").map((r) => r.inputs);
    expect(routes.map((r) => r.routeKey).sort()).toEqual([
      "ANY /trpc/{proxy+}",
      "GET /.well-known/jwks.json",
      "GET /.well-known/openid-configuration",
      "GET /health",
    ]);
    const integrations = new Map(ofType(g, "aws:apigatewayv2/integration:Integration").map((i) => [mockId(i.name), plain(i.inputs)]));
    for (const route of routes) {
      const integration = integrations.get(String(route.target).replace(/^integrations\//, ""));
      expect(integration, route.routeKey).toMatchObject({
        integrationType: "AWS_PROXY",
        payloadFormatVersion: "2.0",
        integrationUri: mockArn("AuthFunction"),
      });
    }
    const permissions = ofType(g, "aws:lambda/permission:Permission").map((p) => plain(p.inputs));
    expect(permissions.filter((p) => p.principal === "apigateway.amazonaws.com" && p.function === mockArn("AuthFunction"))).toHaveLength(4);
  });

  it("leaves CORS to the function, which answers preflights and refuses unknown origins", () => {
    const api = resource(graph(), "aws:apigatewayv2/api:Api", "ApiApi").inputs;
    // API Gateway's CORS would overwrite the function's credentialed CORS headers.
    expect(api.corsConfiguration ?? {}).toEqual({});
    const env = resource(graph(), LAMBDA, "AuthFunction").inputs.environment.variables;
    expect(env.AUTHLITH_ISSUER).toBe("https://mockapi.execute-api.us-east-1.amazonaws.com");
    expect(env.REDIS_KEY_PREFIX).toBe(`authlith:${graph().stage}:`);
  });

  it("applies the migrations on every deploy from inside the VPC before the API code goes live", () => {
    const g = graph();
    const migrator = buildInput(g, "Migrator");
    expect(migrator.handler).toBe("packages/functions/src/migrate-handler.handler");
    // The owner's credentials to migrate, and the role's to create it.
    expect(Object.keys(migrator.links)).toEqual(["Database", "DatabaseApp"]);
    expect(migrator.copyFiles).toEqual([{ from: join(ROOT, "drizzle"), to: "drizzle", isDir: true }]);
    const fn = plain(resource(g, LAMBDA, "MigratorFunction").inputs);
    expect(fn.vpcConfig.subnetIds).toEqual(plain(resource(g, LAMBDA, "AuthFunction").inputs).vpcConfig.subnetIds);
    const invocation = resource(g, "aws:lambda/invocation:Invocation", "MigrateOnDeploy").inputs;
    expect(invocation.functionName).toBe(fn.name);
    // A new trigger value on every evaluation: every `sst deploy` invokes it again.
    expect(Number(invocation.triggers.deployedAt)).toBeGreaterThan(Date.now() - 10 * 60_000);
    expect(registration(g, LAMBDA, "AuthFunction").dependsOn).toContain("MigrateOnDeploy");
  });

  it("purges expired sessions and tokens on a schedule, from inside the VPC", () => {
    const g = graph();
    // EventBridge Scheduler (sst.aws.CronV2; Cron is deprecated): hourly in prod (a busy table),
    // daily on personal stages (README, Deploy).
    expect(ofType(g, "aws:cloudwatch/eventRule:EventRule")).toEqual([]);
    const schedule = plain(ofType(g, "aws:scheduler/schedule:Schedule")[0]!.inputs);
    expect(schedule.scheduleExpression).toBe(g === prod ? "rate(1 hour)" : "rate(1 day)");
    expect(schedule.target.arn).toBe(mockArn("PurgeHandlerFunction"));
    const purge = buildInput(g, "PurgeHandler");
    expect(purge.handler).toBe("packages/functions/src/purge.handler");
    expect(Object.keys(purge.links)).toEqual(["DatabaseApp"]);
    expect(plain(resource(g, LAMBDA, "PurgeHandlerFunction").inputs).vpcConfig.subnetIds).toHaveLength(2);
  });

  it("declares every linked resource in the committed sst-env.d.ts, with the linked properties", () => {
    const declared = parseSstEnv(readFileSync(join(ROOT, "sst-env.d.ts"), "utf8"));
    const g = graph();
    for (const fn of ["Auth", "Migrator", "PurgeHandler"]) {
      for (const [name, properties] of Object.entries<Record<string, unknown>>(buildInput(g, fn).links)) {
        const expected = Object.fromEntries(
          Object.entries(properties).map(([key, value]) => [
            key,
            key === "type" ? `"${String(value).split("$").at(-1)}"` : typeof value === "number" ? "number" : "string",
          ]),
        );
        expect(declared[name], `sst-env.d.ts: ${name}`).toEqual(expected);
      }
    }
  });
});

describe("a personal stage", () => {
  it("uses a cheap NAT instance, which is also the bastion, and one small database without a proxy", () => {
    expect(ofType(personal, "aws:ec2/natGateway:NatGateway")).toHaveLength(0);
    const instances = ofType(personal, "aws:ec2/instance:Instance");
    expect(instances.map((i) => i.name).sort()).toEqual(["VpcNatInstance1", "VpcNatInstance2"]);
    expect(instances.every((i) => i.inputs.instanceType === "t4g.nano")).toBe(true);
    expect(ofType(personal, "aws:rds/proxy:Proxy")).toHaveLength(0);
    const db = resource(personal, "aws:rds/instance:Instance", "DatabaseInstance").inputs;
    expect(db).toMatchObject({ instanceClass: "db.t4g.micro", multiAz: false, skipFinalSnapshot: true });
    expect(db.deletionProtection ?? false).toBe(false);
    expect(resource(personal, LAMBDA, "AuthFunction").inputs.environment.variables.DATABASE_PREPARE).toBe("true");
  });

  it("is removable: nothing retained or protected", () => {
    expect(personal.app).toMatchObject({ removal: "remove", protect: false });
    expect(personal.outputs?._protect).toBe(false);
    expect(personal.registrations.filter((r) => r.retainOnDelete || r.protect)).toEqual([]);
  });
});

describe("prod", () => {
  it("retains and protects its data: Multi-AZ, deletion protection, final snapshot, retained on removal", () => {
    expect(prod.app).toMatchObject({ removal: "retain", protect: true });
    expect(prod.outputs?._protect).toBe(true);
    const db = resource(prod, "aws:rds/instance:Instance", "DatabaseInstance").inputs;
    expect(db).toMatchObject({
      multiAz: true,
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: "authlith-prod-final",
      backupRetentionPeriod: 14,
      storageEncrypted: true,
    });
    for (const [type, name] of [
      ["aws:rds/instance:Instance", "DatabaseInstance"],
      ["aws:rds/subnetGroup:SubnetGroup", "DatabaseSubnetGroup"],
      ["aws:ec2/vpc:Vpc", "VpcVpc"],
    ] as const) {
      expect(registration(prod, type, name).retainOnDelete, name).toBe(true);
    }
  });

  it("bounds cost and abuse: stage throttling on the API and a concurrency cap on Auth, per stage", () => {
    for (const [g, limits] of [
      [personal, PERSONAL_LIMITS],
      [prod, PRODUCTION_LIMITS],
    ] as const) {
      const stage = plain(ofType(g, "aws:apigatewayv2/stage:Stage")[0]!.inputs);
      expect(stage.defaultRouteSettings).toMatchObject({ throttlingRateLimit: limits.apiRatePerSecond, throttlingBurstLimit: limits.apiBurst });
      expect(resource(g, LAMBDA, "AuthFunction").inputs.reservedConcurrentExecutions).toBe(limits.authConcurrency);
    }
    expect(PRODUCTION_LIMITS.authConcurrency).toBeGreaterThan(PERSONAL_LIMITS.authConcurrency);
  });

  it("watches production: alarms on the function, the API, RDS, Redis and the jobs, to one SNS topic", () => {
    const topic = ofType(prod, "aws:sns/topic:Topic");
    expect(topic).toHaveLength(1);
    const alarms = ofType(prod, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => ({ name: a.name, ...plain(a.inputs) }));
    const byName = Object.fromEntries(alarms.map((a) => [a.name, a]));
    expect(Object.keys(byName).sort()).toEqual(
      [
        "Api5xxAlarm",
        "AuthDurationAlarm",
        "AuthErrorsAlarm",
        "AuthThrottlesAlarm",
        "DatabaseConnectionsAlarm",
        "DatabaseCpuAlarm",
        "DatabaseStorageAlarm",
        "MigratorErrorsAlarm",
        "PurgeErrorsAlarm",
        "RedisMemoryAlarm",
      ].sort(),
    );
    for (const alarm of alarms) {
      expect(alarm.alarmActions, alarm.name).toEqual([mockArn("Alarms")]);
      expect(alarm.okActions, alarm.name).toEqual([mockArn("Alarms")]);
    }
    const functionName = (fn: string) => plain(resource(prod, LAMBDA, `${fn}Function`).inputs).name ?? `${fn.toLowerCase()}function-name`;
    expect(byName.AuthErrorsAlarm).toMatchObject({ namespace: "AWS/Lambda", metricName: "Errors", threshold: ALARMS.authErrors });
    expect(byName.AuthErrorsAlarm.dimensions.FunctionName).toBe(functionName("Auth"));
    expect(byName.AuthThrottlesAlarm).toMatchObject({ metricName: "Throttles", threshold: ALARMS.authThrottles });
    expect(byName.AuthDurationAlarm).toMatchObject({ metricName: "Duration", extendedStatistic: "p99", threshold: ALARMS.authP99Ms });
    const apiId = `${ofType(prod, "aws:apigatewayv2/api:Api")[0]!.name.toLowerCase()}-id`; // the mock's id of the HTTP API
    expect(byName.Api5xxAlarm).toMatchObject({ namespace: "AWS/ApiGateway", metricName: "5xx", dimensions: { ApiId: apiId, Stage: "$default" } });
    expect(byName.DatabaseCpuAlarm.dimensions).toEqual({ DBInstanceIdentifier: "databaseinstance" });
    expect(byName.DatabaseStorageAlarm).toMatchObject({ metricName: "FreeStorageSpace", comparisonOperator: "LessThanThreshold", threshold: ALARMS.databaseFreeStorageBytes });
    expect(byName.DatabaseConnectionsAlarm).toMatchObject({ metricName: "DatabaseConnections", threshold: ALARMS.databaseConnections });
    expect(byName.RedisMemoryAlarm).toMatchObject({ namespace: "AWS/ElastiCache", metricName: "DatabaseMemoryUsagePercentage", dimensions: { CacheClusterId: "rediscluster-id-001" } }); // the replication group (mock id) and its first node
    expect(byName.MigratorErrorsAlarm.dimensions.FunctionName).toBe(functionName("Migrator"));
    expect(byName.PurgeErrorsAlarm.dimensions.FunctionName).toBe(functionName("PurgeHandler"));
    // A personal stage without AUTHLITH_ALARM_EMAIL has none (they cost $0.10 each a month).
    expect(ofType(personal, "aws:cloudwatch/metricAlarm:MetricAlarm")).toEqual([]);
  });

  it("isolates the network: a group each for the functions, the proxy, RDS and Redis; no SSH from anywhere by default", () => {
    for (const g of [personal, prod]) {
      const groups = Object.fromEntries(ofType(g, "aws:ec2/securityGroup:SecurityGroup").map((r) => [r.name, plain(r.inputs)]));
      const id = (name: string) => `${name.toLowerCase()}-id`;
      expect(groups.FunctionsSecurityGroup.ingress).toEqual([]);
      const only = (port: number, sources: string[]) => [{ protocol: "tcp", fromPort: port, toPort: port, securityGroups: sources }];
      const fromProxy = g === prod ? [id("DatabaseProxySecurityGroup")] : [];
      expect(groups.DatabaseSecurityGroup.ingress).toEqual(only(5432, [id("FunctionsSecurityGroup"), ...fromProxy]));
      expect(groups.RedisSecurityGroup.ingress).toEqual(only(6379, [id("FunctionsSecurityGroup")]));
      if (g === prod) expect(groups.DatabaseProxySecurityGroup.ingress).toEqual(only(5432, [id("FunctionsSecurityGroup")]));
      else expect(groups.DatabaseProxySecurityGroup).toBeUndefined();
      // Each resource uses its own group, and every function the functions' group.
      expect(resource(g, "aws:rds/instance:Instance", "DatabaseInstance").inputs.vpcSecurityGroupIds).toEqual([id("DatabaseSecurityGroup")]);
      expect(plain(resource(g, "aws:elasticache/replicationGroup:ReplicationGroup", "RedisCluster").inputs).securityGroupIds).toEqual([id("RedisSecurityGroup")]);
      if (g === prod) expect(plain(resource(g, "aws:rds/proxy:Proxy", "DatabaseProxy").inputs).vpcSecurityGroupIds).toEqual([id("DatabaseProxySecurityGroup")]);
      for (const fn of ["Auth", "Migrator", "PurgeHandler"]) {
        expect(plain(resource(g, LAMBDA, `${fn}Function`).inputs).vpcConfig.securityGroupIds, fn).toEqual([id("FunctionsSecurityGroup")]);
      }
      // Nothing is open to 0.0.0.0/0 inbound; the VPC's default group admits nothing.
      for (const [name, sg] of Object.entries(groups)) {
        for (const rule of sg.ingress ?? []) expect(rule.cidrBlocks ?? [], `${name} ingress`).not.toContain("0.0.0.0/0");
      }
      expect(plain(ofType(g, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")[0]!.inputs).ingress).toEqual([]);
      expect(plain(ofType(g, "aws:ec2/vpc:Vpc")[0]!.inputs).cidrBlock).toBe(VPC_CIDR);
    }
    // The NAT instance (a personal stage's bastion too) takes traffic from the VPC only.
    const nat = plain(ofType(personal, "aws:ec2/securityGroup:SecurityGroup").find((r) => r.name === "VpcNatInstanceSecurityGroup")!.inputs);
    expect(nat.ingress).toEqual([{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: [VPC_CIDR] }]);
  });

  it("opens SSH to the bastion, and the databases to it, only for AUTHLITH_BASTION_CIDRS", async () => {
    const tunneled = await evaluateApp({ stage: "prod", env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS, AUTHLITH_BASTION_CIDRS: "203.0.113.0/24" } });
    expect(tunneled.error).toBeUndefined();
    const groups = Object.fromEntries(ofType(tunneled, "aws:ec2/securityGroup:SecurityGroup").map((r) => [r.name, plain(r.inputs)]));
    const bastionGroup = Object.keys(groups).find((name) => /Bastion/.test(name))!;
    expect(groups[bastionGroup].ingress).toEqual([{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["203.0.113.0/24"] }]);
    expect(groups.DatabaseSecurityGroup.ingress[0].securityGroups).toContain(`${bastionGroup.toLowerCase()}-id`);
    // Without it, the bastion admits nothing.
    const closed = plain(ofType(prod, "aws:ec2/securityGroup:SecurityGroup").find((r) => /Bastion/.test(r.name))!.inputs);
    expect(closed.ingress).toEqual([]);
  });

  it("requires TLS of every Postgres client (rds.force_ssl=1), on every stage with RDS", () => {
    for (const g of [personal, prod]) {
      const group = plain(resource(g, "aws:rds/parameterGroup:ParameterGroup", "DatabaseParameterGroup").inputs);
      const forceSsl = group.parameters.filter((p: { name: string }) => p.name === "rds.force_ssl");
      expect(forceSsl).toEqual([{ name: "rds.force_ssl", value: "1" }]);
      expect(group.parameters.some((p: { name: string }) => p.name === "rds.logical_replication")).toBe(true);
    }
  });

  it("pools connections through RDS Proxy, without named prepared statements, and links the proxy", () => {
    const proxy = resource(prod, "aws:rds/proxy:Proxy", "DatabaseProxy").inputs;
    expect(proxy.engineFamily).toBe("POSTGRESQL");
    expect(buildInput(prod, "Auth").links.DatabaseApp.host).toBe("databaseproxy.proxy-mock.us-east-1.rds.amazonaws.com");
    expect(resource(prod, LAMBDA, "AuthFunction").inputs.environment.variables.DATABASE_PREPARE).toBe("false");
    expect(resource(prod, LAMBDA, "PurgeHandlerFunction").inputs.environment.variables.DATABASE_PREPARE).toBe("false");
    // The proxy knows the service's role (its own Secrets Manager secret) besides the owner.
    expect(plain(proxy).auths).toHaveLength(2);
    // The migrator alone bypasses the proxy: it connects to the instance (and waits for it).
    expect(resource(prod, LAMBDA, "MigratorFunction").inputs.environment.variables.AUTHLITH_MIGRATION_HOST).toBe(
      "databaseinstance.mock.us-east-1.rds.amazonaws.com",
    );
  });

  it("uses a managed NAT gateway per AZ and a separate bastion", () => {
    expect(ofType(prod, "aws:ec2/natGateway:NatGateway")).toHaveLength(2);
    expect(ofType(prod, "aws:ec2/instance:Instance").map((i) => i.name)).toEqual(["VpcBastionInstance"]);
  });

  it("passes the configured origins to the function, normalised", () => {
    expect(resource(prod, LAMBDA, "AuthFunction").inputs.environment.variables.AUTHLITH_ALLOWED_ORIGINS).toBe(
      "https://app.example.com,https://admin.example.com",
    );
  });

  it("serves the issuer from a custom domain when one is configured", async () => {
    const withDomain = await evaluateApp({
      stage: "prod",
      env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS, AUTHLITH_DOMAIN: "auth.example.com", AUTHLITH_DOMAIN_CERT_ARN: "arn:aws:acm:us-east-1:123456789012:certificate/abc" },
    });
    expect(withDomain.error).toBeUndefined();
    expect(resource(withDomain, "aws:apigatewayv2/domainName:DomainName", "ApiDomainName").inputs).toMatchObject({
      domainName: "auth.example.com",
      domainNameConfiguration: { certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/abc", endpointType: "REGIONAL" },
    });
    expect(withDomain.outputs).toMatchObject({ issuer: "https://auth.example.com", jwks: "https://auth.example.com/.well-known/jwks.json" });
    expect(resource(withDomain, LAMBDA, "AuthFunction").inputs.environment.variables.AUTHLITH_ISSUER).toBe("https://auth.example.com");
  });

  it("sends mail through an SES identity when a sender is configured, linked to the function with the app's URL", async () => {
    const withMail = await evaluateApp({
      stage: "prod",
      env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS, AUTHLITH_MAIL_SENDER: "Auth@Example.com", AUTHLITH_APP_URL: "https://app.example.com/" },
    });
    expect(withMail.error).toBeUndefined();
    expect(ofType(withMail, "aws:sesv2/emailIdentity:EmailIdentity").map((i) => i.inputs.emailIdentity)).toEqual(["auth@example.com"]);
    expect(buildInput(withMail, "Auth").links.Email).toMatchObject({ sender: "auth@example.com" });
    expect(resource(withMail, LAMBDA, "AuthFunction").inputs.environment.variables.AUTHLITH_APP_URL).toBe("https://app.example.com");
    // Without a sender there is no identity, and the function logs each mail as failed.
    expect(ofType(prod, "aws:sesv2/emailIdentity:EmailIdentity")).toEqual([]);
    const badSender = await evaluateApp({ stage: "prod", env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS, AUTHLITH_MAIL_SENDER: "not a sender" } });
    expect(badSender.error).toMatch(/AUTHLITH_MAIL_SENDER/);
  });

  it("mails the alarms to AUTHLITH_ALARM_EMAIL, and watches a personal stage too when it is set", async () => {
    const watched = await evaluateApp({ stage: "alice", env: { ...secrets, AUTHLITH_ALARM_EMAIL: "oncall@example.com" } });
    expect(watched.error).toBeUndefined();
    const subscription = resource(watched, "aws:sns/topicSubscription:TopicSubscription", "AlarmEmail").inputs;
    expect(plain(subscription)).toMatchObject({ protocol: "email", endpoint: "oncall@example.com", topic: mockArn("Alarms") });
    expect(ofType(watched, "aws:cloudwatch/metricAlarm:MetricAlarm")).toHaveLength(10);
    // prod without an address still has its alarms (on the topic, for any subscriber added later).
    expect(ofType(prod, "aws:sns/topicSubscription:TopicSubscription")).toEqual([]);
    const bad = await evaluateApp({ stage: "alice", env: { ...secrets, AUTHLITH_ALARM_EMAIL: "oncall" } });
    expect(bad.error).toMatch(/AUTHLITH_ALARM_EMAIL/);
  });

  it("refuses to deploy without the secrets or without a decision on allowed origins", async () => {
    const [noSecrets, noOrigins, production] = await Promise.all([
      evaluateApp({ stage: "prod", env: { AUTHLITH_ALLOWED_ORIGINS: ORIGINS } }),
      evaluateApp({ stage: "prod", env: secrets }),
      evaluateApp({ stage: "production", env: secrets }),
    ]);
    expect(noSecrets.error).toMatch(/sst secret set (SigningKeys|HmacSecret)/);
    expect(noOrigins.error).toMatch(/AUTHLITH_ALLOWED_ORIGINS is not set for stage "prod"/);
    // "production" is a production stage too, in app() as in run().
    expect(production.app).toMatchObject({ removal: "retain", protect: true });
    expect(production.error).toMatch(/AUTHLITH_ALLOWED_ORIGINS is not set for stage "production"/);
  });
});

describe("sst dev", () => {
  it("creates no RDS, RDS Proxy or ElastiCache", () => {
    expect(dev.error).toBeUndefined();
    for (const type of [
      "aws:rds/instance:Instance",
      "aws:rds/proxy:Proxy",
      "aws:elasticache/replicationGroup:ReplicationGroup",
      "aws:elasticache/subnetGroup:SubnetGroup",
      "aws:rds/subnetGroup:SubnetGroup",
    ]) {
      expect(ofType(dev, type), type).toEqual([]);
    }
  });

  it("links the functions to the local Postgres and Redis and runs them outside the VPC", () => {
    const auth = buildInput(dev, "Auth");
    expect(auth.dev).toBe(true);
    expect(auth.links.Database).toMatchObject({ ...LOCAL_POSTGRES, type: expect.stringMatching(/sst\.aws\.Postgres$/) });
    expect(auth.links.Redis).toMatchObject({ ...LOCAL_REDIS, username: "default", password: "" });
    expect(buildInput(dev, "PurgeHandler").links.Database).toMatchObject({ host: "localhost", port: 5432 });
    expect(resource(dev, LAMBDA, "AuthFunction").inputs.vpcConfig).toBeUndefined();
    expect(resource(dev, LAMBDA, "PurgeHandlerFunction").inputs.vpcConfig).toBeUndefined();
  });

  it("migrates the local database with a dev command instead of a deployed migrator", () => {
    expect(dev.rpc.some((c) => c.input?.functionID === "Migrator")).toBe(false);
    expect(ofType(dev, "aws:lambda/invocation:Invocation")).toEqual([]);
    const command = dev.devCommands.find((c) => c.name === "Migrations");
    expect(command).toMatchObject({ command: "npm run db:migrate", autostart: true });
    expect(command?.environment?.DATABASE_URL).toBe("postgres://postgres:postgres@localhost:5432/authlith");
    expect(personal.devCommands.map((c) => c.name)).not.toContain("Migrations");
  });

  it("refuses to run on the production stage", async () => {
    const devOnProd = await evaluateApp({ stage: "prod", dev: true, env: { ...secrets, AUTHLITH_ALLOWED_ORIGINS: ORIGINS } });
    expect(devOnProd.error).toMatch(/Refusing to run `sst dev` on the production stage/);
    expect(ofType(devOnProd, "aws:ec2/vpc:Vpc")).toEqual([]);
  });
});

/** `"Name": { "key": type ... }` blocks of sst-env.d.ts's Resource interface. */
function parseSstEnv(text: string): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const block of text.matchAll(/"(\w+)": \{([^{}]*)\}/g)) {
    result[block[1]!] = Object.fromEntries([...block[2]!.matchAll(/"(\w+)": ("[^"]*"|\w+)/g)].map((m) => [m[1]!, m[2]!]));
  }
  return result;
}
