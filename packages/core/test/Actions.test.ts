import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as NodePath from "node:path"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as TestClock from "effect/TestClock"
import { Webhook } from "standardwebhooks"
import type { ActionContext, ActionsConfig, AttemptOutcome } from "../src/Actions.ts"
import {
  checkAllowed,
  checkSecret,
  checkTemplates,
  deliver,
  sign,
  template,
  webhookBody
} from "../src/Actions.ts"
import type { Action, Event } from "../src/Event.ts"

const Env = Layer.mergeAll(NodeContext.layer, FetchHttpClient.layer)

const FIRED_AT = new Date("2030-01-02T03:04:05.000Z")

const event: Event = {
  id: "evt_42",
  tenant: "default",
  kind: "deploy",
  name: "Ship it",
  organizer: "alice",
  attendees: [{ agent: "bob", status: "confirmed", respondedAt: new Date("2030-01-02T02:00:00.000Z") }],
  quorum: 1,
  scheduledAt: new Date("2030-01-02T03:09:05.000Z"),
  tMinusMs: 300_000,
  fireAt: new Date("2030-01-02T03:04:05.000Z"),
  dueAt: null,
  status: "fired",
  payload: { x: "hello", nested: { n: 7, s: "deep" }, list: [1, 2], flag: false },
  actions: { onFire: [], onMiss: [] },
  maxDeferrals: 3,
  deferralsUsed: 0,
  deadline: null,
  after: null,
  campaignId: null,
  misfire: "fire",
  recurrence: null,
  createdAt: new Date("2030-01-01T00:00:00.000Z"),
  updatedAt: FIRED_AT,
  firedAt: FIRED_AT,
  missedAt: null,
  cancelledAt: null,
  reason: null,
  version: 4
}

const ctx: ActionContext = {
  key: "evt_42:fire:0",
  transition: "fire",
  event,
  occurredAt: FIRED_AT,
  attempt: 1
}

const run = (action: Action, config: ActionsConfig = {}) =>
  deliver(action, ctx, config).pipe(Effect.provide(Env))

const failed = (outcome: AttemptOutcome) => {
  if (outcome._tag !== "Failed") throw new Error(`expected Failed, got ${JSON.stringify(outcome)}`)
  return outcome
}
const delivered = (outcome: AttemptOutcome) => {
  if (outcome._tag !== "Delivered") throw new Error(`expected Delivered, got ${JSON.stringify(outcome)}`)
  return outcome
}
const right = <A>(either: Either.Either<A, unknown>): A => {
  if (Either.isLeft(either)) throw new Error(`expected Right, got ${String(either.left)}`)
  return either.right
}

// A real HTTP server on 127.0.0.1, closed when the test's scope closes.

