/**
 * The local PostgreSQL of the test suites (every package's): where it is, and whether it answers.
 * Suites that need it run only when it does, and say loudly when they are skipped.
 */
import pg from "pg"

/** `T_MINUS_TEST_DATABASE_URL`, default the machine's `test` database. */
export const PG_URL = process.env.T_MINUS_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Whether PostgreSQL answers; when it does not, `what` is skipped, with a loud warning. */
export const postgresAnswers = async (what: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 })
  try {
    await client.connect()
    await client.end()
    return true
  } catch (error) {
    console.warn(`\n*** PostgreSQL at ${PG_URL} is not reachable (${String(error)}): ${what} SKIPPED ***\n`)
    return false
  }
}

/** Runs `statement` on a connection of its own (dropping a test's schema, say). */
export const execute = async (statement: string, params: Array<unknown> = []) => {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    return (await client.query(statement, params)).rows
  } finally {
    await client.end()
  }
}
