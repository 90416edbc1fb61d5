/// <reference path="./.sst/platform/config.d.ts" />
/**
 * authlith on AWS: one Lambda behind an API Gateway HTTP API, RDS Postgres and ElastiCache Redis
 * in private subnets, the SigningKeys and HmacSecret secrets, a migrator invoked on every deploy
 * and a scheduled purge. Stage-dependent choices live in packages/infra/src/settings.ts; the
 * resource graph is asserted offline by `npm run test:infra`. README "Deploy" explains each choice.
 */
// SST evaluates app() on its own and refuses top-level imports: settings are imported in run().
const PRODUCTION_STAGES = ["prod", "production"]; // = PRODUCTION_STAGES in packages/infra/src/settings.ts

export default $config({
  app(input) {
    const production = PRODUCTION_STAGES.includes(input?.stage ?? "");
    return {
      name: "authlith",
      home: "aws",
      // Production keeps RDS, its subnets and the VPC when the stage is removed, and refuses `sst remove`.
      removal: production ? "retain" : "remove",
      protect: production,
    };
  },
  async run() {
    const { ALARMS, VPC_CIDR, HANDLERS, JOB_FUNCTION, LOCAL_POSTGRES, LOCAL_REDIS, NATIVE_PACKAGES, RUNTIME_PROVIDED, readDeployConfig, stageSettings } =
      await import("./packages/infra/src/settings");
    const stage = $app.stage;
    const settings = stageSettings(stage);
    if ($dev && settings.production) {
      // `sst dev` replaces RDS and ElastiCache with local servers: on production that would drop them.
      throw new Error(`Refusing to run \`sst dev\` on the production stage "${stage}": use a personal stage.`);
    }
    const deploy = readDeployConfig(process.env, stage);
    const { default: functionsPackage } = await import("./packages/functions/package.json");
    const nativeInstall = Object.fromEntries(
      NATIVE_PACKAGES.map((name) => {
        const version = (functionsPackage.dependencies as Record<string, string | undefined>)[name];
        if (!version) throw new Error(`packages/functions/package.json must list ${name} in dependencies`);
        return [name, version];
      }),
    );

    // Private subnets hold the database, Redis and the functions. The bastion lets `sst tunnel`
    // (and `sst dev`) reach RDS and Redis from a laptop; with ec2 NAT it is the NAT instance itself.
    // Least privilege on the network: the VPC's default group admits nothing; the NAT instance
    // takes traffic from the VPC only; SSH to the bastion only from AUTHLITH_BASTION_CIDRS (none by
    // default, and then no tunnel).
    const ssh = deploy.bastionCidrs.length ? [{ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: deploy.bastionCidrs }] : [];
    const vpc = new sst.aws.Vpc("Vpc", {
      az: 2,
      nat: settings.nat,
      bastion: true,
      transform: {
        securityGroup: (args) => {
          args.ingress = [];
        },
        natSecurityGroup: (args) => {
          args.ingress = [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: [VPC_CIDR] }, ...ssh];
        },
        bastionSecurityGroup: (args) => {
          args.ingress = ssh;
        },
      },
    });

    // A security group of its own for the functions, RDS Proxy, RDS and Redis: the functions reach
    // the proxy and the database on 5432 and Redis on 6379, and nothing else reaches any of them
    // (but the bastion, for the tunnel, when SSH to it is allowed).
    const tunnel = deploy.bastionCidrs.length ? vpc.nodes.bastionSecurityGroup.apply((group) => (group ? [group.id] : [])) : $output([]);
    const group = (name: string, description: string, ingress: $util.Input<aws.types.input.ec2.SecurityGroupIngress[]>) =>
      new aws.ec2.SecurityGroup(name, {
        vpcId: vpc.id,
        description,
        ingress,
        egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
      });
    const functionsGroup = group("FunctionsSecurityGroup", "authlith functions: no inbound", []);
    const from = (port: number, sources: $util.Input<string>[]) =>
      $output(tunnel).apply((bastion) => [{ protocol: "tcp", fromPort: port, toPort: port, securityGroups: [...sources, ...bastion] }]);
    const proxyGroup = settings.postgres.proxy ? group("DatabaseProxySecurityGroup", "authlith RDS Proxy: 5432 from the functions", from(5432, [functionsGroup.id])) : undefined;
    const databaseGroup = group(
      "DatabaseSecurityGroup",
      "authlith Postgres: 5432 from the functions and the proxy",
      from(5432, [functionsGroup.id, ...(proxyGroup ? [proxyGroup.id] : [])]),
    );
    const redisGroup = group("RedisSecurityGroup", "authlith Redis: 6379 from the functions", from(6379, [functionsGroup.id]));
    const privateNetwork = { privateSubnets: vpc.privateSubnets, securityGroups: [functionsGroup.id] };

    // The role the service connects as (docs/security.md §38): the migrator, connected as the
    // database's owner, creates it and grants it the tables; Auth and the purge connect as it, and
    // RDS Proxy knows its credentials. It cannot change the schema.
    const { RandomPassword } = await import("@pulumi/random");
    const appRole = $dev
      ? undefined
      : { username: "authlith_app", password: new RandomPassword("DatabaseAppPassword", { length: 40, special: false }).result };

    const database = new sst.aws.Postgres("Database", {
      vpc,
      version: "17",
      instance: settings.postgres.instance,
      storage: "20 GB",
      multiAz: settings.postgres.multiAz,
      proxy: settings.postgres.proxy && appRole ? { credentials: [appRole] } : settings.postgres.proxy,
      dev: { ...LOCAL_POSTGRES },
      transform: {
        instance: (args) => {
          args.vpcSecurityGroupIds = [databaseGroup.id];
          args.backupRetentionPeriod = settings.postgres.backupRetentionDays;
          if (settings.postgres.deletionProtection) {
            args.deletionProtection = true;
            args.skipFinalSnapshot = false;
            args.finalSnapshotIdentifier = `${$app.name}-${stage}-final`;
            args.copyTagsToSnapshot = true;
          }
        },
        proxy: (args) => {
          if (proxyGroup) args.vpcSecurityGroupIds = [proxyGroup.id];
        },
        // TLS required of every client (SST's default is rds.force_ssl=0); the functions verify
        // the server against the RDS CA bundle (DATABASE_SSL=verify-full, docs/security.md §37).
        parameterGroup: (args) => {
          args.parameters = $output(args.parameters ?? []).apply((parameters) => [
            ...parameters.filter((parameter) => parameter.name !== "rds.force_ssl"),
            { name: "rds.force_ssl", value: "1" },
          ]);
        },
      },
    });

    // What the service and the purge are linked to: where the database is and the role's
    // credentials, never the owner's (only the migrator is linked to `database` itself).
    const databaseApp = appRole
      ? new sst.Linkable("DatabaseApp", {
          properties: { host: database.host, port: database.port, database: database.database, ...appRole },
        })
      : undefined;
    /** The functions' database link: the role's in AWS, the local server's in `sst dev`. */
    const serviceDatabase = databaseApp ?? database;

    // cluster: false, a primary endpoint for one ioredis client per container (core/src/store/redis.ts); ElastiCache requires TLS and
    // an AUTH token, which the link carries (the handler connects with rediss://default:<token>@).
    const redis = new sst.aws.Redis("Redis", {
      vpc,
      engine: "redis",
      version: "7.1",
      instance: settings.redis.instance,
      cluster: false,
      dev: { ...LOCAL_REDIS },
      transform: {
        cluster: (args) => {
          args.securityGroupIds = [redisGroup.id];
        },
      },
    });

    const signingKeys = new sst.Secret("SigningKeys");
    const hmacSecret = new sst.Secret("HmacSecret");

    // CORS is the function's: it answers preflights and refuses unknown origins, with credentials
    // for allowed ones. API Gateway's own CORS would replace those headers, so it is off.
    const api = new sst.aws.ApiGatewayV2("Api", {
      cors: false,
      domain: deploy.domain
        ? deploy.domain.certArn
          ? { name: deploy.domain.name, dns: false, cert: deploy.domain.certArn }
          : deploy.domain.name
        : undefined,
      accessLog: { retention: settings.logRetention },
      // Stage throttling: a flood is refused (429) by API Gateway before a function runs.
      transform: {
        stage: (args) => {
          args.defaultRouteSettings = {
            throttlingRateLimit: settings.limits.apiRatePerSecond,
            throttlingBurstLimit: settings.limits.apiBurst,
          };
        },
      },
    });

    // In `sst dev` the functions run on the laptop against the local servers: no VPC for them.
    const functionVpc = $dev ? undefined : privateNetwork;
    const databasePrepare = settings.postgres.proxy ? "false" : "true";

    let migration: aws.lambda.Invocation | undefined;
    let migrator: sst.aws.Function | undefined;
    if (!$dev) {
      migrator = new sst.aws.Function("Migrator", {
        handler: HANDLERS.migrate,
        ...JOB_FUNCTION,
        timeout: "5 minutes",
        vpc: privateNetwork,
        link: [database, ...(databaseApp ? [databaseApp] : [])],
        // The instance itself, not RDS Proxy: DDL would pin proxy sessions, and on a first deploy the
        // proxy's target may not be registered yet. The migrator waits up to 4 minutes for it.
        environment: { AUTHLITH_MIGRATION_HOST: database.nodes.instance!.address },
        copyFiles: [{ from: "drizzle", to: "drizzle" }],
        nodejs: { minify: true },
        logging: { retention: settings.logRetention },
      });
      // Every deploy runs the migrator inside the VPC; a failed migration fails the deploy before
      // the new API code goes live (the Auth function depends on this invocation).
      migration = new aws.lambda.Invocation("MigrateOnDeploy", {
        functionName: migrator.name,
        input: JSON.stringify({ source: "sst deploy" }),
        triggers: { deployedAt: Date.now().toString() },
      });
    } else {
      // `sst dev`: apply drizzle/ to the local Postgres when dev starts.
      new sst.x.DevCommand("Migrations", {
        dev: { title: "Migrations", autostart: true, command: "npm run db:migrate" },
        environment: {
          DATABASE_URL: $interpolate`postgres://${database.username}:${database.password}@${database.host}:${database.port}/${database.database}`,
        },
      });
    }

    // arm64 costs 20 % less per GB-second and @node-rs/argon2 ships a Linux arm64 build. Lambda
    // gives CPU in proportion to memory, one full vCPU at 1769 MB: argon2id (parallelism 1) is
    // single-threaded CPU work on every sign-in, throttled below that, and a second vCPU above it
    // would sit idle. README "Deploy" has the reasoning; `npm run bench` prices this size.
    // Mail (reset links, notices) through SES when a sender is configured; linking grants the
    // function permission to send from it, and the link tells it the sender (config.ts).
    const email = deploy.mail ? new sst.aws.Email("Email", { sender: deploy.mail.sender }) : undefined;

    const auth = new sst.aws.Function("Auth", {
      handler: HANDLERS.api,
      runtime: "nodejs22.x",
      architecture: "arm64",
      memory: "1769 MB",
      timeout: "10 seconds",
      // At most this many hashes at once, whatever a flood does (and the bill with it): README "Deploy".
      concurrency: $dev ? undefined : { reserved: settings.limits.authConcurrency },
      vpc: functionVpc,
      link: [serviceDatabase, redis, signingKeys, hmacSecret, ...(email ? [email] : [])],
      // The SES client comes with the Lambda runtime (AWS SDK v3): not bundled, never parsed at cold
      // start. Splitting: what is imported on first use (the WebAuthn library) is a chunk of its
      // own, so a cold start does not parse it.
      nodejs: { install: nativeInstall, minify: true, splitting: true, esbuild: { external: [...RUNTIME_PROVIDED] } },
      environment: {
        AUTHLITH_ISSUER: api.url,
        AUTHLITH_ALLOWED_ORIGINS: deploy.allowedOrigins.join(","),
        AUTHLITH_SIGNING_ALG: deploy.signingAlg,
        REDIS_KEY_PREFIX: `authlith:${stage}:`,
        ...(deploy.appUrl ? { AUTHLITH_APP_URL: deploy.appUrl } : {}),
        DATABASE_POOL_MAX: "2",
        // RDS Proxy pins a client connection that creates named prepared statements.
        DATABASE_PREPARE: databasePrepare,
      },
      logging: { retention: settings.logRetention },
      transform: migration ? { function: (_args, opts) => void (opts.dependsOn = [migration]) } : undefined,
    });

    api.route("ANY /trpc/{proxy+}", auth.arn);
    api.route("GET /.well-known/jwks.json", auth.arn);
    api.route("GET /.well-known/openid-configuration", auth.arn);
    api.route("GET /health", auth.arn);

    const purge = new sst.aws.CronV2("Purge", {
      schedule: settings.purgeSchedule,
      function: {
        handler: HANDLERS.purge,
        ...JOB_FUNCTION,
        timeout: "1 minute",
        vpc: functionVpc,
        link: [serviceDatabase],
        nodejs: { minify: true },
        environment: { DATABASE_PREPARE: databasePrepare },
        logging: { retention: settings.logRetention },
      },
    });

    // Watching production: every alarm goes to one SNS topic, mailed to AUTHLITH_ALARM_EMAIL.
    if (!$dev && (settings.production || deploy.alarmEmail)) {
      const topic = new aws.sns.Topic("Alarms");
      if (deploy.alarmEmail) {
        new aws.sns.TopicSubscription("AlarmEmail", { topic: topic.arn, protocol: "email", endpoint: deploy.alarmEmail });
      }
      type AlarmArgs = Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "alarmDescription" | "evaluationPeriods"> & {
        evaluationPeriods?: number;
      };
      const alarm = (name: string, description: string, args: AlarmArgs) =>
        new aws.cloudwatch.MetricAlarm(name, {
          period: 300,
          treatMissingData: "notBreaching",
          ...args,
          evaluationPeriods: args.evaluationPeriods ?? 1,
          alarmDescription: description,
          alarmActions: [topic.arn],
          okActions: [topic.arn],
        });
      const lambdaErrors = (fn: $util.Input<string>) => ({
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions: { FunctionName: fn },
        statistic: "Sum" as const,
        comparisonOperator: "GreaterThanOrEqualToThreshold" as const,
      });
      const authName = auth.nodes.function.name;
      alarm("AuthErrorsAlarm", "Auth function errors (500s or crashes)", { ...lambdaErrors(authName), threshold: ALARMS.authErrors });
      alarm("AuthThrottlesAlarm", "Auth invocations refused at the reserved concurrency", {
        ...lambdaErrors(authName),
        metricName: "Throttles",
        threshold: ALARMS.authThrottles,
      });
      alarm("AuthDurationAlarm", "Auth p99 duration", {
        namespace: "AWS/Lambda",
        metricName: "Duration",
        dimensions: { FunctionName: authName },
        extendedStatistic: "p99",
        comparisonOperator: "GreaterThanThreshold",
        threshold: ALARMS.authP99Ms,
        evaluationPeriods: 3,
      });
      alarm("Api5xxAlarm", "API 5xx answers", {
        namespace: "AWS/ApiGateway",
        metricName: "5xx",
        dimensions: { ApiId: api.nodes.api.id, Stage: "$default" },
        statistic: "Sum",
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: ALARMS.api5xx,
      });
      const rds = { namespace: "AWS/RDS", dimensions: { DBInstanceIdentifier: database.nodes.instance!.identifier }, statistic: "Average" as const };
      alarm("DatabaseCpuAlarm", "RDS CPU", { ...rds, metricName: "CPUUtilization", comparisonOperator: "GreaterThanThreshold", threshold: ALARMS.databaseCpuPercent, evaluationPeriods: 3 });
      alarm("DatabaseStorageAlarm", "RDS free storage running out", {
        ...rds,
        metricName: "FreeStorageSpace",
        statistic: "Minimum",
        comparisonOperator: "LessThanThreshold",
        threshold: ALARMS.databaseFreeStorageBytes,
      });
      alarm("DatabaseConnectionsAlarm", "RDS connections near the instance's limit", {
        ...rds,
        metricName: "DatabaseConnections",
        statistic: "Maximum",
        comparisonOperator: "GreaterThanThreshold",
        threshold: ALARMS.databaseConnections,
      });
      alarm("RedisMemoryAlarm", "Redis memory used (noeviction: writes fail when full)", {
        namespace: "AWS/ElastiCache",
        metricName: "DatabaseMemoryUsagePercentage",
        // The replication group's one node.
        dimensions: { CacheClusterId: $interpolate`${redis.nodes.cluster.id}-001` },
        statistic: "Maximum",
        comparisonOperator: "GreaterThanThreshold",
        threshold: ALARMS.redisMemoryPercent,
      });
      if (migrator) alarm("MigratorErrorsAlarm", "A migration failed", { ...lambdaErrors(migrator.nodes.function.name), threshold: ALARMS.jobErrors });
      alarm("PurgeErrorsAlarm", "The purge failed", { ...lambdaErrors(purge.nodes.function.name), threshold: ALARMS.jobErrors });
    }

    return {
      api: api.url,
      issuer: api.url,
      jwks: $interpolate`${api.url}/.well-known/jwks.json`,
      openidConfiguration: $interpolate`${api.url}/.well-known/openid-configuration`,
    };
  },
});
