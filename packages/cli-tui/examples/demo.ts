/**
 * The main job (`pnpm demo`): a small agent team coordinates a release through the `t-minus`
 * command line on the embedded SQLite database, then the live board opens (`t-minus tui`, with
 * the runner, so events fire on time in front of you). Without a terminal it prints the board
 * instead, and the commands that open it.
 *
 *   pnpm demo          (writes ./t-minus-demo.db, or the file named by T_MINUS_DB)
 */
import { rmSync } from "node:fs"
import { main } from "../src/main.ts"

const db = process.env.T_MINUS_DB ?? "./t-minus-demo.db"
for (const suffix of ["", "-wal", "-shm"]) rmSync(db + suffix, { force: true })

const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }
const dim = (text: string) =>
  process.stdout.isTTY && !process.env.NO_COLOR ? `\u001b[2m${text}\u001b[22m` : text

/** Runs one command as a newcomer would type it, showing it first. */
const t = async (...args: Array<string>): Promise<void> => {
  process.stdout.write(
    `\n${dim("$")} t-minus ${args.map((a) => (/[\s'{}]/.test(a) ? `'${a}'` : a)).join(" ")}\n`
  )
  const code = await main(["--db", db, ...args], io)
  if (code !== 0) throw new Error(`t-minus ${args.join(" ")} exited ${code}`)
}
const idOf = async (...args: Array<string>) => {
  let out = ""
  const code = await main(["--db", db, ...args, "--json"], {
    ...io,
    stdout: {
      write: (text: string) => {
        out += text
      }
    }
  })
  if (code !== 0) throw new Error(`t-minus ${args.join(" ")} exited ${code}`)
  const id = JSON.parse(out).id as string
  process.stdout.write(`\n${dim("$")} t-minus ${args.join(" ")}\n${dim(`→ ${id}`)}\n`)
  return id
}

console.log(
  "A release, coordinated by a team of agents: alice and bob review, ci runs the tests, ops deploys."
)
const campaign = await idOf("campaign", "create", "release-v2")
const tests = await idOf(
  "campaign",
  "add",
  campaign,
  "checkpoint",
  "+40s",
  "--name",
  "tests green",
  "--attendees",
  "ci"
)
const review = await idOf(
  "campaign",
  "add",
  campaign,
  "review",
  "+1m",
  "--name",
  "code review",
  "--attendees",
  "alice,bob,carol",
  "--quorum",
  "2"
)
const deploy = await idOf(
  "campaign",
  "add",
  campaign,
  "deploy",
  "+2m",
  "--name",
  "deploy v2",
  "--attendees",
  "ops",
  "--t-minus",
  "10s"
)
await t("campaign", "link", campaign, tests, deploy)
await t("campaign", "link", campaign, review, deploy)
await t("campaign", "order", campaign)
await t("timer", "20s", "standup", "--message", "stand-up starts")
await t("confirm", tests, "ci")
await t("confirm", review, "alice")
await t("defer", review, "bob", "30s")
await t("decline", review, "carol")
await t("confirm", deploy, "ops")
await t("status")

if (process.stdout.isTTY && process.stdin.isTTY) {
  console.log(
    `\nOpening the live board as bob (the runner fires events on time). Try: j/k, c (confirm), d (defer), q (quit).`
  )
  await new Promise((resolve) => setTimeout(resolve, 2_500))
  process.exitCode = await main(["--db", db, "tui", "--as", "bob", "--run"], io)
} else {
  console.log(`
No terminal here, so no live board. In a terminal:
  t-minus --db ${db} tui --as bob --run     the board, live (keys: c confirm, d defer, x decline, K cancel, q quit)
  t-minus --db ${db} run                    fire events on time, printing each transition
  t-minus --db ${db} tick                   process what is due now, once
(in this repository: node packages/cli-tui/src/bin.ts …)`)
}
