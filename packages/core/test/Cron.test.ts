import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Cron from "../src/Cron.ts"

const ok = <A>(e: Either.Either<A, unknown>): A => {
  if (Either.isLeft(e)) throw new Error(`expected success, got ${String(e.left)}`)
  return e.right
}
const err = (e: Either.Either<unknown, { field: string; message: string }>) => {
  if (Either.isRight(e)) throw new Error("expected failure")
  return e.left
}

const at = (iso: string) => Date.parse(iso)
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/** The first `count` occurrences after `from`, as ISO instants. */
const run = (expression: string, tz: string, from: string, count: number): Array<string | null> => {
  const schedule = ok(Cron.parse(expression, tz))
  const out: Array<string | null> = []
  let t: number | null = at(from)
  for (let i = 0; i < count && t !== null; i++) {
    t = Cron.next(schedule, t)
    out.push(iso(t))
  }
  return out
}

/** Every occurrence in (from, to], by iterating `next`. */
const between = (schedule: Cron.CronSchedule, from: number, to: number): Array<number> => {
  const out: Array<number> = []
  for (let t = Cron.next(schedule, from); t !== null && t <= to; t = Cron.next(schedule, t)) out.push(t)
  return out
}

// An oracle independent of Cron.ts: offsets read from Intl's "longOffset" names, and wall times
// turned into instants with Temporal's "compatible" algorithm (GetPossibleInstantsFor).
const offsetFormatters = new Map<string, Intl.DateTimeFormat>()
const zoneOffset = (tz: string, instant: number): number => {
  let formatter = offsetFormatters.get(tz)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" })
    offsetFormatters.set(tz, formatter)
  }
  const name = formatter.formatToParts(instant).find((p) => p.type === "timeZoneName")!.value
  const m = /GMT(?:([+-])(\d{2}):(\d{2}))?/.exec(name)!
  return m[1] === undefined ? 0 : (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 3_600_000 + Number(m[3]) * 60_000)
}
const compatibleInstant = (tz: string, wall: number): number => {
  const before = zoneOffset(tz, wall - 86_400_000)
  const after = zoneOffset(tz, wall + 86_400_000)
  const possible = [wall - before, wall - after].filter((i) => i + zoneOffset(tz, i) === wall)
  return possible.length > 0 ? Math.min(...possible) : wall - before
}
const wallMatches = (s: Cron.CronSchedule, wall: number): boolean => {
  const d = new Date(wall)
  const dom = s.daysOfMonth.includes(d.getUTCDate())
  const dow = s.daysOfWeek.includes(d.getUTCDay())
  return (
    s.seconds.includes(d.getUTCSeconds()) &&
    s.minutes.includes(d.getUTCMinutes()) &&
    s.hours.includes(d.getUTCHours()) &&
    s.months.includes(d.getUTCMonth() + 1) &&
    (s.eitherDayMatches ? dom || dow : dom && dow)
  )
}
/** Occurrences in (from, to] by brute force over every wall minute (5-field schedules). */
const oracle = (s: Cron.CronSchedule, from: number, to: number): Array<number> => {
  const found = new Set<number>()
  const first = Math.floor((from + zoneOffset(s.tz, from)) / 60_000) * 60_000 - 3 * 3_600_000
  const last = to + zoneOffset(s.tz, to) + 3 * 3_600_000
  for (let wall = first; wall <= last; wall += 60_000) {
    if (!wallMatches(s, wall)) continue
    const instant = compatibleInstant(s.tz, wall)
    if (instant > from && instant <= to) found.add(instant)
  }
  return [...found].sort((a, b) => a - b)
}

