/**
 * The built action (`dist/index.js`) run as the Actions runner runs it: `node dist/index.js` with
 * its inputs in `INPUT_<NAME>` (upper case, hyphens kept, spaces as underscores) and the
 * `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files, against a real `t-minus-server` on 127.0.0.1.
 * Then the same action through `@github/local-action`, GitHub's local runner.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { TMinusClient } from "@t-minus/core/client"
import { Server } from "@t-minus/rpc-server"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const require = createRequire(import.meta.url)
const dist = NodePath.join(root, "dist", "index.js")
const tmp = () => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-action-"))

interface Step {
  readonly code: number | null
  readonly stdout: string
  readonly outputs: Record<string, string>
  readonly summary: string
}

/** The runner's environment name of an input. */
const inputVariable = (name: string) => `INPUT_${name.replace(/ /g, "_").toUpperCase()}`

/** `name<<delimiter` … `delimiter` blocks, as `@actions/core` writes them to `GITHUB_OUTPUT`. */
const parseOutputs = (text: string): Record<string, string> => {
  const outputs: Record<string, string> = {}
  for (const match of text.matchAll(/^(.+?)<<(ghadelimiter_[\w-]+)\n([\s\S]*?)\n\2$/gm)) {
    outputs[match[1]!] = match[3]!
  }
  return outputs
}

/** The inputs' defaults in action.yml, which the runner passes as if they were given. */
const defaults: Record<string, string> = (() => {
  const text = Fs.readFileSync(NodePath.join(root, "action.yml"), "utf8")
  const inputs = text.slice(text.indexOf("\ninputs:"), text.indexOf("\noutputs:"))
  const found: Record<string, string> = {}
  for (const match of inputs.matchAll(/^ {2}([\w-]+):\n(?: {4}.*\n)*? {4}default: "?([^"\n]*)"?$/gm)) {
    found[match[1]!] = match[2]!
  }
  return found
})()

/** Runs `node dist/index.js` with these inputs (and action.yml's defaults), nothing else of this environment. */
const step = (given: Record<string, string>): Promise<Step> => {
  const inputs = { ...defaults, ...given }
  const dir = tmp()
  const output = NodePath.join(dir, "output")
  const summary = NodePath.join(dir, "summary")
  Fs.writeFileSync(output, "")
  Fs.writeFileSync(summary, "")
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    GITHUB_OUTPUT: output,
    GITHUB_STEP_SUMMARY: summary,
    ...Object.fromEntries(Object.entries(inputs).map(([name, value]) => [inputVariable(name), value]))
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [dist], { env })
    let stdout = ""
    child.stdout.on("data", (chunk) => {
      stdout += chunk
    })
    child.stderr.on("data", (chunk) => {
      stdout += chunk
    })
    child.on("close", (code) =>
      resolve({
        code,
        stdout,
        outputs: parseOutputs(Fs.readFileSync(output, "utf8")),
        summary: Fs.readFileSync(summary, "utf8")
      })
    )
  })
}

const errorLine = (result: Step) => result.stdout.split("\n").find((l) => l.startsWith("::error::")) ?? ""

