import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import { Webhook } from "standardwebhooks"
import { Coordinator } from "../src/Coordinator.ts"
import type { HistoryEntry } from "../src/Event.ts"
import * as EventStore from "../src/EventStore.ts"
import * as Runner from "../src/Runner.ts"
import * as Sqlite from "../src/sqlite.ts"
import { T0 } from "./backends.ts"

const SEC = 1_000
const MIN = 60 * SEC
const HOUR = 60 * MIN
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

interface Receiver {
  readonly url: string
  readonly bodies: Array<{ readonly headers: Http.IncomingHttpHeaders; readonly body: string }>
  readonly close: () => void
}

/** A webhook receiver on 127.0.0.1 answering with whatever `status()` says, closed with the scope. */
const receiver = (status: () => number) =>
  Effect.acquireRelease(
    Effect.async<Receiver>((resume) => {
      const bodies: Receiver["bodies"] = []
      const server = Http.createServer((req, res) => {
        let body = ""
        req.on("data", (chunk) => {
          body += chunk
        })
        req.on("end", () => {
          bodies.push({ headers: req.headers, body })
          res.writeHead(status())
          res.end()
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resume(
          Effect.succeed({
            url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
            bodies,
            close: () => server.close()
          })
        )
      )
    }),
    (r) => Effect.sync(r.close)
  )

/** Real I/O (HTTP) finishes on the real clock: wait for it, bounded, while the test clock stands. */
const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      if (yield* check) return
      yield* TestServices.provideLive(Effect.sleep(10))
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })

const attempts = (history: ReadonlyArray<HistoryEntry>) => history.filter((h) => h.type.startsWith("action_"))

const withRunner = <A, E>(
  body: Effect.Effect<A, E, Coordinator | EventStore.EventStore | Scope.Scope>,
  options: Runner.RunnerOptions = {},
  start = T0
) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(start)
    yield* Runner.make({ externalPollMs: Number.POSITIVE_INFINITY, ...options })
    return yield* body
  }).pipe(
    Effect.provide(
      Layer.provideMerge(
        Runner.layerCoordinator(options),
        Layer.merge(EventStore.layerMemory, Sqlite.layerPlatform)
      )
    ),
    Effect.scoped
  )

