import { assert, describe, it } from "@effect/vitest"
import * as Access from "../src/Access.ts"
import type { Event } from "../src/Event.ts"

const caller = (role: Access.Role, principal = "p"): Access.Caller => ({ tenant: "t", principal, role })
const eventOf = (organizer: string) => ({ id: "e1", organizer }) as Event

const allowed = (result: unknown) => result === null
const denied = (result: unknown) => result !== null && (result as { _tag: string })._tag === "Forbidden"

describe("Access (SPEC 8)", () => {
  it("viewers only read", () => {
    const viewer = caller("viewer")
    assert.isTrue(denied(Access.write(viewer, "x")))
    assert.isTrue(denied(Access.schedule(viewer, "schedule", undefined)))
    assert.isTrue(denied(Access.respond(viewer, "confirm", "p")))
    assert.isTrue(denied(Access.manage(viewer, "cancel", eventOf("p"))))
    assert.isTrue(denied(Access.organize(viewer, "link")))
    for (const role of ["admin", "organizer", "agent"] as const)
      assert.isTrue(allowed(Access.write(caller(role), "x")))
  })

  it("an agent answers only as itself; an admin for anyone", () => {
    for (const role of ["organizer", "agent"] as const) {
      assert.isTrue(allowed(Access.respond(caller(role, "alice"), "confirm", "alice")))
      const other = Access.respond(caller(role, "alice"), "defer", "bob")
      assert.isTrue(denied(other))
      assert.include(other!.message, "alice can only answer as itself, not as bob")
      assert.strictEqual(other!.operation, "defer")
    }
    assert.isTrue(allowed(Access.respond(caller("admin", "root"), "confirm", "bob")))
  })

  it("organizers schedule as themselves; agents do not schedule", () => {
    assert.isTrue(allowed(Access.schedule(caller("organizer", "olga"), "schedule", undefined)))
    assert.isTrue(allowed(Access.schedule(caller("organizer", "olga"), "schedule", "olga")))
    assert.isTrue(denied(Access.schedule(caller("organizer", "olga"), "schedule", "oscar")))
    assert.isTrue(denied(Access.schedule(caller("agent", "alice"), "schedule", undefined)))
    assert.isTrue(allowed(Access.schedule(caller("admin", "root"), "schedule", "anyone")))
  })

  it("only the organizer or an admin manages an event, acting as itself", () => {
    const event = eventOf("olga")
    assert.isTrue(allowed(Access.manage(caller("organizer", "olga"), "cancel", event)))
    assert.isTrue(allowed(Access.manage(caller("organizer", "olga"), "cancel", event, "olga")))
    assert.isTrue(denied(Access.manage(caller("organizer", "olga"), "cancel", event, "root")))
    assert.isTrue(denied(Access.manage(caller("organizer", "oscar"), "reschedule", event)))
    assert.isTrue(denied(Access.manage(caller("agent", "olga"), "cancel", event)))
    assert.isTrue(allowed(Access.manage(caller("admin", "root"), "cancel", event, "anyone")))
  })

  it("campaigns are built by organizers and admins", () => {
    assert.isTrue(allowed(Access.organize(caller("organizer"), "createCampaign")))
    assert.isTrue(allowed(Access.organize(caller("admin"), "link")))
    assert.isTrue(denied(Access.organize(caller("agent"), "link")))
  })
})