describe("the action, run as the runner runs it", () => {
  it("passes action.yml's defaults, as the runner does", () => {
    assert.deepStrictEqual(defaults, { timeout: "30m", "fail-on-miss": "true", "request-timeout": "30s" })
  })

  let server: Server.Started
  let keys: { release: string; alice: string; bob: string; admin: string }
  let admin: TMinusClient
  beforeAll(async () => {
    server = await Server.start({ logLevel: "none", port: 0, db: NodePath.join(tmp(), "server.db") })
    keys = {
      release: await server.createKey("acme", "release", "organizer"),
      alice: await server.createKey("acme", "alice", "agent"),
      bob: await server.createKey("acme", "bob", "agent"),
      admin: await server.createKey("acme", "root", "admin")
    }
    admin = await TMinusClient.connect({ url: server.url, apiKey: keys.admin })
  })
  afterAll(async () => {
    await admin.close()
    await server.close()
  })
  const as = (key: string, inputs: Record<string, string>) =>
    step({ "server-url": server.url, "api-key": key, ...inputs })

  it("schedule, confirm, defer, status, decline and cancel: outputs, summary, and a masked key", async () => {
    const scheduled = await as(keys.release, {
      operation: "schedule",
      kind: "deploy",
      in: "1h",
      name: "ship | v2",
      attendees: "alice,\nbob",
      quorum: "1",
      payload: '{"sha":"abc123"}'
    })
    assert.strictEqual(scheduled.code, 0, scheduled.stdout)
    const id = scheduled.outputs["event-id"]!
    assert.match(id, /^[0-9a-f-]{36}$/)
    assert.strictEqual(scheduled.outputs.status, "scheduled")
    assert.approximately(Date.parse(scheduled.outputs["fire-at"]!), Date.now() + 3_600_000, 30_000)
    const json = JSON.parse(scheduled.outputs.json!)
    assert.strictEqual(json.organizer, "release")
    assert.deepStrictEqual(json.payload, { sha: "abc123" })
    assert.include(scheduled.summary, "### t-minus: scheduled")
    assert.include(scheduled.summary, "| event | kind | status | fires at | countdown | quorum |")
    assert.include(scheduled.summary, `| ship \\| v2 \`${id}\` | deploy | scheduled |`)
    assert.match(scheduled.summary, /\| T-00:59:\d\d \| 0\/1 \||\| T-01:00:00 \| 0\/1 \|/)
    assert.include(scheduled.summary, "| alice | ⏳ pending |")
    assert.include(scheduled.stdout, `::add-mask::${keys.release}`)
    assert.strictEqual(
      scheduled.stdout.split(keys.release).length,
      2,
      "the key appears only in the mask command"
    )
    assert.match(
      scheduled.stdout,
      /scheduled [0-9a-f-]{36} \(ship \| v2\) · T-\d\d:\d\d:\d\d · 0\/1 confirmed · pending: alice, bob/
    )

    const confirmed = await as(keys.alice, { operation: "confirm", "event-id": id, agent: "alice" })
    assert.strictEqual(confirmed.code, 0, confirmed.stdout)
    assert.strictEqual(JSON.parse(confirmed.outputs.json!).attendees[0].status, "confirmed")
    assert.strictEqual(confirmed.summary, "", "confirm writes no summary")

    const deferred = await as(keys.bob, { operation: "defer", "event-id": id, agent: "bob", duration: "5m" })
    assert.strictEqual(deferred.code, 0, deferred.stdout)
    assert.strictEqual(JSON.parse(deferred.outputs.json!).attendees[1].deferMs, 300_000)

    const status = await as(keys.alice, { operation: "status", "event-id": id })
    assert.strictEqual(status.code, 0, status.stdout)
    assert.strictEqual(status.outputs["event-id"], id)
    assert.include(status.summary, "### t-minus: status")
    assert.include(status.summary, "| alice | ✅ confirmed |")
    assert.include(status.summary, "| bob | ↻ deferred by 5m |")

    const declined = await as(keys.bob, { operation: "decline", "event-id": id, agent: "bob" })
    assert.strictEqual(declined.code, 0, declined.stdout)
    assert.strictEqual(JSON.parse(declined.outputs.json!).attendees[1].status, "declined")

    const cancelled = await as(keys.release, { operation: "cancel", "event-id": id, reason: "release moved" })
    assert.strictEqual(cancelled.code, 0, cancelled.stdout)
    assert.strictEqual(cancelled.outputs.status, "cancelled")
    assert.strictEqual(JSON.parse(cancelled.outputs.json!).reason, "release moved")
  }, 60_000)

  it("a timer calls its webhook later; wait follows it, logging the countdown, until it fires", async () => {
    const received: Array<{ headers: Http.IncomingHttpHeaders; body: string }> = []
    const hook = Http.createServer((request, response) => {
      let body = ""
      request.on("data", (chunk) => {
        body += chunk
      })
      request.on("end", () => {
        received.push({ headers: request.headers, body })
        response.end("ok")
      })
    })
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve))
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`
      const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
      const timer = await as(keys.release, {
        operation: "timer",
        in: "3s",
        name: "nightly",
        "webhook-url": url,
        "webhook-secret": secret
      })
      assert.include(timer.stdout, `::add-mask::${secret}`)
      assert.notInclude(timer.outputs.json!, secret, "no secret in an output another job could read")
      assert.strictEqual(JSON.parse(timer.outputs.json!).actions.onFire[0].secret, "[redacted]")
      assert.strictEqual(timer.code, 0, timer.stdout)
      assert.strictEqual(JSON.parse(timer.outputs.json!).kind, "timer")
      const waited = await as(keys.alice, {
        operation: "wait",
        "event-id": timer.outputs["event-id"]!,
        timeout: "30s",
        "fail-on-miss": "true"
      })
      assert.strictEqual(waited.code, 0, waited.stdout)
      assert.strictEqual(waited.outputs.outcome, "fired")
      assert.strictEqual(waited.outputs.status, "fired")
      assert.match(waited.stdout, /waiting up to 30s: [0-9a-f-]{36} \(nightly\) · (T-00:00:0[0-3]|fired)\n/)
      assert.match(waited.stdout, /fired at \d{4}-/)
      assert.include(waited.summary, "### t-minus: fired")
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100))
      assert.strictEqual(received.length, 1)
      assert.strictEqual(received[0]!.headers["webhook-id"], `${timer.outputs["event-id"]}:fire:0`)
      assert.strictEqual(JSON.parse(received[0]!.body).type, "event.fired")
      assert.match(String(received[0]!.headers["webhook-signature"]), /^v1,/)
    } finally {
      hook.close()
    }
  }, 60_000)

  it("wait fails the step when the event is missed (unless fail-on-miss is false) and when it times out", async () => {
    const schedule = async () => {
      const result = await as(keys.release, {
        operation: "schedule",
        kind: "review",
        in: "1h",
        attendees: "alice",
        quorum: "1"
      })
      const id = result.outputs["event-id"]!
      // Declined: the quorum can no longer be reached, so the event is missed at once.
      await as(keys.alice, { operation: "decline", "event-id": id, agent: "alice" })
      return id
    }
    const failed = await as(keys.alice, { operation: "wait", "event-id": await schedule(), timeout: "20s" })
    assert.strictEqual(failed.code, 1)
    assert.strictEqual(failed.outputs.outcome, "missed")
    assert.match(errorLine(failed), /::error::event .+ was missed/)
    assert.include(failed.summary, "### t-minus: missed")

    const tolerated = await as(keys.alice, {
      operation: "wait",
      "event-id": await schedule(),
      timeout: "20s",
      "fail-on-miss": "false"
    })
    assert.strictEqual(tolerated.code, 0, tolerated.stdout)
    assert.strictEqual(tolerated.outputs.outcome, "missed")

    const later = await as(keys.release, {
      operation: "schedule",
      kind: "meeting",
      in: "1h",
      attendees: "alice"
    })
    const timedOut = await as(keys.alice, {
      operation: "wait",
      "event-id": later.outputs["event-id"]!,
      timeout: "1s"
    })
    assert.strictEqual(timedOut.code, 1)
    assert.strictEqual(timedOut.outputs.outcome, "timeout")
    assert.strictEqual(timedOut.outputs.status, "scheduled")
    assert.match(errorLine(timedOut), /did not fire within 1s; it is still scheduled/)
  }, 60_000)

  it("bad inputs fail the step naming the input, and nothing is written", async () => {
    const before = (await admin.list({ limit: 10_000 })).length
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /input `operation` is required/],
      [{ operation: "launch" }, /input `operation` must be one of schedule, timer, confirm/],
      [{ operation: "schedule", in: "1h" }, /input `kind` is required for operation `schedule`/],
      [{ operation: "schedule", kind: "deploy" }, /input `at` or `in` is required/],
      [{ operation: "schedule", kind: "deploy", in: "1h", at: "+5m" }, /input `at` or `in`, not both/],
      [
        { operation: "schedule", kind: "deploy", in: "1h", quorum: "two" },
        /input `quorum` must be a whole number/
      ],
      [{ operation: "schedule", kind: "deploy", in: "1h", payload: "{" }, /input `payload` is not JSON/],
      [{ operation: "schedule", kind: "deploy", in: "soon" }, /input `in`:/],
      [{ operation: "timer", in: "0s" }, /input `in` must be more than 0/],
      [{ operation: "confirm", "event-id": "x" }, /input `agent` is required for operation `confirm`/],
      [
        { operation: "defer", "event-id": "x", agent: "a" },
        /input `duration` is required for operation `defer`/
      ],
      [{ operation: "status" }, /input `event-id` is required for operation `status`/],
      [
        { operation: "wait", "event-id": "x", "fail-on-miss": "maybe" },
        /input `fail-on-miss` must be true or false/
      ],
      [{ operation: "schedule", kind: "party", in: "1h" }, /input `kind` must be one of meeting, checkpoint/],
      [{ operation: "schedule", kind: "deploy", at: "tomorrow" }, /input `at`: cannot read "tomorrow"/],
      [
        { operation: "schedule", kind: "deploy", in: "1h", attendees: "a", quorum: "2" },
        /input `quorum` \(2\) is more than the 1 attendee/
      ],
      [
        { operation: "timer", in: "1h", "webhook-url": "not a url" },
        /input `webhook-url` is not an http\(s\) URL/
      ],
      [
        { operation: "timer", in: "1h", "webhook-url": "https://x.test", "webhook-secret": "?" },
        /input `webhook-secret` must be base64/
      ],
      [
        { operation: "timer", in: "1h", "webhook-secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" },
        /input `webhook-secret` needs `webhook-url`/
      ],
      [{ operation: "status", "event-id": "x", "request-timeout": "soon" }, /input `request-timeout`/]
    ]
    for (const [inputs, message] of cases) {
      const result = await as(keys.release, inputs)
      assert.strictEqual(result.code, 1, JSON.stringify(inputs))
      assert.match(errorLine(result), message, JSON.stringify(inputs))
      assert.deepStrictEqual(result.outputs, {}, JSON.stringify(inputs))
    }
    const badUrl = await step({ "server-url": "ftp://example.test", operation: "status", "event-id": "x" })
    assert.match(errorLine(badUrl), /input `server-url` is not an http\(s\) URL/)
    assert.strictEqual((await admin.list({ limit: 10_000 })).length, before)
  }, 60_000)

  it("`at` reads a bare number as seconds, as the command line does; `in` likewise", async () => {
    const at = await as(keys.release, { operation: "timer", at: "+10" })
    assert.approximately(Date.parse(at.outputs["fire-at"]!), Date.now() + 10_000, 5_000)
    const later = await as(keys.release, { operation: "timer", in: "10" })
    assert.approximately(Date.parse(later.outputs["fire-at"]!), Date.now() + 10_000, 5_000)
  })

  it("wait ends with `cancelled` when the event is cancelled while it waits, failing the step", async () => {
    const event = await as(keys.release, {
      operation: "schedule",
      kind: "review",
      in: "1h",
      attendees: "alice"
    })
    const id = event.outputs["event-id"]!
    const waiting = as(keys.alice, { operation: "wait", "event-id": id })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    await as(keys.release, { operation: "cancel", "event-id": id, reason: "not today" })
    const waited = await waiting
    assert.strictEqual(waited.code, 1)
    assert.strictEqual(waited.outputs.outcome, "cancelled")
    assert.match(errorLine(waited), /was cancelled: not today/)
  }, 30_000)

  it("text from the server cannot start a workflow command in the log", async () => {
    const event = await as(keys.release, {
      operation: "schedule",
      kind: "review",
      in: "1h",
      name: "standup\n::warning title=injected::boo\n::set-output name=outcome::fired",
      attendees: "alice"
    })
    assert.strictEqual(event.code, 0, event.stdout)
    const status = await as(keys.alice, { operation: "status", "event-id": event.outputs["event-id"]! })
    const commands = status.stdout.split("\n").filter((l) => l.startsWith("::"))
    assert.deepStrictEqual(commands, [`::add-mask::${keys.alice}`])
    assert.isUndefined(status.outputs.outcome)
  })

  it("a wait outlives a server restart: it asks again until its timeout", async () => {
    const dir = tmp()
    const db = NodePath.join(dir, "restart.db")
    const first = await Server.start({ logLevel: "none", port: 0, db })
    const port = Number(new URL(first.url).port)
    const key = await first.createKey("acme", "ops", "organizer")
    const timer = await step({ "server-url": first.url, "api-key": key, operation: "timer", in: "4s" })
    const waiting = step({
      "server-url": first.url,
      "api-key": key,
      operation: "wait",
      "event-id": timer.outputs["event-id"]!,
      timeout: "30s",
      "request-timeout": "2s"
    })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    await first.close()
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const second = await Server.start({ logLevel: "none", port, db })
    try {
      const waited = await waiting
      assert.strictEqual(waited.code, 0, waited.stdout)
      assert.strictEqual(waited.outputs.outcome, "fired")
      assert.match(waited.stdout, /::warning::.*trying again until the timeout/)
    } finally {
      await second.close()
    }
  }, 60_000)

  it("an unreachable server or a refused key fails the step saying what to check", async () => {
    const closed = Http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const unreachable = await step({
      "server-url": `http://127.0.0.1:${port}`,
      operation: "status",
      "event-id": "x"
    })
    assert.strictEqual(unreachable.code, 1)
    assert.match(errorLine(unreachable), /could not reach the t-minus server at http:\/\/127\.0\.0\.1:\d+/)
    assert.match(errorLine(unreachable), /check `server-url`/)

    const refused = await as("tm_not_a_key", { operation: "status", "event-id": "x" })
    assert.strictEqual(refused.code, 1)
    assert.match(errorLine(refused), /refused the API key .*check the `api-key` input/)

    // A server that takes the connection and never answers: the step ends after request-timeout.
    const silent = Net.createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const started = performance.now()
      const stalled = await step({
        "server-url": `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
        operation: "wait",
        "event-id": "x",
        timeout: "2s",
        "request-timeout": "1s"
      })
      assert.strictEqual(stalled.code, 1)
      assert.match(errorLine(stalled), /no answer within 1s.*check `server-url`/)
      assert.isBelow(performance.now() - started, 10_000)
    } finally {
      silent.close()
    }

    const forbidden = await as(keys.alice, { operation: "schedule", kind: "deploy", in: "1h" })
    assert.strictEqual(forbidden.code, 1)
    assert.match(errorLine(forbidden), /cannot schedule.*role or principal/)
  }, 60_000)

  it("runs under @github/local-action, GitHub's local runner for JavaScript actions", async () => {
    const dir = tmp()
    const summary = NodePath.join(dir, "summary.md")
    Fs.writeFileSync(summary, "")
    const envFile = NodePath.join(dir, ".env")
    Fs.writeFileSync(
      envFile,
      [
        `INPUT_SERVER-URL=${server.url}`,
        `INPUT_API-KEY=${keys.release}`,
        "INPUT_OPERATION=schedule",
        "INPUT_KIND=checkpoint",
        "INPUT_IN=30m",
        "INPUT_ATTENDEES=alice,bob",
        `GITHUB_STEP_SUMMARY=${summary}`
      ].join("\n")
    )
    // What local-action's bin runs (`tsx <local-action>/src/index.ts -- run …` with the package
    // manager it found), without the bin's `pnpm dlx tsx`, which would fetch tsx from the registry.
    const localAction = NodePath.join(root, "node_modules", "@github", "local-action")
    const tsx = require.resolve("tsx/cli", { paths: [root] })
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [tsx, NodePath.join(localAction, "src", "index.ts"), "run", root, "src/main.ts", envFile],
        {
          cwd: root,
          env: {
            ...process.env,
            PATH: pathWithPnpm(),
            NODE_PACKAGE_MANAGER: "pnpm",
            TARGET_ACTION_PATH: root,
            NODE_NO_WARNINGS: "1"
          }
        }
      )
      let out = ""
      child.stdout.on("data", (chunk) => {
        out += chunk
      })
      child.stderr.on("data", (chunk) => {
        out += chunk
      })
      child.on("close", (code) => resolve({ code, out }))
    })
    assert.strictEqual(result.code, 0, result.out)
    const table = result.out.slice(result.out.indexOf("Action Outputs"))
    assert.match(table, /'event-id'\s*│\s*'[0-9a-f-]{36}'/, result.out)
    assert.match(table, /'status'\s*│\s*'scheduled'/)
    assert.include(Fs.readFileSync(summary, "utf8"), "| bob | ⏳ pending |")
  }, 120_000)
})

/**
 * `PATH` with a `pnpm` on it: local-action asks pnpm where `@actions/core` is (this workspace uses
 * pnpm). Under `npx pnpm …` the running pnpm is `npm_execpath`, which may not be on `PATH`.
 */
const pathWithPnpm = (): string => {
  const path = process.env.PATH ?? ""
  const onPath = path.split(NodePath.delimiter).some((dir) => Fs.existsSync(NodePath.join(dir, "pnpm")))
  const execpath = process.env.npm_execpath
  if (onPath || execpath === undefined || !/pnpm/.test(execpath)) return path
  const dir = tmp()
  const shim = NodePath.join(dir, "pnpm")
  Fs.writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${execpath}" "$@"\n`, { mode: 0o755 })
  return `${dir}${NodePath.delimiter}${path}`
}
