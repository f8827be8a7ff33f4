#!/usr/bin/env node
/**
 * `t-minus`: the command line of t-minus (`t-minus --help`).
 */
import { main } from "./main.ts"

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env
})