describe("action delivery through the runner", () => {
  // The independent verifier checks the timestamp against the real clock: start the test clock now.
  const NOW = Math.floor(Date.now() / 1000) * 1000
  it.effect("a signed webhook arrives once the event fires, verified by the standardwebhooks package", () =>
    withRunner(
      Effect.gen(function* () {
        const c = yield* Coordinator
        const hook = yield* receiver(() => 204)
        const timer = yield* c.scheduleTimer({
          in: "1m",
          name: "release",
          payload: { build: 42 },
          onFire: [
            { _tag: "webhook", url: hook.url, secret: SECRET },
            { _tag: "log", message: "fired ${id}" }
          ]
        })
        yield* TestClock.adjust(MIN)
        yield* eventually(
          "delivery",
          Effect.map(c.listActions({ status: "delivered" }), (l) => l.length === 2)
        )
        assert.strictEqual(hook.bodies.length, 1)
        const { headers, body } = hook.bodies[0]!
        assert.strictEqual(headers["webhook-id"], `${timer.id}:fire:0`)
        assert.strictEqual(headers["webhook-timestamp"], String(NOW / 1000))
        const verified = new Webhook(SECRET).verify(body, {
          "webhook-id": String(headers["webhook-id"]),
          "webhook-timestamp": String(headers["webhook-timestamp"]),
          "webhook-signature": String(headers["webhook-signature"])
        }) as { type: string; event: { id: string; status: string; payload: unknown }; occurredAt: string }
        assert.strictEqual(verified.type, "event.fired")
        assert.strictEqual(verified.event.id, timer.id)
        assert.strictEqual(verified.event.status, "fired")
        assert.deepStrictEqual(verified.event.payload, { build: 42 })
        assert.strictEqual(verified.occurredAt, new Date(NOW).toISOString())
        const entries = attempts(yield* c.history(timer.id))
        assert.deepStrictEqual(entries.map((h) => [h.type, h.detail.key, h.detail.attempt]).sort(), [
          ["action_delivered", `${timer.id}:fire:0`, 1],
          ["action_delivered", `${timer.id}:fire:1`, 1]
        ])
        assert.strictEqual(entries.find((h) => h.detail.action === "webhook")?.detail.statusCode, 204)
      }),
      {},
      NOW - MIN
    )
  )

  it.effect(
    "a failing endpoint is retried on the default schedule, then dead-lettered, then retried by hand",
    () =>
      withRunner(
        Effect.gen(function* () {
          const c = yield* Coordinator
          let status = 503
          const hook = yield* receiver(() => status)
          const timer = yield* c.scheduleTimer({ in: "1s", onFire: [{ _tag: "webhook", url: hook.url }] })
          const key = `${timer.id}:fire:0`
          const schedule = [5 * SEC, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR]
          yield* TestClock.adjust(SEC)
          yield* eventually("attempt 1", Effect.succeed(hook.bodies.length === 1))
          for (const [i, wait] of schedule.entries()) {
            yield* eventually(
              `attempt ${i + 1} recorded`,
              Effect.map(c.history(timer.id), (h) => attempts(h).length === i + 1)
            )
            yield* TestClock.adjust(wait - 1)
            assert.strictEqual(hook.bodies.length, i + 1, `no retry before ${wait} ms`)
            yield* TestClock.adjust(1)
            yield* eventually(`attempt ${i + 2}`, Effect.succeed(hook.bodies.length === i + 2))
          }
          yield* eventually(
            "dead letter",
            Effect.map(c.listActions({ status: "dead" }), (l) => l.length === 1)
          )
          const entries = attempts(yield* c.history(timer.id))
          assert.deepStrictEqual(
            entries.map((h) => h.type),
            [...schedule.map(() => "action_failed"), "action_dead"]
          )
          // Every attempt is recorded at its instant with its status code, and the key never changes.
          let at = T0 + SEC
          for (const [i, h] of entries.entries()) {
            assert.strictEqual(h.at.getTime(), at)
            assert.strictEqual(h.detail.statusCode, 503)
            assert.strictEqual(h.detail.attempt, i + 1)
            at += schedule[i] ?? 0
          }
          assert.isTrue(hook.bodies.every((b) => b.headers["webhook-id"] === key))
          const [dead] = yield* c.listActions({ status: "dead" })
          assert.strictEqual(dead?.attempts, 7)
          assert.match(dead?.lastError ?? "", /503/)

          status = 200
          const retried = yield* c.retryAction(key, { actor: "operator" })
          assert.strictEqual(retried.status, "pending")
          yield* eventually(
            "manual retry delivered",
            Effect.map(c.listActions({ status: "delivered" }), (l) => l.length === 1)
          )
          const after = attempts(yield* c.history(timer.id)).slice(-2)
          assert.deepStrictEqual(
            after.map((h) => [h.type, h.actor]),
            [
              ["action_retried", "operator"],
              ["action_delivered", "t-minus"]
            ]
          )
          assert.strictEqual(hook.bodies.length, 8)
          const notDead = yield* Effect.either(c.retryAction(key))
          assert.isTrue(Either.isLeft(notDead) && notDead.left._tag === "InvalidInput")
          const unknown = yield* Effect.either(c.retryAction("nope:fire:0"))
          assert.isTrue(Either.isLeft(unknown) && unknown.left._tag === "ActionNotFound")
        })
      )
  )

  it.effect("410 Gone stops the retries at once", () =>
    withRunner(
      Effect.gen(function* () {
        const c = yield* Coordinator
        const hook = yield* receiver(() => 410)
        const missed = yield* c.schedule({
          kind: "review",
          at: "+1m",
          attendees: ["alice"],
          onMiss: [{ _tag: "webhook", url: hook.url }]
        })
        yield* TestClock.adjust(MIN)
        yield* eventually(
          "dead letter",
          Effect.map(c.listActions({ status: "dead" }), (l) => l.length === 1)
        )
        yield* TestClock.adjust(24 * HOUR)
        yield* TestServices.provideLive(Effect.sleep(50))
        assert.strictEqual(hook.bodies.length, 1)
        const body = JSON.parse(hook.bodies[0]!.body)
        assert.strictEqual(body.type, "event.missed")
        assert.strictEqual(hook.bodies[0]!.headers["webhook-id"], `${missed.id}:miss:0`)
        assert.isUndefined(hook.bodies[0]!.headers["webhook-signature"])
        const [entry] = attempts(yield* c.history(missed.id))
        assert.strictEqual(entry?.type, "action_dead")
        assert.strictEqual(entry?.detail.statusCode, 410)
      })
    )
  )

  it.effect("the allow-list and the file sandbox are enforced when scheduling and when running", () => {
    const root = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-sandbox-"))
    const outside = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-outside-"))
    Fs.symlinkSync(outside, NodePath.join(root, "escape"))
    const options: Runner.RunnerOptions = {
      actions: { commands: { greet: { command: "/bin/echo", args: ["hello"] } }, fileDirectory: root }
    }
    return withRunner(
      Effect.gen(function* () {
        const c = yield* Coordinator
        const rejected = yield* Effect.either(
          c.scheduleTimer({ in: "1m", onFire: [{ _tag: "command", name: "rm", args: ["-rf", "/"] }] })
        )
        assert.isTrue(Either.isLeft(rejected))
        if (Either.isLeft(rejected)) {
          assert.strictEqual(rejected.left._tag, "InvalidInput")
          assert.match(rejected.left.message, /onFire\[0\].*greet/)
        }
        for (const path of ["../../etc/passwd", "/etc/passwd", "a/../../x"]) {
          const bad = yield* Effect.either(
            c.scheduleTimer({ in: "1m", onFire: [{ _tag: "file_write", path, content: "x" }] })
          )
          assert.isTrue(Either.isLeft(bad) && bad.left._tag === "InvalidInput", path)
        }
        const timer = yield* c.scheduleTimer({
          in: "1m",
          name: "sandbox",
          onFire: [
            { _tag: "command", name: "greet", args: ["${name}; touch /tmp/t-minus-pwned-$(id -u)", "`id`"] },
            { _tag: "file_write", path: "escape/pwned.txt", content: "${id}" },
            { _tag: "file_write", path: "out/${name}.txt", content: "fired ${id} at ${firedAt}" }
          ]
        })
        yield* TestClock.adjust(MIN)
        yield* eventually(
          "three outcomes",
          Effect.map(c.listActions({ status: "pending" }), (l) => l.length === 0)
        )
        const byIndex = new Map((yield* c.listActions({ eventId: timer.id })).map((a) => [a.index, a]))
        assert.strictEqual(byIndex.get(0)?.status, "delivered")
        assert.strictEqual(byIndex.get(1)?.status, "dead")
        assert.strictEqual(byIndex.get(2)?.status, "delivered")
        const command = attempts(yield* c.history(timer.id)).find((h) => h.detail.action === "command")
        assert.strictEqual(command?.detail.exitCode, 0)
        assert.strictEqual(
          String(command?.detail.outputTail).trim(),
          "hello sandbox; touch /tmp/t-minus-pwned-$(id -u) `id`"
        )
        assert.deepStrictEqual(Fs.readdirSync(outside), [])
        assert.strictEqual(
          Fs.readFileSync(NodePath.join(root, "out", "${name}.txt"), "utf8"),
          `fired ${timer.id} at ${new Date(T0 + MIN).toISOString()}`
        )
      }),
      options
    ).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          Fs.rmSync(root, { recursive: true, force: true })
          Fs.rmSync(outside, { recursive: true, force: true })
        })
      )
    )
  })
})

