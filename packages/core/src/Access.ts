/**
 * Who may do what (SPEC 8), as pure rules over the caller and the event. A server resolves an API
 * key to a `Caller`; the RPC handlers ask these rules before they touch the coordinator, and run
 * every operation in the caller's tenant (`Coordinator.withTenant`), so another tenant's ids answer
 * *not found* before any rule is asked.
 *
 * Roles:
 * - `admin`: everything in its tenant, including answering or cancelling for others.
 * - `organizer`: schedules events as itself (it is their organizer), cancels and reschedules its own
 *   events, builds campaigns, retries its events' actions, and answers as itself.
 * - `agent`: answers (confirm, defer, decline) as itself, and reads.
 * - `viewer`: reads (get, list, history, actions, campaigns, watch, waitFor).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import { Forbidden } from "./Errors.ts"
import type { Event } from "./Event.ts"

/** @since 0.1.0 */
export const Role = Schema.Literal("admin", "organizer", "agent", "viewer")
/** @since 0.1.0 */
export type Role = typeof Role.Type

/** @since 0.1.0 */
export const ROLES: ReadonlyArray<Role> = Role.literals

/**
 * Who calls: the tenant whose data it sees, the principal (the agent id it acts as) and its role.
 * `maxActiveEvents` is the tenant's quota, when the server sets one.
 *
 * @since 0.1.0
 */
export interface Caller {
  readonly tenant: string
  readonly principal: string
  readonly role: Role
  readonly maxActiveEvents?: number | undefined
}

/**
 * The caller of the current request, provided by the server's authentication.
 *
 * @since 0.1.0
 */
export class CurrentCaller extends Context.Tag("@t-minus/core/Access/CurrentCaller")<
  CurrentCaller,
  Caller
>() {}

const forbid = (operation: string, reason: string) => new Forbidden({ operation, reason })

/**
 * May the caller change anything at all (every role but `viewer`)?
 *
 * @since 0.1.0
 */
export const write = (caller: Caller, operation: string): Forbidden | null =>
  caller.role === "viewer" ? forbid(operation, "viewers can only read") : null

/**
 * May the caller schedule, with `organizer` as the event's organizer (its own principal when
 * absent)? Organizers schedule only as themselves; admins for anyone.
 *
 * @since 0.1.0
 */
export const schedule = (
  caller: Caller,
  operation: string,
  organizer: string | undefined
): Forbidden | null => {
  if (caller.role === "admin") return null
  if (caller.role !== "organizer") return forbid(operation, `the ${caller.role} role cannot schedule`)
  if (organizer !== undefined && organizer !== caller.principal) {
    return forbid(
      operation,
      `${caller.principal} can only schedule as organizer ${caller.principal}, not ${organizer}`
    )
  }
  return null
}

/**
 * May the caller answer (confirm, defer, decline) for `agent`? Only as itself, unless an admin.
 *
 * @since 0.1.0
 */
export const respond = (caller: Caller, operation: string, agent: string): Forbidden | null => {
  if (caller.role === "viewer") return forbid(operation, "viewers can only read")
  if (caller.role === "admin" || agent === caller.principal) return null
  return forbid(operation, `${caller.principal} can only answer as itself, not as ${agent}`)
}

/**
 * May the caller manage this event (cancel, reschedule, retry its actions, put it in a campaign)?
 * Its organizer, or an admin. `actor`, when given, must be the caller itself unless it is an admin.
 *
 * @since 0.1.0
 */
export const manage = (
  caller: Caller,
  operation: string,
  event: Event,
  actor?: string | undefined
): Forbidden | null => {
  if (caller.role === "admin") return null
  if (caller.role !== "organizer") return forbid(operation, `the ${caller.role} role cannot ${operation}`)
  if (event.organizer !== caller.principal) {
    return forbid(
      operation,
      `only the organizer (${event.organizer}) or an admin can ${operation} event ${event.id}`
    )
  }
  if (actor !== undefined && actor !== caller.principal) {
    return forbid(operation, `${caller.principal} can only act as itself, not as ${actor}`)
  }
  return null
}

/**
 * May the caller run what affects the whole tenant (a remote `tick`, `cleanup`)? Admins only.
 *
 * @since 0.1.0
 */
export const administer = (caller: Caller, operation: string): Forbidden | null =>
  caller.role === "admin" ? null : forbid(operation, `only an admin can ${operation}`)

/**
 * May the caller build campaigns (create, link)? Organizers and admins.
 *
 * @since 0.1.0
 */
export const organize = (caller: Caller, operation: string): Forbidden | null =>
  caller.role === "admin" || caller.role === "organizer"
    ? null
    : forbid(operation, `the ${caller.role} role cannot ${operation}`)
