/**
 * The main job, end to end on the embedded SQLite default: a release campaign where a review must
 * reach quorum before the deploy fires, one attendee defers (the countdown extends), and a timer
 * fires unconditionally. A simulated clock moves time forward so the demo runs in a second; the
 * data lands in a real SQLite file that a second engine then reopens.
 *
 *   pnpm demo            (writes ./t-minus-demo.db, or the file named by T_MINUS_DB)
 */
import { rmSync } from "node:fs"
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
console.log(`\nData kept in ${filename}.`)