describe("attempt leases and claims", () => {
  it.effect("a claimed attempt is leased for its own command timeout, not the default", () =>
    withRunner(
      Effect.gen(function* () {
        const c = yield* Coordinator
        yield* c.scheduleTimer({ in: "1m", onFire: [{ _tag: "command", name: "slow", args: [] }] })
        yield* TestClock.adjust(MIN)
        // The command runs (for real) while the test clock stands: its claim shows the lease.
        yield* eventually(
          "the claim",
          Effect.map(c.listActions(), (l) => (l[0]?.nextAttemptAt?.getTime() ?? 0) > T0 + MIN)
        )
        const [claimed] = yield* c.listActions()
        assert.strictEqual(claimed?.status, "pending")
        assert.strictEqual(claimed?.nextAttemptAt?.getTime(), T0 + MIN + 10 * MIN + 30 * SEC)
      }),
      { actions: { commands: { slow: { command: "sleep", args: ["30"], timeoutMs: 10 * MIN } } } }
    )
  )

  it.effect("an outcome that returns after the action was claimed again is history, not state", () =>
    withRunner(
      Effect.gen(function* () {
        const c = yield* Coordinator
        const store = yield* EventStore.EventStore
        // A receiver that holds every request until released.
        const held: Array<Http.ServerResponse> = []
        const server = yield* Effect.acquireRelease(
          Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
            const s = Http.createServer((req, res) => {
              req.resume()
              held.push(res)
            })
            s.listen(0, "127.0.0.1", () =>
              resume(
                Effect.succeed({
                  url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`,
                  close: () => s.close()
                })
              )
            )
          }),
          (r) => Effect.sync(r.close)
        )
        const timer = yield* c.scheduleTimer({ in: "1m", onFire: [{ _tag: "webhook", url: server.url }] })
        yield* TestClock.adjust(MIN)
        yield* eventually(
          "the request",
          Effect.sync(() => held.length === 1)
        )
        // Meanwhile the lease ran out elsewhere and another runner claimed the action.
        const [ours] = yield* c.listActions()
        const theirs = { ...ours!, nextAttemptAt: new Date(T0 + 5 * HOUR) }
        yield* store.updateActions([theirs])
        for (const res of held) {
          res.writeHead(200)
          res.end()
        }
        yield* eventually(
          "the late outcome",
          Effect.map(c.history(timer.id), (h) => attempts(h).length === 1)
        )
        const [entry] = attempts(yield* c.history(timer.id))
        assert.strictEqual(entry?.type, "action_delivered")
        assert.strictEqual(entry?.detail.stale, true)
        const [after] = yield* c.listActions()
        assert.strictEqual(after?.status, "pending")
        assert.strictEqual(after?.attempts, 0)
        assert.strictEqual(after?.nextAttemptAt?.getTime(), T0 + 5 * HOUR)
      })
    )
  )
})

describe("changes by another process", () => {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
  const worker = fileURLToPath(new URL("./fixtures/schedule-worker.ts", import.meta.url))

  it.live(
    "a timer scheduled by another process on the same file re-arms a sleeping runner",
    () =>
      Effect.gen(function* () {
        const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-external-"))
        const filename = NodePath.join(dir, "shared.db")
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const ctx = yield* Layer.build(Sqlite.layerRunner({ filename, runner: { externalPollMs: 20 } }))
        const c = ctx.unsafeMap.get(Coordinator.key) as Coordinator["Type"]
        yield* c.scheduleTimer({ in: "1h", name: "far" }) // the runner now sleeps for an hour
        const id = yield* Effect.async<string, Error>((resume) => {
          const child = spawn(process.execPath, ["--import", tsx, worker, filename, "1000"])
          let out = ""
          child.stdout.on("data", (chunk) => {
            out += chunk
          })
          child.on("exit", (code) =>
            resume(code === 0 ? Effect.succeed(out.trim()) : Effect.fail(new Error(`worker exited ${code}`)))
          )
        })
        for (let i = 0; i < 200 && (yield* c.get(id)).status !== "fired"; i++) yield* Effect.sleep(50)
        const fired = yield* c.get(id)
        assert.strictEqual(fired.status, "fired")
        assert.isAtLeast(fired.firedAt!.getTime(), fired.fireAt!.getTime())
      }).pipe(Effect.scoped),
    30_000
  )
})

describe("runner shutdown", () => {
  it("an attempt running when the runner stops finishes and is recorded, not cut short", async () => {
    const { TMinus } = await import("../src/TMinus.ts")
    const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-grace-"))
    const filename = NodePath.join(dir, "grace.db")
    let arrived = (): void => {}
    const received = new Promise<void>((resolve) => {
      arrived = resolve
    })
    // A receiver that answers 600 ms after the request arrives.
    const server = Http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        arrived()
        setTimeout(() => res.writeHead(200).end(), 600)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
    try {
      const tm = await TMinus.open({ filename, runner: true })
      await tm.scheduleTimer({ in: "50ms", onFire: [{ _tag: "webhook", url }] })
      await received
      const closing = Date.now()
      await tm.close()
      // Closing waited for the answer (not the 5 s grace), and the outcome is in the store.
      assert.isAtLeast(Date.now() - closing, 400)
      assert.isBelow(Date.now() - closing, 4_000)
      const reopened = await TMinus.open({ filename })
      const [action] = await reopened.listActions()
      await reopened.close()
      assert.strictEqual(action?.status, "delivered")
      assert.strictEqual(action?.attempts, 1)
    } finally {
      server.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 20_000)
})
