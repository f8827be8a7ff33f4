import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import parsePrometheus from "parse-prometheus-text-format"
import { assert, describe, it } from "vitest"
import * as Config from "../src/Config.ts"
import * as Keys from "../src/Keys.ts"
import * as Prometheus from "../src/Prometheus.ts"
import { RateLimiter } from "../src/Quotas.ts"

describe("RateLimiter (a token bucket per tenant)", () => {
  it("allows a burst, then one request per 1/rate, each tenant on its own", () => {
    const limiter = new RateLimiter({ default: { requestsPerSecond: 10, burst: 3 } })
    const t0 = 1_000_000
    assert.deepStrictEqual(
      [1, 2, 3, 4].map(() => limiter.take("a", t0)),
      [0, 0, 0, 100]
    )
    assert.strictEqual(limiter.take("b", t0), 0)
    assert.strictEqual(limiter.take("a", t0 + 50), 50)
    assert.strictEqual(limiter.take("a", t0 + 100), 0)
    assert.strictEqual(limiter.take("a", t0 + 100), 100)
    // Refills up to the burst, never beyond.
    assert.deepStrictEqual(
      [1, 2, 3, 4].map(() => limiter.take("a", t0 + 60_000)),
      [0, 0, 0, 100]
    )
  })

  it("a tenant's own quota wins over the default; no rate is no limit", () => {
    const limiter = new RateLimiter({ default: { requestsPerSecond: 1 }, tenants: { big: {} } })
    assert.strictEqual(limiter.take("small", 0), 0)
    assert.strictEqual(limiter.take("small", 0), 1000)
    for (let i = 0; i < 10_000; i++) assert.strictEqual(limiter.take("big", 0), 0)
  })
})

describe("Prometheus registry", () => {
  it("renders counters and labelled histograms as valid exposition text", () => {
    const registry = new Prometheus.Registry()
    const counter = registry.counter("t_total", 'Things, "quoted" \\ and\nmultiline.')
    const histogram = registry.histogram("t_seconds", "Durations.", [0.1, 1])
    counter.inc({ kind: 'a"b\\c\nd' })
    counter.inc({ kind: 'a"b\\c\nd' }, 2)
    histogram.observe(0.05, { m: "x" })
    histogram.observe(0.5, { m: "x" })
    histogram.observe(5, { m: "x" })
    histogram.observe(1, { m: "y" })
    const text = registry.render()
    assert.strictEqual(counter.value({ kind: 'a"b\\c\nd' }), 3)
    assert.include(text, 't_total{kind="a\\"b\\\\c\\nd"} 3')
    assert.include(text, 't_seconds_bucket{m="x",le="0.1"} 1')
    assert.include(text, 't_seconds_bucket{m="x",le="1"} 2')
    assert.include(text, 't_seconds_bucket{m="x",le="+Inf"} 3')
    assert.include(text, 't_seconds_sum{m="x"} 5.55')
    assert.include(text, 't_seconds_count{m="y"} 1')
    assert.include(text, 't_seconds_bucket{m="y",le="1"} 1')
    const families = parsePrometheus(text) as Array<{ name: string; type: string; help: string }>
    assert.deepStrictEqual(
      families.map((f) => [f.name, f.type]),
      [
        ["t_total", "COUNTER"],
        ["t_seconds", "HISTOGRAM"]
      ]
    )
    assert.strictEqual(families[0]!.help, 'Things, "quoted" \\ and\nmultiline.')
  })
})

describe("Config file", () => {
  it("accepts every documented key", () => {
    const parsed = Config.parse(
      JSON.stringify({
        port: 0,
        host: "0.0.0.0",
        db: "x.db",
        auth: false,
        bodyLimitBytes: 10,
        idleTimeoutMs: 5,
        shutdownTimeoutMs: 0,
        logLevel: "none",
        quotas: { default: { activeEvents: 1, requestsPerSecond: 2, burst: 3 }, tenants: { a: {} } },
        runner: {
          actions: { commands: { hi: { command: "/bin/echo", args: ["hi"] } }, fileDirectory: "/tmp" },
          retrySchedule: ["1s", 5000],
          misfireGraceMs: 1,
          deliveryConcurrency: 2
        }
      }),
      "test"
    )
    assert.isTrue(Either.isRight(parsed))
  })

  it("names the field of a bad value or an unknown key", () => {
    const field = (value: unknown) =>
      Either.match(Config.parse(JSON.stringify(value), "test"), {
        onLeft: (e) => e.field,
        onRight: () => "accepted"
      })
    assert.strictEqual(field({ port: 70_000 }), "port")
    assert.strictEqual(field({ port: "1" }), "port")
    assert.strictEqual(field({ quotas: { tenants: { a: { burst: -1 } } } }), "quotas.tenants.a.burst")
    assert.strictEqual(
      field({ runner: { actions: { commands: { x: { args: [] } } } } }),
      "runner.actions.commands.x.command"
    )
    assert.strictEqual(field({ logLevel: "loud" }), "logLevel")
    assert.strictEqual(field({ prot: 1 }), "prot")
    assert.strictEqual(field([]), "config")
    assert.strictEqual(
      Either.match(Config.parse("{", "x.json"), { onLeft: (e) => e.field, onRight: () => "accepted" }),
      "config"
    )
  })
})

describe("KeyStore (SQLite)", () => {
  it("a key revoked by another process on the file is refused from the next event-loop turn, cached or not", async () => {
    // Requests are read from sockets between turns: one that arrives after a change is looked up
    // in a later turn than the change.
    const nextTurn = Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    const dir = mkdtempSync(join(tmpdir(), "t-minus-keys-"))
    const file = join(dir, "keys.db")
    try {
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const server = yield* Keys.makeSqlite(file)
            const cli = yield* Keys.makeSqlite(file) // another connection, as `keys revoke` is
            const a = yield* cli.create({ tenant: "acme", principal: "ann", role: "agent" })
            const b = yield* cli.create({ tenant: "acme", principal: "bob", role: "viewer" })
            for (let i = 0; i < 3; i++) {
              assert.strictEqual(Option.getOrThrow(yield* server.resolve(a.key)).principal, "ann")
              assert.strictEqual(Option.getOrThrow(yield* server.resolve(b.key)).principal, "bob")
            }
            assert.isTrue(Option.isNone(yield* server.resolve(`${a.key}x`)))
            assert.isTrue(yield* cli.revoke(a.record.id))
            yield* nextTurn
            assert.isTrue(Option.isNone(yield* server.resolve(a.key)))
            assert.strictEqual(Option.getOrThrow(yield* server.resolve(b.key)).principal, "bob")
            // A key made after a lookup found nothing is found once it exists.
            const c = yield* cli.create({ tenant: "acme", principal: "cid", role: "admin" })
            yield* nextTurn
            assert.strictEqual(Option.getOrThrow(yield* server.resolve(c.key)).role, "admin")
            assert.isTrue(yield* server.revoke(c.record.id))
            assert.isTrue(Option.isNone(yield* server.resolve(c.key)))
            // Any writer counts, even one that knows nothing of the cache (a hand-made UPDATE).
            const raw = new Database(file)
            raw.prepare("UPDATE api_keys SET revoked_at = 1 WHERE id = ?").run(b.record.id)
            raw.close()
            yield* nextTurn
            assert.isTrue(Option.isNone(yield* server.resolve(b.key)))
          })
        )
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