interface Received {
  readonly method: string | undefined
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

const serve = (respond: (res: Http.ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly received: Array<Received>; readonly server: Http.Server }>(
      (resume) => {
        const received: Array<Received> = []
        const server = Http.createServer((req, res) => {
          let body = ""
          req.setEncoding("utf8")
          req.on("data", (chunk: string) => {
            body += chunk
          })
          req.on("end", () => {
            received.push({ method: req.method, headers: req.headers, body })
            respond(res)
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          resume(Effect.succeed({ url: `http://127.0.0.1:${port}/hook`, received, server }))
        })
      }
    ),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const status = (code: number) => (res: Http.ServerResponse) => {
  res.writeHead(code, { "content-type": "text/plain" })
  res.end(`status ${code}`)
}

const newSecret = () => `whsec_${Crypto.randomBytes(24).toString("base64")}`

describe("template", () => {
  it("fills every placeholder", () => {
    const text =
      "${id}|${name}|${kind}|${status}|${organizer}|${fireAt}|${firedAt}|${missedAt}|${reason}|${transition}|${key}|${occurredAt}"
    assert.strictEqual(
      right(template(text, ctx)),
      "evt_42|Ship it|deploy|fired|alice|2030-01-02T03:04:05.000Z|2030-01-02T03:04:05.000Z|||fire|evt_42:fire:0|2030-01-02T03:04:05.000Z"
    )
  })

  it("reads the payload as JSON, strings as they are", () => {
    assert.strictEqual(right(template("${payload}", ctx)), JSON.stringify(event.payload))
    assert.strictEqual(right(template("${payload.x}", ctx)), "hello")
    assert.strictEqual(right(template("${payload.nested.s}", ctx)), "deep")
    assert.strictEqual(right(template("${payload.nested.n}", ctx)), "7")
    assert.strictEqual(right(template("${payload.nested}", ctx)), '{"n":7,"s":"deep"}')
    assert.strictEqual(right(template("${payload.list}", ctx)), "[1,2]")
    assert.strictEqual(right(template("${payload.list.1}", ctx)), "2")
    assert.strictEqual(right(template("${payload.flag}", ctx)), "false")
  })

  it("turns a missing payload path into an empty string", () => {
    assert.strictEqual(right(template("[${payload.nope}]", ctx)), "[]")
    assert.strictEqual(right(template("[${payload.x.y.z}]", ctx)), "[]")
    assert.strictEqual(right(template("[${payload.constructor}]", ctx)), "[]")
    const noPayload = { ...ctx, event: { ...event, payload: null } }
    assert.strictEqual(right(template("[${payload.x}]|${payload}", noPayload)), "[]|null")
  })

  it("leaves text without placeholders alone", () => {
    assert.strictEqual(right(template("plain $ text {id} $id", ctx)), "plain $ text {id} $id")
  })

  it("names an unknown placeholder", () => {
    const result = template("hi ${id} ${foo}", ctx)
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) assert.include(result.left, "${foo}")
  })

  it("is checked at schedule time by checkTemplates", () => {
    const bad = checkTemplates({ _tag: "file_write", path: "a.txt", content: "${nope}" }, "onFire[1]")
    assert.isTrue(Either.isLeft(bad))
    if (Either.isLeft(bad)) {
      assert.strictEqual(bad.left.field, "onFire[1]")
      assert.include(bad.left.message, "${nope}")
    }
    assert.isTrue(Either.isRight(checkTemplates({ _tag: "command", name: "x", args: ["${payload.a}"] }, "f")))
  })
})

describe("webhook", () => {
  it.scopedLive("posts a signed body that the standardwebhooks verifier accepts", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(204))
      const secret = newSecret()
      const outcome = delivered(yield* run({ _tag: "webhook", url: server.url, secret }))
      assert.strictEqual(outcome.statusCode, 204)

      assert.strictEqual(server.received.length, 1)
      const [request] = server.received
      assert.strictEqual(request?.method, "POST")
      assert.strictEqual(request?.body, webhookBody(ctx))
      const headers = request!.headers
      assert.strictEqual(headers["content-type"], "application/json")
      assert.strictEqual(headers["webhook-id"], ctx.key)
      const timestamp = Number(headers["webhook-timestamp"])
      assert.isTrue(Math.abs(timestamp - Date.now() / 1000) < 60)
      assert.match(String(headers["webhook-signature"]), /^v1,[A-Za-z0-9+/]+=*$/)

      const payload = new Webhook(secret).verify(request!.body, headers as Record<string, string>)
      assert.deepStrictEqual(payload, JSON.parse(request!.body))
      assert.deepStrictEqual(payload, {
        type: "event.fired",
        event: JSON.parse(JSON.stringify(event)),
        occurredAt: "2030-01-02T03:04:05.000Z"
      })
    })
  )

  it.scopedLive("accepts a bare base64 secret", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(200))
      const secret = Crypto.randomBytes(32).toString("base64")
      delivered(yield* run({ _tag: "webhook", url: server.url, secret }))
      const request = server.received[0]!
      assert.doesNotThrow(() =>
        new Webhook(secret).verify(request.body, request.headers as Record<string, string>)
      )
    })
  )

  it.scopedLive("sends no signature without a secret", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(200))
      const missCtx: ActionContext = {
        ...ctx,
        key: "evt_42:miss:1",
        transition: "miss",
        event: { ...event, status: "missed", firedAt: null, missedAt: FIRED_AT }
      }
      const outcome = yield* deliver({ _tag: "webhook", url: server.url }, missCtx, {}).pipe(
        Effect.provide(Env)
      )
      assert.strictEqual(delivered(outcome).statusCode, 200)
      const request = server.received[0]!
      assert.isUndefined(request.headers["webhook-signature"])
      assert.strictEqual(request.headers["webhook-id"], "evt_42:miss:1")
      assert.strictEqual(JSON.parse(request.body).type, "event.missed")
    })
  )

  it.effect("takes the timestamp from the Clock", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(200))
      yield* TestClock.setTime(1_700_000_000_500)
      delivered(yield* run({ _tag: "webhook", url: server.url, secret: "whsec_c2VjcmV0" }))
      const request = server.received[0]!
      assert.strictEqual(request.headers["webhook-timestamp"], "1700000000")
      assert.strictEqual(
        request.headers["webhook-signature"],
        new Webhook("whsec_c2VjcmV0").sign(ctx.key, new Date(1_700_000_000_000), request.body)
      )
    }).pipe(Effect.scoped)
  )

  it.scopedLive("retries after a 500", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(500))
      const outcome = failed(yield* run({ _tag: "webhook", url: server.url }))
      assert.isTrue(outcome.retry)
      assert.strictEqual(outcome.statusCode, 500)
      assert.include(outcome.error, "500")
    })
  )

  it.scopedLive("stops after a 410", () =>
    Effect.gen(function* () {
      const server = yield* serve(status(410))
      const outcome = failed(yield* run({ _tag: "webhook", url: server.url }))
      assert.isFalse(outcome.retry)
      assert.strictEqual(outcome.statusCode, 410)
    })
  )

  it.scopedLive("gives up on a receiver that never answers, within the timeout", () =>
    Effect.gen(function* () {
      const server = yield* serve(() => {})
      const started = Date.now()
      const outcome = failed(yield* run({ _tag: "webhook", url: server.url }, { webhookTimeoutMs: 200 }))
      const elapsed = Date.now() - started
      assert.isTrue(outcome.retry)
      assert.include(outcome.error, "200 ms")
      assert.isTrue(elapsed >= 150 && elapsed < 3000, `took ${elapsed} ms`)
    })
  )

  it.live("retries when the connection is refused", () =>
    Effect.gen(function* () {
      // A port that was just free: listen, read it, close.
      const port = yield* Effect.async<number>((resume) => {
        const server = Http.createServer()
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const outcome = failed(yield* run({ _tag: "webhook", url: `http://127.0.0.1:${port}/hook` }))
      assert.isTrue(outcome.retry)
      assert.isUndefined(outcome.statusCode)
      assert.include(outcome.error, "ECONNREFUSED")
    })
  )

  it.live("refuses an invalid secret permanently", () =>
    Effect.gen(function* () {
      const outcome = failed(
        yield* run({ _tag: "webhook", url: "http://127.0.0.1:9/", secret: "whsec_not base64!" })
      )
      assert.isFalse(outcome.retry)
      assert.include(outcome.error, "secret")
    })
  )

  it("checks secrets at schedule time", () => {
    assert.isTrue(Either.isRight(checkSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "onFire[0].secret")))
    assert.isTrue(Either.isRight(checkSecret(Crypto.randomBytes(16).toString("base64"), "s")))
    for (const bad of ["", "whsec_", "whsec_!!!", "not base64"]) {
      const result = checkSecret(bad, "onFire[0].secret")
      assert.isTrue(Either.isLeft(result), bad)
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left.field, "onFire[0].secret")
        assert.match(result.left.message, /^onFire\[0\]\.secret: /)
      }
    }
  })

  it.effect("signs like the standardwebhooks package", () =>
    Effect.gen(function* () {
      const secret = newSecret()
      const body = webhookBody(ctx)
      const signature = yield* sign(secret, "msg_1", 1_700_000_000, body)
      assert.strictEqual(signature, new Webhook(secret).sign("msg_1", new Date(1_700_000_000_000), body))
    })
  )
})

