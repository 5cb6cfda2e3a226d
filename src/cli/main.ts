// calitap command-line entry point (placeholder until the CLI lands).
export async function main(_argv: string[]): Promise<void> {
  process.stdout.write('calitap\n');
}
