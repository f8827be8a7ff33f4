/**
 * Where the server's time goes under the benchmark's load (a tool, not part of `pnpm bench`):
 * one closed-loop run against a server started with `--cpu-prof`, then the main thread's samples
 * inside the timed window, by category and by function, per call.
 *
 *   tsx packages/rpc-server/bench/profile.ts [websocket|http] [connections] [client|wire] [warning|info]
 *
 * `client` drives the server with `TMinusClient`, `wire` with hand-written `@effect/rpc` frames.
 * The profile is written under the bench's temp directory and deleted; set `KEEP_PROFILE=<dir>`
 * to keep it (open it in Chrome DevTools or speedscope).
 */
import { cpSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import {
  fmtInt,
  killChildren,
  type Protocol,
  pct,
  removeTempDir,
  runLoad,
  scaledMs,
  startServer,
  table,
  tempPath
} from "./fixtures.ts"

const [protocol = "websocket", connectionsText = "100", target = "client", logLevel = "warning"] =
  process.argv.slice(2)

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Categories by the frame that ran (self time), first match wins. */
const CATEGORIES: ReadonlyArray<readonly [string, (url: string, fn: string) => boolean]> = [
  ["idle", (_, fn) => fn === "(idle)"],
  ["garbage collector", (_, fn) => fn === "(garbage collector)"],
  [
    "SQLite (better-sqlite3 calls: statements, commit)",
    (url, fn) =>
      url.includes("better-sqlite3") ||
      (url.endsWith("core/src/sqlite.ts") && fn === "executeNow") ||
      fn === "run"
  ],
  [
    "API key lookup (sha256 + SELECT)",
    (url) => url.includes("rpc-server/src/Keys.ts") || url.includes("crypto")
  ],
  ["Effect Schema (decode/encode)", (url) => /effect\/.*\/(ParseResult|Schema|SchemaAST)\.js/.test(url)],
  [
    "Effect runtime (fibers, scopes, FiberRefs)",
    (url) => url.includes("/effect@") || url.includes("/effect/dist")
  ],
  ["@effect/rpc", (url) => url.includes("@effect+rpc")],
  ["@effect/platform(-node)", (url) => url.includes("@effect+platform")],
  ["ws", (url) => url.includes("/ws@")],
  [
    "node: sockets, http, streams, writev",
    (url, fn) =>
      url.startsWith("node:net") ||
      url.startsWith("node:_http") ||
      url.startsWith("node:internal/streams") ||
      url.startsWith("node:internal/stream_base") ||
      url.startsWith("node:internal/http") ||
      url.startsWith("node:stream") ||
      ["writev", "writeUtf8String", "writeBuffer", "writeLatin1String"].includes(fn)
  ],
  ["t-minus core", (url) => url.includes("packages/core/src/")],
  ["t-minus server", (url) => url.includes("packages/rpc-server/src/")],
  ["other", () => true]
]

const dir = tempPath("profile")
const server = await startServer({
  name: "profiled",
  logLevel: logLevel === "info" ? "info" : "warning",
  extraFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`]
})
const connections = Number(connectionsText)
const durationMs = scaledMs(5_000)
// The profiler's clock is the monotonic one (`process.hrtime`), the load's is the wall clock.
const wallToProfileUs = (wall: number) => Number(process.hrtime.bigint() / 1000n) - (Date.now() - wall) * 1000
const run = await runLoad(
  {
    target: target === "wire" ? "wire" : "client",
    protocol: protocol as Protocol,
    mode: { kind: "closed" },
    warmupMs: 1_000,
    durationMs
  },
  connections,
  { url: server.url, apiKey: server.apiKey },
  { processes: connections >= 100 ? 2 : 1, serverPid: server.pid }
)
// runLoad starts its window ~200 ms after it is called plus connection time; find it from the end.
const endWall = Date.now()
const windowUs: readonly [number, number] = [
  wallToProfileUs(endWall) - durationMs * 1000 - 300_000,
  wallToProfileUs(endWall) - 300_000
]
await server.stop()

const main = readdirSync(dir)
  .filter((f) => f.endsWith(".cpuprofile"))
  .sort()[0]!
if (process.env.KEEP_PROFILE) cpSync(join(dir, main), join(process.env.KEEP_PROFILE, main))
const profile = JSON.parse(readFileSync(join(dir, main), "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
let at = profile.startTime
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  if (at < windowUs[0] || at > windowUs[1]) continue
  const dt = profile.timeDeltas[i + 1] ?? 0
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt)
  total += dt
}
const byCategory = new Map<string, number>()
const byFunction = new Map<string, number>()
for (const [id, us] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame
  const category = CATEGORIES.find(([, test]) => test(url, functionName))![0]
  byCategory.set(category, (byCategory.get(category) ?? 0) + us)
  const where = url
    .replace(/^.*node_modules\/\.pnpm\/([^/]+)\/.*?\/(dist\/esm|src|lib)\//, "$1 ")
    .replace(/^file:\/\/\/.*?packages\//, "")
  const name = `${functionName || "(anonymous)"} ${where}:${lineNumber + 1}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + us)
}
const calls = run.summary.count
const busy = total - (byCategory.get("idle") ?? 0)
console.log(
  `${protocol}, ${connections} connections, ${target}, --log-level ${logLevel}: ${fmtInt(run.summary.perSecond)} schedules/s, p50 ${run.summary.p50.toFixed(2)} ms; server CPU ${pct(run.serverCpu)}, load ${pct(run.loadCpu)}, noise ${pct(run.otherCpu)}`
)
console.log(
  `main thread in the window: ${fmtInt(total / 1000)} ms sampled, ${fmtInt(busy / 1000)} ms busy = ${fmtInt(busy / calls)} µs per call (${fmtInt(calls)} calls)`
)
const rows = (entries: Map<string, number>, limit: number) =>
  [...entries]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => [name, pct(us / total), fmtInt(us / calls)])
console.log(table(["category (self time)", "share", "µs per call"], rows(byCategory, CATEGORIES.length)))
console.log(table(["function (self time)", "share", "µs per call"], rows(byFunction, 30)))
killChildren()
removeTempDir()