describe("command", () => {
  const node = process.execPath
  // Prints its argv (after the script) and the TMINUS_ environment as JSON.
  const printArgs =
    "process.stdout.write(JSON.stringify({argv: process.argv.slice(1), env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('TMINUS_') || k === 'EXTRA'))}))"

  it.live("runs an allow-listed command with templated arguments and the event's environment", () =>
    Effect.gen(function* () {
      const config: ActionsConfig = {
        commands: { report: { command: node, args: ["-e", printArgs, "fixed"], env: { EXTRA: "yes" } } }
      }
      const outcome = delivered(
        yield* run(
          { _tag: "command", name: "report", args: ["${id}", "${payload.x}", "${transition}", "a b"] },
          config
        )
      )
      assert.strictEqual(outcome.exitCode, 0)
      assert.deepStrictEqual(JSON.parse(outcome.outputTail!), {
        argv: ["fixed", "evt_42", "hello", "fire", "a b"],
        env: {
          EXTRA: "yes",
          TMINUS_EVENT_ID: "evt_42",
          TMINUS_TRANSITION: "fire",
          TMINUS_IDEMPOTENCY_KEY: "evt_42:fire:0"
        }
      })
    })
  )

  it.live("runs /bin/echo", () =>
    Effect.gen(function* () {
      const outcome = delivered(
        yield* run(
          { _tag: "command", name: "echo", args: ["fired", "${name}"] },
          { commands: { echo: { command: "/bin/echo" } } }
        )
      )
      assert.strictEqual(outcome.outputTail, "fired Ship it\n")
    })
  )

  it.scopedLive("passes shell metacharacters literally", () =>
    Effect.gen(function* () {
      const dir = Fs.mkdtempSync(NodePath.join(Fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "tminus-cmd-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const marker = NodePath.join(dir, "pwned")
      const hostile = [
        `; touch ${marker}`,
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        `| touch ${marker}`,
        `&& touch ${marker}`,
        `> ${marker}`,
        "$HOME * ~"
      ]
      // The payload arrives over the network: a templated value is just as literal.
      const evil = `$(touch ${marker}); touch ${marker}`
      const evilCtx: ActionContext = { ...ctx, event: { ...event, payload: { evil } } }
      const args = [...hostile, "${payload.evil}"]
      for (const [name, spec] of [
        ["node", { command: node, args: ["-e", printArgs] }],
        ["echo", { command: "/bin/echo" }]
      ] as const) {
        const outcome = delivered(
          yield* deliver({ _tag: "command", name, args }, evilCtx, { commands: { [name]: spec } }).pipe(
            Effect.provide(Env)
          )
        )
        if (name === "node") assert.deepStrictEqual(JSON.parse(outcome.outputTail!).argv, [...hostile, evil])
        else assert.strictEqual(outcome.outputTail, `${[...hostile, evil].join(" ")}\n`)
      }
      assert.isFalse(Fs.existsSync(marker))
    })
  )

  it.scopedLive("refuses a name that is not on the allow-list, permanently, without running anything", () =>
    Effect.gen(function* () {
      const dir = Fs.mkdtempSync(NodePath.join(Fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "tminus-cmd-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const marker = NodePath.join(dir, "ran")
      const config: ActionsConfig = { commands: { mark: { command: "/usr/bin/touch", args: [marker] } } }
      for (const name of ["rm", "constructor", "__proto__", "toString"]) {
        const outcome = failed(yield* run({ _tag: "command", name, args: [] }, config))
        assert.isFalse(outcome.retry)
        assert.strictEqual(outcome.error, `command ${name} is not on the allow-list`)
      }
      assert.isFalse(Fs.existsSync(marker))
      delivered(yield* run({ _tag: "command", name: "mark", args: [] }, config))
      assert.isTrue(Fs.existsSync(marker))
    })
  )

  it.live("records a nonzero exit code with the output tail", () =>
    Effect.gen(function* () {
      const outcome = failed(
        yield* run(
          { _tag: "command", name: "fail", args: [] },
          { commands: { fail: { command: "/bin/sh", args: ["-c", "echo out; echo err >&2; exit 3"] } } }
        )
      )
      assert.isTrue(outcome.retry)
      assert.strictEqual(outcome.exitCode, 3)
      assert.include(outcome.outputTail!, "out\n")
      assert.include(outcome.outputTail!, "err\n")
      assert.include(outcome.error, "code 3")
    })
  )

  it.live("keeps only the last outputTailBytes of the output", () =>
    Effect.gen(function* () {
      const outcome = delivered(
        yield* run(
          { _tag: "command", name: "loud", args: [] },
          {
            commands: {
              loud: { command: node, args: ["-e", "process.stdout.write('x'.repeat(10000) + 'THE END')"] }
            },
            outputTailBytes: 10
          }
        )
      )
      assert.strictEqual(outcome.outputTail, "xxxTHE END")
    })
  )

  it.live("kills a command that outlives its timeout", () =>
    Effect.gen(function* () {
      for (const spec of [
        { command: "sleep", args: ["10"], timeoutMs: 300 },
        // Ignores SIGTERM: only SIGKILL to the process group stops it.
        { command: "/bin/sh", args: ["-c", "trap '' TERM; echo started; sleep 10"], timeoutMs: 300 }
      ]) {
        const started = Date.now()
        const outcome = failed(
          yield* run({ _tag: "command", name: "slow", args: [] }, { commands: { slow: spec } })
        )
        const elapsed = Date.now() - started
        assert.isTrue(outcome.retry)
        assert.include(outcome.error, "timed out")
        assert.isTrue(elapsed < 3000, `took ${elapsed} ms`)
      }
    })
  )

  it.live("uses the runner's default command timeout", () =>
    Effect.gen(function* () {
      const outcome = failed(
        yield* run(
          { _tag: "command", name: "slow", args: [] },
          { commands: { slow: { command: "sleep", args: ["10"] } }, commandTimeoutMs: 200 }
        )
      )
      assert.include(outcome.error, "200 ms")
    })
  )

  it.live("fails a bad template permanently and a missing program transiently", () =>
    Effect.gen(function* () {
      const badTemplate = failed(
        yield* run(
          { _tag: "command", name: "echo", args: ["${nope}"] },
          { commands: { echo: { command: "/bin/echo" } } }
        )
      )
      assert.isFalse(badTemplate.retry)
      assert.include(badTemplate.error, "${nope}")
      const missing = failed(
        yield* run(
          { _tag: "command", name: "gone", args: [] },
          { commands: { gone: { command: "/no/such/program" } } }
        )
      )
      assert.isTrue(missing.retry)
    })
  )

  it("checkAllowed names the field and lists the allowed names", () => {
    const config: ActionsConfig = {
      commands: { notify: { command: "/bin/true" }, backup: { command: "/bin/true" } }
    }
    const result = checkAllowed({ _tag: "command", name: "rm", args: ["-rf"] }, "onFire[0]", config)
    assert.isTrue(Either.isLeft(result))
    if (Either.isLeft(result)) {
      assert.strictEqual(result.left._tag, "InvalidInput")
      assert.strictEqual(result.left.field, "onFire[0]")
      assert.match(result.left.message, /^onFire\[0\]: /)
      assert.include(result.left.message, '"rm"')
      assert.include(result.left.message, "backup, notify")
    }
    const none = checkAllowed({ _tag: "command", name: "x", args: [] }, "onMiss[2]", {})
    assert.isTrue(Either.isLeft(none) && none.left.message.includes("no commands are allowed"))
    assert.isTrue(
      Either.isRight(checkAllowed({ _tag: "command", name: "notify", args: [] }, "onFire[0]", config))
    )
    assert.isTrue(Either.isRight(checkAllowed({ _tag: "log" }, "onFire[1]", {})))
    // What would only fail later is refused now too.
    const badSecret = checkAllowed(
      { _tag: "webhook", url: "https://x.test", secret: "nope!" },
      "onFire[3]",
      {}
    )
    assert.isTrue(Either.isLeft(badSecret) && badSecret.left.message.startsWith("onFire[3]: webhook secret"))
    const badArg = checkAllowed({ _tag: "command", name: "notify", args: ["${nope}"] }, "onFire[4]", config)
    assert.isTrue(Either.isLeft(badArg) && badArg.left.message.includes("args[0]"))
  })
})

describe("file_write", () => {
  /** A sandbox root and a sibling directory outside it, removed after the test. */
  const sandbox = Effect.acquireRelease(
    Effect.sync(() => {
      const base = Fs.mkdtempSync(
        NodePath.join(Fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "tminus-files-")
      )
      const root = NodePath.join(base, "root")
      const outside = NodePath.join(base, "outside")
      Fs.mkdirSync(root)
      Fs.mkdirSync(outside)
      Fs.writeFileSync(NodePath.join(outside, "target.txt"), "original")
      return { base, root, outside }
    }),
    ({ base }) => Effect.sync(() => Fs.rmSync(base, { recursive: true, force: true }))
  )

  const listAll = (dir: string): ReadonlyArray<string> =>
    (Fs.readdirSync(dir, { recursive: true }) as Array<string>).sort()

  it.scopedLive("writes templated content, creating directories inside the root", () =>
    Effect.gen(function* () {
      const { root } = yield* sandbox
      const outcome = delivered(
        yield* run(
          {
            _tag: "file_write",
            path: "reports/2030/${id}.txt",
            content: "${id} ${name} fired at ${firedAt} with ${payload.x}\n"
          },
          { fileDirectory: root }
        )
      )
      // The path is not templated: `${id}` is a literal file name.
      assert.strictEqual(outcome.path, "reports/2030/${id}.txt")
      assert.strictEqual(
        Fs.readFileSync(NodePath.join(root, "reports/2030/${id}.txt"), "utf8"),
        "evt_42 Ship it fired at 2030-01-02T03:04:05.000Z with hello\n"
      )
      delivered(
        yield* run(
          { _tag: "file_write", path: "./reports//2030/${id}.txt", content: "again" },
          { fileDirectory: root }
        )
      )
      assert.strictEqual(Fs.readFileSync(NodePath.join(root, "reports/2030/${id}.txt"), "utf8"), "again")
      assert.deepStrictEqual(listAll(root), ["reports", "reports/2030", "reports/2030/${id}.txt"])
    })
  )

  it.scopedLive("rejects every path that leaves the root, writing nothing anywhere", () =>
    Effect.gen(function* () {
      const { base, root, outside } = yield* sandbox
      Fs.mkdirSync(NodePath.join(root, "a"))
      Fs.symlinkSync(outside, NodePath.join(root, "linkdir"))
      Fs.symlinkSync(NodePath.join(outside, "target.txt"), NodePath.join(root, "linkfile"))
      const before = listAll(base)
      const hostile = [
        "../../etc/passwd",
        "../outside/target.txt",
        "/etc/passwd",
        NodePath.join(outside, "target.txt"),
        "a/../../x",
        "a/../a/x",
        "a\\..\\..\\x",
        "..",
        "",
        ".",
        "./",
        "linkdir/pwned.txt",
        "linkdir/sub/pwned.txt",
        "linkdir/target.txt",
        "linkfile",
        "a/../linkfile"
      ]
      for (const path of hostile) {
        const outcome = failed(
          yield* run({ _tag: "file_write", path, content: "pwned" }, { fileDirectory: root })
        )
        assert.isFalse(outcome.retry, path)
      }
      assert.deepStrictEqual(listAll(base), before)
      assert.strictEqual(Fs.readFileSync(NodePath.join(outside, "target.txt"), "utf8"), "original")
      assert.isFalse(Fs.existsSync("/etc/pwned"))
    })
  )

  it.scopedLive("allows a symlink that stays inside the root", () =>
    Effect.gen(function* () {
      const { root } = yield* sandbox
      Fs.mkdirSync(NodePath.join(root, "real"))
      Fs.symlinkSync(NodePath.join(root, "real"), NodePath.join(root, "alias"))
      const outcome = delivered(
        yield* run({ _tag: "file_write", path: "alias/out.txt", content: "${kind}" }, { fileDirectory: root })
      )
      assert.strictEqual(outcome.path, "alias/out.txt")
      assert.strictEqual(Fs.readFileSync(NodePath.join(root, "real/out.txt"), "utf8"), "deploy")
    })
  )

  it.scopedLive("refuses to replace a directory", () =>
    Effect.gen(function* () {
      const { root } = yield* sandbox
      Fs.mkdirSync(NodePath.join(root, "dir"))
      const outcome = failed(
        yield* run({ _tag: "file_write", path: "dir", content: "x" }, { fileDirectory: root })
      )
      assert.isFalse(outcome.retry)
      assert.deepStrictEqual(listAll(root), ["dir"])
    })
  )

  it.live("fails permanently without a configured directory", () =>
    Effect.gen(function* () {
      const outcome = failed(yield* run({ _tag: "file_write", path: "out.txt", content: "x" }))
      assert.isFalse(outcome.retry)
      assert.include(outcome.error, "directory")
    })
  )

  it.scopedLive("fails a bad content template permanently, writing nothing", () =>
    Effect.gen(function* () {
      const { root } = yield* sandbox
      const outcome = failed(
        yield* run({ _tag: "file_write", path: "out.txt", content: "${wat}" }, { fileDirectory: root })
      )
      assert.isFalse(outcome.retry)
      assert.include(outcome.error, "${wat}")
      assert.deepStrictEqual(listAll(root), [])
    })
  )
})

describe("log", () => {
  const capture = (action: Action) =>
    Effect.gen(function* () {
      const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
      const logger = Logger.make(({ message, annotations }) => {
        lines.push({ message, annotations: Object.fromEntries(annotations) })
      })
      const outcome = yield* run(action).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      return { outcome, lines }
    })

  it.effect("logs the templated message annotated with the key and event", () =>
    Effect.gen(function* () {
      const { outcome, lines } = yield* capture({ _tag: "log", message: "${name} (${id}) ${transition}" })
      delivered(outcome)
      assert.deepStrictEqual(lines, [
        {
          message: ["Ship it (evt_42) fire"],
          annotations: { key: "evt_42:fire:0", eventId: "evt_42", transition: "fire" }
        }
      ])
    })
  )

  it.effect("has a default message", () =>
    Effect.gen(function* () {
      const { lines } = yield* capture({ _tag: "log" })
      assert.deepStrictEqual(lines[0]?.message, ["event evt_42 fire"])
    })
  )

  it.effect("fails a bad template permanently", () =>
    Effect.gen(function* () {
      const { outcome, lines } = yield* capture({ _tag: "log", message: "${bogus}" })
      assert.isFalse(failed(outcome).retry)
      assert.deepStrictEqual(lines, [])
    })
  )
})
