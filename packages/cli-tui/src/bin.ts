#!/usr/bin/env node
/**
 * `t-minus`: the command line of t-minus (`t-minus --help`).
 */
import module from "node:module"

// Modules compiled (and type-stripped) once are cached on disk for the next command (Node's
// compile cache, in the system's temporary directory): a command starts in about two thirds of
// the time. It must be on before the modules load, hence the dynamic import.
module.enableCompileCache?.()
const { main } = await import("./main.ts")

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
