// Process entry of the `flywheel` command.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
