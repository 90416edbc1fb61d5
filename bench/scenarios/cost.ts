/**
 * Monthly AWS cost from the measured durations. Prices are us-east-1 list prices (on-demand, no
 * free tier) written down here with their source; check https://aws.amazon.com/pricing before
 * relying on them. Durations measured on this machine stand in for Lambda durations at the
 * configured memory size (a Lambda at 1769 MB gets one full vCPU; below that, CPU-bound work such
 * as argon2 stretches in proportion).
 */
export const PRICES = {
  source: "AWS on-demand list prices, us-east-1, as used in README (Deploy → What it costs); check https://aws.amazon.com/pricing",
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  httpApiPerMillionRequests: 1.0,
  hoursPerMonth: 730,
  // Fixed, per hour (or per month where named so).
  rdsT4gMicroHour: 0.016, // db.t4g.micro, single-AZ PostgreSQL
  rdsT4gSmallHour: 0.032, // db.t4g.small (×2 for Multi-AZ)
  rdsStorageGbMonth: 0.115, // gp3, per GB-month (×2 for Multi-AZ)
  rdsProxyVcpuHour: 0.015, // billed on the instance's vCPUs, minimum 2
  elasticacheT4gMicroHour: 0.016, // cache.t4g.micro
  natGatewayHour: 0.045, // managed NAT gateway, per AZ (plus $0.045/GB processed)
  ec2T4gNanoHour: 0.0042, // NAT instance (fck-nat) / bastion
  publicIpv4Hour: 0.005,
  secretsManagerMonth: 0.8, // the RDS and Redis credentials SST keeps there
  cognitoEssentialsPerMau: 0.015, // beyond the first 10,000 MAU
  cognitoFreeMau: 10_000,
};

export interface Mix {
  login: number;
  refresh: number;
  me: number;
}

/** A realistic mix: a sign-in starts a session; the client refreshes every 15 minutes of use and calls `me` often. */
export const DEFAULT_MIX: Mix = { login: 0.05, refresh: 0.25, me: 0.7 };

export function lambdaMonthlyCost(requests: number, meanDurationMs: number, memoryMb: number) {
  const gbSeconds = requests * (meanDurationMs / 1000) * (memoryMb / 1024);
  const compute = gbSeconds * PRICES.lambdaArmPerGbSecond;
  const invocations = (requests / 1e6) * PRICES.lambdaPerMillionRequests;
  const api = (requests / 1e6) * PRICES.httpApiPerMillionRequests;
  return { compute, invocations, api, total: compute + invocations + api };
}

/** What the stages of sst.config.ts cost per month before any request (see README). */
export function fixedMonthlyCost() {
  const h = PRICES.hoursPerMonth;
  const storage = 20 * PRICES.rdsStorageGbMonth;
  const personal = {
    rds: PRICES.rdsT4gMicroHour * h + storage,
    elasticache: PRICES.elasticacheT4gMicroHour * h,
    nat: 2 * PRICES.ec2T4gNanoHour * h, // a NAT instance per AZ, also the bastion
    publicIpv4: 2 * PRICES.publicIpv4Hour * h,
    bastion: 0,
    rdsProxy: 0,
    secrets: PRICES.secretsManagerMonth,
  };
  const prod = {
    rds: 2 * (PRICES.rdsT4gSmallHour * h + storage), // Multi-AZ
    elasticache: PRICES.elasticacheT4gMicroHour * h,
    nat: 2 * PRICES.natGatewayHour * h, // managed NAT in two AZs
    publicIpv4: 3 * PRICES.publicIpv4Hour * h,
    bastion: PRICES.ec2T4gNanoHour * h,
    rdsProxy: 2 * PRICES.rdsProxyVcpuHour * h,
    secrets: PRICES.secretsManagerMonth,
  };
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  return { personal: { ...personal, total: sum(personal) }, prod: { ...prod, total: sum(prod) } };
}

export function costModel(durationsMs: Mix, memoryMb: number, mix: Mix = DEFAULT_MIX) {
  const meanMs = durationsMs.login * mix.login + durationsMs.refresh * mix.refresh + durationsMs.me * mix.me;
  // Lambda bills each invocation rounded up to the next millisecond.
  const billedMs = mix.login * Math.ceil(durationsMs.login) + mix.refresh * Math.ceil(durationsMs.refresh) + mix.me * Math.ceil(durationsMs.me);
  const tiers = [10_000, 1_000_000].map((requests) => {
    const authlith = lambdaMonthlyCost(requests, billedMs, memoryMb);
    const typical = lambdaMonthlyCost(requests, 500, memoryMb);
    // Cognito is priced per monthly active user; assume 50 auth requests per active user per month.
    const mau = requests / 50;
    const cognito = Math.max(0, mau - PRICES.cognitoFreeMau) * PRICES.cognitoEssentialsPerMau;
    return { requests, authlithPerRequestMs: billedMs, authlith, typicalLambdaAt500ms: typical, cognitoEssentials: { mau, total: cognito } };
  });
  return { memoryMb, mix, meanDurationMs: meanMs, tiers, fixed: fixedMonthlyCost(), prices: PRICES };
}