describe("parse", () => {
  it("reads every syntax form", () => {
    const s = ok(Cron.parse("*/15 10-20/5 1,15,31 JAN-mar,Dec mon-FRI"))
    assert.deepStrictEqual(s.minutes, [0, 15, 30, 45])
    assert.deepStrictEqual(s.hours, [10, 15, 20])
    assert.deepStrictEqual(s.daysOfMonth, [1, 15, 31])
    assert.deepStrictEqual(s.months, [1, 2, 3, 12])
    assert.deepStrictEqual(s.daysOfWeek, [1, 2, 3, 4, 5])
    assert.deepStrictEqual(s.seconds, [0])
    assert.strictEqual(s.tz, "UTC")
    assert.strictEqual(s.expression, "*/15 10-20/5 1,15,31 JAN-mar,Dec mon-FRI")

    assert.deepStrictEqual(ok(Cron.parse("50/3 * * * *")).minutes, [50, 53, 56, 59])
    assert.deepStrictEqual(ok(Cron.parse("0 0 * */3 *")).months, [1, 4, 7, 10])
    assert.deepStrictEqual(ok(Cron.parse("0 0 ? * 7")).daysOfWeek, [0])
    assert.deepStrictEqual(ok(Cron.parse("0 0 ? * 5-7")).daysOfWeek, [0, 5, 6])
    assert.deepStrictEqual(ok(Cron.parse("0 0 * * */2")).daysOfWeek, [0, 2, 4, 6])
    assert.deepStrictEqual(ok(Cron.parse("0 0 * * sun,SAT")).daysOfWeek, [0, 6])
    assert.deepStrictEqual(ok(Cron.parse("0 0 * * *")).daysOfWeek, [0, 1, 2, 3, 4, 5, 6])
    assert.deepStrictEqual(ok(Cron.parse("  05   4  * * *  ")).minutes, [5])
  })

  it("reads 6 fields with seconds first", () => {
    const s = ok(Cron.parse("*/15 30 9 * * *", "Europe/Berlin"))
    assert.deepStrictEqual(s.seconds, [0, 15, 30, 45])
    assert.deepStrictEqual(s.minutes, [30])
    assert.deepStrictEqual(s.hours, [9])
    assert.strictEqual(s.tz, "Europe/Berlin")
  })

  it("reads macros", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["@yearly", "0 0 1 1 *"],
      ["@annually", "0 0 1 1 *"],
      ["@monthly", "0 0 1 * *"],
      ["@weekly", "0 0 * * 0"],
      ["@daily", "0 0 * * *"],
      ["@midnight", "0 0 * * *"],
      ["@HOURLY", "0 * * * *"]
    ]
    for (const [macro, expanded] of table) {
      const { expression: _m, ...fromMacro } = ok(Cron.parse(macro))
      const { expression: _e, ...fromFields } = ok(Cron.parse(expanded))
      assert.deepStrictEqual(fromMacro, fromFields, macro)
    }
  })

  it("applies the Vixie day rule only when both day fields are restricted", () => {
    assert.isTrue(ok(Cron.parse("0 0 13 * FRI")).eitherDayMatches)
    assert.isFalse(ok(Cron.parse("0 0 * * FRI")).eitherDayMatches)
    assert.isFalse(ok(Cron.parse("0 0 13 * ?")).eitherDayMatches)
    assert.isFalse(ok(Cron.parse("0 0 */2 * FRI")).eitherDayMatches)
  })

  it("rejects bad expressions, naming the field and why", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["61 * * * *", 'minute field "61" is out of range 0-59'],
      ["* 24 * * *", 'hour field "24" is out of range 0-23'],
      ["* * 0 * *", 'day-of-month field "0" is out of range 1-31'],
      ["* * 32 * *", 'day-of-month field "32" is out of range 1-31'],
      ["* * * 13 *", 'month field "13" is out of range 1-12'],
      ["* * * * 8", 'day-of-week field "8" is out of range 0-7'],
      ["60 * * * * *", 'second field "60" is out of range 0-59'],
      ["1-61 * * * *", 'minute field "1-61": "61" is out of range 0-59'],
      ["1,,2 * * * *", 'minute field "1,,2" has an empty list item'],
      ["1, * * * *", 'minute field "1," has an empty list item'],
      ["*/0 * * * *", 'minute field "*/0" has a step that is not a positive whole number'],
      ["*/ * * * *", 'minute field "*/" has a step that is not a positive whole number'],
      ["*/x * * * *", 'minute field "*/x" has a step that is not a positive whole number'],
      ["5-1 * * * *", 'minute field "5-1" has a range that runs backwards (5 is after 1)'],
      ["? * * * *", 'minute field "?" uses "?", which only day fields allow'],
      ["* * * FOO *", 'month field "FOO" is not a number or a name (JAN-DEC)'],
      ["* * * * MONDAY", 'day-of-week field "MONDAY" is not a number or a name (SUN-SAT)'],
      ["x * * * *", 'minute field "x" is not a number'],
      ["-1 * * * *", 'minute field "-1": "" is not a number'],
      ["* * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 3"],
      [
        "* * * * * * *",
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 7"
      ],
      ["", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got 0"],
      ["@fortnightly", 'unknown macro "@fortnightly"; use @yearly, @monthly, @weekly, @daily or @hourly']
    ]
    for (const [expression, why] of table) {
      const e = err(Cron.parse(expression))
      assert.strictEqual(e.field, "recurrence.cron", expression)
      assert.strictEqual(e.message, `recurrence.cron: ${why}`, expression)
    }
  })

  it("rejects an unknown time zone", () => {
    const e = err(Cron.parse("* * * * *", "Mars/Olympus_Mons"))
    assert.strictEqual(e.field, "recurrence.tz")
    assert.strictEqual(e.message, 'recurrence.tz: unknown IANA time zone "Mars/Olympus_Mons"')
    assert.strictEqual(err(Cron.parse("61 * * * *", "Mars/Olympus_Mons")).field, "recurrence.cron")
  })
})

