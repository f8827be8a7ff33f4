/**
 * One driver per contender, all behind the same small interface: schedule an item due at an
 * instant (one per call, or a batch per call), and report each item when the engine hands it to
 * user code (`onFire`). Every engine runs in the process that drives it (the peer process).
 */
import { rmSync, statSync } from "node:fs"
import { join } from "node:path"
import type { Worker } from "bullmq"

// Each driver imports its engine when it opens, so a peer process loads only its own contender
// (the restart workload times a process from its start).

export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
export const REDIS = { host: "127.0.0.1", port: Number(process.env.BENCH_REDIS_PORT ?? 6379) }

/** An item due at `dueAt` (epoch ms); `key` identifies it to the harness. */
export interface Item {
  readonly key: number
  readonly dueAt: number
}

export interface Driver {
  /** One item per call; resolves with the engine's reference for it (`onFire` reports that). */
  readonly scheduleOne: (item: Item) => Promise<string>
  /** Many items in one call. */
  readonly scheduleBatch: (items: ReadonlyArray<Item>) => Promise<ReadonlyArray<string>>
  /** Starts handing due items to `onFire` (engines whose worker runs apart start it here). */
  readonly startFiring: (onFire: (ref: string) => void) => Promise<void>
  /** Bytes the engine keeps outside this process (Redis memory, the tables, the SQLite file). */
  readonly storeBytes: () => Promise<number | null>
  /** Stops the engine; `drop` also deletes what it stored (the queue, schema or file). */
  readonly close: (drop: boolean) => Promise<void>
}

export interface DriverOptions {
  /** Names this run's queue, schema or file, so runs never see each other's items. */
  readonly ns: string
  /** Directory for files (SQLite). */
  readonly dir: string
  /** Whether this process fires (a runner, a worker) or only schedules. */
  readonly firing: boolean
}

export type PeerId =
  | "setTimeout"
  | "t-minus-sqlite"
  | "t-minus-sqlite-defaults"
  | "t-minus-postgres"
  | "bullmq"
  | "pg-boss"
  | "pg-boss-tuned"

// --- setTimeout: the physical limit (nothing stored) ---

const setTimeoutDriver = (): Driver => {
  const armed = new Set<ReturnType<typeof setTimeout>>()
  let pending: Array<Item> = []
  let onFire: ((ref: string) => void) | undefined
  const arm = (item: Item) => {
    const handle = setTimeout(() => {
      armed.delete(handle)
      onFire?.(String(item.key))
    }, item.dueAt - Date.now())
    armed.add(handle)
  }
  const add = (item: Item) => {
    if (onFire === undefined) pending.push(item)
    else arm(item)
    return String(item.key)
  }
  return {
    scheduleOne: async (item) => add(item),
    scheduleBatch: async (items) => items.map(add),
    startFiring: async (listener) => {
      onFire = listener
      for (const item of pending) arm(item)
      pending = []
    },
    storeBytes: async () => null,
    close: async () => {
      for (const handle of armed) clearTimeout(handle)
    }
  }
}

// --- t-minus, embedded: SQLite file or PostgreSQL schema ---

