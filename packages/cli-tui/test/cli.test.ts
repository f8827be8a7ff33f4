/**
 * Every command in both modes against the same expectations: embedded (a SQLite file) and remote
 * (a real t-minus-server on 127.0.0.1), including the error paths and exit codes.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import stringWidth from "string-width"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { COMMANDS } from "../src/commands.ts"
import {
  cli,
  embedded,
  embeddedPostgres,
  json,
  type Mode,
  postgresUp,
  remote,
  runBin,
  tempDir
} from "./harness.ts"

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what is looked for
const ANSI = /\u001b\[/
const MINUTE = 60_000
const near = (iso: string, expected: number, slackMs = 5_000) =>
  assert.isAtMost(
    Math.abs(Date.parse(iso) - expected),
    slackMs,
    `${iso} is not near ${new Date(expected).toISOString()}`
  )

const modes = [
  ["embedded", embedded],
  ["remote", remote],
  ...(postgresUp ? ([["embedded on PostgreSQL", embeddedPostgres]] as const) : [])
] as const

for (const [label, make] of modes) {
  describe(`t-minus, ${label}`, () => {
    let mode: Mode
    beforeAll(async () => {
      mode = await make()
    })
    afterAll(() => mode.close())
    const run = (...args: Array<string>) => cli(mode, args)

    it("the original examples work as written: schedule, confirm, status, tick", async () => {
      const scheduled = await run(
        "schedule",
        "review",
        "+5m",
        "--quorum",
        "2",
        "--attendees",
        "alice,bob,carol"
      )
      assert.strictEqual(scheduled.code, 0, scheduled.err)
      assert.match(scheduled.out, /^scheduled review [0-9a-f]{8}\n/)
      assert.match(scheduled.out, /quorum\s+0\/2 confirmed/)
      assert.match(scheduled.out, /attendees\s+alice· bob· carol·/)
      const id = scheduled.out.slice("scheduled review ".length, "scheduled review ".length + 8)
      assert.match(id, /^[0-9a-f]{8}$/)

      const confirmed = await run("confirm", id, "alice")
      assert.strictEqual(confirmed.code, 0, confirmed.err)
      assert.match(confirmed.out, new RegExp(`^alice confirmed review ${id} \\(1/2\\)`))

      const status = await run("status")
      assert.strictEqual(status.code, 0)
      const [header, ...rows] = status.out.trimEnd().split("\n")
      assert.deepStrictEqual(header!.split(/\s+/), [
        "ID",
        "KIND",
        "NAME",
        "STATUS",
        "FIRES",
        "AT",
        "T-MINUS",
        "QUORUM",
        "ATTENDEES"
      ])
      const row = rows.find((r) => r.startsWith(id))!
      assert.isDefined(row, status.out)
      assert.match(row, /scheduled\s+\S+Z\s+T-00:0[45]:\d\d\s+1\/2\s+alice✓ bob· carol·$/)
      assert.notMatch(status.out, ANSI, "no colours when not a terminal")

      const tick = json(await run("tick", "--json"))
      assert.deepStrictEqual(Object.keys(tick), ["fired", "missed", "deferred"])
      assert.notInclude([...tick.fired, ...tick.missed, ...tick.deferred], id, "not due yet")
    })

    it("--json prints the event shape: ISO fire time, quorum, confirmed, attendees with their states", async () => {
      const before = Date.now()
      const event = json(
        await run(
          "schedule",
          "deploy",
          "+10m",
          "--attendees",
          "ci,ops",
          "--quorum",
          "1",
          "--t-minus",
          "1m",
          "--name",
          "ship it",
          "--payload",
          '{"build":42}',
          "--as",
          "olga",
          "--json"
        )
      )
      for (const field of ["id", "kind", "name", "status", "fireAt", "scheduledAt", "tMinusMs", "quorum"])
        assert.property(event, field)
      assert.strictEqual(event.kind, "deploy")
      assert.strictEqual(event.name, "ship it")
      assert.strictEqual(event.status, "scheduled")
      assert.strictEqual(event.tMinusMs, MINUTE)
      near(event.scheduledAt, before + 10 * MINUTE)
      near(event.fireAt, before + 9 * MINUTE)
      assert.match(event.fireAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.strictEqual(event.quorum, 1)
      assert.strictEqual(event.confirmed, 0)
      assert.strictEqual(event.organizer, "olga")
      assert.deepStrictEqual(event.attendees, [
        { agent: "ci", status: "pending", respondedAt: null },
        { agent: "ops", status: "pending", respondedAt: null }
      ])
      assert.deepStrictEqual(event.payload, { build: 42 })
      assert.isAbove(event.remainingMs, 8 * MINUTE)

      // defer (a bare number is seconds), decline, get, logs
      const deferred = json(await run("defer", event.id.slice(-10), "ci", "90", "--json"))
      assert.deepInclude(deferred.attendees[0], { agent: "ci", status: "deferred", deferMs: 90_000 })
      const declined = json(await run("decline", event.id, "ops", "--json"))
      assert.strictEqual(declined.attendees[1].status, "declined")
      const got = json(await run("get", event.id.slice(-8), "--json"))
      assert.strictEqual(got.id, event.id)
      assert.strictEqual(json(await run("get", event.id.toUpperCase(), "--json")).id, event.id)
      const logs = json(await run("logs", event.id, "--json"))
      assert.deepStrictEqual(
        logs.map((e: { type: string }) => e.type),
        ["scheduled", "deferred", "declined"]
      )
      const human = await run("logs", event.id)
      assert.match(human.out, /deferred\s+ci\s+deferMs=90000/)
    })

    it("timer: a duration (bare seconds) or a time, an optional name, fires without attendees", async () => {
      const before = Date.now()
      const timer = json(await run("timer", "90", "tea", "--message", "tea is ready", "--json"))
      assert.strictEqual(timer.kind, "timer")
      assert.strictEqual(timer.name, "tea")
      assert.strictEqual(timer.quorum, 0)
      assert.deepStrictEqual(timer.attendees, [])
      near(timer.fireAt, before + 90_000)
      assert.deepStrictEqual(timer.actions.onFire, [{ _tag: "log", message: "tea is ready" }])
      const at = json(await run("timer", "2099-01-02T03:04:05+01:00", "--json"))
      assert.strictEqual(at.fireAt, "2099-01-02T02:04:05.000Z")
    })

    it("cancel and reschedule; a response on a cancelled event is an error naming its status", async () => {
      const event = json(await run("schedule", "meeting", "+1h", "--attendees", "alice", "--json"))
      const moved = json(await run("reschedule", event.id, "+2h", "--json"))
      near(moved.fireAt, Date.now() + 2 * 60 * MINUTE)
      const cancelled = await run("cancel", event.id, "--reason", "postponed")
      assert.strictEqual(cancelled.code, 0, cancelled.err)
      assert.match(cancelled.out, /status\s+cancelled \(postponed\)/)
      const late = await run("confirm", event.id, "alice")
      assert.strictEqual(late.code, 1)
      assert.strictEqual(late.out, "")
      assert.match(late.err, /^error: .*cancelled/)
      const lateJson = await run("confirm", event.id, "alice", "--json")
      assert.strictEqual(lateJson.code, 1)
      assert.deepInclude(JSON.parse(lateJson.err).error, { tag: "EventTerminal" })
    })

    it("domain errors exit 1 with `error: <message>` naming the field; nothing is written", async () => {
      const count = async () => json(await run("status", "--json")).length
      const before = await count()
      const cases: Array<[Array<string>, RegExp]> = [
        [["schedule", "review", "+5m", "--quorum", "3", "--attendees", "a,b"], /quorum/],
        [["schedule", "review", "+5m", "--quorum", "two"], /quorum/],
        [["schedule", "review", "+5m", "--quorum", "0x1", "--attendees", "a"], /quorum/],
        [["schedule", "review", "soon"], /time/],
        [["schedule", "review", "+5m", "--payload", "{nope"], /payload/],
        [["schedule", "review", "+5m", "--attendees", "a,a"], /attendees/],
        [["schedule", "lunch", "+5m"], /kind/],
        [["schedule", "review", "2001-01-01T00:00:00Z"], /past/],
        [["confirm", "00000000-0000-7000-8000-000000000000", "alice"], /not found|no event/i],
        [["defer", "00000000-0000-7000-8000-000000000000", "alice", "0"], /duration|not found/i],
        [["status", "--status", "done"], /status/],
        [["campaign", "order", "00000000-0000-7000-8000-000000000000"], /campaign/i]
      ]
      for (const [args, pattern] of cases) {
        const result = await run(...args)
        assert.strictEqual(result.code, 1, `${args.join(" ")}: ${result.err}`)
        assert.match(result.err, /^error: /, args.join(" "))
        assert.match(result.err, pattern, args.join(" "))
        const asJson = await run(...args, "--json")
        assert.strictEqual(asJson.code, 1)
        const { error } = JSON.parse(asJson.err)
        assert.isString(error.tag)
        assert.isString(error.message)
      }
      assert.strictEqual(await count(), before)
    })

    it("usage errors exit 2: unknown commands and options, missing or extra arguments", async () => {
      for (const args of [
        ["frobnicate"],
        ["schedule"],
        ["schedule", "review", "+5m", "--frob"],
        ["confirm", "x"],
        ["get", "a", "b"],
        ["campaign"],
        ["campaign", "frob"],
        ["schedule", "review", "+5m", "--tz", "UTC"],
        ["schedule", "review", "+5m", "--after", "x"],
        ["completion", "powershell"],
        ["--db", "", "status"]
      ]) {
        const result = await run(...args)
        assert.strictEqual(result.code, 2, `${args.join(" ")}: ${result.err}`)
        assert.match(result.err, /^error: /, args.join(" "))
        const asJson = await run(...args, "--json")
        assert.strictEqual(asJson.code, 2)
        assert.strictEqual(JSON.parse(asJson.err).error.tag, "UsageError")
      }
    })

    it("campaigns: create, add (existing and new), link, order, show, list; a cycle is refused", async () => {
      const campaign = json(await run("campaign", "create", "release-v2", "--json"))
      assert.deepInclude(campaign, { name: "release-v2", events: [], dependencies: [] })
      const check = json(await run("campaign", "add", campaign.id, "checkpoint", "+10m", "--json"))
      assert.strictEqual(check.campaignId, campaign.id)
      const existing = json(await run("schedule", "deploy", "+20m", "--json"))
      const added = json(await run("campaign", "add", campaign.id.slice(-8), existing.id.slice(-6), "--json"))
      assert.strictEqual(added.id, existing.id)
      const linked = json(await run("campaign", "link", campaign.id, existing.id, check.id, "--json"))
      assert.deepStrictEqual(linked.dependencies, [[existing.id, check.id]])
      assert.deepStrictEqual(json(await run("campaign", "order", campaign.id, "--json")), {
        order: [existing.id, check.id]
      })
      const again = await run("campaign", "link", campaign.id, existing.id, check.id)
      assert.match(
        again.out,
        new RegExp(`^linked ${existing.id.slice(-8)} → ${check.id.slice(-8)} in release-v2`)
      )
      const cycle = await run("campaign", "link", campaign.id, check.id, existing.id)
      assert.strictEqual(cycle.code, 1)
      assert.match(cycle.err, /cycle/i)
      const show = await run("campaign", "show", campaign.id)
      assert.match(show.out, /^release-v2 /)
      assert.match(show.out, new RegExp(`${existing.id.slice(-8)} → ${check.id.slice(-8)}`))
      const listed = json(await run("campaign", "list", "--json"))
      assert.include(
        listed.map((c: { id: string }) => c.id),
        campaign.id
      )
      assert.match((await run("campaign", "list")).out, /release-v2/)
    })

    it("cleanup removes ended events; --older-than keeps recent ones", async () => {
      const event = json(await run("schedule", "review", "+1h", "--json"))
      await run("cancel", event.id)
      assert.deepStrictEqual(json(await run("cleanup", "--older-than", "1d", "--json")), { removed: 0 })
      const removed = json(await run("cleanup", "--json")).removed
      assert.isAtLeast(removed, 1)
      assert.strictEqual((await run("get", event.id)).code, 1)
    })

    it("tables line up with wide characters in names (CJK and emoji take two columns)", async () => {
      await run("schedule", "review", "+5m", "--name", "名前 🚀", "--attendees", "a")
      await run("schedule", "review", "+5m", "--name", "plain", "--attendees", "a")
      const lines = (await run("status")).out.split("\n")
      const column = (line: string) => stringWidth(line.slice(0, line.indexOf("scheduled")))
      const rows = lines.filter((l) => l.includes("名前 🚀") || / plain /.test(l))
      assert.strictEqual(rows.length, 2)
      assert.strictEqual(column(rows[0]!), column(rows[1]!))
    })

    it("colours only on a terminal, never with NO_COLOR", async () => {
      await run("schedule", "review", "+5m", "--attendees", "alice")
      const tty = await cli(mode, ["status"], { tty: true })
      assert.match(tty.out, ANSI)
      const noColor = await cli(mode, ["status"], { tty: true, env: { NO_COLOR: "1" } })
      assert.notMatch(noColor.out, ANSI)
      const flag = await cli(mode, ["status", "--no-color"], { tty: true })
      assert.notMatch(flag.out, ANSI)
      const forced = await cli(mode, ["status"], { env: { FORCE_COLOR: "1" } })
      assert.match(forced.out, ANSI)
    })

    it("run prints transitions as they happen until interrupted", async () => {
      let stop!: () => void
      const interrupted = new Promise<void>((resolve) => {
        stop = resolve
      })
      const running = cli(mode, ["run", "--json"], { interrupted })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const timer = json(await run("timer", "1", "blink", "--json"))
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      stop()
      const result = await running
      assert.strictEqual(result.code, 0, result.err)
      const lines = result.out
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
      const mine = lines
        .filter((t: { eventId: string }) => t.eventId === timer.id)
        .map((t: { type: string }) => t.type)
      assert.includeMembers(mine, ["scheduled", "fired"])
    }, 20_000)

    it("tui without a terminal explains and exits 2", async () => {
      const result = await run("tui")
      assert.strictEqual(result.code, 2)
      assert.match(result.err, /needs a terminal/)
    })
  })
}

describe("t-minus, embedded only", () => {
  let mode: Mode
  beforeAll(async () => {
    mode = await embedded()
  })
  afterAll(() => mode.close())
  const run = (...args: Array<string>) => cli(mode, args)

  it("--now: every command acts at that instant, relative times included; tick fires and cascades", async () => {
    const at = "2030-01-01T12:00:00Z"
    const event = json(
      await run(
        "--now",
        at,
        "schedule",
        "review",
        "+5m",
        "--attendees",
        "alice,bob,carol",
        "--quorum",
        "2",
        "--json"
      )
    )
    assert.strictEqual(event.fireAt, "2030-01-01T12:05:00.000Z")
    assert.strictEqual(event.remainingMs, 5 * MINUTE)
    await run("--now", at, "confirm", event.id, "alice")
    await run("--now", at, "defer", event.id, "bob", "2m")
    const status = await run("--now", "2030-01-01T12:01:00Z", "status")
    assert.match(status.out, /T-00:04:00/)
    // At the fire time: quorum not met, bob deferred → the countdown extends by 2 minutes.
    assert.deepStrictEqual(json(await run("--now", "2030-01-01T12:05:00Z", "tick", "--json")), {
      fired: [],
      missed: [],
      deferred: [event.id]
    })
    await run("--now", "2030-01-01T12:05:00Z", "confirm", event.id, "bob")
    assert.deepStrictEqual(json(await run("--now", "2030-01-01T12:07:00Z", "tick", "--json")), {
      fired: [event.id],
      missed: [],
      deferred: []
    })
    const human = await run("--now", "2030-01-01T12:08:00Z", "tick")
    assert.strictEqual(human.out, "fired    —\nmissed   —\ndeferred —\n")
    const days = await run("--now", at, "schedule", "review", "+2d3h4m5s", "--json")
    assert.strictEqual(json(days).remainingMs, ((2 * 24 + 3) * 60 + 4) * MINUTE + 5_000)
    assert.match((await run("--now", at, "status")).out, /T-2d 03:04:05/)
  })

  it("run also prints what its runner did as it started (events that came due while nothing ran)", async () => {
    const late = json(await run("--now", "2020-01-01T00:00:00Z", "timer", "5m", "long-overdue", "--json"))
    let stop!: () => void
    const interrupted = new Promise<void>((resolve) => {
      stop = resolve
    })
    const running = cli(mode, ["run", "--json"], { interrupted })
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    stop()
    const lines = (await running).out
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    assert.deepInclude(
      lines.map((t: { eventId: string; type: string }) => [t.eventId, t.type]),
      [late.id, "fired"]
    )
  })

  it("negative values are refused as values (exit 1, naming the field), not taken for options", async () => {
    const event = json(await run("schedule", "review", "+1h", "--attendees", "bob", "--json"))
    for (const args of [
      ["defer", event.id, "bob", "-5m"],
      ["schedule", "review", "+5m", "--quorum", "-1", "--attendees", "a"],
      ["cleanup", "--older-than", "-1"]
    ]) {
      const result = await run(...args)
      assert.strictEqual(result.code, 1, `${args.join(" ")}: ${result.err}`)
      assert.match(result.err, /^error: (duration|quorum|olderThan)/, args.join(" "))
    }
  })

  it("commands and file writes need a server's runner config: refused embedded, before anything is written", async () => {
    for (const args of [
      ["timer", "1h", "--command", "echo"],
      ["timer", "1h", "--file", "a.txt", "--content", "hi"]
    ]) {
      const result = await run(...args)
      assert.strictEqual(result.code, 1)
      assert.match(result.err, /t-minus-server/)
    }
  })

  it("an id part that fits several events is refused, naming them", async () => {
    // Events made within a minute share their first 8 characters (UUID v7 begins with the time).
    const ids = new Set<string>()
    for (let i = 0; i < 30; i++)
      ids.add(json(await run("schedule", "review", "+1h", "--json")).id.slice(0, 4))
    const shared = [...ids][0]!
    const result = await run("get", shared)
    assert.strictEqual(result.code, 1)
    assert.match(result.err, /ambiguous/)
  })
})

describe("t-minus, remote only", () => {
  let mode: Mode
  beforeAll(async () => {
    mode = await remote()
  })
  afterAll(() => mode.close())

  it("an agent's key answers only for itself; a viewer only reads; tick is for admins", async () => {
    const event = json(await cli(mode, ["schedule", "review", "+1h", "--attendees", "alice,bob", "--json"]))
    const alice = await mode.key!("acme", "alice", "agent")
    const asAlice = { ...mode, flags: [mode.flags[0]!, mode.flags[1]!, "--api-key", alice] }
    assert.strictEqual((await cli(asAlice, ["confirm", event.id, "alice"])).code, 0)
    const impersonation = await cli(asAlice, ["confirm", event.id, "bob", "--json"])
    assert.strictEqual(impersonation.code, 1)
    assert.strictEqual(JSON.parse(impersonation.err).error.tag, "Forbidden")
    const tick = await cli(asAlice, ["tick"])
    assert.strictEqual(tick.code, 1)
    assert.match(tick.err, /admin/)
    const ahead = await cli(mode, ["--now", "+1h", "tick", "--json"])
    assert.strictEqual(ahead.code, 1)
    assert.deepInclude(JSON.parse(ahead.err).error, { tag: "InvalidInput" })
    const other = await mode.key!("globex", "root", "admin")
    const otherTenant = await cli({ ...mode, flags: [mode.flags[0]!, mode.flags[1]!, "--api-key", other] }, [
      "get",
      event.id
    ])
    assert.strictEqual(otherTenant.code, 1)
    assert.match(otherTenant.err, /not found/i)
  })

  it("a bad key or an unreachable server is an error that says so", async () => {
    const bad = await cli({ ...mode, flags: [mode.flags[0]!, mode.flags[1]!, "--api-key", "nope"] }, [
      "status"
    ])
    assert.strictEqual(bad.code, 1)
    assert.match(bad.err, /API key/)
    const gone = await cli({ ...mode, flags: ["--server", "http://127.0.0.1:9", "--api-key", "x"] }, [
      "status"
    ])
    assert.strictEqual(gone.code, 1)
    assert.match(gone.err, /127\.0\.0\.1:9/)
  })
})

describe("t-minus help, completions and the bin", () => {
  const none: Mode = { name: "embedded", flags: [], close: async () => undefined }

  it("--help for every command: usage, options and examples; exit 0", async () => {
    const top = await cli(none, ["--help"])
    assert.strictEqual(top.code, 0)
    for (const command of COMMANDS) {
      assert.include(top.out, command.name)
      const help = await cli(none, [...command.name.split(" "), "--help"])
      assert.strictEqual(help.code, 0, command.name)
      assert.include(help.out, `t-minus ${command.name}`)
      assert.include(help.out, "Examples:")
      for (const option of Object.keys(command.options)) assert.include(help.out, `--${option}`, command.name)
      assert.deepStrictEqual(await cli(none, ["help", ...command.name.split(" ")]), help)
      assert.deepStrictEqual(await cli(none, ["--db", "x.db", "help", ...command.name.split(" ")]), help)
    }
    const unknown = await cli(none, ["help", "nosuch"])
    assert.strictEqual(unknown.code, 2)
    assert.match((await cli(none, ["help", "campaign"])).out, /campaign link <campaign> <from> <to>/)
  })

  it("completion scripts for bash (valid syntax), zsh and fish name every command", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const result = await cli(none, ["completion", shell])
      assert.strictEqual(result.code, 0)
      for (const word of ["schedule", "confirm", "campaign", shell === "fish" ? "-l quorum" : "--quorum"])
        assert.include(result.out, word, shell)
    }
    const dir = tempDir()
    const file = NodePath.join(dir, "t-minus.bash")
    Fs.writeFileSync(file, (await cli(none, ["completion", "bash"])).out)
    execFileSync("bash", ["-n", file])
    const completed = execFileSync(
      "bash",
      ["-c", `source ${file}; COMP_WORDS=(t-minus sch); COMP_CWORD=1; _t_minus; echo "\${COMPREPLY[@]}"`],
      { encoding: "utf8" }
    )
    assert.strictEqual(completed.trim(), "schedule")
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("the bin exits 0, 1 and 2 as documented", async () => {
    const dir = tempDir()
    const db = NodePath.join(dir, "bin.db")
    const ok = await runBin(["--db", db, "schedule", "review", "+5m", "--json"])
    assert.strictEqual(ok.code, 0, ok.err)
    assert.strictEqual(JSON.parse(ok.out).kind, "review")
    const domain = await runBin(["--db", db, "confirm", JSON.parse(ok.out).id, "nobody"])
    assert.strictEqual(domain.code, 1)
    assert.match(domain.err, /^error: /)
    const usage = await runBin(["--db", db, "nope"])
    assert.strictEqual(usage.code, 2)
    const env = await runBin(["status", "--json"], { T_MINUS_DB: db })
    assert.strictEqual(JSON.parse(env.out).length, 1)
    Fs.rmSync(dir, { recursive: true, force: true })
  })
})
