/**
 * The TUI's components with ink-testing-library, over a real embedded engine and a controllable
 * clock: the board, its countdown ticking, live updates, keys.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { TMinus } from "@t-minus/core"
import { render } from "ink-testing-library"
import { createElement as h } from "react"
import { afterEach, assert, beforeEach, describe, it } from "vitest"
import { type Backend, open } from "../src/backend.ts"
import { App, quorumBar } from "../src/tui/App.ts"
import { sourceOf } from "../src/tui/run.ts"
import { cli, remote, tempDir } from "./harness.ts"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until the last frame passes `check` (or fails with the frame). */
const frameWhere = async (
  lastFrame: () => string | undefined,
  check: (frame: string) => boolean,
  ms = 3_000
) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const frame = lastFrame() ?? ""
    if (check(frame)) return frame
    await sleep(20)
  }
  throw new Error(`no frame passed the check in ${ms} ms; last frame:\n${lastFrame()}`)
}

describe("t-minus tui (ink-testing-library)", () => {
  let dir: string
  let engine: TMinus
  let now: number
  const clock = () => now

  beforeEach(async () => {
    dir = tempDir()
    now = Date.parse("2030-06-01T12:00:00Z")
    engine = await TMinus.open({ filename: NodePath.join(dir, "tui.db"), now: clock })
  })
  afterEach(async () => {
    await engine.close()
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  const backend = (): Backend => ({
    api: Object.assign(Object.create(engine) as TMinus, { watch: () => () => undefined }),
    mode: "embedded",
    where: NodePath.join(dir, "tui.db")
  })

  it("shows events by fire time with a ticking countdown, quorum bar and attendee states", async () => {
    const later = await engine.schedule({ kind: "deploy", name: "ship", at: "+2h", attendees: ["ops"] })
    const soon = await engine.schedule({
      kind: "review",
      name: "code review",
      at: "+5m",
      attendees: ["alice", "bob", "carol"],
      quorum: 2
    })
    await engine.confirm(soon.id, "alice")
    await engine.decline(soon.id, "carol")
    const app = render(h(App, { source: sourceOf(backend()), agent: "bob", clock, tickMs: 20 }))
    const frame = await frameWhere(app.lastFrame, (f) => f.includes("code review"))
    const lines = frame.split("\n")
    const first = lines.findIndex((l) => l.includes("code review"))
    const second = lines.findIndex((l) => l.includes("ship"))
    assert.isBelow(first, second, "soonest first")
    assert.match(lines[first]!, /T-00:05:00\s+\[█░\]\s+1\/2\s+alice✓ bob· carol✗$/)
    assert.include(frame, "as bob")
    // The clock moves: so does the countdown.
    now += 61_000
    await frameWhere(app.lastFrame, (f) => f.includes("T-00:03:59"))
    // The detail pane shows the selected event's history.
    assert.include(await frameWhere(app.lastFrame, (f) => f.includes("declined")), "confirmed")
    app.unmount()
    assert.strictEqual(quorumBar(later), "[░]")
  })

  it("keys: j/k select, c confirms and d defers as the --as agent, K asks before cancelling", async () => {
    const a = await engine.schedule({ kind: "review", name: "first", at: "+5m", attendees: ["bob"] })
    const b = await engine.schedule({ kind: "review", name: "second", at: "+10m", attendees: ["bob"] })
    const app = render(h(App, { source: sourceOf(backend()), agent: "bob", clock, tickMs: 20 }))
    await frameWhere(app.lastFrame, (f) => f.includes("› ") && f.includes("first"))
    await sleep(100) // Ink reads keys once its input hook is set up, just after the first frame
    app.stdin.write("j")
    await frameWhere(app.lastFrame, (f) => /› \S+ review\s+second/.test(f))
    app.stdin.write("c")
    await frameWhere(app.lastFrame, (f) => f.includes("done"))
    assert.strictEqual((await engine.get(b.id)).attendees[0]!.status, "confirmed")
    app.stdin.write("k")
    await frameWhere(app.lastFrame, (f) => /› \S+ review\s+first/.test(f))
    app.stdin.write("d")
    await frameWhere(app.lastFrame, (f) => f.includes("defer"))
    await frameWhere(app.lastFrame, (f) => f.includes("by (e.g. 10m)"))
    // Typed and submitted in one chunk, as a paste (or tmux send-keys) delivers it.
    app.stdin.write("90\r")
    await frameWhere(app.lastFrame, (f) => f.includes("by 90: done"))
    assert.deepInclude((await engine.get(a.id)).attendees[0], { status: "deferred", deferMs: 90_000 })
    app.stdin.write("K")
    await frameWhere(app.lastFrame, (f) => f.includes("y/n"))
    app.stdin.write("n")
    await sleep(100)
    assert.strictEqual((await engine.get(a.id)).status, "scheduled")
    app.stdin.write("K")
    await frameWhere(app.lastFrame, (f) => f.includes("y/n"))
    app.stdin.write("y")
    await frameWhere(app.lastFrame, (f) => f.includes("cancelled"))
    assert.strictEqual((await engine.get(a.id)).status, "cancelled")
    app.unmount()
  })

  it("a filter, help, the campaign view, and changes made elsewhere appear", async () => {
    const campaign = await engine.createCampaign("release-v2")
    const check = await engine.addToCampaign(campaign.id, {
      kind: "checkpoint",
      name: "tests green",
      at: "+5m"
    })
    const ship = await engine.addToCampaign(campaign.id, { kind: "deploy", name: "ship it", at: "+10m" })
    await engine.link(campaign.id, check.id, ship.id)
    const app = render(h(App, { source: sourceOf(backend()), agent: undefined, clock, tickMs: 20 }))
    await frameWhere(app.lastFrame, (f) => f.includes("ship it"))
    await sleep(100) // Ink reads keys once its input hook is set up, just after the first frame
    app.stdin.write("/")
    await frameWhere(app.lastFrame, (f) => f.includes("filter: █"))
    for (const key of "ship") {
      app.stdin.write(key)
      await sleep(30)
    }
    app.stdin.write("\r")
    const filtered = await frameWhere(
      app.lastFrame,
      (f) => f.includes("filter: ship") && !f.includes("tests green")
    )
    assert.include(filtered, "ship it")
    app.stdin.write("c")
    await frameWhere(app.lastFrame, (f) => f.includes("--as AGENT"))
    app.stdin.write("\u001b")
    await frameWhere(app.lastFrame, (f) => f.includes("tests green"))
    await sleep(100) // a lone Escape is told from the start of a key sequence by a pause
    app.stdin.write("?")
    await frameWhere(app.lastFrame, (f) => f.includes("keys (any key closes this)"))
    app.stdin.write("x")
    await frameWhere(app.lastFrame, (f) => !f.includes("keys (any key closes this)"))
    app.stdin.write("\t")
    const campaigns = await frameWhere(app.lastFrame, (f) => f.includes("release-v2"))
    assert.match(campaigns, /1\. \S+ tests green/)
    assert.match(campaigns, new RegExp(`2\\. \\S+ ship it.*after ${check.id.slice(-8)}`))
    app.stdin.write("\t")
    // Another writer: the board shows it (the embedded source watches the file).
    const other = await TMinus.open({ filename: NodePath.join(dir, "tui.db"), now: clock })
    await other.schedule({ kind: "meeting", name: "retro", at: "+1h" })
    await other.close()
    await frameWhere(app.lastFrame, (f) => f.includes("retro"), 3_000)
    app.unmount()
  })

  it("fits the terminal's width (ink-testing-library's is 100 columns)", async () => {
    await engine.schedule({
      kind: "custom:very-long-kind-name",
      name: "a name that is much longer than the column it goes in",
      at: "+5m",
      attendees: ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
    })
    const app = render(h(App, { source: sourceOf(backend()), agent: "alice", clock, tickMs: 20 }))
    const frame = await frameWhere(app.lastFrame, (f) => f.includes("alice"))
    for (const line of frame.split("\n")) assert.isAtMost([...line].length, 100, line)
    app.unmount()
  })
})

describe("t-minus tui on a server", () => {
  it("follows the server's watch stream: a change made by another client shows up", async () => {
    const mode = await remote()
    const server = mode.flags[1]!
    const apiKey = mode.flags[3]!
    const backend = await open({ db: "unused.db", server, apiKey })
    try {
      const event = JSON.parse(
        (
          await cli(mode, [
            "schedule",
            "review",
            "+10m",
            "--name",
            "remote review",
            "--attendees",
            "alice,bob",
            "--json"
          ])
        ).out
      )
      const app = render(h(App, { source: sourceOf(backend), agent: "alice" }))
      await frameWhere(app.lastFrame, (f) => f.includes("remote review") && f.includes("bob·"))
      assert.include(app.lastFrame(), "remote http://127.0.0.1")
      const confirmed = await cli(mode, ["confirm", event.id, "bob"])
      assert.strictEqual(confirmed.code, 0, confirmed.err)
      await frameWhere(app.lastFrame, (f) => f.includes("bob✓"), 2_000)
      app.unmount()
    } finally {
      await backend.api.close()
      await mode.close()
    }
  }, 30_000)
})
