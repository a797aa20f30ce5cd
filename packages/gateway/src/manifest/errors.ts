/** Every problem found in a manifest, each as `path: message`. */
export class ManifestError extends Error {
  readonly problems: readonly string[]
  readonly file: string | undefined

  constructor (problems: readonly string[], file?: string) {
    super(`invalid manifest${file === undefined ? '' : ` ${file}`}:\n${problems.map((p) => `  ${p}`).join('\n')}`)
    this.name = 'ManifestError'
    this.problems = problems
    this.file = file
  }
}
