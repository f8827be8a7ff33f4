/**
 * The main job, end to end on the embedded SQLite default: a release campaign where a review must
 * reach quorum before the deploy fires, one attendee defers (the countdown extends), and a timer
 * fires unconditionally. A simulated clock moves time forward so the demo runs in a second; the
 * data lands in a real SQLite file that a second engine then reopens. Then the real-time runner
 * takes over on the real clock: a timer fires by itself a second later and its actions (a signed
 * webhook to a local receiver, a file write, a log line) are delivered from the outbox.
 *
 *   pnpm demo            (writes ./t-minus-demo.db, or the file named by T_MINUS_DB)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { TMinus } from "../src/index.ts"

const filename = process.env.T_MINUS_DB ?? "./t-minus-demo.db"
for (const suffix of ["", "-wal", "-shm"]) rmSync(filename + suffix, { force: true })

let now = Date.parse("2026-11-22T09:00:00Z")
const clock = () => now
const advance = (ms: number) => {
  now += ms
}
const at = () => new Date(now).toISOString().slice(11, 19)
const say = (line: string) => console.log(`[${at()}] ${line}`)

const tm = await TMinus.open({ filename, now: clock })

const campaign = await tm.createCampaign("release-v2")
const review = await tm.addToCampaign(campaign.id, {
  kind: "review",
  name: "code review",
  at: "+5m",
  attendees: ["alice", "bob", "carol"],
  quorum: 2
})
const deploy = await tm.addToCampaign(campaign.id, {
  kind: "deploy",
  name: "ship v2",
  at: "+6m",
  attendees: ["builder"],
  quorum: 1
})
await tm.link(campaign.id, review.id, deploy.id)
const timer = await tm.scheduleTimer({ at: "+20m", name: "post-release check" })
say(
  `campaign ${campaign.name}: review → deploy, order ${(await tm.executionOrder(campaign.id)).length} events`
)
say(`review fires at ${review.fireAt?.toISOString()} once 2 of 3 confirm`)

await tm.confirm(review.id, "alice")
await tm.defer(review.id, "bob", "2m")
say("alice confirmed, bob deferred 2m")

advance(5 * 60_000)
let result = await tm.tick()
say(`tick: fired ${result.fired.length}, deferred ${result.deferred.length}, missed ${result.missed.length}`)
const moved = await tm.get(review.id)
say(
  `review cascaded: now fires at ${moved.fireAt?.toISOString()} (deferrals used ${moved.deferralsUsed}/${moved.maxDeferrals})`
)

await tm.confirm(review.id, "bob")
await tm.confirm(deploy.id, "builder")
advance(2 * 60_000)
result = await tm.tick()
const label = (id: string) => (id === review.id ? "review" : id === deploy.id ? "deploy" : id)
say(`tick: fired ${result.fired.map(label).join(" and ")} (deploy was due at +6m and waited for the review)`)

advance(15 * 60_000)
result = await tm.tick()
say(`tick: timer fired: ${result.fired.includes(timer.id)}`)
await tm.close()

// A second engine on the same file sees everything that happened.
const again = await TMinus.open({ filename, now: clock })
for (const event of await again.list()) {
  say(`${event.kind.padEnd(8)} ${(event.name ?? "").padEnd(20)} ${event.status}`)
}
const history = await again.history(review.id)
say(`review history: ${history.map((h) => h.type).join(" → ")}`)
await again.close()

// The runner: real time from here on.
const received: Array<string> = []
const receiver = createServer((req, res) => {
  received.push(
    `${req.headers["webhook-id"]} signed ${String(req.headers["webhook-signature"]).slice(0, 12)}…`
  )
  res.writeHead(204).end()
})
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
const outDir = mkdtempSync(join(tmpdir(), "t-minus-demo-"))
const live = await TMinus.open({ filename, runner: { actions: { fileDirectory: outDir } } })
const realTime = () => new Date().toISOString().slice(11, 23)
const delivered = new Promise<void>((resolve) => {
  let count = 0
  live.watch((t) => {
    console.log(
      `[${realTime()}] watch: ${t.type}${t.type.startsWith("action_") ? ` (${t.detail.action})` : ""}`
    )
    if (t.type === "action_delivered" && ++count === 2) resolve()
  })
})
const ping = await live.scheduleTimer({
  in: "1s",
  name: "live ping",
  onFire: [
    {
      _tag: "webhook",
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    },
    { _tag: "file_write", path: "fired/ping.txt", content: "${id} fired at ${firedAt}\n" }
  ]
})
console.log(`[${realTime()}] runner: "live ping" fires at ${ping.fireAt?.toISOString().slice(11, 23)}`)
await delivered
const fired = await live.get(ping.id)
console.log(
  `[${realTime()}] fired ${(fired.firedAt!.getTime() - fired.fireAt!.getTime()).toString()} ms after its instant`
)
console.log(`[${realTime()}] webhook received: ${received.join(", ")}`)
console.log(`[${realTime()}] file written: ${readFileSync(join(outDir, "fired", "ping.txt"), "utf8").trim()}`)
await live.close()
receiver.close()
rmSync(outDir, { recursive: true, force: true })
console.log(`\nData kept in ${filename}.`)
