/**
 * Where the CLI's lines go: stdout for answers, stderr for diagnostics. Apart from cli/output.ts (which
 * formats problems and outcomes, and imports the core's layout to say where an outcome is kept) so that the
 * dispatcher and `--help` load nothing else.
 */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}