describe("next in UTC", () => {
  it("fires every minute", () => {
    assert.deepStrictEqual(run("* * * * *", "UTC", "2026-01-01T00:00:30.250Z", 3), [
      "2026-01-01T00:01:00.000Z",
      "2026-01-01T00:02:00.000Z",
      "2026-01-01T00:03:00.000Z"
    ])
  })

  it("fires every 15 seconds with 6 fields", () => {
    assert.deepStrictEqual(run("*/15 * * * * *", "UTC", "2026-01-01T00:00:00Z", 5), [
      "2026-01-01T00:00:15.000Z",
      "2026-01-01T00:00:30.000Z",
      "2026-01-01T00:00:45.000Z",
      "2026-01-01T00:01:00.000Z",
      "2026-01-01T00:01:15.000Z"
    ])
  })

  it("is strictly after its input, even at an occurrence or a millisecond before one", () => {
    const s = ok(Cron.parse("0 * * * *"))
    assert.strictEqual(iso(Cron.next(s, at("2026-01-01T01:00:00Z"))), "2026-01-01T02:00:00.000Z")
    assert.strictEqual(iso(Cron.next(s, at("2026-01-01T00:59:59.999Z"))), "2026-01-01T01:00:00.000Z")
  })

  it("fires on the hour 9-17 on weekdays, skipping the weekend", () => {
    // 2026-01-02 is a Friday.
    assert.deepStrictEqual(run("0 9-17 * * MON-FRI", "UTC", "2026-01-02T16:30:00Z", 3), [
      "2026-01-02T17:00:00.000Z",
      "2026-01-05T09:00:00.000Z",
      "2026-01-05T10:00:00.000Z"
    ])
  })

  it("skips months without the listed day", () => {
    assert.deepStrictEqual(run("0 12 31 * *", "UTC", "2026-01-31T12:00:00Z", 6), [
      "2026-03-31T12:00:00.000Z",
      "2026-05-31T12:00:00.000Z",
      "2026-07-31T12:00:00.000Z",
      "2026-08-31T12:00:00.000Z",
      "2026-10-31T12:00:00.000Z",
      "2026-12-31T12:00:00.000Z"
    ])
    assert.deepStrictEqual(run("0 0 28-31 2 *", "UTC", "2027-01-01T00:00:00Z", 3), [
      "2027-02-28T00:00:00.000Z",
      "2028-02-28T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z"
    ])
  })

  it("matches either day field when both are restricted", () => {
    // Fridays, or the 13th (a Tuesday in January 2026).
    assert.deepStrictEqual(run("0 0 13 * FRI", "UTC", "2026-01-08T00:00:00Z", 4), [
      "2026-01-09T00:00:00.000Z",
      "2026-01-13T00:00:00.000Z",
      "2026-01-16T00:00:00.000Z",
      "2026-01-23T00:00:00.000Z"
    ])
  })

  it("finds Feb 29 only in leap years", () => {
    assert.deepStrictEqual(run("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 3), [
      "2028-02-29T00:00:00.000Z",
      "2032-02-29T00:00:00.000Z",
      "2036-02-29T00:00:00.000Z"
    ])
  })

  it("gives null near the end of time instead of throwing", () => {
    const s = ok(Cron.parse("* * * * *", "Europe/Berlin"))
    assert.isNull(Cron.next(s, 8.64e15 - 1_000))
    assert.isNull(Cron.next(s, Number.NaN))
    assert.strictEqual(
      Cron.latest(s, 8.64e15 - 10 * 86_400_000, 8.64e15 - 5 * 86_400_000),
      8.64e15 - 5 * 86_400_000
    )
    assert.isNull(Cron.latest(s, 8.64e15 - 86_400_000, 8.64e15))
  })

  it("gives null for a day that never exists", () => {
    assert.isNull(Cron.next(ok(Cron.parse("0 0 30 2 *")), at("2026-01-01T00:00:00Z")))
    assert.isNull(Cron.next(ok(Cron.parse("0 0 31 4,6,9,11 *", "Europe/Berlin")), at("2026-01-01T00:00:00Z")))
  })
})

