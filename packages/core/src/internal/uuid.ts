/**
 * UUID v7 (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter, then random bits, so ids
 * from one process sort by creation time. Within one millisecond the counter increases; when it
 * runs out, the timestamp part moves one millisecond ahead (RFC 9562 §6.2, method 1), so ids never
 * go backwards even for batches of thousands made at one instant.
 */
let lastMs = -1
let counter = 0

// Randomness drawn in bulk from Web Crypto (Node, Bun and Deno all have it): one call per id is slow.
const POOL_SIZE = 4096
const pool = new Uint8Array(POOL_SIZE)
let poolAt = POOL_SIZE

const randomBytes = (n: number): Uint8Array => {
  if (poolAt + n > POOL_SIZE) {
    globalThis.crypto.getRandomValues(pool)
    poolAt = 0
  }
  const out = pool.subarray(poolAt, poolAt + n)
  poolAt += n
  return out
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

/** A UUID v7 for the instant `ms` (the Effect clock's time; never earlier than the last id's). */
export const uuidv7 = (ms: number): string => {
  const random = randomBytes(10)
  if (ms > lastMs) {
    lastMs = ms
    // Start low in the counter space, so plenty of room stays for ids in the same millisecond.
    counter = ((random[0]! & 0x03) << 8) | random[1]!
  } else {
    counter += 1
    if (counter > 0xfff) {
      lastMs += 1
      counter = 0
    }
  }
  const bytes = new Uint8Array(16)
  let t = lastMs
  for (let i = 5; i >= 0; i--) {
    bytes[i] = t % 256
    t = Math.floor(t / 256)
  }
  bytes[6] = 0x70 | (counter >> 8)
  bytes[7] = counter & 0xff
  bytes.set(random.subarray(2, 10), 8)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  let h = ""
  for (let i = 0; i < 16; i++) {
    h += HEX[bytes[i]!]
    if (i === 3 || i === 5 || i === 7 || i === 9) h += "-"
  }
  return h
}
