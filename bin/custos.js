#!/usr/bin/env node
// The `custos` command. Runs the TypeScript sources directly (Node's type stripping, Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `custos: needs Node.js 22.18 or newer (this is ${process.versions.node}); run it through npm (npx custos …), which uses the Node the project pins\n`,
  );
  process.exit(1);
}
// An optional .env in the working directory; the real environment wins.
const { loadEnvFile } = await import('../src/config/env-file.ts');
loadEnvFile();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