describe("next across DST", () => {
  it("America/New_York: a daily 02:30 runs once on the spring-forward day, at 03:30 EDT", () => {
    assert.deepStrictEqual(run("30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z", 3), [
      "2026-03-07T07:30:00.000Z",
      "2026-03-08T07:30:00.000Z",
      "2026-03-09T06:30:00.000Z"
    ])
  })

  it("America/New_York: a daily 01:30 runs once on the fall-back day, at 01:30 EDT", () => {
    assert.deepStrictEqual(run("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", 3), [
      "2026-10-31T05:30:00.000Z",
      "2026-11-01T05:30:00.000Z",
      "2026-11-02T06:30:00.000Z"
    ])
    assert.deepStrictEqual(run("30 2 * * *", "America/New_York", "2026-10-31T00:00:00Z", 3), [
      "2026-10-31T06:30:00.000Z",
      "2026-11-01T07:30:00.000Z",
      "2026-11-02T07:30:00.000Z"
    ])
  })

  it("America/New_York: an hourly job across both transitions", () => {
    // 01:30 EST, 02:30 shifted to 03:30 EDT (the same instant as 03:30 itself), 04:30 EDT.
    assert.deepStrictEqual(run("30 * * * *", "America/New_York", "2026-03-08T05:00:00Z", 4), [
      "2026-03-08T05:30:00.000Z",
      "2026-03-08T06:30:00.000Z",
      "2026-03-08T07:30:00.000Z",
      "2026-03-08T08:30:00.000Z"
    ])
    // 00:30 EDT, 01:30 EDT, not 01:30 EST, then 02:30 EST.
    assert.deepStrictEqual(run("30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", 4), [
      "2026-11-01T04:30:00.000Z",
      "2026-11-01T05:30:00.000Z",
      "2026-11-01T07:30:00.000Z",
      "2026-11-01T08:30:00.000Z"
    ])
  })

  it("America/New_York: wall slots in and after the gap that share an instant fire once", () => {
    // 02:00 → 07:00Z and 02:45 → 07:45Z coincide with 03:00 and 03:45 EDT.
    assert.deepStrictEqual(run("0,45 2,3 * * *", "America/New_York", "2026-03-08T00:00:00Z", 3), [
      "2026-03-08T07:00:00.000Z",
      "2026-03-08T07:45:00.000Z",
      "2026-03-09T06:00:00.000Z"
    ])
  })

  it("Europe/Berlin: a daily 02:30 runs once on both transition days", () => {
    assert.deepStrictEqual(run("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3), [
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:30:00.000Z",
      "2026-03-30T00:30:00.000Z"
    ])
    assert.deepStrictEqual(run("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", 3), [
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z"
    ])
  })

  it("Europe/Berlin: an hourly job across both transitions", () => {
    // 01:00 CET, 02:00 shifted to 03:00 CEST (= 03:00), 04:00 CEST.
    assert.deepStrictEqual(run("0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", 3), [
      "2026-03-29T00:00:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-29T02:00:00.000Z"
    ])
    // 01:00 CEST, 02:00 CEST, not 02:00 CET, then 03:00 CET.
    assert.deepStrictEqual(run("0 * * * *", "Europe/Berlin", "2026-10-24T22:30:00Z", 3), [
      "2026-10-24T23:00:00.000Z",
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T02:00:00.000Z"
    ])
  })

  it("Australia/Sydney: fall back in April, spring forward in October", () => {
    // 2026-04-05 03:00 AEDT → 02:00 AEST: 02:30 fires at AEDT only.
    assert.deepStrictEqual(run("30 2 * * *", "Australia/Sydney", "2026-04-03T12:00:00Z", 3), [
      "2026-04-03T15:30:00.000Z",
      "2026-04-04T15:30:00.000Z",
      "2026-04-05T16:30:00.000Z"
    ])
    // 2026-10-04 02:00 AEST → 03:00 AEDT: 02:30 shifts to 03:30 AEDT.
    assert.deepStrictEqual(run("30 2 * * *", "Australia/Sydney", "2026-10-02T12:00:00Z", 3), [
      "2026-10-02T16:30:00.000Z",
      "2026-10-03T16:30:00.000Z",
      "2026-10-04T15:30:00.000Z"
    ])
  })

  it("Australia/Lord_Howe: half-hour shifts in both directions", () => {
    // 2026-04-05 02:00 (+11) → 01:30 (+10:30): 01:45 fires at +11 only.
    assert.deepStrictEqual(run("45 1 * * *", "Australia/Lord_Howe", "2026-04-03T12:00:00Z", 3), [
      "2026-04-03T14:45:00.000Z",
      "2026-04-04T14:45:00.000Z",
      "2026-04-05T15:15:00.000Z"
    ])
    // 2026-10-04 02:00 (+10:30) → 02:30 (+11): 02:15 shifts by 30 minutes to 02:45 (+11).
    assert.deepStrictEqual(run("15 2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z", 3), [
      "2026-10-02T15:45:00.000Z",
      "2026-10-03T15:45:00.000Z",
      "2026-10-04T15:15:00.000Z"
    ])
    // Every 15 minutes: 02:00 and 02:15 land on 02:30 and 02:45, which fire once each.
    assert.deepStrictEqual(run("*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z", 5), [
      "2026-10-03T15:15:00.000Z",
      "2026-10-03T15:30:00.000Z",
      "2026-10-03T15:45:00.000Z",
      "2026-10-03T16:00:00.000Z",
      "2026-10-03T16:15:00.000Z"
    ])
  })
})

