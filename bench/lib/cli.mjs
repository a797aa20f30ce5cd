/* global process, console */
// Command-line options of the harness scripts: `pnpm run x -- --flag` passes a bare `--`
// through, which is dropped; a wrong flag prints the usage and exits 2, --help prints it and exits 0.
import { parseArgs } from 'node:util'

/** The parsed option values (`options` as for util.parseArgs; `help` is added). */
export function commandLine (options, usage) {
  let values
  try {
    values = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      args: process.argv.slice(2).filter((arg) => arg !== '--'),
      strict: true
    }).values
  } catch (error) {
    console.error(`${error.message}\n${usage}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(usage)
    process.exit(0)
  }
  return values
}
