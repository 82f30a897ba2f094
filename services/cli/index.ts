// Process entry of the `flywheel` command.
import { main } from './main.js';

const code = await main(process.argv.slice(2));
// A failed command exits now: a service whose start failed may still hold connections (Redis,
// Kafka) that would keep the process alive, and a supervisor must see it stop.
if (code !== 0) process.exit(code);
process.exitCode = code;