describe("latest", () => {
  it("finds the last slot of a year of downtime for an every-second schedule, quickly", () => {
    const s = ok(Cron.parse("* * * * * *", "America/New_York"))
    const started = performance.now()
    assert.strictEqual(
      iso(Cron.latest(s, at("2025-06-01T00:00:00Z"), at("2026-06-01T12:34:56.789Z"))),
      "2026-06-01T12:34:56.000Z"
    )
    assert.isBelow(performance.now() - started, 1_000)
  })

  it("finds the last slot of a sparse schedule", () => {
    const s = ok(Cron.parse("0 0 29 2 *", "Europe/Berlin"))
    assert.strictEqual(
      iso(Cron.latest(s, at("2020-01-01T00:00:00Z"), at("2033-01-01T00:00:00Z"))),
      "2032-02-28T23:00:00.000Z"
    )
    assert.isNull(Cron.latest(s, at("2029-01-01T00:00:00Z"), at("2031-12-31T00:00:00Z")))
    assert.isNull(Cron.latest(ok(Cron.parse("0 0 30 2 *")), 0, at("2026-01-01T00:00:00Z")))
  })

  it("counts the window as (after, atOrBefore]", () => {
    const s = ok(Cron.parse("0 * * * *"))
    assert.strictEqual(
      iso(Cron.latest(s, at("2026-01-01T00:00:00Z"), at("2026-01-01T05:00:00Z"))),
      "2026-01-01T05:00:00.000Z"
    )
    assert.isNull(Cron.latest(s, at("2026-01-01T05:00:00Z"), at("2026-01-01T05:59:59Z")))
    assert.isNull(Cron.latest(s, at("2026-01-01T06:00:00Z"), at("2026-01-01T05:00:00Z")))
  })

  it("picks the shifted instant across a spring-forward day", () => {
    const s = ok(Cron.parse("30 2 * * *", "America/New_York"))
    assert.strictEqual(
      iso(Cron.latest(s, at("2026-03-01T00:00:00Z"), at("2026-03-08T12:00:00Z"))),
      "2026-03-08T07:30:00.000Z"
    )
  })
})

