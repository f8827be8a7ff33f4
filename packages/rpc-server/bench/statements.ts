/**
 * Which SQLite statements one `scheduleTimer` costs the server (a tool, not part of `pnpm bench`):
 * the server's layer in this process (`Server.layer`, as the bin builds it, with `BENCH_QUOTAS`)
 * with every better-sqlite3 statement timed, driven for a few seconds by lean load processes.
 * Prints each statement's count per call and mean time, the store's, the runner's and the key
 * store's alike. (The checkpoint worker's connection lives in another thread: not counted.)
 *
 *   tsx packages/rpc-server/bench/statements.ts [websocket|http] [connections]
 */
import * as HttpServer from "@effect/platform/HttpServer"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Server from "../src/Server.ts"
import {
  BENCH_QUOTAS,
  createKey,
  fmtInt,
  killChildren,
  type Protocol,
  removeTempDir,
  runLoad,
  table,
  tempPath
} from "./fixtures.ts"

const [protocol = "websocket", connections = "100"] = process.argv.slice(2)

const timings = new Map<string, { count: number; ms: number }>()
let counting = false
type Method = (...args: Array<unknown>) => unknown
const prototype = Database.prototype as unknown as {
  prepare: (this: Database.Database, sql: string) => unknown
}
const prepare = prototype.prepare
prototype.prepare = function (sql) {
  const statement = prepare.call(this, sql) as Record<"run" | "all" | "get", Method>
  for (const method of ["run", "all", "get"] as const) {
    const original = statement[method].bind(statement)
    statement[method] = (...args) => {
      const started = performance.now()
      try {
        return original(...args)
      } finally {
        if (counting) {
          const name = `${method} ${sql.replace(/\s+/g, " ").slice(0, 100)}`
          const entry = timings.get(name) ?? { count: 0, ms: 0 }
          entry.count++
          entry.ms += performance.now() - started
          timings.set(name, entry)
        }
      }
    }
  }
  return statement
}

const db = tempPath("statements.db")
const apiKey = await createKey(db)
const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(
  Layer.buildWithScope(Server.layer({ logLevel: "warning", port: 0, db, quotas: BENCH_QUOTAS.quotas }), scope)
)
const server = context.unsafeMap.get(HttpServer.HttpServer.key) as HttpServer.HttpServer
const url = `http://127.0.0.1:${(server.address as HttpServer.TcpAddress).port}`
counting = true
const run = await runLoad(
  {
    target: "wire",
    protocol: protocol as Protocol,
    mode: { kind: "closed" },
    warmupMs: 500,
    durationMs: 3_000
  },
  Number(connections),
  { url, apiKey }
)
counting = false
await Effect.runPromise(Scope.close(scope, Exit.void))
const calls = run.succeeded
console.log(`${protocol}, ${connections} connections: ${fmtInt(calls)} schedules (warm-up included)`)
console.log(
  table(
    ["statement", "per call", "mean (µs)", "µs per call"],
    [...timings]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([name, t]) => [
        name,
        (t.count / calls).toFixed(2),
        fmtInt((t.ms * 1000) / t.count),
        fmtInt((t.ms * 1000) / calls)
      ])
  )
)
killChildren()
removeTempDir()