const schemaBytes = async (schema: string): Promise<number> => {
  const { default: pg } = await import("pg")
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    const result = await client.query<{ bytes: string | null }>(
      `SELECT sum(pg_total_relation_size(c.oid))::text AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema]
    )
    return Number(result.rows[0]?.bytes ?? 0)
  } finally {
    await client.end()
  }
}

const dropSchema = async (schema: string) => {
  const { default: pg } = await import("pg")
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await client.end()
  }
}

const fileBytes = (path: string) => {
  let total = 0
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      total += statSync(path + suffix).size
    } catch {
      // absent
    }
  }
  return total
}

const tminusDriver = async (store: "sqlite" | "postgres", options: DriverOptions): Promise<Driver> => {
  const { Lifecycle, TMinus } = await import("@t-minus/core")
  const filename = join(options.dir, `${options.ns}.db`)
  const schema = options.ns.replaceAll("-", "_")
  const tm = await TMinus.open({
    ...(store === "sqlite" ? { filename } : { databaseUrl: PG_URL, databaseSchema: schema }),
    runner: options.firing
  })
  let stop: (() => void) | undefined
  const request = (item: Item) => Lifecycle.timerRequest({ at: item.dueAt, name: String(item.key) })
  return {
    scheduleOne: async (item) => (await tm.schedule(request(item))).id,
    scheduleBatch: async (items) => (await tm.scheduleMany(items.map(request))).map((event) => event.id),
    startFiring: async (onFire) => {
      stop = tm.watch((transition) => onFire(transition.eventId), { types: ["fired"] })
    },
    storeBytes: async () => (store === "sqlite" ? fileBytes(filename) : schemaBytes(schema)),
    close: async (drop) => {
      stop?.()
      await tm.close()
      if (!drop) return
      if (store === "sqlite")
        for (const suffix of ["", "-wal", "-shm"]) rmSync(filename + suffix, { force: true })
      else await dropSchema(schema)
    }
  }
}

// --- BullMQ: delayed jobs in the local Redis ---

/**
 * BullMQ as its docs set it up: a `Queue` to add, a `Worker` (its own connection,
 * `maxRetriesPerRequest: null`) with `concurrency` to process, completed jobs removed. A delayed
 * job is due at its `timestamp` + `delay`, so both are taken at the same instant.
 */
const bullmqDriver = async (options: DriverOptions): Promise<Driver> => {
  const { Queue, Worker } = await import("bullmq")
  const { Redis } = await import("ioredis")
  const queue = new Queue(options.ns, { connection: REDIS })
  await queue.waitUntilReady()
  let worker: Worker | undefined
  const job = (item: Item) => {
    const now = Date.now()
    return {
      name: "due",
      data: { k: item.key },
      opts: { delay: Math.max(0, item.dueAt - now), timestamp: now, removeOnComplete: true }
    }
  }
  return {
    scheduleOne: async (item) => {
      const { name, data, opts } = job(item)
      return (await queue.add(name, data, opts)).id ?? ""
    },
    scheduleBatch: async (items) => (await queue.addBulk(items.map(job))).map((added) => added.id ?? ""),
    startFiring: async (onFire) => {
      worker = new Worker(
        options.ns,
        async (job) => {
          onFire(job.id ?? "")
        },
        { connection: { ...REDIS, maxRetriesPerRequest: null }, concurrency: 100 }
      )
      await worker.waitUntilReady()
    },
    storeBytes: async () => {
      const redis = new Redis(REDIS)
      try {
        const info = await redis.info("memory")
        return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN)
      } finally {
        redis.disconnect()
      }
    },
    close: async (drop) => {
      await worker?.close()
      if (drop) await queue.obliterate({ force: true })
      await queue.close()
    }
  }
}

// --- pg-boss: jobs with `startAfter` in the local PostgreSQL ---

/**
 * pg-boss with `work()`. Defaults: polling every 2 s. Tuned: polling at its minimum (0.5 s) and
 * fetching again at once while batches come back full. Both fetch up to 1,000 jobs per poll: with
 * the default of 1 a worker takes one job per poll and cannot keep up with these workloads at all.
 */
const pgBossDriver = async (tuned: boolean, options: DriverOptions): Promise<Driver> => {
  const { PgBoss } = await import("pg-boss")
  const schema = options.ns.replaceAll("-", "_")
  const boss = new PgBoss({ connectionString: PG_URL, schema })
  boss.on("error", (error) => console.error(`pg-boss: ${error}`))
  await boss.start()
  const queue = "due"
  if ((await boss.getQueue(queue)) === null) await boss.createQueue(queue)
  const work = tuned
    ? { batchSize: 1_000, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }
    : { batchSize: 1_000 }
  return {
    scheduleOne: async (item) =>
      (await boss.send(queue, { k: item.key }, { startAfter: new Date(item.dueAt) })) ?? "",
    scheduleBatch: async (items) =>
      (await boss.insert(
        queue,
        items.map((item) => ({ data: { k: item.key }, startAfter: new Date(item.dueAt) })),
        { returnId: true }
      )) ?? [],
    startFiring: async (onFire) => {
      await boss.work(queue, work, async (jobs) => {
        for (const job of jobs) onFire(job.id)
      })
    },
    storeBytes: () => schemaBytes(schema),
    close: async (drop) => {
      await boss.stop({ graceful: false })
      if (drop) await dropSchema(schema)
    }
  }
}

export const openDriver = (peer: PeerId, options: DriverOptions): Promise<Driver> => {
  switch (peer) {
    case "setTimeout":
      return Promise.resolve(setTimeoutDriver())
    case "t-minus-sqlite":
    case "t-minus-sqlite-defaults":
      return tminusDriver("sqlite", options)
    case "t-minus-postgres":
      return tminusDriver("postgres", options)
    case "bullmq":
      return bullmqDriver(options)
    case "pg-boss":
      return pgBossDriver(false, options)
    case "pg-boss-tuned":
      return pgBossDriver(true, options)
  }
}
