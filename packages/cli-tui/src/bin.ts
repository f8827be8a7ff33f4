#!/usr/bin/env node
/**
 * `t-minus`: the command line of t-minus (`t-minus --help`).
 */
import { main } from "./main.ts"

// stdout carries what a command prints (one JSON document with --json); log lines, such as a log
// action's when `run` fires it, go to stderr.
console.log = console.error
console.info = console.error

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env
})
