/**
 * The real `t-minus tui` in a real terminal (tmux, 80×24): it shows the board, sees a confirm made
 * by another process within a second, and acts on keys (confirm, cancel, quit).
 */
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, describe, it } from "vitest"
import { runBin, tempDir } from "./harness.ts"

const hasTmux = spawnSync("tmux", ["-V"]).status === 0
if (!hasTmux)
  console.warn("SKIPPED: tmux is not installed: the end-to-end TUI test needs it (apt-get install tmux)")

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf(!hasTmux)("t-minus tui in tmux", () => {
  const session = `t-minus-test-${randomBytes(4).toString("hex")}`
  const dir = tempDir()
  const db = NodePath.join(dir, "tui.db")
  // A tmux server of the test's own (its socket in the temp directory, no user config): nothing
  // another tmux user on the machine does can reach it, and it has this process's environment.
  const socket = NodePath.join(dir, "tmux.sock")
  const errors = NodePath.join(dir, "tui.err")
  const stderr = () => (Fs.existsSync(errors) ? Fs.readFileSync(errors, "utf8") : "")
  const tmux = (...args: Array<string>) =>
    execFileSync("tmux", ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
  const alive = () => spawnSync("tmux", ["-S", socket, "has-session", "-t", session]).status === 0
  const screen = () => {
    if (!alive()) throw new Error(`the TUI's session ended; its stderr:\n${stderr()}`)
    return tmux("capture-pane", "-p", "-t", session)
  }
  const screenWhere = async (check: (text: string) => boolean, ms: number, what: string) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const text = screen()
      if (check(text)) return text
      await sleep(25)
    }
    throw new Error(
      `the screen did not show ${what} within ${ms} ms:\n${screen()}\nthe TUI's stderr:\n${stderr()}`
    )
  }
  afterAll(() => {
    spawnSync("tmux", ["-S", socket, "kill-server"])
    Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("shows the board, follows another process's confirm within a second, and acts on keys", async () => {
    const scheduled = await runBin([
      "--db",
      db,
      "schedule",
      "review",
      "+10m",
      "--name",
      "code review",
      "--attendees",
      "alice,bob,carol",
      "--quorum",
      "2",
      "--json"
    ])
    const id = JSON.parse(scheduled.out).id as string
    tmux(
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "80",
      "-y",
      "24",
      // CI=true as on a CI machine: a real terminal must still get the live board.
      `CI=true ${process.execPath} ${bin} --db ${db} tui --as alice 2>>${errors}`
    )
    const board = await screenWhere((s) => s.includes("code review"), 15_000, "the board")
    assert.match(board, /T-00:(09|10):\d\d/)
    assert.include(board, "alice· bob· carol·")
    for (const line of board.split("\n")) assert.isAtMost([...line].length, 80)

    // Another process confirms: the screen follows within a second of its commit.
    const confirmed = await runBin(["--db", db, "confirm", id, "bob"])
    assert.strictEqual(confirmed.code, 0, confirmed.err)
    await screenWhere((s) => s.includes("bob✓"), 1_000, "bob's confirmation")

    // Keys act as alice.
    tmux("send-keys", "-t", session, "c")
    await screenWhere((s) => s.includes("alice✓"), 5_000, "alice's confirmation")
    tmux("send-keys", "-t", session, "K")
    await screenWhere((s) => s.includes("y/n"), 5_000, "the cancel question")
    tmux("send-keys", "-t", session, "y")
    await screenWhere((s) => /› \S+ review .*cancelled/.test(s), 5_000, "the cancelled event")
    const stored = await runBin(["--db", db, "get", id, "--json"])
    assert.strictEqual(JSON.parse(stored.out).status, "cancelled")

    // A resize redraws at the new size.
    tmux("resize-window", "-t", session, "-x", "100", "-y", "30")
    await screenWhere(
      (s) => s.split("\n").some((l) => l.includes("t-minus") && l.trimEnd().length > 80),
      5_000,
      "a wider header"
    )

    tmux("send-keys", "-t", session, "q")
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline && alive()) await sleep(50)
    assert.isFalse(alive(), "q quits")
  }, 60_000)
})
