// A fresh "Lambda container": load the bundled handler, answer auth.me, then sign in once and
// report the peak memory. Plain JavaScript on purpose: no loader between Node and the bundle.
const scriptStartMs = performance.now();
const { handler } = await import(process.env.BENCH_BUNDLE);
const importedMs = performance.now();
const first = await handler(JSON.parse(process.env.BENCH_ME_EVENT), {});
const firstResponseMs = performance.now();
process.stdout.write(`FIRST ${first.statusCode}\n`);
const login = await handler(JSON.parse(process.env.BENCH_LOGIN_EVENT), {});
const { maxRSS } = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({ firstStatus: first.statusCode, loginStatus: login.statusCode, scriptStartMs, importMs: importedMs - scriptStartMs, firstRequestMs: firstResponseMs - importedMs, maxRssKb: maxRSS })}\n`,
);
process.exit(0);
