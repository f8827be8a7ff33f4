import { afterAll, assert, describe, it } from "@effect/vitest"
import pg from "pg"
import { TMinus } from "../src/index.ts"
import * as SqlDriver from "../src/SqlDriver.ts"
import * as SqlEventStore from "../src/SqlEventStore.ts"
import { freshSchema, PG_URL, postgresUp } from "./backends.ts"
import { execute } from "./postgres.ts"

describe.runIf(postgresUp)("Postgres query plans", () => {
  const schema = freshSchema()
  afterAll(() => execute(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))

  it("the runner's loops read through indexes on tables never analyzed (a new database)", async () => {
    const tm = await TMinus.open({ databaseUrl: PG_URL, databaseSchema: schema })
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      // Autovacuum, where it runs, would analyze the tables after the inserts below.
      for (const table of ["events", "actions", "campaign_links"])
        await client.query(`ALTER TABLE ${schema}.${table} SET (autovacuum_enabled = off)`)
      await tm.scheduleMany(Array.from({ length: 2_000 }, (_, i) => ({ kind: "timer", at: `+${i + 1}h` })))
      await tm.close()
      const [{ analyzed }] = (
        await client.query(
          "SELECT count(*)::int AS analyzed FROM pg_stat_user_tables WHERE schemaname = $1 AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
          [schema]
        )
      ).rows
      // Nothing has analyzed the tables: the planner has no statistics, as on a new database.
      assert.strictEqual(analyzed, 0)
      await client.query(`SET search_path TO ${schema}`)
      const plan = async ([sql, params]: readonly [string, ReadonlyArray<unknown>]) =>
        (await client.query(`EXPLAIN ${SqlDriver.dollarPlaceholders(sql)}`, [...params])).rows.map(
          (row) => row["QUERY PLAN"] as string
        )
      const now = Date.now() + 30 * 60_000
      const plans = {
        due: await plan(SqlEventStore.dueQuery(now, 1_000)),
        dueActions: await plan(SqlEventStore.dueActionsQuery(now, 100)),
        predecessors: await plan(SqlEventStore.predecessorsQuery(["a", "b"])),
        dependents: await plan(SqlEventStore.dependentsQuery(["a", "b"]))
      }
      console.log(
        Object.entries(plans)
          .map(([name, lines]) => [`${name}:`, ...lines].join("\n  "))
          .join("\n")
      )
      assert.isTrue(
        plans.due.some((line) => line.includes("events_due")),
        "the due events come from the partial index events_due"
      )
      for (const [name, lines] of Object.entries(plans)) {
        for (const line of lines)
          assert.notMatch(line, /Seq Scan on (events|actions|campaign_links)\b/, `${name}: ${line}`)
      }
    } finally {
      await client.end()
    }
  })
})
