import { assert, describe, it } from "@effect/vitest"
import { uuidv7 } from "../src/internal/uuid.ts"

describe("uuidv7", () => {
  it("is a version 7, variant 1 UUID carrying the millisecond", () => {
    const ms = Date.parse("2026-01-02T03:04:05.678Z")
    const id = uuidv7(ms)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.strictEqual(Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16), ms)
  })

  it("keeps increasing for 20,000 ids made in one millisecond, and across milliseconds", () => {
    const ms = Date.parse("2027-01-01T00:00:00Z")
    const ids = Array.from({ length: 20_000 }, () => uuidv7(ms))
    ids.push(uuidv7(ms + 1), uuidv7(ms + 1_000))
    for (let i = 1; i < ids.length; i++) assert.isTrue(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`)
    assert.strictEqual(new Set(ids).size, ids.length)
  })
})