/** 2026 transitions of each zone; UTC and Asia/Kolkata have none. */
const TRANSITIONS: Readonly<Record<string, ReadonlyArray<string>>> = {
  UTC: [],
  "Asia/Kolkata": [],
  "America/New_York": ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"],
  "Europe/Berlin": ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"],
  "Australia/Sydney": ["2026-04-04T16:00:00Z", "2026-10-03T16:00:00Z"],
  "Australia/Lord_Howe": ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"]
}
const EXPRESSIONS = [
  "* * * * *",
  "30 * * * *",
  "0,45 2,3 * * *",
  "30 2 * * *",
  "30 1 * * *",
  "15 2 * * *",
  "*/15 * * * *",
  "*/7 1-3 * * *",
  "0 9-17 * * MON-FRI",
  "0 0 1,15 * SUN",
  "59 1,2 * * *",
  "0 3 * * *"
] as const
const SECOND_EXPRESSIONS = ["*/20 * 2 * * *", "59 59 1 * * *", "0 30 2 * * *"] as const

const hour = 3_600_000
/** A zone and an instant, mostly within hours before one of the zone's transitions. */
const zoneAndInstant = FastCheck.constantFrom(...Object.keys(TRANSITIONS)).chain((tz) =>
  FastCheck.tuple(
    FastCheck.constant(tz),
    TRANSITIONS[tz]!.length === 0
      ? FastCheck.integer({ min: at("2000-01-01T00:00:00Z"), max: at("2040-01-01T00:00:00Z") })
      : FastCheck.oneof(
          {
            arbitrary: FastCheck.integer({
              min: at("2000-01-01T00:00:00Z"),
              max: at("2040-01-01T00:00:00Z")
            }),
            weight: 1
          },
          {
            arbitrary: FastCheck.tuple(
              FastCheck.constantFrom(...TRANSITIONS[tz]!.map(at)),
              FastCheck.integer({ min: -12 * hour, max: 6 * hour })
            ).map(([t, d]) => t + d),
            weight: 4
          }
        )
  )
)
const scheduleAt = (expressions: ReadonlyArray<string>) =>
  FastCheck.tuple(FastCheck.constantFrom(...expressions), zoneAndInstant).map(
    ([expression, [tz, from]]) => [ok(Cron.parse(expression, tz)), from] as const
  )
const anySchedule = scheduleAt([...EXPRESSIONS, ...SECOND_EXPRESSIONS])

describe("properties", () => {
  it.prop("next is strictly after its input", [anySchedule], ([[s, from]]) => {
    const n = Cron.next(s, from)
    assert.isNotNull(n)
    assert.isAbove(n!, from)
  })

  it.prop(
    "next matches the expression in wall time, or is a gap's wall time shifted by the gap",
    [anySchedule],
    ([[s, from]]) => {
      const n = Cron.next(s, from)!
      const offset = zoneOffset(s.tz, n)
      if (wallMatches(s, n + offset)) return
      const before = zoneOffset(s.tz, n - 86_400_000)
      assert.isAbove(offset, before, "only a gap's shifted wall time may not match")
      assert.isTrue(wallMatches(s, n + before))
    }
  )

  it.prop(
    "next agrees with a brute-force oracle of Temporal's compatible disambiguation",
    [scheduleAt(EXPRESSIONS), FastCheck.integer({ min: 1, max: 12 * hour })],
    ([[s, from], length]) => {
      assert.deepStrictEqual(
        between(s, from, from + length).map(iso),
        oracle(s, from, from + length).map(iso)
      )
    },
    { fastCheck: { numRuns: 100 } }
  )

  it.prop(
    "latest is the last of the occurrences next finds, and next after it leaves the window",
    [anySchedule, FastCheck.integer({ min: 0, max: 36 * hour })],
    ([[s, from], length]) => {
      const to = from + length
      const all = between(s, from, to)
      const last = Cron.latest(s, from, to)
      assert.strictEqual(iso(last), all.length === 0 ? null : iso(all[all.length - 1]!))
      if (last !== null) assert.isAbove(Cron.next(s, last)!, to)
    },
    { fastCheck: { numRuns: 100 } }
  )
})
