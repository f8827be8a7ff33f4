import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import { formatDuration, parseDuration, parseTime } from "../src/TimeGrammar.ts"

const ok = <A>(e: Either.Either<A, unknown>): A => {
  if (Either.isLeft(e)) throw new Error(`expected success, got ${String(e.left)}`)
  return e.right
}
const err = (e: Either.Either<unknown, { field: string; message: string }>) => {
  if (Either.isRight(e)) throw new Error("expected failure")
  return e.left
}

const UNITS = ["w", "d", "h", "m", "s", "ms"] as const

describe("durations (SPEC 6)", () => {
  it("reads units, compounds and ISO 8601", () => {
    const table: ReadonlyArray<readonly [string, number]> = [
      ["500ms", 500],
      ["30s", 30_000],
      ["5m", 300_000],
      ["2h", 7_200_000],
      ["1d", 86_400_000],
      ["1w", 604_800_000],
      ["1h30m", 5_400_000],
      ["1d2h3m4s5ms", 93_784_005],
      ["PT1H30M", 5_400_000],
      ["P1DT2H", 93_600_000],
      ["P2W", 1_209_600_000],
      ["PT0.5S", 500],
      ["pt90s", 90_000]
    ]
    for (const [text, ms] of table) assert.strictEqual(ok(parseDuration(text)), ms, text)
  })

  it("reads a bare number as ms in APIs and as seconds in the CLI", () => {
    assert.strictEqual(ok(parseDuration(90)), 90)
    assert.strictEqual(ok(parseDuration("90")), 90)
    assert.strictEqual(ok(parseDuration("90", { bareNumber: "s" })), 90_000)
  })

  it("rejects what it cannot read, naming the field", () => {
    for (const bad of ["", "5 minutes", "m5", "1.5h", "P", "PT", "-5m", "5x"]) {
      const e = err(parseDuration(bad, { field: "tMinus" }))
      assert.strictEqual(e.field, "tMinus", bad)
      assert.include(e.message, "tMinus")
    }
    assert.strictEqual(err(parseDuration(-1)).field, "duration")
    assert.strictEqual(err(parseDuration(1.5)).field, "duration")
  })

  it.prop(
    "format then parse round-trips every whole number of ms",
    [FastCheck.integer({ min: 0, max: 2 ** 52 })],
    ([ms]) => {
      assert.strictEqual(ok(parseDuration(formatDuration(ms))), ms)
    }
  )

  it.prop(
    "compounds add up their parts",
    [
      FastCheck.array(
        FastCheck.tuple(FastCheck.integer({ min: 0, max: 10_000 }), FastCheck.constantFrom(...UNITS)),
        { minLength: 1, maxLength: 6 }
      )
    ],
    ([parts]) => {
      const unit = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const
      const text = parts.map(([n, u]) => `${n}${u}`).join("")
      const expected = parts.reduce((sum, [n, u]) => sum + n * unit[u], 0)
      assert.strictEqual(ok(parseDuration(text)), expected)
    }
  )

  it("formats canonically", () => {
    assert.strictEqual(formatDuration(0), "0ms")
    assert.strictEqual(formatDuration(5_400_000), "1h30m")
    assert.strictEqual(formatDuration(93_784_005), "1d2h3m4s5ms")
  })
})

describe("times (SPEC 6)", () => {
  const now = Date.parse("2026-06-01T12:00:00Z")

  it("reads relative times, RFC 3339 with any offset, epoch ms and Dates", () => {
    assert.strictEqual(ok(parseTime("+5m", now)), now + 300_000)
    assert.strictEqual(ok(parseTime("+PT1H", now)), now + 3_600_000)
    assert.strictEqual(ok(parseTime("2026-06-01T14:00:00+02:00", now)), now)
    assert.strictEqual(ok(parseTime("2026-06-01T07:30:00-04:30", now)), now)
    assert.strictEqual(ok(parseTime("2026-06-01T12:00:00.25Z", now)), now + 250)
    assert.strictEqual(ok(parseTime("2026-06-01T12:00:00.123456Z", now)), now + 123, "truncated to ms")
    assert.strictEqual(ok(parseTime(now + 1, now)), now + 1)
    assert.strictEqual(ok(parseTime(new Date(now), now)), now)
  })

  it("rejects unparsable and impossible times, naming the field", () => {
    for (const bad of [
      "tomorrow",
      "2026-06-01",
      "2026-06-01T12:00:00",
      "2026-13-01T00:00:00Z",
      "2026-02-29T00:00:00Z",
      "2026-06-01T24:00:00Z",
      "2026-06-01T12:00:00+05:99",
      "+"
    ]) {
      assert.strictEqual(err(parseTime(bad, now, { field: "at" })).field, "at", bad)
    }
    assert.strictEqual(err(parseTime(Number.NaN, now)).field, "time")
    assert.strictEqual(err(parseTime(new Date("nope"), now)).field, "time")
  })

  it.prop(
    "RFC 3339 in UTC round-trips every instant",
    [FastCheck.integer({ min: 0, max: 253_402_300_799_999 })],
    ([ms]) => {
      assert.strictEqual(ok(parseTime(new Date(ms).toISOString(), 0)), ms)
    }
  )
})
